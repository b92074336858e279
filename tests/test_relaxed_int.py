"""Relaxed integers (SEMANTICS 10) and relaxed indexing (SEMANTICS 7): the runtime's distributions
against brute force over every pair of values, and compiled programs through them (gradients,
distributions, convergence to the hard result, one write mechanism with the DSL)."""

import itertools
import math
import operator

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from programs import BY_NAME, gaps_to_python

import avcompile
from avcompile import dsl, relax
from avcompile.relaxed_int import (
    RelaxedInt,
    accumulate,
    blend_int,
    compare_int,
    read,
    write,
)
from avcompile.runtime import Relaxation

B = 3


class _Batch:
    size, dtype, device = B, torch.float64, torch.device("cpu")


@st.composite
def relaxed_ints(draw, reach=4):
    """A random relaxed integer over B examples, its probabilities summing to 1 per example."""
    start, count = draw(st.integers(-reach, reach)), draw(st.integers(1, 4))
    raw = draw(st.lists(st.floats(0.01, 1.0), min_size=count * B, max_size=count * B))
    probs = torch.tensor(raw, dtype=torch.float64).reshape(count, B)
    return RelaxedInt(start, probs / probs.sum(0))


def law(k):
    """``k`` as {value: probabilities over the batch}, dropping values of probability 0."""
    out = {}
    for m in range(k.probs.shape[0]):
        out[k.lo + m] = k.probs[m].expand(B)
    return out


def brute(op, a, b):
    """The distribution of op(a, b) for independent a and b, by enumerating every pair."""
    out = {}
    for (x, px), (y, py) in itertools.product(law(a).items(), law(b).items()):
        v = op(x, y)
        out[v] = out.get(v, torch.zeros(B, dtype=torch.float64)) + px * py
    return out


def assert_same_law(k, expected):
    got = law(k)
    for v in set(got) | set(expected):
        zero = torch.zeros(B, dtype=torch.float64)
        torch.testing.assert_close(got.get(v, zero), expected.get(v, zero), atol=1e-12, rtol=0)


@settings(max_examples=40, deadline=None, derandomize=True)
@given(a=relaxed_ints(), b=relaxed_ints(), c=st.integers(-3, 3))
def test_arithmetic_is_the_law_of_independent_values(a, b, c):
    for op in (operator.add, operator.sub, operator.mul):
        assert_same_law(op(a, b), brute(op, a, b))
        assert_same_law(op(a, c), brute(op, a, RelaxedInt(c, torch.ones(1, B))))
    positive = RelaxedInt(1, b.probs)  # values 1, 2, ...: no division by zero
    for op in (operator.floordiv, operator.mod):
        assert_same_law(op(a, positive), brute(op, a, positive))
    assert_same_law(-a, brute(operator.sub, RelaxedInt(0, torch.ones(1, B)), a))
    for k in (a + b, a * c, a // positive, a % positive, -a):
        torch.testing.assert_close(k.probs.sum(0), torch.ones(B, dtype=torch.float64))


@settings(max_examples=40, deadline=None, derandomize=True)
@given(a=relaxed_ints(), b=relaxed_ints(), c=st.integers(-4, 4))
def test_comparisons_are_read_off_the_distributions(a, b, c):
    rx = Relaxation(1.0)  # no beta takes part: the probabilities are exact
    for name in ("gt", "ge", "lt", "le", "eq", "ne"):
        op = getattr(operator, name)
        zero = torch.zeros(B, dtype=torch.float64)
        pairs = itertools.product(law(a).items(), law(b).items())
        want = sum((p * q for (x, p), (y, q) in pairs if op(x, y)), zero)
        torch.testing.assert_close(compare_int(rx, name, a, b), want)
        want_c = sum((p for x, p in law(a).items() if op(x, c)), zero)
        torch.testing.assert_close(compare_int(rx, name, a, c), want_c)


@settings(max_examples=30, deadline=None, derandomize=True)
@given(a=relaxed_ints(), b=relaxed_ints(), p=st.floats(0.0, 1.0))
def test_blends_and_accumulations_stay_distributions(a, b, p):
    prob = torch.full((B,), p, dtype=torch.float64)
    mixed = blend_int(prob, a, b)
    want = {}
    for v, q in law(a).items():
        want[v] = want.get(v, 0) + p * q
    for v, q in law(b).items():
        want[v] = want.get(v, 0) + (1 - p) * q
    assert_same_law(mixed, want)
    torch.testing.assert_close(mixed.probs.sum(0), torch.ones(B, dtype=torch.float64))
    acc = accumulate(accumulate(None, prob, a), 1 - prob, b)  # how a relaxed while sums
    assert_same_law(acc, want)
    assert blend_int(prob, 2, 2) == 2 and blend_int(1.0, 3, 5) == 3  # certain: a plain int


@settings(max_examples=30, deadline=None, derandomize=True)
@given(k=relaxed_ints(reach=6), n=st.integers(1, 5))
def test_reads_and_writes_at_a_relaxed_position_weigh_every_position(k, n):
    x = torch.randn(n, 2, B, dtype=torch.float64)
    v = torch.randn(B, dtype=torch.float64)
    wanted_read = torch.zeros(2, B, dtype=torch.float64)
    wanted_write = x.clone()
    for value, p in law(k).items():
        if -n <= value < n:  # Python's positions; the others read nothing and are not written
            wanted_read += p * x[value]
            pos = value % n
            wanted_write[pos, 1] = p * v + (1 - p) * wanted_write[pos, 1]
    torch.testing.assert_close(read(x, k), wanted_read)
    torch.testing.assert_close(write(x, (k, 1), v), wanted_write)


def test_an_infinite_value_of_weight_zero_neither_reads_nor_writes_nan():
    x = torch.tensor([[0.0], [float("inf")], [2.0]], dtype=torch.float64)
    k = RelaxedInt(0, torch.tensor([[0.5], [0.0], [0.5]], dtype=torch.float64))
    assert read(x, k, inf=True).item() == 1.0
    written = write(x, k, 4.0, inf=True)
    assert written[1].item() == float("inf") and written[0].item() == 2.0
    assert read(x, k).isnan().all()  # the plain form, for arrays that hold no infinity


def write_where_smallest(x):
    # an array started at infinity, written and read at a relaxed position
    d = [math.inf] * len(x)
    m = 0
    for j in range(1, len(x)):
        if x[j] < x[m]:
            m = j
    d[m] = x[m] * 2.0
    return d[m], d[0]


def test_arrays_that_may_hold_infinity_are_read_and_written_safely():
    # where a position's probability is exactly 0 (hard mode, or a soft one that underflows), its
    # infinite value adds nothing; where it is strictly between, the expectation is infinite
    module = relax(write_where_smallest, beta=2.0)
    assert "inf=True" in module.code
    x = torch.randn(6, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(8))
    want = [
        torch.tensor(v, dtype=torch.float64) for v in zip(*map(write_where_smallest, x.tolist()))
    ]
    for got in (
        relax(write_where_smallest, hard=True)(x),
        relax(write_where_smallest, beta=1e6)(x),
    ):
        for g, w in zip(got, want):
            assert torch.equal(g, w)


# ---------------------------------------------------------------------------------------------
# Compiled programs through relaxed positions.


def position_of_min(x):
    m = 0
    for j in range(1, len(x)):
        if x[j] < x[m]:
            m = j
    return avcompile.probs(m, len(x)), x[m], m


def read_write_at_argmin(x):
    m = 0
    for j in range(1, len(x)):
        if x[j] < x[m]:
            m = j
    x[m] = x[m] * 2.0 + x[0]
    return x


@pytest.mark.parametrize(
    "fn",
    [
        read_write_at_argmin,
        BY_NAME["insertion_sort_textbook"].fn,
        BY_NAME["visited_flags"].fn,
        BY_NAME["best_of_a_table_from_inf"].fn,
    ],
    ids=lambda f: f.__name__,
)
def test_gradcheck_through_relaxed_reads_and_writes(fn):
    x = torch.randn(2, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(3))
    module = relax(fn, beta=2.0)
    assert torch.autograd.gradcheck(module, (x.requires_grad_(),), eps=1e-6, atol=1e-6)


def test_probs_is_a_distribution_and_one_hot_in_hard_mode():
    x = torch.randn(5, 6, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    probs, value, m = relax(position_of_min, beta=3.0)(x)
    assert probs.shape == (5, 6)
    torch.testing.assert_close(probs.sum(-1), torch.ones(5, dtype=torch.float64))
    positions = torch.arange(6, dtype=torch.float64)
    torch.testing.assert_close(m, (probs * positions).sum(-1))  # as a number, its expectation
    torch.testing.assert_close(value, (probs * x).sum(-1))  # the read is the expectation
    hard_probs, _, hard_m = relax(position_of_min, hard=True)(x)
    assert torch.equal(hard_probs, torch.nn.functional.one_hot(x.argmin(-1), 6).double())
    assert torch.equal(hard_m, x.argmin(-1).double())


def test_probs_outside_a_relaxed_function_is_one_hot():
    assert avcompile.probs(2, 4).tolist() == [0.0, 0.0, 1.0, 0.0]
    assert avcompile.probs(torch.tensor([0, 2])).tolist() == [[1, 0, 0], [0, 0, 1]]
    with pytest.raises(ValueError, match="outside 0, ..., 2"):
        avcompile.probs(3, 3)


@pytest.mark.parametrize(
    "name",
    [
        "argmin_to_front",
        "selection_sort_textbook",
        "insertion_sort_textbook",
        "counted_then_compared",
        "relaxed_row_and_column",
        "two_positions",
    ],
)
def test_soft_approaches_hard_as_beta_grows(name):
    gaps = gaps_to_python(BY_NAME[name], (3.0, 30.0, 3000.0), n=5, seed=5)
    assert gaps[0] > gaps[1] > gaps[2] and gaps[2] < 1e-6, gaps


def test_the_dsl_weighted_write_and_a_write_at_a_relaxed_position_are_one_write():
    # x[m] = v at a relaxed position m equals the DSL's Let('x', [w], v) with w = probs(m)
    def write_at_argmin(x, v):
        m = 0
        for j in range(1, len(x)):
            if x[j] < x[m]:
                m = j
        x[m] = v
        return x, avcompile.probs(m, len(x))

    x = torch.randn(4, 5, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    v = torch.randn(4, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    written, w = relax(write_at_argmin, beta=2.0)(x, v)
    algorithm = dsl.Algorithm(
        dsl.Input("x"),
        dsl.Input("v"),
        dsl.Input("w"),
        dsl.Let("x", ["w"], "v"),
        dsl.Output("x"),
    )
    torch.testing.assert_close(algorithm(x, v, w), written, atol=1e-12, rtol=0)

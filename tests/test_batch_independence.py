"""Hard mode is per example: an example's result in a batch equals its result run alone."""

import functools

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from programs import BY_NAME, PROGRAMS, as_tuple

from avcompile import relax
from src_examples.bubble_sort import bubble_sort
from src_examples.integer_sqrt import integer_sqrt
from src_examples.levenshtein import levenshtein
from src_examples.median_filter import median_filter
from src_examples.odd_even_sort import odd_even_sort
from src_examples.shortest_path import shortest_path

# src_examples/count_positive.py is left out: it takes a network (a static argument), not only
# tensors, and its demo needs scikit-learn's data.

# Each example function: the example shapes of its arguments for sizes (n, m), the range of
# random values and the range of sizes.
EXAMPLES = {
    "bubble_sort": (bubble_sort, lambda n, m: [(n,)], (-3.0, 3.0), (1, 6)),
    "odd_even_sort": (odd_even_sort, lambda n, m: [(n,)], (-3.0, 3.0), (1, 6)),
    "levenshtein": (levenshtein, lambda n, m: [(n,), (m,)], (0.0, 3.0), (1, 4)),
    "shortest_path": (shortest_path, lambda n, m: [(n, m)], (0.1, 2.0), (1, 3)),
    "median_filter": (median_filter, lambda n, m: [(n,)], (-3.0, 3.0), (2, 7)),
    "integer_sqrt": (integer_sqrt, lambda n, m: [()], (0.0, 30.0), (1, 1)),
}

SETTINGS = settings(
    max_examples=25, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck)
)


@functools.cache
def hard_registry(name):
    return relax(BY_NAME[name].fn, hard=True)


@functools.cache
def hard_example(name):
    return relax(EXAMPLES[name][0], hard=True)


def draw_batch(data, shapes, low, high, pool):
    """2 to 4 examples of the given shapes; values often repeat (ties) or sit on ``pool``."""
    batch = data.draw(st.integers(2, 4), label="batch")
    value = st.one_of(st.sampled_from(pool), st.floats(low, high, allow_nan=False))
    inputs = []
    for shape in shapes:
        size = batch * int(torch.Size(shape).numel())
        values = data.draw(st.lists(value, min_size=size, max_size=size))
        inputs.append(torch.tensor(values, dtype=torch.float64).reshape(batch, *shape))
    return inputs


def assert_batch_independent(module, inputs, exact=True):
    together = as_tuple(module(*inputs))
    for b in range(inputs[0].shape[0]):
        alone = as_tuple(module(*[x[b : b + 1] for x in inputs]))
        assert len(alone) == len(together)
        for k, (t, a) in enumerate(zip(together, alone)):
            if not isinstance(t, torch.Tensor):  # a hard value: the same for every example
                assert t == a, (k, t, a)
                continue
            same = torch.equal if exact else lambda u, v: torch.allclose(u, v, 1e-12, 1e-12)
            assert same(t[b : b + 1], a), (
                f"output {k} of example {b}: in the batch {t[b].tolist()}, alone {a[0].tolist()} "
                f"on inputs {[x[b].tolist() for x in inputs]}"
            )


@pytest.mark.parametrize("program", PROGRAMS, ids=lambda p: p.name)
@SETTINGS
@given(data=st.data())
def test_registry_program_is_batch_independent(program, data):
    n = data.draw(st.integers(*program.n_range), label="n")
    inputs = draw_batch(data, program.shapes(n), program.low, program.high, program.tie_pool)
    assert_batch_independent(hard_registry(program.name), inputs, program.exact)


@pytest.mark.parametrize("name", sorted(EXAMPLES))
@SETTINGS
@given(data=st.data())
def test_example_is_batch_independent(name, data):
    _, shapes, (low, high), sizes = EXAMPLES[name]
    n, m = data.draw(st.integers(*sizes), label="n"), data.draw(st.integers(*sizes), label="m")
    pool = (low, (low + high) / 2, high, float(round(low + 1)))
    inputs = draw_batch(data, shapes(n, m), low, high, pool)
    assert_batch_independent(hard_example(name), inputs)

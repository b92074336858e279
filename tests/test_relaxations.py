"""Relaxation controls: distribution families, hard and straight-through modes, beta as an
attribute or a learned parameter, per-comparison options, soft argmax, and NaN safety."""

import math

import algovision
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import avcompile
from avcompile import relax, schedule
from src_examples.bubble_sort import bubble_sort

FAMILIES = ("logistic", "cauchy", "gaussian", "reciprocal", "optimal")


def cdf(x, dist):
    """P(a > b) at x = beta * (a - b), from each family's definition."""
    if dist == "logistic":
        return 1 / (1 + math.exp(-x))
    if dist == "cauchy":
        return math.atan(x) / math.pi + 0.5
    if dist == "gaussian":
        return 0.5 * (1 + math.erf(x / math.sqrt(2)))
    if dist == "reciprocal":
        return 0.5 * (x / (2 + abs(x)) + 1)
    if abs(x) <= 0.25:  # optimal
        return x + 0.5
    return 1 - 1 / (16 * x) if x > 0 else -1 / (16 * x)


def density(x, dist):
    """The probability of a == b: the density at x scaled to peak 1."""
    if dist == "logistic":
        return 1 / math.cosh(x / 2) ** 2
    if dist == "cauchy":
        return 1 / (1 + x * x)
    if dist == "gaussian":
        return math.exp(-x * x / 2)
    if dist == "reciprocal":
        return 4 / (2 + abs(x)) ** 2
    return 1.0 if abs(x) <= 0.25 else 1 / (16 * x * x)


def p_gt(a, b):
    return 1.0 if a > b else 0.0


def p_lt(a, b):
    return 1.0 if a < b else 0.0


def p_eq(a, b):
    return 1.0 if a == b else 0.0


def p_ne(a, b):
    return 1.0 if a != b else 0.0


GRID = torch.tensor(
    [-40.0, -3.0, -1.0, -0.3, -0.2, -0.01, 0.0, 0.01, 0.2, 0.3, 1.0, 3.0, 40.0], dtype=torch.float64
)


@pytest.mark.parametrize("dist", FAMILIES)
def test_family_formulas(dist):
    beta = 1.5
    b = torch.zeros_like(GRID)
    for fn, expected in [
        (p_gt, lambda x: cdf(x, dist)),
        (p_lt, lambda x: cdf(-x, dist)),
        (p_eq, lambda x: density(x, dist)),
        (p_ne, lambda x: 1 - density(x, dist)),
    ]:
        got = relax(fn, beta=beta, dist=dist)(GRID, b)
        want = torch.tensor([expected(beta * d) for d in GRID.tolist()], dtype=torch.float64)
        assert torch.allclose(got, want, atol=1e-12), (fn.__name__, dist)


@pytest.mark.parametrize("dist", FAMILIES)
def test_family_monotone_and_limits(dist):
    d = torch.arange(-100, 101, dtype=torch.float64) * 0.05
    zero = torch.zeros_like(d)
    greater = relax(p_gt, beta=10.0, dist=dist)(d, zero)
    equal = relax(p_eq, beta=2.0, dist=dist)(d, zero)
    assert (greater.diff() >= 0).all() and greater[0] < 0.05 and greater[-1] > 0.95
    assert equal[100] == 1.0  # the peak, at d = 0
    assert (equal[100:].diff() <= 0).all() and (equal[:101].diff() >= 0).all()
    # beta = infinity: the exact comparison, away from ties
    nonzero = d[d != 0]
    zeros = torch.zeros_like(nonzero)
    for fn, exact in [(p_gt, nonzero > 0), (p_lt, nonzero < 0), (p_eq, nonzero == 0)]:
        got = relax(fn, beta=math.inf, dist=dist)(nonzero, zeros)
        assert torch.equal(got, exact.double()), (fn.__name__, dist)


def test_per_comparison_beta_and_dist():
    def f(a, b):
        p = 0.0
        if avcompile.gt(a, b, beta=2.0, dist="cauchy"):
            p = 1.0
        q = 1.0 if avcompile.eq(a, b) else 0.0
        return p, q

    module = relax(f, beta=7.0)
    a, b = torch.tensor([0.3, -1.0], dtype=torch.float64), torch.zeros(2, dtype=torch.float64)
    p, q = module(a, b)
    assert torch.allclose(
        p, torch.tensor([cdf(0.6, "cauchy"), cdf(-2.0, "cauchy")], dtype=torch.float64)
    )
    assert torch.allclose(
        q, torch.tensor([density(2.1, "logistic"), density(-7.0, "logistic")], dtype=torch.float64)
    )
    assert "rx.gt(a, b, beta=2.0, dist='cauchy')" in module.code


def test_argmax_and_soft_extrema_match_algovision():
    def f(x, a, b):
        return (
            avcompile.argmax(x),
            avcompile.argmin(a, b),
            avcompile.softmax(x),
            avcompile.softmin(a, b, beta=2.0),
        )

    module = relax(f, beta=3.0)
    x = torch.randn(4, 5, dtype=torch.float64)
    a, b = torch.randn(4, dtype=torch.float64), torch.randn(4, dtype=torch.float64)
    am, an, mx, mn = module(x, a, b)
    assert torch.allclose(am, algovision.ArgMax(3.0)(*x.unbind(1)))
    assert torch.allclose(an, algovision.ArgMin(3.0)(a, b))
    assert torch.allclose(mx, algovision.Max(3.0)(*x.unbind(1)))
    assert torch.allclose(mn, algovision.Min(2.0)(a, b))
    module.hard = True
    am, an, mx, mn = module(x, a, b)
    assert torch.equal(am, torch.nn.functional.one_hot(x.argmax(1), 5).double())
    assert torch.equal(mx, x.amax(1)) and torch.equal(mn, torch.minimum(a, b))


def test_ops_outside_a_relaxed_function():
    assert avcompile.gt(2, 1) is True
    x = torch.tensor([[1.0, 3.0, 2.0]])
    assert torch.allclose(avcompile.argmax(x, beta=1.0), torch.softmax(x, -1))
    assert torch.allclose(
        avcompile.lt(torch.tensor(0.0), 1.0, beta=2.0), torch.sigmoid(torch.tensor(2.0))
    )


def test_straight_through_forward_is_hard_exactly():
    x = torch.randn(6, 7, dtype=torch.float64)
    st_module = relax(bubble_sort.__wrapped__, beta=5, mode="st")
    hard_module = relax(bubble_sort.__wrapped__, beta=5, hard=True)
    for got, want in zip(st_module(x), hard_module(x)):
        assert torch.equal(got, want)


def test_straight_through_gradient_is_the_soft_one():
    def scaled_step(a, b):
        return 3.0 if a > b else 0.0

    a = torch.randn(8, dtype=torch.float64, requires_grad=True)
    b = torch.randn(8, dtype=torch.float64)
    st_out = relax(scaled_step, beta=2.0, mode="st")(a, b)
    assert torch.equal(st_out, 3.0 * (a > b).double())
    (st_grad,) = torch.autograd.grad(st_out.sum(), a)
    (soft_grad,) = torch.autograd.grad(relax(scaled_step, beta=2.0)(a, b).sum(), a)
    assert torch.allclose(st_grad, soft_grad) and soft_grad.abs().sum() > 0


def test_modes_and_families_are_checked():
    with pytest.raises(ValueError, match="mode must be one of"):
        relax(p_gt, mode="fuzzy")
    with pytest.raises(ValueError, match="dist must be one of"):
        relax(p_gt, dist="laplace")
    with pytest.raises(ValueError, match="contradicts"):
        relax(p_gt, hard=True, mode="soft")
    module = relax(p_gt)
    module.hard = True
    assert module.mode == "hard"
    module.mode = "st"
    assert not module.hard


def test_annealing_beta_without_recompiling():
    module = relax(bubble_sort.__wrapped__, beta=1.0)
    code = type(module).forward
    x = torch.randn(4, 6)
    outputs = []
    for beta in (1.0, 0.5 * 8, 64.0):
        module.beta = beta
        outputs.append(module(x)[1])
    assert type(module).forward is code
    assert not torch.allclose(outputs[0], outputs[1]) and not torch.allclose(outputs[1], outputs[2])
    module.beta = torch.tensor(64.0)
    assert torch.allclose(module(x)[1], outputs[2])
    betas = schedule.geometric(1.0, 64.0, steps=7)
    assert [round(betas(k), 6) for k in (0, 3, 6, 100)] == [1.0, 8.0, 64.0, 64.0]
    assert schedule.linear(0.0, 10.0, steps=11)(4) == pytest.approx(4.0)


def test_learned_beta_receives_a_gradient():
    module = relax(bubble_sort.__wrapped__)
    module.beta = torch.nn.Parameter(torch.tensor(3.0))
    assert [name for name, _ in module.named_parameters()] == ["beta"]
    _, loss = module(torch.randn(5, 6))
    loss.sum().backward()
    assert module.beta.grad is not None and module.beta.grad != 0
    module.beta = 4.0  # back to a plain number
    assert list(module.parameters()) == []


def safe_sqrt(x):
    if x > 0:
        y = torch.sqrt(x)
    else:
        y = 0.0
    return y


def safe_reciprocal(d):
    if d != 0:
        r = 1 / d
    else:
        r = 0.0
    return r


SPECIAL = st.one_of(
    st.sampled_from([0.0, -0.0, 1e-30, -1e-30, 1e-8, -1e-8, 1e30, -1e30, -2.0]),
    st.floats(-1e6, 1e6, allow_nan=False),
)


@pytest.mark.parametrize("mode", ["soft", "hard", "st"])
@pytest.mark.parametrize("fn", [safe_sqrt, safe_reciprocal])
@settings(max_examples=40, deadline=None)
@given(values=st.lists(SPECIAL, min_size=1, max_size=6))
def test_nan_safety(fn, mode, values):
    x = torch.tensor(values, dtype=torch.float64, requires_grad=True)
    module = relax(fn, beta=10.0, mode=mode)
    out = module(x)
    (grad,) = torch.autograd.grad(out.sum(), x)
    assert torch.isfinite(out).all(), (values, out)
    assert torch.isfinite(grad).all(), (values, grad)
    if mode == "hard":  # what Python computes, but a value that overflows counts as not taken
        if fn is safe_sqrt:
            expected = [math.sqrt(v) if v > 0 else 0.0 for v in values]
        else:
            expected = [1 / v if v != 0 and math.isfinite(1 / v) else 0.0 for v in values]
        assert torch.allclose(out, torch.tensor(expected, dtype=torch.float64), rtol=1e-12)


def test_guard_only_where_a_branch_can_fail():
    assert "guarded" not in bubble_sort.code and "blend_finite" not in bubble_sort.code
    code = relax(safe_reciprocal).code
    assert "rt.guarded(rt.div, 1, d)" in code and "rt.blend_finite(" in code


@pytest.mark.parametrize("mode", ["soft", "hard", "st"])
@pytest.mark.parametrize("name", ["running_min_from_inf", "dp_table_from_inf"])
def test_infinite_sentinels_give_finite_values_and_gradients(name, mode):
    # `best = math.inf` blended, and a DP table started at infinity under a soft min: a branch or
    # a term of probability 0 contributes nothing, whatever its value (0 * inf is not NaN).
    from programs import BY_NAME, run_python

    program = BY_NAME[name]
    x = torch.tensor(
        [[3.0, 1.0, 2.0, -0.5], [0.5, -1.0, 4.0, 4.0]], dtype=torch.float64, requires_grad=True
    )
    out = relax(program.fn, beta=5.0, mode=mode)(x)
    (grad,) = torch.autograd.grad(out.sum(), x)
    assert torch.isfinite(out).all() and torch.isfinite(grad).all(), (out, grad)
    assert grad.abs().sum() > 0
    if mode != "soft":
        expected = [run_python(program, (x.detach(),), b)[0].item() for b in range(2)]
        assert out.tolist() == expected


def dp_full_from_inf(x):
    d = torch.full((len(x) + 1,), math.inf)
    d[0] = 0.0
    for i in range(len(x)):
        d[i + 1] = min(d[i] + x[i], d[i] + 1.0)
    return d[len(x)]


@pytest.mark.parametrize("mode", ["soft", "hard", "st"])
def test_a_table_made_by_torch_full_at_infinity_is_finite(mode):
    x = torch.tensor([[3.0, -1.0, 2.0], [0.5, 4.0, 4.0]], dtype=torch.float64, requires_grad=True)
    out = relax(dp_full_from_inf, beta=5.0, mode=mode)(x)
    (grad,) = torch.autograd.grad(out.sum(), x)
    assert torch.isfinite(out).all() and torch.isfinite(grad).all(), (out, grad)
    if mode != "soft":
        assert out.tolist() == [1.0 + -1.0 + 1.0, 0.5 + 1.0 + 1.0]


def test_infinity_safe_blends_only_where_a_value_may_be_infinite():
    from programs import BY_NAME

    assert "inf" not in bubble_sort.code  # no infinite literal: the cheap blends, unchanged
    code = relax(BY_NAME["running_min_from_inf"].fn).code
    assert "rt.blend_inf(" in code
    assert "inf=True" in relax(BY_NAME["dp_table_from_inf"].fn).code


def test_an_element_compared_with_itself_is_exact_at_every_beta():
    # `x[j] < x[i]` where j == i: the same element, not a tie of two values (which is 1/2).
    from programs import BY_NAME

    module = relax(BY_NAME["smaller_counts"].fn, beta=0.1)
    assert module(torch.tensor([[5.0]])).tolist() == [[0.0]]
    two = module(torch.tensor([[1.0, 1.0]]))  # two equal values: a tie each way
    assert torch.allclose(two, torch.tensor([[0.5, 0.5]]))
    assert "same=j == i" in module.code


def where_on_relaxed(x):
    return torch.where(x > 0, x, 0.5 * x)


def floor_of_relaxed(x):
    return (x * 3.0) // 2.0


def test_torch_where_on_a_relaxed_condition_blends_and_floor_division_has_a_gradient():
    x = torch.tensor([[1.5, -2.0, 0.25]], dtype=torch.float64, requires_grad=True)
    hard = relax(where_on_relaxed, hard=True)(x)
    assert torch.equal(hard, torch.where(x > 0, x, 0.5 * x))
    soft = relax(where_on_relaxed, beta=2.0)(x)
    p = torch.sigmoid(2.0 * x)
    assert torch.allclose(soft, p * x + (1 - p) * 0.5 * x)
    floor = relax(floor_of_relaxed)(x)
    (grad,) = torch.autograd.grad(floor.sum(), x)  # torch's `//` has no derivative
    assert floor.tolist() == [[2.0, -3.0, 0.0]] and grad.abs().sum() == 0


def sort_in_body(x):
    return sorted(x)


def test_sorted_of_relaxed_values_is_refused_with_what_to_write():
    with pytest.raises(avcompile.CompileError, match="Write the sort"):
        relax(sort_in_body)

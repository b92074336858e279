"""Early exits under relaxed control (SEMANTICS 11): ``break``, ``continue`` and ``return`` that each
example takes to an extent. Hard mode against Python runs for the registry's programs in
test_hard_mode.py; here: the rule that makes a relaxed ``while``, gradients, convergence."""

import pytest
import torch
from programs import BY_NAME, as_tuple, gaps_to_python

from avcompile import relax


def _values_and_grads(fn, x, beta):
    x = x.detach().clone().requires_grad_()
    outputs = as_tuple(relax(fn, beta=beta)(x))
    weights = torch.linspace(0.5, 1.5, len(outputs), dtype=torch.float64)
    (grad,) = torch.autograd.grad(sum(w * o.sum() for w, o in zip(weights, outputs)), x)
    return outputs, grad


@pytest.mark.parametrize("beta", [0.5, 3.0, 30.0])
def test_a_while_is_while_true_with_its_test_first(beta):
    # `while c:` behaves exactly as `while True:` with `if not c: break` at the top of its body
    x = torch.randn(16, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(4)) * 3
    loop, values = _values_and_grads(BY_NAME["halve_while"].fn, x, beta)
    written_out, grads = _values_and_grads(BY_NAME["halve_test_first"].fn, x, beta)
    for a, b in zip(loop, written_out):
        torch.testing.assert_close(a, b, atol=1e-9, rtol=0)
    torch.testing.assert_close(values, grads, atol=1e-9, rtol=0)


@pytest.mark.parametrize(
    "name", ["first_positive", "halve_do_while", "guard_clauses", "sum_skipping_negatives"]
)
def test_gradcheck_through_relaxed_exits(name):
    x = torch.randn(2, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(7))
    module = relax(BY_NAME[name].fn, beta=2.0)
    assert torch.autograd.gradcheck(module, (x.requires_grad_(),), eps=1e-6, atol=1e-6)


@pytest.mark.parametrize(
    "name",
    [
        "first_positive",
        "sum_skipping_negatives",
        "guard_clauses",
        "returns_from_a_loop",
        "insertion_sort_swaps",
        "nested_breaks",
    ],
)
def test_soft_approaches_hard_as_beta_grows(name):
    gaps = gaps_to_python(BY_NAME[name], (3.0, 30.0, 3000.0), n=4, seed=6)
    assert gaps[0] > gaps[1] > gaps[2] and gaps[2] < 1e-6, gaps


def test_what_returns_early_and_what_runs_on_add_up_to_every_example():
    # a result that is the same on every path is that result, whatever the exits' masses
    def same_everywhere(x):
        for i in range(len(x)):
            if x[i] > 0:
                return 1.0
            if x[i] < -1:
                break
        return 1.0

    x = torch.randn(8, 5, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    torch.testing.assert_close(relax(same_everywhere, beta=1.5)(x), torch.ones(8).double())


def returns_by_blending(x):
    """``returns_from_a_loop`` without an exit: the first value above 0.5, blended from the last
    back, whose relaxation is the same sum over where the return happens."""
    result = -1.0
    for k in range(len(x)):
        i = len(x) - 1 - k
        if x[i] > 0.5:
            result = x[i] * 2.0
    return result


@pytest.mark.parametrize("mode", ["soft", "st"])
def test_a_return_has_the_gradient_of_the_blend_it_means(mode):
    # in straight-through mode the gradient of a return once vanished where its exact
    # probability was 0 (the weight of the value it left with carried no derivative)
    x = torch.tensor([[0.2, 0.7, 0.9], [0.6, 0.1, 0.4], [0.1, 0.2, 0.3]], dtype=torch.float64)
    grads = []
    for fn in (BY_NAME["returns_from_a_loop"].fn, returns_by_blending):
        leaf = x.clone().requires_grad_()
        out = relax(fn, beta=3.0, mode=mode, backend="torch")(leaf)
        (grad,) = torch.autograd.grad(out.sum(), leaf)
        grads.append((out, grad))
    torch.testing.assert_close(grads[0][0], grads[1][0])
    torch.testing.assert_close(grads[0][1], grads[1][1])

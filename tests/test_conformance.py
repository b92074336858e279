"""Soft conformance: every registry program compiled by ``relax`` gives AlgoVision's numbers.

For each program of ``programs.PROGRAMS`` that AlgoVision can express, the module built by
``relax(fn, beta=beta)`` and the hand-written AlgoVision ``Algorithm`` run on the same float64
batch; outputs and the gradients of a fixed random linear function of all outputs must agree
within 1e-6.
"""

import warnings

import pytest
import torch
from programs import AV_PROGRAMS, as_tuple

from avcompile import relax

TOL = 1e-6
BATCH = 4

# AlgoVision indexes with lists, which torch deprecates; that is not what these tests are about.
pytestmark = pytest.mark.filterwarnings("ignore:Using a non-tuple sequence:UserWarning")

WHILE_PROGRAMS = [
    p
    for p in AV_PROGRAMS
    if p.name in ("bubble_sort", "while_counter", "while_two_vars", "halve_until_small")
]


def _ids(program):
    return program.name


def _leaves(inputs):
    return tuple(x.detach().clone().requires_grad_(True) for x in inputs)


def _compare(program, beta, seed, n, **hyper):
    """Run both implementations on one random batch; assert equal outputs and gradients."""
    generator = torch.Generator().manual_seed(seed)
    inputs = program.random_inputs(BATCH, n, generator)

    ours_in = _leaves(inputs)
    ours = as_tuple(relax(program.fn, beta=beta, **hyper)(*ours_in))
    theirs_in = _leaves(inputs)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        theirs = program.run_algovision(theirs_in, beta, **hyper)

    assert len(ours) == len(theirs), f"{program.name}: {len(ours)} outputs, expected {len(theirs)}"
    for k, (a, b) in enumerate(zip(ours, theirs)):
        name = program.outputs[k]
        assert a.shape == b.shape, (
            f"{program.name}.{name}: shape {tuple(a.shape)} != {tuple(b.shape)}"
        )
        assert a.dtype == torch.float64, f"{program.name}.{name}: dtype {a.dtype}"
        torch.testing.assert_close(
            a, b, atol=TOL, rtol=0, msg=lambda m, where=f"{program.name}.{name}": f"{where}: {m}"
        )

    weights = [torch.randn(b.shape, generator=generator, dtype=torch.float64) for b in theirs]
    ours_grads = torch.autograd.grad(
        sum((a * w).sum() for a, w in zip(ours, weights)), ours_in, allow_unused=True
    )
    theirs_grads = torch.autograd.grad(
        sum((b * w).sum() for b, w in zip(theirs, weights)), theirs_in, allow_unused=True
    )
    for arg, x, g_ours, g_theirs in zip(program.args, inputs, ours_grads, theirs_grads):
        g_ours = torch.zeros_like(x) if g_ours is None else g_ours
        g_theirs = torch.zeros_like(x) if g_theirs is None else g_theirs
        torch.testing.assert_close(
            g_ours,
            g_theirs,
            atol=TOL,
            rtol=0,
            msg=lambda m, where=f"{program.name}: gradient w.r.t. {arg[0]}": f"{where}: {m}",
        )
    return theirs_grads


@pytest.mark.parametrize("beta", [2.0, 5.0])
@pytest.mark.parametrize("program", AV_PROGRAMS, ids=_ids)
def test_outputs_and_gradients_match_algovision(program, beta):
    for seed, n in ((0, program.n_range[1]), (1, program.n_range[0])):
        grads = _compare(program, beta, seed + int(beta) * 100, n)
        # The comparison is only meaningful if the outputs depend on the inputs at all.
        assert any(g is not None and g.abs().sum() > 0 for g in grads), program.name


@pytest.mark.parametrize("program", WHILE_PROGRAMS, ids=_ids)
def test_while_eps_and_max_iter_match_algovision(program):
    # A finer stopping threshold runs more iterations; a small max_iter cuts the loop off early
    # and puts the remaining mass on the last state. Both must follow AlgoVision.
    _compare(program, 3.0, 7, program.n_range[1], eps=1e-10)
    _compare(program, 3.0, 8, program.n_range[1], max_iter=2)


def test_registry_is_large_enough():
    names = [p.name for p in AV_PROGRAMS]
    assert len(names) >= 12 and len(set(names)) == len(names)

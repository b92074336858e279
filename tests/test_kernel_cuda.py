"""The kernel backend's CUDA target (one thread per example) equals its CPU kernels, under numba's
CUDA simulator (no GPU here): values and gradients (of every input, and of a learned ``beta``) in
float64, in soft and hard mode, on bubble sort, a relaxed ``while`` whose examples stop at
different iterations, and Levenshtein's relaxed ``if`` and soft ``min`` over a table the host
allocates; a tape too short for the run is made longer; a kernel whose arrays the host cannot
size falls back to the CPU kernels.

The simulator must be on before numba is first imported, which pytest has done by now: the checks
run in one subprocess (``python tests/test_kernel_cuda.py``, ``NUMBA_ENABLE_CUDASIM=1``) that
prints what each found as one JSON line, and each test reads its entry. The simulator runs a
thread as a Python thread: batches of 4 examples of size 5 or less.
"""

import json
import os
import subprocess
import sys
import traceback
import warnings
from pathlib import Path

import pytest
import torch

from avcompile import relax

ROOT = Path(__file__).resolve().parent.parent
TOL = dict(atol=1e-9, rtol=1e-9)
CHECKS = {}


def check(fn):
    """A check to run in the simulator's process (a test of its own here)."""
    CHECKS[fn.__name__] = fn
    return fn


# ------------------------------------------------------------------------------ the checks


def _run(module, inputs, weights, on_device):
    """The outputs of ``module`` on ``inputs`` and the gradients of their sum weighted by
    ``weights`` (of each input, and of ``beta`` where it is a tensor), on the CPU kernels or,
    ``on_device``, the CUDA kernels (forced on these CPU tensors)."""
    from avcompile.kernel import backend

    backend.FORCE_CUDA = on_device
    try:
        leaves = [x.detach().clone().requires_grad_() for x in inputs]
        out = module(*leaves)
        out = out if isinstance(out, tuple) else (out,)
        total = sum((o * w).sum() for o, w in zip(out, weights))
        wrt = leaves + ([module.beta] if isinstance(module.beta, torch.Tensor) else [])
        if not total.requires_grad:  # nothing depends on the inputs (hard mode)
            return [o.detach() for o in out], []
        grads = torch.autograd.grad(total, wrt, allow_unused=True)
        return [o.detach() for o in out], [torch.zeros(()) if g is None else g for g in grads]
    finally:
        backend.FORCE_CUDA = False


def _alone(module, inputs, weights):
    """``_run`` on the CPU kernels one example at a time (a relaxed ``while`` stopping by that
    example alone, as a CUDA thread stops it), put together."""
    runs = [
        _run(module, [x[b : b + 1] for x in inputs], [w[b : b + 1] for w in weights], False)
        for b in range(inputs[0].shape[0])
    ]
    outputs = [torch.cat(parts) for parts in zip(*(out for out, _ in runs))]
    n = len(inputs)
    grads = [torch.cat(parts) for parts in zip(*(g[:n] for _, g in runs))]
    grads += [sum(parts) for parts in zip(*(g[n:] for _, g in runs))]  # beta's: summed
    return outputs, grads


def _assert_close(found, expected, **tol):
    assert len(found) == len(expected)
    for a, b in zip(found, expected):
        torch.testing.assert_close(a, b.expand_as(a) if b.dim() == 0 else b, **tol)


def _compare(fn, inputs, **options):
    """The CUDA kernels equal the CPU kernels run one example at a time (1e-9), values and
    gradients; returns the CUDA results and the CPU kernels' on the whole batch."""
    module = relax(fn, backend="kernel", **options)
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        out = module(*inputs)
    out = out if isinstance(out, tuple) else (out,)
    weights = [torch.randn(o.shape, generator=generator, dtype=o.dtype) for o in out]
    on_device = _run(module, inputs, weights, True)
    devices = module.kernel_program().devices
    assert devices and all(d is not None for d in devices.values())  # it ran the CUDA kernels
    expected = _alone(module, inputs, weights)
    _assert_close(on_device[0], expected[0], **TOL)
    _assert_close(on_device[1], expected[1], **TOL)
    return on_device, _run(module, inputs, weights, False)


def _inputs(*shapes, low=-3.0, high=3.0, seed=0):
    generator = torch.Generator().manual_seed(seed)
    return [
        low + (high - low) * torch.rand(shape, generator=generator, dtype=torch.float64)
        for shape in shapes
    ]


@check
def bubble_sort_with_a_learned_beta():
    from src_examples.bubble_sort import bubble_sort

    beta = torch.nn.Parameter(torch.tensor(2.5, dtype=torch.float64))
    (x,) = _inputs((4, 5))
    (out, grads), (cpu_out, cpu_grads) = _compare(bubble_sort.__wrapped__, [x], beta=beta)
    assert len(grads) == 2  # the array's and beta's
    # here every example's `while` runs until `n` reaches 1 (its probability of going on stays
    # above eps), as the batch's does: per example as in the batch
    _assert_close(out, cpu_out, **TOL)
    _assert_close(grads, cpu_grads, **TOL)


@check
def bubble_sort_in_hard_mode():
    from src_examples.bubble_sort import bubble_sort

    (x,) = _inputs((4, 5), seed=1)
    (out, _), (cpu_out, _) = _compare(bubble_sort.__wrapped__, [x], mode="hard")
    _assert_close(out, cpu_out, **TOL)
    assert torch.equal(out[0], x.sort(dim=1).values)


def _while_counter():
    from programs import BY_NAME

    return BY_NAME["while_counter"].fn


@check
def a_relaxed_while_stops_per_example():
    # x from -3.5 to 6: the examples need from 0 to 9 steps up to 5. A CUDA thread stops its
    # example's loop when that example's probability of going on falls below eps; the CPU chunk
    # goes on while any example's is above it. The results equal the CPU kernel's on each
    # example alone, and differ from its whole batch's by less than eps times the values.
    x = torch.tensor([-3.5, 0.2, 4.9, 6.0], dtype=torch.float64)
    eps = 1e-5
    (out, _), (cpu_out, _) = _compare(_while_counter(), [x], beta=2.0, eps=eps)
    for a, b in zip(out, cpu_out):
        assert not torch.equal(a, b)  # the stopping differs
        torch.testing.assert_close(a, b, atol=eps * float(b.abs().max()), rtol=0)


@check
def a_relaxed_while_in_hard_mode():
    x = torch.tensor([-3.5, 0.2, 4.9, 6.0], dtype=torch.float64)
    (out, _), (cpu_out, _) = _compare(_while_counter(), [x], mode="hard")
    _assert_close(out, cpu_out, **TOL)
    steps = (5.0 - x).ceil().clamp(min=0.0)
    _assert_close(out, [steps, x + steps])


@check
def levenshtein_relaxed_if_and_soft_min_over_a_host_made_table():
    from src_examples.levenshtein import levenshtein

    a, b = (x.round() for x in _inputs((4, 4), (4, 3), low=0.0, high=2.0))  # ties matter
    (out, _), (cpu_out, _) = _compare(levenshtein.__wrapped__, [a, b], beta=4.0)
    _assert_close(out, cpu_out, **TOL)  # no relaxed while: per example, as in the batch


@check
def shortest_path_with_free_tuples_arrays_made_in_a_loop_and_whole_array_arithmetic():
    import src_examples.shortest_path as example

    # The simulator computes in Python, whose math.exp raises where a GPU's gives inf: a border
    # of 50 instead of 1e6 keeps the logistic's exponent finite (a free number, read at the call).
    far, example.FAR = example.FAR, 50.0
    try:
        cost = (_inputs((2, 3, 3), low=0.5, high=4.0, seed=4)[0]).round()
        fn = example.shortest_path.__wrapped__
        (out, grads), (cpu_out, cpu_grads) = _compare(fn, [cost], beta=2.0)
    finally:
        example.FAR = far
    _assert_close(out, cpu_out, **TOL)
    _assert_close(grads, cpu_grads, **TOL)


@check
def a_continue_under_a_relaxed_condition():
    from programs import BY_NAME

    (x,) = _inputs((4, 5), seed=6)
    fn = BY_NAME["sum_skipping_negatives"].fn
    (out, grads), (cpu_out, cpu_grads) = _compare(fn, [x], beta=2.0)
    _assert_close(out, cpu_out, **TOL)  # no relaxed while: per example, as in the batch
    _assert_close(grads, cpu_grads, **TOL)


@check
def a_loop_left_by_break_stops_per_example():
    from programs import BY_NAME

    # x from -2 to 2: `while True` with two relaxed breaks, which examples take at different
    # iterations; a CUDA thread stops its example's loop by that example's mass alone
    x = torch.linspace(-2.0, 2.0, 4, dtype=torch.float64)[:, None].repeat(1, 2)
    _compare(BY_NAME["break_in_relaxed_while"].fn, [x], beta=2.0)


@check
def a_short_tape_is_made_longer():
    from src_examples.bubble_sort import bubble_sort

    module = relax(bubble_sort.__wrapped__, beta=3.0, backend="kernel")
    (x,) = _inputs((3, 5), seed=2)
    weights = [torch.ones(3, 5, dtype=torch.float64), torch.ones(3, dtype=torch.float64)]
    expected = _run(module, [x], weights, False)
    _run(module, [x], weights, True)
    (device,) = module.kernel_program().devices.values()
    device.tape_rows = device.htape_rows = 1
    out, grads = _run(module, [x], weights, True)
    assert device.relaunches > 0 and device.tape_rows > 1
    _assert_close(out, expected[0], **TOL)
    _assert_close(grads, expected[1], **TOL)


@check
def an_arm_not_taken_reads_no_element_outside_its_array():
    # `x[i] < 0.0 if i < len(x) else 0.0` at i = len(x): both arms are computed, and the one
    # not taken once read x[len(x)] (the simulator raises IndexError; a GPU may fault)
    from programs import BY_NAME

    x = torch.tensor([[-1.0, -2.0, -0.5], [-1.0, 2.0, -3.0]], dtype=torch.float64)
    for mode in ("hard", "soft"):
        _compare(BY_NAME["leading_negatives"].fn, [x], beta=3.0, mode=mode)


def table_after_a_loop(x):
    n = 0
    for i in range(len(x)):
        n = i + 1  # its length, which the host cannot know without running the loop
    t = [0.0] * n
    for i in range(n):
        if x[i] > 0.0:
            t[i] = x[i]
    return t


@check
def an_array_the_host_cannot_size_runs_on_the_cpu_kernels():
    module = relax(table_after_a_loop, backend="kernel")
    (x,) = _inputs((3, 4), seed=3)
    weights = [torch.ones(3, 4, dtype=torch.float64)]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        out, grads = _run(module, [x], weights, True)
    (warning,) = [w for w in caught if "CUDA target" in str(w.message)]
    assert "array `t`" in str(warning.message), warning.message
    assert list(module.kernel_program().devices.values()) == [None]
    expected = _run(module, [x], weights, False)
    _assert_close(out, expected[0], **TOL)
    _assert_close(grads, expected[1], **TOL)


@check
def a_loop_cut_off_at_max_iter_warns():
    from avcompile.runtime import MaxIterWarning

    module = relax(_while_counter(), max_iter=2, backend="kernel")
    x = torch.tensor([-3.0, 4.5], dtype=torch.float64)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        _run(module, [x], [torch.ones(2, dtype=torch.float64)] * 2, True)
    assert any(issubclass(w.category, MaxIterWarning) for w in caught)


# ------------------------------------------------------------------------------ the tests


@pytest.fixture(scope="module")
def simulated():
    """What each check found in the simulator's process: None, or its traceback."""
    env = dict(os.environ, NUMBA_ENABLE_CUDASIM="1")
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    run = subprocess.run(
        [sys.executable, __file__], env=env, cwd=ROOT, capture_output=True, text=True, timeout=600
    )
    assert run.returncode == 0, run.stdout + run.stderr
    return json.loads(run.stdout.splitlines()[-1])


@pytest.mark.parametrize("name", list(CHECKS))
def test_cuda_target_under_the_simulator(simulated, name):
    assert simulated[name] is None, simulated[name]


def _simulate():
    """Run every check (in this process, which has the simulator on); print a JSON line of
    what each found."""
    from numba import config

    assert config.ENABLE_CUDASIM, "NUMBA_ENABLE_CUDASIM=1 must be set before numba is imported"
    found = {}
    for name, fn in CHECKS.items():
        try:
            fn()
            found[name] = None
        except Exception:
            found[name] = traceback.format_exc()
    print(json.dumps(found))


if __name__ == "__main__":
    _simulate()

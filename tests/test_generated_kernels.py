"""Random programs (tests/program_generator.py) on the kernel backend: where a program lies in the
kernel's subset, the kernel computes what the torch backend computes (SEMANTICS 12), values and
gradients, in soft and hard mode.

Each kernel is compiled by numba (about a second each), so CI runs few examples
(``max_examples=30``); set ``AVCOMPILE_GENERATED_KERNELS`` (e.g. ``=300``) to run more.
"""

import os

import pytest
import torch
from hypothesis import event, given, note
from hypothesis import strategies as st
from program_generator import load, programs
from test_generated_programs import CI_FEATURES, derandomized, draw_inputs

from avcompile import CompileError, relax

EXAMPLES = int(os.environ.get("AVCOMPILE_GENERATED_KERNELS", "30"))
TOL = dict(rtol=1e-9, atol=1e-9)


def outputs_and_grads(module, inputs):
    leaves = [x.clone().requires_grad_() for x in inputs]
    out = module(*leaves)
    out = out if isinstance(out, tuple) else (out,)
    out = [o for o in out if isinstance(o, torch.Tensor)]
    weights = [torch.linspace(0.5, 1.5, o.numel(), dtype=o.dtype).reshape(o.shape) for o in out]
    terms = [(o * w)[torch.isfinite(o)].sum() for o, w in zip(out, weights) if o.requires_grad]
    grads = [None] * len(leaves)
    if terms:
        grads = torch.autograd.grad(sum(terms), leaves, allow_unused=True)
    return [o.detach() for o in out], grads


def same(a, b):
    if a is None or b is None:
        a = torch.zeros(()) if a is None else a
        b = torch.zeros(()) if b is None else b
    a, b = torch.broadcast_tensors(a.to(torch.float64), b.to(torch.float64))
    both_nan = torch.isnan(a) & torch.isnan(b)
    equal_inf = torch.isinf(a) & (a == b)
    close = torch.isclose(a, b, **TOL) | both_nan | equal_inf
    return bool(close.all())


@pytest.fixture(scope="module")
def directory(tmp_path_factory):
    return tmp_path_factory.mktemp("generated_kernels")


@derandomized(EXAMPLES)
@given(data=st.data())
def test_generated_program_on_the_kernel(directory, data):
    program = data.draw(programs(CI_FEATURES), label="program")
    note(f"program:\n{program.source}")
    fn = load(program, directory).f
    try:
        relax(fn, backend="kernel")
    except CompileError:
        event("outside the kernel's subset (or not compiled)")
        return
    event("in the kernel's subset")
    inputs = draw_inputs(data, program)
    note(f"inputs: {[x.tolist() for x in inputs]}")
    for mode in ("hard", "soft"):
        reference = relax(fn, beta=5.0, mode=mode)
        kernel = relax(fn, beta=5.0, mode=mode, backend="kernel")
        try:
            want = outputs_and_grads(reference, inputs)
        except (ValueError, TypeError, IndexError, RuntimeError) as err:
            note(f"the torch backend raises {err!r}")
            return
        try:
            got = outputs_and_grads(kernel, inputs)
        except TypeError as err:  # outside the kernel for these shapes: said, not wrong
            assert "backend='kernel' cannot run" in str(err)
            return
        for k, (a, b) in enumerate(zip(want[0], got[0])):
            assert same(a, b), f"{mode} output {k}: torch {a.tolist()} kernel {b.tolist()}"
        for k, (a, b) in enumerate(zip(want[1], got[1])):
            finite = a is None or torch.isfinite(a).all()
            assert not finite or same(a, b), f"{mode} gradient {k}: torch {a} kernel {b}"

"""Hard mode is Python: ``relax(fn, hard=True)`` computes, per example, what ``fn`` computes.

A hypothesis property over every registry program: random small batches whose values often repeat
(ties, duplicates, values on a branch's boundary), compared exactly with the undecorated function
run by CPython on each example as Python floats and lists.
"""

import functools

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from programs import BY_NAME, PROGRAMS, as_tuple, run_python

from avcompile import relax


@functools.cache
def _hard_module(name):
    return relax(BY_NAME[name].fn, hard=True)


def _draw_inputs(data, program):
    batch = data.draw(st.integers(1, 3), label="batch")
    n = data.draw(st.integers(*program.n_range), label="n")
    value = st.one_of(
        st.sampled_from(program.tie_pool),
        st.floats(program.low, program.high, allow_nan=False, allow_infinity=False),
    )
    inputs = []
    for (name, _), shape in zip(program.args, program.shapes(n)):
        size = batch * int(torch.Size(shape).numel())
        values = data.draw(st.lists(value, min_size=size, max_size=size), label=name)
        inputs.append(torch.tensor(values, dtype=torch.float64).reshape(batch, *shape))
    return tuple(inputs)


@pytest.mark.parametrize("program", PROGRAMS, ids=lambda p: p.name)
@settings(
    max_examples=30,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(data=st.data())
def test_hard_module_equals_python_on_every_example(program, data):
    inputs = _draw_inputs(data, program)
    before = tuple(x.clone() for x in inputs)
    outputs = as_tuple(_hard_module(program.name)(*inputs))

    for x, y in zip(inputs, before):
        assert torch.equal(x, y), f"{program.name} changed its input in place"
    batch = inputs[0].shape[0]
    for b in range(batch):
        expected = run_python(program, inputs, b)
        assert len(outputs) == len(expected), (program.name, len(outputs), len(expected))
        for name, got, want in zip(program.outputs, outputs, expected):
            assert got.shape == (batch, *want.shape), (program.name, name, got.shape)
            same = (
                torch.equal(got[b].double(), want)
                if program.exact
                else torch.allclose(got[b].double(), want, rtol=1e-12, atol=1e-12)
            )
            assert same, (
                f"{program.name}.{name} example {b}: module {got[b].tolist()} "
                f"!= python {want.tolist()} on inputs {[x[b].tolist() for x in inputs]}"
            )


def test_hard_mode_differs_from_soft_mode():
    # Guard against a vacuous property: at a low beta the soft module is not Python.
    program = BY_NAME["bubble_sort"]
    x = torch.tensor([[3.0, 1.0, 2.0]], dtype=torch.float64)
    hard_array, hard_loss = relax(program.fn, hard=True)(x)
    soft_array, soft_loss = relax(program.fn, beta=1.0)(x)
    assert hard_array.tolist() == [[1.0, 2.0, 3.0]] and hard_loss.tolist() == [2.0]
    assert not torch.equal(soft_array, hard_array)
    assert not torch.equal(soft_loss, hard_loss)

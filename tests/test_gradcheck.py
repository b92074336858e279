"""Gradient checks: relaxed modules' analytic gradients match finite differences (float64)."""

import pytest
import torch
from programs import BY_NAME

from avcompile import relax

BETA = 2.0


@pytest.mark.parametrize("name", ["bubble_sort", "running_max", "while_counter"])
def test_gradcheck(name):
    program = BY_NAME[name]
    generator = torch.Generator().manual_seed(11)
    inputs = tuple(
        x.requires_grad_(True)
        for x in program.separated_inputs(2, 4, 0.25, generator, dtype=torch.float64)
    )
    module = relax(program.fn, beta=BETA)
    assert torch.autograd.gradcheck(module, inputs, eps=1e-6, atol=1e-6, rtol=1e-5)

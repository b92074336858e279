"""Convergence: as beta grows the relaxed result approaches the hard (plain Python) one.

On fixed inputs whose values are well separated (no comparison near a tie), the largest distance
between the soft module's outputs and Python's must shrink strictly as beta goes 10 -> 100 -> 1000.
"""

import pytest
import torch
from programs import BY_NAME, as_tuple, run_python

from avcompile import relax

BETAS = (10.0, 100.0, 1000.0)


def _t(values):
    return torch.tensor(values, dtype=torch.float64)


# Fixed inputs, two examples each. Every comparison the program makes is at least 0.05 away from
# a tie (and from a branch boundary), but some are that close, so that beta matters at 10 and 100.
UNSORTED = _t([[0.30, 0.10, 0.25, 0.05, 0.20], [-1.0, 2.0, 1.95, 0.5, -0.9]])
FIXED_INPUTS = {
    "bubble_sort": (UNSORTED,),
    "odd_even_sort": (UNSORTED,),
    "running_max": (_t([[0.10, 0.30, 0.25, 0.50, 0.45], [2.0, 1.0, 1.95, -3.0, 0.0]]),),
    "soft_min3": (_t([0.10, 1.00]), _t([0.15, 0.90]), _t([0.30, 0.95])),
    "while_counter": (_t([4.90, 2.95]),),
    "sum_positive": (_t([[0.05, -0.10, 0.20, -0.05], [1.0, -2.0, 0.1, 3.0]]),),
    "piecewise": (_t([-1.05, 0.95]),),
    "count_matches": (_t([[0.0, 0.1, 0.3, 0.05], [1.0, 1.0, 0.9, 2.0]]), _t([0.1, 1.0])),
    "leading_negatives": (_t([[-0.5, -0.1, 0.3, -1.0], [-2.0, -0.2, -0.3, -0.4]]),),
    "steps_to_halve": (_t([[1.5, 0.0], [-2.6, 1.0]]),),
}


def _distance(program, module, inputs):
    outputs = as_tuple(module(*inputs))
    worst = 0.0
    for b in range(inputs[0].shape[0]):
        for got, want in zip(outputs, run_python(program, inputs, b)):
            worst = max(worst, (got[b] - want).abs().max().item())
    return worst


@pytest.mark.parametrize("name", sorted(FIXED_INPUTS))
def test_soft_result_approaches_hard_result(name):
    program = BY_NAME[name]
    inputs = FIXED_INPUTS[name]
    distances = [_distance(program, relax(program.fn, beta=beta), inputs) for beta in BETAS]
    assert distances[0] > distances[1] > distances[2], (name, distances)
    assert distances[2] < 1e-3, (name, distances)


def test_beta_attribute_takes_effect_without_recompiling():
    # SEMANTICS section 9: `beta` is an attribute of the module; the same convergence through it.
    program = BY_NAME["bubble_sort"]
    inputs = FIXED_INPUTS["bubble_sort"]
    module = relax(program.fn, beta=BETAS[0])
    distances = []
    for beta in BETAS:
        module.beta = beta
        distances.append(_distance(program, module, inputs))
    assert distances[0] > distances[1] > distances[2], distances

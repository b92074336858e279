"""Schedules for annealing ``beta`` during training: set ``module.beta`` before each step.

schedule = geometric(1.0, 64.0, steps=1000)
for step in range(1000):
    sort.beta = schedule(step)          # takes effect at the next call; nothing recompiles
    loss = sort(scores)[1].mean()
"""

import math

__all__ = ["geometric", "linear"]


def geometric(start, end, steps):
    """``beta`` from ``start`` to ``end`` in ``steps`` steps by a constant factor (then ``end``)."""
    if start <= 0 or end <= 0 or steps < 1:
        raise ValueError("geometric() needs positive start and end and at least one step")
    ratio = math.log(end / start) / max(steps - 1, 1)
    return lambda step: start * math.exp(ratio * min(max(step, 0), steps - 1))


def linear(start, end, steps):
    """``beta`` from ``start`` to ``end`` in ``steps`` equal increments (then ``end``)."""
    if steps < 1:
        raise ValueError("linear() needs at least one step")
    delta = (end - start) / max(steps - 1, 1)
    return lambda step: start + delta * min(max(step, 0), steps - 1)

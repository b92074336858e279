"""Schedules for annealing ``beta`` during training: set ``module.beta`` before each step.

Example::

    schedule = geometric(1.0, 64.0, steps=1000)
    for step in range(1000):
        sort.beta = schedule(step)          # takes effect at the next call; nothing recompiles
        loss = sort(scores)[1].mean()
"""

import math

__all__ = ["geometric", "linear"]


def geometric(start, end, steps):
    """``beta`` from ``start`` to ``end`` in ``steps`` steps by a constant factor (then ``end``).

    Example::

        >>> beta = avcompile.schedule.geometric(1.0, 8.0, steps=4)
        >>> [round(beta(step), 6) for step in range(5)]
        [1.0, 2.0, 4.0, 8.0, 8.0]
    """
    if start <= 0 or end <= 0 or steps < 1:
        raise ValueError("geometric() needs positive start and end and at least one step")
    ratio = math.log(end / start) / max(steps - 1, 1)
    return lambda step: start * math.exp(ratio * min(max(step, 0), steps - 1))


def linear(start, end, steps):
    """``beta`` from ``start`` to ``end`` in ``steps`` equal increments (then ``end``).

    Example::

        >>> beta = avcompile.schedule.linear(1.0, 4.0, steps=4)
        >>> [beta(step) for step in range(5)]
        [1.0, 2.0, 3.0, 4.0, 4.0]
    """
    if steps < 1:
        raise ValueError("linear() needs at least one step")
    delta = (end - start) / max(steps - 1, 1)
    return lambda step: start + delta * min(max(step, 0), steps - 1)

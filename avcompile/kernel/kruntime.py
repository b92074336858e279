"""What generated kernels call: the relaxations of comparisons and their slopes, per example.

Each function takes and returns scalars of one example and is compiled inline into the kernel
that calls it. A comparison ``a OP b`` of the relaxed kind is ``G(x)`` with
``x = sign * beta * (a - b)``: ``G`` the family's CDF for ``< <= > >=`` (``sign`` -1 for ``<``),
its density scaled to peak 1 for ``==`` and one minus it for ``!=`` (SEMANTICS 3), exactly as
``runtime.cdf`` and ``runtime.density`` compute them for the torch backend.
"""

import math

import numba
import numpy as np

# Distribution families, in the order of ``runtime.DISTRIBUTIONS``.
LOGISTIC, CAUCHY, GAUSSIAN, RECIPROCAL, OPTIMAL = range(5)
# Modes, in the order of ``runtime.MODES``.
SOFT, HARD, ST = range(3)
# What a comparison relaxes into.
CDF, DENSITY, NOT_DENSITY = range(3)
# Comparison operators, for their exact values.
GT, GE, LT, LE, EQ, NE = range(6)

_inline = numba.njit(inline="always", cache=True, error_model="numpy")


@_inline
def cdf(x, dist):
    if dist == LOGISTIC:  # exp(-x) overflows to inf for x << 0, which gives 0, not NaN
        return 1.0 / (1.0 + math.exp(-x))
    if dist == CAUCHY:
        return math.atan(x) / math.pi + 0.5
    if dist == GAUSSIAN:
        return 0.5 * math.erfc(-x / math.sqrt(2.0))
    if dist == RECIPROCAL:
        x = min(max(x, -1e30), 1e30)
        return 0.5 * (x / (2.0 + abs(x)) + 1.0)
    if x > 0.25:
        return 1.0 - 1.0 / (16.0 * abs(x))
    if x < -0.25:
        return 1.0 / (16.0 * abs(x))
    return x + 0.5


@_inline
def cdf_slope(x, dist):
    if dist == LOGISTIC:
        s = cdf(x, dist)
        return s * (1.0 - s)
    if dist == CAUCHY:
        return 1.0 / (math.pi * (1.0 + x * x))
    if dist == GAUSSIAN:
        return math.exp(-0.5 * x * x) / math.sqrt(2.0 * math.pi)
    if dist == RECIPROCAL:
        if abs(x) > 1e30:
            return 0.0
        d = 2.0 + abs(x)
        return 1.0 / (d * d)
    if abs(x) <= 0.25:
        return 1.0
    return 1.0 / (16.0 * x * x)


@_inline
def density(x, dist):
    if dist == LOGISTIC:
        e = math.exp(-abs(x))
        return 4.0 * e / ((1.0 + e) * (1.0 + e))
    if dist == CAUCHY:
        return 1.0 / (1.0 + x * x)
    if dist == GAUSSIAN:
        return math.exp(-0.5 * x * x)
    if dist == RECIPROCAL:
        d = 2.0 + abs(x)
        return 4.0 / (d * d)
    if abs(x) <= 0.25:
        return 1.0
    return 1.0 / (16.0 * x * x)


@_inline
def density_slope(x, dist):
    sign = 1.0 if x > 0.0 else (-1.0 if x < 0.0 else 0.0)
    if dist == LOGISTIC:
        e = math.exp(-abs(x))
        return -density(x, dist) * sign * (1.0 - e) / (1.0 + e)
    if dist == CAUCHY:
        d = 1.0 + x * x
        return -2.0 * x / (d * d)
    if dist == GAUSSIAN:
        return -x * math.exp(-0.5 * x * x)
    if dist == RECIPROCAL:
        d = 2.0 + abs(x)
        return -8.0 * sign / (d * d * d)
    if abs(x) <= 0.25:
        return 0.0
    return -1.0 / (8.0 * x * x * x)


@_inline
def relaxed(kind, x, dist):
    """``G(x)``: the relaxed value of a comparison."""
    if kind == CDF:
        return cdf(x, dist)
    if kind == DENSITY:
        return density(x, dist)
    return 1.0 - density(x, dist)


@_inline
def relaxed_slope(kind, x, dist):
    """``G'(x)``."""
    if kind == CDF:
        return cdf_slope(x, dist)
    if kind == DENSITY:
        return density_slope(x, dist)
    return -density_slope(x, dist)


@_inline
def exact(op, a, b):
    """Python's comparison as 1.0 or 0.0."""
    if op == GT:
        r = a > b
    elif op == GE:
        r = a >= b
    elif op == LT:
        r = a < b
    elif op == LE:
        r = a <= b
    elif op == EQ:
        r = a == b
    else:
        r = a != b
    return 1.0 if r else 0.0


@_inline
def blend(p, then, orelse):
    """``p * then + (1 - p) * orelse``, as ``torch.lerp(orelse, then, p)`` computes it."""
    return orelse + p * (then - orelse) if p < 0.5 else then - (then - orelse) * (1.0 - p)


@numba.njit(cache=True)
def bmax(values):
    """The largest value over the chunk (a relaxed ``while`` goes on while it exceeds eps)."""
    return values.max()


@numba.njit(cache=True)
def bexcess(alive, entry, eps):
    """The largest excess over the chunk of the mass still running over ``eps`` times what
    entered (a loop that examples leave goes on while it is positive)."""
    return (alive - eps * entry).max()


@numba.njit(cache=True)
def grow(tape):
    """The tape, twice as long, its values kept."""
    bigger = np.empty((2 * tape.shape[0],) + tape.shape[1:], tape.dtype)
    bigger[: tape.shape[0]] = tape
    return bigger

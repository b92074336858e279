"""avcompile: plain Python algorithms compiled into relaxed, differentiable torch modules."""

from . import schedule
from .api import relax, to_code, to_source
from .errors import CompileError
from .inline import batched
from .ops import argmax, argmin, eq, ge, gt, le, lt, ne, probs, softmax, softmin

__version__ = "0.1.0"  # the one place of the version: pyproject.toml reads it
__all__ = [
    "CompileError",
    "argmax",
    "argmin",
    "batched",
    "eq",
    "ge",
    "gt",
    "le",
    "lt",
    "ne",
    "probs",
    "relax",
    "schedule",
    "softmax",
    "softmin",
    "to_code",
    "to_source",
]

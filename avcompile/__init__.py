"""avcompile: plain Python algorithms compiled into relaxed, differentiable torch modules."""

from .api import relax, to_code, to_source
from .errors import CompileError

__version__ = "0.1.0"
__all__ = ["CompileError", "relax", "to_code", "to_source"]

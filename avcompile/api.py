"""``relax``: the compiler's pipeline in one function, and the loading of generated modules."""

import ast
import functools
import os
import linecache

import torch

from . import runtime
from .check import check
from .emit import emit
from .kinds import analyse
from .lower import lower
from .optimize import optimize
from .parse import parse


def compile_ir(fn, static=()):
    """Parse, check, analyse and lower ``fn``: its relaxed IR (what ``show --ir`` prints)."""
    node, source = parse(fn)
    check(node, source)
    kinds = analyse(node, source, fn, static)
    return optimize(lower(node, source, kinds)), node, source


def to_source(fn, static=()):
    """The Python source of the module that ``relax`` generates for ``fn``."""
    fn_ir, node, source = compile_ir(fn, static)
    user_names = {n.id for n in ast.walk(node) if isinstance(n, ast.Name)}
    return emit(fn_ir, user_names, f"{os.path.basename(source.filename)}:{node.lineno}")


def load(source, name, key):
    """Execute generated ``source`` under the file name ``key`` (registered with linecache, so
    tracebacks and ``inspect`` show it) and return the class it defines."""
    linecache.cache[key] = (len(source), None, source.splitlines(True), key)
    namespace = {"__name__": f"avcompile.generated.{name}"}
    exec(compile(source, key, "exec"), namespace)
    return namespace[name]


def relax(fn=None, *, beta=10.0, max_iter=1024, eps=1e-5, hard=False, static=()):
    """Compile a plain Python function, written for one example, into a relaxed ``nn.Module``.

    Comparisons on per-example tensors become probabilities, both branches of a relaxed ``if``
    run and are blended, a relaxed ``while`` is the expectation over when it stops. Calling the
    module with batched tensors runs the function on every example at once.

    Example::

        @relax(beta=5)
        def running_max(x):
            m = x[0]
            for i in range(1, len(x)):
                if x[i] > m:
                    m = x[i]
            return m

        running_max(torch.randn(100, 8))   # shape [100]

    ``beta`` (inverse temperature), ``max_iter`` and ``eps`` (of relaxed ``while`` loops) and
    ``hard`` (exact comparisons) are attributes of the module and may be changed between calls.
    Parameters named in ``static`` or annotated ``int``/``float``/``bool``/``str`` are hard.
    """
    if fn is None:
        return functools.partial(relax, beta=beta, max_iter=max_iter, eps=eps, hard=hard,
                                 static=static)
    if isinstance(fn, runtime.RelaxedModule):
        fn = fn.__wrapped__
    if not callable(fn) or not hasattr(fn, "__code__"):
        raise TypeError(f"relax() takes a Python function, not {type(fn).__name__}")
    static = tuple(static)
    source = to_source(fn, static)
    cls = load(source, fn.__name__, f"<avcompile {fn.__qualname__}>")
    if fn.__defaults__ or fn.__kwdefaults__:
        forward = cls.forward
        code = fn.__code__
        n_args = code.co_argcount
        names = code.co_varnames[:n_args]
        # The generated forward takes every parameter positionally; keep the user's defaults.
        defaults = dict(zip(names[n_args - len(fn.__defaults__ or ()):], fn.__defaults__ or ()))
        defaults.update(fn.__kwdefaults__ or {})
        cls.forward = _with_defaults(forward, code, defaults)
    return cls(fn, beta=beta, max_iter=max_iter, eps=eps, hard=hard, static=static, code=source)


def build_module(fn_ir, *, free, user_names=(), beta=10.0, max_iter=1024, eps=1e-5, hard=False,
                 filename="<ir>"):
    """Emit, load and instantiate the module of an IR function built without Python source (the
    DSL does this); ``free`` maps each of ``fn_ir.free`` to its value."""
    source = emit(optimize(fn_ir), set(user_names), filename)
    cls = load(source, fn_ir.name, f"<avcompile {fn_ir.name}>")
    return cls(None, beta=beta, max_iter=max_iter, eps=eps, hard=hard, code=source, free=free)


def _with_defaults(forward, code, defaults):
    names = code.co_varnames[:code.co_argcount + code.co_kwonlyargcount]

    @functools.wraps(forward)
    def call(self, *args, **kwargs):
        bound = dict(zip(names, args))
        bound.update(kwargs)
        for name, value in defaults.items():
            bound.setdefault(name, value)
        return forward(self, **bound)

    return call


__all__ = ["relax", "to_source", "compile_ir", "torch"]

"""``relax``: the compiler's pipeline in one function, and the loading of generated modules."""

from __future__ import annotations

import ast
import contextlib
import functools
import importlib
import inspect
import itertools
import linecache
import os
import re
import sys
import types
from typing import Any, Callable, Iterable, overload

import torch

from . import runtime
from .check import check
from .emit import breaks_graph_in_loop, emit
from .errors import CompileError, Position
from .ir import RELAXED
from .module import (
    RelaxedModule,
    checked_beta,
    checked_eps,
    checked_max_iter,
    wrap_forward,
)
from .parse import parse
from .passes import run_passes
from .passes.ranks import example_ranks
from .translate import translate


def compile_ir(fn: Callable[..., Any], static: Iterable[str] = ()) -> tuple[Any, ast.AST, Any]:
    """Parse, check and translate ``fn``, then run the passes: its relaxed IR (``show --ir``)."""
    node, source = parse(fn)
    check(node, source)
    return run_passes(translate(node, source, fn, static)), node, source


def to_source(fn: Callable[..., Any], static: Iterable[str] = ()) -> str:
    """The Python source of the module that ``relax`` generates for ``fn``.

    Example::

        print(avcompile.to_source(bubble_sort.__wrapped__))   # the plain function's module
    """
    return _compile(fn, static)[1].source


def _compile(fn, static):
    """``fn``'s relaxed IR, what ``emit`` made of it (source and line map) and its file name."""
    fn_ir, node, source = compile_ir(fn, static)
    user_names = {n.id for n in ast.walk(node) if isinstance(n, ast.Name)}
    emitted = emit(fn_ir, user_names, f"{os.path.basename(source.filename)}:{node.lineno}")
    return fn_ir, emitted, source.filename


_loaded = itertools.count()  # numbers the generated modules, so that their names are unique


def load(source, name, key, signature=None, traced=True):
    """Execute generated ``source`` under the file name ``key`` (registered with linecache, so
    tracebacks and ``inspect`` show it) and return the class it defines, whose ``forward`` takes
    the arguments of ``signature`` (the user's function's: its defaults, and what ``help`` and
    ``inspect.signature`` show) and which torch.compile compiles if ``traced``."""
    linecache.cache[key] = (len(source), None, source.splitlines(True), key)
    # A real module in sys.modules: torch.compile finds a function's globals through it.
    module = types.ModuleType(f"avcompile.generated.{name}_{next(_loaded)}")
    sys.modules[module.__name__] = module
    exec(compile(source, key, "exec"), module.__dict__)
    cls = module.__dict__[name]
    cls.forward = wrap_forward(cls.forward, signature, traced)
    return cls


_collected = None  # while `collect_errors` is active: the list compile errors go to


@contextlib.contextmanager
def collect_errors():
    """Within this block ``relax`` records compile errors and returns the function unchanged,
    so that every relaxed function of a module can be checked in one import; each recorded
    error's ``function`` is the function it was raised for."""
    global _collected
    previous, _collected = _collected, []
    try:
        yield _collected
    finally:
        _collected = previous


@overload
def relax(
    fn: Callable[..., Any] | RelaxedModule,
    *,
    beta: float | torch.Tensor = ...,
    max_iter: int = ...,
    eps: float = ...,
    hard: bool = ...,
    mode: str | None = ...,
    dist: str = ...,
    static: Iterable[str] = ...,
    backend: str = ...,
) -> RelaxedModule: ...


@overload
def relax(
    fn: None = None,
    *,
    beta: float | torch.Tensor = ...,
    max_iter: int = ...,
    eps: float = ...,
    hard: bool = ...,
    mode: str | None = ...,
    dist: str = ...,
    static: Iterable[str] = ...,
    backend: str = ...,
) -> Callable[[Callable[..., Any]], RelaxedModule]: ...


def relax(
    fn: Callable[..., Any] | RelaxedModule | None = None,
    *,
    beta: float | torch.Tensor = 10.0,
    max_iter: int = 1024,
    eps: float = 1e-5,
    hard: bool = False,
    mode: str | None = None,
    dist: str = "logistic",
    static: Iterable[str] = (),
    backend: str = "torch",
) -> Any:
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

    ``beta`` (inverse temperature: a float, a tensor, or an ``nn.Parameter`` to learn it),
    ``max_iter`` and ``eps`` (of relaxed ``while`` loops), ``mode`` ('soft'; 'hard' for exact
    comparisons, of which ``hard=True`` is an alias; 'st' for straight-through: the hard values
    forward and the soft gradients backward) and ``dist`` (the distribution family of
    comparisons: 'logistic', 'cauchy', 'gaussian', 'reciprocal' or 'optimal') are attributes of
    the module and may be changed between calls. Parameters named in ``static`` or annotated
    ``int``/``float``/``bool``/``str`` are hard. ``backend`` is 'torch' (batched tensor code),
    'kernel' (one compiled forward and generated adjoint per chunk of examples, through numba;
    a program outside its subset is a ``CompileError``) or 'auto' (the kernel where the program
    lies in its subset, else torch; ``print(module)`` says which and why), an attribute too.
    A ``beta``, ``max_iter`` or ``eps`` that cannot be one (``beta=0``, say) is an error here.

    The module is a ``torch.nn.Module``: ``torch.compile(module)`` compiles it once for every
    ``beta`` and batch size; ``help(module)`` and ``inspect.signature(module)`` show the function.
    """
    checked_beta(beta)
    checked_max_iter(max_iter)
    checked_eps(eps)
    options = dict(
        beta=beta, max_iter=max_iter, eps=eps, hard=hard, mode=mode, dist=dist, backend=backend
    )
    if fn is None:
        return functools.partial(relax, static=static, **options)
    if isinstance(fn, RelaxedModule):  # recompile its function; its hard parameters stay
        static = static or fn.static
        fn = fn.__wrapped__
    if not callable(fn) or not hasattr(fn, "__code__"):
        raise TypeError(f"relax() takes a Python function, not {type(fn).__name__}")
    static = tuple(static)
    try:
        fn_ir, emitted, filename = _compile(fn, static)
    except CompileError as err:
        return _failed(fn, err)
    cls = load(
        emitted.source,
        fn.__name__,
        f"<avcompile {fn.__qualname__}>",
        inspect.signature(fn),
        traced=not breaks_graph_in_loop(fn_ir),
    )
    module = cls(
        fn,
        static=static,
        code=emitted.source,
        line_map=emitted.line_map,
        rebuild=_relaxed_by_name,
        **options,
    )
    _describe(module, fn_ir, filename)
    if backend == "kernel" and module.kernel_program() is None:
        return _failed(
            fn,
            CompileError(
                f"backend='kernel': {module.kernel_reason}, which the kernel backend does not "
                f"compile; use backend='auto' to run such programs on the torch backend.",
                fn_ir.source,
                Position.of_line(fn_ir.source, _reason_line(module.kernel_reason)),
            ),
        )
    return module


def _failed(fn, err):
    """Raise ``err``; within ``collect_errors``, record it as ``fn``'s and return ``fn``."""
    if _collected is None:
        raise err
    err.function = fn
    _collected.append(err)
    return fn


def _reason_line(reason):
    match = re.search(r"\(line (\d+)\)$", reason or "")
    return int(match.group(1)) if match else 1


def _relaxed_by_name(module, qualname, static):
    """Unpickle a relaxed module: compile its function, found by name, again (its settings and
    a learned beta come back with the pickled state)."""
    fn = importlib.import_module(module)
    for part in qualname.split("."):
        fn = getattr(fn, part)
    return relax(getattr(fn, "__wrapped__", fn), static=static)


def build_module(
    fn_ir, *, free, user_names=(), beta=10.0, max_iter=1024, eps=1e-5, hard=False, filename="<ir>"
):
    """Emit, load and instantiate the module of an IR function built without Python source (the
    DSL does this); ``free`` maps each of ``fn_ir.free`` to its value."""
    fn_ir = run_passes(fn_ir)
    emitted = emit(fn_ir, set(user_names), filename)
    params = [
        inspect.Parameter(p.id, inspect.Parameter.POSITIONAL_OR_KEYWORD) for p in fn_ir.params
    ]
    cls = load(
        emitted.source,
        fn_ir.name,
        f"<avcompile {fn_ir.name}>",
        inspect.Signature(params),
        traced=not breaks_graph_in_loop(fn_ir),
    )
    module = cls(
        None,
        beta=beta,
        max_iter=max_iter,
        eps=eps,
        hard=hard,
        code=emitted.source,
        line_map=emitted.line_map,
        free=free,
    )
    _describe(module, fn_ir, None)
    return module


def _describe(module, fn_ir, user_file):
    """Tell ``module`` what it says of the user's function and what it checks of its arguments;
    tell the runtime which user line each generated line comes from (for its warnings)."""
    module.describe(fn_ir, user_file)
    if user_file is not None:
        key = inspect.unwrap(type(module).forward).__code__.co_filename
        runtime.LINE_MAPS[key] = (os.path.basename(user_file), dict(module.line_map))
    relaxed = [p.id for p in fn_ir.params if p.kind == RELAXED]
    module.expect([p.id for p in fn_ir.params], relaxed, example_ranks(fn_ir))


def to_code(obj: Callable[..., Any] | RelaxedModule, **options: Any) -> str:
    """The generated source of a relaxed module, or of a plain function compiled by ``relax``
    with ``options``: what ``avcompile show`` prints below its comment of hyperparameters.

    Example::

        print(avcompile.to_code(bubble_sort))                # a relaxed module
        print(avcompile.to_code(top_k_fn, static=("k",)))    # a plain function, k hard
    """
    if isinstance(obj, RelaxedModule):
        if options.get("static") and hasattr(obj, "__wrapped__"):
            return to_source(obj.__wrapped__, tuple(options["static"]))
        return obj.code
    return to_source(obj, tuple(options.get("static", ())))

"""The base class of generated modules: hyperparameters, free names, printing, copying and pickling, and errors mapped to the user's lines."""

from __future__ import annotations

import builtins
import copy
import functools
import inspect
import linecache
import numbers
import textwrap
import types
import warnings
from typing import Any, Callable, NoReturn

import torch

from .runtime import DISTRIBUTIONS, MODES, Relaxation, mark_batch_dynamic

__all__ = ["RelaxedModule", "wrap_forward", "checked_beta", "checked_max_iter", "checked_eps"]


def checked_beta(value: Any) -> float | torch.Tensor:
    """``value`` if it can be ``beta``, the inverse temperature of relaxed comparisons: a positive
    number (``math.inf`` makes them exact), or a tensor of positive values (an ``nn.Parameter``
    to learn it). Anything else is a ``TypeError`` or ``ValueError`` that names ``beta``.

    Example::

        checked_beta(5)      # 5
        checked_beta(0.0)    # ValueError: beta must be positive ...
    """
    if isinstance(value, torch.Tensor):
        if value.is_complex() or value.dtype == torch.bool:
            raise TypeError(f"beta must be a real tensor, not one of dtype {value.dtype}")
        if value.device.type != "meta" and not bool((value.detach() > 0).all()):
            raise ValueError(
                "beta must be positive (it is the inverse temperature of relaxed comparisons: "
                f"large is sharp, small is soft); the tensor given holds {value.detach().min()}"
            )
        return value
    if not _is_number(value):
        raise TypeError(
            f"beta must be a positive number or a tensor, not {type(value).__name__} ({value!r})"
        )
    if not float(value) > 0:  # NaN too
        raise ValueError(
            "beta must be positive (it is the inverse temperature of relaxed comparisons: large "
            f"is sharp, small is soft; math.inf is exact), not {value!r}"
        )
    return value


def checked_max_iter(value: Any) -> int:
    """``value`` if it can be ``max_iter``, the most iterations a relaxed ``while`` runs: an int
    of at least 1."""
    if not _is_number(value) or not isinstance(value, numbers.Integral):
        raise TypeError(f"max_iter must be an int, not {type(value).__name__} ({value!r})")
    if int(value) < 1:
        raise ValueError(
            f"max_iter must be at least 1 (the most iterations a relaxed `while` runs), not {value}"
        )
    return int(value)


def checked_eps(value: Any) -> float:
    """``value`` if it can be ``eps``: a relaxed ``while`` stops once every example goes on with
    probability at most ``eps``, a number in [0, 1)."""
    if not _is_number(value):
        raise TypeError(f"eps must be a number, not {type(value).__name__} ({value!r})")
    if not 0 <= float(value) < 1:  # NaN too
        raise ValueError(
            "eps must lie in [0, 1) (a relaxed `while` stops once every example goes on with "
            f"at most this probability), not {value!r}"
        )
    return float(value)


def _is_number(value: Any) -> bool:
    """Whether ``value`` is a real number (a Python or NumPy one), not a bool."""
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _number_tensor(value: float, device: torch.device) -> torch.Tensor:
    """A number as a 0-dimensional tensor on ``device`` that holds it exactly: float64, or float32
    on a device without float64 (MPS)."""
    try:
        return torch.tensor(value, dtype=torch.float64, device=device)
    except (TypeError, RuntimeError):
        return torch.tensor(value, dtype=torch.float32, device=device)


class RelaxedModule(torch.nn.Module):
    """Base class of generated modules: holds the hyperparameters and the user's free names.

    ``beta``, ``mode``, ``dist``, ``max_iter``, ``eps`` and ``backend`` are read at every call and
    may change between calls; under ``torch.compile`` a new ``beta`` (a number or a tensor) or
    batch size compiles nothing new::

        sort = relax(bubble_sort_fn, beta=4.0)
        fast = torch.compile(sort)
        sort.beta = 8.0          # the next call of fast runs with it, nothing is recompiled
    """

    code: str  # the generated source (``avcompile show``)
    line_map: dict[int, int]  # generated line -> the user's line
    static: tuple[str, ...]  # the parameters compiled as hard values
    user_file: str | None  # the file of the user's function (None: built from IR alone)
    shared_free: frozenset[str]  # the free names that held a tensor when it was compiled
    compiled_free: dict[str, str]  # each free name's type then
    _beta_number: float | None  # beta, where it is a number

    def __init__(
        self,
        fn: Callable[..., Any] | None = None,
        *,
        beta: float | torch.Tensor,
        max_iter: int,
        eps: float,
        hard: bool = False,
        mode: str | None = None,
        dist: str = "logistic",
        static: tuple[str, ...] = (),
        code: str,
        line_map: dict[int, int] | None = None,
        free: dict[str, Any] | None = None,
        rebuild: Callable[..., RelaxedModule] | None = None,
        backend: str = "torch",
    ) -> None:
        """``fn`` is the user's function whose free names the module reads at each call; a module
        built from IR alone (the DSL) gives the values of its free names in ``free`` instead.
        ``code`` is the generated source and ``line_map`` maps its line numbers to the user's.
        ``rebuild(module, qualname, static)`` compiles ``fn``, found by name, again: pickle
        calls it to load the module."""
        super().__init__()
        # beta as the tensor a call reads (``relaxation``), so that torch.compile reads it as an
        # input of its graph and a new beta compiles nothing new: a number's own tensor, or the
        # tensor given (a learned beta is the parameter ``beta`` instead)
        self.register_buffer("_beta", None, persistent=False)
        self._beta_number = None
        self.beta = beta
        self.max_iter = max_iter
        self.eps = eps
        self.mode = mode if mode is not None else ("hard" if hard else "soft")
        if hard and self.mode != "hard":
            raise ValueError(f"hard=True contradicts mode={mode!r}; give one of them")
        self.dist = dist
        self.backend = backend
        self.static = tuple(static)
        self.code = code
        self.line_map = dict(line_map or {})
        self._rebuild = rebuild
        if fn is not None:
            self.__wrapped__ = fn
            self._closure = dict(zip(fn.__code__.co_freevars, fn.__closure__ or ()))
            self._globals = fn.__globals__
        else:
            self._closure, self._globals = {}, dict(free or {})

    @property
    def beta(self) -> float | torch.Tensor:
        """The inverse temperature of relaxed comparisons, as it was given: a positive number, a
        tensor, or an ``nn.Parameter`` (a learned beta, in ``parameters()`` and the
        ``state_dict``). A number or tensor of another kind is refused, naming ``beta``."""
        learned = self._parameters.get("beta")
        if learned is not None:
            return learned
        if self._beta_number is not None:
            return self._beta_number
        given = self._buffers["_beta"]
        assert given is not None  # a tensor beta, as it was given
        return given

    @beta.setter
    def beta(self, value: float | torch.Tensor) -> None:
        value = checked_beta(value)
        before: torch.Tensor | None = self._parameters.pop("beta", None)
        if before is None:
            before = self._buffers["_beta"]
        device = before.device if before is not None else torch.device("cpu")
        if isinstance(value, torch.nn.Parameter):
            self._parameters["beta"] = value
            self._beta_number, self._buffers["_beta"] = None, None
        elif isinstance(value, torch.Tensor):
            self._beta_number, self._buffers["_beta"] = None, value
        else:
            self._beta_number, self._buffers["_beta"] = value, _number_tensor(value, device)

    def __setattr__(self, name: str, value: Any) -> None:
        # `beta` may be a number, a tensor or an nn.Parameter and may change kind between calls;
        # its setter sorts it out (nn.Module would register a parameter, and then refuse
        # anything else under that name).
        if name == "beta":
            object.__setattr__(self, name, value)
        else:
            super().__setattr__(name, value)

    def _apply(self, fn, recurse=True):
        """``.to()``, ``.cuda()``, ``.half()``, ... (nn.Module moves and casts through this): the
        tensor of a number beta goes to the new device and stays that number exactly."""
        if self._beta_number is None:
            return super()._apply(fn, recurse)
        held = self._buffers.pop("_beta")
        try:
            super()._apply(fn, recurse)
        finally:
            self._buffers["_beta"] = held
        device = fn(held.float()).device  # where the module goes (a float32 copy: some devices
        # have no float64); the module's dtype is not beta's
        self._buffers["_beta"] = _number_tensor(self._beta_number, device)
        return self

    @property
    def max_iter(self) -> int:
        """The most iterations a relaxed ``while`` runs (an int of at least 1)."""
        return self._max_iter

    @max_iter.setter
    def max_iter(self, value: int) -> None:
        self._max_iter = checked_max_iter(value)

    @property
    def eps(self) -> float:
        """A relaxed ``while`` stops once every example goes on with probability at most this
        (in [0, 1))."""
        return self._eps

    @eps.setter
    def eps(self, value: float) -> None:
        self._eps = checked_eps(value)

    @property
    def mode(self) -> str:
        """'soft', 'hard' (exact comparisons) or 'st' (hard forward, soft gradient)."""
        return self._mode

    @mode.setter
    def mode(self, value: str) -> None:
        if value not in MODES:
            raise ValueError(f"mode must be one of {', '.join(map(repr, MODES))}, not {value!r}")
        self._mode = value

    @property
    def hard(self) -> bool:
        """Whether comparisons are exact (``mode == 'hard'``); setting it sets the mode."""
        return self._mode == "hard"

    @hard.setter
    def hard(self, value: bool) -> None:
        self.mode = "hard" if value else "soft"

    @property
    def backend(self) -> str:
        """'torch' (batched tensor code), 'kernel' (one compiled forward and adjoint per chunk of
        examples) or 'auto' (the kernel where the program lies in its subset, else torch)."""
        return self._backend

    @backend.setter
    def backend(self, value: str) -> None:
        if value not in BACKENDS:
            raise ValueError(
                f"backend must be one of {', '.join(map(repr, BACKENDS))}, not {value!r}"
            )
        self._backend = value

    def kernel_program(self) -> Any:
        """The kernel backend's program of this module (made on first use), or None with the
        reason in ``kernel_reason`` where the program lies outside the kernel's subset or numba
        cannot be imported."""
        if "_kernel" not in self.__dict__:
            numbers = {
                n: self.free(n)
                for n, t in getattr(self, "compiled_free", {}).items()
                if t in _NUMBER_TYPES
            }
            self._kernel, self._kernel_reason = _kernel_program(getattr(self, "ir", None), numbers)
        return self._kernel

    @property
    def kernel_reason(self) -> str | None:
        """Why the kernel backend cannot run this module (None when it can)."""
        self.kernel_program()
        return self.__dict__.get("_kernel_reason")

    def uses_kernel(self) -> bool:
        """Whether the next call runs the kernel backend."""
        return self._backend != "torch" and self.kernel_program() is not None

    @torch.compiler.disable
    def kernel_call(self, args: tuple, kwargs: dict) -> Any:
        """Run the call on the kernel backend, or return ``NotImplemented`` where the torch
        backend runs it (``uses_kernel``; 'auto' and arguments the kernel cannot take).

        torch.compile does not trace this (nor numba): a compiled caller breaks its graph here
        and runs it as it is. The outputs' batch dimension is marked as varying, so that the
        caller's code after it does not compile again for a new batch size."""
        if not self.uses_kernel():
            return NotImplemented
        from .kernel import backend

        bound = dict(zip(self._params, args))
        bound.update(kwargs)
        relaxed = [n for n in self._params if n in self._relaxed]
        for name in self._params:
            if name not in bound:
                raise TypeError(f"{type(self).__name__}() missing argument '{name}'")
        ranks = {n: bound[n].dim() - 1 for n in relaxed}
        try:
            result = backend.call(self, self._kernel, bound, relaxed, ranks)
        except backend.NotInKernel as err:
            if self._backend == "kernel":
                raise TypeError(
                    f"{type(self).__name__}: backend='kernel' cannot run arguments of these "
                    f"shapes: {err}"
                ) from None
            return NotImplemented  # 'auto': the torch backend runs it
        mark_batch_dynamic(result if isinstance(result, tuple) else (result,), 0)
        return result

    @property
    def dist(self) -> str:
        """The distribution family of relaxed comparisons."""
        return self._dist

    @dist.setter
    def dist(self, value: str) -> None:
        if value not in DISTRIBUTIONS:
            raise ValueError(
                f"dist must be one of {', '.join(map(repr, DISTRIBUTIONS))}, not {value!r}"
            )
        self._dist = value

    def relaxation(self) -> Relaxation:
        """The relaxation of one call: the hyperparameters as they are now, beta as a tensor."""
        learned = self._parameters.get("beta")
        beta = self._buffers["_beta"] if learned is None else learned
        return Relaxation(beta, self._mode, self._dist)

    def __prepare_scriptable__(self) -> NoReturn:
        # torch.jit.script calls this on a module (and each submodule) before compiling it
        raise RuntimeError(
            f"avcompile: the relaxed module {type(self).__name__} cannot be compiled by "
            "torch.jit.script: its generated code is Python that TorchScript does not take "
            "(functions defined in functions, lists of tensors, calls of avcompile's runtime). "
            "Use torch.compile(module) instead, which compiles that code as it is."
        )

    # The user's function and the names it reads belong to the user's program. A copy of the
    # module shares them, as a copy of a function would; a pickle names the function.
    _USERS = ("__wrapped__", "_globals", "_closure", "_lookups")
    # What compiling the function makes: made again when a pickle is loaded, so not pickled.
    _COMPILED = (
        "code",
        "line_map",
        "_rebuild",
        "ir",
        "inputs",
        "outputs",
        "user_file",
        "shared_free",
        "compiled_free",
        "_params",
        "_relaxed",
        "_ranks",
        "_kernel",
        "_kernel_reason",
        "__doc__",
        "__signature__",
    )

    def __deepcopy__(self, memo):
        if "__wrapped__" in self.__dict__:
            for name in self._USERS:
                memo[id(self.__dict__[name])] = self.__dict__[name]
        new = type(self).__new__(type(self))
        memo[id(self)] = new
        new.__dict__.update(copy.deepcopy(self.__dict__, memo))
        return new

    def __reduce_ex__(self, protocol):
        fn = self.__dict__.get("__wrapped__")
        rebuild = self.__dict__.get("_rebuild")
        if fn is None or rebuild is None or "<locals>" in fn.__qualname__:
            raise TypeError(
                f"cannot pickle the relaxed module of {type(self).__name__}: it was "
                f"{self._made(fn, rebuild)}, so it cannot be found again by name; save its "
                "state_dict() and build it again"
            )
        skipped = self._USERS + self._COMPILED
        state = {k: v for k, v in self.__dict__.items() if k not in skipped}
        return rebuild, (fn.__module__, fn.__qualname__, self.static), state

    @staticmethod
    def _made(fn, rebuild):
        """How a module that pickle cannot find again by name was made."""
        if fn is None:
            return "built by avcompile.dsl"
        if rebuild is None:
            return "made without avcompile.relax"
        return f"made inside a function ({fn.__qualname__})"

    def free(self, name: str) -> Any:
        """The value a free name of the user's function has now (closure, global, then builtin).

        Whether it is a tensor shared by every example or a hard value was decided from its value
        when the function was compiled, and the generated code depends on it: a value whose kind
        changed since is an error, never a silent broadcast."""
        value = self._lookup(name)
        shared = name in self.shared_free
        if isinstance(value, torch.Tensor) != shared and name in self.compiled_free:
            was = "a tensor" if shared else f"not a tensor ({self.compiled_free[name]})"
            fn = getattr(self, "__wrapped__", None)
            what = fn.__qualname__ if fn is not None else type(self).__name__
            raise TypeError(
                f"{what}: the free name `{name}` was {was} when {what} was compiled, and is "
                f"{type(value).__name__} now. Whether a free name holds a tensor decides the code "
                f"avcompile generates: compile the function again (relax(...)) after changing it, "
                f"or give it a value of the same kind."
            )
        return value

    def _lookup(self, name):
        where = self.__dict__.get("_lookups", {}).get(name)
        if where is not None:  # a free name of a helper compiled into the function
            namespace, key = where
            if not isinstance(namespace, dict):
                return namespace.cell_contents
            if key in namespace:
                return namespace[key]
            raise NameError(f"name '{key}' is not defined")
        cell = self._closure.get(name)
        if cell is not None:
            return cell.cell_contents
        try:
            return self._globals[name]
        except KeyError:
            pass
        try:
            return getattr(builtins, name)
        except AttributeError:
            raise NameError(f"name '{name}' is not defined") from None

    def expect(self, params: list[str], relaxed: list[str], ranks: dict[str, int]) -> None:
        """What ``check_arguments`` checks: the parameters in order, the relaxed ones, and how many
        dimensions of one example the function reads of each (``passes.ranks``)."""
        self._params, self._relaxed, self._ranks = tuple(params), frozenset(relaxed), dict(ranks)

    def check_arguments(self, args, kwargs):
        """The call's arguments, with integer tensors of relaxed parameters made floating (their
        arithmetic is relaxed), after checking that each has the dimensions the function reads of
        one example besides the batch dimension, and that the batch is not empty."""
        params = self.__dict__.get("_params")
        if not params:
            return args, kwargs
        args, kwargs = list(args), dict(kwargs)
        found = []  # (container, key, tensor) of each relaxed tensor argument
        for k, name in enumerate(params):
            if name not in self._relaxed:
                continue
            if k < len(args):
                where, key = args, k
            elif name in kwargs:
                where, key = kwargs, name
            else:
                continue
            if isinstance(where[key], torch.Tensor):
                found.append((where, key, name))
        converting = False
        for where, key, name in found:
            value = where[key]
            rank = self._ranks.get(name, 0)
            if rank and value.dim() < 1 + rank:
                raise ValueError(
                    f"{type(self).__name__}(): argument '{name}' has shape "
                    f"{tuple(value.shape)}, but the function reads {rank} dimension(s) of one "
                    f"example of it ({name}[i], len({name})) and the batch dimension comes first: "
                    f"pass shape [B, ...] with {1 + rank} or more dimensions (one example x is "
                    f"x.unsqueeze(0))"
                )
            if value.dim() and value.shape[0] == 0:
                raise ValueError(
                    f"{type(self).__name__}(): argument '{name}' is an empty batch (size 0)"
                )
            converting = converting or not (value.is_floating_point() or value.is_complex())
        if converting:
            floating = [w[k].dtype for w, k, _ in found if w[k].is_floating_point()]
            dtype = floating[0] if floating else torch.get_default_dtype()
            for where, key, _ in found:
                if not (where[key].is_floating_point() or where[key].is_complex()):
                    where[key] = where[key].to(dtype)
        return tuple(args), kwargs

    @torch.compiler.disable
    def _mark_batch_dynamic(self, args: tuple, kwargs: dict) -> None:
        """Mark the batch dimension of the relaxed tensor arguments as varying for torch.compile
        (``wrap_forward``; run as Python, never traced)."""
        params, relaxed = self.__dict__.get("_params", ()), self.__dict__.get("_relaxed", ())
        values = [a for a, name in zip(args, params) if name in relaxed]
        values += [v for name, v in kwargs.items() if name in relaxed]
        mark_batch_dynamic(values, 0)

    def _run(self, forward: Callable[..., Any], args: tuple, kwargs: dict) -> Any:
        """One call: its arguments checked, then the kernel backend where it runs the call, else
        ``forward``, the generated code, whose exceptions show the user's lines."""
        args, kwargs = self.check_arguments(args, kwargs)
        if self._backend != "torch":
            result = self.kernel_call(args, kwargs)
            if result is not NotImplemented:
                return result
        try:
            return forward(self, *args, **kwargs)
        except Exception as exc:
            tb = _with_user_frame(
                exc.__traceback__,
                getattr(self, "user_file", None),
                self.line_map,
                type(self).__name__,
            )
            raise exc.with_traceback(tb) from exc.__cause__

    def describe(self, fn_ir: Any, user_file: str | None) -> None:
        """Remember what ``print(module)``, ``help(module)`` and error messages say of the user's
        function, and what each free name held when it was compiled (which ``free`` checks at
        each call)."""
        self.user_file = user_file
        self.ir = fn_ir
        self._lookups = dict(fn_ir.lookups)
        self.shared_free, self.compiled_free = frozenset(), {}
        for name in fn_ir.free:
            try:
                value = self._lookup(name)
            except NameError:
                value = None
            self.compiled_free[name] = type(value).__name__
            if isinstance(value, torch.Tensor):
                self.shared_free |= {name}
        self.inputs = tuple(f"{p.id}: {p.kind}" for p in fn_ir.params)
        returns = [s for s in fn_ir.body if type(s).__name__ == "Return"]
        value = returns[-1].value if returns else None
        elts = getattr(value, "elts", None) if type(value).__name__ == "Tuple_" else None
        self.outputs = tuple(
            str(v) for v in (elts if elts is not None else [value]) if v is not None
        )
        # inspect.signature(module) and help(module) show the user's function
        self.__signature__ = inspect.signature(self.forward)
        self.__doc__ = self._doc([p.id for p in fn_ir.params if str(p.kind) == "relaxed"])

    def _doc(self, relaxed: list[str]) -> str:
        """What ``help(module)`` says: the call's signature, the user's docstring, and what the
        module is."""
        fn = self.__dict__.get("__wrapped__")
        parts = [f"{type(self).__name__}{self.__signature__}"]
        if fn is not None and fn.__doc__:
            parts.append(inspect.cleandoc(fn.__doc__))
        batch = (
            f"a leading batch dimension on each relaxed argument ({', '.join(relaxed)})"
            if relaxed
            else "no relaxed argument"
        )
        what = (
            f"{inspect.cleandoc(type(self).__doc__ or '')} A torch.nn.Module: call it with "
            f"{batch}. Its attributes beta, mode, dist, max_iter, eps and backend are read at "
            f"every call; module.code is the generated code."
        )
        parts.append(textwrap.fill(what, 88))
        return "\n\n".join(parts)

    def extra_repr(self) -> str:
        beta: Any = self.beta
        if isinstance(beta, torch.Tensor):
            beta = beta.item() if beta.numel() == 1 and beta.device.type != "meta" else beta
        io = ""
        if getattr(self, "inputs", None) is not None:
            io = f"inputs=({', '.join(self.inputs)}), outputs=({', '.join(self.outputs)}), "
        dist = f", dist={self._dist!r}" if self._dist != "logistic" else ""
        backend = ""
        if self._backend != "torch":
            backend = f", backend={self._backend!r}"
            if self.kernel_program() is None:
                backend += f" (runs the torch backend: {self.kernel_reason})"
        return (
            f"{io}beta={beta}, mode={self._mode!r}{dist}, max_iter={self.max_iter}, "
            f"eps={self.eps}{backend}"
        )


BACKENDS = ("auto", "torch", "kernel")
_numba_warned = False


_NUMBER_TYPES = ("int", "float", "bool", "tuple")  # hard inputs of kernels


def _kernel_program(fn_ir, numbers=None):
    """``(program, None)`` of the kernel backend for ``fn_ir``, or ``(None, why not)``."""
    global _numba_warned
    if fn_ir is None:
        return None, "the module was not made from a relaxed function's IR"
    try:
        from .kernel import backend
    except ImportError as err:
        if not _numba_warned:
            warnings.warn(
                f"avcompile's kernel backend needs numba, which cannot be imported ({err}); "
                f"modules run the torch backend",
                RuntimeWarning,
                stacklevel=3,
            )
            _numba_warned = True
        return None, f"numba cannot be imported ({err})"
    from .passes.ranks import example_ranks

    program = backend.KernelProgram(fn_ir, numbers)
    try:
        program.check(example_ranks(fn_ir))
    except backend.NotInKernel as err:
        return None, str(err)
    return program, None


def wrap_forward(
    forward: Callable[..., Any], signature: inspect.Signature | None = None, traced: bool = True
) -> Callable[..., Any]:
    """The ``forward`` of a generated class: the generated ``forward`` with the user's defaults
    (from ``signature``, the user's), the arguments checked, the kernel backend where it runs the
    call, and exceptions shown at the user's lines.

    Under ``torch.compile`` the batch dimension of the relaxed arguments is marked as varying, so
    that a new batch size compiles nothing new. A ``forward`` that is not ``traced`` (it would
    break the graph inside a loop: ``emit.breaks_graph_in_loop``) runs as Python there, with one
    graph break in a compiled caller."""
    params = list(signature.parameters.values()) if signature is not None else []
    names = tuple(p.name for p in params)
    defaults = {p.name: p.default for p in params if p.default is not p.empty}
    run = RelaxedModule._run if traced else _run_as_python

    @functools.wraps(forward)
    def call(self, *args, **kwargs):
        if defaults:
            bound = dict(zip(names, args))
            bound.update(kwargs)
            for name, value in defaults.items():
                bound.setdefault(name, value)
            args, kwargs = (), bound
        if not torch.compiler.is_compiling():
            self._mark_batch_dynamic(args, kwargs)
        return run(self, forward, args, kwargs)

    if signature is not None:
        self_param = inspect.Parameter("self", inspect.Parameter.POSITIONAL_OR_KEYWORD)
        call.__signature__ = signature.replace(parameters=[self_param, *params])  # type: ignore[attr-defined]
    _skip_when_outermost(call)
    return call


_run_as_python = torch.compiler.disable(RelaxedModule._run)


def _skip_when_outermost(fn: Callable[..., Any]) -> None:
    """Have torch.compile run ``fn``'s own frame as Python when it is the outermost frame it
    meets (it then compiles the functions ``fn`` calls, each as its own graph), yet trace ``fn``
    as usual when a compiled caller calls it. ``wrap_forward``'s ``call`` marks its arguments'
    batch dimension as varying there, which must happen before torch.compile first sees them,
    and which cannot be traced. (``torch.compiler.disable(recursive=False)`` would also skip the
    frame, but break the graph of every compiled model that calls a relaxed module.)"""
    skip_code = getattr(getattr(torch._dynamo, "eval_frame", None), "skip_code", None)
    if skip_code is not None:  # else a new batch size compiles again once, and not after
        skip_code(fn.__code__)


def _with_user_frame(tb, user_file, line_map, name):
    """``tb`` with a frame at the user's line inserted after the innermost generated frame.

    ``line_map`` maps the generated lines to the user's, ``name`` names the user's frame."""
    if user_file is None:
        return tb
    entries = []
    while tb is not None:
        entries.append(tb)
        tb = tb.tb_next
    generated = [
        k for k, t in enumerate(entries) if t.tb_frame.f_code.co_filename.startswith("<avcompile ")
    ]
    if not generated:
        return entries[0] if entries else None
    k = generated[-1]
    line = line_map.get(entries[k].tb_lineno)
    if line is None:
        return entries[0]
    user = _user_frame(user_file, line, name)
    rest = entries[k + 1] if k + 1 < len(entries) else None
    node = types.TracebackType(rest, user.tb_frame, user.tb_lasti, user.tb_lineno)
    for t in reversed(entries[: k + 1]):
        node = types.TracebackType(node, t.tb_frame, t.tb_lasti, t.tb_lineno)
    return node


def _user_frame(filename, line, name):
    """A traceback entry whose frame stands at ``filename:line`` (the text comes from linecache).

    The raise statement spans as many columns as the user's line, so no caret points inside it.
    """
    text = linecache.getline(filename, line).rstrip()
    width = len(text.strip())
    marker = "_" + "e" * max(width - 7, 1)
    stmt = f"raise {marker}"
    if line >= 2:
        body = " " * max(len(text) - width, 1) + stmt
        src = "\n" * (line - 2) + f"def {name}():\n{body}\n"
    else:
        src = stmt + "\n"
    namespace = {marker: _UserLine()}
    try:
        exec(compile(src, filename, "exec"), namespace)
        namespace[name]()
    except _UserLine as raised:
        tb = raised.__traceback__
        while tb.tb_next is not None:
            tb = tb.tb_next
        return tb
    raise AssertionError("unreachable")


class _UserLine(Exception):
    """Raised at the user's line only to obtain a frame standing there."""

"""The base class of generated modules: hyperparameters, free names, printing, copying and pickling, and errors mapped to the user's lines."""

import builtins
import copy
import functools
import linecache
import types
import warnings

import torch

from .runtime import DISTRIBUTIONS, MODES, Relaxation

__all__ = ["RelaxedModule", "errors_at_user_lines"]


class RelaxedModule(torch.nn.Module):
    """Base class of generated modules: holds the hyperparameters and the user's free names."""

    def __init__(
        self,
        fn=None,
        *,
        beta,
        max_iter,
        eps,
        hard=False,
        mode=None,
        dist="logistic",
        static=(),
        code,
        line_map=None,
        free=None,
        rebuild=None,
        backend="torch",
    ):
        """``fn`` is the user's function whose free names the module reads at each call; a module
        built from IR alone (the DSL) gives the values of its free names in ``free`` instead.
        ``code`` is the generated source and ``line_map`` maps its line numbers to the user's.
        ``rebuild(module, qualname, static)`` compiles ``fn``, found by name, again: pickle
        calls it to load the module."""
        super().__init__()
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
            self.__doc__ = fn.__doc__
            self._closure = dict(zip(fn.__code__.co_freevars, fn.__closure__ or ()))
            self._globals = fn.__globals__
        else:
            self._closure, self._globals = {}, dict(free or {})

    @property
    def mode(self):
        """'soft', 'hard' (exact comparisons) or 'st' (hard forward, soft gradient)."""
        return self._mode

    @mode.setter
    def mode(self, value):
        if value not in MODES:
            raise ValueError(f"mode must be one of {', '.join(map(repr, MODES))}, not {value!r}")
        self._mode = value

    @property
    def hard(self):
        """Whether comparisons are exact (``mode == 'hard'``); setting it sets the mode."""
        return self._mode == "hard"

    @hard.setter
    def hard(self, value):
        self.mode = "hard" if value else "soft"

    @property
    def backend(self):
        """'torch' (batched tensor code), 'kernel' (one compiled forward and adjoint per chunk of
        examples) or 'auto' (the kernel where the program lies in its subset, else torch)."""
        return self._backend

    @backend.setter
    def backend(self, value):
        if value not in BACKENDS:
            raise ValueError(
                f"backend must be one of {', '.join(map(repr, BACKENDS))}, not {value!r}"
            )
        self._backend = value

    def kernel_program(self):
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
    def kernel_reason(self):
        """Why the kernel backend cannot run this module (None when it can)."""
        self.kernel_program()
        return self.__dict__.get("_kernel_reason")

    def uses_kernel(self):
        """Whether the next call runs the kernel backend."""
        return self._backend != "torch" and self.kernel_program() is not None

    def kernel_call(self, args, kwargs):
        """Run the call on the kernel backend."""
        from .kernel import backend

        bound = dict(zip(self._params, args))
        bound.update(kwargs)
        relaxed = [n for n in self._params if n in self._relaxed]
        for name in self._params:
            if name not in bound:
                raise TypeError(f"{type(self).__name__}() missing argument '{name}'")
        ranks = {n: bound[n].dim() - 1 for n in relaxed}
        try:
            return backend.call(self, self._kernel, bound, relaxed, ranks)
        except backend.NotInKernel as err:
            if self._backend == "kernel":
                raise TypeError(
                    f"{type(self).__name__}: backend='kernel' cannot run arguments of these "
                    f"shapes: {err}"
                ) from None
            return NotImplemented  # 'auto': the torch backend runs it

    @property
    def dist(self):
        """The distribution family of relaxed comparisons."""
        return self._dist

    @dist.setter
    def dist(self, value):
        if value not in DISTRIBUTIONS:
            raise ValueError(
                f"dist must be one of {', '.join(map(repr, DISTRIBUTIONS))}, not {value!r}"
            )
        self._dist = value

    def __setattr__(self, name, value):
        # `beta` may be a float, a tensor or an nn.Parameter (learned), and may change kind
        # between calls, which nn.Module would refuse for a registered parameter.
        if (
            name == "beta"
            and "_parameters" in self.__dict__
            and "beta" in self._parameters
            and not isinstance(value, torch.nn.Parameter)
        ):
            del self._parameters["beta"]
        super().__setattr__(name, value)

    def relaxation(self):
        """The relaxation of one call: the hyperparameters as they are now."""
        return Relaxation(self.beta, self._mode, self._dist)

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

    def free(self, name):
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

    def expect(self, params, relaxed, ranks):
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

    def describe(self, fn_ir, user_file):
        """Remember what ``print(module)`` and error messages say of the user's function, and
        what each free name held when it was compiled (which ``free`` checks at each call)."""
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

    def extra_repr(self):
        beta = self.beta.item() if isinstance(self.beta, torch.Tensor) else self.beta
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


def errors_at_user_lines(forward):
    """Wrap a generated ``forward`` so that an exception raised inside it shows, in its
    traceback, the user's file, line and source text it comes from, and keeps its type."""

    @functools.wraps(forward)
    def call(self, *args, **kwargs):
        args, kwargs = self.check_arguments(args, kwargs)
        if self._backend != "torch" and self.uses_kernel():
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

    return call


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

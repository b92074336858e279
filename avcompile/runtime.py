"""The small runtime that generated modules call; it imports nothing of the compiler.

Layout: inside a generated module every relaxed value keeps its batch dimension *last*. A per-example
scalar is ``[B]``, a per-example vector of length n is ``[n, B]``. Indexing, ``len``, iteration and
broadcasting then act on the example's own dimensions with no rewriting, and a per-example scalar
combines with a per-example vector as it would for one example. Arguments are moved to this layout
on entry and back to batch-first on return.

A relaxed array that the program only reads and writes element by element is kept *unpacked*, as a
Python list of its elements: element writes then cost no tensor operation, and a branch blends only
the elements it wrote.
"""

import builtins
import functools
import linecache
import re
import types

import torch

__all__ = [
    "Batch",
    "RelaxedModule",
    "and_",
    "as_list",
    "batched_call",
    "blend",
    "eq",
    "ge",
    "gt",
    "le",
    "lift",
    "lt",
    "ne",
    "or_",
    "output",
    "pack",
    "per_example",
    "put",
    "relaxed_while",
    "shape",
    "softmax_of",
    "softmin_of",
    "truth",
    "unpack",
]


class Batch:
    """Batch size, dtype and device of one call, taken from its relaxed tensor arguments."""

    __slots__ = ("size", "dtype", "device")

    def __init__(self, fn_name, tensors):
        size = first = None
        dtype = device = None
        for name, value in tensors.items():
            if not isinstance(value, torch.Tensor):
                raise TypeError(
                    f"{fn_name}(): argument '{name}' must be a torch.Tensor with a leading batch "
                    f"dimension, not {type(value).__name__}; annotate the parameter with a Python type "
                    f"(`{name}: int`) or list it in relax(static=...) to pass a hard value"
                )
            if value.dim() == 0:
                raise ValueError(
                    f"{fn_name}(): argument '{name}' is a 0-dimensional tensor; relaxed arguments need a "
                    f"leading batch dimension (shape [B, ...])"
                )
            if size is None:
                size, first, device = value.shape[0], name, value.device
            elif value.shape[0] != size:
                raise ValueError(
                    f"{fn_name}(): argument '{name}' has batch size {value.shape[0]}, but '{first}' "
                    f"has batch size {size}; every relaxed argument must share the leading batch dimension"
                )
            if dtype is None and value.is_floating_point():
                dtype = value.dtype
        if size is None:
            raise TypeError(f"{fn_name}() needs at least one relaxed tensor argument to know the batch size")
        self.size = size
        self.dtype = dtype if dtype is not None else torch.get_default_dtype()
        self.device = device

    def full(self, value):
        """A per-example scalar equal to ``value`` in every example."""
        return torch.full((self.size,), value, dtype=self.dtype, device=self.device)

    def relax(self, value):
        """``value`` (a number, nested list of numbers or a shared tensor) repeated for every example."""
        if isinstance(value, (int, float, bool)):
            return self.full(value)
        value = torch.as_tensor(value, device=self.device).to(self.dtype)
        return value.unsqueeze(-1).expand(*value.shape, self.size)

    def prob(self, p):
        """A probability as a per-example tensor (conditions decided by hard values are numbers)."""
        if isinstance(p, torch.Tensor):
            return p
        return self.full(float(p))


class RelaxedModule(torch.nn.Module):
    """Base class of generated modules: holds the hyperparameters and the user's free names."""

    def __init__(self, fn=None, *, beta, max_iter, eps, hard, static=(), code, free=None):
        """``fn`` is the user's function whose free names the module reads at each call; a module
        built from IR alone (the DSL) gives the values of its free names in ``free`` instead."""
        super().__init__()
        self.beta = beta
        self.max_iter = max_iter
        self.eps = eps
        self.hard = hard
        self.static = tuple(static)
        self.code = code
        if fn is not None:
            self.__wrapped__ = fn
            self.__doc__ = fn.__doc__
            self._closure = dict(zip(fn.__code__.co_freevars, fn.__closure__ or ()))
            self._globals = fn.__globals__
        else:
            self._closure, self._globals = {}, dict(free or {})

    def free(self, name):
        """The value a free name of the user's function has now (closure, global, then builtin)."""
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

    def describe(self, fn_ir, user_file):
        """Remember what ``print(module)`` and error messages say of the user's function."""
        self.user_file = user_file
        self.ir = fn_ir
        self.inputs = tuple(f"{p.id}: {p.kind}" for p in fn_ir.params)
        returns = [s for s in fn_ir.body if type(s).__name__ == "Return"]
        value = returns[-1].value if returns else None
        elts = getattr(value, "elts", None) if type(value).__name__ == "Tuple_" else None
        self.outputs = tuple(str(v) for v in (elts if elts is not None else [value]) if v is not None)

    def extra_repr(self):
        beta = self.beta.item() if isinstance(self.beta, torch.Tensor) else self.beta
        io = ""
        if getattr(self, "inputs", None) is not None:
            io = f"inputs=({', '.join(self.inputs)}), outputs=({', '.join(self.outputs)}), "
        return f"{io}beta={beta}, hard={self.hard}, max_iter={self.max_iter}, eps={self.eps}"


def errors_at_user_lines(forward):
    """Wrap a generated ``forward`` so that an exception raised inside it shows, in its
    traceback, the user's file, line and source text it comes from, and keeps its type."""

    @functools.wraps(forward)
    def call(self, *args, **kwargs):
        try:
            return forward(self, *args, **kwargs)
        except Exception as exc:
            tb = _with_user_frame(exc.__traceback__, getattr(self, "user_file", None), self.code)
            raise exc.with_traceback(tb) from exc.__cause__

    return call


_LINE_COMMENT = re.compile(r"^\s*# L(\d+): ")


def _with_user_frame(tb, user_file, code):
    """``tb`` with a frame at the user's line inserted after the innermost generated frame."""
    if user_file is None:
        return tb
    entries = []
    while tb is not None:
        entries.append(tb)
        tb = tb.tb_next
    generated = [k for k, t in enumerate(entries) if t.tb_frame.f_code.co_filename.startswith("<avcompile ")]
    if not generated:
        return entries[0] if entries else None
    k = generated[-1]
    lines = code.splitlines()
    line = None
    for text in reversed(lines[:entries[k].tb_lineno]):
        m = _LINE_COMMENT.match(text)
        if m:
            line = int(m.group(1))
            break
    if line is None:
        return entries[0]
    user = _user_frame(user_file, line, _relaxed_name(code))
    rest = entries[k + 1] if k + 1 < len(entries) else None
    node = types.TracebackType(rest, user.tb_frame, user.tb_lasti, user.tb_lineno)
    for t in reversed(entries[:k + 1]):
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


def _relaxed_name(code):
    m = re.search(r"^class (\w+)\(", code, re.M)
    return m.group(1) if m else "relaxed"


class _UserLine(Exception):
    """Raised at the user's line only to obtain a frame standing there."""


# ---------------------------------------------------------------------------------------------
# Moving values between the caller's batch-first layout and the batch-last layout inside.


def unpack(x):
    """A batch-first argument ``[B, n, ...]`` as the list of its n elements, batch-last."""
    return list(x.movedim(0, -1).unbind(0))


def as_list(value):
    """A relaxed array as the list of its elements (a copy, when it is a list already)."""
    if isinstance(value, list):
        return list(value)
    return list(value.unbind(0))


def output(value):
    """A relaxed value returned to the caller, batch-first."""
    if isinstance(value, list):
        return torch.stack(value).movedim(-1, 0)
    return value.movedim(-1, 0)


def pack(value):
    """A relaxed value as one batch-last tensor (an unpacked list is stacked)."""
    if isinstance(value, list):
        return torch.stack(value)
    return value


def lift(value):
    """A shared tensor made to broadcast against batch-last relaxed values."""
    if isinstance(value, torch.Tensor) and value.dim() > 0:
        return value.unsqueeze(-1)
    return value


def shape(value):
    """The example's shape of a relaxed value."""
    if isinstance(value, list):
        return torch.Size((len(value),) + tuple(value[0].shape[:-1]))
    return value.shape[:-1]


def put(x, index, value):
    """``x`` with ``x[index] = value``, leaving ``x`` itself unchanged (value semantics)."""
    out = x.clone()
    out[index] = value
    return out


# ---------------------------------------------------------------------------------------------
# Relaxed conditions (SEMANTICS 3). In hard mode each is the exact comparison, as 1.0 or 0.0.


def _mask(m, a, b):
    for v in (a, b):
        if isinstance(v, torch.Tensor) and v.is_floating_point():
            return m.to(v.dtype)
    return m.to(torch.get_default_dtype())


def gt(a, b, beta, hard):
    """Probability that ``a > b``: sigmoid(beta * (a - b))."""
    if hard:
        return _mask(torch.as_tensor(a > b), a, b)
    return torch.sigmoid((a - b) * beta)


def ge(a, b, beta, hard):
    """Probability that ``a >= b``: the same relaxation as ``a > b``; hard mode includes ties."""
    if hard:
        return _mask(torch.as_tensor(a >= b), a, b)
    return torch.sigmoid((a - b) * beta)


def lt(a, b, beta, hard):
    """Probability that ``a < b``: sigmoid(-beta * (a - b))."""
    if hard:
        return _mask(torch.as_tensor(a < b), a, b)
    return torch.sigmoid(-((a - b) * beta))


def le(a, b, beta, hard):
    """Probability that ``a <= b``: the same relaxation as ``a < b``; hard mode includes ties."""
    if hard:
        return _mask(torch.as_tensor(a <= b), a, b)
    return torch.sigmoid(-((a - b) * beta))


def eq(a, b, beta, hard):
    """Probability that ``a == b``: 1 / cosh(beta * (a - b) / 2)^2."""
    if hard:
        return _mask(torch.as_tensor(a == b), a, b)
    return 1.0 / torch.cosh((a - b) * beta / 2.0) ** 2


def ne(a, b, beta, hard):
    """Probability that ``a != b``: 1 - 1 / cosh(beta * (a - b) / 2)^2."""
    if hard:
        return _mask(torch.as_tensor(a != b), a, b)
    return 1.0 - 1.0 / torch.cosh((a - b) * beta / 2.0) ** 2


def truth(value, hard):
    """The probability that a relaxed value, used as a condition, holds: the value itself."""
    if hard:
        return (value > 0.5).to(value.dtype)
    if not torch.compiler.is_compiling() and bool(((value < 0) | (value > 1)).any()):
        raise ValueError(
            "a relaxed value used as a condition must lie in [0, 1] (it is its own probability); "
            f"got values from {value.min().item()} to {value.max().item()}"
        )
    return value


def and_(p, q):
    """``p and q`` of two probabilities."""
    return p * q


def or_(p, q):
    """``p or q`` of two probabilities."""
    return p + q - p * q


# ---------------------------------------------------------------------------------------------
# Blending and loops (SEMANTICS 4, 5).


def blend(p, then, orelse):
    """p * then + (1 - p) * orelse; an unpacked list blends only the elements that differ."""
    if then is orelse:
        return then
    if isinstance(then, list):
        return [t if t is e else blend(p, t, e) for t, e in zip(then, orelse)]
    if isinstance(then, torch.Tensor) and isinstance(orelse, torch.Tensor):
        if then.dtype == orelse.dtype:
            return torch.lerp(orelse, then, p)
    return p * then + (1 - p) * orelse


def relaxed_while(cond, body, state, relaxed, batch, max_iter, eps):
    """The expectation of a relaxed ``while`` over the iteration at which it stops.

    ``state`` holds the variables the body assigns; ``relaxed[k]`` tells whether variable k is
    accumulated (relaxed) or takes its value after the last iteration run (hard).
    """
    p = batch.prob(cond(*state))
    acc = [(1 - p) * pack(s) if r else None for s, r in zip(state, relaxed)]
    k = 0
    while k < max_iter and bool(p.max() > eps):
        state = body(*state)
        p_next = p * cond(*state)
        weight = p - p_next
        acc = [torch.addcmul(a, weight, pack(s)) if r else None for a, s, r in zip(acc, state, relaxed)]
        p = p_next
        k += 1
    result = []
    for a, s, r in zip(acc, state, relaxed):
        if not r:
            result.append(s)
            continue
        a = torch.addcmul(a, p, pack(s))
        result.append(list(a.unbind(0)) if isinstance(s, list) else a)
    return tuple(result)


# ---------------------------------------------------------------------------------------------
# Soft min / max (SEMANTICS 8) and calls.


def _stack_values(values):
    if len(values) == 1:
        return pack(values[0])
    like = next(v for v in values if isinstance(v, torch.Tensor))
    tensors = [torch.as_tensor(v, dtype=like.dtype, device=like.device) for v in values]
    return torch.stack(torch.broadcast_tensors(*tensors))


def softmin_of(beta, hard, *values):
    """Soft ``min``: sum_i softmin(beta * v)_i * v_i (over the first dimension for one argument)."""
    stacked = _stack_values(values)
    if hard:
        return stacked.amin(0)
    return (torch.softmax(-(beta * stacked), 0) * stacked).sum(0)


def softmax_of(beta, hard, *values):
    """Soft ``max``: sum_i softmax(beta * v)_i * v_i (over the first dimension for one argument)."""
    stacked = _stack_values(values)
    if hard:
        return stacked.amax(0)
    return (torch.softmax(beta * stacked, 0) * stacked).sum(0)


def per_example(fn, args, relaxed, kwargs):
    """Call a torch function or tensor method per example, through ``torch.vmap``."""
    args = [pack(a) if r else a for a, r in zip(args, relaxed)]
    in_dims = tuple(-1 if r else None for r in relaxed)
    return torch.vmap(lambda *a: fn(*a, **kwargs), in_dims=in_dims, out_dims=-1)(*args)


def _to_first(value):
    return value.movedim(-1, 0) if isinstance(value, torch.Tensor) else value


def _to_last(value):
    if isinstance(value, torch.Tensor):
        return value.movedim(0, -1)
    if isinstance(value, (tuple, list)):
        return type(value)(_to_last(v) for v in value)
    return value


def batched_call(fn, args, relaxed, kwargs):
    """Call a user's callable (a network, say) with batch-first tensors, as it expects."""
    args = [_to_first(pack(a)) if r else a for a, r in zip(args, relaxed)]
    return _to_last(fn(*args, **kwargs))


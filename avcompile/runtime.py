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

import math
import operator
import sys
import warnings

import torch
import torch._dynamo

from .relaxed_int import *  # noqa: F403  (relaxed integers: what generated code calls too)
from .relaxed_int import RelaxedInt, accumulate, as_array, positions, weighted_put
from .relaxed_int import __all__ as _RELAXED_INT_NAMES

__all__ = [
    "Exits",
    "Stopping",
    "share",
    "Batch",
    "Relaxation",
    "and_",
    "as_list",
    "batched_call",
    "blend",
    "blend_finite",
    "blend_inf",
    "blend_inf_finite",
    "div",
    "floordiv",
    "guarded",
    "mod",
    "power",
    "lift",
    "or_",
    "output",
    "pack",
    "per_example",
    "put",
    "relaxed_while",
    "MaxIterWarning",
    "mark_batch_dynamic",
    "shape",
    "size",
    "numel",
    "dim",
    "transpose",
    "matrix_transpose",
    "unpack",
    # DSL support
    "call_first",
    "as_range",
    "let_value",
    "weighted_write",
    "index_write",
    "mode_of",
    "cat_prob_eq",
    "cosine_similarity",
    "check_example",
    "grown",
    "any_",
    "all_",
] + _RELAXED_INT_NAMES


class Batch:
    """Batch size, dtype and device of one call, taken from its relaxed tensor arguments."""

    __slots__ = ("like", "dtype", "device")

    def __init__(self, fn_name, tensors):
        size = first = like = None
        dtype = None
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
                size, first, like = value.shape[0], name, value
            elif value.shape[0] != size:
                raise ValueError(
                    f"{fn_name}(): argument '{name}' has batch size {value.shape[0]}, but '{first}' "
                    f"has batch size {size}; every relaxed argument must share the leading batch dimension"
                )
            if dtype is None and value.is_floating_point():
                dtype = value.dtype
        if size is None:
            raise TypeError(
                f"{fn_name}() needs at least one relaxed tensor argument to know the batch size"
            )
        self.like = like
        self.dtype = dtype if dtype is not None else torch.get_default_dtype()
        self.device = like.device

    @property
    def size(self):
        """The batch size. Read from an argument at each use, not held as a number: code that
        torch.compile compiles after a graph break then takes it from a tensor whose batch
        dimension is marked as varying, and serves every batch size."""
        return self.like.shape[0]

    def full(self, value):
        """A per-example scalar equal to ``value`` in every example."""
        return torch.full((self.size,), value, dtype=self.dtype, device=self.device)

    def relax(self, value):
        """``value`` (a number, nested list of numbers or a shared tensor) repeated for every example."""
        if isinstance(value, (int, float, bool)):
            return self.full(value)
        value = torch.as_tensor(value, dtype=self.dtype, device=self.device)
        return value.unsqueeze(-1).expand(*value.shape, self.size)

    def prob(self, p):
        """A probability as a per-example tensor (conditions decided by hard values are numbers)."""
        if isinstance(p, torch.Tensor):
            return p
        return self.full(float(p))


# ---------------------------------------------------------------------------------------------
# Moving values between the caller's batch-first layout and the batch-last layout inside.


def unpack(x):
    """A batch-first argument ``[B, n, ...]`` as the list of its n elements, batch-last."""
    return list(x.movedim(0, -1).unbind(0))


def as_list(value):
    """A relaxed array as the list of its elements (a copy, when it is a list or tuple)."""
    if isinstance(value, (list, tuple)):
        return list(value)
    return list(value.unbind(0))


def grown(*parts):
    """``parts`` joined, for a relaxed list grown by ``append``, ``extend`` or ``insert``: a list
    of per-example elements, whether each part is a list or an array held as one tensor."""
    return [
        element
        for part in parts
        for element in (part if isinstance(part, list) else part.unbind(0))
    ]


def output(value):
    """A relaxed value returned to the caller, batch-first (a tuple of values, each)."""
    if isinstance(value, tuple):
        return tuple(output(v) for v in value)
    return pack(value).movedim(-1, 0)


def pack(value):
    """A relaxed value as one batch-last tensor (an unpacked list, a table of lists, is stacked)."""
    return as_array(value) if isinstance(value, list) else value


def lift(value, dtype=None):
    """A shared tensor (or a hard list of numbers, made a tensor of ``dtype``: the batch's, so that
    no number is rounded) made to broadcast against batch-last relaxed values."""
    if isinstance(value, (list, tuple)):
        value = torch.as_tensor(value, dtype=dtype)
    if isinstance(value, torch.Tensor) and value.dim() > 0:
        return value.unsqueeze(-1)
    return value


def shape(value):
    """The example's shape of a relaxed value."""
    if isinstance(value, list):  # an unpacked array, a table of lists: rows of one shape
        return torch.Size((len(value),) + (tuple(shape(value[0])) if value else ()))
    return value.shape[:-1] if isinstance(value, torch.Tensor) else torch.Size()


def size(value, dim=None):
    """``x.size()`` / ``x.size(dim)`` of a relaxed value: the example's."""
    example = shape(value)
    return example if dim is None else example[dim]


def numel(value):
    """``x.numel()`` of a relaxed value: the number of elements of one example."""
    return math.prod(shape(value))


def dim(value):
    """``x.ndim`` / ``x.dim()`` of a relaxed value: the example's number of dimensions."""
    return len(shape(value))


def transpose(value):
    """``x.T`` of a relaxed value: each example's dimensions reversed (the batch stays last)."""
    value = pack(value)
    last = value.dim() - 1
    return value.permute(*reversed(range(last)), last)


def matrix_transpose(value):
    """``x.mT`` of a relaxed value: each example's last two dimensions swapped."""
    value = pack(value)
    if value.dim() < 3:
        raise RuntimeError(
            f"x.mT needs a matrix (two dimensions or more) per example, got shape {shape(value)}"
        )
    return value.transpose(-3, -2)


def put(x, index, value):
    """``x`` with ``x[index] = value``, leaving ``x`` itself unchanged (value semantics). In a
    list of per-example values (a list the program grew) a number becomes one for every example,
    like its neighbours."""
    if isinstance(x, list):
        out = list(x)
        like = next((v for v in out if isinstance(v, torch.Tensor)), None)
        if like is not None and isinstance(value, (int, float)) and isinstance(index, int):
            value = torch.full_like(like, value)
        out[index] = value
        return out
    out = x.clone()
    out[index] = value
    return out


# ---------------------------------------------------------------------------------------------
# Relaxed conditions (SEMANTICS 3) and their distribution families.

DISTRIBUTIONS = ("logistic", "cauchy", "gaussian", "reciprocal", "optimal")
MODES = ("soft", "hard", "st")


def cdf(x, dist):
    """Probability that ``a > b`` for ``x = beta * (a - b)`` under a distribution family."""
    if dist == "logistic":
        return torch.sigmoid(x)
    if dist == "cauchy":
        return torch.atan(x) / math.pi + 0.5
    if dist == "gaussian":
        return 0.5 * torch.erfc(-x / math.sqrt(2.0))
    if dist == "reciprocal":  # clamped so that beta = inf gives 0 or 1, not inf / inf
        x = x.clamp(-1e30, 1e30)
        return 0.5 * (x / (2.0 + x.abs()) + 1.0)
    if dist == "optimal":  # linear near 0, 1/(16 x) tails: diffsort's optimal monotonic sigmoid
        tail = 1.0 / (16.0 * x.abs().clamp(min=0.25))
        return torch.where(x > 0.25, 1.0 - tail, torch.where(x < -0.25, tail, x + 0.5))
    raise ValueError(f"unknown distribution {dist!r}; choose one of {', '.join(DISTRIBUTIONS)}")


def density(x, dist):
    """The family's density at ``x = beta * (a - b)``, scaled to peak 1: the probability of ``==``."""
    if dist == "logistic":  # sech^2(x / 2), written so that it neither overflows nor loses its grad
        e = torch.exp(-x.abs())
        return 4.0 * e / (1.0 + e) ** 2
    if dist == "cauchy":
        return 1.0 / (1.0 + x * x)
    if dist == "gaussian":
        return torch.exp(-0.5 * x * x)
    if dist == "reciprocal":
        return 4.0 / (2.0 + x.abs()) ** 2
    if dist == "optimal":
        ax = x.abs()
        return torch.where(ax <= 0.25, torch.ones_like(x), 1.0 / (16.0 * ax.clamp(min=0.25) ** 2))
    raise ValueError(f"unknown distribution {dist!r}; choose one of {', '.join(DISTRIBUTIONS)}")


def _exact(m, a, b):
    """A bool tensor of exact comparisons as 1.0 / 0.0 in the operands' floating dtype."""
    m = torch.as_tensor(m)
    for v in (a, b):
        if isinstance(v, torch.Tensor) and v.is_floating_point():
            return m.to(v.dtype)
    return m.to(torch.get_default_dtype())


# How far outside [0, 1] a value used as a condition may lie: rounding moves probabilities
# combined by arithmetic (p + q - p * q, 1 - p) by a few ulps.
TRUTH_SLACK = 1e-6


class Relaxation:
    """How one call relaxes its conditions: ``beta``, ``mode`` and ``dist``.

    ``mode`` is 'soft' (probabilities), 'hard' (exact comparisons, 1.0 or 0.0) or 'st'
    (straight-through: the hard value forward, the soft gradient backward). A comparison may
    override ``beta`` and ``dist`` for itself.
    """

    __slots__ = ("beta", "mode", "dist")

    def __init__(self, beta, mode="soft", dist="logistic"):
        self.beta, self.mode, self.dist = beta, mode, dist

    def _decide(self, exact, soft):
        """``exact`` a thunk of the exact value, ``soft`` a thunk of the relaxed one."""
        if self.mode == "soft":
            return soft()
        if self.mode == "hard":
            return exact()
        relaxed = soft()  # straight-through: the exact value, the relaxation's gradient only
        return exact().detach() + (relaxed - relaxed.detach())

    def _x(self, a, b, beta):
        return (a - b) * (self.beta if beta is None else beta)

    def _compare(self, exact, a, b, same, soft):
        """A comparison: ``exact`` Python's operator, ``soft`` a thunk of its relaxation. An
        element or a name compared with itself (``same``, which the compiler decides on the IR:
        not the objects at hand, so that both backends agree) is exact."""
        if same is True:
            return _exact(exact(a, b), a, b)
        return self._decide(lambda: _exact(exact(a, b), a, b), soft)

    def gt(self, a, b, beta=None, dist=None, same=False):
        """``a > b``: F(beta * (a - b))."""
        return self._compare(
            operator.gt, a, b, same, lambda: cdf(self._x(a, b, beta), dist or self.dist)
        )

    def ge(self, a, b, beta=None, dist=None, same=False):
        """``a >= b``: relaxed as ``a > b``; exact ties hold."""
        return self._compare(
            operator.ge, a, b, same, lambda: cdf(self._x(a, b, beta), dist or self.dist)
        )

    def lt(self, a, b, beta=None, dist=None, same=False):
        """``a < b``: F(-beta * (a - b))."""
        return self._compare(
            operator.lt, a, b, same, lambda: cdf(-self._x(a, b, beta), dist or self.dist)
        )

    def le(self, a, b, beta=None, dist=None, same=False):
        """``a <= b``: relaxed as ``a < b``; exact ties hold."""
        return self._compare(
            operator.le, a, b, same, lambda: cdf(-self._x(a, b, beta), dist or self.dist)
        )

    def eq(self, a, b, beta=None, dist=None, same=False):
        """``a == b``: the family's density at beta * (a - b), scaled to peak 1."""
        return self._compare(
            operator.eq, a, b, same, lambda: density(self._x(a, b, beta), dist or self.dist)
        )

    def ne(self, a, b, beta=None, dist=None, same=False):
        """``a != b``: 1 minus the probability of ``==``."""
        return self._compare(
            operator.ne, a, b, same, lambda: 1.0 - density(self._x(a, b, beta), dist or self.dist)
        )

    def truth(self, value):
        """``if v:`` on a relaxed value: its probability is the value itself (in [0, 1]); that
        it is one is checked where the values can be read (not in compiled code, not on meta)."""
        if (
            self.mode != "hard"
            and not torch.compiler.is_compiling()
            and value.device.type != "meta"
            and bool(((value < -TRUTH_SLACK) | (value > 1 + TRUTH_SLACK)).any())
        ):
            raise ValueError(
                "a relaxed value used as a condition must lie in [0, 1] (it is its own "
                f"probability); got values from {value.min().item()} to {value.max().item()}"
            )
        return self._decide(lambda: (value > 0.5).to(value.dtype), lambda: value)

    def min(self, *values, beta=None, inf=False):
        """Soft ``min``: sum_i softmin(beta * v)_i * v_i (over the first dimension for one value).
        ``inf``: some values may be infinite (``extreme`` says how they are weighed)."""
        return self._extreme(values, beta, -1.0, inf, weights=False)

    def max(self, *values, beta=None, inf=False):
        """Soft ``max``: sum_i softmax(beta * v)_i * v_i (over the first dimension for one value)."""
        return self._extreme(values, beta, 1.0, inf, weights=False)

    def argmin(self, *values, beta=None, inf=False):
        """Probabilities over positions of being the minimum: softmin(beta * v)."""
        return self._extreme(values, beta, -1.0, inf, weights=True)

    def argmax(self, *values, beta=None, inf=False):
        """Probabilities over positions of being the maximum: softmax(beta * v)."""
        return self._extreme(values, beta, 1.0, inf, weights=True)

    def _extreme(self, values, beta, sign, inf, weights):
        stacked = _stack_values(values)
        beta = self.beta if beta is None else beta
        if weights:
            hard = lambda: _one_hot((stacked * sign).argmax(0), stacked)  # noqa: E731
        else:
            hard = lambda: stacked.amax(0) if sign > 0 else stacked.amin(0)  # noqa: E731
        return self._decide(hard, lambda: extreme(stacked, beta, sign, inf, weights))


def extreme(stacked, beta, sign, inf=False, weights=False):
    """The soft maximum (``sign`` 1) or minimum (-1) over the first dimension, or with ``weights``
    its softmax weights. With ``inf``, infinite values are weighed by their limit without NaN: one
    at the far end (``+inf`` for a minimum) gets weight 0 and adds nothing, those at the near end
    share all the weight and make the result infinite."""
    if not inf:
        w = torch.softmax(sign * (beta * stacked), 0)
        return w if weights else (w * stacked).sum(0)
    finite = torch.isfinite(stacked)
    safe = torch.where(finite, stacked, 0.0)
    near = (stacked * sign) == math.inf
    any_near, none_finite = near.any(0), ~finite.any(0)
    logits = torch.where(finite, sign * (beta * safe), -math.inf)
    w = torch.softmax(torch.where(none_finite, 0.0, logits), 0)
    share = near.to(safe.dtype) / near.sum(0).clamp(min=1).to(safe.dtype)
    w = torch.where(any_near, share, w)
    if weights:
        return w
    value = (w * safe).sum(0)
    value = torch.where(none_finite, -sign * math.inf, value)
    return torch.where(any_near, sign * math.inf, value)


def _one_hot(index, like):
    return torch.nn.functional.one_hot(index, like.shape[0]).movedim(-1, 0).to(like.dtype)


def and_(p, q):
    """``p and q`` of two probabilities."""
    return p * q


def or_(p, q):
    """``p or q`` of two probabilities."""
    return p + q - p * q


def any_(rx, values):
    """``any(values)`` with relaxed values: the relaxed ``or`` of their truths."""
    p = 0.0
    for v in values:
        p = or_(p, rx.truth(v) if isinstance(v, torch.Tensor) else float(bool(v)))
    return p


def all_(rx, values):
    """``all(values)`` with relaxed values: the relaxed ``and`` of their truths."""
    p = 1.0
    for v in values:
        p = and_(p, rx.truth(v) if isinstance(v, torch.Tensor) else float(bool(v)))
    return p


# ---------------------------------------------------------------------------------------------
# Blending and loops (SEMANTICS 4, 5).


def _same_length(values):
    """Lists blended element by element must have one length: a list whose length a relaxed
    condition decides has no per-example meaning (the compiler refuses the growth it can see)."""
    lengths = {len(v) for v in values if isinstance(v, (list, tuple))}
    if len(lengths) > 1:
        raise ValueError(
            f"avcompile: lists of lengths {sorted(lengths)} are blended: a list's length cannot "
            f"depend on a relaxed condition. Give the list its full length and write its elements."
        )
    return True


_SEQUENCES = (list, tuple)


def _same(a, b):
    """Whether ``a`` and ``b`` are one value, which both branches left as it was: a blend of them
    is that value. Lists and tuples are compared element by element instead (torch.compile does
    not trace ``is`` on them)."""
    return not isinstance(a, _SEQUENCES) and a is b


def _elementwise_blend(fn, p, then, orelse):
    """An unpacked list (or tuple) blended element by element by ``fn``, an element both
    branches left as it was kept as it is. Elements that are rows of a table are compared
    without ``is`` (torch.compile does not trace it on lists); others with it, inline, which
    costs less than a call per element."""
    if then and isinstance(then[0], _SEQUENCES):
        return type(then)(t if _same(t, e) else fn(p, t, e) for t, e in zip(then, orelse))
    return type(then)(t if t is e else fn(p, t, e) for t, e in zip(then, orelse))


def blend(p, then, orelse):
    """p * then + (1 - p) * orelse; an unpacked list blends only the elements that differ."""
    if _same(then, orelse):
        return then
    if isinstance(then, (list, tuple)) and _same_length((then, orelse)):
        return _elementwise_blend(blend, p, then, orelse)
    if isinstance(then, torch.Tensor) and isinstance(orelse, torch.Tensor):
        if then.dtype == orelse.dtype:
            return torch.lerp(orelse, then, p)
    return p * then + (1 - p) * orelse


def blend_inf(p, then, orelse):
    """``blend`` where a value may be infinite (a ``math.inf`` sentinel): where p is 1 the
    then-value is taken as it is and where p is 0 the else-value, so that a branch of probability 0
    contributes nothing, even infinity; in between, the expectation (infinite if a value is)."""
    if _same(then, orelse):
        return then
    if isinstance(then, (list, tuple)) and _same_length((then, orelse)):
        return _elementwise_blend(blend_inf, p, then, orelse)
    if not isinstance(p, torch.Tensor):  # decided by hard values: exactly 0 or 1
        return then if p >= 0.5 else orelse
    take_then, take_else = p >= 1, p <= 0
    same = then == orelse  # (an infinity on both sides, say): as it is, with no slope in p
    # outside the mixture both parts are 0, so that no infinity meets a zero gradient there
    # (p exactly 0 or 1 may still carry a slope: straight-through, a saturated sigmoid)
    apart = take_then | take_else | same
    then_part = torch.where(apart, 0.0, then)
    else_part = torch.where(apart, 0.0, orelse)
    mixed = p * then_part + (1 - p) * else_part
    mixed = torch.where(same, then, mixed)
    return torch.where(take_then, then, torch.where(take_else, orelse, mixed))


def _tensors(p, then, orelse):
    """``then`` and ``orelse`` as tensors: a number in the dtype of the other side (or of ``p``),
    which a float32 tensor made of it first would round."""
    like = next(v for v in (then, orelse, p) if isinstance(v, torch.Tensor))
    return (v if isinstance(v, torch.Tensor) else like.new_tensor(v) for v in (then, orelse))


def blend_finite(p, then, orelse):
    """``blend`` for branches that can produce values that are not finite (a division by zero,
    the square root of a negative): such a value counts as its branch not taken, so it poisons
    neither the value nor the gradient."""
    if isinstance(then, (list, tuple)) and _same_length((then, orelse)):
        return _elementwise_blend(blend_finite, p, then, orelse)
    if not isinstance(p, torch.Tensor):  # decided by hard values: exactly 0 or 1
        return then if p >= 0.5 else orelse
    then, orelse = _tensors(p, then, orelse)
    then_ok, else_ok = torch.isfinite(then), torch.isfinite(orelse)
    safe_then = torch.where(then_ok, then, orelse)
    safe_else = torch.where(else_ok, orelse, safe_then)
    return p * safe_then + (1 - p) * safe_else


def blend_inf_finite(p, then, orelse):
    """``blend_inf`` for a variable that may hold an infinite sentinel, in a branch with guarded
    ops: a NaN, which a guarded op makes of a value that is not finite (``1 / 0``, ``log(0)``,
    the square root of a negative) and a sentinel never is, counts as its branch not taken, as
    in ``blend_finite``; an infinite value is blended as a value, as in ``blend_inf``."""
    if isinstance(then, (list, tuple)) and _same_length((then, orelse)):
        return _elementwise_blend(blend_inf_finite, p, then, orelse)
    if not isinstance(p, torch.Tensor):  # decided by hard values: exactly 0 or 1
        return then if p >= 0.5 else orelse
    then, orelse = _tensors(p, then, orelse)
    then_ok, else_ok = ~torch.isnan(then), ~torch.isnan(orelse)
    safe_then = torch.where(then_ok, then, orelse)
    return blend_inf(p, safe_then, torch.where(else_ok, orelse, safe_then))


def guarded(op, *args):
    """``op(*args)`` for an op that may produce values that are not finite, or infinite
    derivatives (``1 / d`` at 0, ``sqrt`` at 0 or below), inside a relaxed branch. Where it does,
    no gradient flows through the op, so a branch that is (softly) not taken cannot turn into NaN
    or infinite gradients; a value that is not finite is NaN, no value (Python raises there),
    which a blend counts as its branch not taken and tells apart from an infinite sentinel
    (``blend_inf_finite``)."""
    probes = [
        a.detach().requires_grad_() if isinstance(a, torch.Tensor) and a.is_floating_point() else a
        for a in args
    ]
    inputs = [a for a in probes if isinstance(a, torch.Tensor) and a.requires_grad]
    with torch.enable_grad():
        raw = op(*probes)
        slopes = torch.autograd.grad(raw.sum(), inputs, allow_unused=True) if inputs else ()
    raw = raw.detach()
    bad = ~torch.isfinite(raw)
    for slope in slopes:
        if slope is not None:
            bad = bad | ~torch.isfinite(slope)
    safe = [
        torch.where(bad, torch.full_like(a, 0.5), a) if isinstance(a, torch.Tensor) else a
        for a in args
    ]
    return torch.where(bad, torch.where(torch.isfinite(raw), raw, math.nan), op(*safe))


def div(a, b):
    """``a / b`` (named, for ``guarded``)."""
    return a / b


def floordiv(a, b):
    """``a // b`` as Python computes it (the floor of the quotient), with a zero derivative."""
    if isinstance(a, torch.Tensor) or isinstance(b, torch.Tensor):
        return torch.div(a, b, rounding_mode="floor")
    return a // b


def mod(a, b):
    """``a % b`` (named, for ``guarded``)."""
    return a % b


def power(a, b):
    """``a ** b`` (named, for ``guarded``)."""
    return a**b


def _weighted(weight, value):
    """``weight * value`` where a value of weight 0 adds nothing, even if it is infinite."""
    return weight * torch.where(weight == 0, 0.0, value)


def _exit_weighted(weight, value):
    """``weight * value`` for the states examples left by (SEMANTICS 11): a value that is not
    finite adds nothing where its weight is 0, and every other keeps its derivative in the weight,
    which straight-through gradients need where the exact weight is 0."""
    return weight * torch.where((weight == 0) & ~torch.isfinite(value), 0.0, value)


def _add_weighted(acc, weight, value):
    return acc + _weighted(weight, value)


class MaxIterWarning(RuntimeWarning):
    """A relaxed ``while`` was cut off at ``max_iter`` with probability mass left above ``eps``:
    the mass left is put on the last state, which may not be what the program means."""


_warned = set()  # the loops already warned about (by their place in the user's source)
# generated file name -> (the user's file, {generated line: user's line}); the compiler fills it
LINE_MAPS = {}


def _cut_off(cond, p, max_iter):
    code = cond.__code__
    _warn_cut_off(code.co_filename, code.co_firstlineno, code.co_name, p.detach().max(), max_iter)


def _warn_cut_off(filename, line, name, mass, max_iter):
    user_file, line_map = LINE_MAPS.get(filename, (None, {}))
    line = line_map.get(line)
    where = f"{user_file}:{line}" if user_file and line else f"{filename} ({name})"
    if where in _warned:
        return
    _warned.add(where)
    warnings.warn(
        f"the relaxed `while` at {where} was cut off after max_iter={max_iter} iterations with "
        f"probability {float(mass):.3g} of going on (the rest is put on its last state); "
        f"raise max_iter, or check that the loop ends (this warning is shown once per loop)",
        MaxIterWarning,
        stacklevel=4,
    )


def mark_batch_dynamic(values, dim):
    """Tell torch.compile that dimension ``dim`` (the batch's: 0 batch-first, -1 batch-last) of
    the tensors in ``values`` (nested in lists and tuples, or a relaxed integer's) varies from
    call to call, so that code compiled for one batch size serves every other. Not traceable:
    call it outside compiled code."""
    for value in values:
        if isinstance(value, (list, tuple)):
            mark_batch_dynamic(value, dim)
        elif isinstance(value, RelaxedInt):
            mark_batch_dynamic([value.probs], dim)
        elif isinstance(value, torch.Tensor) and value.dim() > 0:
            torch._dynamo.maybe_mark_dynamic(value, dim % value.dim())


# Under torch.compile a relaxed `while` runs as Python: whether it goes on is a question to the
# data at every iteration, and its body, which a hard variable (bubble sort's `n`) may change
# from one iteration to the next, would be compiled again for each value. The compiled code
# before and after the loop is two graphs; the loop's results mark their batch dimension as
# varying, so that a new batch size compiles nothing new after the loop either.
@torch.compiler.disable
def relaxed_while(
    cond, body, state, relaxed, batch, max_iter, eps, expect=(), inf=False, ints=(), dists=()
):
    """The expectation of a relaxed ``while`` over the iteration at which it stops.

    ``state`` holds the variables the body assigns; ``relaxed[k]`` tells whether variable k is
    accumulated (relaxed) or takes its value after the last iteration run (hard); the variables
    listed in ``ints`` are relaxed integers, accumulated as distributions. For each index in
    ``expect`` (a hard variable), the expectation of its value where each example stopped is
    returned after the state, per example; for each in ``dists``, then, its distribution (a
    relaxed integer). ``inf``: a relaxed value may be infinite, and one of weight 0 must add
    nothing. A loop cut off at ``max_iter`` with mass left above ``eps`` warns once, naming its
    line in the user's source.
    """
    times, add = (_weighted, _add_weighted) if inf else (torch.mul, torch.addcmul)
    ints = frozenset(ints)

    def start(k, weight, s):
        if k in ints:
            return accumulate(None, weight, s)
        return times(weight, pack(s)) if relaxed[k] else None

    def step(k, a, weight, s):
        if k in ints:
            return accumulate(a, weight, s)
        return add(a, weight, pack(s)) if relaxed[k] else None

    p = batch.prob(cond(*state))
    if p.device.type == "meta":
        raise RuntimeError(
            "a relaxed `while` decides from the values when it stops, and meta tensors hold "
            "none: run the module on tensors with data (a program without a relaxed `while` "
            "runs on the meta device)"
        )
    acc = [start(k, 1 - p, s) for k, s in enumerate(state)]
    means = [(1 - p) * float(state[k]) for k in expect]
    laws = [accumulate(None, 1 - p, state[k]) for k in dists]
    k = 0
    while k < max_iter and bool(p.max() > eps):
        state = body(*state)
        p_next = p * cond(*state)
        weight = p - p_next
        acc = [step(j, a, weight, s) for j, (a, s) in enumerate(zip(acc, state))]
        means = [m + weight * float(state[j]) for m, j in zip(means, expect)]
        laws = [accumulate(law, weight, state[j]) for law, j in zip(laws, dists)]
        p = p_next
        k += 1
    if k == max_iter and bool(p.max() > eps):
        _cut_off(cond, p, max_iter)
    result = []
    for j, (a, s) in enumerate(zip(acc, state)):
        if a is None:
            result.append(s)
            continue
        a = step(j, a, p, s)
        result.append(list(a.unbind(0)) if isinstance(s, list) else a)
    result += [m + p * float(state[j]) for m, j in zip(means, expect)]
    result += [accumulate(law, p, state[j]) for law, j in zip(laws, dists)]
    mark_batch_dynamic(result, -1)
    mark_batch_dynamic([batch.like], 0)
    return tuple(result)


# ---------------------------------------------------------------------------------------------
# Early exits (SEMANTICS 11): what examples leave to an extent is set aside with its mass.


class Exits:
    """The states that examples leave a loop (or an iteration, or the function) with, each with
    the mass of examples that left there; ``merge`` mixes them with the state of those still
    running: the expectation over the point at which each example left."""

    __slots__ = ("masses", "states")

    def __init__(self):
        self.masses, self.states = [], []

    def leave(self, alive, state):
        """Set ``state`` aside with mass ``alive``; nothing runs on from here (mass 0)."""
        self.masses.append(alive)
        self.states.append(tuple(list(v) if isinstance(v, list) else v for v in state))
        return torch.zeros_like(alive)

    def merge(self, alive, state, hows):
        """Each value of ``state`` mixed with those set aside, by mass: ``'mean'`` for a value
        (its expectation), ``'law'`` for an integer (its distribution); and the mass of them all.
        The collection is emptied (a loop's `continue`s are merged at every iteration)."""
        if not self.masses:
            return tuple(
                _certain(v, alive) if how == "mean" else v for v, how in zip(state, hows)
            ) + (alive,)
        masses = self.masses + [alive]
        states = self.states + [tuple(state)]
        self.masses, self.states = [], []
        total = masses[0]
        for m in masses[1:]:
            total = total + m
        none = total <= 0  # a path no example takes: its state is any, keep the last
        safe = torch.where(none, 1.0, total)
        weights = [torch.where(none, 0.0, m / safe) for m in masses[:-1]]
        weights.append(torch.where(none, 1.0, alive / safe))
        out = []
        for k, how in enumerate(hows):
            values = [st[k] for st in states]
            out.append(_mix(weights, values) if how == "mean" else _mix_laws(weights, values))
        return tuple(out) + (total,)


def _certain(value, alive):
    """A value as a per-example one (a hard number is the same in every example)."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return torch.full_like(alive, float(value))
    return value


def _mix(weights, values):
    if isinstance(values[0], (list, tuple)) and _same_length(values):
        mixed = (_mix(weights, [v[j] for v in values]) for j in range(len(values[0])))
        return type(values[0])(mixed)
    out = None
    for w, v in zip(weights, values):
        v = torch.as_tensor(v, dtype=w.dtype, device=w.device)
        part = _exit_weighted(w, v)
        out = part if out is None else out + part
    return out


def _mix_laws(weights, values):
    out = None
    for w, v in zip(weights, values):
        out = accumulate(out, w, v)
    return out


def share(alive_then, alive_else, p):
    """The weight of the then-branch in a blend of branches that exit to an extent: its share of
    the mass still running after the ``if`` (``p`` where no mass runs on)."""
    total = alive_then + alive_else
    return torch.where(total > 0, alive_then / torch.where(total > 0, total, 1.0), p)


class Stopping:
    """The stopping rule of a loop that examples leave to an extent (SEMANTICS 5, 11): it stops
    once every example's mass still running is at most ``eps`` of what entered, or after
    ``max_iter`` iterations, warning then as a relaxed ``while`` does."""

    __slots__ = ("entry", "max_iter", "eps", "started")

    def __init__(self, alive, max_iter, eps):
        self.entry, self.max_iter, self.eps, self.started = alive, max_iter, eps, 0

    def next(self):
        """An iteration starts."""
        self.started += 1

    def done(self, alive):
        """Whether the loop stops here, with ``alive`` the mass still running."""
        going = bool((alive > self.eps * self.entry).any())
        if going and self.started > self.max_iter:
            frame = sys._getframe(1)
            _warn_cut_off(
                frame.f_code.co_filename,
                frame.f_lineno,
                frame.f_code.co_name,
                alive.detach().max(),
                self.max_iter,
            )
            return True
        return not going


# ---------------------------------------------------------------------------------------------
# Soft min / max (SEMANTICS 8) and calls.


def _stack_values(values):
    if len(values) == 1:
        return pack(values[0])
    like = next(v for v in values if isinstance(v, torch.Tensor))
    tensors = [torch.as_tensor(v, dtype=like.dtype, device=like.device) for v in values]
    return torch.stack(torch.broadcast_tensors(*tensors))


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


# ---------------------------------------------------------------------------------------------
# DSL support: what the code that ``avcompile.dsl`` generates calls besides the above.


def call_first(fn, args, relaxed):
    """Call a DSL lambda with batch-first tensors, as AlgoVision does, and return its result as
    it is: an index, a ``VarInt``'s value or a ``Var``'s initial value (not per example)."""
    return fn(*[_to_first(pack(a)) if r else a for a, r in zip(args, relaxed)])


def as_range(value, what="For"):
    """What a DSL ``For`` iterates over: ``range(n)`` for an int n, else the list of values."""
    if isinstance(value, int):
        return range(value)
    if isinstance(value, (str, torch.Tensor)) or not hasattr(value, "__iter__"):
        raise TypeError(
            f"{what}: the range must be an int or a list of ints, not {type(value).__name__}"
        )
    return list(value)


def let_value(value, var, what):
    """A lambda's result written to a whole DSL variable, as AlgoVision's ``Let`` writes it: a
    tensor must have the variable's shape, a number fills it (``value * ones_like(var)``)."""
    like = pack(var)
    if isinstance(value, torch.Tensor):
        if value.shape != like.shape:
            shapes = [tuple(s[-1:]) + tuple(s[:-1]) for s in (value.shape, like.shape)]
            raise ValueError(
                f"{what}: the value has shape {shapes[0]} but the variable has shape "
                f"{shapes[1]} (batch first); a Let must keep the variable's shape"
            )
        return value
    if isinstance(value, (int, float)):
        return value * torch.ones_like(like)
    raise TypeError(
        f"{what}: the lambda returned {type(value).__name__}; a Let takes a tensor, "
        f"an int or a float"
    )


def weighted_write(var, value, p):
    """``Let('x', [w], v)`` with a probability-weight index ``w``: ``p * v + (1 - p) * x``, where
    ``v`` spreads over the dimensions of ``x`` that it lacks (AlgoVision's probabilistic update).
    It is the weighted write of a relaxed position (``x[k] = v``), with weights over every
    position of ``x``."""
    var = pack(var)
    if isinstance(value, torch.Tensor):
        value = pack(value)
        while 0 < value.dim() < var.dim():
            value = value.unsqueeze(-2)  # batch-last: new dimensions go before the batch
    shape = torch.broadcast_shapes(var.shape, p.shape)
    if tuple(shape) != tuple(var.shape):  # weights that widen the variable, as AlgoVision allows
        var = var.expand(shape)

    def spread(part):
        return (
            value.expand_as(part)
            if isinstance(value, torch.Tensor)
            else torch.full_like(part, value)
        )

    return weighted_put(var, 0, positions(p.expand(shape)), spread)


def index_write(var, index, value, what):
    """``Let('x', [...], v)`` whose index list holds lambdas of per-example values: each gives an
    int (an element write), or, as the only index, a batch-first tensor of probability weights."""
    if any(isinstance(k, torch.Tensor) for k in index):
        if len(index) != 1:
            raise ValueError(
                f"{what}: a probability-weight index must be the only index, got "
                f"{len(index)} indices"
            )
        return weighted_write(var, value, index[0].movedim(0, -1))
    for k in index:
        if not isinstance(k, (int, slice)):
            raise TypeError(
                f"{what}: an index must be an int or a tensor of probability "
                f"weights, not {type(k).__name__}"
            )
    return put(pack(var), tuple(index), value)


def mode_of(rx, mode):
    """``rx`` with another mode: a DSL ``If``/``While`` with its own ``hard``."""
    return Relaxation(rx.beta, mode, rx.dist)


def _cosine(a, b):
    # The examples' last dimension: batch-last, the one before the batch.
    return torch.nn.functional.cosine_similarity(a, b, dim=-2)


def cat_prob_eq(rx, a, b, beta=None):
    """``CatProbEq``: 1 / cosh(beta * (1 - cos(a, b))), cosine over each example's last
    dimension; hard, whether that is above 1/2."""
    beta = rx.beta if beta is None else beta
    p = 1.0 / torch.cosh((1.0 - _cosine(a, b)) * beta)
    return rx._decide(lambda: (p > 0.5).to(p.dtype), lambda: p)


def cosine_similarity(rx, a, b):
    """``CosineSimilarity``: cos(a, b) over each example's last dimension, as a probability;
    hard, whether it is above 1/2."""
    p = _cosine(a, b)
    return rx._decide(lambda: (p > 0.5).to(p.dtype), lambda: p)


def check_example(value, example_shape, dtype, what):
    """A DSL ``Input``/``Output``'s declared shape (of one example) and dtype."""
    if example_shape is not None and tuple(shape(value)) != tuple(example_shape):
        raise ValueError(
            f"{what}: the shape of one example is {tuple(shape(value))}, but "
            f"{tuple(example_shape)} is declared (the batch dimension comes first and "
            f"is not part of the declared shape)"
        )
    if dtype is not None and pack(value).dtype != dtype:
        raise ValueError(f"{what}: the dtype is {pack(value).dtype}, but {dtype} is declared")

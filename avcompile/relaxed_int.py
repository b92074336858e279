"""Relaxed integers at run time (SEMANTICS 10): per-example distributions over consecutive integers.

A relaxed integer ``k`` is held as ``RelaxedInt(lo, probs)``: ``probs[m, b]`` is the probability
that ``k == lo + m`` in example ``b`` (batch last, like every relaxed value; a batch dimension of 1
broadcasts). Its support is sized at run time from the hard values that flow into it: a blend
covers both supports, ``k + c`` moves it, an operation on two relaxed integers covers every pair
(as if they were independent). Where a relaxed integer's variable holds a plain ``int`` (a value
certain in every example, ``m = i``), the functions here take it as it is, so a value that is
certain costs nothing until a relaxed condition mixes it.

Indexing with a relaxed integer reads the expectation sum_m P(k = m) x[m] and writes
x[m] <- P(k = m) v + (1 - P(k = m)) x[m] for every m: AlgoVision's weighted left-hand write, which
``weighted_put`` implements for the DSL's weight tensors as well. Positions of the support outside
the array (Python would raise ``IndexError`` there, but a relaxed program visits them in examples
whose probability of being there is 0) read as nothing and are not written; negative positions
count from the end, as in Python.
"""

import operator

import torch

__all__ = [
    "RelaxedInt",
    "accumulate",
    "blend_int",
    "compare_int",
    "expect",
    "probs",
    "read",
    "positions",
    "weighted_put",
    "write",
]

_COMPARE = {
    "gt": operator.gt,
    "ge": operator.ge,
    "lt": operator.lt,
    "le": operator.le,
    "eq": operator.eq,
    "ne": operator.ne,
}


class RelaxedInt:
    """A per-example distribution over the integers ``lo, ..., lo + len(probs) - 1``."""

    __slots__ = ("lo", "probs")

    def __init__(self, lo, probs):
        self.lo, self.probs = lo, probs

    def __repr__(self):
        return f"RelaxedInt(lo={self.lo}, probs={self.probs!r})"

    @property
    def hi(self):
        """One past the largest value of the support."""
        return self.lo + self.probs.shape[0]

    def values(self):
        """The support's values as a float tensor, shaped to broadcast against ``probs``."""
        p = self.probs
        return torch.arange(self.lo, self.hi, dtype=p.dtype, device=p.device).unsqueeze(-1)

    def widen(self, lo, hi):
        """``probs`` over the support ``lo, ..., hi - 1`` (which contains this one's)."""
        before, after = self.lo - lo, hi - self.hi
        if not before and not after:
            return self.probs
        return torch.nn.functional.pad(self.probs, (0, 0, before, after))

    # Arithmetic (SEMANTICS 10): with a hard int it maps the support; with another relaxed integer
    # it combines the two as independent; with anything else the relaxed integer is its expectation.
    def __add__(self, other):
        if isinstance(other, int) and not isinstance(other, bool):
            return RelaxedInt(self.lo + other, self.probs)
        return _combine(operator.add, self, other)

    __radd__ = __add__

    def __sub__(self, other):
        if isinstance(other, int) and not isinstance(other, bool):
            return RelaxedInt(self.lo - other, self.probs)
        return _combine(operator.sub, self, other)

    def __rsub__(self, other):
        return _combine(operator.sub, other, self)

    def __neg__(self):
        return RelaxedInt(-(self.hi - 1), self.probs.flip(0))

    def __pos__(self):
        return self

    def __mul__(self, other):
        return _combine(operator.mul, self, other)

    def __rmul__(self, other):
        return _combine(operator.mul, other, self)

    def __floordiv__(self, other):
        return _combine(operator.floordiv, self, other)

    def __rfloordiv__(self, other):
        return _combine(operator.floordiv, other, self)

    def __mod__(self, other):
        return _combine(operator.mod, self, other)

    def __rmod__(self, other):
        return _combine(operator.mod, other, self)


def _is_int(v):
    return isinstance(v, int)  # bools too, as Python counts them


def _point(value, like):
    """A certain ``value`` as a relaxed integer, with the dtype and device of tensor ``like``."""
    if not _is_int(value):
        raise TypeError(
            f"a relaxed integer was given the value {value!r} of type {type(value).__name__}; "
            f"a variable used as a position (an index, a comparison of positions) must hold ints"
        )
    return RelaxedInt(int(value), torch.ones((1, 1), dtype=like.dtype, device=like.device))


def _as_dist(value, like):
    return value if isinstance(value, RelaxedInt) else _point(value, like)


def _tensor_of(*values):
    """The first tensor among ``values`` (a relaxed integer's probabilities count)."""
    for v in values:
        if isinstance(v, RelaxedInt):
            return v.probs
        if isinstance(v, torch.Tensor):
            return v
    return None


def _combine(op, a, b):
    """``op(a, b)`` where ``a`` or ``b`` is a relaxed integer: on two integers the distribution of
    the result over every pair of values (independent), otherwise the expectation's arithmetic."""
    if not all(isinstance(v, RelaxedInt) or _is_int(v) for v in (a, b)):
        return op(_mean(a), _mean(b))
    like = _tensor_of(a, b)
    a, b = _as_dist(a, like), _as_dist(b, like)
    table, ok = [], []
    for x in range(a.lo, a.hi):
        for y in range(b.lo, b.hi):
            try:
                table.append(op(x, y))
                ok.append(True)
            except ZeroDivisionError:  # that pair has no value: its mass is dropped
                table.append(0)
                ok.append(False)
    joint = (a.probs.unsqueeze(1) * b.probs.unsqueeze(0)).flatten(0, 1)
    if not all(ok):
        keep = torch.tensor(ok, device=joint.device)
        joint = joint[keep]
        table = [v for v, k in zip(table, ok) if k]
        if not table:
            raise ZeroDivisionError("integer division or modulo by zero in every example")
    lo, hi = min(table), max(table) + 1
    index = torch.tensor([v - lo for v in table], device=joint.device)
    out = joint.new_zeros((hi - lo, joint.shape[-1]))
    return RelaxedInt(lo, out.index_add(0, index, joint))


def expect(value, batch):
    """A relaxed integer used as a number: its expectation per example (an int that is certain
    in every example, as ``batch``'s per-example value)."""
    if isinstance(value, RelaxedInt):
        mean = (value.values() * value.probs).sum(0)
        return mean.expand(batch.size) if mean.shape[-1] != batch.size else mean
    return batch.full(value)


def _mean(value):
    return (value.values() * value.probs).sum(0) if isinstance(value, RelaxedInt) else value


def blend_int(p, then, orelse):
    """The relaxed integer that is ``then`` with probability ``p`` and ``orelse`` otherwise."""
    if then is orelse or (_is_int(then) and _is_int(orelse) and then == orelse):
        return then
    if not isinstance(p, torch.Tensor):  # decided by hard values: exactly 0 or 1
        return then if p >= 0.5 else orelse
    a, b = _as_dist(then, p), _as_dist(orelse, p)
    lo, hi = min(a.lo, b.lo), max(a.hi, b.hi)
    return RelaxedInt(lo, torch.lerp(b.widen(lo, hi), a.widen(lo, hi), p))


def accumulate(acc, weight, value):
    """``acc + weight * value`` of relaxed integers (``acc`` None for 0): how a relaxed ``while``
    sums its state over the iteration at which it stops."""
    value = _as_dist(value, weight)
    if acc is None:
        return RelaxedInt(value.lo, weight * value.probs)
    lo, hi = min(acc.lo, value.lo), max(acc.hi, value.hi)
    return RelaxedInt(lo, torch.addcmul(acc.widen(lo, hi), weight, value.widen(lo, hi)))


def compare_int(rx, name, a, b):
    """``a <op> b`` where an operand is a relaxed integer: the probability read off the
    distributions (two relaxed integers as independent); against a relaxed real value, the
    expectation over the integer's values of the relaxed comparison."""
    exact = _COMPARE[name]
    if not isinstance(a, RelaxedInt) and not isinstance(b, RelaxedInt):
        if isinstance(a, torch.Tensor) or isinstance(b, torch.Tensor):
            return getattr(rx, name)(a, b)
        return 1.0 if exact(a, b) else 0.0
    if isinstance(a, RelaxedInt) and isinstance(b, torch.Tensor):
        return (a.probs * getattr(rx, name)(a.values(), b.unsqueeze(0))).sum(0)
    if isinstance(b, RelaxedInt) and isinstance(a, torch.Tensor):
        return (b.probs * getattr(rx, name)(a.unsqueeze(0), b.values())).sum(0)
    like = _tensor_of(a, b)
    a, b = _as_dist(a, like), _as_dist(b, like)
    holds = torch.tensor(
        [[exact(x, y) for y in range(b.lo, b.hi)] for x in range(a.lo, a.hi)],
        dtype=like.dtype,
        device=like.device,
    )
    # P(a op b) = sum_x sum_y P(a = x) P(b = y) [x op y]
    return (a.probs * (holds.unsqueeze(-1) * b.probs.unsqueeze(0)).sum(1)).sum(0)


def probs(value, size, batch):
    """The distribution of ``value`` over ``0, ..., size - 1`` per example (``size`` defaults to
    one past its largest value); mass outside that range is dropped."""
    if not isinstance(value, RelaxedInt):
        value = _point(value, torch.empty(0, dtype=batch.dtype, device=batch.device))
    if size is None:
        size = max(value.hi, 1)
    lo, hi = max(value.lo, 0), min(value.hi, size)
    out = value.probs.new_zeros((size, value.probs.shape[-1]))
    if hi > lo:
        out = out.index_copy(
            0,
            torch.arange(lo, hi, device=out.device),
            value.probs[lo - value.lo : hi - value.lo],
        )
    return out.expand(size, batch.size) if out.shape[-1] != batch.size else out


# ---------------------------------------------------------------------------------------------
# Indexing (SEMANTICS 7): reads are expectations, writes are weighted.


def _in_range(k, n):
    """``k`` over the positions of an array of length ``n``: negative values count from the end
    (their probability adds to the position they name, as ``x[-1]`` is ``x[n - 1]``) and values
    outside the array are dropped. None when no value lies in the array."""
    if k.lo >= 0 and k.hi <= n:
        return k
    runs = []  # (first row, first position, count) of the negative and the non-negative values
    for lo, hi, shift in ((max(k.lo, -n), min(k.hi, 0), n), (max(k.lo, 0), min(k.hi, n), 0)):
        if hi > lo:
            runs.append((lo - k.lo, lo + shift, hi - lo))
    if not runs:
        return None
    first = min(pos for _, pos, _ in runs)
    last = max(pos + count for _, pos, count in runs)
    probs = None
    for row, pos, count in runs:
        part = torch.nn.functional.pad(
            k.probs[row : row + count], (0, 0, pos - first, last - pos - count)
        )
        probs = part if probs is None else probs + part
    return RelaxedInt(first, probs)


def _along(weights, dim, ndim):
    """``weights`` ``[S, B]`` shaped to broadcast along dimension ``dim`` of a batch-last tensor
    with ``ndim`` dimensions (weights with a dimension for each of the tensor's from ``dim`` on,
    one per element, are as they are)."""
    if weights.dim() == ndim - dim:
        return weights
    return weights.reshape(weights.shape[:1] + (1,) * (ndim - dim - 2) + weights.shape[1:])


def _safe_weighted(weights, values):
    """``weights * values`` where an infinite value of weight 0 adds nothing (not NaN); every
    other value keeps its derivative in the weight, which straight-through gradients need even
    where the weight is exactly 0."""
    return weights * torch.where(torch.isinf(values) & (weights == 0), 0.0, values)


def as_array(x, like=None):
    """A relaxed array as one batch-last tensor. An unpacked array (a list of its elements) and a
    table of lists (a list of rows, each a list or a tensor) are stacked; a number among their
    elements is the same in every example (batch dimension 1), in the dtype of their tensors (else
    of tensor ``like``, else the default one). The rows of a table must have one shape."""
    if not isinstance(x, (list, tuple)):
        return x
    like = _first_tensor(x, like)
    dtype, device = (like.dtype, like.device) if like is not None else (None, None)
    parts = [as_array(v, like) for v in x]
    parts = [
        v if isinstance(v, torch.Tensor) else torch.full((1,), v, dtype=dtype, device=device)
        for v in parts
    ]
    if not parts:
        return torch.empty((0, 1), dtype=dtype, device=device)
    shapes = {v.shape[:-1] for v in parts}
    if len(shapes) > 1:
        raise ValueError(
            f"avcompile: a table whose rows have the shapes {sorted(map(tuple, shapes))} is used "
            f"as one array (read or written at a relaxed position, say): its rows must have one "
            f"shape. Give every row the same length."
        )
    # per-example values beside shared ones (compared, not hashed: a batch size that
    # torch.compile holds as a symbol stays one)
    if any(v.shape[-1] != parts[0].shape[-1] for v in parts):
        parts = torch.broadcast_tensors(*parts)
    return torch.stack(parts)


def _first_tensor(x, default=None):
    """The first tensor in a nested list (a floating one), else ``default``."""
    for v in x:
        found = _first_tensor(v) if isinstance(v, (list, tuple)) else v
        if isinstance(found, torch.Tensor) and found.is_floating_point():
            return found
    return default


def _relaxed_positions(index, relaxed, x):
    """``index`` with its relaxed components (positions ``relaxed``) as relaxed integers, also
    those certain in every example (a plain int): a position outside the array then reads
    nothing and is not written, as for any relaxed position."""
    if not relaxed:
        return index
    like = _tensor_of(*index)
    if like is None or not like.is_floating_point():
        like = x if x.is_floating_point() else torch.empty(0, device=x.device)
    out = list(index)
    for k in relaxed:
        if not isinstance(out[k], RelaxedInt):
            out[k] = _point(out[k], like)
    return tuple(out)


def read(x, index, inf=False, relaxed=()):
    """``x[index]`` of a batch-last array (a shared one broadcasts, its batch dimension 1), where
    the components at positions ``relaxed`` of the index are relaxed integers. ``inf``: the
    array may hold infinite values, which must add nothing where their probability is 0."""
    index = index if isinstance(index, tuple) else (index,)
    x = as_array(x, _tensor_of(*index))
    if relaxed and not any(isinstance(index[k], RelaxedInt) for k in relaxed):
        if all(-n <= index[k] < n for k, n in ((k, x.shape[_dim_of(index, k)]) for k in relaxed)):
            return _read(x, index, 0, torch.mul)  # certain and inside: an ordinary read
    index = _relaxed_positions(index, relaxed, x)
    if not x.is_floating_point():  # a hard array of integers: read as numbers
        x = x.to(_tensor_of(*index).dtype)
    return _read(x, index, 0, _safe_weighted if inf else torch.mul)


def _dim_of(index, k):
    """The dimension of the array that component ``k`` of ``index`` indexes."""
    return sum(1 for c in index[:k] if isinstance(c, slice))


def _read(x, index, dim, times):
    for k in index:
        if isinstance(k, RelaxedInt):
            x = _mean_along(x, k, dim, times)
        elif isinstance(k, slice):
            x = x[(slice(None),) * dim + (k,)]
            dim += 1
        else:
            x = x.select(dim, k)
    return x


def _mean_along(x, k, dim, times):
    """sum_m P(k = m) x[m] along dimension ``dim``."""
    inside = _in_range(k, x.shape[dim])
    if inside is None:  # no value of the support lies in the array
        shape = list(torch.broadcast_shapes(x.select(dim, 0).shape, k.probs.shape[1:]))
        return x.new_zeros(shape)
    w = _along(inside.probs, dim, x.dim())
    return times(w, x.narrow(dim, inside.lo, inside.probs.shape[0])).sum(dim)


def write(x, index, value, inf=False, relaxed=()):
    """``x`` with ``x[index] = value`` (a new tensor), where the components at positions
    ``relaxed`` of the index are relaxed integers: each position m is set to
    P(k = m) value + (1 - P(k = m)) x[m]. ``inf``: a value may be infinite, and one of weight 0
    must change nothing."""
    index = index if isinstance(index, tuple) else (index,)
    x = as_array(x, _tensor_of(*index, value))
    value = as_array(value, x)  # a row of a table of lists
    return _write(x, _relaxed_positions(index, relaxed, x), value, 0, inf)


def _write(x, index, value, dim, inf=False):
    if not index:
        if isinstance(value, torch.Tensor):
            return value.expand_as(x) if value.shape != x.shape else value
        return torch.full_like(x, value)
    k, rest = index[0], index[1:]
    if isinstance(k, RelaxedInt):
        new = lambda part: _write(part, rest, value, dim + 1, inf)  # noqa: E731
        return weighted_put(x, dim, k, new, inf)
    if isinstance(k, slice):
        part = x[(slice(None),) * dim + (k,)]
        new = _write(part, rest, value, dim + 1, inf)
        start, stop, step = k.indices(x.shape[dim])
        return torch.slice_scatter(x, new, dim, start, stop, step)
    new = _write(x.select(dim, k), rest, value, dim, inf)
    return torch.select_scatter(x, new, dim, k)


def positions(weights):
    """Probability weights over the positions of an array (batch-last ``[n, ..., B]``, one weight
    per position or per element) as the relaxed position that a weighted write takes: how the
    DSL's ``Let('x', [w], v)`` writes (AlgoVision's weighted left-hand write)."""
    return RelaxedInt(0, weights)


def weighted_put(x, dim, weights, new, inf=False):
    """``x`` where the slices along ``dim`` are blended with ``new(slices)`` by per-example
    weights: x[m] <- w_m new(x[m]) + (1 - w_m) x[m]. ``weights`` is a relaxed integer (its
    probabilities over its support) or a batch-last tensor of weights over every position (the
    DSL's weighted write). ``inf``: a side of weight 0 adds nothing, even if it is infinite."""
    if not isinstance(weights, RelaxedInt):
        weights = RelaxedInt(0, weights)
    weights = _in_range(weights, x.shape[dim])
    if weights is None:  # no value of the support lies in the array: nothing is written
        return x
    count = weights.probs.shape[0]
    old = x.narrow(dim, weights.lo, count)
    w = _along(weights.probs, dim, x.dim())
    mixed = _blend_safe(w, new(old), old) if inf else torch.lerp(old, new(old), w)
    return torch.slice_scatter(x, mixed.expand_as(old), dim, weights.lo, weights.lo + count)


def _blend_safe(w, then, orelse):
    """w * then + (1 - w) * orelse, where a side of weight 0 adds nothing even if infinite."""
    return _safe_weighted(w, then) + _safe_weighted(1 - w, orelse)

"""Infinite sentinels: where a value may be infinite, blends and soft extrema weigh it, never 0 * inf.

Shortest paths and DP tables start at infinity (``best = math.inf``, ``torch.full(..., math.inf)``).
A relaxed blend ``p * then + (1 - p) * else`` of such a value gives NaN where p is 0 or 1 (0 * inf),
and a soft ``min`` gives NaN for an entry of weight 0; the exact program is finite there. This pass
finds the values that may be infinite, those computed from an infinite literal (``math.inf``,
``float('inf')``, ``torch.inf``), following the program in order: a name may be infinite from an
assignment of such a value on, until it is given a finite one, the branches of an ``if`` are joined
and a loop's body is followed to a fixed point. It marks the blends, soft extrema, relaxed loops
and reads and writes at relaxed positions that take them, which then use the runtime's
infinity-safe forms: a branch, a term or a position of probability 0 contributes nothing, whatever
its value. Only those: a blend that is marked no longer counts a value that is not finite as its
branch not taken, as a blend of a branch with guarded ops (guards.py) does, except a NaN, which a
sentinel never is (``rt.blend_inf_finite``). Programs without infinite literals are untouched and
pay nothing.
"""

import math
from dataclasses import replace

from .. import ir
from ..ir import RELAXED, RELAXED_INT, Callee

_INFINITE_ATTRS = frozenset({"inf", "infty", "Infinity", "PINF", "NINF"})
_FINITE = (ir.Compare, ir.BoolOp, ir.Not, ir.Truth, ir.Shape)  # probabilities and shapes


def mark_infinities(fn):
    """``fn`` with the blends, extrema and loops that may see an infinite value marked."""
    if not any(_is_infinite_literal(n) for s in fn.body for n in ir.walk(s)):
        return fn
    body, _ = _Marker().block(fn.body, frozenset())
    return replace(fn, body=body)


def _is_infinite_literal(e):
    if isinstance(e, ir.Const):
        return isinstance(e.value, float) and math.isinf(e.value)
    if isinstance(e, ir.Attr):
        return e.attr in _INFINITE_ATTRS
    if isinstance(e, ir.Call) and e.callee is Callee.BUILTIN and e.op.name == "float":
        return any(
            isinstance(a, ir.Const) and isinstance(a.value, str) and "inf" in a.value.lower()
            for a in e.args
        )
    return False


def _may_be_infinite(e, tainted):
    if e is None or isinstance(e, _FINITE):
        return False
    if isinstance(e, ir.Name):
        return e.id in tainted
    if _is_infinite_literal(e):
        return True
    if isinstance(e, ir.Call) and e.callee is Callee.BUILTIN and e.op.name == "len":
        return False
    return any(_may_be_infinite(c, tainted) for c in ir.children(e))


class _Marker:
    """Walks the program in order with the names that may hold an infinite value *there* (a
    value is infinite only from an assignment of one on, until the name is given a finite value),
    joining the branches of an ``if`` and iterating a loop's body to a fixed point."""

    def __init__(self):
        self.leaving = []  # per enclosing loop: the names that may be infinite where it is left

    def block(self, stmts, tainted):
        """The statements marked, and the names that may be infinite after them."""
        out = []
        for s in stmts:
            s, tainted = self.stmt(s, tainted)
            out.append(s)
        return tuple(out), tainted

    def stmt(self, s, tainted):
        mark = lambda e: self.expr(e, tainted)  # noqa: E731
        if isinstance(s, ir.Assign):
            after = _assign(s.targets, s.value, tainted)
            targets = tuple(self.expr(t, tainted | after) for t in s.targets)  # written at
            return replace(s, targets=targets, value=mark(s.value)), after
        if isinstance(s, ir.If):
            body, then = self.block(s.body, tainted)
            orelse, other = self.block(s.orelse, tainted)
            s = replace(s, test=mark(s.test), body=body, orelse=orelse)
            if s.relaxed:
                names = [n.id for n in s.blended] + [f.var.id for f in s.fused]
                infinite = [n for n in names if n in then | other]
                infinite += [f.var.id for f in s.fused if _may_be_infinite(f.value, tainted)]
                if infinite:
                    s = replace(s, infinite=tuple(dict.fromkeys(infinite)))
            return s, then | other
        if isinstance(s, (ir.While, ir.For)):
            return self.loop(s, tainted)
        if isinstance(s, (ir.Jump, ir.Exit)) and self.leaving:
            self.leaving[-1] |= tainted
        return ir.map_children(s, mark), tainted

    def loop(self, s, tainted):
        """A loop marked under the names that may be infinite at the start of any iteration: those
        before it, and those at the end of its body or where it is left, to a fixed point."""
        head = tainted
        while True:
            self.leaving.append(set())
            start = head
            if isinstance(s, ir.For):
                start = _assign((s.target,), s.iter, head)
            body, end = self.block(s.body, start)
            widened = head | end | self.leaving.pop()
            if widened == head:
                break
            head = widened
        head |= {twin for name, twin in s.stopped if name in head}  # expectations after it
        if isinstance(s, ir.For):
            return replace(s, iter=self.expr(s.iter, tainted), body=body), head
        s = replace(s, test=self.expr(s.test, head), body=body)
        if s.relaxed and any(n.id in head for n in s.carried if n.kind == RELAXED):
            s = replace(s, infinite=True)
        return s, head

    def expr(self, e, tainted):
        e = ir.map_children(e, lambda n: self.expr(n, tainted))
        infinite = lambda e: _may_be_infinite(e, tainted)  # noqa: E731
        if isinstance(e, ir.IfExp) and e.kind == RELAXED and e.test.kind == RELAXED:
            if infinite(e.body) or infinite(e.orelse):
                return replace(e, infinite=True)
        if isinstance(e, ir.MinMax) and any(map(infinite, e.args)):
            return replace(e, infinite=True)
        if (
            isinstance(e, ir.Index)
            and any(n.kind == RELAXED_INT for n in ir.walk(e.index))
            and infinite(ir.root(e))
        ):
            return replace(e, infinite=True)  # read or written at every position, weighted
        return e


def _assign(targets, value, tainted):
    """The names that may be infinite after ``targets = value``: a name given a value takes its
    taint; an array written to at an element keeps its own and takes the value's."""
    tainted = set(tainted)
    for target in targets:
        if (
            isinstance(target, ir.Tuple_)
            and isinstance(value, ir.Tuple_)
            and len(target.elts) == len(value.elts)
        ):
            pairs = list(zip(target.elts, value.elts))
        else:
            pairs = [(target, value)]
        for t, v in pairs:
            infinite = _may_be_infinite(v, tainted)
            names = ir.assigned(t)
            if isinstance(t, ir.Name) and not infinite:
                tainted -= names
            elif infinite:
                tainted |= names
    return frozenset(tainted)

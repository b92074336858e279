"""Infinite sentinels: where a value may be infinite, blends and soft extrema weigh it, never 0 * inf.

Shortest paths and DP tables start at infinity (``best = math.inf``, ``torch.full(..., math.inf)``).
A relaxed blend ``p * then + (1 - p) * else`` of such a value gives NaN where p is 0 or 1 (0 * inf),
and a soft ``min`` gives NaN for an entry of weight 0; the exact program is finite there. This pass
finds the values that may be infinite, those computed from an infinite literal (``math.inf``,
``float('inf')``, ``torch.inf``), following assignments to a fixed point, and marks the blends, soft
extrema, relaxed loops and reads and writes at relaxed positions that take them, which then use the
runtime's infinity-safe forms: a branch, a term or a position of probability 0 contributes nothing,
whatever its value. Programs without infinite
literals are untouched and pay nothing.
"""

import math
from dataclasses import replace

from .. import ir
from ..ir import RELAXED, RELAXED_INT, Callee

_INFINITE_ATTRS = frozenset({"inf", "infty", "Infinity", "PINF", "NINF"})
_FINITE = (ir.Compare, ir.BoolOp, ir.Not, ir.Truth, ir.Shape)  # probabilities and shapes


def mark_infinities(fn):
    """``fn`` with the blends, extrema and loops that may see an infinite value marked."""
    tainted = _tainted_names(fn)
    if tainted is None:
        return fn
    marker = _Marker(tainted)
    return replace(fn, body=tuple(marker.stmt(s) for s in fn.body))


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


def _tainted_names(fn):
    """The names that may hold an infinite value, or None when the program has no infinity."""
    nodes = [n for s in fn.body for n in ir.walk(s)]
    if not any(_is_infinite_literal(n) for n in nodes):
        return None
    tainted = set()
    changed = True
    while changed:
        changed = False
        for node in nodes:
            if isinstance(node, ir.Assign) and _may_be_infinite(node.value, tainted):
                new = set().union(*(ir.assigned(t) for t in node.targets)) - tainted
            elif isinstance(node, ir.For) and _may_be_infinite(node.iter, tainted):
                new = ir.assigned(node.target) - tainted
            else:
                continue
            if new:
                tainted |= new
                changed = True
    return tainted


class _Marker:
    def __init__(self, tainted):
        self.tainted = tainted

    def infinite(self, e):
        return _may_be_infinite(e, self.tainted)

    def stmt(self, s):
        s = ir.map_children(s, lambda n: self.stmt(n) if isinstance(n, ir.Stmt) else self.expr(n))
        if isinstance(s, ir.If) and s.relaxed:
            names = [n.id for n in s.blended] + [f.var.id for f in s.fused]
            infinite = tuple(n for n in names if n in self.tainted)
            infinite += tuple(f.var.id for f in s.fused if self.infinite(f.value))
            if infinite:
                return replace(s, infinite=tuple(dict.fromkeys(infinite)))
        if isinstance(s, ir.While) and s.relaxed:
            if any(n.id in self.tainted for n in s.carried if n.kind == RELAXED):
                return replace(s, infinite=True)
        return s

    def expr(self, e):
        e = ir.map_children(e, self.expr)
        if isinstance(e, ir.IfExp) and e.kind == RELAXED and e.test.kind == RELAXED:
            if self.infinite(e.body) or self.infinite(e.orelse):
                return replace(e, infinite=True)
        if isinstance(e, ir.MinMax) and any(map(self.infinite, e.args)):
            return replace(e, infinite=True)
        if (
            isinstance(e, ir.Index)
            and any(n.kind == RELAXED_INT for n in ir.walk(e.index))
            and self.infinite(ir.root(e))
        ):
            return replace(e, infinite=True)  # read or written at every position, weighted
        return e

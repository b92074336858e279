"""Blended and carried sets: which names a relaxed ``if`` blends and a relaxed ``while`` carries.

A relaxed ``if`` blends every relaxed name it assigns that has a value before it, or that both
branches assign (``If.new`` lists those it defines). A relaxed ``while`` carries every name its body
assigns that has a value before the loop, except loop counters: relaxed ones are accumulated over
the iteration at which the loop stops, hard ones take their last value (SEMANTICS 4, 5). Whether a
name has a value before is followed in program order; a name first assigned in a hard loop's body
does not count after the loop, nor one first assigned in a relaxed construct that does not keep it.
"""

from dataclasses import replace

from .. import ir
from .kinds import is_range


def blend_and_carry(fn):
    """``fn`` with the blended names of every relaxed ``if`` and the carried names of every
    relaxed ``while``."""
    names = {}
    for node in [*fn.params, *(n for s in fn.body for n in ir.walk(s))]:
        if isinstance(node, ir.Name):
            names.setdefault(node.id, node)
    counters = {
        name
        for s in fn.body
        for n in ir.walk(s)
        if isinstance(n, ir.For) and is_range(n.iter)
        for name in ir.assigned(n.target)
    }
    sets = _Sets(names, counters, fn.alive)
    return replace(fn, body=sets.block(fn.body, {p.id for p in fn.params}))


class _Sets:
    def __init__(self, names, counters, alive):
        self.names = names  # name -> a Name node of it (kind and unpacked as the passes set them)
        self.counters = counters
        self.alive = alive  # the mass still running, with relaxed exits

    def block(self, stmts, defined):
        return tuple(self.stmt(s, defined) for s in stmts)

    def stmt(self, s, defined):
        if isinstance(s, ir.Assign):
            for t in s.targets:
                defined |= {n.id for n in ir.walk(t) if isinstance(n, ir.Name)}
            return s
        if isinstance(s, ir.For):
            defined |= {twin for _, twin in s.stopped}  # given by the loop's exit
            before = set(defined)
            defined |= {n.id for n in ir.walk(s.target) if isinstance(n, ir.Name)}
            body = self.block(s.body, defined)
            return (
                replace(s, body=body, carried=self.mixed(s, before))
                if s.exits
                else replace(s, body=body)
            )
        if isinstance(s, ir.If):
            return self.if_(s, defined)
        if isinstance(s, ir.While):
            defined |= {twin for _, twin in s.stopped}  # given by the loop's exit
            body = self.block(s.body, set(defined))
            if s.exits:
                return replace(s, body=body, carried=self.mixed(s, defined))
            if not s.relaxed:
                return replace(s, body=body)
            written = ir.written(s.body) - self.counters
            carried = tuple(self.names[n] for n in sorted(written) if n in defined)
            return replace(s, body=body, carried=carried)
        return s

    def mixed(self, loop, defined):
        """The per-example names that a loop with relaxed exits mixes after it: those its body
        assigns that have a value before it (the mass still running is handled apart)."""
        written = ir.written(loop.body) - self.counters - {self.alive}
        return tuple(
            self.names[n]
            for n in sorted(written)
            if n in defined and self.names[n].kind.per_example
        )

    def if_(self, s, defined):
        body_def, else_def = set(defined), set(defined)
        body, orelse = self.block(s.body, body_def), self.block(s.orelse, else_def)
        if not s.relaxed:
            defined |= body_def | else_def
            return replace(s, body=body, orelse=orelse)
        then, other = ir.written(s.body), ir.written(s.orelse)
        blended = [
            self.names[n]
            for n in sorted(then | other)
            if self.names[n].kind.per_example and (n in defined or (n in then and n in other))
        ]
        new = tuple(b.id for b in blended if b.id not in defined)
        defined |= {b.id for b in blended}
        return replace(s, body=body, orelse=orelse, blended=tuple(blended), new=new)

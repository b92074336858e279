"""Values that a relaxed ``while`` leaves per example: a hard variable changed in its body and read
after it (SEMANTICS 2 and 10).

Inside a relaxed ``while`` a hard variable (a counter, a position) is the same for every example
still running; after the loop it is not, since each example stopped at another iteration. Such a
variable gets a relaxed twin, its expectation over the iteration at which the loop stopped (exact in
hard mode), accumulated by the loop like any relaxed value; the reads that only the loop's exit
reaches read the twin. Read as a value (returned, in arithmetic) that is its meaning. As an index,
a loop bound or in a comparison it would be a relaxed integer, which is not supported yet: that
use is a compile error at its line, never a silent value. A read that the exit and another
assignment may both reach is an error too.
"""

from dataclasses import replace

from .. import ir, registry
from ..errors import CompileError, Position
from ..ir import HARD, RELAXED
from .kinds import infer_kinds, is_range


def leave_per_example(fn):
    """``fn`` with the hard variables that relaxed loops leave per example read through their
    relaxed twins where only a loop's exit reaches."""
    loops = _loops_changing_hard_names(fn)
    if not loops:
        return fn
    taken = {n.id for s in fn.body for n in ir.walk(s) if isinstance(n, ir.Name)}
    taken |= {p.id for p in fn.params} | set(fn.free)
    twins = {}  # (id of the loop, name) -> the twin's name
    for loop, names in loops.items():
        for name in sorted(names):
            twin, k = f"{name}_stopped", 1
            while twin in taken:
                k += 1
                twin = f"{name}_stopped_{k}"
            taken.add(twin)
            twins[loop, name] = twin
    flow = _Reaching(loops)
    flow.block(fn.body, {})
    rewrite = _Rewrite(fn, flow, twins)
    body = _keep_read_twins(rewrite.block(fn.body), rewrite.read)
    if not rewrite.read:
        return fn
    declared = tuple(fn.declared) + tuple(sorted(rewrite.read))
    return infer_kinds(replace(fn, body=body, declared=declared))


def _keep_read_twins(stmts, read):
    """``stmts`` where each loop makes only the twins that some statement reads."""

    def prune(node):
        node = ir.map_children(node, prune)
        if isinstance(node, ir.While) and node.stopped:
            return replace(node, stopped=tuple(p for p in node.stopped if p[1] in read))
        return node

    return tuple(prune(s) for s in stmts)


def _loops_changing_hard_names(fn):
    """For each relaxed ``while`` (by id), the hard names its body assigns that are not declared
    (the DSL's ``VarInt`` keeps AlgoVision's meaning: its last value) nor loop counters."""
    declared = set(fn.declared)
    hard = {n.id for s in fn.body for n in ir.walk(s) if isinstance(n, ir.Name) and n.kind == HARD}
    out = {}
    for s in fn.body:
        for node in ir.walk(s):
            if isinstance(node, ir.While) and node.relaxed:
                counters = {
                    name
                    for n in ir.walk(node)
                    if isinstance(n, ir.For) and is_range(n.iter)
                    for name in ir.assigned(n.target)
                }
                names = (ir.written(node.body) & hard) - declared - counters
                if names:
                    out[id(node)] = names
    return out


def _join(*states):
    out = None
    for state in states:
        if state is None:
            continue
        if out is None:
            out = dict(state)
        else:
            for name, defs in state.items():
                out[name] = out.get(name, frozenset()) | defs
    return out


class _Reaching:
    """Which definitions reach each statement: for the names of ``loops``, whether a relaxed
    loop's exit (``("exit", id)``) or some assignment (``"set"``) gave the value read there."""

    def __init__(self, loops):
        self.loops = loops
        self.names = set().union(*loops.values())
        self.entry = {}  # id(statement) -> the state before it
        self.jumps = []

    def block(self, stmts, state):
        for s in stmts:
            if state is None:
                return None
            self.entry[id(s)] = state
            state = self.stmt(s, state)
        return state

    def assign(self, state, names):
        hit = names & self.names
        if not hit:
            return state
        return {**state, **{n: frozenset({"set"}) for n in hit}}

    def stmt(self, s, state):
        if isinstance(s, ir.Assign):
            return self.assign(state, set().union(*(ir.assigned(t) for t in s.targets)))
        if isinstance(s, ir.If):
            return _join(self.block(s.body, state), self.block(s.orelse, state))
        if isinstance(s, ir.For):
            entry = self.assign(state, ir.assigned(s.target))
            return _join(state, self.loop(s, entry))
        if isinstance(s, ir.While):
            after = self.loop(s, state)
            names = self.loops.get(id(s), ())
            if after is not None and names:
                after = {**after, **{n: frozenset({("exit", id(s))}) for n in names}}
            return after
        if isinstance(s, ir.Jump) and s.what is not ir.JumpKind.PASS and self.jumps:
            self.jumps[-1][s.what].append(state)
            return None
        return state

    def loop(self, s, entry):
        """The state after a loop whose body starts from ``entry`` (with its back edges)."""
        while True:
            self.jumps.append({ir.JumpKind.BREAK: [], ir.JumpKind.CONTINUE: []})
            end = self.block(s.body, entry)
            jumps = self.jumps.pop()
            again = _join(entry, end, *jumps[ir.JumpKind.CONTINUE])
            if again == entry:
                return _join(again, *jumps[ir.JumpKind.BREAK])
            entry = again


class _Rewrite:
    def __init__(self, fn, flow, twins):
        self.fn, self.flow, self.twins = fn, flow, twins
        self.read = set()  # the twins some statement reads
        self.loop_lines = {}
        for s in fn.body:
            for node in ir.walk(s):
                if isinstance(node, ir.While):
                    self.loop_lines[id(node)] = node.line

    def error(self, name, defs, line, why):
        loop = next(d[1] for d in defs if d != "set")
        raise CompileError(
            f"`{name}` is changed inside the relaxed `while` at line {self.loop_lines[loop]}, so "
            f"after the loop it differs per example (each example stopped at another iteration); "
            f"{why}",
            self.fn.source,
            Position.of_line(self.fn.source, line),
        )

    def block(self, stmts):
        return tuple(self.stmt(s) for s in stmts)

    def stmt(self, s):
        state = self.flow.entry.get(id(s), {})
        line = s.line

        def expr(e):
            return self.expr(e, state, line)

        if isinstance(s, ir.Assign):
            targets = tuple(self.target(t, state, line) for t in s.targets)
            return replace(s, targets=targets, value=expr(s.value))
        if isinstance(s, ir.If):
            return replace(
                s, test=expr(s.test), body=self.block(s.body), orelse=self.block(s.orelse)
            )
        if isinstance(s, ir.While):
            twins = tuple((n, self.twins[id(s), n]) for n in sorted(self.flow.loops.get(id(s), ())))
            return replace(s, test=expr(s.test), body=self.block(s.body), stopped=twins)
        if isinstance(s, ir.For):
            it = expr(s.iter)
            if is_range(s.iter) and it != s.iter:
                self.use_error(s.iter, state, line, "as a bound of `range`")
            return replace(s, iter=it, body=self.block(s.body))
        return ir.map_children(s, expr)

    def target(self, t, state, line):
        if isinstance(t, ir.Index):
            self.use_error(t.index, state, line, "as an index")
            value = self.target(t.value, state, line)
            return replace(t, value=value, index=self.expr(t.index, state, line))
        if isinstance(t, ir.Tuple_):
            return replace(t, elts=tuple(self.target(e, state, line) for e in t.elts))
        return t

    def use_error(self, e, state, line, how):
        for n in ir.walk(e):
            if isinstance(n, ir.Name) and any(d != "set" for d in state.get(n.id, ())):
                self.error(
                    n.id,
                    state[n.id],
                    line,
                    f"it is used {how} here, which needs a relaxed integer (a distribution over "
                    f"positions), not supported yet. Read it as a value (returned, in "
                    f"arithmetic), or compute the position with a hard loop.",
                )

    def expr(self, e, state, line):
        if e is None:
            return None
        if isinstance(e, ir.Name):
            defs = state.get(e.id)
            if not defs or all(d == "set" for d in defs):
                return e
            if len(defs) > 1:
                self.error(
                    e.id,
                    defs,
                    line,
                    "it is read here where the loop's exit and another assignment may both have "
                    "given its value. Assign it once after the loop, before this read.",
                )
            (loop,) = (d[1] for d in defs)
            twin = self.twins[loop, e.id]
            self.read.add(twin)
            return ir.Name(twin, RELAXED)
        if isinstance(e, ir.Index):
            self.use_error(e.index, state, line, "as an index")
        if isinstance(e, ir.Compare) and registry.relaxes(e.op):
            self.use_error(e, state, line, "in a comparison")
        return ir.map_children(e, lambda c: self.expr(c, state, line))

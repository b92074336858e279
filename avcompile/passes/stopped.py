"""Values that a relaxed ``while`` leaves per example: a hard variable changed in its body and read
after it (SEMANTICS 2 and 10).

Inside a relaxed ``while`` a hard variable (a counter, a position) is the same for every example
still running; after the loop it is not, since each example stopped at another iteration. Such a
variable gets a relaxed twin, its expectation over the iteration at which the loop stopped (exact in
hard mode), accumulated by the loop like any relaxed value; the reads that only the loop's exit
reaches read the twin. Read as a value (returned, in arithmetic) that is its meaning. Where its
distribution matters (an index, a comparison, ``//``), the twin of an integer is a relaxed integer:
the distribution of the value over the iteration at which the loop stopped (SEMANTICS 10). A loop
bound cannot vary per example, and a read that the exit and another assignment may both reach is
ambiguous: both are compile errors at their line, never a silent value.
"""

from dataclasses import replace

from .. import ir
from ..errors import CompileError, Position
from ..ir import HARD, RELAXED, RELAXED_INT
from .kinds import infer_kinds, integer_names, is_range, law_uses


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
    body = rewrite.block(fn.body)
    if not rewrite.read:
        return fn
    ints = _integer_twins(fn, body, rewrite, twins)
    earlier = {t for s in fn.body for n in ir.walk(s) for _, t in getattr(n, "stopped", ())}
    body = _keep_read_twins(body, rewrite.read | earlier, ints)
    # the twins keep their kinds, and the names they stand for stay hard inside their loops
    stay = {name for (_, name), twin in twins.items() if twin in rewrite.read}
    declared = tuple(fn.declared) + tuple(sorted(rewrite.read | stay))
    return infer_kinds(replace(fn, body=body, declared=declared))


def _integer_twins(fn, body, rewrite, twins):
    """The twins read where a distribution is needed: relaxed integers. The hard variable must
    then hold integers, or that read is an error."""
    ints = integer_names(fn)
    needed = law_uses(body, ints | rewrite.read) & rewrite.read
    if not needed:
        return set()
    for (loop, name), twin in twins.items():
        if twin in needed and name not in ints:
            line = rewrite.first_read[twin]
            rewrite.error(
                name,
                {("exit", loop)},
                line,
                "it is used here where its distribution is needed (an index, a comparison), "
                "which needs an integer, but not every value assigned to it is one that avcompile "
                "can see. Assign it integers only, or read it as a value.",
            )
    return needed


def _keep_read_twins(stmts, read, ints):
    """``stmts`` where each loop makes only the twins that some statement reads (or an earlier run
    of this pass kept), those read as relaxed integers marked so, on the loop and on every
    read."""

    def prune(node):
        node = ir.map_children(node, prune)
        if isinstance(node, ir.Name) and node.id in ints:
            return replace(node, kind=RELAXED_INT)
        if isinstance(node, (ir.While, ir.For)) and node.stopped:
            stopped = tuple(p for p in node.stopped if p[1] in read)
            kept = tuple(t for _, t in stopped if t in ints or t in node.stopped_ints)
            return replace(node, stopped=stopped, stopped_ints=kept)
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
            per_example = isinstance(node, ir.While) and node.relaxed
            if per_example or isinstance(node, (ir.While, ir.For)) and node.exits:
                # the counters of loops inside it; a loop with relaxed exits leaves its own
                # counter per example too (the iteration at which each example left)
                counters = {
                    name
                    for n in ir.walk(node)
                    if isinstance(n, ir.For) and is_range(n.iter) and n is not node
                    for name in ir.assigned(n.target)
                }
                own = ir.assigned(node.target) if isinstance(node, ir.For) else set()
                names = ((ir.written(node.body) | own) & hard) - declared - counters
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


def _exit_only(defs):
    return bool(defs) and all(d != "set" for d in defs)


def _moved(s, state):
    """``j = j - 1`` after the loop that left ``j`` per example: ``j`` stays the loop's value,
    moved (its twin is assigned). For each such target, the exits that gave its value."""
    out = {}
    for t in s.targets:
        if isinstance(t, ir.Name) and _exit_only(state.get(t.id)):
            reads = {n.id for n in ir.walk(s.value) if isinstance(n, ir.Name)}
            if t.id in reads:
                out[t.id] = state[t.id]
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
            moved = _moved(s, state)
            names = set().union(*(ir.assigned(t) for t in s.targets)) - set(moved)
            return {**self.assign(state, names), **moved}
        if isinstance(s, ir.If):
            return _join(self.block(s.body, state), self.block(s.orelse, state))
        if isinstance(s, ir.For):
            entry = self.assign(state, ir.assigned(s.target))
            return self.left(s, _join(state, self.loop(s, entry)))
        if isinstance(s, ir.While):
            return self.left(s, self.loop(s, state))
        if isinstance(s, ir.Jump) and s.what is not ir.JumpKind.PASS and self.jumps:
            self.jumps[-1][s.what].append(state)
            return None
        return state

    def left(self, s, after):
        """The state after loop ``s``: its exit gives the names it changes, except a name an
        earlier loop left per example and this one only moves (its twin runs on)."""
        names = self.loops.get(id(s), ())
        if after is None or not names:
            return after
        own = frozenset({("exit", id(s))})
        return {**after, **{n: own for n in names if not _exit_only(after.get(n))}}

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
        self.first_read = {}  # twin -> the line of its first read
        self.loop_lines = {}
        for s in fn.body:
            for node in ir.walk(s):
                if isinstance(node, (ir.While, ir.For)):
                    words = (
                        "relaxed `while`"
                        if getattr(node, "relaxed", False)
                        else ("loop with relaxed exits")
                    )
                    self.loop_lines[id(node)] = (words, node.line)

    def error(self, name, defs, line, why):
        loop = next(d[1] for d in defs if d != "set")
        raise CompileError(
            f"`{name}` is changed inside the {self.loop_lines[loop][0]} at line "
            f"{self.loop_lines[loop][1]}, so "
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
            moved = _moved(s, state)
            targets = tuple(self.target(t, state, line, moved) for t in s.targets)
            value = expr(s.value)
            self.no_per_example_into_hard(targets, value, state, line)
            return replace(s, targets=targets, value=value)
        if isinstance(s, ir.If):
            return replace(
                s, test=expr(s.test), body=self.block(s.body), orelse=self.block(s.orelse)
            )
        if isinstance(s, ir.While):
            twins = tuple((n, self.twins[id(s), n]) for n in sorted(self.flow.loops.get(id(s), ())))
            body = self.block(s.body)
            return replace(s, test=expr(s.test), body=body, stopped=s.stopped + twins)
        if isinstance(s, ir.For):
            it = expr(s.iter)
            if is_range(s.iter) and it != s.iter:
                self.use_error(s.iter, state, line, "as a bound of `range`")
            twins = tuple((n, self.twins[id(s), n]) for n in sorted(self.flow.loops.get(id(s), ())))
            return replace(s, iter=it, body=self.block(s.body), stopped=s.stopped + twins)
        return ir.map_children(s, expr)

    def no_per_example_into_hard(self, targets, value, state, line):
        """A hard variable given a value that a loop's exit left per example would silently be
        taken for one value: refused, saying what to write."""
        read = [n.id for n in ir.walk(value) if isinstance(n, ir.Name) and n.id in self.read]
        if not read:
            return
        source = {twin: key for key, twin in self.twins.items()}
        loop, name = source[read[0]]
        for t in targets:
            if isinstance(t, ir.Name) and t.id in self.flow.names and t.kind == HARD:
                self.error(
                    name,
                    {("exit", loop)},
                    line,
                    f"it is assigned here to `{t.id}`, which a relaxed loop needs hard. Give "
                    f"the value another name (`{t.id}_after = ...`).",
                )

    def target(self, t, state, line, moved=()):
        if isinstance(t, ir.Name) and t.id in moved:
            (loop,) = {d[1] for d in moved[t.id]}
            twin = self.twins[loop, t.id]
            self.read.add(twin)
            return ir.Name(twin, RELAXED, pos=t.pos)
        if isinstance(t, ir.Index):
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
                    f"it is used {how} here, which needs one value for the whole batch. "
                    f"Loop to the largest bound and guard the body with a relaxed `if`.",
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
            self.first_read.setdefault(twin, line)
            return ir.Name(twin, RELAXED)
        return ir.map_children(e, lambda c: self.expr(c, state, line))

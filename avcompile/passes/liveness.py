"""Liveness of names across relaxed constructs: a name that a relaxed construct may leave without a
value is never read, or the program is rejected at decoration.

A relaxed ``if`` blends only the names it can give a value in both branches; a name assigned in one
branch alone, and not before, has no value after it. A relaxed ``while`` carries only the names that
have a value before it; one first assigned in its body has none after the loop, nor at the start of
the next iteration. This pass follows such names forward through the control flow (branches, loop
back edges, ``break`` and ``continue``) and reports the construct that left the name unset, naming
the line that reads it.
"""

from dataclasses import dataclass

from .. import ir
from ..errors import CompileError, Position


@dataclass(frozen=True)
class _Unset:
    """Why a name may have no value: the construct (``if`` or ``while``) that left it unset."""

    construct: str
    line: int
    branch: str = ""
    shown: str = ""  # the user's name of a variable that avcompile introduced


def check_liveness(fn):
    """Raise ``CompileError`` where a name that a relaxed construct may leave unset is read."""
    _Checker(fn).block(fn.body, {})
    return fn


def _join(*states):
    """The names unset on any of the paths; ``None`` is a path that does not get here."""
    out = None
    for state in states:
        if state is None:
            continue
        out = dict(state) if out is None else {**state, **out}
    return out


def reads(node):
    """The names an expression (or assignment target) reads."""
    out = set()
    for n in ir.walk(node):
        if isinstance(n, ir.Name):
            out.add(n.id)
    return out


class _Checker:
    def __init__(self, fn):
        self.fn = fn
        self.loops = []  # per enclosing loop: the states at its `break`s and `continue`s
        self.kinds = {n.id: n.kind for st in fn.body for n in ir.walk(st) if isinstance(n, ir.Name)}

    def use(self, node, state, line):
        for name in sorted(reads(node) & set(state)):
            self.error(name, state[name], line)

    def error(self, name, why, line):
        name = why.shown or name
        at = Position.of_line(self.fn.source, why.line)
        if why.construct == "exit loop":
            message = (
                f"`{name}` is first assigned inside a loop that examples leave at different "
                f"iterations (a relaxed `break`, `continue` or `return`) and read where it may "
                f"have no value for some of them (line {line}): avcompile mixes after such a "
                f"loop the values that it gives before the loop. Give `{name}` a value before "
                f"the loop."
            )
        elif why.construct == "if":
            message = (
                f"`{name}` is assigned only in the {why.branch} branch of a relaxed `if` and read "
                f"where it may have no value (line {line}): a relaxed `if` runs both branches and "
                f"blends them, so `{name}` needs a value in both. Give `{name}` a value before the "
                f"`if` (or in both branches)."
            )
        else:
            message = (
                f"`{name}` is first assigned inside a relaxed `while` and read where it may have "
                f"no value (line {line}, after the loop or before it is assigned in the next "
                f"iteration): the loop may stop before any iteration for some examples, and each "
                f"iteration starts from the values the loop carries. Give `{name}` a value before "
                f"the loop."
            )
        raise CompileError(message, self.fn.source, at)

    def block(self, stmts, state):
        for s in stmts:
            if state is None:  # after a break or continue: not reached
                return None
            state = self.stmt(s, state)
        return state

    def stmt(self, s, state):
        if isinstance(s, ir.Assign):
            self.use(s.value, state, s.line)
            names = set()
            for t in s.targets:
                if not isinstance(t, ir.Name):
                    self.use(t, state, s.line)
                names |= ir.assigned(t)
            return {n: why for n, why in state.items() if n not in names}
        if isinstance(s, ir.If):
            return self.if_(s, state)
        if isinstance(s, ir.While):
            return self.while_(s, state)
        if isinstance(s, ir.For):
            self.use(s.iter, state, s.line)
            target = ir.assigned(s.target)
            entry = {n: why for n, why in state.items() if n not in target}
            if s.exits:
                entry = _join(self.left_unset(s, target), entry)
            after = self.loop(s, state, entry)
            # The loop is taken to run: its counter has a value after it (an empty range would
            # leave it as it was, in Python as here).
            return None if after is None else {n: w for n, w in after.items() if n not in target}
        if isinstance(s, ir.Jump):
            if s.what is not ir.JumpKind.PASS and self.loops:
                self.loops[-1][s.what].append(state)
                return None
            return state
        for child in ir.children(s):
            self.use(child, state, s.line)
        return state

    def if_(self, s, state):
        self.use(s.test, state, s.line)
        after = _join(self.block(s.body, state), self.block(s.orelse, state))
        if not s.relaxed or after is None:
            return after
        kept = {n.id for n in s.blended} | {f.var.id for f in s.fused}
        after = {n: why for n, why in after.items() if n not in kept}
        in_body = ir.written(s.body)
        for name in sorted((in_body | ir.written(s.orelse)) - kept):
            branch = "`if`" if name in in_body else "`else`"
            after.setdefault(name, _Unset("if", s.line, branch))
        return after

    def left_unset(self, s, exempt=frozenset()):
        """The names a loop that examples leave to an extent does not mix after it: those its body
        assigns first, per example (hard ones are read through their twins)."""
        mixed = {n.id for n in s.carried} | {name for name, _ in s.stopped} | set(exempt)
        mixed.add(self.fn.alive)
        return {
            n: _Unset("exit loop", s.line)
            for n in sorted(ir.written(s.body) - mixed)
            if self.kinds.get(n, ir.HARD).per_example
        }

    def while_(self, s, state):
        if not s.relaxed and s.exits:
            entry = _join(self.left_unset(s), state)
            self.use(s.test, entry, s.line)
            return self.loop(s, entry, entry)
        if not s.relaxed:
            self.use(s.test, state, s.line)
            return self.loop(s, state, state)
        carried = {n.id for n in s.carried}
        local = {n: _Unset("while", s.line) for n in sorted(ir.written(s.body) - carried)}
        entry = _join(local, state)
        self.use(s.test, entry, s.line)
        after = self.loop(s, entry, entry)
        for name, twin in s.stopped:  # its expectation exists where the name had a value before
            if name not in carried and after is not None:
                after[twin] = _Unset("while", s.line, shown=name)
        return after

    def loop(self, s, before, entry):
        """The state after a loop whose body starts from ``entry`` (joined with its back edges)."""
        while True:
            self.loops.append({ir.JumpKind.BREAK: [], ir.JumpKind.CONTINUE: []})
            end = self.block(s.body, entry)
            exits = self.loops.pop()
            again = _join(entry, end, *exits[ir.JumpKind.CONTINUE])
            if set(again) == set(entry):
                return _join(before, again, *exits[ir.JumpKind.BREAK])
            entry = again

"""Early exits under relaxed control (SEMANTICS 11): ``break``, ``continue`` and ``return`` that
each example takes only to an extent.

An exit is relaxed when a relaxed ``if`` lies between it and what it leaves (the loop, or the
function for a ``return``), or when it leaves a loop that others leave to an extent. Such an exit
becomes an ``ir.Exit``: where it runs, the state weighted by the mass of examples still running
there (``Function.alive``) is set aside for after the loop, the next iteration or the function's
result, and the mass still running drops by as much. A relaxed ``if`` whose branches exit weighs
its blend by what is still running in each branch (``If.exits``); a loop that examples leave to
an extent (``exits``) mixes what was set aside with its state at the end. A relaxed ``while`` with
an exit in its body becomes ``while True:`` with ``if not c: break`` at the top of its body, the
rule that makes a relaxed ``while`` (SEMANTICS 5), so every loop with relaxed exits is lowered in
one way. The code after an exit in the same block is never reached and is dropped.
"""

from dataclasses import replace

from .. import ir
from ..errors import CompileError, Position
from ..ir import HARD, RELAXED, JumpKind


def lower_exits(fn):
    """``fn`` with its relaxed exits made ``ir.Exit`` statements, and the loops and ``if``s they
    leave marked."""
    if not _has_relaxed_exit(fn.body):
        if fn.alive is None:
            return fn
        return replace(fn, body=_mark_exiting_ifs(fn.body))  # ifs a later pass made relaxed
    if fn.alive is not None:  # lowered once already; a later pass made more conditions relaxed
        alive = fn.alive
    else:
        taken = {n.id for s in fn.body for n in ir.walk(s) if isinstance(n, ir.Name)}
        taken |= {p.id for p in fn.params} | set(fn.free)
        alive = "alive"
        k = 1
        while alive in taken:
            k += 1
            alive = f"alive_{k}"
    lowering = _Lowering(fn, ir.Name(alive, RELAXED))
    body = lowering.block(fn.body, loops=[], relaxed_since=[], in_exit_loop=False)
    if fn.alive is None:
        start = ir.Assign(
            (ir.Name(alive, RELAXED),), ir.Lift(ir.Const(1.0), ir.LiftTo.BATCH), fn.body[0].line
        )
        body = (start,) + body
    lowering.returns = lowering.returns or fn.returns
    if lowering.returns and not _ends_with_return(body):
        raise CompileError(
            "a function that returns under a relaxed condition must end with a `return`: the "
            "examples that did not return early need a result too.",
            fn.source,
            Position.of_line(fn.source, fn.body[-1].line),
        )
    body = _mark_exiting_ifs(body)
    declared = tuple(fn.declared) + ((alive,) if alive not in fn.declared else ())
    return replace(fn, body=body, alive=alive, returns=lowering.returns, declared=declared)


def _mark_exiting_ifs(stmts):
    """``stmts`` with every relaxed ``if`` that holds an exit marked so."""

    def mark(node):
        node = ir.map_children(node, mark) if isinstance(node, ir.Stmt) else node
        if isinstance(node, ir.If) and node.relaxed and not node.exits:
            inside = (n for b in (node.body, node.orelse) for st in b for n in ir.walk(st))
            if any(isinstance(n, ir.Exit) for n in inside):
                return replace(node, exits=True)
        return node

    return tuple(mark(s) for s in stmts)


def _ends_with_return(stmts):
    last = stmts[-1] if stmts else None
    if isinstance(last, (ir.Return, ir.Exit)):
        return True
    if isinstance(last, ir.If):
        return _ends_with_return(last.body) and _ends_with_return(last.orelse)
    return False


def _has_relaxed_exit(stmts, relaxed=False, in_loop=False):
    """Whether an exit in ``stmts`` is relaxed (the cheap test that spares most functions)."""
    for s in stmts:
        if isinstance(s, ir.Return) and relaxed:
            return True
        if isinstance(s, ir.Jump) and s.what is not JumpKind.PASS and relaxed and not in_loop:
            return True
        if isinstance(s, ir.If):
            inner = relaxed or s.relaxed
            nested = in_loop and not s.relaxed
            if _has_relaxed_exit(s.body, inner, nested) or _has_relaxed_exit(
                s.orelse, inner, nested
            ):
                return True
        elif isinstance(s, ir.While) and s.relaxed:
            if _exits_inside(s.body):
                return True
        elif isinstance(s, (ir.While, ir.For)):
            if _has_relaxed_exit(s.body, relaxed, True):
                return True
            if relaxed and any(isinstance(n, ir.Return) for n in ir.walk(s)):
                return True
    return False


def _exits_inside(stmts):
    """Whether ``stmts`` (a loop's body) hold a ``break``/``continue`` of that loop or any
    ``return``."""
    for s in stmts:
        if isinstance(s, ir.Return):
            return True
        if isinstance(s, ir.Jump) and s.what is not JumpKind.PASS:
            return True
        if isinstance(s, ir.If) and (_exits_inside(s.body) or _exits_inside(s.orelse)):
            return True
        if isinstance(s, (ir.While, ir.For)) and any(isinstance(n, ir.Return) for n in ir.walk(s)):
            return True
    return False


class _Lowering:
    def __init__(self, fn, alive):
        self.fn, self.alive = fn, alive
        self.returns = False
        self._depth = 0  # relaxed `if`s around the statement being lowered

    def block(self, stmts, loops, relaxed_since, in_exit_loop):
        """``stmts`` lowered. ``loops``: the enclosing loops, innermost last, each a list that
        collects whether it is left to an extent; ``relaxed_since[k]``: whether a relaxed ``if``
        lies between loop k and here; ``in_exit_loop``: inside a loop with relaxed exits."""
        out = []
        for s in stmts:
            lowered = self.stmt(s, loops, relaxed_since, in_exit_loop)
            out.extend(lowered)
            if lowered and isinstance(lowered[-1], ir.Exit):
                break  # what follows an exit in its block is never reached
        return tuple(out)

    def stmt(self, s, loops, relaxed_since, in_exit_loop):
        if isinstance(s, ir.Return):
            relaxed = any(relaxed_since) or self.under_relaxed or in_exit_loop
            if relaxed:
                self.returns = True
                for loop in loops:
                    loop.append(True)
                return [ir.Exit(JumpKind.RETURN, s.value, s.line, self.alive)]
            return [s]
        if isinstance(s, ir.Jump) and s.what is not JumpKind.PASS and loops:
            if relaxed_since[-1]:
                loops[-1].append(True)
                return [ir.Exit(s.what, None, s.line, self.alive)]
            return [s]
        if isinstance(s, ir.If):
            return [self.if_(s, loops, relaxed_since, in_exit_loop)]
        if isinstance(s, ir.While) and s.relaxed and _exits_inside(s.body):
            s = _as_while_true(s, self.alive)
        if isinstance(s, (ir.While, ir.For)):
            return [self.loop(s, loops, relaxed_since, in_exit_loop)]
        return [s]

    @property
    def under_relaxed(self):
        return self._depth > 0

    def if_(self, s, loops, relaxed_since, in_exit_loop):
        if not s.relaxed:
            body = self.block(s.body, loops, relaxed_since, in_exit_loop)
            orelse = self.block(s.orelse, loops, relaxed_since, in_exit_loop)
            return replace(s, body=body, orelse=orelse)
        self._depth += 1
        try:
            inner = [True] * len(relaxed_since)
            body = self.block(s.body, loops, inner, in_exit_loop)
            orelse = self.block(s.orelse, loops, inner, in_exit_loop)
        finally:
            self._depth -= 1
        exits = any(isinstance(n, ir.Exit) for b in (body, orelse) for st in b for n in ir.walk(st))
        return replace(s, body=body, orelse=orelse, exits=exits)

    def loop(self, s, loops, relaxed_since, in_exit_loop):
        mine = []  # gets an entry for each exit that leaves this loop to an extent
        marked = getattr(s, "exits", False)  # a relaxed while made `while True`
        body = self.block(s.body, loops + [mine], relaxed_since + [False], in_exit_loop)
        exits = marked or bool(mine)
        if exits and not marked:
            # again, now that its own hard exits leave to an extent too (SEMANTICS 11)
            body = self.block(s.body, loops + [mine], relaxed_since + [False], True)
        if exits:
            self.no_hard_changes_after_continue(s, body)
        return replace(s, body=body, exits=exits)

    def no_hard_changes_after_continue(self, s, body):
        """A hard variable changed in a loop that examples skip the rest of to an extent would
        differ per example at the next iteration: refused, naming it."""
        if not any(
            isinstance(n, ir.Exit) and n.what is JumpKind.CONTINUE
            for st in body
            for n in ir.walk(st)
        ):
            return
        counters = ir.assigned(s.target) if isinstance(s, ir.For) else set()
        for st in body:
            for node in ir.walk(st):
                if not isinstance(node, ir.Assign):
                    continue
                for target in node.targets:
                    for name in sorted(ir.assigned(target) - counters):
                        if _kind_of(target, name) == HARD:
                            raise CompileError(
                                f"hard variable `{name}` is changed in a loop with a relaxed "
                                f"`continue`: the examples that skip the rest of an iteration "
                                f"to an extent would start the next one with other values of "
                                f"`{name}`, but a hard variable has one value for all of them. "
                                f"Compute `{name}` from the loop counter, or make it relaxed "
                                f"(a float).",
                                self.fn.source,
                                Position.of_line(self.fn.source, node.line),
                            )


def _kind_of(target, name):
    for n in ir.walk(target):
        if isinstance(n, ir.Name) and n.id == name:
            return n.kind
    return HARD


def _as_while_true(s, alive):
    """``while c: body`` as ``while True:`` with ``if not c: break`` first (SEMANTICS 11)."""
    stop = ir.If(
        ir.Not(s.test, RELAXED, pos=s.test.pos),
        (ir.Exit(JumpKind.BREAK, None, s.line, alive),),
        (),
        True,
        (),
        s.line,
        exits=True,
    )
    return replace(s, test=ir.Const(True), body=(stop,) + s.body, relaxed=False, exits=True)

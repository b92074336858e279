"""Rejections that depend on kinds: what a relaxed value cannot do, each with what to write instead.

Syntax outside the subset is refused before translation (``check.py``); what is refused here is
legal Python whose meaning cannot be relaxed once it is known which values are relaxed: a relaxed
index or loop bound, ``is``/``in`` on a relaxed value, an early exit under relaxed control, ...
"""

from dataclasses import dataclass
from typing import Optional

from .. import ir, registry
from ..errors import CompileError, Position
from ..ir import RELAXED, RELAXED_INT, Callee
from .kinds import is_range


def reject(fn):
    """Raise ``CompileError`` at the first construct a relaxed value cannot take part in."""
    _Rejecter(fn).block(fn.body, _Ctx())
    _no_aliases(fn)
    return fn


def _no_aliases(fn):
    """``y = x`` of a relaxed array, then an element write to either: in Python both names are one
    list and the write shows through both; avcompile's values never share, so that is refused."""
    assigns = [n for s in fn.body for n in ir.walk(s) if isinstance(n, ir.Assign)]
    grown = {t.id for a in assigns if a.grows for t in a.targets if isinstance(t, ir.Name)}
    aliases = {}  # name -> (the name it was assigned from, line)
    for node in assigns:
        for target in node.targets:
            if (
                isinstance(target, ir.Name)
                and isinstance(node.value, ir.Name)
                and (node.value.kind == RELAXED or {target.id, node.value.id} & grown)
            ):
                aliases[target.id] = (node.value.id, node.line)
                aliases.setdefault(node.value.id, (target.id, node.line))
    if not aliases:
        return
    for node in assigns:
        if node.grows:  # `xs.append(v)` is `xs = xs + [v]`, which the other name does not see
            name = node.targets[0].id
            other, line = aliases.get(name, (None, 0))
            if other is not None and node.line > line:
                raise CompileError(
                    f"a list grown (`append`, `extend`, `insert`) under the name `{name}`, "
                    f"which shares its value with `{other}` since line {line}: in Python both "
                    f"names are one list and see the growth, but avcompile's values are never "
                    f"shared. Copy it where you mean a copy (`{name} = list({other})`), or use "
                    f"one name only.",
                    fn.source,
                    Position.of_line(fn.source, node.line),
                )
        for target in node.targets:
            root = ir.root(target)
            if isinstance(target, ir.Index) and isinstance(root, ir.Name):
                other, line = aliases.get(root.id, (None, 0))
                if other is not None and node.line > line:
                    raise CompileError(
                        f"an element write to `{root.id}`, which shares its value with "
                        f"`{other}` since line {line}: in Python both names are one list and "
                        f"the write changes both, but avcompile's values are never shared. "
                        f"Copy it where you mean a copy (`{root.id} = list({other})`), or "
                        f"write to one name only.",
                        fn.source,
                        Position.of_line(fn.source, node.line),
                    )


def _mutates_in_place(e, relaxed=False):
    """Whether ``e`` calls a list method that changes the list in place (``xs.pop()``), and with
    ``relaxed`` whether the list or an argument is a per-example value."""
    if not (
        isinstance(e, ir.Call)
        and e.callee is Callee.METHOD
        and isinstance(e.func, ir.Attr)
        and e.func.attr in registry.LIST_MUTATORS
    ):
        return False
    if not relaxed:
        return True
    return any(part.kind.per_example for part in (e.func.value,) + tuple(e.args))


@dataclass(frozen=True)
class _Ctx:
    relaxed: str = ""  # the innermost relaxed construct, in words ('' outside any)
    loop_inside: bool = False  # a hard loop lies inside that construct (break/continue allowed)
    uneven: str = ""  # the construct that runs a different number of times per example, in words
    built: Optional[set] = None  # names given a new whole value inside that construct


class _Rejecter:
    def __init__(self, fn):
        self.fn = fn
        self.line = 0  # the statement being checked
        self.pos = None  # the position of the expression being checked, if known

    def error(self, message, e=None):
        pos = e.pos if e is not None and e.pos is not None else None
        at = Position(*pos) if pos else Position.of_line(self.fn.source, self.line)
        raise CompileError(message, self.fn.source, at)

    def block(self, stmts, ctx):
        for s in stmts:
            self.stmt(s, ctx)

    def stmt(self, s, ctx):
        self.line = s.line
        if isinstance(s, ir.If):
            self.expr(s.test)
            if s.relaxed:  # each branch a construct of its own
                what = self.relaxed_if(s)
                self.block(s.body, _Ctx(what, uneven=what, built=set()))
                self.block(s.orelse, _Ctx(what, uneven=what, built=set()))
            else:
                self.block(s.body, ctx)
                self.block(s.orelse, ctx)
        elif isinstance(s, ir.While):
            self.expr(s.test)
            if s.relaxed:
                inner = _Ctx("a relaxed `while`", uneven="a relaxed `while`", built=set())
            else:
                inner = self.loop_ctx(s, ctx)
            self.block(s.body, inner)
        elif isinstance(s, ir.For):
            self.for_(s)
            self.block(s.body, self.loop_ctx(s, ctx))
        elif any(_mutates_in_place(n) for n in ir.walk(s)) and (
            ctx.uneven or any(_mutates_in_place(n, relaxed=True) for n in ir.walk(s))
        ):
            call = next(n for n in ir.walk(s) if _mutates_in_place(n))
            where = f"inside {ctx.uneven}" if ctx.uneven else "on relaxed values"
            self.error(
                f"`.{call.func.attr}()` {where}: it changes the list in place for every "
                f"example at once. Build the new list as a value instead (`xs = xs[:i] + "
                f"xs[i + 1:]`, `xs = xs[::-1]`), or give the list its full length and write "
                f"its elements.",
                call,
            )
        elif (
            isinstance(s, ir.Assign)
            and s.grows
            and ctx.uneven
            and not ir.assigned(s.targets[0]) <= ctx.built
        ):
            self.error(
                f"a list grown inside {ctx.uneven} (an `append` or `extend`, or a comprehension "
                f"with an `if` on a relaxed value): the list's length would differ per example. "
                f"Give the list its full length before and write its elements (`xs[i] = v`), or "
                f"put the condition into the value (`v if c else 0.0`)."
            )
        elif isinstance(s, ir.Return):
            if ctx.relaxed:
                self.error(
                    f"`return` inside {ctx.relaxed}: a relaxed construct runs for every "
                    f"example to a different extent, so it cannot end the function for "
                    f"some of them. Assign the result to a variable and return it at the end."
                )
            self.expr(s.value)
        elif isinstance(s, ir.Jump):
            if ctx.relaxed and not ctx.loop_inside and s.what is not ir.JumpKind.PASS:
                self.error(
                    f"`{s.what}` inside {ctx.relaxed}: the relaxed condition holds for each "
                    f"example only to an extent, so the loop cannot be left for some of them. "
                    f"Revise the loop so that it runs to its end, and guard its body with the "
                    f"condition instead (a flag variable, say)."
                )
        elif isinstance(s, (ir.Assert, ir.Raise)):
            what = "assert" if isinstance(s, ir.Assert) else "raise"
            parts = (s.test, s.msg) if isinstance(s, ir.Assert) else (s.exc, s.cause)
            if any(p is not None and p.kind.per_example for p in parts):
                self.error(
                    f"`{what}` on a relaxed value is not supported: the value differs per "
                    f"example and holds only to an extent, so it cannot stop the call for some "
                    f"examples. Check the inputs before calling the module, or `{what}` on hard "
                    f"values (lengths, shapes, hard parameters)."
                )
            if ctx.relaxed:
                self.error(
                    f"`{what}` inside {ctx.relaxed}: both branches of a relaxed condition run for "
                    f"every example, so it would stop the call for examples that do not take "
                    f"the branch. Move it out of the relaxed construct, under a hard condition."
                )
        else:
            if isinstance(s, ir.Assign):
                for target in s.targets:
                    self.nested_write(target)
                    if ctx.built is not None and not s.grows and not isinstance(target, ir.Index):
                        ctx.built.update(ir.assigned(target))  # a list of its own from here on
            for child in ir.children(s):
                self.expr(child)

    @staticmethod
    def loop_ctx(loop, ctx):
        """The context of a hard loop's body: as around it, or a construct that runs a different
        number of times per example when examples leave the loop at different iterations."""
        if ctx.uneven or not loop.exits:
            return _Ctx(ctx.relaxed, bool(ctx.relaxed), ctx.uneven, ctx.built)
        what = "a loop that examples leave at different iterations"
        return _Ctx(ctx.relaxed, bool(ctx.relaxed), what, set())

    def nested_write(self, target):
        """``x[k, 1:][j] = v`` with a relaxed integer ``k``: the row read at ``k`` is a mix of rows,
        so the write is made at once at every row, as ``x[k, j] = v`` (the specialising pass);
        after a slice, ``j`` indexes a dimension of the slice, which that cannot say."""
        if isinstance(target, ir.Tuple_):
            for elt in target.elts:
                self.nested_write(elt)
            return
        while isinstance(target, ir.Index) and isinstance(target.value, ir.Index):
            inner = target.value
            parts = inner.index.elts if isinstance(inner.index, ir.Tuple_) else (inner.index,)
            relaxed = any(n.kind == RELAXED_INT for n in ir.walk(inner.index))
            if relaxed and any(isinstance(p, ir.Slice) for p in parts):
                self.error(
                    f"an element write `{target} = ...` through a relaxed position and a slice: "
                    f"`{inner}` is a mix of rows, written at every row at once, and after the "
                    f"slice `{target.index}` indexes the slice. Write the element with one index "
                    f"into `{inner.value}`, without the slice.",
                    target,
                )
            target = inner

    def relaxed_if(self, s):
        """A relaxed ``if`` in words, saying why when a relaxed ``while`` made its test relaxed
        (a counter assigned in the loop reads as hard but differs per example)."""
        by_loops = dict(self.fn.relaxed_by_loops)
        relaxed = {n.id for n in ir.walk(s.test) if isinstance(n, ir.Name) and n.kind == RELAXED}
        names = sorted(relaxed & set(by_loops))
        if not names or relaxed - set(by_loops):  # relaxed for a reason of its own too
            return "a relaxed `if`"
        lines = ", ".join(str(by_loops[n]) for n in names)
        return (
            f"an `if` on {', '.join(f'`{n}`' for n in names)}, which the relaxed `while` at line "
            f"{lines} makes relaxed (it changes there, to a different extent per example)"
        )

    def for_(self, s):
        if is_range(s.iter):
            for arg in s.iter.args:
                if arg.kind.per_example:
                    what = "relaxed integer" if arg.kind == RELAXED_INT else "relaxed value"
                    self.error(
                        f"a {what} (`{arg}`) is used as a bound of `range`: the number of "
                        f"iterations must be the same for every example. Loop to the largest "
                        f"bound and guard the body with a relaxed `if`.",
                        arg,
                    )
        self.expr(s.target)
        self.expr(s.iter)

    def expr(self, e):
        if e is None:
            return
        if isinstance(e, ir.Index) and any(
            isinstance(n, ir.Slice)
            and any(b is not None and b.kind.per_example for b in (n.lower, n.upper, n.step))
            for n in ir.walk(e.index)
        ):
            self.error(
                "a relaxed integer is used as a bound of a slice: the length of the slice "
                "would differ per example. Index single elements at relaxed positions instead.",
                e,
            )
        if isinstance(e, ir.Index) and e.index.kind == RELAXED:
            self.error(
                "a relaxed value is used as an index: which element it picks differs per "
                "example and is not a whole number. Index with hard values (loop counters, "
                "lengths), or compare against each position with a relaxed `if`.",
                e,
            )
        self.relaxed(e)
        for child in ir.children(e):
            self.expr(child)

    def relaxed(self, e):
        """What ``e`` cannot do with the relaxed values it takes."""
        if e.kind == RELAXED and isinstance(e, ir.Compare) and not registry.relaxes(e.op):
            self.error(
                f"`{e.op}` on a relaxed value is not supported: only the six comparisons "
                f"< <= > >= == != relax.",
                e,
            )
        if isinstance(e, ir.Call) and e.callee is Callee.MATH and e.kind == RELAXED:
            if e.op is None or e.kwargs or len(e.args) != 1:
                self.error(
                    f"`{e.func}` of a relaxed value is not supported: only `math` functions of one "
                    f"value that torch has too (`math.exp`, `math.sqrt`, ...) apply per example. "
                    f"Call the torch function.",
                    e,
                )
        if isinstance(e, ir.Call) and e.callee is Callee.BUILTIN and e.kind == RELAXED:
            if e.op.name == "sorted":
                self.error(
                    "`sorted` of relaxed values is not supported: a sort of per-example values "
                    "is a relaxed algorithm of its own. Write the sort (bubble sort, odd-even "
                    "sort) in the relaxed function, or call a relaxed sorting module.",
                    e,
                )
        if isinstance(e, ir.Call) and e.callee is Callee.BUILTIN:
            name = e.op.name
            if name in ("min", "max") and e.kwargs and e.kind == RELAXED:
                self.error(
                    f"`{name}` with keyword arguments (`key=`, `default=`) is not supported on "
                    f"relaxed values: compute the keys in a comprehension and take `{name}` of "
                    f"it, and see that it is never empty.",
                    e,
                )
            if name in registry.NO_RELAXED_CONVERSION and any(a.kind == RELAXED for a in e.args):
                self.error(
                    f"`{name}()` of a relaxed value is not supported: a relaxed value is a "
                    f"tensor over the batch. Drop the conversion, or use a torch function.",
                    e,
                )

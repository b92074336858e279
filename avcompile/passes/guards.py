"""NaN-guard placement: inside a relaxed branch, every op that can make values that are not finite is
guarded, and the branch is blended so that such a value counts as the branch not taken.

A relaxed ``if`` runs both branches for every example, so ``if d != 0: r = 1 / d`` divides by zero
wherever the branch is (softly) not taken; without a guard the blend turns that into NaN, value and
gradient. A guarded op's value that is not finite is NaN (no value: Python raises there), which
the blend of its branch counts as the branch not taken, and which an infinite sentinel blended
beside it never is (infinity.py). Which ops are risky is the registry's ``risky`` flag; a literal
operand that cannot overflow (``x / 2``, ``x ** 2``) needs no guard. Guards are placed only inside
relaxed branches and arms of relaxed conditional expressions, so programs without them pay
nothing.
"""

from dataclasses import replace

from .. import ir
from ..ir import RELAXED


def place_guards(fn):
    """``fn`` with risky ops guarded inside relaxed branches and those branches marked."""
    return replace(fn, body=_block(fn.body, False))


def _block(stmts, inside):
    return tuple(_stmt(s, inside) for s in stmts)


def _stmt(s, inside):
    if isinstance(s, ir.If):
        branches = inside or s.relaxed
        body, orelse = _block(s.body, branches), _block(s.orelse, branches)
        guarded = s.relaxed and any(
            isinstance(n, ir.Guarded) for b in body + orelse for n in ir.walk(b)
        )
        return replace(s, test=_expr(s.test, inside), body=body, orelse=orelse, guarded=guarded)
    if isinstance(s, (ir.While, ir.For)):
        return ir.map_children(
            s, lambda n: _stmt(n, inside) if isinstance(n, ir.Stmt) else _expr(n, inside)
        )
    return ir.map_children(s, lambda n: _expr(n, inside))


def _expr(e, inside):
    if isinstance(e, ir.IfExp) and e.test.kind == RELAXED:
        return replace(
            e, test=_expr(e.test, inside), body=_expr(e.body, True), orelse=_expr(e.orelse, True)
        )
    e = ir.map_children(e, lambda n: _expr(n, inside))
    if not inside or e.kind != RELAXED:
        return e
    if isinstance(e, ir.BinOp) and e.op.risky and not e.op.safe_with(_literal(e.right)):
        return ir.Guarded((e.left, e.right), op=e.op)
    if isinstance(e, ir.Call) and e.op is not None and e.op.risky and not e.kwargs:
        if isinstance(e.func, ir.Attr) and e.func.value.kind == RELAXED:  # x.sqrt()
            return ir.Guarded((e.func.value,) + e.args, func=ir.tensor_method(e.func.attr))
        if e.how is ir.How.PLAIN:
            return ir.Guarded(e.args, func=e.func)
    return e


def _literal(e):
    """The number a literal operand stands for, or None."""
    return e.value if isinstance(e, ir.Const) else None

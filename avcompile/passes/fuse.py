"""Fusion: rewrites of the relaxed IR that save tensor ops in the generated code.

Generated code runs inside training loops, where each small tensor op costs microseconds of
dispatch and autograd bookkeeping, forward and backward. The rewrites here take blends out of
relaxed branches where one fused op does the work:

- ``if c: loss = loss + 1`` becomes ``loss = loss + p * 1`` (one ``torch.add``), instead of an add
  in the branch and a ``lerp`` after it;
- ``if c: flag = 1.0`` becomes a blend of ``flag`` with the constant, with nothing left in the
  branch.
"""

from dataclasses import replace

from .. import ir
from ..ir import HARD, RELAXED_INT


def fuse(fn):
    """``fn`` with every relaxed ``if`` rewritten where a fused blend applies."""
    return replace(fn, body=_block(fn.body))


def _block(stmts):
    return tuple(_stmt(s) for s in stmts)


def _stmt(s):
    if isinstance(s, ir.If):
        s = replace(s, body=_block(s.body), orelse=_block(s.orelse))
        return _fuse(s) if s.relaxed else s
    if isinstance(s, (ir.While, ir.For)):
        return replace(s, body=_block(s.body))
    return s


def _fuse(s):
    if s.infinite or s.exits:  # `p * inf` is not 0 where p is; exits weigh the blend anew
        return s
    fused = []
    body = list(s.body)
    blended = list(s.blended)
    for var in s.blended:
        if var.unpacked or var.kind == RELAXED_INT or _mentions(s.orelse, var.id):
            continue
        writes = [k for k, st in enumerate(body) if _assigns(st, var.id)]
        if len(writes) != 1:
            continue
        stmt = body[writes[0]]
        if not (isinstance(stmt, ir.Assign) and len(stmt.targets) == 1 and stmt.targets[0] == var):
            continue
        others = body[: writes[0]] + body[writes[0] + 1 :]
        if _mentions(others, var.id):
            continue
        value = stmt.value
        assigned_here = ir.written(others)
        if any(isinstance(n, ir.Name) and n.id in assigned_here for n in ir.walk(value)):
            continue  # the value reads what the branch assigns: it cannot run after the branch
        if (
            isinstance(value, ir.BinOp)
            and value.op.name == "add"
            and value.left == var
            and value.right.kind == HARD
        ):
            fused.append(ir.Fused(ir.FuseOp.ADD, var, value.right, stmt.line))
        elif (
            isinstance(value, ir.Lift) and value.to is ir.LiftTo.BATCH and value.value.kind == HARD
        ):
            fused.append(ir.Fused(ir.FuseOp.SET, var, value.value, stmt.line))
        else:
            continue
        body = others
        blended.remove(var)
    if not fused:
        return s
    return replace(s, body=tuple(body), blended=tuple(blended), fused=tuple(fused))


def _assigns(stmt, name):
    return name in ir.written((stmt,))


def _mentions(stmts, name):
    """Whether any statement reads or writes ``name``."""
    return any(isinstance(n, ir.Name) and n.id == name for s in stmts for n in ir.walk(s))

"""Specialisation: each op in the form its kinds call for.

Once kinds are known: a relaxed condition becomes a probability (``truth(v)`` for a value tested
for truth, ``and``/``or``/``not`` of probabilities, a hard operand of a relaxed ``and`` keeping
Python's short circuit); a shared tensor next to a relaxed value is lifted to broadcast over the
batch, and a hard value written to a relaxed variable is made per-example; ``min``/``max`` of
relaxed values are soft; a call treats the batch as its registry entry says (elementwise, applied
per example, a constructor, or a user's callable given batch-first tensors); ``x.shape`` of a
relaxed value is the example's shape. A relaxed integer stays one where an op keeps it (its
arithmetic, comparisons, indices, blends); anywhere else it is used as a number, its expectation
(SEMANTICS 10).
"""

from dataclasses import replace

from .. import ir, registry
from ..ir import CONSTANT, HARD, RELAXED, RELAXED_INT, Callee, How, LiftTo


def specialize(fn):
    """``fn`` with every op in the form its kinds call for."""
    return replace(fn, body=_block(fn.body))


def _block(stmts):
    return tuple(_stmt(s) for s in stmts)


def _stmt(s):
    if isinstance(s, ir.Assign) and s.grows and s.targets[0].kind == RELAXED:
        return replace(s, value=_grown(s.value))
    if isinstance(s, ir.Assign):
        targets = tuple(_target(t) for t in s.targets)
        value = _expr(s.value)
        if len(targets) == 1:
            value = _convert(targets[0], value)
        return replace(s, targets=targets, value=value)
    if isinstance(s, (ir.Return, ir.Exit)) and s.value is not None:
        return replace(s, value=_as_number(_expr(s.value)))
    if isinstance(s, (ir.If, ir.While)):
        test = _condition(s.test) if s.relaxed else _expr(s.test)
        changes = {"test": test, "body": _block(s.body)}
        if isinstance(s, ir.If):
            changes["orelse"] = _block(s.orelse)
        return replace(s, **changes)
    if isinstance(s, ir.For):
        return replace(s, target=_target(s.target), iter=_expr(s.iter), body=_block(s.body))
    return ir.map_children(s, _expr)


def _grown(value):
    """``xs + [v]``, ``xs + list(ys)``, ``xs[:i] + [v] + xs[i:]`` of a relaxed list (``append``,
    ``extend``, ``insert``): ``rt.grown`` of the parts, which keeps a list of per-example
    elements whether ``xs`` is a list or an array held as one tensor."""

    def parts(e):
        if isinstance(e, ir.BinOp) and e.op.symbol == "+":
            return parts(e.left) + parts(e.right)
        if isinstance(e, ir.Tuple_):  # the new elements
            return [replace(e, elts=tuple(_per_example(_as_number(_expr(x))) for x in e.elts))]
        if isinstance(e, ir.Call) and e.callee is Callee.BUILTIN:  # `list(ys)` of `extend`
            ys = e.args[0]
            return parts(ys) if isinstance(ys, ir.Tuple_) else [_per_example(_expr(ys))]
        return [_expr(e)]

    return ir.Call(ir.Helper("grown"), tuple(parts(value)), (), RELAXED, callee=Callee.DECLARED)


def _target(t):
    if isinstance(t, ir.Index):
        return _one_write(replace(t, value=_target(t.value), index=_expr(t.index)))
    if isinstance(t, ir.Tuple_):
        return replace(t, elts=tuple(_target(e) for e in t.elts))
    return t


def _one_write(t):
    """``x[k][j] = v`` with a relaxed integer ``k`` as ``x[k, j] = v``: the row read at ``k`` is
    a mix of rows, so the element is written at once, weighted at every row (SEMANTICS 7), which
    means the same for a tensor and a table of lists (the reject pass refuses a slice in ``k``'s
    index, after which ``j`` would index another dimension)."""
    inner = t.value
    if not (
        isinstance(inner, ir.Index) and any(n.kind == RELAXED_INT for n in ir.walk(inner.index))
    ):
        return t
    index = _components(inner.index) + _components(t.index)
    return replace(t, value=inner.value, index=ir.Tuple_(index, max(c.kind for c in index)))


def _components(index):
    return index.elts if isinstance(index, ir.Tuple_) and not index.is_list else (index,)


def _lift(e):
    """A shared tensor next to a relaxed value, made to broadcast over the batch."""
    return ir.Lift(e) if e.kind == CONSTANT else e


def _as_number(e):
    """``e`` where a relaxed integer is used as a number: its expectation (in a tuple, each)."""
    if isinstance(e, ir.Tuple_):
        return replace(e, elts=tuple(_as_number(x) for x in e.elts))
    return ir.Expect(e, pos=e.pos) if e.kind == RELAXED_INT else e


def _per_example(e):
    """A value where a per-example one is expected: a hard one is made one for every example."""
    if e.kind == HARD:
        return ir.Lift(e, LiftTo.BATCH)
    return _lift(e)


def _convert(target, value):
    """A value made to fit the kind of the variable (or array) it is written to."""
    if (
        isinstance(target, ir.Tuple_)
        and isinstance(value, ir.Tuple_)
        and len(target.elts) == len(value.elts)
    ):
        elts = tuple(_convert(t, v) for t, v in zip(target.elts, value.elts))
        return ir.Tuple_(elts, max((e.kind for e in elts), default=HARD), value.is_list)
    if target.kind == RELAXED and value.kind == RELAXED_INT:
        return _as_number(value)
    if target.kind != RELAXED or value.kind == RELAXED:
        return value
    if isinstance(target, ir.Name):
        return ir.Lift(value, LiftTo.BATCH)
    if isinstance(target.value, ir.Name) and ir.root(target).unpacked:
        return ir.Lift(value, LiftTo.BATCH)  # a whole element of an unpacked array
    if value.kind == CONSTANT:
        return ir.Lift(value, LiftTo.BROADCAST)
    return value


def _condition(e):
    """An expression used as a condition: a relaxed one becomes a probability."""
    if e.kind != RELAXED:
        return _expr(e)
    if isinstance(e, ir.BoolOp):
        return _chain(e.op, [_condition(v) for v in e.values])
    if isinstance(e, ir.Not):
        return ir.Not(_condition(e.operand), RELAXED)
    if isinstance(e, ir.Truth) or isinstance(e, ir.Call) and e.callee is Callee.DECLARED:
        return _expr(e)  # a probability already (the DSL's conditions with a mode of their own)
    value = _expr(e)
    if value.kind == RELAXED_INT:  # `if k:` on a relaxed integer: the probability that k != 0
        return ir.Compare(registry.BY_SYMBOL["!="], value, ir.Const(0), RELAXED, pos=value.pos)
    return value if isinstance(value, ir.Compare) else ir.Truth(value)


def _chain(op, values):
    """``a and b and c`` of probabilities, pairwise; a hard operand keeps Python's short circuit."""
    first, rest = values[0], values[1:]
    if not rest:
        return first
    tail = _chain(op, rest)
    if first.kind != RELAXED:
        if op.name == "and":
            return ir.IfExp(first, tail, ir.Const(0.0), RELAXED)
        return ir.IfExp(first, ir.Const(1.0), tail, RELAXED)
    if tail.kind != RELAXED:
        tail = ir.IfExp(tail, ir.Const(1.0), ir.Const(0.0), HARD)
    return ir.BoolOp(op, (first, tail), RELAXED)


def _expr(e):
    if e is None:
        return None
    if isinstance(e, (ir.BoolOp, ir.Not)) and e.kind == RELAXED:
        return _condition(e)
    if isinstance(e, ir.IfExp):
        test = _condition(e.test) if e.test.kind == RELAXED else _expr(e.test)
        body, orelse = _expr(e.body), _expr(e.orelse)
        if e.kind == RELAXED:
            body, orelse = _as_number(body), _as_number(orelse)
        if e.kind == RELAXED:  # each arm a per-example value, as the other may be
            body, orelse = _per_example(body), _per_example(orelse)
        return replace(e, test=test, body=body, orelse=orelse)
    if isinstance(e, ir.Call):
        return _call(e)
    if isinstance(e, ir.Attr):
        return _attr(e)
    e = ir.map_children(e, _expr)
    if isinstance(e, ir.Index) and e.index.kind == RELAXED_INT and e.value.kind != RELAXED:
        return replace(e, value=ir.Lift(e.value))  # a shared array read at a relaxed position
    if e.kind != RELAXED:
        return e
    if isinstance(e, (ir.BinOp, ir.UnaryOp, ir.MinMax, ir.Probs)):
        e = ir.map_children(e, _as_number) if not isinstance(e, ir.Probs) else e
    if isinstance(e, ir.BinOp) and e.op.per_example is not None:  # `A @ v`: torch.matmul
        func = ir.Attr(ir.Name("torch", HARD), e.op.per_example, HARD)
        return ir.Call(
            func,
            (e.left, e.right),
            (),
            RELAXED,
            callee=Callee.TORCH,
            how=How.PER_EXAMPLE,
            pos=e.pos,
        )
    if isinstance(e, ir.BinOp):
        return replace(e, left=_lift(e.left), right=_lift(e.right))
    if isinstance(e, ir.Compare):
        return replace(e, left=_lift(e.left), right=_lift(e.right), same=_same(e.left, e.right))
    if isinstance(e, ir.MinMax):
        return replace(e, args=tuple(_lift(a) for a in e.args))
    return e


def _same(left, right):
    """Whether two operands are one element (hard), when that can vary: ``x[j] < x[i]`` is the
    exact comparison of an element with itself where ``j == i``, and ``a < a`` of one name is
    exact; None when it cannot be."""
    if isinstance(left, ir.Name) and left == right:
        return ir.Const(True)
    if not (isinstance(left, ir.Index) and isinstance(right, ir.Index)):
        return None
    if left.value != right.value or not isinstance(ir.root(left), ir.Name):
        return None
    indices = (left.index, right.index)
    if any(i.kind != HARD or isinstance(i, ir.Slice) for i in indices):
        return None
    if left.index == right.index:
        return ir.Const(True)
    a, b = _offset(left.index), _offset(right.index)
    if a is not None and b is not None and a[0] == b[0] and a[1] != b[1]:
        return None  # `x[i] > x[i + 1]`: never one element
    return ir.Compare(registry.BY_SYMBOL["=="], left.index, right.index, HARD)


def _offset(index):
    """``index`` as (name or None, constant) when it is ``c``, ``i``, ``i + c`` or ``i - c``."""
    if isinstance(index, ir.Const) and isinstance(index.value, int):
        return None, index.value
    if isinstance(index, ir.Name):
        return index.id, 0
    if (
        isinstance(index, ir.BinOp)
        and index.op.symbol in ("+", "-")
        and isinstance(index.left, ir.Name)
        and isinstance(index.right, ir.Const)
        and isinstance(index.right.value, int)
    ):
        sign = 1 if index.op.symbol == "+" else -1
        return index.left.id, sign * index.right.value
    return None


def _attr(e):
    """``x.shape``, ``x.ndim``, ``x.T``, ``x.mT`` of a relaxed value are the example's."""
    value = _expr(e.value)
    if value.kind == RELAXED and e.attr == "shape":
        return ir.Shape(value)
    op = registry.ATTRIBUTES.get(e.attr)
    if value.kind == RELAXED and op is not None:
        return _runtime_call(op, (value,), (), e)
    return replace(e, value=value)


def _describes(e):
    """A call that describes a relaxed value's example (``x.size()``, ``torch.numel(x)``)."""
    if e.callee not in (Callee.METHOD, Callee.TORCH) or e.op is None:
        return False
    if e.op.batching != registry.HARD_ONLY or e.op.on_tensors is None:
        return False
    of = e.func.value if e.callee is Callee.METHOD else (e.args[0] if e.args else None)
    return of is not None and of.kind == RELAXED


def _runtime_call(op, args, kwargs, e):
    """``op`` computed per example by its runtime function, ``rt.<op.on_tensors>(...)``."""
    kind = HARD if op.batching == registry.HARD_ONLY else RELAXED
    func = ir.Helper(op.on_tensors)
    return ir.Call(func, args, kwargs, kind, callee=Callee.DECLARED, pos=e.pos)


def _call(e):
    args = tuple(_expr(a) for a in e.args)
    kwargs = tuple((k, _expr(v)) for k, v in e.kwargs)
    func = _attr(e.func) if isinstance(e.func, ir.Attr) else _expr(e.func)
    e = replace(e, func=func, args=args, kwargs=kwargs)
    if e.kind == RELAXED_INT:  # int(k)
        return args[0]
    if any(a.kind == RELAXED_INT for a in args):
        if e.callee is Callee.BUILTIN and e.op.name == "float" and len(args) == 1:
            return ir.Expect(args[0], pos=e.pos)
        args = tuple(_as_number(a) for a in args)
        e = replace(e, args=args)
    relaxed = e.kind == RELAXED
    if e.callee is Callee.BUILTIN:
        if relaxed and e.op.batching == registry.SOFT:  # min / max of relaxed values
            return ir.MinMax(e.op, tuple(_lift(a) for a in args))
        if relaxed and e.op.name == "sum" and len(args) in (1, 2) and not kwargs:
            # from a per-example start, so that the sum of no values is one too
            start = args[1] if len(args) == 2 else ir.Const(0)
            return replace(e, args=(args[0], _per_example(_as_number(start))))
        if relaxed and e.op.on_tensors is not None:  # any(xs), all(xs)
            return _runtime_call(e.op, (ir.Rx(),) + args, kwargs, e)
        if relaxed and e.op.name in ("list", "tuple") and len(args) == 1 and not kwargs:
            return args[0]  # a copy: values are never shared
        return e
    if e.callee is Callee.MATH:
        if not relaxed:
            return e
        torch_fn = ir.Attr(ir.Name("torch", HARD), e.op.name, HARD)
        return replace(e, func=torch_fn, args=tuple(_lift(a) for a in args), callee=Callee.TORCH)
    if _describes(e):  # `x.size(0)`, `torch.numel(x)` of a relaxed value: the example's
        obj = (func.value,) if e.callee is Callee.METHOD else ()
        return _runtime_call(e.op, obj + args, kwargs, e)
    if e.callee is Callee.TORCH:
        if relaxed and e.op.name in ("tensor", "as_tensor") and len(args) == 1:
            # a tensor of a per-example value is that value (values are never shared)
            if not kwargs:
                return args[0]
            return ir.Call(ir.tensor_method("to"), args, kwargs, RELAXED, callee=Callee.METHOD)
        if relaxed and e.op.name == "where" and len(args) == 3 and args[0].kind == RELAXED:
            # a relaxed condition as a mask: the blend of the two values, as a relaxed `if` does
            test = _condition(e.args[0])
            return ir.IfExp(test, _lift(args[1]), _lift(args[2]), RELAXED)
        if not relaxed:
            how = How.CONSTRUCT if e.op.batching == registry.CONSTRUCT else How.PLAIN
            return replace(e, how=how)
        if e.op.batching == registry.ELEMENTWISE:
            return replace(e, args=tuple(_lift(a) for a in args))
        return replace(e, how=How.PER_EXAMPLE)
    if e.callee is Callee.METHOD:
        obj = func.value
        if obj.kind != RELAXED:
            return e
        if e.op.batching == registry.ELEMENTWISE:
            return replace(e, args=tuple(_lift(a) for a in args))
        method = ir.tensor_method(func.attr)
        return replace(e, func=method, args=(obj,) + args, how=How.PER_EXAMPLE)
    if e.callee is Callee.COMPILED:  # each argument in the kind its parameter takes
        args = tuple(
            ir.Lift(_as_number(a), LiftTo.BATCH)
            if k == RELAXED and a.kind < RELAXED_INT
            else (_as_number(a) if k == RELAXED else a)
            for a, k in zip(args, e.takes)
        )
        return replace(e, args=args)
    if e.callee is Callee.USER and relaxed:
        return replace(e, how=How.BATCHED)
    return e

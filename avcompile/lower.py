"""Lower stage: the analysed Python AST to the relaxed IR (``ir.py``)."""

import ast
import copy
from dataclasses import dataclass

from . import ir, ops, registry
from .errors import CompileError, internal_errors_at
from .kinds import CONSTANT, HARD, RELAXED, is_range


@dataclass(frozen=True)
class _Ctx:
    relaxed: str = ""  # the innermost relaxed construct, in words ('' outside any)
    loop_inside: bool = False  # a hard loop lies inside that construct (break/continue allowed)
    in_loop: bool = False


def lower(fn_node, source, kinds):
    """The IR ``Function`` of an analysed function."""
    return _Lowerer(fn_node, source, kinds).function()


class _Lowerer:
    def __init__(self, fn_node, source, kinds):
        self.fn = fn_node
        self.source = source
        self.kinds = kinds

    def error(self, message, node):
        raise CompileError(message, self.source, node)

    # ------------------------------------------------------------------------------ function

    def function(self):
        fn = self.fn
        params = tuple(self.name(p.arg) for p in fn.args.args + fn.args.kwonlyargs)
        defined = {p.id for p in params}
        body = list(fn.body)
        if (
            body
            and isinstance(body[0], ast.Expr)
            and isinstance(body[0].value, ast.Constant)
            and isinstance(body[0].value.value, str)
        ):
            body = body[1:]  # the docstring
        stmts = self.block(body, _Ctx(), defined)
        free = tuple(sorted(n for n in self.kinds.free))
        return ir.Function(
            name=fn.name, params=params, defaults=(), body=stmts, free=free, source=self.source
        )

    def name(self, ident):
        kind = self.kinds.names.get(ident)
        if kind is None:
            return ir.Name(ident, self.kinds.of(ast.Name(ident, ast.Load())))
        return ir.Name(ident, kind, ident in self.kinds.unpacked)

    # ------------------------------------------------------------------------------ statements

    def block(self, stmts, ctx, defined):
        out = []
        for stmt in stmts:
            with internal_errors_at(self.source, stmt):
                out.extend(self.stmt(stmt, ctx, defined))
        return tuple(out)

    def stmt(self, node, ctx, defined):
        line = node.lineno
        if isinstance(node, ast.Assign):
            targets = tuple(self.target(t) for t in node.targets)
            value = self.expr(node.value)
            if len(targets) == 1:
                value = self.convert(targets[0], value)
            self.define(node.targets, defined)
            return [ir.Assign(targets, value, line)]
        if isinstance(node, ast.AnnAssign):
            if node.value is None:
                return []
            target = self.target(node.target)
            self.define([node.target], defined)
            return [ir.Assign((target,), self.convert(target, self.expr(node.value)), line)]
        if isinstance(node, ast.AugAssign):
            load = _as_load(node.target)
            value = ast.copy_location(ast.BinOp(load, node.op, node.value), node)
            target = self.target(node.target)
            return [ir.Assign((target,), self.convert(target, self.expr(value)), line)]
        if isinstance(node, ast.Expr):
            if isinstance(node.value, ast.Constant):
                return []
            return [ir.ExprStmt(self.expr(node.value), line)]
        if isinstance(node, ast.If):
            return [self.if_(node, ctx, defined)]
        if isinstance(node, ast.While):
            return [self.while_(node, ctx, defined)]
        if isinstance(node, ast.For):
            return [self.for_(node, ctx, defined)]
        if isinstance(node, ast.Return):
            if ctx.relaxed:
                self.error(
                    f"`return` inside {ctx.relaxed}: a relaxed construct runs for every "
                    f"example to a different extent, so it cannot end the function for "
                    f"some of them. Assign the result to a variable and return it at the end.",
                    node,
                )
            value = self.expr(node.value) if node.value is not None else None
            return [ir.Return(value, line)]
        if isinstance(node, (ast.Break, ast.Continue)):
            what = "break" if isinstance(node, ast.Break) else "continue"
            if ctx.relaxed and not ctx.loop_inside:
                self.error(
                    f"`{what}` inside {ctx.relaxed}: the relaxed condition holds for each "
                    f"example only to an extent, so the loop cannot be left for some of them. "
                    f"Revise the loop so that it runs to its end, and guard its body with the "
                    f"condition instead (a flag variable, say).",
                    node,
                )
            return [ir.Jump(what, line)]
        if isinstance(node, ast.Pass):
            return []
        if isinstance(node, (ast.Assert, ast.Raise)):
            if not all(self.kinds.of(n) == HARD for n in ast.walk(node) if isinstance(n, ast.Name)):
                self.error(
                    "`assert`/`raise` on a relaxed value is not supported: its truth varies "
                    "over the batch. Check the inputs before calling the module.",
                    node,
                )
            if isinstance(node, ast.Assert):
                msg = self.expr(node.msg) if node.msg is not None else None
                return [ir.Assert(self.expr(node.test), msg, line)]
            exc = self.expr(node.exc) if node.exc is not None else None
            cause = self.expr(node.cause) if node.cause is not None else None
            return [ir.Raise(exc, cause, line)]
        self.error(
            f"this statement ({type(node).__name__}) is not supported in a relaxed function.", node
        )

    def define(self, targets, defined):
        for t in targets:
            for n in ast.walk(t):
                if isinstance(n, ast.Name):
                    defined.add(n.id)

    def if_(self, node, ctx, defined):
        test_kind = self.kinds.of(node.test)
        if test_kind != RELAXED:
            inner = ctx
            body_def, else_def = set(defined), set(defined)
            body = self.block(node.body, inner, body_def)
            orelse = self.block(node.orelse, inner, else_def)
            defined |= body_def | else_def
            return ir.If(self.condition(node.test), body, orelse, False, (), node.lineno)
        inner = _Ctx(relaxed="a relaxed `if`", loop_inside=False, in_loop=ctx.in_loop)
        body_def, else_def = set(defined), set(defined)
        body = self.block(node.body, inner, body_def)
        orelse = self.block(node.orelse, inner, else_def)
        written_then = _written(node.body)
        written_else = _written(node.orelse)
        blended = []
        for name in sorted(written_then | written_else):
            if self.kinds.names.get(name) != RELAXED:
                continue
            if name in defined or (name in written_then and name in written_else):
                blended.append(self.name(name))
        new = tuple(b.id for b in blended if b.id not in defined)
        defined |= {b.id for b in blended}
        return ir.If(
            self.condition(node.test),
            body,
            orelse,
            True,
            tuple(blended),
            node.lineno,
            new=new,
        )

    def while_(self, node, ctx, defined):
        if self.kinds.of(node.test) != RELAXED:
            inner = _Ctx(ctx.relaxed, loop_inside=bool(ctx.relaxed), in_loop=True)
            body = self.block(node.body, inner, set(defined))
            return ir.While(self.condition(node.test), body, False, (), node.lineno)
        inner = _Ctx(relaxed="a relaxed `while`", loop_inside=False, in_loop=True)
        body_def = set(defined)
        body = self.block(node.body, inner, body_def)
        written = _written(node.body) - self.kinds.loop_counters
        carried = [self.name(name) for name in sorted(written) if name in defined]
        return ir.While(self.condition(node.test), body, True, tuple(carried), node.lineno)

    def for_(self, node, ctx, defined):
        if is_range(node.iter):
            for arg in node.iter.args:
                if self.kinds.of(arg) == RELAXED:
                    self.error(
                        "a relaxed value is used as a bound of `range`: the number of "
                        "iterations must be the same for every example. Loop to the largest "
                        "bound and guard the body with a relaxed `if`.",
                        arg,
                    )
        inner = _Ctx(ctx.relaxed, loop_inside=bool(ctx.relaxed), in_loop=True)
        self.define([node.target], defined)
        target = self.target(node.target)
        body = self.block(node.body, inner, defined)
        return ir.For(target, self.expr(node.iter), body, node.lineno)

    # ------------------------------------------------------------------------------ targets

    def target(self, node):
        if isinstance(node, ast.Name):
            return self.name(node.id)
        if isinstance(node, (ast.Tuple, ast.List)):
            return ir.Tuple_(tuple(self.target(e) for e in node.elts), HARD)
        if isinstance(node, ast.Subscript):
            base = (
                self.target(node.value)
                if isinstance(node.value, ast.Subscript)
                else self.name(node.value.id)
            )
            return ir.Index(base, self.index(node), base.kind)
        self.error("this assignment target is not supported", node)

    def convert(self, target, value):
        """Make a value fit the kind of the variable (or array) it is written to."""
        if (
            isinstance(target, ir.Tuple_)
            and isinstance(value, ir.Tuple_)
            and len(target.elts) == len(value.elts)
        ):
            elts = tuple(self.convert(t, v) for t, v in zip(target.elts, value.elts))
            return ir.Tuple_(elts, max((e.kind for e in elts), default=HARD), value.is_list)
        if target.kind != RELAXED or value.kind == RELAXED:
            return value
        if isinstance(target, ir.Name):
            return ir.Lift(value, "batch")
        base = target
        while isinstance(base, ir.Index):
            base = base.value
        if isinstance(target.value, ir.Name) and base.unpacked:
            return ir.Lift(value, "batch")  # a whole element of an unpacked array
        if value.kind == CONSTANT:
            return ir.Lift(value, "broadcast")
        return value

    # ------------------------------------------------------------------------------ expressions

    def condition(self, node):
        """An expression used as a condition: relaxed ones become probabilities."""
        kind = self.kinds.of(node)
        if kind != RELAXED:
            return self.expr(node)
        if isinstance(node, ast.BoolOp):
            return self.boolop(node)
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
            return ir.Not(self.condition(node.operand), RELAXED)
        if isinstance(node, ast.Compare):
            return self.compare(node)
        value = self.expr(node)
        if isinstance(value, ir.Compare) and value.kind == RELAXED:
            return value  # avcompile.gt(...) and its kin are probabilities already
        return ir.Truth(value)

    def boolop(self, node):
        op = registry.BOOL[type(node.op)]
        values = [self.condition(v) for v in node.values]

        def chain(vals):
            first, rest = vals[0], vals[1:]
            if not rest:
                return first
            tail = chain(rest)
            if first.kind != RELAXED:  # a hard operand keeps Python's short circuit
                if op.name == "and":
                    return ir.IfExp(first, tail, ir.Const(0.0), RELAXED)
                return ir.IfExp(first, ir.Const(1.0), tail, RELAXED)
            if tail.kind != RELAXED:
                tail = ir.IfExp(tail, ir.Const(1.0), ir.Const(0.0), HARD)
            return ir.BoolOp(op, (first, tail), RELAXED)

        return chain(values)

    def compare(self, node):
        operands = [node.left] + list(node.comparators)
        parts = []
        for k, op in enumerate(node.ops):
            cmp = registry.COMPARE[type(op)]
            left, right = operands[k], operands[k + 1]
            lk, rk = self.kinds.of(left), self.kinds.of(right)
            if RELAXED not in (lk, rk):
                pair = ast.Compare(left, [op], [right])
                parts.append(self.expr(ast.copy_location(pair, node)))
                continue
            if not registry.relaxes(cmp):
                self.error(
                    f"`{cmp}` on a relaxed value is not supported: only the six comparisons "
                    f"< <= > >= == != relax.",
                    node,
                )
            parts.append(ir.Compare(cmp, self.operand(left), self.operand(right), RELAXED))
        if len(parts) == 1:
            return parts[0]

        def chain(vals):
            if len(vals) == 1:
                return vals[0]
            first, tail = vals[0], chain(vals[1:])
            if first.kind != RELAXED:
                return ir.IfExp(first, tail, ir.Const(0.0), RELAXED)
            if tail.kind != RELAXED:
                tail = ir.IfExp(tail, ir.Const(1.0), ir.Const(0.0), HARD)
            return ir.BoolOp(registry.BOOL[ast.And], (first, tail), RELAXED)

        return chain(parts)

    def operand(self, node):
        """An operand next to a relaxed one: shared tensors are lifted to broadcast."""
        value = self.expr(node)
        return ir.Lift(value) if value.kind == CONSTANT else value

    def index(self, node):
        """The index of a subscript: always hard."""
        if self.kinds.of(node.slice) == RELAXED:
            self.error(
                "a relaxed value is used as an index: which element it picks differs per "
                "example and is not a whole number. Index with hard values (loop counters, "
                "lengths), or compare against each position with a relaxed `if`.",
                node,
            )
        return self.expr(node.slice)

    def expr(self, node):
        kind = self.kinds.of(node)
        method = getattr(self, "expr_" + type(node).__name__, None)
        if method is None:
            self.error(
                f"{type(node).__name__} expressions are not supported with relaxed or "
                f"tensor values.",
                node,
            )
        return method(node, kind)

    def expr_Name(self, node, kind):
        return self.name(node.id)

    def expr_Constant(self, node, kind):
        return ir.Const(node.value)

    def expr_BinOp(self, node, kind):
        left, right = self.expr(node.left), self.expr(node.right)
        if kind == RELAXED:
            left = ir.Lift(left) if left.kind == CONSTANT else left
            right = ir.Lift(right) if right.kind == CONSTANT else right
            if isinstance(node.op, ast.MatMult):
                self.error(
                    "`@` on relaxed values is not supported yet: write the sum out, or call "
                    "torch.matmul (which is applied per example).",
                    node,
                )
        return ir.BinOp(registry.BINARY[type(node.op)], left, right, kind)

    def expr_UnaryOp(self, node, kind):
        if isinstance(node.op, ast.Not):
            return (
                self.condition(node) if kind == RELAXED else ir.Not(self.expr(node.operand), kind)
            )
        return ir.UnaryOp(registry.UNARY[type(node.op)], self.expr(node.operand), kind)

    def expr_Compare(self, node, kind):
        if kind == RELAXED:
            return self.compare(node)
        operands = [self.expr(n) for n in [node.left] + list(node.comparators)]
        pairs = tuple(
            ir.Compare(registry.COMPARE[type(op)], left, right, kind)
            for op, left, right in zip(node.ops, operands, operands[1:])
        )
        if len(pairs) == 1:
            return pairs[0]
        if kind != HARD:
            self.error(
                "a chained comparison of tensors is not supported; split it with `and`.", node
            )
        return ir.BoolOp(registry.BOOL[ast.And], pairs, HARD)  # `a < b < c`: Python's meaning

    def expr_BoolOp(self, node, kind):
        if kind == RELAXED:
            return self.boolop(node)
        op = registry.BOOL[type(node.op)]
        return ir.BoolOp(op, tuple(self.expr(v) for v in node.values), kind)

    def expr_IfExp(self, node, kind):
        body, orelse = self.expr(node.body), self.expr(node.orelse)
        if kind == RELAXED:
            body = ir.Lift(body) if body.kind == CONSTANT else body
            orelse = ir.Lift(orelse) if orelse.kind == CONSTANT else orelse
        return ir.IfExp(self.condition(node.test), body, orelse, kind)

    def expr_Subscript(self, node, kind):
        return ir.Index(self.expr(node.value), self.index(node), kind)

    def expr_Slice(self, node, kind):
        part = lambda n: None if n is None else self.expr(n)  # noqa: E731
        return ir.Slice(part(node.lower), part(node.upper), part(node.step))

    def expr_JoinedStr(self, node, kind):
        return ir.FString(tuple(self.expr(v) for v in node.values))

    def expr_FormattedValue(self, node, kind):
        spec = self.expr(node.format_spec) if node.format_spec is not None else None
        return ir.Formatted(self.expr(node.value), node.conversion, spec)

    def expr_Tuple(self, node, kind):
        return ir.Tuple_(tuple(self.expr(e) for e in node.elts), kind)

    def expr_List(self, node, kind):
        return ir.Tuple_(tuple(self.expr(e) for e in node.elts), kind, is_list=True)

    def expr_Attribute(self, node, kind):
        value = self.expr(node.value)
        if value.kind == RELAXED and node.attr == "shape":
            return ir.Shape(value)
        if value.kind == RELAXED and node.attr in ("ndim", "T", "mT"):
            self.error(
                f"`.{node.attr}` of a relaxed value is not supported yet; use `len(x.shape)` "
                f"or torch.transpose with explicit dimensions.",
                node,
            )
        return ir.Attr(
            value, node.attr, HARD if node.attr in ("shape", "dtype", "device") else kind
        )

    def expr_Call(self, node, kind):
        func = node.func
        args = tuple(self.expr(a) for a in node.args)
        kwargs = tuple((k.arg, self.expr(k.value)) for k in node.keywords)
        if any(k.arg is None for k in node.keywords):
            self.error("`**kwargs` in a call is not supported; name the arguments.", node)
        builtin = (
            func.id
            if isinstance(func, ast.Name)
            and func.id not in self.kinds.names
            and func.id not in self.kinds.free
            else None
        )
        if builtin in ("min", "max"):
            if kwargs:
                self.error(
                    f"`{builtin}` with keyword arguments is not supported on relaxed values.", node
                )
            if kind == RELAXED:
                return ir.MinMax(
                    registry.BUILTINS[builtin],
                    tuple(ir.Lift(a) if a.kind == CONSTANT else a for a in args),
                )
            return ir.Call(ir.Name(builtin, HARD), args, kwargs, kind)
        if builtin in registry.NO_RELAXED_CONVERSION and kind == RELAXED:
            self.error(
                f"`{builtin}()` of a relaxed value is not supported: a relaxed value is a "
                f"tensor over the batch. Drop the conversion, or use a torch function.",
                node,
            )
        if builtin is not None:
            return ir.Call(ir.Name(builtin, HARD), args, kwargs, kind)
        special = self.kinds.resolve(func)
        if special in ops.COMPARISONS or special in ops.REDUCTIONS:
            return self.relaxed_op(special, node, args, dict(kwargs), kind)
        if self.kinds.is_torch(func):
            op = registry.torch_op(func.attr if isinstance(func, ast.Attribute) else func.id)
            if kind != RELAXED:
                how = "construct" if op.batching == registry.CONSTRUCT else "plain"
                return ir.Call(self.expr(func), args, kwargs, kind, how, op)
            if op.batching == registry.ELEMENTWISE:
                args = tuple(ir.Lift(a) if a.kind == CONSTANT else a for a in args)
                return ir.Call(self.expr(func), args, kwargs, kind, op=op)
            return ir.Call(self.expr(func), args, kwargs, kind, "per_example", op)
        if isinstance(func, ast.Attribute) and self.kinds.of(func.value) == RELAXED:
            obj = self.expr(func.value)
            op = registry.torch_op(func.attr)
            if op.batching == registry.ELEMENTWISE:
                args = tuple(ir.Lift(a) if a.kind == CONSTANT else a for a in args)
                return ir.Call(ir.Attr(obj, func.attr, RELAXED), args, kwargs, kind, op=op)
            method = ir.tensor_method(func.attr)
            return ir.Call(method, (obj,) + args, kwargs, kind, "per_example", op)
        how = "batched" if kind == RELAXED else "plain"
        return ir.Call(self.expr(func), args, kwargs, kind, how)

    def relaxed_op(self, fn, node, args, kwargs, kind):
        """``avcompile.gt(a, b, beta=..., dist=...)`` and kin: relaxed operations with options."""
        allowed = {"beta", "dist"} if fn in ops.COMPARISONS else {"beta"}
        unknown = set(kwargs) - allowed
        if unknown:
            self.error(
                f"`{fn.__name__}` takes the options {', '.join(sorted(allowed))}, not "
                f"{', '.join(sorted(unknown))}.",
                node,
            )
        if fn in ops.COMPARISONS:
            if len(args) != 2:
                self.error(f"`{fn.__name__}` compares two values: `{fn.__name__}(a, b)`.", node)
            if kind != RELAXED:  # hard operands: Python's own comparison
                return ir.Compare(ops.COMPARISONS[fn], args[0], args[1], kind)
            left, right = (ir.Lift(a) if a.kind == CONSTANT else a for a in args)
            return ir.Compare(
                ops.COMPARISONS[fn],
                left,
                right,
                RELAXED,
                beta=kwargs.get("beta"),
                dist=kwargs.get("dist"),
            )
        if not args:
            self.error(f"`{fn.__name__}` needs at least one value.", node)
        args = tuple(ir.Lift(a) if a.kind == CONSTANT else a for a in args)
        return ir.MinMax(ops.REDUCTIONS[fn], args, beta=kwargs.get("beta"))


def _as_load(target):
    node = copy.deepcopy(target)
    for n in ast.walk(node):
        if hasattr(n, "ctx"):
            n.ctx = ast.Load()
    return node


def _written(stmts):
    """Names assigned anywhere in a block (element writes count for their array)."""
    out = set()
    for stmt in stmts:
        for node in ast.walk(stmt):
            targets = []
            if isinstance(node, ast.Assign):
                targets = node.targets
            elif isinstance(node, (ast.AugAssign, ast.AnnAssign)):
                targets = [node.target]
            elif isinstance(node, ast.For):
                targets = [node.target]
            for t in targets:
                for n in ast.walk(t):
                    if isinstance(n, ast.Name):
                        out.add(n.id)
    return out

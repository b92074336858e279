"""Emit stage: the relaxed IR as the Python source of a ``torch.nn.Module`` subclass.

Relaxed branches become local functions that take the variables they blend and return them
(``def then_L9(array, loss): ...; return array, loss``); a relaxed ``while`` becomes a condition
and a body function handed to ``rt.relaxed_while``. Each statement is preceded by the user's
source line it comes from, and ``emit`` returns with the source the map of its lines to the user's.
"""

import ast
import builtins
import copy
import math
import re
from dataclasses import dataclass, field

import astor

from . import ir
from .errors import Position, internal_errors_at
from .ir import CONSTANT, HARD, RELAXED, RELAXED_INT

_COMMENT = re.compile(r"^(\s*)__avc_comment_(\d+)__$")


class Namer:
    """Fresh names that never shadow the user's names, globals or builtins."""

    def __init__(self, taken):
        self.taken = set(taken) | set(dir(builtins))

    def fresh(self, base):
        name, k = base, 0
        while name in self.taken:
            k += 1
            name = f"{base}_{k}"
        self.taken.add(name)
        return name


@dataclass(frozen=True)
class Emitted:
    """The Python source of a module class, and the user's line each of its lines comes from.

    ``line_map`` maps a line number of ``source`` (1-based) to the line of the user's source
    (or listing) that it was generated from: every line under a ``# Lnn:`` comment comes from
    line nn, until the next such comment; the lines before the first comment have no entry."""

    source: str
    line_map: dict = field(hash=False)


def emit(fn, user_names, filename=""):
    """The module class for IR function ``fn``: its Python source and line map."""
    return _Emitter(fn, user_names).module(filename)


def _load(name):
    return ast.Name(id=name, ctx=ast.Load())


def _store(name):
    return ast.Name(id=name, ctx=ast.Store())


def _attr(value, *attrs):
    node = _load(value) if isinstance(value, str) else value
    for a in attrs:
        node = ast.Attribute(value=node, attr=a, ctx=ast.Load())
    return node


def _call(func, *args, **kwargs):
    func = (
        _attr(*func.split("."))
        if isinstance(func, str) and "." in func
        else (_load(func) if isinstance(func, str) else func)
    )
    return ast.Call(
        func=func,
        args=list(args),
        keywords=[ast.keyword(arg=k, value=v) for k, v in kwargs.items()],
    )


def _tuple(elts, ctx=None):
    return ast.Tuple(elts=list(elts), ctx=ctx or ast.Load())


def _assign(targets, value):
    return ast.Assign(targets=[targets], value=value, lineno=0)


def _function(name, params, body):
    """``def name(*params): body``, positional parameters only."""
    args = ast.arguments(
        posonlyargs=[],
        args=params,
        vararg=None,
        kwonlyargs=[],
        kw_defaults=[],
        kwarg=None,
        defaults=[],
    )
    return ast.FunctionDef(
        name=name, args=args, body=body, decorator_list=[], returns=None, lineno=0
    )


def _root(target):
    while isinstance(target, ir.Index):
        target = target.value
    return target


class _Emitter:
    def __init__(self, fn, user_names):
        self.fn = fn
        subs = {
            n.id
            for sub in fn.subroutines
            for node in sub.params + sub.body
            for n in ir.walk(node)
            if isinstance(n, ir.Name)
        }
        self.names = Namer(set(user_names) | set(fn.free) | {p.id for p in fn.params} | subs)
        self.rt = self.names.fresh("rt")
        self.base = self.names.fresh("RelaxedModule")
        self.names.taken.add("torch")
        self.self_ = self.names.fresh("self")
        self.batch = self.names.fresh("batch")
        self.rx = self.names.fresh("rx")
        self.max_iter = self.names.fresh("max_iter")
        self.eps = self.names.fresh("eps")
        self.p = self.names.fresh("p")
        self.comments = []  # (user's line, text) of each comment placeholder
        self.constants = {}  # float -> name of the per-example constant made at the call's start
        self.has_batch = any(p.kind == RELAXED for p in fn.params)
        self.exit_loops = []  # per enclosing loop with relaxed exits: (loop, its collectors)
        self.returned = self.names.fresh("returned") if fn.returns else None
        self.subroutine = False  # emitting a recursive helper's function: values stay inside

    def for_subroutine(self, sub):
        """An emitter of the function of recursive helper ``sub``, nested in ``forward``: it shares
        this one's names, runtime aliases and per-example constants."""
        inner = copy.copy(self)
        inner.fn, inner.subroutine, inner.exit_loops = sub, True, []
        inner.returned = self.names.fresh("returned") if sub.returns else None
        return inner

    def subroutine_def(self, sub):
        """``def name(params): body`` of a recursive helper; its relaxed parameters arrive as
        the caller holds them (a list or one tensor) and are made what its body expects."""
        inner = self.for_subroutine(sub)
        body = []
        for p in sub.params:
            if p.kind == RELAXED:
                helper = "as_list" if p.unpacked else "pack"
                body.append(_assign(_store(p.id), inner.rt_call(helper, _load(p.id))))
        block = inner.block(sub.body)
        if inner.returned is not None:
            block.insert(0, _assign(_store(inner.returned), inner.rt_call("Exits")))
        return _function(sub.name, [ast.arg(arg=p.id) for p in sub.params], body + block)

    def constant(self, e):
        """The name of a per-example constant made once per call: tensors are never changed in
        place, so every use can share it, and a loop does not make it again each iteration."""
        value = float(e.value)
        if value not in self.constants:
            base = {0.0: "zero", 1.0: "one"}.get(value, "constant")
            self.constants[value] = self.names.fresh(base)
        return self.constants[value]

    def rt_call(self, helper, *args, **kwargs):
        return _call(_attr(self.rt, helper), *args, **kwargs)

    def comment(self, line):
        """A placeholder statement for the comment citing the user's ``line`` (``# Lnn: text``)."""
        self.comments.append((line, f"L{line}: {self.fn.source.line(line).strip()}"))
        return ast.Expr(value=_load(f"__avc_comment_{len(self.comments) - 1}__"))

    # ------------------------------------------------------------------------------ module

    def module(self, filename):
        fn = self.fn
        args = [ast.arg(arg=self.self_)] + [ast.arg(arg=p.id) for p in fn.params]
        body = [_assign(_store(self.rx), _call(_attr(self.self_, "relaxation")))]
        every = list(fn.body) + [st for sub in fn.subroutines for st in sub.body]
        if _has_relaxed_while(every) or any(
            isinstance(n, ir.While) and n.exits for st in every for n in ir.walk(st)
        ):
            body.append(
                _assign(
                    _tuple([_store(self.max_iter), _store(self.eps)], ast.Store()),
                    _tuple([_attr(self.self_, "max_iter"), _attr(self.self_, "eps")]),
                )
            )
        for name in fn.free:
            if name == "torch":
                continue
            body.append(_assign(_store(name), _call(_attr(self.self_, "free"), ast.Constant(name))))
        relaxed = [p for p in fn.params if p.kind == RELAXED]
        if relaxed:
            mapping = ast.Dict(
                keys=[ast.Constant(p.id) for p in relaxed], values=[_load(p.id) for p in relaxed]
            )
            body.append(
                _assign(_store(self.batch), self.rt_call("Batch", ast.Constant(fn.name), mapping))
            )
            for p in relaxed:
                if p.unpacked:
                    value = self.rt_call("unpack", _load(p.id))
                else:
                    value = _call(_attr(p.id, "movedim"), ast.Constant(0), ast.Constant(-1))
                body.append(_assign(_store(p.id), value))
        subroutines = [self.subroutine_def(sub) for sub in fn.subroutines]
        block = self.block(fn.body)
        if self.returned is not None:  # the results of the examples that return early
            block.insert(0, _assign(_store(self.returned), self.rt_call("Exits")))
        block = subroutines + block
        for value, name in self.constants.items():
            body.append(
                _assign(_store(name), _call(_attr(self.batch, "full"), ast.Constant(value)))
            )
        body += block
        forward = _function("forward", args, body)
        doc = f"Relaxed {fn.name}, generated by avcompile from {filename}."
        cls = ast.ClassDef(
            name=fn.name,
            bases=[_load(self.base)],
            keywords=[],
            body=[ast.Expr(ast.Constant(doc)), forward],
            decorator_list=[],
        )
        header = [
            ast.Import(names=[ast.alias(name="torch", asname=None)]),
            ast.ImportFrom(
                module="avcompile", names=[ast.alias(name="runtime", asname=self.rt)], level=0
            ),
            ast.ImportFrom(
                module="avcompile.module",
                names=[ast.alias(name="RelaxedModule", asname=_alias(self.base, "RelaxedModule"))],
                level=0,
            ),
        ]
        tree = ast.Module(body=header + [cls], type_ignores=[])
        source = astor.to_source(tree, pretty_source="".join)
        return self.place_comments(source)

    def place_comments(self, source):
        """``source`` with each placeholder turned into its comment, and its line map: a line
        comes from the user's line of the comment above it."""
        out, line_map, user_line = [], {}, None
        for line in source.splitlines():
            m = _COMMENT.match(line)
            if m:
                user_line, text = self.comments[int(m.group(2))]
                out.append(f"{m.group(1)}# {text}")
                continue
            out.append(line)
            if user_line is not None:
                line_map[len(out)] = user_line
        return Emitted("\n".join(out) + "\n", line_map)

    # ------------------------------------------------------------------------------ statements

    def block(self, stmts):
        out = []
        last = None
        for stmt in stmts:
            if stmt.line != last and self.fn.source is not None:
                out.append(self.comment(stmt.line))
                last = stmt.line
            with internal_errors_at(self.fn.source, Position.of_line(self.fn.source, stmt.line)):
                out += self.stmt(stmt)
        return out or [ast.Pass()]

    def stmt(self, s):
        if isinstance(s, ir.Assign):
            out = []
            for target in s.targets:
                out += self.store(target, s.value)
            return out
        if isinstance(s, ir.ExprStmt):
            return [ast.Expr(self.ex(s.value))]
        if isinstance(s, ir.Return):
            if s.value is None:
                return [ast.Return(None)]
            if self.returned is not None:
                return self.mixed_return(s.value)
            return [ast.Return(self.output(s.value))]
        if isinstance(s, ir.Exit):
            return self.exit(s)
        if isinstance(s, ir.Jump):
            jumps = {ir.JumpKind.BREAK: ast.Break, ir.JumpKind.CONTINUE: ast.Continue}
            return [jumps.get(s.what, ast.Pass)()]
        if isinstance(s, ir.Assert):
            msg = self.ex(s.msg) if s.msg is not None else None
            return [ast.Assert(test=self.ex(s.test), msg=msg)]
        if isinstance(s, ir.Raise):
            exc = self.ex(s.exc) if s.exc is not None else None
            cause = self.ex(s.cause) if s.cause is not None else None
            return [ast.Raise(exc=exc, cause=cause)]
        if isinstance(s, (ir.For, ir.While)) and s.exits:
            return self.exit_loop(s)
        if isinstance(s, ir.For):
            return [
                ast.For(
                    target=self.target_ast(s.target),
                    iter=self.ex(s.iter),
                    body=self.block(s.body),
                    orelse=[],
                    lineno=0,
                )
            ]
        if isinstance(s, ir.If):
            if not s.relaxed:
                return [
                    ast.If(
                        test=self.ex(s.test),
                        body=self.block(s.body),
                        orelse=self.block(s.orelse) if s.orelse else [],
                    )
                ]
            return self.relaxed_if(s)
        if isinstance(s, ir.While):
            if not s.relaxed:
                return [ast.While(test=self.ex(s.test), body=self.block(s.body), orelse=[])]
            return self.relaxed_while(s)
        raise TypeError(f"cannot emit {s!r}")

    # ------------------------------------------------------------------------------ early exits

    def exit_state(self, loop):
        """The values a ``break`` of ``loop`` sets aside, with how each mixes: its per-example
        names, then the hard names whose value where each example left is read after it."""
        values = [(n.id, "law" if n.kind == RELAXED_INT else "mean") for n in loop.carried]
        values += [
            (name, "law" if twin in loop.stopped_ints else "mean") for name, twin in loop.stopped
        ]
        return values

    def exit(self, s):
        """``alive = collector.leave(alive, state)``: set the state aside, nothing runs on."""
        alive = self.fn.alive
        if s.what is ir.JumpKind.RETURN:
            values = s.value.elts if isinstance(s.value, ir.Tuple_) else (s.value,)
            state = _tuple(self.ex(v) for v in values)
            collector = self.returned
        else:
            loop, breaks, skips = self.exit_loops[-1]
            if s.what is ir.JumpKind.BREAK:
                state = _tuple(_load(n) for n, _ in self.exit_state(loop))
                collector = breaks
            else:
                state = _tuple(_load(n.id) for n in loop.carried)
                collector = skips
        call = _call(_attr(collector, "leave"), _load(alive), state)
        return [_assign(_store(alive), call)]

    def mixed_return(self, value):
        """``return v`` where other examples returned earlier: the expectation of the results."""
        values = value.elts if isinstance(value, ir.Tuple_) else (value,)
        temps = [self.names.fresh("result") for _ in values]
        hows = _tuple(ast.Constant("mean") for _ in values)
        merged = _call(
            _attr(self.returned, "merge"),
            _load(self.fn.alive),
            _tuple(self.ex(v) for v in values),
            hows,
        )
        target = _tuple([_store(t) for t in temps] + [_store("_")], ast.Store())
        outputs = [self.rt_call("output", _load(t)) for t in temps]
        result = _tuple(outputs) if isinstance(value, ir.Tuple_) else outputs[0]
        return [_assign(target, merged), ast.Return(result)]

    def exit_loop(self, s):
        """A loop that examples leave to an extent: what leaves is set aside by its exits and
        mixed after it with what ran to its end (SEMANTICS 11)."""
        alive = self.fn.alive
        breaks = self.names.fresh(f"exits_L{s.line}")
        skips = None
        if any(isinstance(n, ir.Exit) and n.what is ir.JumpKind.CONTINUE for n in ir.walk(s)):
            skips = self.names.fresh(f"skips_L{s.line}")
        stopping = self.names.fresh(f"stopping_L{s.line}") if isinstance(s, ir.While) else None
        out = [_assign(_store(breaks), self.rt_call("Exits"))]
        if skips:
            out.append(_assign(_store(skips), self.rt_call("Exits")))
        if stopping:
            out.append(
                _assign(
                    _store(stopping),
                    self.rt_call(
                        "Stopping",
                        _load(alive),
                        _load(self.max_iter) if s.max_iter is None else self.ex(s.max_iter),
                        _load(self.eps) if s.eps is None else self.ex(s.eps),
                    ),
                )
            )
        carried = [n.id for n in s.carried]
        skip_hows = _tuple(
            ast.Constant("law" if n.kind == RELAXED_INT else "mean") for n in s.carried
        )

        def merge_skips():
            call = _call(
                _attr(skips, "merge"), _load(alive), _tuple(_load(n) for n in carried), skip_hows
            )
            return _assign(_tuple((_store(n) for n in carried + [alive]), ast.Store()), call)

        self.exit_loops.append((s, breaks, skips))
        try:
            body = []
            if stopping:
                body.append(ast.Expr(_call(_attr(stopping, "next"))))
            if skips:
                body.append(merge_skips())
            for stmt in s.body:
                body += self.block([stmt])
                if stopping and any(isinstance(n, ir.Exit) for n in ir.walk(stmt)):
                    check = _call(_attr(stopping, "done"), _load(alive))
                    body.append(ast.If(test=check, body=[ast.Break()], orelse=[]))
        finally:
            self.exit_loops.pop()
        if isinstance(s, ir.For):
            loop = ast.For(
                target=self.target_ast(s.target),
                iter=self.ex(s.iter),
                body=body,
                orelse=[],
                lineno=0,
            )
        else:
            loop = ast.While(test=self.ex(s.test), body=body, orelse=[])
        out.append(loop)
        if skips:
            out.append(merge_skips())
        state = self.exit_state(s)
        merged = _call(
            _attr(breaks, "merge"),
            _load(alive),
            _tuple(_load(n) for n, _ in state),
            _tuple(ast.Constant(how) for _, how in state),
        )
        stores = carried + [twin for _, twin in s.stopped] + [alive]
        out.append(_assign(_tuple((_store(n) for n in stores), ast.Store()), merged))
        return out

    def output(self, value):
        if self.subroutine:  # a recursive helper's result stays as the caller's values are
            return self.ex(value)
        if isinstance(value, ir.Tuple_):
            return _tuple(self.output(e) for e in value.elts)
        if value.kind == RELAXED:
            return self.rt_call("output", self.ex(value))
        return self.ex(value)

    def target_ast(self, target):
        if isinstance(target, ir.Name):
            return _store(target.id)
        if isinstance(target, ir.Tuple_):
            return _tuple((self.target_ast(e) for e in target.elts), ast.Store())
        node = self.ex(target)
        node.ctx = ast.Store()
        return node

    def simple_store(self, target):
        """Whether Python's own assignment does the store (no functional tensor write)."""
        if isinstance(target, ir.Tuple_):
            return all(self.simple_store(e) for e in target.elts)
        if isinstance(target, ir.Name):
            return not target.unpacked
        root = _root(target)
        if root.kind not in (RELAXED, CONSTANT):
            return True
        return root.unpacked and target.value is root

    def store(self, target, value):
        """Statements that write ``value`` (IR) to ``target``."""
        if self.simple_store(target):
            return [_assign(self.target_ast(target), self.ex(value))]
        if isinstance(target, ir.Tuple_):
            values = (
                value.elts
                if isinstance(value, ir.Tuple_) and len(value.elts) == len(target.elts)
                else None
            )
            temps = [self.names.fresh("value") for _ in target.elts]
            rhs = _tuple(self.ex(v) for v in values) if values else self.ex(value)
            out = [_assign(_tuple((_store(t) for t in temps), ast.Store()), rhs)]
            for t, name in zip(target.elts, temps):
                out += self.store_ast(t, _load(name))
            return out
        if isinstance(target, ir.Name):
            return [_assign(_store(target.id), self.rt_call("as_list", self.ex(value)))]
        return self.store_ast(target, self.ex(value))

    def store_ast(self, target, value):
        """Statements that write the Python expression ``value`` to ``target``."""
        if isinstance(target, ir.Name):
            if target.unpacked:
                value = self.rt_call("as_list", value)
            return [_assign(_store(target.id), value)]
        if isinstance(target, ir.Tuple_):
            return [_assign(self.target_ast(target), value)]
        root = _root(target)
        if root.kind not in (RELAXED, CONSTANT) or (root.unpacked and target.value is root):
            return [_assign(self.target_ast(target), value)]
        # A functional write: base = rt.put(base, index, value), recursively for x[i][j]; at a
        # relaxed position, the weighted write of every position (rt.write).
        index = _index_value(self.ex(target.index))
        if _at_relaxed_position(target):
            options = _position_options(target)
            new_base = self.rt_call("write", self.ex(target.value), index, value, **options)
        else:
            new_base = self.rt_call("put", self.ex(target.value), index, value)
        return self.store_ast(target.value, new_base)

    def branch_function(self, name, block, names, new=()):
        params = [ast.arg(arg=n.id) for n in names if n.id not in new]
        body = [
            _assign(_store(n.id), _call("list", _load(n.id)))
            for n in names
            if n.unpacked and n.id not in new
        ]
        body += self.block(block)
        ret = _tuple(_load(n.id) for n in names) if len(names) != 1 else _load(names[0].id)
        body.append(ast.Return(ret))
        return _function(name, params, body)

    def results(self, suffix, names):
        temps = [self.names.fresh(f"{n.id}_{suffix}") for n in names]
        target = (
            _tuple((_store(t) for t in temps), ast.Store()) if len(temps) != 1 else _store(temps[0])
        )
        return temps, target

    def relaxed_if(self, s):
        out = [_assign(_store(self.p), self.ex(s.test))]
        names = list(s.blended)
        args = [_load(n.id) for n in names if n.id not in s.new]
        if s.exits:
            return out + self.exiting_if(s, names)
        if not names and not s.body and not s.orelse:
            return out + self.fused_blends(s)
        then_name = self.names.fresh(f"then_L{s.line}")
        out.append(self.branch_function(then_name, s.body, names, s.new))
        then_vals, then_target = self.results("then", names)
        out.append(
            _assign(then_target, _call(then_name, *args)) if names else ast.Expr(_call(then_name))
        )
        else_vals = [n.id for n in names]
        if s.orelse:
            else_name = self.names.fresh(f"else_L{s.line}")
            out.append(self.branch_function(else_name, s.orelse, names, s.new))
            else_vals, else_target = self.results("else", names)
            out.append(
                _assign(else_target, _call(else_name, *args))
                if names
                else ast.Expr(_call(else_name))
            )
        for n, t, e in zip(names, then_vals, else_vals):
            # a sentinel is blended as a value; a guarded op's value that is not finite is not
            helper = _blend(s.guarded, n.id in s.infinite)
            helper = "blend_int" if n.kind == RELAXED_INT else helper
            out.append(
                _assign(_store(n.id), self.rt_call(helper, _load(self.p), _load(t), _load(e)))
            )
        return out + self.fused_blends(s)

    def exiting_if(self, s, names):
        """A relaxed ``if`` whose branches exit to an extent: each branch runs with the mass of
        examples that take it, and the blend weighs what still runs after each (``rt.share``)."""
        alive, p = self.fn.alive, _load(self.p)

        def args(scale):
            return [
                ast.BinOp(left=_load(alive), op=ast.Mult(), right=scale)
                if n.id == alive
                else _load(n.id)
                for n in names
                if n.id not in s.new
            ]

        not_p = ast.BinOp(left=ast.Constant(1.0), op=ast.Sub(), right=p)
        k = [n.id for n in names].index(alive)
        out = []
        then_name = self.names.fresh(f"then_L{s.line}")
        out.append(self.branch_function(then_name, s.body, names, s.new))
        then_vals, then_target = self.results("then", names)
        out.append(_assign(then_target, _call(then_name, *args(p))))
        if s.orelse:
            else_name = self.names.fresh(f"else_L{s.line}")
            out.append(self.branch_function(else_name, s.orelse, names, s.new))
            else_vals, else_target = self.results("else", names)
            out.append(_assign(else_target, _call(else_name, *args(not_p))))
        else:  # the else branch changes nothing but its mass
            else_vals = [n.id for n in names]
            else_vals[k] = self.names.fresh(f"{alive}_else")
            out.append(_assign(_store(else_vals[k]), args(not_p)[k]))
        others = [(n, t, e) for n, t, e in zip(names, then_vals, else_vals) if n.id != alive]
        if others:
            share = self.names.fresh("q")
            out.append(
                _assign(
                    _store(share),
                    self.rt_call("share", _load(then_vals[k]), _load(else_vals[k]), p),
                )
            )
        for n, t, e in others:
            helper = _blend(s.guarded, n.id in s.infinite)
            helper = "blend_int" if n.kind == RELAXED_INT else helper
            out.append(
                _assign(_store(n.id), self.rt_call(helper, _load(share), _load(t), _load(e)))
            )
        total = ast.BinOp(left=_load(then_vals[k]), op=ast.Add(), right=_load(else_vals[k]))
        out.append(_assign(_store(alive), total))
        return out

    def fused_blends(self, s):
        out = []
        for f in sorted(s.fused, key=lambda f: f.line):
            out.append(self.comment(f.line))
            var = _load(f.var.id)
            if f.op is ir.FuseOp.ADD and _is_number(f.value):  # var + p * value, in one op
                value = _call(_attr("torch", "add"), var, _load(self.p), alpha=self.ex(f.value))
            elif f.op is ir.FuseOp.ADD:
                value = ast.BinOp(
                    left=var,
                    op=ast.Add(),
                    right=ast.BinOp(left=_load(self.p), op=ast.Mult(), right=self.ex(f.value)),
                )
            else:
                value = self.rt_call(
                    "blend", _load(self.p), self.ex(ir.Lift(f.value, ir.LiftTo.BATCH)), var
                )
            out.append(_assign(_store(f.var.id), value))
        return out

    def relaxed_while(self, s):
        names = list(s.carried)
        params = [ast.arg(arg=n.id) for n in names]
        cond_name = self.names.fresh(f"cond_L{s.line}")
        body_name = self.names.fresh(f"body_L{s.line}")
        cond = _function(cond_name, params, [ast.Return(self.ex(s.test))])
        body = self.branch_function(body_name, s.body, names)
        if len(names) == 1:  # the body returns a 1-tuple so relaxed_while can unpack it
            body.body[-1] = ast.Return(_tuple([_load(names[0].id)]))
        relaxed = _tuple(ast.Constant(n.kind.per_example) for n in names)
        state = _tuple(_load(n.id) for n in names)
        max_iter = _load(self.max_iter) if s.max_iter is None else self.ex(s.max_iter)
        eps = _load(self.eps) if s.eps is None else self.ex(s.eps)
        carried = [n.id for n in names]
        expect = {}
        ints = [k for k, n in enumerate(names) if n.kind == RELAXED_INT]
        if ints:  # relaxed integers, accumulated as distributions
            expect["ints"] = _tuple(ast.Constant(k) for k in ints)
        # hard names whose expectation (or, for a relaxed integer, distribution) over the
        # stopping iteration is wanted too
        means = [(n, t) for n, t in s.stopped if t not in s.stopped_ints]
        laws = [(n, t) for n, t in s.stopped if t in s.stopped_ints]
        if means:
            expect["expect"] = _tuple(ast.Constant(carried.index(n)) for n, _ in means)
        if laws:
            expect["dists"] = _tuple(ast.Constant(carried.index(n)) for n, _ in laws)
        if s.infinite:
            expect["inf"] = ast.Constant(True)
        call = self.rt_call(
            "relaxed_while",
            _load(cond_name),
            _load(body_name),
            state,
            relaxed,
            _load(self.batch),
            max_iter,
            eps,
            **expect,
        )
        stores = carried + [twin for _, twin in means + laws]
        target = _tuple((_store(n) for n in stores), ast.Store())
        return [cond, body, _assign(target, call) if stores else ast.Expr(call)]

    # ------------------------------------------------------------------------------ expressions

    def ex(self, e):
        method = getattr(self, "ex_" + type(e).__name__.rstrip("_"))
        return method(e)

    def ex_Name(self, e):
        return _load(e.id)

    def ex_Const(self, e):
        if isinstance(e.value, float) and not math.isfinite(e.value):
            return _call("float", ast.Constant(str(e.value)))  # `inf` is no literal of Python
        return ast.Constant(e.value)

    def ex_FString(self, e):
        return ast.JoinedStr(values=[self.ex(v) for v in e.values])

    def ex_Formatted(self, e):
        spec = self.ex(e.spec) if e.spec is not None else None
        return ast.FormattedValue(value=self.ex(e.value), conversion=e.conversion, format_spec=spec)

    def ex_BinOp(self, e):
        if e.kind == RELAXED and e.op.on_tensors is not None:
            return self.rt_call(e.op.on_tensors, self.ex(e.left), self.ex(e.right))
        return ast.BinOp(left=self.ex(e.left), op=e.op.node(), right=self.ex(e.right))

    def ex_UnaryOp(self, e):
        return ast.UnaryOp(op=e.op.node(), operand=self.ex(e.operand))

    def ex_Compare(self, e):
        if RELAXED_INT in (e.left.kind, e.right.kind):  # read off the distributions
            return self.rt_call(
                "compare_int",
                _load(self.rx),
                ast.Constant(e.op.relaxation),
                self.ex(e.left),
                self.ex(e.right),
            )
        if e.kind == RELAXED:
            options = {
                k: self.ex(v)
                for k, v in (("beta", e.beta), ("dist", e.dist), ("same", e.same))
                if v is not None
            }
            return _call(
                _attr(self.rx, e.op.relaxation), self.ex(e.left), self.ex(e.right), **options
            )
        return ast.Compare(left=self.ex(e.left), ops=[e.op.node()], comparators=[self.ex(e.right)])

    def ex_BoolOp(self, e):
        if e.kind == RELAXED:
            left, right = e.values
            return self.rt_call(e.op.name + "_", self.ex(left), self.ex(right))
        if _is_chain(e):  # `a < b and b < c` from `a < b < c`: written as the user wrote it
            operands = [e.values[0].left] + [v.right for v in e.values]
            return ast.Compare(
                left=self.ex(operands[0]),
                ops=[v.op.node() for v in e.values],
                comparators=[self.ex(x) for x in operands[1:]],
            )
        return ast.BoolOp(op=e.op.node(), values=[self.ex(v) for v in e.values])

    def ex_Not(self, e):
        if e.kind == RELAXED:
            return ast.BinOp(left=ast.Constant(1.0), op=ast.Sub(), right=self.ex(e.operand))
        return ast.UnaryOp(op=ast.Not(), operand=self.ex(e.operand))

    def ex_Truth(self, e):
        return _call(_attr(self.rx, "truth"), self.ex(e.operand))

    def ex_IfExp(self, e):
        if e.test.kind == RELAXED and e.kind == RELAXED_INT:
            return self.rt_call("blend_int", self.ex(e.test), self.ex(e.body), self.ex(e.orelse))
        if e.test.kind == RELAXED:
            helper = _blend(_contains_guard((e.body, e.orelse)), e.infinite)
            return self.rt_call(helper, self.ex(e.test), self.ex(e.body), self.ex(e.orelse))
        return ast.IfExp(test=self.ex(e.test), body=self.ex(e.body), orelse=self.ex(e.orelse))

    def ex_Index(self, e):
        if _at_relaxed_position(e):
            index = _index_value(self.ex(e.index))
            return self.rt_call("read", self.ex(e.value), index, **_position_options(e))
        return ast.Subscript(value=self.ex(e.value), slice=self.ex(e.index), ctx=ast.Load())

    def ex_Slice(self, e):
        part = lambda p: None if p is None else self.ex(p)  # noqa: E731
        return ast.Slice(lower=part(e.lower), upper=part(e.upper), step=part(e.step))

    def ex_Tuple(self, e):
        elts = [self.ex(x) for x in e.elts]
        return ast.List(elts=elts, ctx=ast.Load()) if e.is_list else _tuple(elts)

    def ex_Attr(self, e):
        return ast.Attribute(value=self.ex(e.value), attr=e.attr, ctx=ast.Load())

    def ex_Shape(self, e):
        return self.rt_call("shape", self.ex(e.value))

    def ex_Call(self, e):
        func = self.ex(e.func)
        args = [self.ex(a) for a in e.args]
        kwargs = {k: self.ex(v) for k, v in e.kwargs}
        if e.how is ir.How.CONSTRUCT and self.has_batch:
            if "device" not in kwargs:
                kwargs["device"] = _attr(self.batch, "device")
            if "dtype" not in kwargs and e.op.float_result:
                kwargs["dtype"] = _attr(self.batch, "dtype")
        if e.how in (ir.How.PER_EXAMPLE, ir.How.BATCHED):
            mask = _tuple(ast.Constant(a.kind == RELAXED) for a in e.args)
            helper = "per_example" if e.how is ir.How.PER_EXAMPLE else "batched_call"
            kw = ast.Dict(keys=[ast.Constant(k) for k in kwargs], values=list(kwargs.values()))
            return self.rt_call(helper, func, _tuple(args), mask, kw)
        return ast.Call(
            func=func, args=args, keywords=[ast.keyword(arg=k, value=v) for k, v in kwargs.items()]
        )

    def ex_MinMax(self, e):
        options = {"beta": self.ex(e.beta)} if e.beta is not None else {}
        if e.infinite:
            options["inf"] = ast.Constant(True)
        return _call(_attr(self.rx, e.op.relaxation), *[self.ex(a) for a in e.args], **options)

    def ex_Guarded(self, e):
        func = _attr(self.rt, e.op.guard) if e.op is not None else self.ex(e.func)
        return self.rt_call("guarded", func, *[self.ex(a) for a in e.args])

    def ex_Expect(self, e):
        return self.rt_call("expect", self.ex(e.value), _load(self.batch))

    def ex_Probs(self, e):
        size = self.ex(e.size) if e.size is not None else ast.Constant(None)
        return self.rt_call("probs", self.ex(e.value), size, _load(self.batch))

    def ex_Helper(self, e):
        return _attr(self.rt, e.name)

    def ex_Rx(self, e):
        return _load(self.rx)

    def ex_Lift(self, e):
        if e.to is ir.LiftTo.BATCH:
            if _is_number(e.value):
                return _load(self.constant(e.value))
            return _call(_attr(self.batch, "relax"), self.ex(e.value))
        if e.value.kind == HARD and self.has_batch:  # Python's numbers, in the batch's dtype
            return self.rt_call("lift", self.ex(e.value), _attr(self.batch, "dtype"))
        return self.rt_call("lift", self.ex(e.value))


def _blend(guarded, infinite):
    """The runtime's blend for a branch that may make values that are not finite (guarded ops)
    and of values that may be infinite (sentinels): a sentinel is blended as a value, a guarded
    op's value that is not finite counts as its branch not taken (only a NaN, beside a sentinel)."""
    if infinite:
        return "blend_inf_finite" if guarded else "blend_inf"
    return "blend_finite" if guarded else "blend"


def _alias(name, imported):
    """``as name`` in an import, or nothing when the name is the imported one."""
    return None if name == imported else name


def _is_chain(e):
    """Whether a hard ``and`` is a chain of comparisons sharing their middle operands."""
    values = e.values
    return (
        e.op.name == "and"
        and all(isinstance(v, ir.Compare) and v.kind != RELAXED for v in values)
        and all(a.right == b.left for a, b in zip(values, values[1:]))
    )


def _position_options(e):
    """The options of ``rt.read``/``rt.write`` for an index with relaxed integers: which of its
    components are relaxed, and whether the array may hold infinite values."""
    parts = e.index.elts if isinstance(e.index, ir.Tuple_) else (e.index,)
    relaxed = [k for k, p in enumerate(parts) if p.kind == RELAXED_INT]
    options = {"relaxed": _tuple(ast.Constant(k) for k in relaxed)}
    if e.infinite:
        options["inf"] = ast.Constant(True)
    return options


def _at_relaxed_position(e):
    """Whether an index expression (or target) indexes with a relaxed integer."""
    return any(n.kind == RELAXED_INT for n in ir.walk(e.index))


def _is_number(e):
    return (
        isinstance(e, ir.Const)
        and isinstance(e.value, (int, float))
        and not isinstance(e.value, bool)
    )


def _index_value(index):
    """An index as a value that can be passed to a call: ``1:3`` becomes ``slice(1, 3)``."""
    if isinstance(index, ast.Slice):
        parts = [
            p if p is not None else ast.Constant(None)
            for p in (index.lower, index.upper, index.step)
        ]
        return _call("slice", *parts)
    if isinstance(index, ast.Tuple):
        return _tuple(_index_value(e) for e in index.elts)
    return index


def _contains_guard(node):
    if isinstance(node, ir.Guarded):
        return True
    if isinstance(node, (list, tuple)):
        return any(_contains_guard(n) for n in node)
    if hasattr(node, "__dataclass_fields__"):
        return any(_contains_guard(getattr(node, f)) for f in node.__dataclass_fields__)
    return False


def breaks_graph_in_loop(fn):
    """Whether torch.compile would meet a graph break inside a Python loop of ``fn``'s generated
    code: a relaxed ``while`` (``rt.relaxed_while`` runs as Python, asking the data whether to
    go on) inside a loop or in a recursive helper, or a ``while`` that examples leave to an
    extent (its ``Stopping`` asks the data at every iteration). Dynamo cannot resume inside a
    loop: it would run ``forward`` as Python and compile each function that it calls on its own,
    again for every length, so such a module runs as Python under torch.compile."""

    def breaks(node, in_loop):
        if isinstance(node, ir.While) and (node.exits or (node.relaxed and in_loop)):
            return True
        if isinstance(node, ir.While) and node.relaxed:
            return False  # its body runs inside rt.relaxed_while, never traced
        in_loop = in_loop or isinstance(node, (ir.For, ir.While))
        return any(breaks(c, in_loop) for c in ir.children(node) if isinstance(c, ir.Stmt))

    helpers = [st for sub in fn.subroutines for st in sub.body]
    return any(breaks(st, False) for st in fn.body) or any(breaks(st, True) for st in helpers)


def _has_relaxed_while(stmts):
    for s in stmts:
        if isinstance(s, ir.While) and s.relaxed:
            return True
        for block in (getattr(s, "body", ()), getattr(s, "orelse", ())):
            if _has_relaxed_while(block):
                return True
    return False

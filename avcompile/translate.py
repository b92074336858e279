"""Python front end: a checked ``ast.FunctionDef`` translated into the plain relaxed IR.

It only translates. It resolves what the function's names refer to (parameters, locals, free
names and their values at decoration, builtins, torch functions) and classifies every call once,
because that needs the user's namespace; everything that depends on kinds (what is relaxed, where
to blend, lift, guard and unpack) is decided by the passes over the IR (``passes/``).
"""

import ast
import builtins
from dataclasses import replace

import torch

from . import inline, ir, ops, registry
from .errors import CompileError, internal_errors_at
from .ir import CONSTANT, HARD, RELAXED, Callee


def translate(fn_node, source, fn, static=()):
    """The plain IR ``Function`` of ``fn`` (parsed as ``fn_node``)."""
    return _Translator(fn_node, source, fn, static).function()


_TORCH_OBJECTS = set()
for _name in dir(torch):
    _obj = getattr(torch, _name, None)
    if callable(_obj):
        try:
            _TORCH_OBJECTS.add(_obj)
        except TypeError:
            pass


def _is_torch(value):
    module = getattr(value, "__module__", None) or ""
    return value is not None and (module.startswith("torch") or value in _TORCH_OBJECTS)


class _Translator:
    def __init__(self, fn_node, source, fn, static):
        self.fn_node = fn_node
        self.source = source
        args = fn_node.args
        self.param_nodes = list(args.args + args.kwonlyargs)
        unknown = set(static) - {a.arg for a in self.param_nodes}
        if unknown:
            raise TypeError(
                f"relax(static=...) names {sorted(unknown)}, which are not parameters of "
                f"{fn_node.name}"
            )
        self.params = {}
        defaults = dict(zip([a.arg for a in args.args][::-1], args.defaults[::-1]))
        defaults.update((a.arg, d) for a, d in zip(args.kwonlyargs, args.kw_defaults) if d)
        for a in self.param_nodes:
            self.params[a.arg] = HARD if _is_hard(a, defaults.get(a.arg), static) else RELAXED
        self.locals = set(self.params) | inline.local_names(fn_node)
        self.free = _free_values(fn_node, fn, self.locals)
        self.lookups = {}  # a helper's free name -> (its namespace, its name there)
        self.local_functions = {}  # name -> the `def` or `lambda` of a function defined inside
        self.pending = []  # statements an inlined call adds before the statement being translated
        self.depth = 0  # how deep in inlined helpers
        self.line = None  # while inlining: the line of the call, for every statement it adds
        self.taken = set(self.locals) | set(self.free)
        self.inlining = []  # the helpers being inlined, innermost last (a call of one recurses)
        self.subroutine_names = {}  # a recursive helper -> the name of its function
        self.subroutines = []  # those functions, in the plain IR

    def error(self, message, node):
        raise CompileError(message, self.source, node)

    # ------------------------------------------------------------------------------ names

    def name(self, ident):
        """A name: a parameter (its declared kind), a local (kind inferred later, HARD until
        then) or a free name (CONSTANT when it holds a tensor at decoration)."""
        if ident in self.params:
            return ir.Name(ident, self.params[ident])
        if ident in self.locals:
            return ir.Name(ident, HARD)
        value = self.free.get(ident)
        return ir.Name(ident, CONSTANT if isinstance(value, torch.Tensor) else HARD)

    def resolve(self, node):
        """The value at decoration of a dotted name of free variables (``torch.sigmoid``)."""
        if isinstance(node, ast.Name):
            return None if node.id in self.locals else self.free.get(node.id)
        if isinstance(node, ast.Attribute):
            base = self.resolve(node.value)
            return getattr(base, node.attr, None) if base is not None else None
        return None

    def fresh(self, base):
        """A new local name that clashes with no name of the function, free name or builtin."""
        name, k = base, 1
        while name in self.taken or hasattr(builtins, name):
            k += 1
            name = f"{base}_{k}"
        self.taken.add(name)
        self.locals.add(name)
        return name

    def builtin(self, func):
        """The name of the builtin a call target is, or None."""
        if (
            isinstance(func, ast.Name)
            and func.id not in self.locals
            and func.id not in self.free
            and hasattr(builtins, func.id)
        ):
            return func.id
        return None

    # ------------------------------------------------------------------------------ function

    def function(self):
        fn = self.fn_node
        body = list(fn.body)
        if (
            body
            and isinstance(body[0], ast.Expr)
            and isinstance(body[0].value, ast.Constant)
            and isinstance(body[0].value.value, str)
        ):
            body = body[1:]  # the docstring
        stmts = self.block(body)
        every = list(stmts) + [st for sub in self.subroutines for st in sub.body]
        used = {n.id for s in every for n in ir.walk(s) if isinstance(n, ir.Name)}
        return ir.Function(
            name=fn.name,
            params=tuple(self.name(a.arg) for a in self.param_nodes),
            defaults=(),
            body=stmts,
            free=tuple(sorted(n for n in self.free if n in used)),
            source=self.source,
            declared=tuple(self.params),
            lookups=tuple(sorted(self.lookups.items(), key=lambda item: item[0])),
            subroutines=tuple(self.subroutines),
        )

    # ------------------------------------------------------------------------------ statements

    def block(self, stmts):
        out = []
        for stmt in stmts:
            outer, self.pending = self.pending, []
            with internal_errors_at(self.source, stmt):
                translated = self.stmt(stmt)
            out.extend(self.pending + translated)
            self.pending = outer
        return tuple(out)

    def stmt(self, node):
        line = self.line or node.lineno
        self.statement_line = line
        if isinstance(node, ast.FunctionDef):
            if node.decorator_list:
                self.error("a function defined inside a relaxed function takes no decorator.", node)
            self.local_functions[node.name] = node
            return []
        if (
            isinstance(node, ast.Assign)
            and isinstance(node.value, ast.Lambda)
            and len(node.targets) == 1
            and isinstance(node.targets[0], ast.Name)
        ):
            lam = node.value
            body = [ast.copy_location(ast.Return(lam.body), lam.body)]
            fn = ast.FunctionDef(node.targets[0].id, lam.args, body, [], None)
            self.local_functions[node.targets[0].id] = ast.copy_location(fn, node)
            return []
        if isinstance(node, ast.Assign):
            if _builds_into(node):  # `t = [... for ...]`: the list is built in `t` itself
                return self.comprehension(node.value, into=node.targets[0].id)
            targets = tuple(self.target(t) for t in node.targets)
            return [ir.Assign(targets, self.expr(node.value), line)]
        if isinstance(node, ast.AnnAssign):
            if node.value is None:
                return []
            return [ir.Assign((self.target(node.target),), self.expr(node.value), line)]
        if isinstance(node, ast.AugAssign):
            op = registry.BINARY[type(node.op)]
            value = ir.BinOp(op, self.expr(_as_load(node.target)), self.expr(node.value), HARD)
            return [ir.Assign((self.target(node.target),), value, line)]
        if isinstance(node, ast.Expr):
            if isinstance(node.value, ast.Constant):
                return []
            grown = self.list_growth(node.value, line)
            if grown is not None:
                return [grown]
            value = self.expr(node.value)
            if isinstance(value, ir.Name):  # an inlined helper's result, unused (it may be unset)
                return []
            return [ir.ExprStmt(value, line)]
        if isinstance(node, ast.If):
            test = self.expr(node.test)
            return [ir.If(test, self.block(node.body), self.block(node.orelse), False, (), line)]
        if isinstance(node, ast.While):
            test = self.expr(node.test)
            if self.pending:
                self.error(
                    "a helper call or a comprehension in the condition of a `while` runs once "
                    "per test: assign its result to a variable before the loop and at the end "
                    "of its body.",
                    node.test,
                )
            return [ir.While(test, self.block(node.body), False, (), line)]
        if isinstance(node, ast.For):
            if isinstance(node.iter, ast.Name) and node.iter.id in self.locals:
                return [self.for_each(node, line)]
            target, it = self.target(node.target), self.expr(node.iter)
            return [ir.For(target, it, self.block(node.body), line)]
        if isinstance(node, ast.Return):
            value = self.expr(node.value) if node.value is not None else None
            return [ir.Return(value, line)]
        if isinstance(node, (ast.Break, ast.Continue)):
            what = ir.JumpKind.BREAK if isinstance(node, ast.Break) else ir.JumpKind.CONTINUE
            return [ir.Jump(what, line)]
        if isinstance(node, ast.Pass):
            return []
        if isinstance(node, ast.Assert):
            msg = self.expr(node.msg) if node.msg is not None else None
            return [ir.Assert(self.expr(node.test), msg, line)]
        if isinstance(node, ast.Raise):
            exc = self.expr(node.exc) if node.exc is not None else None
            cause = self.expr(node.cause) if node.cause is not None else None
            return [ir.Raise(exc, cause, line)]
        self.error(
            f"this statement ({type(node).__name__}) is not supported in a relaxed function.", node
        )

    def for_each(self, node, line):
        """``for v in x`` over a local array, as ``for k in range(len(x)): v = x[k]``: Python's
        list iterator reads each element when it gets there, so it sees writes made in the body
        (avcompile's arrays are values, which a write replaces)."""
        k = ir.Name(self.fresh(f"{node.iter.id}_position"), HARD)
        array = self.name(node.iter.id)
        positions = _builtin_call("range", _builtin_call("len", array))
        element = ir.Assign((self.target(node.target),), ir.Index(array, k, HARD), line)
        return ir.For(k, positions, (element,) + self.block(node.body), line)

    def list_growth(self, call, line):
        """``xs.append(v)``, ``xs.extend(ys)``, ``xs.insert(i, v)`` on a local list as the
        assignment of the grown list (``xs = xs + [v]``): a value, as every value of a relaxed
        function is, whose kind the passes see, and that a relaxed condition cannot grow for some
        examples only (``passes/reject.py``)."""
        if not (
            isinstance(call, ast.Call)
            and isinstance(call.func, ast.Attribute)
            and isinstance(call.func.value, ast.Name)
            and call.func.value.id in self.locals
            and not call.keywords
        ):
            return None
        method, args = call.func.attr, [self.expr(a) for a in call.args]
        xs = self.name(call.func.value.id)
        add = registry.BINARY[ast.Add]
        if method == "append" and len(args) == 1:
            value = ir.BinOp(add, xs, ir.Tuple_((args[0],), HARD, is_list=True), HARD)
        elif method == "extend" and len(args) == 1:
            value = ir.BinOp(add, xs, _builtin_call("list", args[0]), HARD)
        elif method == "insert" and len(args) == 2:
            head, tail = (
                ir.Index(xs, ir.Slice(*ends), HARD)
                for ends in ((None, args[0], None), (args[0], None, None))
            )
            new = ir.Tuple_((args[1],), HARD, is_list=True)
            value = ir.BinOp(add, ir.BinOp(add, head, new, HARD), tail, HARD)
        else:
            return None
        return ir.Assign((xs,), _at(value, call), line, grows=True)

    # ------------------------------------------------------------------------------ comprehensions

    def comprehension(self, node, into=None):
        """A list comprehension as the loop that builds it, in ``into`` or a new name: Python's
        own meaning, one iteration at a time (its targets are names of their own, as in Python 3).
        Returns the statements when building ``into``, else adds them before the statement and
        returns the list's name."""
        result = into or self.fresh("comprehension")
        start = ast.copy_location(
            ast.Assign([ast.Name(result, ast.Store())], ast.List([], ast.Load())), node
        )
        grow = ast.Call(
            ast.Attribute(ast.Name(result, ast.Load()), "append", ast.Load()), [node.elt], []
        )
        loop = self.generators(node, ast.Expr(grow))
        statements = self.block([ast.fix_missing_locations(start)] + loop)
        if into is not None:
            return list(statements)
        self.pending.extend(statements)
        return ir.Name(result, HARD)

    def generators(self, node, inner):
        """The ``for`` loops (and ``if`` filters) of a comprehension around the statement
        ``inner``, with the comprehension's targets renamed to fresh locals."""
        mapping = {}
        loops = []
        for gen in node.generators:
            if gen.is_async:
                self.error("`async for` in a comprehension is not supported.", gen.iter)
            iterable = inline.rename([gen.iter], mapping)[0]
            for name in sorted(inline.target_names(gen.target)):
                mapping[name] = self.fresh(name)
            target = inline.rename([gen.target], mapping)[0]
            conditions = inline.rename(gen.ifs, mapping)
            loops.append((target, iterable, conditions, gen))
        body = inline.rename([inner], mapping)
        for target, iterable, conditions, gen in reversed(loops):
            for test in reversed(conditions):
                body = [ast.copy_location(ast.If(test, body, []), test)]
            body = [ast.copy_location(ast.For(target, iterable, body, []), gen.iter)]
        return [ast.fix_missing_locations(ast.copy_location(b, node)) for b in body]

    def expr_ListComp(self, node):
        return self.comprehension(node)

    def reduction(self, name, node, start=None):
        """``sum``/``any``/``all`` of a generator expression as the loop that accumulates it:
        ``sum`` adds (from ``start``, 0 by default), ``any`` is ``or`` and ``all`` is ``and`` of the
        values, relaxed where they are (SEMANTICS 4)."""
        acc = self.fresh(name)
        first = start or ast.Constant({"sum": 0, "any": False, "all": True}[name])
        value = ast.Name(acc, ast.Load())
        if name == "sum":
            step = ast.BinOp(value, ast.Add(), node.elt)
        else:
            step = ast.BoolOp(ast.Or() if name == "any" else ast.And(), [value, node.elt])
        begin = ast.Assign([ast.Name(acc, ast.Store())], first)
        update = ast.Assign([ast.Name(acc, ast.Store())], step)
        for n in (begin, update):
            ast.copy_location(n, node)
        loop = self.generators(node, update)
        self.pending.extend(self.block([ast.fix_missing_locations(begin)] + loop))
        return ir.Name(acc, HARD)

    def target(self, node):
        if isinstance(node, ast.Name):
            return self.name(node.id)
        if isinstance(node, (ast.Tuple, ast.List)):
            return ir.Tuple_(tuple(self.target(e) for e in node.elts), HARD)
        if isinstance(node, ast.Subscript):
            index = ir.Index(self.target(node.value), self.expr(node.slice), HARD)
            return _at(index, node)
        self.error("this assignment target is not supported", node)

    # ------------------------------------------------------------------------------ expressions

    def expr(self, node):
        method = getattr(self, "expr_" + type(node).__name__, None)
        if method is None:
            self.error(f"{type(node).__name__} expressions are not supported here.", node)
        value = method(node)
        return value if self.line is not None else _at(value, node)

    def expr_Lambda(self, node):
        self.error(
            "a `lambda` here is not supported: assign it to a name (`f = lambda v: ...`) and "
            "call it, or define the function with `def`.",
            node,
        )

    def expr_Name(self, node):
        return self.name(node.id)

    def expr_Constant(self, node):
        return ir.Const(node.value)

    def expr_BinOp(self, node):
        op = registry.BINARY[type(node.op)]
        return ir.BinOp(op, self.expr(node.left), self.expr(node.right), HARD)

    def expr_UnaryOp(self, node):
        if isinstance(node.op, ast.Not):
            return ir.Not(self.expr(node.operand), HARD)
        return ir.UnaryOp(registry.UNARY[type(node.op)], self.expr(node.operand), HARD)

    def expr_Compare(self, node):
        """``a < b < c`` is ``a < b and b < c`` (the emitter writes a hard chain back as one)."""
        operands = [self.expr(n) for n in [node.left] + list(node.comparators)]
        pairs = tuple(
            _at(ir.Compare(registry.COMPARE[type(op)], left, right, HARD), node)
            for op, left, right in zip(node.ops, operands, operands[1:])
        )
        return pairs[0] if len(pairs) == 1 else ir.BoolOp(registry.BOOL[ast.And], pairs, HARD)

    def expr_BoolOp(self, node):
        values = tuple(self.expr(v) for v in node.values)
        return ir.BoolOp(registry.BOOL[type(node.op)], values, HARD)

    def expr_IfExp(self, node):
        test, body, orelse = (self.expr(n) for n in (node.test, node.body, node.orelse))
        return ir.IfExp(test, body, orelse, HARD)

    def expr_Subscript(self, node):
        return ir.Index(self.expr(node.value), self.expr(node.slice), HARD)

    def expr_Slice(self, node):
        part = lambda n: None if n is None else self.expr(n)  # noqa: E731
        return ir.Slice(part(node.lower), part(node.upper), part(node.step))

    def expr_Tuple(self, node):
        return ir.Tuple_(tuple(self.expr(e) for e in node.elts), HARD)

    def expr_List(self, node):
        return ir.Tuple_(tuple(self.expr(e) for e in node.elts), HARD, is_list=True)

    def expr_Attribute(self, node):
        return ir.Attr(self.expr(node.value), node.attr, HARD)

    def expr_JoinedStr(self, node):
        return ir.FString(tuple(self.expr(v) for v in node.values))

    def expr_FormattedValue(self, node):
        spec = self.expr(node.format_spec) if node.format_spec is not None else None
        return ir.Formatted(self.expr(node.value), node.conversion, spec)

    def expr_GeneratorExp(self, node):
        return self.comprehension(node)  # the list of its values, for the call it is given to

    def expr_Call(self, node):
        func = node.func
        if any(k.arg is None for k in node.keywords):
            self.error("`**kwargs` in a call is not supported; name the arguments.", node)
        if isinstance(func, ast.Name) and func.id in self.local_functions:
            return self.inline(None, self.local_functions[func.id], self.source, node)
        builtin = self.builtin(func)
        if (
            builtin in ("sum", "any", "all")
            and node.args
            and isinstance(node.args[0], ast.GeneratorExp)
            and not node.keywords
            and len(node.args) <= (2 if builtin == "sum" else 1)
        ):
            start = node.args[1] if len(node.args) == 2 else None
            return self.reduction(builtin, node.args[0], start)
        value = self.resolve(func) if builtin is None else None
        helper = inline.helper_function(value)
        if helper is not None:
            fn_node, source = inline.helper_syntax(helper)
            from .check import check

            check(fn_node, source)
            return self.inline(helper, fn_node, source, node)
        args = tuple(self.expr(a) for a in node.args)
        kwargs = tuple((k.arg, self.expr(k.value)) for k in node.keywords)
        if builtin is not None:
            op = registry.builtin_op(builtin)
            return ir.Call(ir.Name(builtin, HARD), args, kwargs, HARD, op=op, callee=Callee.BUILTIN)
        if value is ops.probs:
            return self.probs(node, args, dict(kwargs))
        if value in ops.COMPARISONS or value in ops.REDUCTIONS:
            return self.relaxed_op(value, node, args, dict(kwargs))
        if _is_torch(value):
            op = registry.torch_op(func.attr if isinstance(func, ast.Attribute) else func.id)
            return ir.Call(self.expr(func), args, kwargs, HARD, op=op, callee=Callee.TORCH)
        if getattr(value, "__module__", None) == "math" and callable(value):
            op = registry.math_op(value.__name__)
            return ir.Call(self.expr(func), args, kwargs, HARD, op=op, callee=Callee.MATH)
        if isinstance(func, ast.Attribute) and value is None:
            op = registry.torch_op(func.attr)
            return ir.Call(self.expr(func), args, kwargs, HARD, op=op, callee=Callee.METHOD)
        return ir.Call(self.expr(func), args, kwargs, HARD, callee=Callee.USER)

    def inline(self, fn, fn_node, source, call):
        """A call of a helper of the user's, compiled here (``inline.py``): its statements go
        before the statement being translated, the call becomes the name of its result. A helper
        that calls itself (through others or not) is compiled once, as a function of its own."""
        key = fn if fn is not None else fn_node
        if (
            key in self.inlining
            or key in self.subroutine_names
            or inline.calls_itself(fn, fn_node)
            or (fn is not None and inline.returns_from_loop(fn_node))
        ):
            return self.call_subroutine(fn, fn_node, source, call)
        if self.depth >= inline.MAX_DEPTH:
            self.error(
                f"helpers nest deeper than {inline.MAX_DEPTH} here: call fewer helpers within "
                f"helpers.",
                call,
            )
        binding = inline.inline_call(fn, fn_node, source, call, self.fresh, self.locals, self.free)
        self.add_free(binding.free)
        outer = (self.source, self.line, self.depth, dict(self.local_functions))
        self.line = self.line or self.statement_line
        self.source, self.depth = source, self.depth + 1
        self.inlining.append(key)
        try:
            statements = self.block(binding.statements)
        finally:
            self.source, self.line, self.depth, self.local_functions = outer
            self.inlining.pop()
        self.pending.extend(statements)
        return ir.Name(binding.result, HARD)

    def add_free(self, free):
        """Free names a helper brought, each looked up in its own namespace at the call."""
        for name, (namespace, original) in free.items():
            value = namespace.get(original) if isinstance(namespace, dict) else _cell(namespace)
            self.free[name] = value
            self.lookups[name] = (namespace, original)
            self.locals.discard(name)

    def call_subroutine(self, fn, fn_node, source, call):
        """A call of a recursive helper, or of one that returns from inside a loop: a call of
        its function, translated the first time. The depth of a recursion must depend on hard
        values only (``passes/calls.py`` checks that)."""
        if fn is None:
            self.error(
                f"`{fn_node.name}`, defined inside the relaxed function, calls itself: define "
                f"a recursive helper at module level.",
                call,
            )
        key = fn
        arguments = inline.bound_arguments(fn, fn_node, source, call)
        args = tuple(self.expr(a) for a in arguments.values())
        name = self.subroutine_names.get(key)
        if name is None:
            name = self.subroutine_names[key] = self.fresh(fn_node.name.strip("_"))
            params, body, free = inline.subroutine(
                fn, fn_node, source, self.fresh, self.locals, self.free
            )
            self.add_free(free)
            outer = (self.source, self.line, self.depth, self.local_functions, self.inlining)
            self.source, self.line, self.depth = source, None, 0
            self.local_functions, self.inlining = {}, [key]
            outer_pending, self.pending = self.pending, []
            try:
                statements = self.block(body)
            finally:
                self.source, self.line, self.depth, self.local_functions, self.inlining = outer
                self.pending = outer_pending
            sub = ir.Function(
                name=name,
                params=tuple(ir.Name(p, HARD) for p in params),
                defaults=(),
                body=statements,
                free=(),
                source=source,
            )
            self.subroutines.append(sub)
        return ir.Call(ir.Name(name, HARD), args, (), HARD, callee=Callee.COMPILED)

    def probs(self, node, args, kwargs):
        """``avcompile.probs(k, size)``: a relaxed integer's distribution."""
        size = kwargs.pop("size", None)
        if kwargs or not 1 <= len(args) <= 2 or (size is not None and len(args) == 2):
            self.error("`probs` takes an integer and a size: `probs(k, size)`.", node)
        return ir.Probs(args[0], args[1] if len(args) == 2 else size)

    def relaxed_op(self, fn, node, args, kwargs):
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
            return ir.Compare(
                ops.COMPARISONS[fn],
                args[0],
                args[1],
                HARD,
                beta=kwargs.get("beta"),
                dist=kwargs.get("dist"),
            )
        if not args:
            self.error(f"`{fn.__name__}` needs at least one value.", node)
        return ir.MinMax(ops.REDUCTIONS[fn], args, HARD, beta=kwargs.get("beta"))


def _builds_into(node):
    """Whether ``node`` is ``t = [... for ...]`` with ``t`` not read in the comprehension, so
    that the list can be built in ``t`` itself."""
    if len(node.targets) != 1 or not isinstance(node.targets[0], ast.Name):
        return False
    if not isinstance(node.value, ast.ListComp):
        return False
    name = node.targets[0].id
    return not any(isinstance(n, ast.Name) and n.id == name for n in ast.walk(node.value))


def _is_hard(param, default, static):
    """Whether a parameter is hard: named in ``static``, annotated ``int``/``float``/``bool``/
    ``str``, or, unannotated, with a default of one of those types (``k=3``), as a reader takes
    it (SEMANTICS 2)."""
    annotation = param.annotation
    if param.arg in static:
        return True
    if annotation is not None:
        return isinstance(annotation, ast.Name) and annotation.id in registry.HARD_TYPES
    return isinstance(default, ast.Constant) and type(default.value) in (int, float, bool, str)


def _at(e, node):
    """IR expression ``e`` with the position of the AST node it comes from (for errors)."""
    if e.pos is not None or not hasattr(node, "lineno"):
        return e
    return replace(e, pos=(node.lineno, node.col_offset))


def _as_load(target):
    """An assignment target read as a value (``x`` of ``x += 1``)."""
    node = ast.parse(ast.unparse(target), mode="eval").body
    return ast.copy_location(node, target)


def _builtin_call(name, *args):
    """IR of a call of the Python builtin ``name``."""
    op = registry.builtin_op(name)
    return ir.Call(ir.Name(name, HARD), args, (), HARD, op=op, callee=Callee.BUILTIN)


def _cell(cell):
    try:
        return cell.cell_contents
    except ValueError:
        return None


def _names_read(stmts, local):
    """The names ``stmts`` read that are not in ``local``, inside functions defined there too
    (less their own locals)."""
    for node in inline.walk_own(stmts):
        if isinstance(node, ast.Name) and node.id not in local:
            yield node
        elif isinstance(node, ast.FunctionDef):
            yield from _names_read(node.body + node.args.defaults, local | inline.local_names(node))
        elif isinstance(node, ast.Lambda):
            params = {a.arg for a in node.args.args + node.args.kwonlyargs}
            yield from _names_read([node.body] + node.args.defaults, local | params)


def _free_values(fn_node, fn, local):
    """Each free name the body reads, with its value at decoration (None if not defined yet)."""
    free = {}
    cells = dict(zip(fn.__code__.co_freevars, fn.__closure__ or ()))
    for node in _names_read(fn_node.body, local):
        if node.id in cells:
            free[node.id] = _cell(cells[node.id])
        elif node.id in fn.__globals__:
            free[node.id] = fn.__globals__[node.id]
        elif not hasattr(builtins, node.id):
            free[node.id] = None
    return free

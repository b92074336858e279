"""The builder that lowers a DSL program to avcompile's IR (internal to ``avcompile.dsl``)."""

from __future__ import annotations

import ast
import builtins
import itertools
import keyword
import linecache
from dataclasses import dataclass

import torch

from .. import ir, registry
from ..ir import CONSTANT, HARD, RELAXED
from ..parse import Source
from .instructions import (
    AlgoModule,
    CatProbEq,
    CosineSimilarity,
    For,
    If,
    Input,
    IsFalse,
    IsTrue,
    Let,
    LetInt,
    Output,
    Print,
    Variable,
    VariableInt,
    While,
    _And,
    _is_lambda,
    _Or,
    _show,
)
from .lambdas import _Lambda


@dataclass
class _Var:
    """A variable of the program: its DSL name, its name in generated code, its kind, one
    example's shape when known, and for hard variables the type of value (int or list) if known."""

    name: str
    local: str
    kind: object
    what: str
    shape: tuple | None = None
    holds: type | None = None

    def ref(self):
        return ir.Name(self.local, self.kind)


def _number(value):
    """A Python number as a hard IR expression."""
    return ir.Const(value)


def _range(stop):
    return ir.Call(ir.Name("range", HARD), (stop,), (), HARD)


def _max_kind(exprs):
    return max((e.kind for e in exprs), default=HARD)


_ONES_LIKE = ir.Attr(ir.Name("torch", HARD), "ones_like", HARD)
_SLICE_ALL = ir.Slice(None, None, None)
_LISTINGS = itertools.count(1)  # numbers the listings registered with linecache


class Builder:
    """Lowers a DSL program to an IR ``Function``, with the values of the free names it uses."""

    def __init__(self, sequence, name):
        if not isinstance(name, str) or not name.isidentifier() or keyword.iskeyword(name):
            raise ValueError(f"Algorithm: name={name!r} must be a Python identifier")
        self.name = name
        self.inputs, self.outputs, self.variables, self.variable_ints = [], [], [], []
        self.body = []
        for elem in sequence:
            if isinstance(elem, Input):
                self.inputs.append(elem)
            elif isinstance(elem, Output):
                self.outputs.append(elem)
            elif isinstance(elem, Variable):
                self.variables.append(elem)
            elif isinstance(elem, VariableInt):
                self.variable_ints.append(elem)
            elif isinstance(elem, AlgoModule):
                self.body.append(elem)
            else:
                raise TypeError(
                    f"Algorithm: you inserted {elem!r} of type {type(elem).__name__}, "
                    f"which is not supported; an Algorithm takes Input, Output, Var, "
                    f"VarInt and instructions (Let, If, While, For, ...)"
                )
        if not self.inputs:
            raise ValueError("Algorithm: you need to have at least one Input")
        if not self.outputs:
            raise ValueError("Algorithm: you need to have at least one Output")
        self.free = {}
        self.fn_names = {}  # id(lambda) -> its free name
        self.locals = {}  # DSL name -> name in generated code
        self.taken = set()
        self.scope = {}  # DSL name -> _Var, what the instruction being lowered can read
        self.declared = {}  # every declared variable
        self.names_in_program = set()
        self.lines, self.line_of, self.at_line = [], {}, {}
        self.listing = self.make_listing()
        self.listing_key = f"<avcompile.dsl {name}#{next(_LISTINGS)}>"
        linecache.cache[self.listing_key] = (len(self.listing), None, self.lines, self.listing_key)
        self.source = Source(self.listing_key, tuple(self.lines))

    # ------------------------------------------------------------------------------ names

    def local(self, name):
        """The name of a DSL variable in generated code: itself, unless it is a keyword or would
        hide a builtin or ``torch`` that generated code uses."""
        if name not in self.locals:
            local = name
            while (
                keyword.iskeyword(local)
                or hasattr(builtins, local)
                or local == "torch"
                or local in self.taken
            ):
                local += "_"
            self.locals[name] = local
            self.taken.add(local)
        return self.locals[name]

    def fresh(self, base):
        """A new name for generated code that is no variable of the program."""
        name, k = base, 0
        while (
            name in self.free
            or name in self.names_in_program
            or name in self.taken
            or hasattr(builtins, name)
            or keyword.iskeyword(name)
            or name == "torch"
        ):
            k += 1
            name = f"{base}_{k}"
        self.taken.add(name)
        return name

    def fresh_free(self, base, value):
        """A new free name of the generated module, holding ``value``."""
        name = self.fresh(base)
        self.free[name] = value
        return name

    def literal(self, value, base):
        """A hard value the program holds, as IR: numbers, strings and lists or tuples of them are
        written out; anything else (a dtype, say) is a free name holding it."""
        plain = (int, float, bool, str, type(None))
        if isinstance(value, plain):
            return ir.Const(value)
        if isinstance(value, (list, tuple)) and all(isinstance(v, plain) for v in value):
            elts = tuple(ir.Const(v) for v in value)
            return ir.Tuple_(elts, HARD, is_list=isinstance(value, list))
        return ir.Name(self.fresh_free(base, value), HARD)

    def constant(self, value, base="constant"):
        """A tensor the program holds (shared by every example), as a free name."""
        return ir.Name(self.fresh_free(base, value.detach()), CONSTANT)

    def user_names(self):
        return set(self.taken) | set(self.locals.values())

    # ------------------------------------------------------------------------------ listing

    def make_listing(self):
        """The program as text, one instruction a line; generated code cites its lines."""
        self.lines.append("Algorithm(\n")
        for elem in self.inputs + self.variables + self.variable_ints:
            self.names_in_program.add(elem.name)
            self.list_line(elem, 1)
        for elem in self.body:
            self.list_item(elem, 1)
        for elem in self.outputs:
            self.list_line(elem, 1)
        self.lines.append(")\n")
        return "".join(self.lines)

    def list_line(self, elem, depth, text=None):
        self.line_of.setdefault(id(elem), len(self.lines) + 1)
        self.at_line[len(self.lines) + 1] = elem
        self.lines.append("    " * depth + (text or repr(elem)) + ",\n")

    def list_item(self, elem, depth):
        pad = "    " * depth
        if isinstance(elem, If):
            self.list_line(elem, depth, repr(elem)[:-1])
            for label, block in (("if_true", elem.if_true), ("if_false", elem.if_false)):
                if block:
                    self.lines.append(f"{pad}    {label}=[\n")
                    for item in block:
                        self.list_item(item, depth + 2)
                    self.lines.append(f"{pad}    ],\n")
            self.lines.append(f"{pad}),\n")
        elif isinstance(elem, (While, For)):
            if isinstance(elem, For):
                self.names_in_program.add(elem.var)
            self.list_line(elem, depth, repr(elem)[:-1])
            for item in elem.sequence:
                self.list_item(item, depth + 1)
            self.lines.append(f"{pad}),\n")
        else:
            self.list_line(elem, depth)

    # ------------------------------------------------------------------------------ function

    def function(self):
        """The IR function: inputs, variables' initial values, instructions, outputs."""
        for elem in self.inputs + self.variables + self.variable_ints:
            if elem.name in self.declared:
                raise ValueError(
                    f"{elem!r}: the name '{elem.name}' is defined for the second "
                    f"time, which is not supported. Already defined: "
                    f"{', '.join(self.declared)}"
                )
            self.declared[elem.name] = None
        for name in sorted(self.names_in_program):
            self.local(name)
        self.hard_types = self.infer_hard_types()
        params, body = [], []
        for elem in self.inputs:
            var = self.declare(elem, RELAXED, "an Input", shape=elem.shape)
            params.append(var.ref())
            if elem.shape is not None or elem.dtype is not None:
                body.append(self.check(var, elem))
        for elem in self.variables:
            body.append(self.init_var(elem))
        for elem in self.variable_ints:
            body.append(self.init_var_int(elem))
        body += self.block(self.body)
        refs = []
        for out in self.outputs:
            var = self.read(out.name, out)
            refs.append(var.ref())
            if (out.shape is not None or out.dtype is not None) and var.kind == RELAXED:
                body.append(self.check(var, out))
        value = refs[0] if len(refs) == 1 else ir.Tuple_(tuple(refs), _max_kind(refs))
        body.append(ir.Return(value, self.line_of[id(self.outputs[0])]))
        return ir.Function(
            name=self.name,
            params=tuple(params),
            defaults=(),
            body=tuple(body),
            free=tuple(sorted(self.free)),
            source=self.source,
            declared=tuple(sorted(ir.written(body) | {p.id for p in params})),
        )

    def declare(self, elem, kind, what, shape=None, holds=None):
        var = _Var(
            elem.name,
            self.local(elem.name),
            kind,
            what,
            tuple(shape) if shape is not None else None,
            holds,
        )
        self.scope[elem.name] = var
        self.declared[elem.name] = var
        return var

    def check(self, var, elem):
        dtype = self.literal(elem.dtype, "dtype")
        shape = self.literal(None if elem.shape is None else tuple(elem.shape), "shape")
        call = ir.Call(
            ir.Helper("check_example"), (var.ref(), shape, dtype, ir.Const(repr(elem))), (), HARD
        )
        return ir.ExprStmt(call, self.line_of[id(elem)])

    def init_var(self, elem):
        value = elem.initial_value
        line = self.line_of[id(elem)]
        if _is_lambda(value):
            init = ir.Lift(self.call(value, elem, "shared"), ir.LiftTo.BATCH)
            var = self.declare(elem, RELAXED, "a Var")
        elif isinstance(value, torch.Tensor) and value.dim() > 0:
            init = ir.Lift(self.constant(value, f"{self.local(elem.name)}_init"), ir.LiftTo.BATCH)
            var = self.declare(elem, RELAXED, "a Var", shape=value.shape)
        else:
            number = value.item() if isinstance(value, torch.Tensor) else value
            init = ir.Lift(_number(float(number)), ir.LiftTo.BATCH)
            var = self.declare(elem, RELAXED, "a Var", shape=())
        return ir.Assign((var.ref(),), init, line)

    def init_var_int(self, elem):
        value = elem.initial_value
        if _is_lambda(value):
            init = self.call(value, elem, "hard")
        else:
            init = self.literal(value, elem.name)
        var = self.declare(elem, HARD, "a VarInt", holds=self.hard_types.get(elem.name))
        return ir.Assign((var.ref(),), init, self.line_of[id(elem)])

    def infer_hard_types(self):
        """For each VarInt, int or list when every value it is given is one (else unknown)."""
        types_ = {}
        for v in self.variable_ints:
            init = v.initial_value
            types_[v.name] = type(init) if type(init) in (int, list) else None

        def value_type(value):
            if type(value) in (int, list):
                return type(value)
            if isinstance(value, str):
                return types_.get(value)
            inline = _Lambda.of(value).inline if _is_lambda(value) else None
            if inline is None or isinstance(inline, ast.Tuple):
                return None
            for n in ast.walk(inline):  # int arithmetic of ints stays an int
                if (
                    isinstance(n, (ast.Div, ast.Pow))
                    or isinstance(n, ast.Constant)
                    and type(n.value) is not int
                ):
                    return None
            names = [n.id for n in ast.walk(inline) if isinstance(n, ast.Name)]
            return int if all(types_.get(n) is int for n in names) else None

        def walk(items):
            for item in items:
                if (
                    isinstance(item, (Let, LetInt))
                    and isinstance(item.variable, str)
                    and item.variable in types_
                    and not item.index_variable
                ):
                    if value_type(item.value) is not types_[item.variable] or item.index_value:
                        types_[item.variable] = None
                elif isinstance(item, Let) and isinstance(item.variable, list):
                    for name in item.variable:
                        if name in types_:
                            types_[name] = None
                for block in (
                    getattr(item, "if_true", ()),
                    getattr(item, "if_false", ()),
                    getattr(item, "sequence", ()),
                ):
                    walk(block)

        for _ in range(len(types_) + 1):
            before = dict(types_)
            walk(self.body)
            if before == types_:
                break
        return types_

    # ------------------------------------------------------------------------------ reading

    def read(self, name, ins, role="variable"):
        """The variable a name refers to where ``ins`` stands."""
        if not isinstance(name, str):
            raise TypeError(f"{ins!r}: expected a variable's name, got {name!r}")
        var = self.scope.get(name)
        if var is None:
            if name in self.declared:
                raise ValueError(
                    f"{ins!r}: the {role} '{name}' is not defined yet here (a Var's "
                    f"lambda can read the Inputs and the Vars declared before it, a "
                    f"VarInt's also every Var)"
                )
            known = ", ".join(sorted(self.scope)) or "none"
            raise ValueError(
                f"{ins!r}: the {role} '{name}' does not exist; the variables defined "
                f"here are: {known}"
            )
        return var

    def target(self, name, ins):
        """The variable an instruction writes; marks it written in the enclosing If/While."""
        if not isinstance(name, str):
            raise TypeError(f"{ins!r}: expected a variable's name to write, got {name!r}")
        var = self.scope.get(name)
        if var is None:
            known = ", ".join(sorted(self.scope)) or "none"
            raise ValueError(
                f"{ins!r}: the variable '{name}' is not declared but written to; "
                f"declare it with Var or VarInt (defined here: {known})"
            )
        return var

    def value(self, value, ins, want):
        """IR of a value: a variable's name, a lambda, a number or a tensor. ``want`` says what a
        lambda's result is: 'relaxed' (per example), 'hard' (an int or list) or 'shared'."""
        if isinstance(value, str):
            return self.read(value, ins).ref()
        if _is_lambda(value):
            return self.call(value, ins, want)
        if isinstance(value, (bool, int, float)):
            return _number(value)
        if isinstance(value, torch.Tensor):
            return self.constant(value)
        raise TypeError(
            f"{ins!r}: {value!r} of type {type(value).__name__} is not a value; use a "
            f"variable's name, a lambda, a number or a tensor"
        )

    def call(self, fn, ins, want):
        """IR of calling a lambda with the variables its arguments name."""
        lam = _Lambda.of(fn)
        refs = [self.read(a, ins, role=f"argument of {lam.text}") for a in lam.args]
        env = dict(zip(lam.args, refs))
        relaxed = [r for r in refs if r.kind == RELAXED]
        same_layout = len({r.name for r in relaxed}) <= 1 or (
            None not in [r.shape for r in relaxed] and len({r.shape for r in relaxed}) == 1
        )
        if lam.inline is not None and same_layout:
            expr = self.inline(lam.inline, env)
            if want == "relaxed" or expr.kind != RELAXED:
                return expr
        key = id(fn)
        if key not in self.fn_names:
            self.fn_names[key] = self.fresh_free(lam.name, fn)
        func = ir.Name(self.fn_names[key], HARD)
        args = tuple(r.ref() for r in refs)
        if want == "relaxed":
            if relaxed:
                return ir.Call(func, args, (), RELAXED, ir.How.BATCHED)
            return ir.Call(func, args, (), CONSTANT)
        if relaxed:
            mask = ir.Tuple_(tuple(ir.Const(r.kind == RELAXED) for r in refs), HARD)
            return ir.Call(
                ir.Helper("call_first", packs=True),
                (func, ir.Tuple_(args, RELAXED), mask),
                (),
                HARD,
            )
        return ir.Call(func, args, (), HARD)

    def inline(self, node, env):
        """A pure lambda's body as IR over the program's variables."""
        if isinstance(node, ast.Name):
            return env[node.id].ref()
        if isinstance(node, ast.Constant):
            return _number(node.value)
        if isinstance(node, ast.Tuple):
            elts = tuple(self.inline(e, env) for e in node.elts)
            return ir.Tuple_(elts, _max_kind(elts))
        if isinstance(node, ast.BinOp):
            left, right = self.inline(node.left, env), self.inline(node.right, env)
            op = registry.BINARY[type(node.op)]
            return ir.BinOp(op, left, right, _max_kind((left, right)))
        operand = self.inline(node.operand, env)
        return ir.UnaryOp(registry.UNARY[type(node.op)], operand, operand.kind)

    # ------------------------------------------------------------------------------ instructions

    def block(self, items):
        out = []
        for item in items:
            out += self.instruction(item)
        return tuple(out)

    def instruction(self, ins):
        line = self.line_of[id(ins)]
        if isinstance(ins, LetInt):
            return self.let_int(ins, line)
        if isinstance(ins, Let):
            return self.let(ins, line)
        if isinstance(ins, If):
            return self.if_(ins, line)
        if isinstance(ins, While):
            return self.while_(ins, line)
        if isinstance(ins, For):
            return self.for_(ins, line)
        if isinstance(ins, Print):
            shown = self.call(ins.function, ins, "shared")
            return [ir.ExprStmt(ir.Call(ir.Name("print", HARD), (shown,), (), HARD), line)]
        raise TypeError(f"{ins!r} is not an instruction avcompile.dsl knows")

    def let(self, ins, line):
        if isinstance(ins.variable, list):
            return self.let_many(ins, line)
        var = self.target(ins.variable, ins)
        if ins.index_value:
            value = self.read_indexed(ins)
        else:
            value = self.value(ins.value, ins, "relaxed" if var.kind == RELAXED else "hard")
        if ins.index_variable:
            return [self.write_indexed(var, ins, value, line)]
        return [ir.Assign((var.ref(),), self.fit(var, value, ins), line)]

    def let_int(self, ins, line):
        var = self.target(ins.variable, ins)
        value = ins.value
        if isinstance(value, list):
            expr = self.literal(value, var.local)
        elif isinstance(value, str):
            expr = self.read(value, ins).ref()
            if expr.kind == RELAXED:
                raise TypeError(
                    f"{ins!r}: '{value}' is a relaxed variable (a tensor); LetInt "
                    f"takes an int, a list of ints or a hard variable"
                )
        else:
            expr = self.value(value, ins, "hard")
        return [ir.Assign((var.ref(),), self.fit(var, expr, ins), line)]

    def fit(self, var, value, ins):
        """``value`` as a Let writes it to the whole of ``var``: a per-example value of the same
        shape as it is, a number or a shared tensor filling the variable."""
        if var.kind != RELAXED:
            if value.kind == RELAXED:
                raise TypeError(
                    f"{ins!r}: '{var.name}' is {var.what}, a hard variable; a "
                    f"per-example value cannot be written to it (write it to a Var)"
                )
            return value
        if value.kind == RELAXED:
            if isinstance(value, ir.Call) and value.how is ir.How.BATCHED:
                return ir.Call(
                    ir.Helper("let_value"), (value, var.ref(), ir.Const(repr(ins))), (), RELAXED
                )
            source = self.declared.get(value.id) if isinstance(value, ir.Name) else None
            if (
                source is not None
                and None not in (source.shape, var.shape)
                and source.shape != var.shape
            ):
                raise ValueError(
                    f"{ins!r}: '{source.name}' has shape {source.shape} but "
                    f"'{var.name}' has shape {var.shape} (of one example); a Let must "
                    f"keep the variable's shape"
                )
            return value
        if (
            isinstance(ins, Let)
            and isinstance(ins.value, torch.Tensor)
            and var.shape is not None
            and tuple(ins.value.shape) != var.shape
        ):
            raise ValueError(
                f"{ins!r}: the tensor has shape {tuple(ins.value.shape)} but "
                f"'{var.name}' has shape {var.shape} (of one example)"
            )
        if var.shape == () or (isinstance(ins, Let) and isinstance(ins.value, torch.Tensor)):
            return ir.Lift(value, ir.LiftTo.BATCH)
        lifted = ir.Lift(value) if value.kind == CONSTANT else value
        ones = ir.Call(_ONES_LIKE, (var.ref(),), (), RELAXED)
        return ir.BinOp(registry.BY_SYMBOL["*"], lifted, ones, RELAXED)

    def let_many(self, ins, line):
        targets = [self.target(name, ins) for name in ins.variable]
        want = "relaxed" if any(v.kind == RELAXED for v in targets) else "hard"
        value = self.call(ins.value, ins, want)
        refs = ir.Tuple_(tuple(v.ref() for v in targets), HARD)
        if isinstance(value, ir.Tuple_):
            if len(value.elts) != len(targets):
                raise ValueError(
                    f"{ins!r}: {len(targets)} variables to write but the lambda "
                    f"returns {len(value.elts)} values"
                )
            elts = tuple(self.fit(v, e, ins) for v, e in zip(targets, value.elts))
            return [ir.Assign((refs,), ir.Tuple_(elts, _max_kind(elts)), line)]
        if (
            all(v.kind == RELAXED for v in targets)
            and value.kind == RELAXED
            or all(v.kind != RELAXED for v in targets)
            and value.kind != RELAXED
        ):
            return [ir.Assign((refs,), value, line)]
        temps = []
        for v in targets:
            kind = v.kind if value.kind == RELAXED else value.kind
            temps.append(ir.Name(self.fresh(f"{v.local}_value"), kind))
        out = [ir.Assign((ir.Tuple_(tuple(temps), HARD),), value, line)]
        for v, t in zip(targets, temps):
            out.append(ir.Assign((v.ref(),), self.fit(v, t, ins), line))
        return out

    def index_expr(self, index, ins, side):
        """A hard index of a Let's list (``side``: 'value' or 'variable'), or None if it is not
        hard (a probability-weight tensor or a lambda of per-example values)."""
        if index is None:
            return _SLICE_ALL
        if (
            isinstance(index, bool)
            or not isinstance(index, (int, slice, str))
            and not _is_lambda(index)
        ):
            return None
        if isinstance(index, int):
            return _number(index)
        if isinstance(index, slice):
            parts = [
                None if p is None else self.value(p, ins, "hard")
                for p in (index.start, index.stop, index.step)
            ]
            return ir.Slice(*parts)
        if isinstance(index, str):
            var = self.read(index, ins, role="index")
            return var.ref() if var.kind != RELAXED else None
        role = f"argument of {_show(index)}"
        reads = [self.read(a, ins, role=role) for a in _Lambda.of(index).args]
        if side == "variable" and any(v.kind == RELAXED for v in reads):
            return None  # an int or probability weights: known when it runs
        expr = self.call(index, ins, "hard")
        if expr.kind == RELAXED:
            raise TypeError(
                f"{ins!r}: the index {_show(index)} reads per-example values; an index "
                f"of the value must be an int (index relaxed values inside a lambda)"
            )
        return expr

    def read_indexed(self, ins):
        source = self.read(ins.value, ins)
        if source.kind != RELAXED:
            raise TypeError(
                f"{ins!r}: indexing the value is only allowed if it is a tensor, but "
                f"'{source.name}' is {source.what}"
            )
        if source.shape is not None and len(ins.index_value) > len(source.shape):
            raise ValueError(
                f"{ins!r}: too many indices ({len(ins.index_value)}) for "
                f"'{source.name}' of shape {source.shape} (one example's; the batch "
                f"dimension is handled implicitly)"
            )
        elts = []
        for index in ins.index_value:
            expr = self.index_expr(index, ins, "value")
            if expr is None:
                raise TypeError(
                    f"{ins!r}: the index {_show(index)} of the value must be an int, a "
                    f"hard variable, a lambda returning an int, None or a slice"
                )
            elts.append(expr)
        index = elts[0] if len(elts) == 1 else ir.Tuple_(tuple(elts), HARD)
        return ir.Index(source.ref(), index, RELAXED)

    def write_indexed(self, var, ins, value, line):
        if var.kind != RELAXED:
            raise TypeError(
                f"{ins!r}: indexing the variable is only allowed if it is a tensor, "
                f"but '{var.name}' is {var.what}"
            )
        indices = ins.index_variable
        if var.shape is not None and len(indices) > len(var.shape):
            raise ValueError(
                f"{ins!r}: too many indices ({len(indices)}) for '{var.name}' of "
                f"shape {var.shape} (one example's; the batch dimension is handled "
                f"implicitly)"
            )
        hard, weights, dynamic = [], None, False
        for index in indices:
            expr = self.index_expr(index, ins, "variable")
            if expr is not None and expr.kind != RELAXED:
                hard.append(expr)
            elif isinstance(index, str):
                weights = self.read(index, ins).ref()
            elif isinstance(index, torch.Tensor):
                weights = ir.Lift(self.constant(index, "weights"), ir.LiftTo.BATCH)
            elif _is_lambda(index):
                dynamic = True
            else:
                raise TypeError(
                    f"{ins!r}: the index {_show(index)} of type "
                    f"{type(index).__name__} is not a legal index type; use an int, a "
                    f"hard variable, None, a slice, a lambda or probability weights"
                )
        if weights is not None:
            if len(indices) != 1:
                raise ValueError(
                    f"{ins!r}: probabilistic indexing for writing to '{var.name}' "
                    f"takes exactly one index, the probability weights of writing "
                    f"each element"
                )
            call = ir.Call(ir.Helper("weighted_write"), (var.ref(), value, weights), (), RELAXED)
            return ir.Assign((var.ref(),), call, line)
        if dynamic:
            elts = []
            for index in indices:
                if index is None or isinstance(index, slice):
                    s = index or slice(None)
                    parts = tuple(ir.Const(p) for p in (s.start, s.stop, s.step))
                    elts.append(ir.Call(ir.Name("slice", HARD), parts, (), HARD))
                elif _is_lambda(index):
                    elts.append(self.call(index, ins, "hard"))
                else:
                    elts.append(self.index_expr(index, ins, "variable"))
            call = ir.Call(
                ir.Helper("index_write"),
                (var.ref(), ir.Tuple_(tuple(elts), HARD), value, ir.Const(repr(ins))),
                (),
                RELAXED,
            )
            return ir.Assign((var.ref(),), call, line)
        index = hard[0] if len(hard) == 1 else ir.Tuple_(tuple(hard), HARD)
        return ir.Assign((ir.Index(var.ref(), index, RELAXED),), value, line)

    # ------------------------------------------------------------------------------ control

    def condition(self, cond, ins, mode):
        """IR of a condition: a probability if relaxed, else a Python truth value. ``mode`` is
        the If/While's own 'hard' or 'soft', or None for the module's."""
        rx = (
            ir.Rx()
            if mode is None
            else ir.Call(ir.Helper("mode_of"), (ir.Rx(), ir.Const(mode)), (), HARD)
        )
        if isinstance(cond, (_And, _Or)):  # the specialising pass makes it one of probabilities
            op = registry.BOOL[ast.And if isinstance(cond, _And) else ast.Or]
            left = self.condition(cond.left, ins, mode)
            right = self.condition(cond.right, ins, mode)
            return ir.BoolOp(op, (left, right), _max_kind((left, right)))
        if isinstance(cond, (IsTrue, IsFalse)):
            value = self.value(cond.left, ins, "relaxed")
            if value.kind == RELAXED and mode is not None:
                value = ir.Call(ir.Attr(rx, "truth", HARD), (value,), (), RELAXED)
            return value if isinstance(cond, IsTrue) else ir.Not(value, value.kind)
        left, right = self.operand(cond.left, ins), self.operand(cond.right, ins)
        if cond.beta is None:
            beta = None
        elif isinstance(cond.beta, (int, float)) and not isinstance(cond.beta, bool):
            beta = _number(cond.beta)
        elif isinstance(cond.beta, torch.Tensor):
            beta = ir.Name(self.fresh_free("beta", cond.beta), CONSTANT)  # learnable, say
        else:
            raise TypeError(
                f"{ins!r}: the beta of {cond!r} must be a number or a tensor, not "
                f"{type(cond.beta).__name__}"
            )
        kwargs = (("beta", beta),) if beta is not None else ()
        if isinstance(cond, (CatProbEq, CosineSimilarity)):
            helper = "cat_prob_eq" if isinstance(cond, CatProbEq) else "cosine_similarity"
            return ir.Call(
                ir.Helper(helper),
                (rx, left, right),
                kwargs if isinstance(cond, CatProbEq) else (),
                RELAXED,
            )
        if cond.op is None:
            raise TypeError(
                f"{ins!r}: {type(cond).__name__} is not a condition that avcompile.dsl knows"
            )
        op = registry.BY_SYMBOL[cond.op]
        if RELAXED not in (left.kind, right.kind):
            return ir.Compare(op, left, right, HARD)
        if mode is None:
            return ir.Compare(op, left, right, RELAXED, beta)
        return ir.Call(ir.Attr(rx, op.relaxation, HARD), (left, right), kwargs, RELAXED)

    def operand(self, value, ins):
        expr = self.value(value, ins, "relaxed")
        return ir.Lift(expr) if expr.kind == CONSTANT else expr

    def debug_print(self, ins, test, line):
        if not ins.debug or test.kind != RELAXED:
            return []
        shown = ir.Call(ir.Helper("output"), (test,), (), HARD)
        return [
            ir.ExprStmt(
                ir.Call(ir.Name("print", HARD), (ir.Const(f"{ins!r}:"), shown), (), HARD), line
            )
        ]

    def if_(self, ins, line):
        mode = None if ins.hard is None else ("hard" if ins.hard else "soft")
        test = self.condition(ins.condition, ins, mode)
        body, orelse = self.block(ins.if_true), self.block(ins.if_false)
        return self.debug_print(ins, test, line) + [ir.If(test, body, orelse, False, (), line)]

    def while_(self, ins, line):
        mode = None if ins.hard is None else ("hard" if ins.hard else "soft")
        test = self.condition(ins.condition, ins, mode)
        body = self.block(ins.sequence)
        max_iter = None if ins.max_iter is None else _number(ins.max_iter)
        eps = None if ins.epsilon is None else _number(ins.epsilon)
        loop = ir.While(test, body, False, (), line, max_iter=max_iter, eps=eps)
        return self.debug_print(ins, test, line) + [loop]

    def hard_in_branch(self, err):
        """The pass's error for a VarInt written under a relaxed If, in the DSL's words."""
        ins = self.at_line[err.branch_line]
        var = next(v for v in self.declared.values() if v is not None and v.local == err.name)
        return ValueError(
            f"{ins!r}: '{var.name}' is {var.what}, a hard variable, and is "
            f"written under this relaxed condition; a hard variable has one "
            f"value for the whole batch. Write it outside the If, or keep a "
            f"Var for the per-example value"
        )

    def for_(self, ins, line):
        if ins.var in self.scope:
            raise ValueError(
                f"{ins!r}: the loop variable '{ins.var}' must not exist in the outer "
                f"scope, but it is {self.scope[ins.var].what}"
            )
        over = ins.range_or_list
        if isinstance(over, int):
            iter_ = _range(ir.Const(over))
        elif isinstance(over, list):
            iter_ = self.literal(over, "values")
        elif isinstance(over, str):
            var = self.read(over, ins, role="range")
            if var.kind == RELAXED:
                raise TypeError(
                    f"{ins!r}: the range '{over}' is {var.what}, a tensor; a For loop "
                    f"runs over an int or a list of ints (a VarInt)"
                )
            if var.holds is int:
                iter_ = _range(var.ref())
            elif var.holds is list:
                iter_ = var.ref()
            else:
                iter_ = ir.Call(ir.Helper("as_range"), (var.ref(),), (), HARD)
        else:
            iter_ = ir.Call(ir.Helper("as_range"), (self.call(over, ins, "hard"),), (), HARD)
        counter = _Var(ins.var, self.local(ins.var), HARD, "a For loop's variable", holds=int)
        self.scope[ins.var] = counter
        try:
            body = self.block(ins.sequence)
        finally:
            del self.scope[ins.var]
        return [ir.For(counter.ref(), iter_, body, line)]

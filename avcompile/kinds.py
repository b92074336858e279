"""Analyse stage: the kind of every name (hard, constant or relaxed, SEMANTICS 2) and which relaxed
arrays can be kept unpacked as Python lists of elements."""

import ast
import builtins
import enum
from dataclasses import dataclass, field

import torch

from .errors import CompileError


class Kind(enum.IntEnum):
    """How a value varies over the batch; a combination takes the larger kind."""

    HARD = 0  # a Python value, the same for every example
    CONSTANT = 1  # a tensor shared by every example
    RELAXED = 2  # a per-example tensor

    def __str__(self):
        return self.name.lower()


HARD, CONSTANT, RELAXED = Kind.HARD, Kind.CONSTANT, Kind.RELAXED

_HARD_TYPES = {"int", "float", "bool", "str"}
_HARD_BUILTINS = {
    "len",
    "range",
    "isinstance",
    "int",
    "float",
    "bool",
    "str",
    "type",
    "print",
    "enumerate",
    "zip",
    "reversed",
    "list",
    "tuple",
}
_SHAPE_ATTRS = {"shape", "ndim", "dtype", "device"}


@dataclass
class Kinds:
    """The result of analysis, read by the lowering stage."""

    names: dict  # local name -> Kind
    params: tuple  # parameter names, in order
    free: dict  # free name -> the value it had at decoration (or None if not defined yet)
    unpacked: frozenset = frozenset()  # relaxed arrays kept as lists of elements
    hard_params: frozenset = frozenset()
    loop_counters: set = field(default_factory=set)

    def of(self, node):
        """The kind of an expression."""
        return expr_kind(node, self)

    def resolve(self, node):
        """The compile-time value of a dotted name of free variables (``torch.sigmoid``), or None."""
        if isinstance(node, ast.Name):
            if node.id in self.names:
                return None
            return self.free.get(node.id)
        if isinstance(node, ast.Attribute):
            base = self.resolve(node.value)
            return getattr(base, node.attr, None) if base is not None else None
        return None

    def is_torch(self, func):
        """Whether a call target is a function of the torch package (``torch.x``, ``F.relu``)."""
        value = self.resolve(func)
        module = getattr(value, "__module__", None) or ""
        return value is not None and (module.startswith("torch") or value in _TORCH_OBJECTS)


_TORCH_OBJECTS = set()
for _name in dir(torch):
    _obj = getattr(torch, _name, None)
    if callable(_obj):
        try:
            _TORCH_OBJECTS.add(_obj)
        except TypeError:
            pass


def _join(kinds):
    return max(kinds, default=HARD)


def expr_kind(node, kinds):
    """The kind of expression ``node`` given the kinds of names."""
    if node is None or isinstance(node, (ast.Constant, ast.JoinedStr)):
        return HARD
    if isinstance(node, ast.Name):
        if node.id in kinds.names:
            return kinds.names[node.id]
        return CONSTANT if isinstance(kinds.free.get(node.id), torch.Tensor) else HARD
    if isinstance(node, ast.Attribute):
        if node.attr in _SHAPE_ATTRS:
            return HARD
        return expr_kind(node.value, kinds)
    if isinstance(node, ast.Call):
        args = [expr_kind(a, kinds) for a in node.args]
        args += [expr_kind(k.value, kinds) for k in node.keywords]
        func = node.func
        if isinstance(func, ast.Name) and func.id not in kinds.names and func.id not in kinds.free:
            if func.id in _HARD_BUILTINS:
                return HARD
            return _join(args)
        if kinds.is_torch(func):
            return max(_join(args), CONSTANT)
        if isinstance(func, ast.Attribute) and kinds.resolve(func) is None:
            return _join(args + [expr_kind(func.value, kinds)])
        return _join(args)
    return _join(
        expr_kind(child, kinds)
        for child in ast.iter_child_nodes(node)
        if isinstance(child, ast.expr)
    )


def _index_names(expr):
    """Names whose values an expression's value depends on, skipping ``len(x)`` and ``x.shape``."""
    out = []

    def visit(n):
        if isinstance(n, ast.Call) and isinstance(n.func, ast.Name) and n.func.id == "len":
            return
        if isinstance(n, ast.Attribute) and n.attr in _SHAPE_ATTRS:
            return
        if isinstance(n, ast.Name):
            out.append(n.id)
        for child in ast.iter_child_nodes(n):
            visit(child)

    visit(expr)
    return out


def _assigned_names(target):
    if isinstance(target, ast.Name):
        return [target.id]
    if isinstance(target, (ast.Tuple, ast.List)):
        return [n for elt in target.elts for n in _assigned_names(elt)]
    if isinstance(target, ast.Subscript):
        base = target.value
        while isinstance(base, ast.Subscript):
            base = base.value
        return [base.id]
    return []


def is_range(node):
    return (
        isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "range"
    )


def _required_hard(fn_node):
    """Names that must be hard: indices, loop bounds and counters, and what they are computed from."""
    required = set()
    for node in ast.walk(fn_node):
        if isinstance(node, ast.Subscript):
            required.update(_index_names(node.slice))
        elif is_range(node):
            for arg in node.args:
                required.update(_index_names(arg))
        elif isinstance(node, ast.For) and is_range(node.iter):
            required.update(_assigned_names(node.target))
    changed = True
    while changed:
        changed = False
        for node in ast.walk(fn_node):
            if (
                isinstance(node, (ast.Assign, ast.AugAssign, ast.AnnAssign))
                and node.value is not None
            ):
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                for target in targets:
                    if isinstance(target, ast.Name) and target.id in required:
                        new = set(_index_names(node.value)) - required
                        if new:
                            required |= new
                            changed = True
    return required


class _Walker:
    """One pass over the body, raising kinds; repeated until nothing changes."""

    def __init__(self, kinds, required, source):
        self.kinds = kinds
        self.required = required
        self.source = source
        self.branch_writes = {}  # name -> first assignment under a relaxed `if`
        self.changed = False

    def set(self, name, kind, node, relaxed_if, relaxed_while):
        if relaxed_if:
            self.branch_writes.setdefault(name, node)
            kind = RELAXED
        elif relaxed_while and name not in self.required:
            kind = RELAXED
        old = self.kinds.names.get(name, HARD)
        if kind > old:
            self.kinds.names[name] = kind
            self.changed = True

    def assign(self, target, value_kind, value, node, rif, rwhile):
        if isinstance(target, ast.Name):
            self.set(target.id, value_kind, node, rif, rwhile)
        elif isinstance(target, (ast.Tuple, ast.List)):
            values = value.elts if isinstance(value, (ast.Tuple, ast.List)) else None
            for k, elt in enumerate(target.elts):
                if values is not None and len(values) == len(target.elts):
                    self.assign(elt, self.kinds.of(values[k]), values[k], node, rif, rwhile)
                else:
                    self.assign(elt, value_kind, None, node, rif, rwhile)
        elif isinstance(target, ast.Subscript):
            (name,) = _assigned_names(target)
            self.set(name, value_kind, node, rif, rwhile)

    def block(self, stmts, rif, rwhile):
        for stmt in stmts:
            self.stmt(stmt, rif, rwhile)

    def stmt(self, node, rif, rwhile):
        of = self.kinds.of
        if isinstance(node, ast.Assign):
            for target in node.targets:
                self.assign(target, of(node.value), node.value, node, rif, rwhile)
        elif isinstance(node, ast.AnnAssign) and node.value is not None:
            self.assign(node.target, of(node.value), node.value, node, rif, rwhile)
        elif isinstance(node, ast.AugAssign):
            kind = max(of(node.value), of(node.target))
            self.assign(node.target, kind, None, node, rif, rwhile)
        elif isinstance(node, ast.If):
            relaxed = of(node.test) == RELAXED
            self.block(node.body, rif or relaxed, rwhile)
            self.block(node.orelse, rif or relaxed, rwhile)
        elif isinstance(node, ast.While):
            relaxed = of(node.test) == RELAXED
            self.block(node.body, rif, rwhile or relaxed)
            self.block(node.orelse, rif, rwhile)
        elif isinstance(node, ast.For):
            self.for_target(node.target, node.iter)
            self.block(node.body, rif, rwhile)
            self.block(node.orelse, rif, rwhile)

    def for_target(self, target, it):
        """Loop targets take the kind of what they iterate over; never forced by a branch."""
        of = self.kinds.of
        if is_range(it):
            for name in _assigned_names(target):
                self.kinds.loop_counters.add(name)
                self.set(name, HARD, target, False, False)
            return
        func = it.func.id if isinstance(it, ast.Call) and isinstance(it.func, ast.Name) else None
        if func == "enumerate" and isinstance(target, ast.Tuple) and len(target.elts) == 2:
            self.set(
                target.elts[0].id if isinstance(target.elts[0], ast.Name) else "",
                HARD,
                target,
                False,
                False,
            )
            self.for_target(target.elts[1], it.args[0])
            return
        if func == "zip" and isinstance(target, ast.Tuple) and len(target.elts) == len(it.args):
            for elt, arg in zip(target.elts, it.args):
                self.for_target(elt, arg)
            return
        if func == "reversed" and it.args:
            self.for_target(target, it.args[0])
            return
        for name in _assigned_names(target):
            self.set(name, of(it), target, False, False)


def analyse(fn_node, source, fn, static=()):
    """Infer the kind of every name of ``fn`` and the arrays that stay unpacked."""
    args = fn_node.args
    params = [a for a in args.args + args.kwonlyargs]
    names = {}
    hard_params = set()
    for a in params:
        annotation = a.annotation
        hard = a.arg in static or (
            isinstance(annotation, ast.Name) and annotation.id in _HARD_TYPES
        )
        names[a.arg] = HARD if hard else RELAXED
        if hard:
            hard_params.add(a.arg)
    unknown = set(static) - {a.arg for a in params}
    if unknown:
        raise TypeError(
            f"relax(static=...) names {sorted(unknown)}, which are not parameters of {fn_node.name}"
        )
    local = set(names)
    for node in ast.walk(fn_node):
        if isinstance(node, (ast.Assign, ast.AugAssign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for t in targets:
                local.update(_assigned_names(t))
        elif isinstance(node, ast.For):
            local.update(_assigned_names(node.target))
    for name in local:
        names.setdefault(name, HARD)
    free = {}
    cells = dict(zip(fn.__code__.co_freevars, fn.__closure__ or ()))
    for node in (n for stmt in fn_node.body for n in ast.walk(stmt)):
        if isinstance(node, ast.Name) and node.id not in local:
            if node.id in cells:
                try:
                    free[node.id] = cells[node.id].cell_contents
                except ValueError:
                    free[node.id] = None
            elif node.id in fn.__globals__:
                free[node.id] = fn.__globals__[node.id]
            elif not hasattr(builtins, node.id):
                free[node.id] = None
    kinds = Kinds(
        names=names,
        params=tuple(a.arg for a in params),
        free=free,
        hard_params=frozenset(hard_params),
    )
    required = _required_hard(fn_node)
    walker = _Walker(kinds, required, source)
    for _ in range(len(local) + 2):
        walker.changed = False
        walker.block(fn_node.body, False, False)
        if not walker.changed:
            break
    for name in sorted(required):
        node = walker.branch_writes.get(name)
        if node is not None and names.get(name) == RELAXED:
            raise CompileError(
                f"hard variable `{name}` is assigned inside a relaxed `if`: `{name}` is used as an "
                f"index or loop bound, so it must have one value for the whole batch, but a relaxed "
                f"branch runs for every example to a different extent. Assign `{name}` outside the "
                f"relaxed `if`, or keep a separate relaxed variable for the per-example value.",
                source,
                node,
            )
    kinds.unpacked = frozenset(_unpackable(fn_node, kinds))
    return kinds


def _unpackable(fn_node, kinds):
    """Relaxed arrays used only element by element (``x[i]``, ``x[i] = v``, ``len(x)``, ``for v in
    x``, ``return x``): these are kept as Python lists of their elements."""
    allowed = {n for n, k in kinds.names.items() if k == RELAXED}
    indexed = set()
    parents = {}
    for node in ast.walk(fn_node):
        for child in ast.iter_child_nodes(node):
            parents[child] = node
    for node in ast.walk(fn_node):
        if not isinstance(node, ast.Name) or node.id not in allowed:
            continue
        parent = parents.get(node)
        if isinstance(node.ctx, ast.Store):
            if isinstance(parent, (ast.For, ast.AugAssign)) or (
                isinstance(parent, (ast.Tuple, ast.List))
                and isinstance(parents.get(parent), ast.For)
            ):
                allowed.discard(node.id)
            continue
        if isinstance(parent, ast.Subscript) and parent.value is node:
            if not isinstance(parent.slice, (ast.Slice, ast.Tuple)):
                indexed.add(node.id)
                continue
        elif (
            isinstance(parent, ast.Call)
            and isinstance(parent.func, ast.Name)
            and parent.func.id == "len"
            and parent.args == [node]
        ):
            continue
        elif isinstance(parent, ast.For) and parent.iter is node:
            continue
        elif isinstance(parent, ast.Return):
            continue
        elif isinstance(parent, ast.Tuple) and isinstance(parents.get(parent), ast.Return):
            continue
        allowed.discard(node.id)
    return allowed & indexed

"""Helpers compiled with the caller: a Python function of the user's, called from a relaxed
function, is inlined into it and so runs per example with the caller's relaxation (SEMANTICS 8).

A helper is a plain Python function (module level, a nested ``def``, a ``lambda``) or a relaxed
module, whose function is taken. Anything else (an ``nn.Module``, a library's function, a function
marked with ``avcompile.batched``) is called with batch-first tensors, as a network expects.

Inlining works on the helper's syntax tree: its locals get fresh names, its free names keep
theirs where the caller's mean the same object (else they are looked up in the helper's own
namespace), its parameters are bound to the call's arguments, and each ``return`` becomes an
assignment of the result, a ``return`` inside an ``if`` taking the rest of the body into the
other branch (so a guard clause under a relaxed condition is a blend).
"""

import ast
import copy
import inspect
import linecache
import sysconfig
import types

from .errors import CompileError
from .parse import NoSourceError, Source, lambda_body, parse

MAX_DEPTH = 16  # helpers calling helpers (not themselves: a recursive one is compiled once)

_LIBRARY_DIRS = tuple(
    {sysconfig.get_paths()[k] for k in ("stdlib", "platstdlib", "purelib", "platlib")}
)


def batched(fn):
    """Mark a plain function called from a relaxed function to receive batch-first tensors, as a
    network does, instead of being compiled with the caller for one example.

    Example::

        @avcompile.batched
        def scores(x):            # x: [B, n], the whole batch
            return x.softmax(-1)
    """
    fn.__avcompile_batched__ = True
    return fn


def helper_function(value):
    """The Python function to inline for a called ``value``, or None to call it as it is."""
    fn = getattr(value, "__wrapped__", None) if hasattr(value, "relaxation") else value
    if not isinstance(fn, types.FunctionType) or getattr(fn, "__avcompile_batched__", False):
        return None
    filename = fn.__code__.co_filename
    if filename.startswith(_LIBRARY_DIRS) or fn.__module__.split(".")[0] in ("torch", "avcompile"):
        return None
    return fn


def helper_syntax(fn):
    """``(FunctionDef, Source)`` of a helper; a lambda becomes ``def <lambda>(...): return ...``."""
    if fn.__code__.co_name != "<lambda>":
        return parse(fn)
    code = fn.__code__
    params = code.co_varnames[: code.co_argcount]
    body, _ = lambda_body(fn, params)
    if body is None:
        raise NoSourceError(f"avcompile cannot read the source of the lambda {fn!r}")
    node = ast.parse(f"def _lambda({', '.join(params)}):\n    return 0").body[0]
    node.body[0].value = body
    ast.fix_missing_locations(node)
    lines = tuple(linecache.getlines(code.co_filename))
    return node, Source(code.co_filename, lines)


def local_names(fn_node):
    """The names a function assigns or takes as parameters (not those of functions inside it)."""
    args = fn_node.args
    out = {a.arg for a in args.args + args.kwonlyargs + args.posonlyargs}
    for node in walk_own(fn_node.body):
        if isinstance(node, ast.FunctionDef):
            out.add(node.name)
        for t in _targets(node):
            out |= target_names(t)
    return out


def _targets(node):
    """The assignment targets of a statement (a loop's target too)."""
    if isinstance(node, ast.Assign):
        return node.targets
    if isinstance(node, (ast.AugAssign, ast.AnnAssign, ast.For)):
        return [node.target]
    return []


def target_names(target):
    """The names an assignment target binds (an element write binds its array)."""
    if isinstance(target, ast.Name):
        return {target.id}
    if isinstance(target, (ast.Tuple, ast.List)):
        return {n for elt in target.elts for n in target_names(elt)}
    while isinstance(target, ast.Subscript):
        target = target.value
    return {target.id} if isinstance(target, ast.Name) else set()


def walk_own(stmts):
    """Every node of ``stmts``, not descending into nested functions and lambdas (which are
    yielded themselves)."""
    todo = list(stmts)
    while todo:
        node = todo.pop()
        yield node
        if isinstance(node, (ast.FunctionDef, ast.Lambda)):
            continue
        todo.extend(ast.iter_child_nodes(node))


class _Rename(ast.NodeTransformer):
    def __init__(self, mapping):
        self.mapping = mapping

    def visit_Name(self, node):
        if node.id in self.mapping:
            return ast.copy_location(ast.Name(self.mapping[node.id], node.ctx), node)
        return node


def rename(stmts, mapping):
    """Copies of ``stmts`` with the names of ``mapping`` renamed."""
    return [_Rename(mapping).visit(copy.deepcopy(s)) for s in stmts]


def lower_returns(stmts, result, source):
    """``stmts`` with every ``return v`` an assignment ``result = v`` ending its path: a
    ``return`` inside an ``if`` takes the statements after the ``if`` into both branches."""
    out = []
    for k, s in enumerate(stmts):
        if isinstance(s, ast.Return):
            value = s.value if s.value is not None else ast.Constant(None)
            out.append(ast.copy_location(ast.Assign([ast.Name(result, ast.Store())], value), s))
            return out
        if _returns_inside(s):
            if not isinstance(s, ast.If):
                node = next(n for n in walk_own([s]) if isinstance(n, ast.Return))
                raise CompileError(
                    "a `return` inside a loop of a function defined inside the relaxed "
                    "function: define the function at module level (it is then compiled as a "
                    "function of its own), or set a result variable, leave the loop with "
                    "`break` and return it after the loop.",
                    source,
                    node,
                )
            rest = stmts[k + 1 :]
            body = lower_returns(s.body + copy.deepcopy(rest), result, source)
            orelse = lower_returns(s.orelse + copy.deepcopy(rest), result, source)
            out.append(ast.copy_location(ast.If(s.test, body, orelse), s))
            return out
        out.append(s)
    return out


def _returns_inside(stmt):
    return any(isinstance(n, ast.Return) for n in walk_own([stmt]))


class Binding:
    """What inlining a call produced: statements to run before the call's statement (syntax of
    the caller's scope), the name holding the result, and the free names it added."""

    def __init__(self, statements, result, free):
        self.statements, self.result, self.free = statements, result, free


def inline_call(fn, fn_node, source, call, fresh, caller_locals, caller_free):
    """Inline ``call`` (an ``ast.Call`` of helper ``fn``, parsed as ``fn_node`` in ``source``).

    ``fresh(base)`` gives names that clash with nothing; ``caller_locals`` and ``caller_free``
    (name -> value) say what the caller's names mean, so that the helper's free names keep their
    own meaning. ``fn`` is None for a function defined inside the caller, whose free names are the
    caller's. Returns a ``Binding``; its ``free`` maps each new free name to ``(namespace,
    name)``, where the module looks it up at each call.
    """
    args = fn_node.args
    if args.vararg or args.kwarg or args.posonlyargs:
        raise CompileError(
            "a helper with `*args`, `**kwargs` or `/` parameters cannot be compiled with its "
            "caller: name each parameter.",
            source,
            fn_node,
        )
    arguments = bound_arguments(fn, fn_node, source, call)
    # A parameter given a variable of the caller and never rebound in the helper is that
    # variable, as in Python, where both names are one list: writes to its elements show.
    shared = {
        p: value.id
        for p, value in arguments.items()
        if isinstance(value, ast.Name) and p not in _rebound(fn_node)
    }
    mapping, free = _names(fn, fn_node, fresh, caller_locals, caller_free, shared)
    body = _body(fn_node, mapping)
    result = fresh(f"{fn_node.name.strip('_')}_result")
    binds = [
        ast.copy_location(ast.Assign([ast.Name(mapping[p], ast.Store())], value), call)
        for p, value in arguments.items()
        if p not in shared
    ]
    return Binding(binds + lower_returns(body, result, source), result, free)


def subroutine(fn, fn_node, source, fresh, caller_locals, caller_free):
    """A recursive helper as a function of its own, in the caller's namespace: ``(params, body,
    free)``, its parameters and locals renamed apart from every other name (as ``inline_call``
    renames them), its ``return`` statements kept."""
    args = fn_node.args
    if args.vararg or args.kwarg or args.posonlyargs or args.kwonlyargs:
        raise CompileError(
            "a recursive helper with `*args`, `**kwargs`, `/` or keyword-only parameters is not "
            "supported: give it positional parameters.",
            source,
            fn_node,
        )
    mapping, free = _names(fn, fn_node, fresh, caller_locals, caller_free, {})
    params = [mapping[a.arg] for a in args.args]
    return params, _body(fn_node, mapping), free


def calls_itself(fn, fn_node):
    """Whether helper ``fn`` calls itself by its own name (direct recursion)."""
    if fn is None:
        return False
    for node in walk_own(fn_node.body):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id == fn_node.name
            and fn.__globals__.get(fn_node.name) is fn
        ):
            return True
    return False


def returns_from_loop(fn_node):
    """Whether a helper has a ``return`` inside a loop, which inlining cannot turn into an
    assignment (a compiled function of its own keeps it: an early exit, SEMANTICS 11)."""
    loops = [n for n in walk_own(fn_node.body) if isinstance(n, (ast.For, ast.While))]
    return any(isinstance(n, ast.Return) for loop in loops for n in walk_own(loop.body))


def _names(fn, fn_node, fresh, caller_locals, caller_free, shared):
    """The new name of each of a helper's locals (``shared``: those that are the caller's
    variables) and free names whose meaning differs in the caller, and those free names with
    where to look them up: ``(mapping, free)``."""
    own = local_names(fn_node)
    mapping = {
        name: shared.get(name) or fresh(f"{fn_node.name.strip('_')}_{name}") for name in sorted(own)
    }
    free = {}
    cells = dict(zip(fn.__code__.co_freevars, fn.__closure__ or ())) if fn is not None else {}
    for node in walk_own(fn_node.body) if fn is not None else ():
        if not isinstance(node, ast.Name) or node.id in own or node.id in mapping:
            continue
        name = node.id
        if name in cells:
            namespace = cells[name]
            value = _cell_value(namespace)
        elif name in fn.__globals__:
            namespace, value = fn.__globals__, fn.__globals__[name]
        else:
            continue  # a builtin, or not defined: Python's meaning
        if name not in caller_locals and caller_free.get(name, _MISSING) is value:
            continue
        mapping[name] = fresh(name)
        free[mapping[name]] = (namespace, name)
    return mapping, free


def _body(fn_node, mapping):
    """A helper's statements with its names renamed, without its docstring."""
    body = rename(fn_node.body, mapping)
    if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
        body = body[1:]
    return body


def _rebound(fn_node):
    """The names a function assigns as a whole (element writes do not count)."""
    return {n for node in walk_own(fn_node.body) for t in _targets(node) for n in _whole(t)}


def _whole(target):
    """The names a target binds as a whole (``x[i] = v`` writes an element, binds nothing)."""
    if isinstance(target, ast.Name):
        return {target.id}
    if isinstance(target, (ast.Tuple, ast.List)):
        return {n for elt in target.elts for n in _whole(elt)}
    return set()


_MISSING = object()


def _cell_value(cell):
    try:
        return cell.cell_contents
    except ValueError:
        return None


def bound_arguments(fn, fn_node, source, call):
    """Each parameter of the helper with the syntax of its value: the call's argument or the
    parameter's default."""
    params = [a.arg for a in fn_node.args.args + fn_node.args.kwonlyargs]
    signature = _signature(fn_node) if fn is None else inspect.signature(fn)
    try:
        bound = signature.bind(*call.args, **{k.arg: k.value for k in call.keywords})
    except TypeError as err:
        raise CompileError(
            f"this call does not fit the parameters of `{fn_node.name}`: {err}.", source, call
        ) from None
    values = dict(bound.arguments)
    for name in params:
        if name not in values:
            default = signature.parameters[name].default
            values[name] = default if fn is None else _literal(default, source, call)
    return {name: values[name] for name in params}


def _signature(fn_node):
    """The signature of a function known by its syntax only; defaults are syntax too."""
    args = fn_node.args
    positional, defaults = args.args, [None] * (len(args.args) - len(args.defaults)) + args.defaults
    params = [
        inspect.Parameter(
            a.arg,
            inspect.Parameter.POSITIONAL_OR_KEYWORD,
            default=inspect.Parameter.empty if d is None else d,
        )
        for a, d in zip(positional, defaults)
    ]
    params += [
        inspect.Parameter(
            a.arg,
            inspect.Parameter.KEYWORD_ONLY,
            default=inspect.Parameter.empty if d is None else d,
        )
        for a, d in zip(args.kwonlyargs, args.kw_defaults)
    ]
    return inspect.Signature(params)


def _literal(value, source, call):
    if isinstance(value, (int, float, bool, str, type(None))):
        return ast.Constant(value)
    raise CompileError(
        f"the helper's default value {value!r} is not a number, string or None: pass the "
        f"argument explicitly.",
        source,
        call,
    )

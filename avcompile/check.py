"""Reject stage: one pass that refuses every construct outside the relaxable subset, before any
transformation, each with what to write instead.

The subset is an allowlist: a syntax node that no stage of the compiler knows is refused here, at
its line, rather than failing somewhere later."""

import ast

from .errors import CompileError

# Statement and expression types with the reason and the fix, in the words an error shows.
_REJECTED = {
    ast.Yield: ("`yield`", "a relaxed function returns its results once; return them at the end"),
    ast.YieldFrom: ("`yield from`", "return the results at the end of the function instead"),
    ast.Await: ("`await`", "relaxed functions are ordinary synchronous functions"),
    ast.Try: (
        "`try`",
        "both branches of a relaxed condition always run, so errors cannot steer "
        "control; check the inputs before calling the module",
    ),
    ast.With: (
        "`with`",
        "move the context manager outside the relaxed function and call the module inside it",
    ),
    ast.AsyncWith: ("`async with`", "call the module inside the context manager instead"),
    ast.AsyncFor: ("`async for`", "use an ordinary `for` loop"),
    ast.Global: (
        "`global`",
        "a relaxed function cannot assign global names; return the value "
        "instead (reading globals is fine)",
    ),
    ast.Nonlocal: (
        "`nonlocal`",
        "a relaxed function cannot assign enclosing names; return the "
        "value instead (reading them is fine)",
    ),
    ast.AsyncFunctionDef: ("a nested `async def`", "define helpers at module level"),
    ast.ClassDef: ("a `class` definition", "define the class at module level"),
    ast.Delete: ("`del`", "assign a new value instead"),
    ast.Import: ("`import`", "import at module level; the function reads module names at the call"),
    ast.ImportFrom: ("`from ... import`", "import at module level"),
    ast.NamedExpr: ("the walrus operator `:=`", "assign the value in a statement of its own"),
    ast.SetComp: ("a set comprehension", "write a list comprehension, `[... for ...]`"),
    ast.DictComp: (
        "a dict comprehension",
        "keep the values in a list comprehension indexed by hard values",
    ),
    ast.Starred: ("a starred expression `*x`", "write the elements out, or index them"),
}
_REJECTED.update(
    {
        ast.Dict: (
            "a dict display `{...}`",
            "keep the values in variables, or in a list indexed by hard values",
        ),
        ast.Set: ("a set display `{...}`", "use a list, or test membership with `==` and `or`"),
    }
)
if hasattr(ast, "Match"):
    _REJECTED[ast.Match] = ("`match`", "write `if`/`elif`/`else`")
if hasattr(ast, "TryStar"):
    _REJECTED[ast.TryStar] = ("`try`", "check the inputs before calling the module")


# Every other syntax node that may stand in a relaxed function's body.
_ALLOWED = (
    ast.Assign,
    ast.AugAssign,
    ast.AnnAssign,
    ast.Expr,
    ast.If,
    ast.While,
    ast.For,
    ast.Return,
    ast.Break,
    ast.Continue,
    ast.Pass,
    ast.Assert,
    ast.Raise,
    ast.Name,
    ast.Constant,
    ast.BinOp,
    ast.UnaryOp,
    ast.BoolOp,
    ast.Compare,
    ast.IfExp,
    ast.Call,
    ast.keyword,
    ast.Attribute,
    ast.Subscript,
    ast.Slice,
    ast.Tuple,
    ast.List,
    ast.JoinedStr,
    ast.FormattedValue,
    ast.expr_context,
    ast.operator,
    ast.unaryop,
    ast.cmpop,
    ast.boolop,
    ast.ListComp,  # the loop that builds the list
    ast.GeneratorExp,  # the same, or the loop that accumulates it in `sum`, `any`, `all`
    ast.comprehension,
    ast.FunctionDef,  # a helper defined inside, compiled where it is called
    ast.Lambda,
    ast.arguments,
    ast.arg,
)


def check(fn_node, source):
    """Raise ``CompileError`` at the first construct outside the subset."""
    args = fn_node.args
    if args.vararg or args.kwarg:
        node = args.vararg or args.kwarg
        raise CompileError(
            f"`*{node.arg}` / `**{node.arg}` parameters are not supported: avcompile needs to know "
            f"every argument to decide which are relaxed. Name each parameter instead.",
            source,
            node,
        )
    if args.posonlyargs:
        raise CompileError(
            "positional-only parameters (`/`) are not supported; drop the `/`.",
            source,
            args.posonlyargs[0],
        )
    if isinstance(fn_node, ast.AsyncFunctionDef):
        raise CompileError(
            "`async def` cannot be relaxed; write an ordinary `def`.", source, fn_node
        )
    for stmt in fn_node.body:
        for node in ast.walk(stmt):
            reason = _REJECTED.get(type(node))
            if reason is not None:
                what, fix = reason
                raise CompileError(
                    f"{what} is not supported in a relaxed function: {fix}.", source, node
                )
            if not isinstance(node, _ALLOWED):
                raise CompileError(
                    f"`{type(node).__name__}` syntax is not supported in a relaxed function.",
                    source,
                    node,
                )
            if isinstance(node, (ast.For, ast.While)) and node.orelse:
                raise CompileError(
                    "`else` on a loop is not supported in a relaxed function: set a flag before "
                    "`break` and test it after the loop.",
                    source,
                    node.orelse[0],
                )
            if isinstance(node, (ast.Assign, ast.AnnAssign, ast.AugAssign)):
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                for target in targets:
                    _check_target(target, source)
            if isinstance(node, ast.Subscript) and _has_ellipsis(node.slice):
                raise CompileError(
                    "`...` in an index is not supported: write the dimensions out with `:`.",
                    source,
                    node,
                )
            if isinstance(node, ast.Attribute) and node.attr.startswith("__"):
                raise CompileError(
                    f"the special attribute `{node.attr}` is not supported.", source, node
                )


def _check_target(target, source):
    if isinstance(target, (ast.Tuple, ast.List)):
        for elt in target.elts:
            _check_target(elt, source)
    elif isinstance(target, ast.Subscript):
        base = target.value
        while isinstance(base, ast.Subscript):
            base = base.value
        if not isinstance(base, ast.Name):
            raise CompileError(
                "an element write must name a variable, as in `x[i] = v` or `x[i][j] = v`.",
                source,
                target,
            )
    elif isinstance(target, ast.Attribute):
        raise CompileError(
            "assigning an attribute (`obj.attr = v`) is not supported: a relaxed function may not "
            "change objects outside it. Use a variable and return it.",
            source,
            target,
        )
    elif not isinstance(target, ast.Name):
        raise CompileError(
            "this assignment target is not supported; assign a name or an element.", source, target
        )


def _has_ellipsis(index):
    return any(isinstance(n, ast.Constant) and n.value is Ellipsis for n in ast.walk(index))

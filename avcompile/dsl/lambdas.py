"""What the DSL knows of a user's lambda: its arguments, its text and the expression to inline."""

from __future__ import annotations

import ast
import inspect
import linecache
import types
import weakref

_PURE_NODES = (
    ast.Name,
    ast.Constant,
    ast.BinOp,
    ast.UnaryOp,
    ast.Tuple,
    ast.Load,
    ast.Add,
    ast.Sub,
    ast.Mult,
    ast.Div,
    ast.FloorDiv,
    ast.Mod,
    ast.Pow,
    ast.USub,
    ast.UAdd,
)


_LAMBDAS = weakref.WeakKeyDictionary()  # a lambda -> what _Lambda knows of it


class _Lambda:
    """What the DSL knows of a user's lambda: its arguments (the variables it reads), its text and,
    when it is plain arithmetic of its arguments and numbers, the expression to inline."""

    def __init__(self, fn):
        spec = inspect.getfullargspec(fn)
        self.args = tuple(spec.args)
        self.name = fn.__name__ if fn.__name__.isidentifier() else "lambda"
        plain = not (spec.varargs or spec.varkw or spec.kwonlyargs or spec.defaults)
        body, same = _lambda_body(fn, self.args) if plain else (None, False)
        params = ", ".join(self.args)
        if body is not None:
            self.text = (
                f"lambda {params}: {ast.unparse(body)}"
                if params
                else f"lambda: {ast.unparse(body)}"
            )
        elif fn.__name__ == "<lambda>":
            self.text = f"<lambda {params}>"
        else:
            self.text = fn.__name__
        nodes = list(ast.walk(body)) if body is not None else []
        pure = (
            body is not None
            and same
            and not fn.__code__.co_freevars
            and all(isinstance(n, _PURE_NODES) for n in nodes)
            and all(n.id in self.args for n in nodes if isinstance(n, ast.Name))
            and all(isinstance(n.value, (int, float)) for n in nodes if isinstance(n, ast.Constant))
        )
        self.inline = body if pure else None

    @classmethod
    def of(cls, fn):
        info = _LAMBDAS.get(fn)
        if info is None:
            info = _LAMBDAS[fn] = cls(fn)
        return info


def _lambda_body(fn, args):
    """The body of a lambda as an AST, found from the columns its bytecode comes from, and whether
    compiling it again gives the same bytecode (then it is the lambda's exact body)."""
    code = fn.__code__
    if code.co_name != "<lambda>" or not hasattr(code, "co_positions"):  # Python >= 3.11
        return None, False
    spans = [p for p in code.co_positions() if None not in p and (p[0], p[2]) != (p[1], p[3])]
    lines = linecache.getlines(code.co_filename)
    if not spans or not lines:
        return None, False
    (l0, c0), (l1, c1) = min((p[0], p[2]) for p in spans), max((p[1], p[3]) for p in spans)
    if l1 > len(lines):
        return None, False
    raw = [line.encode() for line in lines[l0 - 1 : l1]]
    text = raw[0][c0:c1] if l0 == l1 else raw[0][c0:] + b"".join(raw[1:-1]) + raw[-1][:c1]
    try:
        text = text.decode()
        body = ast.parse(f"({text})", mode="eval").body
        again = compile(f"lambda {', '.join(args)}: ({text})", code.co_filename, "eval")
    except (SyntaxError, UnicodeDecodeError, ValueError):
        return None, False
    inner = [c for c in again.co_consts if isinstance(c, types.CodeType)]
    same = (
        bool(inner)
        and inner[0].co_code == code.co_code
        and inner[0].co_consts == code.co_consts
        and inner[0].co_names == code.co_names
    )
    return body, same

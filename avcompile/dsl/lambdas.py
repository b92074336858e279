"""What the DSL knows of a user's lambda: its arguments, its text and the expression to inline."""

from __future__ import annotations

import ast
import inspect
import weakref

from ..parse import lambda_body

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
        body, same = lambda_body(fn, self.args) if plain else (None, False)
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

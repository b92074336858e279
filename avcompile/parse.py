"""Parse stage: the user's function as an ``ast.FunctionDef`` that keeps its file and line numbers."""

import ast
import inspect
import linecache
import textwrap
import types
from dataclasses import dataclass


@dataclass(frozen=True)
class Source:
    """Where a function's source came from, to point errors and comments at the user's lines."""

    filename: str
    lines: tuple  # the whole file's lines, so any line number of the function can be shown

    def line(self, lineno):
        if 1 <= lineno <= len(self.lines):
            return self.lines[lineno - 1].rstrip("\n")
        return ""


class NoSourceError(TypeError):
    """The function's source cannot be read (defined in a REPL, by ``exec``, or built in)."""


def parse(fn):
    """Return ``(FunctionDef, Source)`` for ``fn``, with line numbers as in the user's file."""
    try:
        filename = inspect.getsourcefile(fn) or inspect.getfile(fn)
        lines, first = inspect.getsourcelines(fn)
    except (OSError, TypeError) as err:
        name = getattr(fn, "__qualname__", repr(fn))
        raise NoSourceError(
            f"avcompile cannot read the source of {name}: {err}. relax() compiles a function from "
            f"its source text, which the plain `python` prompt and exec() do not keep. Define the "
            f"function in a file (a script, or a module you import), or in IPython or a Jupyter "
            f"notebook, which keep the source of every cell"
        ) from None
    tree = ast.parse(textwrap.dedent("".join(lines)))
    defs = [n for n in tree.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))]
    if not defs:
        raise NoSourceError(f"avcompile found no function definition in the source of {fn!r}")
    node = defs[0]
    ast.increment_lineno(node, first - 1 if first else 0)
    indent = len(lines[0]) - len(lines[0].lstrip())
    if indent:
        for sub in ast.walk(node):
            if hasattr(sub, "col_offset"):
                sub.col_offset += indent
                if getattr(sub, "end_col_offset", None) is not None:
                    sub.end_col_offset += indent
    all_lines = linecache.getlines(filename) or ["\n"] * (first - 1) + list(lines)
    return node, Source(filename, tuple(all_lines))


def lambda_body(fn, args):
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

"""The errors raised for a program that avcompile cannot compile, at the user's file and line."""

import contextlib
from dataclasses import dataclass


class CompileError(SyntaxError):
    """A construct outside the relaxable subset, reported at the user's file, line and column.

    It is a ``SyntaxError``, so Python prints the offending line with a caret under it; an editor
    or a hook can read its parts instead::

        try:
            module = relax(fn)
        except avcompile.CompileError as err:
            print(f"{err.filename}:{err.lineno}:{err.offset}: {err.msg}")
    """

    def __init__(self, message, source, node):
        lineno = getattr(node, "lineno", 1)
        col = getattr(node, "col_offset", 0)
        text = source.line(lineno)
        super().__init__(message, (source.filename, lineno, col + 1, text))


class HardInRelaxedBranch(CompileError):
    """A name that must be hard (an index or loop bound, or declared hard) is assigned inside a
    relaxed branch. ``name`` is the variable, ``branch_line`` the line of the relaxed ``if``: a
    front end may say it in its own words (the DSL names the instruction)."""

    def __init__(self, message, source, node, name, branch_line):
        super().__init__(message, source, node)
        self.name, self.branch_line = name, branch_line


class InternalError(CompileError):
    """A bug of avcompile, met while compiling one of the user's lines and reported there."""


@dataclass(frozen=True)
class Position:
    """A place in the user's source for ``CompileError``, when there is no AST node at hand (the
    passes and the emitter work on the IR, whose statements know their line)."""

    lineno: int
    col_offset: int

    @classmethod
    def of_line(cls, source, line):
        """The start of the statement on ``line`` (after its indentation)."""
        text = source.line(line) if source is not None else ""
        return cls(line, len(text) - len(text.lstrip()))


@contextlib.contextmanager
def internal_errors_at(source, node):
    """Report an unexpected exception raised inside the block as an ``InternalError`` at ``node``
    (an AST node or a ``Position``), chained to the original; errors of the user's program pass."""
    try:
        yield
    except CompileError:
        raise
    except Exception as err:
        if source is None:
            raise
        raise InternalError(
            f"internal error of avcompile while compiling this line ({type(err).__name__}: "
            f"{err}). This is a bug of avcompile, not of your program: please report it with "
            f"this function.",
            source,
            node,
        ) from err

"""The error raised for a program that avcompile cannot compile."""


class CompileError(SyntaxError):
    """A construct outside the relaxable subset, reported at the user's file, line and column.

    It is a ``SyntaxError``, so Python prints the offending line with a caret under it.
    """

    def __init__(self, message, source, node):
        lineno = getattr(node, "lineno", 1)
        col = getattr(node, "col_offset", 0)
        text = source.line(lineno)
        super().__init__(message, (source.filename, lineno, col + 1, text))

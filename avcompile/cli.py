"""The ``avcompile`` command: ``show`` what a function compiles to, ``check`` files for errors.

avcompile show src_examples/bubble_sort.py:bubble_sort          # the generated module
avcompile show src_examples.bubble_sort:bubble_sort --ir        # the relaxed IR
avcompile show src_examples/bubble_sort.py:bubble_sort --annotate
avcompile check src_examples/*.py                                # file:line:col: message
"""

import argparse
import importlib
import importlib.util
import inspect
import os
import re
import sys
import traceback

from . import __version__
from .api import collect_errors, relax, to_code
from .errors import CompileError
from .module import RelaxedModule

_KEYWORDS = re.compile(
    r"\b(def|class|return|for|in|while|if|else|elif|import|from|and|or|not|"
    r"break|continue|pass|lambda|None|True|False)\b"
)
_BOLD, _DIM, _GREEN, _CYAN, _RESET = "\033[1m", "\033[2m", "\033[32m", "\033[36m", "\033[0m"


class UsageError(Exception):
    """A target that cannot be found: reported with exit status 2."""


def main(argv=None):
    """Entry point of the ``avcompile`` console script; returns the exit status."""
    parser = argparse.ArgumentParser(
        prog="avcompile",
        description="Compile plain Python algorithms into relaxed, differentiable torch modules, "
        "and look at what they become.",
    )
    parser.add_argument("--version", action="version", version=f"avcompile {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    show = commands.add_parser(
        "show",
        help="print the generated module of a relaxed function",
        description="Print the generated torch module of a @relax function (a plain function is "
        "compiled with relax's defaults, which the options below change).",
    )
    show.add_argument(
        "target",
        metavar="FILE.py:NAME | package.module:NAME",
        help="where the function is: a file or an importable module, and its name",
    )
    view = show.add_mutually_exclusive_group()
    view.add_argument("--ir", action="store_true", help="print the relaxed IR instead")
    view.add_argument(
        "--annotate",
        action="store_true",
        help="print each line of the source followed by the code it became",
    )
    show.add_argument("--beta", type=float, help="inverse temperature (default 10)")
    show.add_argument("--hard", action="store_true", help="exact comparisons")
    show.add_argument("--max-iter", type=int, help="most iterations of a relaxed while")
    show.add_argument("--eps", type=float, help="a relaxed while stops below this probability")
    show.add_argument("--static", default="", help="comma-separated names of hard parameters")
    show.add_argument(
        "--backend",
        choices=("torch", "kernel"),
        default="torch",
        help="torch: the generated module (default); kernel: the forward and adjoint kernels",
    )
    show.add_argument(
        "--color",
        choices=("auto", "always", "never"),
        default="auto",
        help="colour the output (default: when it is a terminal)",
    )

    check = commands.add_parser(
        "check",
        help="compile every @relax function of files and report each error",
        description="Compile every @relax function in the files and print each failure as "
        "file:line:col: message. Exit status 1 if any failed, 0 otherwise.",
    )
    check.add_argument("files", nargs="+", metavar="FILE.py")

    args = parser.parse_args(argv)
    try:
        if args.command == "show":
            return _show(args)
        return _check(args.files)
    except UsageError as err:
        print(f"avcompile: {err}", file=sys.stderr)
        return 2


# ---------------------------------------------------------------------------------------------
# show


def _show(args):
    module_name, _, name = args.target.rpartition(":")
    if not module_name or not name:
        raise UsageError(f"expected FILE.py:NAME or package.module:NAME, got {args.target!r}")
    try:
        namespace = _load(module_name)
    except CompileError as err:
        print(_format_error(err), file=sys.stderr)
        return 1
    if name not in namespace:
        raise UsageError(f"{module_name} has no function named {name!r}")
    obj = namespace[name]
    static = tuple(s for s in args.static.split(",") if s)
    options = {
        k: v
        for k, v in (("beta", args.beta), ("max_iter", args.max_iter), ("eps", args.eps))
        if v is not None
    }
    if args.hard:
        options["hard"] = True
    if not isinstance(obj, RelaxedModule):
        if not callable(obj):
            raise UsageError(f"{name} in {module_name} is not a function")
        try:
            obj = relax(obj, static=static, **options)
        except CompileError as err:
            print(_format_error(err), file=sys.stderr)
            return 1
    elif static:
        obj = relax(obj, static=static, **options)
    color = args.color == "always" or (args.color == "auto" and sys.stdout.isatty())
    if args.backend == "kernel":
        text = _kernel_source(obj)
        if text is None:
            return 1
    elif args.ir:
        text = str(obj.ir)
    elif args.annotate:
        text = annotate(obj, color)
        color = False
    else:
        text = to_code(obj)
    print(highlight(text) if color else text, end="" if text.endswith("\n") else "\n")
    return 0


def _kernel_source(module):
    """The kernels' source of ``module`` (for relaxed arguments of the least rank its function
    reads, in its mode and family), or None after printing why it has none."""
    from .passes.ranks import example_ranks

    program = module.kernel_program()
    if program is None:
        print(f"avcompile: no kernel: {module.kernel_reason}", file=sys.stderr)
        return None
    ranks = example_ranks(module.ir)
    relaxed = {p.id: ranks.get(p.id, 0) for p in module.ir.params if p.kind.per_example}
    return program.source(relaxed, module.mode, module.dist)


def _load(target):
    """The namespace of a file path or importable module (running it, as an import does)."""
    if target.endswith(".py") or os.sep in target or "/" in target:
        path = os.path.abspath(target)
        if not os.path.isfile(path):
            raise UsageError(f"no such file: {target}")
        directory = os.path.dirname(path)
        if directory not in sys.path:
            sys.path.insert(0, directory)
        name = os.path.splitext(os.path.basename(path))[0]
        spec = importlib.util.spec_from_file_location(f"avcompile_target_{name}", path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return vars(module)
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        return vars(importlib.import_module(target))
    except ModuleNotFoundError as err:
        raise UsageError(f"cannot import {target}: {err}") from None


def annotate(module, color=False):
    """Each line of the user's source followed by the generated code it became."""
    fn = getattr(module, "__wrapped__", None)
    if fn is None:
        return module.code
    lines, first = inspect.getsourcelines(fn)
    segments = {}
    for number, line in enumerate(module.code.splitlines(), 1):
        if number in module.line_map and line.strip():
            segments.setdefault(module.line_map[number], []).append(line)
    width = len(str(first + len(lines)))
    out = []
    for k, text in enumerate(lines):
        lineno = first + k
        head = f"{lineno:>{width}} | {text.rstrip()}"
        out.append(f"{_BOLD}{head}{_RESET}" if color else head)
        for generated in segments.get(lineno, ()):
            row = f"{'':>{width}} |   -> {generated[8:] if generated.startswith(' ' * 8) else generated}"
            out.append(f"{_DIM}{row}{_RESET}" if color else row)
    return "\n".join(out) + "\n"


def highlight(code):
    """Minimal terminal colours: comments green, keywords bold, runtime helpers cyan."""
    out = []
    for line in code.splitlines():
        body, hash_, comment = line.partition("#")
        if hash_ and body.count("'") % 2 == 0 and body.count('"') % 2 == 0:
            tail = f"{_GREEN}#{comment}{_RESET}"
        else:
            body, tail = line, ""
        body = _KEYWORDS.sub(lambda m: f"{_BOLD}{m.group(0)}{_RESET}", body)
        body = re.sub(r"\brt\.(\w+)", lambda m: f"{_CYAN}rt.{m.group(1)}{_RESET}", body)
        out.append(body + tail)
    return "\n".join(out) + "\n"


# ---------------------------------------------------------------------------------------------
# check


def _check(files):
    failed = False
    for path in files:
        if not os.path.isfile(path):
            raise UsageError(f"no such file: {path}")
    for path in files:
        with collect_errors() as errors:
            try:
                _load(path)
            except CompileError as err:
                errors.append(err)
            except Exception as err:  # the file itself failed to run: report where
                tb = traceback.extract_tb(err.__traceback__)
                frame = next(
                    (
                        f
                        for f in reversed(tb)
                        if os.path.abspath(f.filename) == os.path.abspath(path)
                    ),
                    tb[-1] if tb else None,
                )
                line = frame.lineno if frame else 1
                print(f"{path}:{line}:1: {type(err).__name__}: {err}")
                failed = True
        for err in errors:
            print(_format_error(err, path))
            failed = True
    return 1 if failed else 0


def _format_error(err, shown_path=None):
    path = err.filename
    if shown_path is not None and os.path.abspath(path) == os.path.abspath(shown_path):
        path = shown_path
    return f"{path}:{err.lineno}:{err.offset}: {err.msg}"


__all__ = ["annotate", "highlight", "main"]

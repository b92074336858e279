"""The ``avcompile`` command: ``show`` what a function compiles to, ``check`` files for errors.

avcompile show src_examples/bubble_sort.py:bubble_sort          # the generated module
avcompile show src_examples.bubble_sort:bubble_sort --ir        # the relaxed IR
avcompile show src_examples/bubble_sort.py:bubble_sort --annotate
avcompile show src_examples/bubble_sort.py:bubble_sort --hard --backend kernel
avcompile check src_examples/*.py src_examples.top_k             # file:line:col: message

Both import what they are given, as Python does: its top-level code runs, and a file inside a
package (a directory with ``__init__.py``) is imported through its package, so that its relative
imports work. While they import it, ``relax`` records compile errors instead of raising them, so
one broken function neither hides the others from ``check`` nor stops ``show`` of another.
"""

import argparse
import contextlib
import dataclasses
import importlib
import importlib.util
import inspect
import os
import re
import sys
import traceback

import torch

from . import __version__
from .api import collect_errors, relax
from .errors import CompileError
from .module import BACKENDS, RelaxedModule
from .runtime import DISTRIBUTIONS, MODES

_KEYWORDS = re.compile(
    r"\b(def|class|return|for|in|while|if|else|elif|import|from|and|or|not|"
    r"break|continue|pass|lambda|None|True|False)\b"
)
_BOLD, _DIM, _GREEN, _CYAN, _RESET = "\033[1m", "\033[2m", "\033[32m", "\033[36m", "\033[0m"
_OWN_DIR = os.path.dirname(os.path.abspath(__file__))


class UsageError(Exception):
    """A target that cannot be found or is not Python: reported with exit status 2."""


class ImportFailed(Exception):
    """The target's own code raised while it was imported; the message is ``file:line:col: ...``."""


def main(argv=None):
    """Entry point of the ``avcompile`` console script; returns the exit status."""
    args = _parser().parse_args(argv)
    try:
        if args.command == "show":
            return _show(args)
        return _check(args.targets)
    except UsageError as err:
        print(f"avcompile {args.command}: {err}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # the reader stopped early (`| head`): not an error of ours
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1


def _parser():
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
        description="Import the file or module (its top-level code runs) and print the generated "
        "torch module of one of its functions, below a comment stating the module's "
        "hyperparameters. A @relax function keeps its own settings and a plain function gets "
        "relax's defaults, unless the options below change them.",
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
    show.add_argument("--beta", type=float, help="inverse temperature")
    mode = show.add_mutually_exclusive_group()
    mode.add_argument("--hard", action="store_true", help="exact comparisons (--mode hard)")
    mode.add_argument(
        "--mode", choices=MODES, help="soft; hard: exact; st: hard forward, soft gradient"
    )
    show.add_argument("--dist", choices=DISTRIBUTIONS, help="distribution family of comparisons")
    show.add_argument("--max-iter", type=int, help="most iterations of a relaxed while")
    show.add_argument("--eps", type=float, help="a relaxed while stops below this probability")
    show.add_argument("--static", default="", help="comma-separated names of hard parameters")
    show.add_argument(
        "--backend",
        choices=BACKENDS,
        help="the module's backend; with kernel, print its forward and adjoint kernels instead "
        "of the torch module",
    )
    show.add_argument(
        "--color",
        choices=("auto", "always", "never"),
        default="auto",
        help="colour the output (default: when it is a terminal)",
    )

    check = commands.add_parser(
        "check",
        help="compile every @relax function of files or modules and report each error",
        description="Import each file or module (its top-level code runs), compile every @relax "
        "function in it and print each failure as file:line:col: message. Exit status 1 if any "
        "failed, 0 otherwise.",
    )
    check.add_argument("targets", nargs="+", metavar="FILE.py | package.module")
    return parser


# ---------------------------------------------------------------------------------------------
# finding and importing the user's code


@dataclasses.dataclass(frozen=True)
class _Target:
    """The code a command line names: imported as ``module`` (a dotted name, once ``root`` is on
    ``sys.path``), or, for a file outside any package (``module`` None), run from ``path``.
    ``path`` is its file where known, ``shown`` how messages name that file."""

    shown: str
    path: str | None
    module: str | None
    root: str


def _resolve(target):
    """The ``_Target`` that ``target`` (a file path or a dotted module name) names.

    A file inside a package is named by its package: ``pkg/sub/algo.py``, where ``pkg`` and
    ``pkg/sub`` hold ``__init__.py``, is the module ``pkg.sub.algo`` with the parent of ``pkg``
    as its root. Raises ``UsageError`` for a missing file, a file that is not Python, or a
    module that cannot be found."""
    if target.endswith(".py") or os.sep in target or "/" in target or os.path.isfile(target):
        return _resolve_file(target)
    return _resolve_module(target)


def _resolve_file(target):
    path = os.path.abspath(target)
    if not os.path.isfile(path):
        raise UsageError(f"no such file: {target}")
    if not path.endswith(".py"):
        raise UsageError(
            f"{target} is not a Python file: give a FILE.py or a package.module to import"
        )
    directory, stem = os.path.split(path[: -len(".py")])
    parts = [stem]
    while os.path.isfile(os.path.join(directory, "__init__.py")):
        directory, package = os.path.split(directory)
        parts.insert(0, package)
    if parts[-1] == "__init__":
        parts.pop()
    if len(parts) < 2 or not all(part.isidentifier() for part in parts):
        return _Target(target, path, None, os.path.dirname(path))
    return _Target(target, path, ".".join(parts), directory)


def _resolve_module(target):
    if not all(part.isidentifier() for part in target.split(".")):
        raise UsageError(f"expected FILE.py or package.module, got {target!r}")
    root = os.getcwd()
    _put_first_on_path(root)
    found = importlib.util.find_spec(target.split(".")[0])
    if found is None:
        raise UsageError(f"cannot import {target}: no module named {target.split('.')[0]!r}")
    return _Target(target, None, target, root)


def _put_first_on_path(directory):
    """Put ``directory`` first on ``sys.path``, as ``python`` does with a script's directory."""
    if not sys.path or sys.path[0] != directory:
        sys.path.insert(0, directory)


def _load(target):
    """Import ``target`` and return its namespace. Its top-level code runs, with what it prints
    sent to stderr (stdout is for avcompile's output); an exception it raises is an
    ``ImportFailed`` saying where."""
    _put_first_on_path(target.root)
    try:
        with contextlib.redirect_stdout(sys.stderr):
            if target.module is None:
                return vars(_run_file(target.path))
            module = importlib.import_module(target.module)
    except ModuleNotFoundError as err:
        if target.path is None and err.name and (target.module + ".").startswith(err.name + "."):
            raise UsageError(f"cannot import {target.module}: {err}") from None
        raise ImportFailed(_where_it_failed(err, target)) from None
    except (Exception, SystemExit) as err:
        raise ImportFailed(_where_it_failed(err, target)) from None
    found = getattr(module, "__file__", None)
    if target.path is not None and not (found and os.path.samefile(found, target.path)):
        raise UsageError(
            f"importing {target.module} for {target.shown} finds {found} instead: another "
            f"module of that name comes first on sys.path"
        )
    return vars(module)


def _run_file(path):
    """Run a file outside any package as a module of its own (named in ``sys.modules``, as
    dataclasses and pickle need)."""
    name = "avcompile_target_" + os.path.splitext(os.path.basename(path))[0]
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def _where_it_failed(err, target):
    """``file:line:col: Type: message`` for an exception raised while importing ``target``: at
    its own position for a syntax or compile error, else at the innermost line of the target's
    file in the traceback, else at the innermost line outside avcompile and Python's import
    machinery, else at the first line of the target."""
    if isinstance(err, CompileError):
        return _format_error(err, target)
    if isinstance(err, SyntaxError) and err.filename:
        where = _shown_path(err.filename, target)
        return f"{where}:{err.lineno or 1}:{err.offset or 1}: SyntaxError: {err.msg}"
    frames = traceback.extract_tb(err.__traceback__)
    own = [f for f in frames if target.path and _same_file(f.filename, target.path)]
    user = [
        f for f in frames if not f.filename.startswith("<") and not _same_dir(f.filename, _OWN_DIR)
    ]
    frame = (own or user or [None])[-1]
    where = (
        f"{_shown_path(frame.filename, target)}:{frame.lineno}" if frame else f"{target.shown}:1"
    )
    message = str(err) if not isinstance(err, SystemExit) else f"exit status {err.code}"
    return f"{where}:1: {type(err).__name__}: {message}"


def _format_error(err, target=None):
    """``file:line:col: message`` of a ``CompileError``, naming ``target``'s file as given."""
    return f"{_shown_path(err.filename, target)}:{err.lineno}:{err.offset}: {err.msg}"


def _shown_path(filename, target):
    """How a message names ``filename``: as the command line named the target's file; for a
    target named as a module, relative to the current directory when inside it."""
    if target is None:
        return filename
    if target.path is not None:
        return target.shown if _same_file(filename, target.path) else filename
    if _same_dir(filename, os.getcwd()):
        return os.path.relpath(filename)
    return filename


def _same_file(a, b):
    return os.path.abspath(a) == os.path.abspath(b)


def _same_dir(filename, directory):
    return os.path.abspath(filename).startswith(directory + os.sep)


# ---------------------------------------------------------------------------------------------
# show


def _show(args):
    where, _, name = args.target.rpartition(":")
    if not where or not name:
        raise UsageError(f"expected FILE.py:NAME or package.module:NAME, got {args.target!r}")
    target = _resolve(where)
    try:
        with collect_errors() as errors:
            namespace = _load(target)
    except ImportFailed as err:
        print(err, file=sys.stderr)
        return 1
    if name not in namespace:
        raise UsageError(f"{where} has no function named {name!r}")
    obj = namespace[name]
    if not (inspect.isfunction(obj) or isinstance(obj, RelaxedModule)):
        raise UsageError(f"{name} in {where} is not a function (its type is {type(obj).__name__})")
    failed = [err for err in errors if getattr(err, "function", None) is obj]
    if not failed:
        try:
            module = _module_to_show(obj, _settings_given(args), _static(args.static))
        except CompileError as err:
            failed.append(err)
    if failed:
        print(_format_error(failed[0], target), file=sys.stderr)
        return 1
    color = args.color == "always" or (args.color == "auto" and sys.stdout.isatty())
    if args.ir:
        text = str(module.ir)
    elif args.annotate:
        text = annotate(module, color)
    elif module.backend == "kernel":
        text = _kernel_source(module)
        if text is None:
            return 1
    else:
        text = module.code
    if color and not args.annotate:
        text = highlight(text)
    head = _header(module)
    print(f"{_GREEN}{head}{_RESET}" if color else head)
    print(text, end="" if text.endswith("\n") else "\n")
    return 0


def _module_to_show(obj, settings, static=()):
    """The relaxed module ``show`` prints for ``obj``, a relaxed module or a plain function, with
    the hyperparameters in ``settings`` (keyword arguments of ``relax``) changed.

    A plain function is compiled with ``relax``'s defaults for the others; a relaxed module keeps
    its own, and is compiled again only when ``static`` names hard parameters."""
    if not isinstance(obj, RelaxedModule):
        return relax(obj, static=static, **settings)
    if static:
        if getattr(obj, "__wrapped__", None) is None:
            raise UsageError(
                "--static needs a Python function, and this module was built by the DSL"
            )
        return relax(obj, static=static, **{**_settings_of(obj), **settings})
    for key, value in settings.items():
        setattr(obj, key, value)  # hyperparameters are attributes, read at each call
    return obj


def _settings_of(module):
    """The hyperparameters of a relaxed module, as keyword arguments of ``relax``."""
    return {
        "beta": module.beta,
        "mode": module.mode,
        "dist": module.dist,
        "max_iter": module.max_iter,
        "eps": module.eps,
        "backend": module.backend,
    }


def _settings_given(args):
    given = {
        "beta": args.beta,
        "mode": "hard" if args.hard else args.mode,
        "dist": args.dist,
        "max_iter": args.max_iter,
        "eps": args.eps,
        "backend": args.backend,
    }
    return {key: value for key, value in given.items() if value is not None}


def _static(names):
    return tuple(name for name in names.split(",") if name)


def _header(module):
    """The comment ``show`` prints above a module: the hyperparameters its code reads at each
    call (for ``backend='auto'``, also which backend runs it).

    Example: ``# Hyperparameters (read at each call): beta=5, mode='soft', dist='logistic',
    max_iter=1024, eps=1e-05, backend='torch'``"""
    settings = _settings_of(module)
    parts = [f"beta={_beta_text(settings.pop('beta'))}"]
    parts += [f"{key}={value!r}" for key, value in settings.items()]
    if module.backend == "auto":
        reason = module.kernel_reason
        parts[-1] += (
            f" (runs the torch backend: {reason})" if reason else " (runs the kernel backend)"
        )
    return f"# Hyperparameters (read at each call): {', '.join(parts)}"


def _beta_text(beta):
    if not isinstance(beta, torch.Tensor):
        return repr(beta)
    learned = " (learned)" if isinstance(beta, torch.nn.Parameter) else ""
    if beta.numel() == 1:
        return f"{beta.item()!r}{learned}"
    return f"a tensor of shape {list(beta.shape)}{learned}"


def _kernel_source(module):
    """The kernels' source of ``module`` (for relaxed arguments of the least rank its function
    reads, in its mode and family), or None after printing why it has none."""
    from .passes.ranks import example_ranks

    program = module.kernel_program()
    if program is None:
        print(f"avcompile show: no kernel: {module.kernel_reason}", file=sys.stderr)
        return None
    ranks = example_ranks(module.ir)
    relaxed = {p.id: ranks.get(p.id, 0) for p in module.ir.params if p.kind.per_example}
    return program.source(relaxed, module.mode, module.dist)


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


def _check(names):
    targets = [_resolve(name) for name in names]  # every usage error before any output
    failed = False
    for target in targets:
        with collect_errors() as errors:
            try:
                _load(target)
            except ImportFailed as err:
                print(err)
                failed = True
        for err in errors:
            print(_format_error(err, target))
            failed = True
    return 1 if failed else 0


__all__ = ["annotate", "highlight", "main"]

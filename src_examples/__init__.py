"""Algorithms written as plain Python and relaxed with ``@relax``.

Every module has a ``demo(steps=...)`` and runs it as ``python -m src_examples.NAME [--steps N]``.
"""

import argparse
import inspect
import sys


def run_demo(demo, steps_help="training steps", argv=None):
    """Run ``demo`` with the ``--steps`` of the command line (its own default without one).

    ``steps_help`` says what a step is in this demo, for ``--help``.

    Example::

        if __name__ == "__main__":
            run_demo(demo)
    """
    default = inspect.signature(demo).parameters["steps"].default
    module = sys.modules[demo.__module__]
    spec = getattr(module, "__spec__", None)
    parser = argparse.ArgumentParser(
        prog=f"python -m {spec.name}" if spec else None,
        description=(module.__doc__ or "").strip().split("\n")[0],
    )
    parser.add_argument(
        "--steps", type=int, default=default, help=f"{steps_help} (default {default})"
    )
    args = parser.parse_args(argv)
    if args.steps < 1:
        parser.error("--steps must be at least 1")
    demo(steps=args.steps)

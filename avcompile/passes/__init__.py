"""The passes over the relaxed IR, run in one fixed order for both front ends (``@relax`` and
``avcompile.dsl``): each decides one part of the program's meaning, written once."""

from ..errors import Position, internal_errors_at
from .calls import compile_calls
from .exits import lower_exits
from .fuse import fuse
from .guards import place_guards
from .infinity import mark_infinities
from .kinds import infer_kinds
from .liveness import check_liveness
from .reject import reject
from .sets import blend_and_carry
from .specialize import specialize
from .stopped import leave_per_example
from .unpack import unpack


# In order: kinds first (everything after reads them); early exits under relaxed control
# lowered (which loops examples leave to an extent); the hard values relaxed loops leave per
# example (read through relaxed twins, which changes kinds again); rejections of what relaxed values cannot
# do; unpacking (specialising reads it); each op in the form its kinds call for; the names each
# relaxed `if` blends and `while` carries; NaN guards in relaxed branches; the blends that may see
# an infinite sentinel; liveness of names across
# relaxed constructs; fusion last (it only rewrites blends into fewer tensor ops).
def exits_and_per_example_values(fn):
    """Early exits lowered and the values relaxed loops leave per example made twins, to a fixed
    point: a value a loop leaves per example can make an exit's ``if`` relaxed, and a loop that
    examples then leave to an extent leaves its own counter per example in turn."""
    fn = lower_exits(fn)
    while True:
        after = lower_exits(leave_per_example(fn))
        if after == fn:
            return fn
        fn = after


PIPELINE = (
    infer_kinds,
    exits_and_per_example_values,
    reject,
    unpack,
    specialize,
    blend_and_carry,
    place_guards,
    mark_infinities,
    check_liveness,
    fuse,
)


def run_passes(fn):
    """``fn`` after every pass of the pipeline, its recursive helpers first (each through the
    pipeline too). A pass that fails unexpectedly is a bug of avcompile, reported at the
    function's first line."""
    where = Position.of_line(fn.source, fn.body[0].line) if fn.body else Position(1, 0)
    if fn.subroutines:
        with internal_errors_at(fn.source, where):
            fn = compile_calls(fn, run_passes)
    for step in PIPELINE:
        with internal_errors_at(fn.source, where):
            fn = step(fn)
    return fn

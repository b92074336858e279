"""AlgoVision's bubble sort, one program text, run by ``avcompile.dsl`` and by AlgoVision, on CPU.

Run ``python -m benchmarks.dsl_bubble_sort`` (about 2 minutes) or add ``--quick`` for a smoke test.

What is measured. The bubble sort of AlgoVision's README (Var a, b, swapped, loss; VarInt n;
While / For / If; beta=5) is written once, as a function of the module its instructions come from
(``benchmarks.common.algovision_bubble_sort``), and built twice: with ``avcompile.dsl`` (one import changed) and with ``algovision``. For each
length n (``--sizes``, default 8 16 32 64), batch 100, float32, one thread (``--threads``), the
wall time of one forward and backward pass,
``array, loss = f(x); (array.sum() + loss.sum()).backward()``. The engines alternate within every
repeat (and swap order on every repeat), each repeat draws a fresh x that both get, and one untimed
warm-up run per engine comes first. A size gets ``--repeats``
repeats, fewer (never below 5) where they would take more than ``--budget`` seconds.

How to read it. Times are medians in milliseconds, with the interquartile range in brackets.
``ratio`` = AlgoVision / avcompile, the median over repeats of each repeat's own ratio: how many
times faster avcompile is; the targets are >= 5 at n = 32 and >= 6 at n = 64. Δarray, Δloss and
Δgrad are the largest absolute differences between the engines on the same x as timed (eps=1e-5;
AlgoVision may also skip an ``If`` body of probability <= 1e-5 in every example, which avcompile
never does). ``strict`` reruns both in float64 with epsilon=1e-12, where nothing is skipped, and
shows the largest of the three differences. ``ok``: relative to max(1, largest |value|), every
float32 difference is below 1e-4 (array, loss) or 1e-3 (gradient) and every float64 one below
1e-9. Last, ``build`` is the median time of building the ``Algorithm`` with ``avcompile.dsl``.
"""

import algovision
import torch

import avcompile.dsl
from benchmarks import common
from benchmarks.common import algovision_bubble_sort as bubble_sort


def build_ms(count):
    """Median milliseconds of building the bubble sort ``Algorithm`` with ``avcompile.dsl``."""
    return common.median_ms(lambda: bubble_sort(avcompile.dsl), count)


def main():
    args, gen = common.setup(__doc__)
    print(f"AlgoVision's bubble sort through avcompile.dsl and through AlgoVision, beta=5, "
          f"batch {args.batch}, float32, CPU, {torch.get_num_threads()} thread(s), "
          f"torch {torch.__version__}")
    print("Δ: max |avcompile - AlgoVision| on the same x, eps=1e-5 as timed; strict: largest Δ "
          "in float64 with\n   epsilon=1e-12 in both; check: ok if every Δ / max(1, largest "
          "|value|) is below 1e-4 (array, loss),\n   1e-3 (gradient) in float32 and below "
          f"{common.TOL64:g} in float64\n")

    engines = bubble_sort(avcompile.dsl), bubble_sort(algovision)
    strict = bubble_sort(avcompile.dsl, epsilon=1e-12), bubble_sort(algovision, epsilon=1e-12)
    rows = common.compare_sizes(engines, strict, args, gen)

    build = build_ms(3 if args.quick else 10)
    print(f"\nbuild: Algorithm(...) with avcompile.dsl takes {build:.1f} ms (median)\ntargets:")
    targets = common.report_targets(rows)
    common.write_json(args, rows=rows, build_ms=build, targets=targets)


if __name__ == "__main__":
    main()

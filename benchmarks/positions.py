"""Relaxed positions: selection sort and insertion sort, avcompile against AlgoVision, on CPU.

Run ``python -m benchmarks.positions`` (about 2 minutes) or add ``--quick`` for a smoke test.

What is measured. For each length n (``--sizes``, default 16 32 64), batch 100, float32, one thread:
the wall time of one forward and backward pass, ``y = f(x); y.sum().backward()``, of

- ``selection``: the textbook selection sort of ``src_examples/selection_sort.py``, whose
  position ``m`` is a relaxed integer (SEMANTICS 10);
- ``AlgoVision``: the same sort as AlgoVision can write it, keeping the weights of ``m`` over the
  positions by hand and writing through them (``benchmarks.common.algovision_selection_sort``);
  both give equal values and gradients (the ``Δ`` column, float32);
- ``insertion``: the textbook insertion sort of ``src_examples/insertion_sort.py``, whose ``j``
  leaves a relaxed ``while`` per example and is written at (AlgoVision cannot express it).

All at beta=5. The engines alternate within every repeat, each repeat draws a fresh x. Times are
medians in milliseconds; ``ratio`` is AlgoVision / avcompile, the median of paired ratios.

How relaxed positions cost. ``ops/access`` counts the tensor operations (aten calls, forward only)
of each sort, divided by its relaxed reads and writes (selection: n(n-1)/2 reads of ``a[m]``
plus n-1 swaps); a constant across n means O(1) tensor ops per access, each over the position's
support (at most n values), so O(support) work: no access touches the whole array more than once.
"""

import statistics
import time

import algovision
import torch
from torch.utils._python_dispatch import TorchDispatchMode

from benchmarks import common
from src_examples.insertion_sort import insertion_sort
from src_examples.selection_sort import selection_sort


class _CountOps(TorchDispatchMode):
    def __init__(self):
        super().__init__()
        self.count = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        self.count += 1
        return func(*args, **(kwargs or {}))


def count_ops(fn, x):
    """The aten operations of one forward call of ``fn`` on ``x``."""
    with torch.no_grad(), _CountOps() as counter:
        fn(x)
    return counter.count


def seconds(fn, x):
    x = x.detach().clone().requires_grad_()
    start = time.perf_counter()
    y = fn(x)
    y = y[0] if isinstance(y, tuple) else y
    y.sum().backward()
    return time.perf_counter() - start, (y.detach(), x.grad)


def bench_size(n, engines, args, gen):
    x = torch.randn(args.batch, n, generator=gen)
    warm = {name: seconds(fn, x) for name, fn in engines.items()}
    ours, theirs = warm["selection"][1], warm["AlgoVision"][1]
    delta = max((a - b).abs().max().item() for a, b in zip(ours, theirs))
    per_repeat = sum(t for t, _ in warm.values())
    reps = max(5, min(args.repeats, int(args.budget / per_repeat)))
    times = {name: [] for name in engines}
    for r in range(reps):
        x = torch.randn(args.batch, n, generator=gen)
        order = list(engines.items())[:: 1 if r % 2 else -1]
        for name, fn in order:
            times[name].append(seconds(fn, x)[0])
    medians = {name: 1e3 * statistics.median(t) for name, t in times.items()}
    ratio = statistics.median(a / c for c, a in zip(times["selection"], times["AlgoVision"]))
    accesses = n * (n - 1) // 2 + (n - 1)
    ops = count_ops(engines["selection"], x[:4])
    insertion_ops = count_ops(engines["insertion"], x[:4])
    return {
        "n": n,
        "repeats": reps,
        **{f"{name}_ms": ms for name, ms in medians.items()},
        "ratio": ratio,
        "delta": delta,
        "selection_ops_per_access": ops / accesses,
        "insertion_ops": insertion_ops,
    }


def main():
    args, gen = common.setup(__doc__)
    if not args.quick and args.sizes == [8, 16, 32, 64]:
        args.sizes = [16, 32, 64]
    engines = {
        "selection": selection_sort,
        "AlgoVision": common.algovision_selection_sort(algovision, beta=5.0),
        "insertion": insertion_sort,
    }
    for module in (selection_sort, insertion_sort):
        module.beta = 5.0
    print(
        f"{'n':>4} {'reps':>4} {'selection ms':>13} {'AlgoVision ms':>14} {'ratio':>6} "
        f"{'Δ':>8} {'insertion ms':>13} {'ops/access':>11}"
    )
    rows = []
    for n in args.sizes:
        r = bench_size(n, engines, args, gen)
        rows.append(r)
        print(
            f"{n:>4} {r['repeats']:>4} {r['selection_ms']:>13.2f} {r['AlgoVision_ms']:>14.1f} "
            f"{r['ratio']:>6.1f} {r['delta']:>8.1e} {r['insertion_ms']:>13.2f} "
            f"{r['selection_ops_per_access']:>11.1f}",
            flush=True,
        )
    common.write_json(args, rows=rows)


if __name__ == "__main__":
    main()

"""The kernel backend against the torch backend, AlgoVision and diffsort, side by side.

Run ``python -m benchmarks.kernel`` (a few minutes) or add ``--quick`` for a smoke test.

What is measured: the wall time of one forward and backward pass (``out = f(x)``, the sum of the
outputs' sums backwards), each engine on the same fresh input in every repeat, the engines in an
order that rotates from repeat to repeat, one untimed warm-up first. Times are medians in ms;
a ratio is the median over repeats of that repeat's own ratio (the engines ran back to back on
the same input, so the machine's noise largely cancels).

1. Relaxed bubble sort (``src_examples/bubble_sort.py``, beta 5), batch 100, float32, one thread,
   n = 8, 16, 32, 64: the kernel backend, the torch backend and AlgoVision's README program.
   Targets: kernel >= 100x AlgoVision and >= 15x the torch backend at n = 32 and 64.
2. Batch 10,000 at n = 32, float32 and float64: kernel against torch (target: not slower), and
   the kernel on two threads against one.
3. Levenshtein (``src_examples/levenshtein.py``), kernel against torch.
4. Odd-even sort with its permutation matrix (``src_examples/odd_even_sort.py``, beta 8,
   logistic) against diffsort's odd-even network (the same computation: equal values), batch 100,
   float32, one thread, n = 32 and 64. Target: kernel >= 5x diffsort.
5. Programs outside the kernel's subset today: what ``backend='auto'`` says of them.
6. The peak tape memory per example of the kernel's adjoint, and the kernel's first-call JIT
   time in a new process, then with its disk cache, in another new process.
"""

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
import warnings

import torch

from avcompile import relax
from benchmarks import common
from src_examples.binary_search import binary_search
from src_examples.bubble_sort import bubble_sort
from src_examples.count_positive import count_positive
from src_examples.dijkstra import dijkstra
from src_examples.levenshtein import levenshtein
from src_examples.odd_even_sort import odd_even_sort
from src_examples.shortest_path import shortest_path


def step(fn, inputs):
    """Seconds of one forward and backward pass of ``fn`` on copies of ``inputs``."""
    leaves = [
        x.detach().clone().requires_grad_() if isinstance(x, torch.Tensor) else x for x in inputs
    ]
    start = time.perf_counter()
    out = fn(*leaves)
    out = out if isinstance(out, tuple) else (out,)
    sum(o.sum() for o in out).backward()
    return time.perf_counter() - start


def paired(engines, make_inputs, repeats):
    """Median ms of each engine and the median per-repeat ratio of each to the first."""
    inputs = make_inputs()
    for fn in engines.values():
        step(fn, inputs)  # warm-up (and the kernel's JIT)
    names = list(engines)
    times = {name: [] for name in names}
    for r in range(repeats):
        inputs = make_inputs()
        order = names[r % len(names) :] + names[: r % len(names)]
        for name in order:
            times[name].append(step(engines[name], inputs))
    medians = {name: 1e3 * statistics.median(t) for name, t in times.items()}
    first = names[0]
    ratios = {
        name: statistics.median(b / a for a, b in zip(times[first], times[name]))
        for name in names[1:]
    }
    return medians, ratios


def bubble_engines(dtype=torch.float32):
    import algovision

    return {
        "kernel": relax(bubble_sort.__wrapped__, beta=5.0, backend="kernel"),
        "torch": relax(bubble_sort.__wrapped__, beta=5.0),
        "AlgoVision": common.algovision_bubble_sort(algovision, beta=5.0),
    }


def section_bubble(args, gen):
    print("\n1. relaxed bubble sort, batch 100, float32, 1 thread (forward + backward, ms)")
    print(
        f"{'n':>4} {'kernel':>8} {'torch':>8} {'AlgoVision':>11} {'torch/kernel':>13} "
        f"{'AV/kernel':>10}"
    )
    engines = bubble_engines()
    rows = {}
    for n in args.sizes:
        reps = args.repeats if n < 64 else max(5, args.repeats // 3)
        medians, ratios = paired(engines, lambda n=n: (torch.randn(100, n, generator=gen),), reps)
        rows[n] = (medians, ratios)
        print(
            f"{n:>4} {medians['kernel']:>8.2f} {medians['torch']:>8.2f} "
            f"{medians['AlgoVision']:>11.1f} {ratios['torch']:>13.1f} "
            f"{ratios['AlgoVision']:>10.1f}",
            flush=True,
        )
    for n in (32, 64):
        if n in rows:
            _, ratios = rows[n]
            for name, target in (("AlgoVision", 100.0), ("torch", 15.0)):
                met = "met" if ratios[name] >= target else "NOT MET"
                print(
                    f"  target kernel >= {target:g}x {name} at n = {n}: {ratios[name]:.1f}  {met}"
                )
    return rows


def section_large(args, gen):
    print("\n2. batch 10,000 at n = 32 (forward + backward, ms)")
    batch = 1000 if args.quick else 10_000
    for dtype in (torch.float32, torch.float64):
        engines = {
            "kernel": relax(bubble_sort.__wrapped__, beta=5.0, backend="kernel"),
            "torch": relax(bubble_sort.__wrapped__, beta=5.0),
        }
        medians, ratios = paired(
            engines,
            lambda dtype=dtype: (torch.randn(batch, 32, generator=gen, dtype=dtype),),
            max(3, args.repeats // 5),
        )
        met = "met" if ratios["torch"] >= 1.0 else "NOT MET"
        print(
            f"  {str(dtype):<14} kernel {medians['kernel']:8.1f}  torch {medians['torch']:8.1f}"
            f"  torch/kernel {ratios['torch']:5.2f}  (target >= 1: {met})",
            flush=True,
        )
    kernel = relax(bubble_sort.__wrapped__, beta=5.0, backend="kernel")
    times = {}
    for threads in (1, 2):
        torch.set_num_threads(threads)
        x = (torch.randn(batch, 32, generator=gen),)
        step(kernel, x)
        times[threads] = statistics.median(step(kernel, x) for _ in range(5))
    torch.set_num_threads(args.threads)
    print(
        f"  float32, kernel on 2 threads against 1: {1e3 * times[2]:.1f} ms against "
        f"{1e3 * times[1]:.1f} ms, speed-up {times[1] / times[2]:.2f}"
    )


def against_torch(fn, cases, repeats):
    """Time ``fn`` on the kernel against the torch backend (beta 10) on each case, a
    ``(label, make_inputs)`` pair, printing the medians and their ratio."""
    engines = {
        "kernel": relax(fn.__wrapped__, beta=10.0, backend="kernel"),
        "torch": relax(fn.__wrapped__, beta=10.0),
    }
    for label, make_inputs in cases:
        medians, ratios = paired(engines, make_inputs, repeats)
        print(
            f"  {label}: kernel {medians['kernel']:7.2f}  torch {medians['torch']:7.2f}  "
            f"torch/kernel {ratios['torch']:5.1f}",
            flush=True,
        )


def section_levenshtein(args, gen):
    print("\n3. Levenshtein, batch 100, float32, 1 thread (forward + backward, ms)")

    def tokens(n):
        return lambda: tuple(torch.randint(0, 4, (100, n), generator=gen).float() for _ in "ab")

    against_torch(levenshtein, [(f"n = {n:>2}", tokens(n)) for n in (8, 16)], args.repeats)


def section_odd_even(args, gen):
    import diffsort

    print("\n4. odd-even sort and its permutation matrix, batch 100, float32, 1 thread (ms)")
    for n in [n for n in args.sizes if n >= 16] or args.sizes:
        network = diffsort.DiffSortNet("odd_even", n, steepness=8.0, distribution="logistic")
        engines = {
            "kernel": relax(odd_even_sort.__wrapped__, beta=8.0, backend="kernel"),
            "torch": relax(odd_even_sort.__wrapped__, beta=8.0),
            "diffsort": network,
        }
        reps = args.repeats if n < 64 else max(5, args.repeats // 3)
        medians, ratios = paired(engines, lambda n=n: (torch.randn(100, n, generator=gen),), reps)
        met = "met" if ratios["diffsort"] >= 5.0 else "NOT MET"
        print(
            f"  n = {n:>2}: kernel {medians['kernel']:7.2f}  torch {medians['torch']:7.2f}  "
            f"diffsort {medians['diffsort']:7.2f}  torch/kernel {ratios['torch']:5.1f}  "
            f"diffsort/kernel {ratios['diffsort']:5.1f}"
            + (f"  (target >= 5: {met})" if n in (32, 64) else ""),
            flush=True,
        )


def section_shortest_path(args, gen):
    print("\n5. shortest paths, batch 100, float32, 1 thread (forward + backward, ms)")
    repeats = max(5, args.repeats // 3)

    def grid(size, rounds):
        return lambda: ((torch.rand(100, size, size, generator=gen) * 4).round() + 0.5, rounds)

    cases = [(f"grid {s}x{s}, {r or s * s - 1} sweeps", grid(s, r)) for s, r in ((4, 0), (6, 6))]
    against_torch(shortest_path, cases, repeats)

    def graph(n):
        return lambda: (3 * torch.rand(100, n, n, generator=gen),)

    against_torch(dijkstra, [(f"Dijkstra, {n} vertices", graph(n)) for n in (8, 16)], repeats)
    print("  the examples outside the kernel's subset (backend='auto' runs the torch backend):")
    for fn in (binary_search, count_positive):
        why = "in the subset" if fn.kernel_program() is not None else fn.kernel_reason
        print(f"    {fn.__wrapped__.__name__}: {why}")


_JIT_PROBE = """
import time, torch
start = time.perf_counter()
from avcompile import relax
from src_examples.bubble_sort import bubble_sort
m = relax(bubble_sort.__wrapped__, beta=5.0, backend="kernel")
x = torch.randn(8, 16, requires_grad=True)
a, l = m(x)
(a.sum() + l.sum()).backward()
print(time.perf_counter() - start)
"""


def section_memory_and_jit(args):
    print("\n6. tape memory and JIT time")
    module = relax(bubble_sort.__wrapped__, beta=5.0, backend="kernel")
    for n in args.sizes:
        x = torch.randn(100, n, requires_grad=True)
        array, loss = module(x)
        (array.sum() + loss.sum()).backward()
        bytes_ = module.kernel_program().peak_tape_bytes
        print(f"  peak tape per example, bubble sort n = {n:>2}, float32: {bytes_ / 1024:8.1f} KiB")
    with tempfile.TemporaryDirectory() as cache:
        env = dict(os.environ, AVCOMPILE_CACHE=cache)
        runs = [
            float(
                subprocess.run(
                    [sys.executable, "-c", _JIT_PROBE],
                    env=env,
                    capture_output=True,
                    text=True,
                    check=True,
                ).stdout.split()[-1]
            )
            for _ in range(2)
        ]
    print(
        f"  a new process, import + compile + first forward and backward: {runs[0]:.2f} s; "
        f"again in another new process, from the disk cache: {runs[1]:.2f} s"
    )


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--sizes", type=int, nargs="+", default=[8, 16, 32, 64])
    p.add_argument("--repeats", type=int, default=15)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--quick", action="store_true", help="sizes 8 and 16, 5 repeats")
    p.add_argument(
        "--sections", type=int, nargs="+", default=[1, 2, 3, 4, 5, 6], help="which to run (1-6)"
    )
    args = p.parse_args()
    if args.quick:
        args.sizes, args.repeats = [8, 16], 5
    torch.set_num_threads(args.threads)
    warnings.filterwarnings("ignore", module="algovision")
    gen = torch.Generator().manual_seed(args.seed)
    print(f"kernel backend benchmark, torch {torch.__version__}, {args.threads} thread(s)")
    sections = (
        section_bubble,
        section_large,
        section_levenshtein,
        section_odd_even,
        section_shortest_path,
        lambda args, gen: section_memory_and_jit(args),
    )
    for number in args.sections:
        sections[number - 1](args, gen)


if __name__ == "__main__":
    main()

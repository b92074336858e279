"""AlgoVision's bubble sort, one program text, run by ``avcompile.dsl`` and by AlgoVision, on CPU.

Run ``python -m benchmarks.dsl_bubble_sort`` (about 2 minutes) or add ``--quick`` for a smoke test.

What is measured. The bubble sort of AlgoVision's README (Var a, b, swapped, loss; VarInt n;
While / For / If; beta=5) is written once, as a function of the module its instructions come from,
and built twice: with ``avcompile.dsl`` (one import changed) and with ``algovision``. For each
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

import argparse
import json
import statistics
import time
import warnings

import algovision
import torch

import avcompile.dsl

TARGETS = {32: 5.0, 64: 6.0}  # minimal ratio AlgoVision / avcompile at these n
TOL32 = (1e-4, 1e-4, 1e-3)  # allowed |Δ| / max(1, largest |value|): array, loss, gradient
TOL64 = 1e-9


def bubble_sort(m, epsilon=1e-5):
    """AlgoVision's README bubble sort, with its instructions taken from module ``m``."""
    return m.Algorithm(
        m.Input('array'),
        m.Var('a', torch.tensor(0.)),
        m.Var('b', torch.tensor(0.)),
        m.Var('swapped', torch.tensor(1.)),
        m.Var('loss', torch.tensor(0.)),
        m.VarInt('n', lambda array: array.shape[1] - 1),
        m.While(m.IsTrue('swapped'),
                m.Let('swapped', 0),
                m.For('i', 'n',
                      m.Let('a', 'array', ['i']),
                      m.Let('b', 'array', [lambda i: i + 1]),
                      m.If(m.GT('a', 'b'),
                           if_true=[
                               m.Let('array', [lambda i: i + 1], 'a'),
                               m.Let('array', ['i'], 'b'),
                               m.Let('swapped', 1.),
                               m.Let('loss', lambda loss: loss + 1.),
                           ])),
                m.LetInt('n', lambda n: n - 1)),
        m.Output('array'),
        m.Output('loss'),
        beta=5,
        epsilon=epsilon,
    )


def run(fn, x):
    """Seconds for one forward + backward, and the sorted array, loss and gradient of x."""
    x = x.detach().clone().requires_grad_()
    start = time.perf_counter()
    array, loss = fn(x)
    (array.sum() + loss.sum()).backward()
    return time.perf_counter() - start, (array.detach(), loss.detach(), x.grad)


def diff(a, b, tol):
    """Largest |a - b| of (array, loss, gradient), and whether each is within tol of its scale."""
    d = [(u - v.to(u.dtype)).abs().max().item() for u, v in zip(a, b)]
    return d, all(e <= t * max(1.0, v.abs().max().item()) for e, v, t in zip(d, b, tol))


def summary(seconds):
    ms = sorted(1e3 * s for s in seconds)
    q1, median, q3 = statistics.quantiles(ms, n=4, method="inclusive")
    return median, q3 - q1


def bench_size(n, engines, strict, args, gen):
    """Time both engines at length n and compare their outputs."""
    ours, theirs = engines
    x = torch.randn(args.batch, n, generator=gen)
    (t_ours, out_ours), (t_theirs, out_theirs) = run(ours, x), run(theirs, x)  # warm-up, check
    x64 = x.double()
    strict_diff = diff(run(strict[0], x64)[1], run(strict[1], x64)[1], (TOL64,) * 3)
    reps = max(5, min(args.repeats, int(args.budget / (t_ours + t_theirs))))
    times = {"avcompile": [], "algovision": []}
    for r in range(reps):
        x = torch.randn(args.batch, n, generator=gen)
        order = [("avcompile", ours), ("algovision", theirs)][:: 1 if r % 2 else -1]
        for name, fn in order:
            times[name].append(run(fn, x)[0])
    (ours_ms, ours_iqr), (theirs_ms, theirs_iqr) = summary(times["avcompile"]), \
        summary(times["algovision"])
    (d_array, d_loss, d_grad), ok = diff(out_ours, out_theirs, TOL32)
    ratio = statistics.median(a / c for c, a in zip(times["avcompile"], times["algovision"]))
    return {"n": n, "repeats": reps, "avcompile_ms": ours_ms, "avcompile_iqr_ms": ours_iqr,
            "algovision_ms": theirs_ms, "algovision_iqr_ms": theirs_iqr, "ratio": ratio,
            "diff_array": d_array, "diff_loss": d_loss, "diff_grad": d_grad,
            "strict_diff": max(strict_diff[0]), "ok": ok and strict_diff[1]}


def build_ms(count):
    """Median milliseconds of building the bubble sort ``Algorithm`` with ``avcompile.dsl``."""
    seconds = []
    for _ in range(count + 1):  # the first build is a warm-up
        start = time.perf_counter()
        bubble_sort(avcompile.dsl)
        seconds.append(time.perf_counter() - start)
    return 1e3 * statistics.median(seconds[1:])


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--sizes", type=int, nargs="+", default=[8, 16, 32, 64])
    p.add_argument("--batch", type=int, default=100)
    p.add_argument("--repeats", type=int, default=21, help="timed repeats per size (>= 5)")
    p.add_argument("--budget", type=float, default=60.0, help="seconds of timed runs per size")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--quick", action="store_true", help="sizes 8 and 16, 5 repeats")
    p.add_argument("--json", metavar="PATH", help="also write the results to PATH")
    args = p.parse_args()
    if args.quick:
        args.sizes, args.repeats = [8, 16], 5
    torch.set_num_threads(args.threads)
    warnings.filterwarnings("ignore", module="algovision")  # its deprecated list indexing
    gen = torch.Generator().manual_seed(args.seed)
    print(f"AlgoVision's bubble sort through avcompile.dsl and through AlgoVision, beta=5, "
          f"batch {args.batch}, float32, CPU, {torch.get_num_threads()} thread(s), "
          f"torch {torch.__version__}")
    print("Δ: max |avcompile - AlgoVision| on the same x, eps=1e-5 as timed; strict: largest Δ "
          "in float64 with\n   epsilon=1e-12 in both; check: ok if every Δ / max(1, largest "
          "|value|) is below 1e-4 (array, loss),\n   1e-3 (gradient) in float32 and below "
          f"{TOL64:g} in float64\n")

    engines = bubble_sort(avcompile.dsl), bubble_sort(algovision)
    strict = bubble_sort(avcompile.dsl, 1e-12), bubble_sort(algovision, 1e-12)
    print(f"{'n':>4} {'reps':>4} {'avcompile ms':>16} {'AlgoVision ms':>18} {'ratio':>6} "
          f"{'Δarray':>8} {'Δloss':>8} {'Δgrad':>8} {'strict':>8}  check")
    rows = []
    for n in args.sizes:
        r = bench_size(n, engines, strict, args, gen)
        rows.append(r)
        print(f"{n:>4} {r['repeats']:>4} {r['avcompile_ms']:>8.2f} [{r['avcompile_iqr_ms']:>5.2f}] "
              f"{r['algovision_ms']:>9.1f} [{r['algovision_iqr_ms']:>6.1f}] {r['ratio']:>6.1f} "
              f"{r['diff_array']:>8.1e} {r['diff_loss']:>8.1e} {r['diff_grad']:>8.1e} "
              f"{r['strict_diff']:>8.1e}  {'ok' if r['ok'] else 'MISMATCH'}", flush=True)

    build = build_ms(3 if args.quick else 10)
    print(f"\nbuild: Algorithm(...) with avcompile.dsl takes {build:.1f} ms (median)\ntargets:")
    ratios = {r["n"]: r["ratio"] for r in rows}
    targets = [{"target": f"ratio >= {t:g} at n = {n}", "value": ratios.get(n),
                "met": ratios[n] >= t if n in ratios else None} for n, t in TARGETS.items()]
    for t in targets:
        met = {True: "met", False: "NOT MET", None: "not measured"}[t["met"]]
        value = "" if t["value"] is None else f"{t['value']:.1f}"
        print(f"  {t['target']:<22} {value:>6}  {met}")
    if args.json:
        config = {k: v for k, v in vars(args).items() if k != "json"}
        config["torch"] = torch.__version__
        with open(args.json, "w") as f:
            json.dump({"config": config, "rows": rows, "build_ms": build, "targets": targets},
                      f, indent=2)
        print(f"results written to {args.json}")


if __name__ == "__main__":
    main()

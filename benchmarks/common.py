"""Shared pieces of the benchmarks: AlgoVision's bubble sort and the paired timing of two engines.

``algovision_bubble_sort(m)`` builds the bubble sort of AlgoVision's README with the instructions
of module ``m`` (``algovision`` or ``avcompile.dsl``). The rest serves ``benchmarks.bubble_sort``
and ``benchmarks.dsl_bubble_sort``, which both time an avcompile module against an AlgoVision one
on the same inputs: ``setup`` parses their common options, ``compare_sizes`` times and compares
the two engines at every length and prints the table, ``report_targets`` prints the targets and
``write_json`` saves the results.
"""

import argparse
import json
import statistics
import time
import warnings

import torch

TARGETS = {32: 5.0, 64: 6.0}  # minimal ratio AlgoVision / avcompile at these n
TOL32 = (1e-4, 1e-4, 1e-3)  # allowed |Δ| / max(1, largest |value|): array, loss, gradient
TOL64 = 1e-9


def algovision_bubble_sort(m, *, beta=5.0, epsilon=1e-5, device=None, **options):
    """AlgoVision's README bubble sort, with its instructions taken from module ``m``.

    It returns the sorted array and the (expected) number of swaps. ``epsilon`` ends the ``While``
    (and, in AlgoVision, skips an ``If`` body of at most that probability); ``device`` is that of
    the variables' initial values; ``options`` (``hard``, ``max_iter``, ...) go to ``Algorithm``.

    Example::

        import avcompile.dsl
        array, swaps = algovision_bubble_sort(avcompile.dsl)(torch.tensor([[3.0, 1.0, 2.0]]))
    """

    def tensor(value):
        return torch.tensor(value, device=device)

    return m.Algorithm(
        m.Input('array'),
        m.Var('a', tensor(0.)),
        m.Var('b', tensor(0.)),
        m.Var('swapped', tensor(1.)),
        m.Var('loss', tensor(0.)),
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
        beta=beta,
        epsilon=epsilon,
        **options,
    )


def algovision_selection_sort(m, *, beta=5.0, epsilon=1e-5, branch_epsilon=None, **options):
    """Textbook selection sort as AlgoVision can write it, with the instructions of module ``m``.

    AlgoVision has no relaxed position: the user keeps the weights ``w`` of the minimum's position
    over the array by hand (a one-hot row, blended by each ``If``) and writes through them with
    its weighted left-hand write, ``Let('a', ['w'], 'ai')``. ``branch_epsilon``: AlgoVision skips
    an ``If`` branch whose probability is at most this in every example (its ``epsilon`` unless
    given).

    Example::

        import algovision
        sorted_a = algovision_selection_sort(algovision)(torch.tensor([[3.0, 1.0, 2.0]]))
    """

    def one_hot(a, k):
        return torch.nn.functional.one_hot(torch.tensor(k), a.shape[1]).to(a.dtype).expand_as(a)

    branch = {} if branch_epsilon is None else {"epsilon": branch_epsilon}
    return m.Algorithm(
        m.Input("a"),
        m.Var("w", lambda a: torch.zeros_like(a[0])),
        m.Var("am", torch.tensor(0.0)),
        m.Var("ai", torch.tensor(0.0)),
        m.For(
            "i",
            lambda a: a.shape[1] - 1,
            m.Let("w", lambda a, i: one_hot(a, i)),
            m.Let("am", "a", ["i"]),
            m.For(
                "j",
                lambda a, i: range(i + 1, a.shape[1]),
                m.If(
                    m.LT(lambda a, j: a[:, j], "am"),
                    if_true=[m.Let("w", lambda a, j: one_hot(a, j)), m.Let("am", "a", ["j"])],
                    **branch,
                ),
            ),
            m.Let("ai", "a", ["i"]),
            m.Let("a", ["i"], "am"),
            m.Let("a", ["w"], "ai"),
        ),
        m.Output("a"),
        beta=beta,
        epsilon=epsilon,
        **options,
    )


# ---------------------------------------------------------------------------------------------
# Timing and comparing two engines


def setup(doc):
    """Parse the options of a timing benchmark whose module docstring is ``doc``; set torch's
    threads, silence AlgoVision's warnings. Returns the options and the generator of the inputs."""
    p = argparse.ArgumentParser(description=doc.split("\n")[0])
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
    return args, torch.Generator().manual_seed(args.seed)


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
    """Median and interquartile range, in milliseconds, of ``seconds``."""
    ms = sorted(1e3 * s for s in seconds)
    q1, median, q3 = statistics.quantiles(ms, n=4, method="inclusive")
    return median, q3 - q1


def median_ms(fn, count, prepare=tuple):
    """Median milliseconds of ``fn(*prepare())`` over ``count`` calls after one warm-up call;
    ``prepare`` runs untimed before each call."""
    seconds = []
    for _ in range(count + 1):  # the first call is a warm-up
        arguments = prepare()
        start = time.perf_counter()
        fn(*arguments)
        seconds.append(time.perf_counter() - start)
    return 1e3 * statistics.median(seconds[1:])


def bench_size(n, engines, strict, args, gen):
    """Time both engines (avcompile's, AlgoVision's) at length n and compare their outputs;
    ``strict`` holds the two engines built for the float64 comparison."""
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


def compare_sizes(engines, strict, args, gen):
    """``bench_size`` at every length of ``args.sizes``, printed as a table; returns the rows."""
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
    return rows


def report_targets(rows, extra=()):
    """Print the ratio targets of ``TARGETS``, then the ``extra`` ones; returns them all."""
    ratios = {r["n"]: r["ratio"] for r in rows}
    targets = [{"target": f"ratio >= {t:g} at n = {n}", "value": ratios.get(n),
                "met": ratios[n] >= t if n in ratios else None} for n, t in TARGETS.items()]
    targets.extend(extra)
    for t in targets:
        met = {True: "met", False: "NOT MET", None: "not measured"}[t["met"]]
        value = "" if t["value"] is None else f"{t['value']:.1f}"
        print(f"  {t['target']:<22} {value:>6}  {met}")
    return targets


def write_json(args, **results):
    """Write the options (with torch's version) and ``results`` to ``args.json`` if it is set."""
    if not args.json:
        return
    config = {k: v for k, v in vars(args).items() if k != "json"}
    config["torch"] = torch.__version__
    with open(args.json, "w") as f:
        json.dump({"config": config, **results}, f, indent=2)
    print(f"results written to {args.json}")

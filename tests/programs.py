"""Conformance programs: each written once as plain Python and once in AlgoVision's DSL.

Every entry of ``PROGRAMS`` holds

- ``fn``: a plain function written for one example, in avcompile's subset. It must run unchanged
  under CPython on one example given as Python floats / lists of floats / lists of lists;
- ``algorithm(beta, eps, max_iter)``: the same algorithm as an AlgoVision ``Algorithm``. Every
  ``If`` gets ``epsilon=BRANCH_EPSILON`` so that AlgoVision skips no branch (avcompile never
  does); ``eps`` and ``max_iter`` govern ``While`` and must equal those given to ``relax``;
- ``args``: one ``(name, shape)`` per argument, the shape of one example (``"n"`` stands for the
  program's length, drawn from ``n_range``), and the value range of random inputs;
- ``outputs``: the names of ``fn``'s returned values, in the order ``fn`` returns them; they are
  the names of the ``Algorithm``'s ``Output``s, which may come in another order.

The helpers at the bottom build batched inputs and convert between the module's batched world and
plain Python's single examples. Only avcompile's public API is used by the tests that read this.
"""

import dataclasses
import math
from typing import Callable, Optional

import torch
from algovision import (
    GT,
    LT,
    Algorithm,
    Eq,
    For,
    If,
    Input,
    IsTrue,
    Let,
    LetInt,
    Min,
    NEq,
    Output,
    Var,
    VarInt,
    While,
)
from algovision.core import Condition

from benchmarks.common import algovision_selection_sort
from src_examples.binary_search import binary_search as _example_binary_search
from src_examples.bubble_sort import bubble_sort as _example_bubble_sort
from src_examples.dijkstra import dijkstra as _dijkstra_example
from src_examples.insertion_sort import insertion_sort as _example_insertion_sort
from src_examples.selection_sort import selection_sort as _example_selection_sort

# AlgoVision skips an `If` branch whose probability is below this for the whole batch.
BRANCH_EPSILON = 1e-12


def _if(condition, then=None, orelse=None):
    """An AlgoVision ``If`` that never skips a branch in practice."""
    return If(condition, if_true=then, if_false=orelse, epsilon=BRANCH_EPSILON)


class _Not(Condition):
    """``not c`` for an AlgoVision condition ``c``: 1 - c (keeps ``c``'s beta so ``|`` works)."""

    def __init__(self, condition):
        super().__init__(left=condition, right=None, beta=condition.beta)

    def __call__(self, state):
        return 1.0 - self.left(state)


def x_i(x, i):
    """Element ``i`` of every example of the state variable ``x`` (an AlgoVision lambda)."""
    return x[:, i]


# --------------------------------------------------------------------------------------------
# 1. Bubble sort (SEMANTICS section 1): the sorted array and the (expected) number of swaps.


# The plain function of src_examples/bubble_sort.py, which is SEMANTICS 1's program word for word.
bubble_sort = _example_bubble_sort.__wrapped__


def bubble_sort_av(beta, eps=1e-5, max_iter=1024):
    return Algorithm(
        Input("array"),
        Var("a", lambda array: array.new_zeros(())),
        Var("b", lambda array: array.new_zeros(())),
        Var("swapped", lambda array: array.new_ones(())),
        Var("loss", lambda array: array.new_zeros(())),
        VarInt("n", lambda array: array.shape[1]),
        While(
            IsTrue("swapped"),
            Let("swapped", 0.0),
            For(
                "i",
                lambda n: n - 1,
                Let("a", "array", ["i"]),
                Let("b", "array", [lambda i: i + 1]),
                _if(
                    GT("a", "b"),
                    [
                        Let("array", ["i"], "b"),
                        Let("array", [lambda i: i + 1], "a"),
                        Let("swapped", 1.0),
                        Let("loss", lambda loss: loss + 1),
                    ],
                ),
            ),
            LetInt("n", lambda n: n - 1),
        ),
        Output("array"),
        Output("loss"),
        beta=beta,
        epsilon=eps,
        max_iter=max_iter,
    )


# --------------------------------------------------------------------------------------------
# 2. Running maximum with a relaxed `if` inside a hard `for`.


def running_max(x):
    m = x[0]
    for i in range(1, len(x)):
        if x[i] > m:  # noqa: PLR1730 (the relaxed `if` is the point)
            m = x[i]
    return m


def running_max_av(beta, eps=1e-5, max_iter=1024):
    return Algorithm(
        Input("x"),
        Var("m", lambda x: x.new_zeros(())),
        Let("m", "x", [0]),
        For("i", lambda x: range(1, x.shape[1]), _if(GT(x_i, "m"), Let("m", "x", ["i"]))),
        Output("m"),
        beta=beta,
        epsilon=eps,
        max_iter=max_iter,
    )


# --------------------------------------------------------------------------------------------
# 3. if / elif / else on a per-example scalar; `y` is assigned in every branch only.


def piecewise(x):
    if x < -1.0:
        y = -2.0 * x
    elif x < 1.0:
        y = x * x
    else:
        y = 3.0
    return y


def piecewise_av(beta, eps=1e-5, max_iter=1024):
    return Algorithm(
        Input("x"),
        Var("y", lambda x: x.new_zeros(())),
        _if(
            LT("x", -1.0),
            Let("y", lambda x: -2.0 * x),
            _if(LT("x", 1.0), Let("y", lambda x: x * x), Let("y", 3.0)),
        ),
        Output("y"),
        beta=beta,
        epsilon=eps,
        max_iter=max_iter,
    )


# --------------------------------------------------------------------------------------------
# 4. A relaxed `while` counting the steps from x up to 5.


def while_counter(x):
    count = 0.0
    while x < 5:
        x = x + 1
        count = count + 1
    return count, x


def while_counter_av(beta, eps=1e-5, max_iter=1024):
    return Algorithm(
        Input("x"),
        Var("count", lambda x: x.new_zeros(())),
        While(LT("x", 5.0), Let("x", lambda x: x + 1), Let("count", lambda count: count + 1)),
        Output("count"),
        Output("x"),
        beta=beta,
        epsilon=eps,
        max_iter=max_iter,
    )


# --------------------------------------------------------------------------------------------
# 5. A relaxed `while` whose condition depends on two variables that both change.


def while_two_vars(a, b):
    steps = 0.0
    while a < b:
        a = a + 1.0
        b = b - 0.5 * a
        steps = steps + 1.0
    return a, b, steps


def while_two_vars_av(beta, eps=1e-5, max_iter=1024):
    # Outputs in another order than `fn` returns them, to exercise the mapping by name.
    return Algorithm(
        Input("a"),
        Input("b"),
        Var("steps", lambda a: a.new_zeros(())),
        While(
            LT("a", "b"),
            Let("a", lambda a: a + 1.0),
            Let("b", lambda a, b: b - 0.5 * a),
            Let("steps", lambda steps: steps + 1.0),
        ),
        Output("steps"),
        Output("a"),
        Output("b"),
        beta=beta,
        epsilon=eps,
        max_iter=max_iter,
    )


# --------------------------------------------------------------------------------------------
# 6. `and`, `or`, `not` on relaxed comparisons.


def logic(x, y):
    z = 0.0
    if x > 0.0 and y > 0.0:
        z = z + 1.0
    if x < -1.0 or not y < 1.0:
        z = z + 2.0
    if not x > y:
        z = z * 3.0
    return z


def logic_av(beta, eps=1e-5, max_iter=1024):
    return Algorithm(
        Input("x"),
        Input("y"),
        Var("z", lambda x: x.new_zeros(())),
        _if(GT("x", 0.0, beta=beta) & GT("y", 0.0, beta=beta), Let("z", lambda z: z + 1.0)),
        _if(LT("x", -1.0, beta=beta) | _Not(LT("y", 1.0, beta=beta)), Let("z", lambda z: z + 2.0)),
        _if(_Not(GT("x", "y", beta=beta)), Let("z", lambda z: z * 3.0)),
        Output("z"),
        beta=beta,
        epsilon=eps,
        max_iter=max_iter,
    )


# --------------------------------------------------------------------------------------------
# 7. Odd-even transposition sort: n rounds of compare-exchange on alternating pairs.


def odd_even_sort(x):
    n = len(x)
    for r in range(n):
        for i in range(r % 2, n - 1, 2):
            if x[i] > x[i + 1]:
                x[i], x[i + 1] = x[i + 1], x[i]
    return x


def odd_even_sort_av(beta, eps=1e-5, max_iter=1024):
    return Algorithm(
        Input("x"),
        Var("a", lambda x: x.new_zeros(())),
        Var("b", lambda x: x.new_zeros(())),
        For(
            "r",
            lambda x: x.shape[1],
            For(
                "i",
                lambda x, r: range(r % 2, x.shape[1] - 1, 2),
                Let("a", "x", ["i"]),
                Let("b", "x", [lambda i: i + 1]),
                _if(GT("a", "b"), [Let("x", ["i"], "b"), Let("x", [lambda i: i + 1], "a")]),
            ),
        ),
        Output("x"),
        beta=beta,
        epsilon=eps,
        max_iter=max_iter,
    )


# --------------------------------------------------------------------------------------------
# 8. Counting with `==` and `!=` against a per-example target.


def count_matches(x, t):
    same = 0.0
    other = 0.0
    for i in range(len(x)):
        if x[i] == t:
            same = same + 1.0
        if x[i] != t:
            other = other + 1.0
    return same, other


def count_matches_av(beta, eps=1e-5, max_iter=1024):
    return Algorithm(
        Input("x"),
        Input("t"),
        Var("same", lambda t: t.new_zeros(())),
        Var("other", lambda t: t.new_zeros(())),
        For(
            "i",
            lambda x: x.shape[1],
            _if(Eq(x_i, "t"), Let("same", lambda same: same + 1.0)),
            _if(NEq(x_i, "t"), Let("other", lambda other: other + 1.0)),
        ),
        Output("same"),
        Output("other"),
        beta=beta,
        epsilon=eps,
        max_iter=max_iter,
    )


# --------------------------------------------------------------------------------------------
# 9. Bellman-Ford from node 0 on a dense, non-negative weight matrix (one example is [n, n]).


def bellman_ford(w):
    n = len(w)
    d = w[0][:]
    d[0] = 0.0
    for k in range(n - 1):  # noqa: B007 (the plain algorithm: n - 1 rounds)
        for u in range(n):
            for v in range(n):
                if d[u] + w[u][v] < d[v]:  # noqa: PLR1730
                    d[v] = d[u] + w[u][v]
    return d


def bellman_ford_av(beta, eps=1e-5, max_iter=1024):
    return Algorithm(
        Input("w"),
        Var("d", lambda w: w.new_zeros(w.shape[1])),
        Let("d", lambda w: w[:, 0, :]),
        Let("d", [0], 0.0),
        For(
            "k",
            lambda w: w.shape[1] - 1,
            For(
                "u",
                lambda w: w.shape[1],
                For(
                    "v",
                    lambda w: w.shape[1],
                    _if(
                        LT(lambda d, w, u, v: d[:, u] + w[:, u, v], lambda d, v: d[:, v]),
                        Let("d", ["v"], lambda d, w, u, v: d[:, u] + w[:, u, v]),
                    ),
                ),
            ),
        ),
        Output("d"),
        beta=beta,
        epsilon=eps,
        max_iter=max_iter,
    )


# --------------------------------------------------------------------------------------------
# 10. Soft minimum of three per-example scalars.


def soft_min3(a, b, c):
    return min(a, b, c)


def soft_min3_av(beta, eps=1e-5, max_iter=1024):
    soft_min = Min(beta)
    return Algorithm(
        Input("a"),
        Input("b"),
        Input("c"),
        Var("m", lambda a: a.new_zeros(())),
        Let("m", lambda a, b, c: soft_min(a, b, c)),
        Output("m"),
        beta=beta,
        epsilon=eps,
        max_iter=max_iter,
    )


# --------------------------------------------------------------------------------------------
# 11. A conditional expression `a if c else b`.


def select(x, y):
    z = x - y if x > y else y * 0.5
    return z


def select_av(beta, eps=1e-5, max_iter=1024):
    return Algorithm(
        Input("x"),
        Input("y"),
        Var("z", lambda x: x.new_zeros(())),
        _if(GT("x", "y"), Let("z", lambda x, y: x - y), Let("z", lambda y: y * 0.5)),
        Output("z"),
        beta=beta,
        epsilon=eps,
        max_iter=max_iter,
    )


# --------------------------------------------------------------------------------------------
# 12. `for v in x` over the example's elements with an augmented assignment.


def sum_positive(x):
    total = 0.0
    for v in x:
        if v > 0.0:
            total += v
    return total


def sum_positive_av(beta, eps=1e-5, max_iter=1024):
    return Algorithm(
        Input("x"),
        Var("total", lambda x: x.new_zeros(())),
        For(
            "i",
            lambda x: x.shape[1],
            _if(GT(x_i, 0.0), Let("total", lambda total, x, i: total + x[:, i])),
        ),
        Output("total"),
        beta=beta,
        epsilon=eps,
        max_iter=max_iter,
    )


# --------------------------------------------------------------------------------------------
# 13. A chained comparison `-1 < x[i] < 1` and `abs`.


def band_abs(x):
    total = 0.0
    for i in range(len(x)):
        if -1.0 < x[i] < 1.0:
            total = total + abs(x[i])
    return total


def band_abs_av(beta, eps=1e-5, max_iter=1024):
    inside = LT(-1.0, x_i, beta=beta) & LT(x_i, 1.0, beta=beta)
    return Algorithm(
        Input("x"),
        Var("total", lambda x: x.new_zeros(())),
        For(
            "i",
            lambda x: x.shape[1],
            _if(inside, Let("total", lambda total, x, i: total + x[:, i].abs())),
        ),
        Output("total"),
        beta=beta,
        epsilon=eps,
        max_iter=max_iter,
    )


# --------------------------------------------------------------------------------------------
# 14. A relaxed `if` nested in a relaxed `while`, with a hard loop bound from the shape.


def halve_until_small(x):
    steps = 0.0
    while x[0] > 1.0:
        for i in range(len(x)):
            if x[i] > 0.0:
                x[i] = x[i] * 0.5
        steps = steps + 1.0
    return x, steps


def halve_until_small_av(beta, eps=1e-5, max_iter=1024):
    return Algorithm(
        Input("x"),
        Var("steps", lambda x: x.new_zeros(())),
        While(
            GT(lambda x: x[:, 0], 1.0),
            For(
                "i",
                lambda x: x.shape[1],
                _if(GT(x_i, 0.0), Let("x", ["i"], lambda x, i: x[:, i] * 0.5)),
            ),
            Let("steps", lambda steps: steps + 1.0),
        ),
        Output("x"),
        Output("steps"),
        beta=beta,
        epsilon=eps,
        max_iter=max_iter,
    )


# --------------------------------------------------------------------------------------------
# The registry.


@dataclasses.dataclass(frozen=True, repr=False)
class Program:
    """One conformance program, written both ways. See the module docstring."""

    name: str
    fn: Callable
    algorithm: Optional[Callable[..., Algorithm]]  # None where AlgoVision has no equivalent
    args: tuple[tuple[str, tuple], ...]
    outputs: tuple[str, ...]
    low: float = -3.0
    high: float = 3.0
    n_range: tuple[int, int] = (2, 6)
    # Values that random inputs often take, so that ties and duplicates occur.
    tie_pool: tuple[float, ...] = (-2.0, -1.0, 0.0, 1.0, 2.0)
    # Python runs ``fn`` on each example as float64 tensors rather than lists (`A @ v`, `x.size()`)
    tensors: bool = False
    # Python's result is matched bit for bit; False where torch sums in another order for a batch
    # than for one example (`A @ v`), which moves the last bits only
    exact: bool = True

    def __repr__(self):
        return f"<program {self.name}>"

    def shapes(self, n):
        """The example shape of every argument for length ``n``."""
        return [tuple(n if d == "n" else d for d in shape) for _, shape in self.args]

    def random_inputs(self, batch, n, generator, dtype=torch.float64):
        """Batched inputs uniform in [low, high]."""
        return tuple(
            self.low
            + (self.high - self.low) * torch.rand((batch, *shape), generator=generator, dtype=dtype)
            for shape in self.shapes(n)
        )

    def separated_inputs(self, batch, n, gap, generator, dtype=torch.float64):
        """Batched inputs whose values within one example are distinct grid points of [low, high]
        at least ``gap`` apart, so that no comparison of two inputs is close to a tie."""
        shapes = self.shapes(n)
        sizes = [math.prod(shape) for shape in shapes]
        slots = int((self.high - self.low) / gap)
        assert slots >= sum(sizes), "range too small for this gap"
        rows = []
        for _ in range(batch):
            pick = torch.randperm(slots, generator=generator)[: sum(sizes)]
            rows.append(self.low + gap * (pick.to(dtype) + 0.5))
        flat = torch.stack(rows)
        out, start = [], 0
        for shape, size in zip(shapes, sizes):
            out.append(flat[:, start : start + size].reshape(batch, *shape).clone())
            start += size
        return tuple(out)

    def run_algovision(self, inputs, beta, eps=1e-5, max_iter=1024):
        """AlgoVision's outputs on batched ``inputs``, in the order in which ``fn`` returns them."""
        algorithm = self.algorithm(beta, eps, max_iter)
        values = dict(zip((o.name for o in algorithm.outputs), as_tuple(algorithm(*inputs))))
        assert set(values) == set(self.outputs), (sorted(values), self.outputs)
        return tuple(values[name] for name in self.outputs)


# ------------------------------------------------------------------------------------ beyond
# AlgoVision: programs whose meaning it cannot express (no `algorithm`): hard mode against Python.


def leading_negatives(x):
    """A counter moved by a relaxed `while`, read after it: per example, its expectation."""
    i = 0
    while i < len(x) and x[i] < 0:
        i += 1
    return i


def steps_to_halve(x):
    """A hard counter changed in a relaxed `while`, used in arithmetic after it."""
    w = x[0] * x[0] + 1.0
    k = 0
    while w > 2.0:
        w = w / 2.0
        k = k + 1
    return w, k * 0.5 + 1.0


def running_min_from_inf(x):
    """An infinite sentinel, blended: ``best`` is infinite until the first comparison."""
    best = math.inf
    for i in range(len(x)):
        if x[i] < best:
            best = x[i]
    return best


def dp_table_from_inf(x):
    """A DP table started at infinity with a soft min over its cells (a path over the row)."""
    d = [math.inf] * (len(x) + 1)
    d[0] = 0.0
    for i in range(len(x)):
        d[i + 1] = min(d[i] + x[i], d[i] + 1.0)
        if i > 0:
            d[i + 1] = min(d[i + 1], d[i - 1] + 0.5 * x[i])
    return d[len(x)]


def _mean_of(v):
    return sum(v) / len(v)


def _sign(v):
    if v > 0:
        return 1.0
    return -1.0


def signs_around_mean(x):
    """Module-level helpers, one with a guard-clause `return` under a relaxed condition."""
    m = _mean_of(x)
    s = 0.0
    for i in range(len(x)):
        s = s + _sign(x[i] - m)
    return s, m


def nested_helpers(x):
    """A helper defined inside, with a default, and a lambda, reading the caller's `x`."""

    def clipped(v, bound=1.0):
        if v > bound:
            v = bound
        return v

    half = lambda v: v / 2.0  # noqa: E731
    total = 0.0
    for i in range(len(x)):
        total = total + clipped(half(x[i])) + clipped(x[0], bound=0.5)
    return total


def smaller_counts(x):
    """For each element, how many are smaller: ``x[j] < x[i]`` compares each with itself too."""
    counts = [0.0] * len(x)
    for i in range(len(x)):
        c = 0.0
        for j in range(len(x)):
            if x[j] < x[i]:
                c = c + 1.0
        counts[i] = c
    return counts


def math_and_floor(x):
    """`math` functions on relaxed values (torch's, exact ones here), `//`, a copy by `list`."""
    y = list(x)
    s = 0.0
    for i in range(len(y)):
        s = s + math.floor(y[i] * 2.5) + (y[i] * 3.0) // 2.0
    y[0] = s
    return s + math.fabs(x[0]), y


# Minimal forms of defects a generator of random programs found (issue "No silent wrong answers").


def write_at_bound_in_loop(x):
    """An element write at `n - 1` inside a relaxed `while` under a relaxed `if`."""
    n = len(x)
    s = x[0]
    w = 1.0
    if x[1] > 0:
        while w > 0.5:
            x[n - 1] = s
            w = w / 2.0
    x[min(1, n - 1)] = w
    return x


def numbers_where_values_are_expected(x):
    """Plain numbers assigned where per-example values are expected."""
    n = len(x)
    best = x[0]
    c = 0.0
    if x[1] > 0:
        best, c = 2.0, 3.0
    x[0] = 0.0 if n > 1 else x[1]
    d = 1.0 if best < 0.0 else 1.0
    return best, c, d, x


def hard_increments_in_branches(x):
    """`acc += min(1, 2)` and `acc + len(x)` under a relaxed `if` (fusion of hard increments)."""
    acc = 1.0
    if x[0] > 0:
        acc += min(1, 2)
    if x[1] > 0:
        acc = acc + len(x)
    return acc


def flag_set_in_relaxed_while(x):
    """A 0/1 flag set in a relaxed `while`, then tested for truth."""
    flag = 1.0
    w = x[0] * x[0] + 1.0
    while w > 1.0:
        w = w / 3.0
        flag = 0.0
        if x[1] > 0.3:
            flag = 1.0
    y = 0.0
    if flag:
        y = 1.0
    return y


def chained_hard_comparison(x):
    """`0 < i < len(x) - 1` of hard values."""
    s = 0.0
    for i in range(len(x)):
        if 0 < i < len(x) - 1:
            s = s + x[i]
    return s


# Relaxed integers (SEMANTICS 10): positions assigned under relaxed control, read and written at.
# The examples' textbook sorts and `bisect_left` (`lo`, `hi` moved by a relaxed comparison,
# `(lo + hi) // 2` combining two relaxed integers) are in the registry as they are.
selection_sort_textbook = _example_selection_sort.__wrapped__
insertion_sort_textbook = _example_insertion_sort.__wrapped__
bisect_position = _example_binary_search.__wrapped__


def argmin_to_front(x):
    """The position of the minimum, picked under relaxed ifs, read, swapped to the front."""
    m = 0
    for j in range(1, len(x)):
        if x[j] < x[m]:
            m = j
    smallest = x[m]
    x[0], x[m] = x[m], x[0]
    return x, smallest, m


def selection_sort_textbook_av(beta, eps=1e-5, max_iter=1024):
    import algovision

    return algovision_selection_sort(
        algovision, beta=beta, epsilon=eps, max_iter=max_iter, branch_epsilon=BRANCH_EPSILON
    )


def counted_then_compared(x):
    """A count under relaxed ifs compared, halved and taken modulo 2: read off its distribution."""
    c = 0
    for i in range(len(x)):
        if x[i] > 0:
            c = c + 1
    y = 0.0
    if c > 1:
        y = 1.0
    if c % 2 == 1:
        y = y + 0.5
    return y, c // 2, c


def relaxed_row_and_column(x):
    """A 2-D table read and written at a relaxed row and column (`d[m, j]`, `d[i, m]`)."""
    n = len(x)
    d = torch.zeros(n, n, dtype=torch.float64)
    for i in range(n):
        for j in range(n):
            d[i, j] = x[i] * (j + 1) - x[j]
    m = n - 1
    for j in range(n - 1):
        if x[j] > x[m]:
            m = j
    total = 0.0
    for j in range(n):
        total = total + d[m, j] + d[j, m]
    d[m, 0] = -1.0
    d[0, m] = x[m]
    return total, d[m, 0] + d[0, 0], d[0, m]


def shifted_positions(x):
    """`m - 1`, `m + 1` and `-m` around a relaxed position, in range in Python."""
    n = len(x)
    m = 1
    for j in range(2, n - 1):
        if x[j] > x[m]:
            m = j
    return x[m - 1] + x[m + 1], x[-m], m + 1


def two_positions(x):
    """Two relaxed integers compared with each other and combined."""
    lo = 0
    hi = 0
    for j in range(1, len(x)):
        if x[j] < x[lo]:
            lo = j
        if x[j] >= x[hi]:
            hi = j
    same = 0.0
    if lo == hi:
        same = 1.0
    return x[(lo + hi) // 2], same, lo + hi


def visited_flags(x):
    """A list of literals written at a relaxed position (it was emitted as `read(...) = True`)."""
    visited = [False] * len(x)
    counts = torch.zeros(len(x), dtype=torch.float64)
    m = 0
    for j in range(1, len(x)):
        if x[j] < x[m]:
            m = j
    visited[m] = True
    counts[m] = counts[m] + 1.0
    total = 0.0
    for j in range(len(x)):
        if visited[j]:
            total = total + x[j] + counts[j]
    return total


def best_of_a_table_from_inf(x):
    """A table started at infinity, filled under relaxed ifs and read at a relaxed position (its
    gradient was NaN: entries infinite on both sides of a blend)."""
    d = [math.inf] * len(x)
    if x[0] < d[0]:
        d[0] = x[0]
    if x[1] < d[1]:
        d[1] = x[1]
    m = 0
    if x[1] < x[0]:
        m = 1
    return d[m]


def counter_moved_back(x):
    """A counter a relaxed `while` leaves per example, moved after it under its own name and then
    used as a position and compared (`j == 1` was compiled as a hard comparison, always False)."""
    j = 0
    while j < len(x) - 1 and x[j] > 0.0:
        j += 1
    j = j - 1
    s = 0.0
    if j == 1:
        s = 1.0
    return x[j], s


# Early exits under relaxed control (SEMANTICS 11).


def first_positive(x):
    """A linear search: the loop counter where each example broke is a relaxed integer."""
    for i in range(len(x)):
        if x[i] > 0:
            break
    return x[i], i


def sum_skipping_negatives(x):
    """A relaxed `continue`: the rest of the iteration runs to an extent."""
    s = 0.0
    count = 0.0
    for i in range(len(x)):
        if x[i] < 0:
            continue
        s = s + x[i]
        count = count + 1.0
    return s, count


def guard_clauses(x):
    """Relaxed `return`s: each example's result is the one it returned."""
    if x[0] < -1.0:
        return x[0], 0.0
    if x[0] > 1.0:
        return x[1], 1.0
    y = x[0] * x[1]
    return y, 2.0


def returns_from_a_loop(x):
    for i in range(len(x)):
        if x[i] > 0.5:
            return x[i] * 2.0
    return -1.0


def halve_do_while(x):
    """`while True:` with a relaxed `break` at the end of its body."""
    w = x[0] * x[0] + 1.0
    c = 0.0
    while True:
        w = w / 2.0
        c = c + 1.0
        if w <= 1.0:
            break
    return w, c


def halve_test_first(x):
    """`while True:` with `if not c: break` first: the relaxed `while` written out."""
    w = x[0] * x[0] + 1.0
    c = 0.0
    while True:
        if not w > 1.0:
            break
        w = w / 2.0
        c = c + 1.0
    return w, c


def halve_while(x):
    w = x[0] * x[0] + 1.0
    c = 0.0
    while w > 1.0:
        w = w / 2.0
        c = c + 1.0
    return w, c


def insertion_sort_swaps(a):
    """A hard `while` left by a relaxed `break`: the inner loop of insertion sort by swaps."""
    for i in range(1, len(a)):
        j = i
        while j > 0:
            if a[j - 1] <= a[j]:
                break
            a[j - 1], a[j] = a[j], a[j - 1]
            j = j - 1
    return a


def nested_breaks(x):
    """A `break` leaves the innermost loop only; the outer one goes on."""
    total = 0.0
    for i in range(len(x)):
        for j in range(len(x)):
            if x[j] > x[i]:
                break
            total = total + x[j]
    return total


def break_in_relaxed_while(x):
    """A relaxed `break` inside a relaxed `while`."""
    v = x[0]
    steps = 0.0
    while v < 3.0:
        v = v + 1.0
        steps = steps + 1.0
        if v * v > 5.0:
            break
    return v, steps


# ------------------------------------------------------------------------------------ the Python
# researchers write (comprehensions, generator expressions, recursion, per-example linear algebra,
# hard defaults and sizes, tuples and lists of relaxed values).


def edit_distance_of_lists(x):
    """A DP table built by a comprehension of lists, read and written as `d[i][j]`: the edit
    distance between `x` and `x` reversed."""
    n = len(x)
    d = [[0.0] * (n + 1) for _ in range(n + 1)]
    for i in range(n + 1):
        d[i][0] = float(i)
        d[0][i] = float(i)
    for i in range(1, n + 1):
        for j in range(1, n + 1):
            cost = 0.0 if x[i - 1] == x[n - j] else 1.0
            d[i][j] = min(d[i - 1][j] + 1.0, d[i][j - 1] + 1.0, d[i - 1][j - 1] + cost)
    return d[n][n]


def cheapest_path_from_inf(x):
    """A table started at infinity by a comprehension, filled with `min`: the cheapest monotone
    path through the grid `x[i] * x[j]` shifted to be positive."""
    n = len(x)
    cost = [[math.inf] * n for _ in range(n)]
    cost[0][0] = 0.0
    for i in range(n):
        for j in range(n):
            step = x[i] * x[j] + 10.0
            if i > 0:
                cost[i][j] = min(cost[i][j], cost[i - 1][j] + step)
            if j > 0:
                cost[i][j] = min(cost[i][j], cost[i][j - 1] + step)
    return cost[n - 1][n - 1]


def comprehensions_of_values(x):
    """List comprehensions of relaxed values: scaled, filtered by a hard condition, two `for`s,
    one over a list of the program's own, and their names apart from the function's."""
    i = 100.0
    n = len(x)
    scaled = [x[i] * 2.0 for i in range(n)]
    even = [v for k, v in enumerate(scaled) if k % 2 == 0]
    pairs = [x[i] * x[j] for i in range(n) for j in range(i)]
    clipped = [v if v > 0.0 else 0.0 for v in x]
    return scaled, sum(even), sum(pairs), clipped, x[0] * i


def generator_reductions(x):
    """Generator expressions in `sum`, `min`, `max`, `any` and `all`: sums are sums, `min`/`max`
    soft over the generated values, `any`/`all` relaxed `or`/`and`; a relaxed `if` in a `sum`
    adds each value to the extent it holds."""
    n = len(x)
    weighted = sum(x[i] * (i + 1) for i in range(n))
    positive = sum(x[i] for i in range(n) if x[i] > 0.0)
    best_pair = max(x[i] + x[j] for i in range(n) for j in range(n) if i != j)
    lowest = min(v for v in x)
    some_big = any(v > 1.0 for v in x)
    all_small = all(x[i] < 2.0 for i in range(n))
    started = sum((v * v for v in x), 1.0)
    return weighted, positive, best_pair, lowest, 1.0 * some_big, 1.0 * all_small, started


def per_example_linear_algebra(a, v):
    """`@`, `.T`, `.mT`, `.ndim`, `x.size(0)`, `x.numel()` act on each example, as torch does on
    one example."""
    w = a @ v
    gram = a @ a.T
    skew = a - a.mT
    n = a.size(0)
    total = 0.0
    for i in range(n):
        if w[i] > gram[i, i] * 0.1:
            total = total + skew[i, 0]
    return w, gram, total * a.ndim, float(a.numel()) + v @ v


def sliding_max(x, k=2):
    """A parameter with an `int` default is hard (`k`), `assert` on hard values works as in
    Python, and the windows' maxima are soft."""
    assert len(x) >= k, "shorter than a window"
    if k < 1:
        raise ValueError("k must be positive")
    return [max(x[i : i + k]) for i in range(len(x) - k + 1)]


def _order(a, b):
    """Two values, smaller first (a helper returning a tuple)."""
    if a > b:
        return b, a
    return a, b


def tuples_of_relaxed_values(x):
    """Tuples and lists of relaxed values: packed, unpacked, passed to and returned from a helper,
    iterated with `enumerate`, `zip` and `reversed`."""
    n = len(x)
    pairs = [_order(x[i], x[i + 1]) for i in range(n - 1)]
    spread = 0.0
    for k, (lo, hi) in enumerate(pairs):
        spread = spread + (hi - lo) * (k + 1)
    firsts = [lo for lo, _ in pairs]
    backwards = 0.0
    for v in reversed(x):
        backwards = backwards * 0.5 + v
    dot = 0.0
    for a, b in zip(x, firsts):
        dot = dot + a * b
    head = (x[0], x[n - 1])
    first, last = head
    smaller, larger = pairs[0]
    return spread, backwards, dot, first - last, smaller, larger


def _largest(x, lo, hi):
    """The largest of x[lo:hi], divide and conquer: a soft maximum of soft maxima."""
    if hi - lo == 1:
        return x[lo]
    mid = (lo + hi) // 2
    return max(_largest(x, lo, mid), _largest(x, mid, hi))


def divide_and_conquer_max(x):
    """A recursive helper whose depth depends on the length only: the generated code calls it."""
    return _largest(x, 0, len(x))


def _merge(a, lo, mid, hi):
    """The textbook merge of the sorted runs a[lo:mid] and a[mid:hi], in place: its positions
    `i` and `j` are relaxed integers."""
    left = a[lo:mid]
    right = a[mid:hi]
    i = 0
    j = 0
    for k in range(lo, hi):
        if j >= len(right) or (i < len(left) and left[i] <= right[j]):
            a[k] = left[i]
            i = i + 1
        else:
            a[k] = right[j]
            j = j + 1


def _merge_sort(a, lo, hi):
    """Merge sort on an index range, changing `a` in place as Python does."""
    if hi - lo > 1:
        mid = (lo + hi) // 2
        _merge_sort(a, lo, mid)
        _merge_sort(a, mid, hi)
        _merge(a, lo, mid, hi)


def merge_sort_ranges(a):
    """Merge sort by recursion on index ranges; the list changed in place reaches the caller."""
    _merge_sort(a, 0, len(a))
    return a


def _positive_sum_and_count(x, lo, hi):
    """A recursive helper returning a tuple, with a relaxed `if` at its leaves."""
    if hi - lo == 1:
        if x[lo] > 0.0:
            return x[lo], 1.0
        return 0.0, 0.0
    mid = (lo + hi) // 2
    s1, c1 = _positive_sum_and_count(x, lo, mid)
    s2, c2 = _positive_sum_and_count(x, mid, hi)
    return s1 + s2, c1 + c2


def positive_sum_and_count(x):
    total, count = _positive_sum_and_count(x, 0, len(x))
    return total, count


# Two programs with a comprehension or a generator expression, written in AlgoVision's DSL the
# long way (a `For` with an `If`, the list's values given to `Min` one by one).


def above_threshold(x, t):
    """Generator expressions with a relaxed `if` in `sum`: each value counted to the extent that
    it lies above `t`."""
    above = sum(1.0 for v in x if v > t)
    weight = sum(v for v in x if v > t)
    return above, weight


def above_threshold_av(beta, eps=1e-5, max_iter=1024):
    return Algorithm(
        Input("x"),
        Input("t"),
        Var("above", lambda t: t.new_zeros(())),
        Var("weight", lambda t: t.new_zeros(())),
        For(
            "i",
            lambda x: x.shape[1],
            _if(
                GT(x_i, "t"),
                [
                    Let("above", lambda above: above + 1.0),
                    Let("weight", lambda weight, x, i: weight + x[:, i]),
                ],
            ),
        ),
        Output("above"),
        Output("weight"),
        beta=beta,
        epsilon=eps,
        max_iter=max_iter,
    )


def neighbour_sums(x):
    """A list comprehension, its soft `min`, and `any` of a generator expression over it."""
    sums = [x[i] + x[i + 1] for i in range(len(x) - 1)]
    smallest = min(sums)
    some_large = any(s > 1.0 for s in sums)
    return smallest, 1.0 * some_large


def neighbour_sums_av(beta, eps=1e-5, max_iter=1024):
    soft_min = Min(beta)

    def pair_sum(x, i):
        return x[:, i] + x[:, i + 1]

    return Algorithm(
        Input("x"),
        Var("smallest", lambda x: x.new_zeros(())),
        Var("some_large", lambda x: x.new_zeros(())),
        Let(
            "smallest",
            lambda x: soft_min(*[x[:, i] + x[:, i + 1] for i in range(x.shape[1] - 1)]),
        ),
        For(
            "i",
            lambda x: x.shape[1] - 1,
            _if(
                GT(pair_sum, lambda x: x.new_ones(())),
                Let("some_large", lambda some_large: some_large * 0.0 + 1.0),
            ),
        ),
        Output("smallest"),
        Output("some_large"),
        beta=beta,
        epsilon=eps,
        max_iter=max_iter,
    )


def gaps_to_python(program, betas, n=4, gap=0.3, seed=6):
    """The largest distance of ``program``'s soft outputs from Python's at each beta, on two
    examples of well separated values (no comparison near a tie)."""
    from avcompile import relax

    generator = torch.Generator().manual_seed(seed)
    inputs = program.separated_inputs(2, n, gap, generator, dtype=torch.float64)
    gaps = []
    for beta in betas:
        outputs = as_tuple(relax(program.fn, beta=beta)(*inputs))
        gap_ = 0.0
        for b in range(2):
            for got, want in zip(outputs, run_python(program, inputs, b)):
                gap_ = max(gap_, (got[b] - want).abs().max().item())
        gaps.append(gap_)
    return gaps


def as_tuple(value):
    """A function's result as a tuple of its returned values."""
    return value if isinstance(value, tuple) else (value,)


def example(inputs, b, tensors=False):
    """Example ``b`` of batched inputs as plain Python floats / (nested) lists of floats, or with
    ``tensors`` as float64 tensors."""
    if tensors:
        return [x[b].to(torch.float64).clone() for x in inputs]
    return [x[b].tolist() for x in inputs]


def _float64(value):
    """A value Python returned (a number, a tensor, a nested list of either) as a float64 tensor."""
    if isinstance(value, (list, tuple)):
        return torch.stack([_float64(v) for v in value]) if value else torch.zeros(0)
    return torch.as_tensor(value, dtype=torch.float64).detach().clone()


def run_python(program, inputs, b):
    """``program.fn`` run by plain Python on example ``b``; outputs as float64 tensors."""
    result = as_tuple(program.fn(*example(inputs, b, program.tensors)))
    return tuple(_float64(v) for v in result)


# Dijkstra as textbooks write it (distances started at infinity, the unvisited vertex of least
# distance a relaxed integer read and written at, edges read at its row): the example's.
dijkstra_textbook = _dijkstra_example.__wrapped__


def relaxed_read_among_writes(x):
    """An element at a relaxed position read in a loop that writes its array (the kernel's
    adjoint once recomputed such a read from a later iteration's value)."""
    n = len(x)
    best = [10.0] * n
    best[0] = x[0] * 0.5
    m = -1
    for v in range(n):
        if m == -1 or x[v] < x[m]:
            m = v
    for v in range(n):
        if best[m] + x[v] < best[v]:
            best[v] = best[m] + x[v]
    return best


def _program(name, args, outputs, **kw):
    return Program(name, globals()[name], globals().get(name + "_av"), args, outputs, **kw)


VEC = ("n",)
SCALAR = ()

PROGRAMS = [
    _program("bubble_sort", (("array", VEC),), ("array", "loss")),
    _program("running_max", (("x", VEC),), ("m",)),
    _program("piecewise", (("x", SCALAR),), ("y",)),
    _program("while_counter", (("x", SCALAR),), ("count", "x"), low=-4.0, high=7.0),
    _program(
        "while_two_vars", (("a", SCALAR), ("b", SCALAR)), ("a", "b", "steps"), low=-3.0, high=6.0
    ),
    _program("logic", (("x", SCALAR), ("y", SCALAR)), ("z",)),
    _program("odd_even_sort", (("x", VEC),), ("x",)),
    _program("count_matches", (("x", VEC), ("t", SCALAR)), ("same", "other")),
    _program(
        "bellman_ford",
        (("w", ("n", "n")),),
        ("d",),
        low=0.0,
        high=4.0,
        n_range=(2, 4),
        tie_pool=(0.0, 0.5, 1.0, 2.0),
    ),
    _program("soft_min3", (("a", SCALAR), ("b", SCALAR), ("c", SCALAR)), ("m",)),
    _program("select", (("x", SCALAR), ("y", SCALAR)), ("z",)),
    _program("sum_positive", (("x", VEC),), ("total",)),
    _program("band_abs", (("x", VEC),), ("total",)),
    _program(
        "halve_until_small",
        (("x", VEC),),
        ("x", "steps"),
        low=-2.0,
        high=6.0,
        n_range=(1, 4),
        tie_pool=(-1.0, 0.0, 1.0, 2.0, 4.0),
    ),
]

PROGRAMS += [
    _program("leading_negatives", (("x", VEC),), ("i",), n_range=(1, 5)),
    _program("steps_to_halve", (("x", VEC),), ("w", "half_steps"), low=-8.0, high=8.0),
    _program("running_min_from_inf", (("x", VEC),), ("best",)),
    _program("dp_table_from_inf", (("x", VEC),), ("cost",)),
    _program("signs_around_mean", (("x", VEC),), ("s", "m")),
    _program("nested_helpers", (("x", VEC),), ("total",)),
    _program("smaller_counts", (("x", VEC),), ("counts",)),
    _program("math_and_floor", (("x", VEC),), ("s", "y")),
    _program("write_at_bound_in_loop", (("x", VEC),), ("x",)),
    _program("numbers_where_values_are_expected", (("x", VEC),), ("best", "c", "d", "x")),
    _program("hard_increments_in_branches", (("x", VEC),), ("acc",)),
    _program("flag_set_in_relaxed_while", (("x", VEC),), ("y",), low=-2.0, high=2.0),
    _program("chained_hard_comparison", (("x", VEC),), ("s",)),
    _program("argmin_to_front", (("x", VEC),), ("x", "smallest", "m")),
    _program("selection_sort_textbook", (("a", VEC),), ("a",)),
    _program("insertion_sort_textbook", (("a", VEC),), ("a",)),
    _program("bisect_position", (("a", VEC), ("q", SCALAR)), ("lo",), n_range=(1, 6)),
    _program("counted_then_compared", (("x", VEC),), ("y", "half", "c")),
    _program("relaxed_row_and_column", (("x", VEC),), ("total", "corner", "row0")),
    _program("shifted_positions", (("x", VEC),), ("around", "mirrored", "after"), n_range=(3, 6)),
    _program("two_positions", (("x", VEC),), ("middle", "same", "total")),
    _program("visited_flags", (("x", VEC),), ("total",)),
    _program("best_of_a_table_from_inf", (("x", VEC),), ("best",), n_range=(2, 5)),
    _program("counter_moved_back", (("x", VEC),), ("value", "s")),
    _program("first_positive", (("x", VEC),), ("value", "i")),
    _program("sum_skipping_negatives", (("x", VEC),), ("s", "count")),
    _program("guard_clauses", (("x", VEC),), ("y", "which"), n_range=(2, 4)),
    _program("returns_from_a_loop", (("x", VEC),), ("y",)),
    _program("halve_do_while", (("x", VEC),), ("w", "c"), n_range=(1, 3)),
    _program("halve_test_first", (("x", VEC),), ("w", "c"), n_range=(1, 3)),
    _program("halve_while", (("x", VEC),), ("w", "c"), n_range=(1, 3)),
    _program("insertion_sort_swaps", (("a", VEC),), ("a",)),
    _program("nested_breaks", (("x", VEC),), ("total",)),
    _program("break_in_relaxed_while", (("x", VEC),), ("v", "steps"), n_range=(1, 3)),
    _program("dijkstra_textbook", (("w", ("n", "n")),), ("dist",), low=0.0, high=3.0, tensors=True),
    _program("relaxed_read_among_writes", (("x", VEC),), ("best",)),
]

# The Python researchers write (issue: comprehensions, recursion, per-example linear algebra).
PYTHON_CONSTRUCTS = [
    _program("edit_distance_of_lists", (("x", VEC),), ("distance",), n_range=(1, 5)),
    _program("cheapest_path_from_inf", (("x", VEC),), ("cost",), n_range=(1, 5)),
    _program(
        "comprehensions_of_values",
        (("x", VEC),),
        ("scaled", "even", "pairs", "clipped", "i"),
        n_range=(1, 5),
    ),
    _program(
        "generator_reductions",
        (("x", VEC),),
        ("weighted", "positive", "best_pair", "lowest", "some_big", "all_small", "started"),
    ),
    _program(
        "per_example_linear_algebra",
        (("a", ("n", "n")), ("v", VEC)),
        ("w", "gram", "total", "size"),
        n_range=(1, 4),
        tensors=True,
        exact=False,
    ),
    _program("sliding_max", (("x", VEC),), ("maxima",)),
    _program(
        "tuples_of_relaxed_values",
        (("x", VEC),),
        ("spread", "backwards", "dot", "ends", "smaller", "larger"),
    ),
]
PYTHON_CONSTRUCTS += [
    _program("divide_and_conquer_max", (("x", VEC),), ("m",), n_range=(1, 7)),
    _program("merge_sort_ranges", (("a", VEC),), ("a",), n_range=(1, 7)),
    _program("positive_sum_and_count", (("x", VEC),), ("total", "count"), n_range=(1, 6)),
    _program("above_threshold", (("x", VEC), ("t", SCALAR)), ("above", "weight")),
    _program("neighbour_sums", (("x", VEC),), ("smallest", "some_large")),
]
PROGRAMS += PYTHON_CONSTRUCTS

BY_NAME = {p.name: p for p in PROGRAMS}
# The programs written in AlgoVision's DSL too.
AV_PROGRAMS = [p for p in PROGRAMS if p.algorithm is not None]

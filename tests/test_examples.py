"""The examples of ``src_examples``: hard mode equals a plain reference on random inputs, soft
mode's gradients are finite and nonzero where they should be, and the soft result approaches the
hard one as beta grows."""

import bisect
import math

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from avcompile import relax
from src_examples.binary_search import binary_search
from src_examples.bubble_sort import bubble_sort
from src_examples.count_positive import count_positive
from src_examples.dijkstra import dijkstra
from src_examples.insertion_sort import insertion_sort
from src_examples.integer_sqrt import integer_sqrt
from src_examples.levenshtein import levenshtein
from src_examples.median_filter import median_filter
from src_examples.odd_even_sort import odd_even_sort
from src_examples.selection_sort import selection_sort
from src_examples.shortest_path import MOVES, shortest_path
from src_examples.top_k import top_k

SETTINGS = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def hard(module):
    return relax(module, hard=True, static=module.static)


def at_beta(module, beta):
    return relax(module, beta=beta, static=module.static)


def gaps(fn, inputs, exact, betas):
    """Largest |soft - exact| of ``fn`` relaxed at each beta, per output."""
    out = []
    for beta in betas:
        soft = at_beta(fn, beta)(*inputs)
        soft = soft if isinstance(soft, tuple) else (soft,)
        out.append(max((s - e).abs().max().item() for s, e in zip(soft, exact)))
    return out


def assert_approaches(fn, inputs, exact, betas=(3.0, 30.0, 300.0), tol=1e-2):
    """The soft result gets closer to ``exact`` at every larger beta and ends within ``tol``."""
    exact = exact if isinstance(exact, tuple) else (exact,)
    g = gaps(fn, inputs, exact, betas)
    assert all(a > b for a, b in zip(g, g[1:])), g
    assert g[-1] < tol, g


def separated(batch, n, seed, gap=0.3):
    """Random examples of n distinct values at least ``gap`` apart, in random order."""
    gen = torch.Generator().manual_seed(seed)
    order = torch.rand(batch, n, generator=gen).argsort(-1).double()
    return gap * order + 0.1 * gap * torch.rand(batch, n, generator=gen, dtype=torch.float64)


def finite_nonzero(grad):
    assert grad is not None and torch.isfinite(grad).all()
    assert grad.abs().max() > 1e-3
    return grad


# ---------------------------------------------------------------------------------------------
# bubble sort


def inversions(values):
    return sum(a > b for i, a in enumerate(values) for b in values[i + 1 :])


@SETTINGS
@given(st.lists(st.lists(st.integers(-4, 4), min_size=6, max_size=6), min_size=1, max_size=4))
def test_bubble_sort_hard_is_sorted_and_counts_inversions(rows):
    x = torch.tensor(rows, dtype=torch.float64)  # small integers: ties are frequent
    array, swaps = hard(bubble_sort)(x)
    for row, a, s in zip(rows, array, swaps):
        assert a.tolist() == sorted(row)
        assert s.item() == inversions(row)  # bubble sort swaps each inverted pair once


def test_bubble_sort_soft_gradient_and_limit():
    x = separated(16, 6, seed=0).requires_grad_()
    _, swaps = bubble_sort(x)
    finite_nonzero(torch.autograd.grad(swaps.sum(), x)[0])
    assert_approaches(bubble_sort, (x.detach(),), hard(bubble_sort)(x.detach()))


# ---------------------------------------------------------------------------------------------
# odd-even sort


@SETTINGS
@given(st.lists(st.lists(st.integers(-4, 4), min_size=7, max_size=7), min_size=1, max_size=4))
def test_odd_even_sort_hard_sorts_and_gives_the_permutation(rows):
    x = torch.tensor(rows, dtype=torch.float64)
    array, perm = hard(odd_even_sort)(x)
    for row, a, p in zip(rows, array, perm):
        assert a.tolist() == sorted(row)
        assert sorted(p.sum(0).tolist()) == [1.0] * 7 and sorted(p.sum(1).tolist()) == [1.0] * 7
        assert set(p.flatten().tolist()) == {0.0, 1.0}  # a permutation matrix ...
        assert (p @ torch.tensor(row, dtype=torch.float64)).tolist() == sorted(row)  # ... sorting


def test_odd_even_sort_soft_permutation_is_doubly_stochastic_and_sorts():
    x = separated(16, 7, seed=1).requires_grad_()
    array, perm = odd_even_sort(x)
    ones = torch.ones(16, 7, dtype=torch.float64)
    assert torch.allclose(perm.sum(1), ones) and torch.allclose(perm.sum(2), ones)
    assert (perm >= 0).all()
    assert torch.allclose(perm @ x.unsqueeze(-1), array.unsqueeze(-1))
    target = torch.nn.functional.one_hot(x.argsort(-1), 7).double()
    finite_nonzero(torch.autograd.grad((perm * target).sum(), x)[0])
    assert_approaches(odd_even_sort, (x.detach(),), hard(odd_even_sort)(x.detach()))


# ---------------------------------------------------------------------------------------------
# shortest path


def plain_shortest_path(cost):
    """Bellman-Ford on a grid of 8-neighbours until nothing changes, then the walk back."""
    h, w = len(cost), len(cost[0])
    cells = [(i, j) for i in range(h) for j in range(w)]

    def neighbours(i, j):
        return [(i + di, j + dj) for di, dj in MOVES if 0 <= i + di < h and 0 <= j + dj < w]

    dist = {c: math.inf for c in cells}
    dist[0, 0] = cost[0][0]
    changed = True
    while changed:
        changed = False
        for i, j in cells:
            for a in neighbours(i, j):
                if dist[a] + cost[i][j] < dist[i, j]:
                    dist[i, j] = dist[a] + cost[i][j]
                    changed = True
    path = [[0.0] * w for _ in range(h)]
    here = (h - 1, w - 1)
    path[h - 1][w - 1] = 1.0
    while here != (0, 0):
        here = min(neighbours(*here), key=dist.get)
        path[here[0]][here[1]] = 1.0
    return path, dist[h - 1, w - 1]


def random_grids(batch, h, w, seed):
    gen = torch.Generator().manual_seed(seed)
    return 0.1 + torch.rand(batch, h, w, generator=gen, dtype=torch.float64)


@pytest.mark.parametrize("h, w, seed", [(4, 5, 0), (5, 3, 1), (1, 4, 2), (3, 3, 3)])
def test_shortest_path_hard_equals_plain_bellman_ford(h, w, seed):
    cost = random_grids(6, h, w, seed)
    path, total = hard(shortest_path)(cost)
    for c, p, t in zip(cost.tolist(), path, total):
        ref_path, ref_total = plain_shortest_path(c)
        assert p.tolist() == ref_path
        assert t.item() == pytest.approx(ref_total, abs=1e-12)


def test_shortest_path_soft_gradient_follows_the_path_and_limit():
    cost = random_grids(4, 4, 4, seed=4).requires_grad_()
    path, total = shortest_path(cost)
    assert ((path >= 0) & (path <= 1 + 1e-12)).all()  # a probability, up to rounding
    hard_path, hard_total = hard(shortest_path)(cost.detach())
    # The cost of the path grows with the cost of the cells on it, hardly with the others'.
    grad = finite_nonzero(torch.autograd.grad(total.sum(), cost, retain_graph=True)[0])
    assert (grad[hard_path == 1] > 0.5).all()
    assert (grad[hard_path == 0].abs() < 0.5).all()
    finite_nonzero(torch.autograd.grad((path * hard_path).sum(), cost)[0])
    assert_approaches(
        shortest_path,
        (cost.detach(),),
        (hard_path, hard_total),
        betas=(3.0, 30.0, 1000.0),
        tol=2e-2,
    )


# ---------------------------------------------------------------------------------------------
# Levenshtein


def plain_edit_distance(a, b):
    row = list(range(len(b) + 1))
    for i, x in enumerate(a, 1):
        previous, row[0] = row[0], i
        for j, y in enumerate(b, 1):
            previous, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, previous + (x != y))
    return row[-1]


@SETTINGS
@given(st.integers(1, 6), st.integers(1, 6), st.data())
def test_levenshtein_hard_equals_plain_dp(n, m, data):
    batch = data.draw(st.integers(1, 3))
    a = [data.draw(st.lists(st.integers(0, 3), min_size=n, max_size=n)) for _ in range(batch)]
    b = [data.draw(st.lists(st.integers(0, 3), min_size=m, max_size=m)) for _ in range(batch)]
    dist = hard(levenshtein)(
        torch.tensor(a, dtype=torch.float64), torch.tensor(b, dtype=torch.float64)
    )
    assert dist.tolist() == [plain_edit_distance(x, y) for x, y in zip(a, b)]


def test_levenshtein_soft_gradient_and_limit():
    gen = torch.Generator().manual_seed(5)
    a = torch.randint(0, 4, (16, 6), generator=gen).double()
    b = torch.randint(0, 4, (16, 5), generator=gen).double()
    noisy = (a + 0.1 * torch.randn(a.shape, generator=gen, dtype=torch.float64)).requires_grad_()
    finite_nonzero(torch.autograd.grad(levenshtein(noisy, b).sum(), noisy)[0])
    assert_approaches(levenshtein, (a, b), hard(levenshtein)(a, b))


# ---------------------------------------------------------------------------------------------
# integer square root


def test_integer_sqrt_hard_equals_isqrt():
    x = torch.cat([torch.rand(200, dtype=torch.float64) * 60, torch.arange(0, 50).double()])
    out = hard(integer_sqrt)(x)  # whole numbers included: `<=` holds at perfect squares
    assert out.tolist() == [math.isqrt(math.floor(v)) for v in x.tolist()]


def test_integer_sqrt_soft_gradient_and_limit():
    squares = torch.tensor([1.0, 4.0, 9.0, 16.0], dtype=torch.float64)
    near = (squares + 0.05).requires_grad_()
    far = (squares + torch.tensor([1.5, 2.5, 3.5, 4.5], dtype=torch.float64)).requires_grad_()
    module = relax(integer_sqrt, beta=5)
    assert (finite_nonzero(torch.autograd.grad(module(near).sum(), near)[0]) > 0.5).all()
    assert (torch.autograd.grad(module(far).sum(), far)[0] < 0.1).all()  # flat between squares
    x = torch.tensor([0.4, 2.5, 5.3, 7.9, 12.6, 20.2, 30.0], dtype=torch.float64)
    assert_approaches(integer_sqrt, (x,), hard(integer_sqrt)(x))


# ---------------------------------------------------------------------------------------------
# median filter


@SETTINGS
@given(st.lists(st.lists(st.integers(-3, 3), min_size=8, max_size=8), min_size=1, max_size=4))
def test_median_filter_hard_equals_median_of_three(rows):
    out = hard(median_filter)(torch.tensor(rows, dtype=torch.float64))
    for row, o in zip(rows, out):
        ref = [row[0]] + [sorted(row[i - 1 : i + 2])[1] for i in range(1, 7)] + [row[7]]
        assert o.tolist() == ref


def test_median_filter_soft_gradient_and_limit():
    x = separated(8, 9, seed=2).requires_grad_()
    out = median_filter(x)
    exact = hard(median_filter)(x.detach())
    # Each interior output follows the input that is the median: its weight is the largest.
    for i in range(1, 8):
        grad = finite_nonzero(torch.autograd.grad(out[:, i].sum(), x, retain_graph=True)[0])
        window = x.detach()[:, i - 1 : i + 2]
        median_at = (window == exact[:, i : i + 1]).double().argmax(1) + i - 1
        assert (grad[:, i - 1 : i + 2].argmax(1) + i - 1 == median_at).all()
    assert_approaches(median_filter, (x.detach(),), exact)


# ---------------------------------------------------------------------------------------------
# counting with a network inside


def classifier():
    torch.manual_seed(0)
    return torch.nn.Sequential(
        torch.nn.Linear(3, 8), torch.nn.Tanh(), torch.nn.Linear(8, 1), torch.nn.Flatten(0)
    ).double()


def test_count_positive_hard_equals_plain_count():
    net = classifier()
    items = torch.randn(32, 7, 3, dtype=torch.float64)
    count = hard(count_positive)(items, net)
    with torch.no_grad():
        expected = [sum(float(net(item[None])) > 0 for item in bag) for bag in items]
    assert count.tolist() == expected


def test_count_positive_soft_gradient_reaches_the_network_and_limit():
    net = classifier()
    items = torch.randn(32, 7, 3, dtype=torch.float64)
    count = count_positive(items, net)
    grads = torch.autograd.grad(count.sum(), list(net.parameters()))
    for g in grads:
        finite_nonzero(g)
    with torch.no_grad():
        exact = hard(count_positive)(items, net)
        assert_approaches(count_positive, (items, net), exact, betas=(3.0, 30.0, 3000.0))


# ---------------------------------------------------------------------------------------------
# relaxed positions (SEMANTICS 10): the examples whose positions are relaxed integers. In hard
# mode each must equal the undecorated function (``module.__wrapped__``) run by Python on each
# example alone, whether that example comes in a batch or by itself.


def each_example(module, inputs, plain_inputs):
    """For each example b: the hard module's outputs on the whole batch, its outputs on example b
    alone (a batch of 1), the undecorated function's result on example b as ``plain_inputs(b)``
    gives it, and b."""
    whole = hard(module)
    outputs = whole(*inputs)
    for b in range(len(inputs[0])):
        alone = whole(*(x[b : b + 1] if isinstance(x, torch.Tensor) else x for x in inputs))
        yield outputs, alone, module.__wrapped__(*plain_inputs(b)), b


def rows(values, b):
    return values[b].tolist()


@SETTINGS
@given(st.lists(st.lists(st.integers(-3, 3), min_size=6, max_size=6), min_size=1, max_size=4))
def test_selection_and_insertion_sort_hard_equal_python(data):
    x = torch.tensor(data, dtype=torch.float64)  # small integers: ties are frequent
    for sort in (selection_sort, insertion_sort):
        for whole, alone, plain, b in each_example(
            sort, (x,), lambda b: ([float(v) for v in data[b]],)
        ):
            assert rows(whole, b) == plain == sorted(data[b])
            assert alone[0].tolist() == plain


@pytest.mark.parametrize("sort", [selection_sort, insertion_sort], ids=["selection", "insertion"])
def test_selection_and_insertion_sort_soft_gradient_and_limit(sort):
    x = separated(16, 6, seed=6).requires_grad_()
    out = sort(x)
    target = torch.arange(6, dtype=torch.float64)
    finite_nonzero(torch.autograd.grad((out * target).sum(), x)[0])
    assert_approaches(sort, (x.detach(),), hard(sort)(x.detach()))


def top_k_reference(scores, k):
    """The positions of the k largest scores, largest first, the first of equal scores first."""
    return sorted(range(len(scores)), key=lambda j: -scores[j])[:k]


@SETTINGS
@given(
    st.integers(1, 6),
    st.lists(st.lists(st.integers(-3, 3), min_size=6, max_size=6), min_size=1, max_size=4),
)
def test_top_k_hard_equals_python(k, data):
    x = torch.tensor(data, dtype=torch.float64)
    # The undecorated function marks positions in ``torch.zeros_like(scores)``: it is given one
    # example as a 1-D tensor.
    for (chosen, values), (chosen_1, values_1), (plain_chosen, plain_values), b in each_example(
        top_k, (x, k), lambda b: (x[b].clone(), k)
    ):
        positions = top_k_reference(data[b], k)
        assert chosen[b].argmax(-1).tolist() == positions
        assert torch.equal(chosen[b], plain_chosen.double())  # one-hot rows, as probs gives
        assert (
            rows(values, b) == [float(v) for v in plain_values] == [data[b][j] for j in positions]
        )
        assert torch.equal(chosen_1[0], chosen[b]) and torch.equal(values_1[0], values[b])


def test_top_k_soft_rows_gradient_and_limit():
    x = separated(16, 6, seed=7).requires_grad_()
    chosen, values = top_k(x, 3)
    assert chosen.shape == (16, 3, 6) and values.shape == (16, 3)
    assert (chosen >= 0).all()
    sums = chosen.sum(-1)
    # The first pick's row is a distribution; later rows lose the probability that `best` is
    # still -1 after the scan (no position left untaken, to the relaxation's approximation).
    torch.testing.assert_close(sums[:, 0], torch.ones(16, dtype=torch.float64))
    assert (sums <= 1 + 1e-12).all() and (sums > 0.9).all()
    for beta in (300.0, 3000.0):
        sharp, _ = at_beta(top_k, beta)(x.detach(), 3)
        torch.testing.assert_close(sharp.sum(-1), torch.ones(16, 3, dtype=torch.float64))
    hard_chosen, hard_values = hard(top_k)(x.detach(), 3)
    assert torch.equal(hard_chosen.sum(-1), torch.ones(16, 3, dtype=torch.float64))
    # Cross entropy of the picks against the exact top 3: gradients reach every score.
    target = hard_chosen.sum(1)
    in_set = (chosen * target[:, None, :]).sum(-1)
    finite_nonzero(torch.autograd.grad(-in_set.log().sum(), x, retain_graph=True)[0])
    finite_nonzero(torch.autograd.grad(values.sum(), x)[0])
    assert_approaches(top_k, (x.detach(), 3), (hard_chosen, hard_values))


def plain_dijkstra(w):
    """The textbook on nested lists: unknown distances are ``math.inf``, visited a list."""
    n = len(w)
    dist = [math.inf] * n
    dist[0] = 0.0
    visited = [False] * n
    for _ in range(n):
        u = min((v for v in range(n) if not visited[v]), key=lambda v: dist[v])
        visited[u] = True
        for v in range(n):
            dist[v] = min(dist[v], dist[u] + w[u][v])
    return dist


@SETTINGS
@given(st.integers(1, 5), st.data())
def test_dijkstra_hard_equals_python(n, data):
    batch = data.draw(st.integers(1, 3))
    cells = st.lists(st.integers(1, 4), min_size=n * n, max_size=n * n)  # ties in every path
    w = torch.tensor([data.draw(cells) for _ in range(batch)], dtype=torch.float64)
    w = w.reshape(batch, n, n) / 2
    # The undecorated function indexes `w[u, v]`: it is given one example as an n x n tensor.
    for whole, alone, plain, b in each_example(dijkstra, (w,), lambda b: (w[b].clone(),)):
        assert rows(whole, b) == [float(d) for d in plain] == plain_dijkstra(w[b].tolist())
        assert alone[0].tolist() == rows(whole, b)


def graphs_without_ties(count, n, seed, margin=0.05):
    """Random graphs whose distances from node 0 differ by at least ``margin`` and in which every
    node's shortest path is shorter than any other way in by at least ``margin``."""
    gen = torch.Generator().manual_seed(seed)
    found = []
    while len(found) < count:
        w = 0.1 + torch.rand(n, n, generator=gen, dtype=torch.float64)
        dist = plain_dijkstra(w.tolist())
        ways_in = [sorted(dist[u] + w[u, v].item() for u in range(n)) for v in range(1, n)]
        ordered = sorted(dist)
        if all(b - a >= margin for a, b in zip(ordered, ordered[1:])) and all(
            ways[1] - ways[0] >= margin for ways in ways_in
        ):
            found.append(w)
    return torch.stack(found)


def test_dijkstra_soft_gradient_and_limit():
    w = graphs_without_ties(8, 5, seed=8).requires_grad_()
    dist = dijkstra(w)
    exact = hard(dijkstra)(w.detach())
    grad = finite_nonzero(torch.autograd.grad(dist.sum(), w)[0])
    # The edge from node 0 to its nearest neighbour is that neighbour's shortest path: the total
    # distance grows with it at least one for one.
    nearest = w.detach()[:, 0, 1:].argmin(-1) + 1
    assert (grad[torch.arange(8), 0, nearest] > 0.5).all()
    assert_approaches(dijkstra, (w.detach(),), exact, betas=(3.0, 30.0, 300.0))


@SETTINGS
@given(st.integers(1, 6), st.data())
def test_binary_search_hard_equals_bisect_left(n, data):
    batch = data.draw(st.integers(1, 4))
    arrays = [
        sorted(data.draw(st.lists(st.integers(0, 4), min_size=n, max_size=n))) for _ in range(batch)
    ]
    queries = data.draw(st.lists(st.integers(-1, 5), min_size=batch, max_size=batch))
    a = torch.tensor(arrays, dtype=torch.float64)  # duplicates, and queries equal to elements
    q = torch.tensor(queries, dtype=torch.float64)
    for whole, alone, plain, b in each_example(
        binary_search, (a, q), lambda b: ([float(v) for v in arrays[b]], float(queries[b]))
    ):
        assert whole[b].item() == plain == bisect.bisect_left(arrays[b], queries[b])
        assert alone.tolist() == [plain]


def test_binary_search_soft_gradient_and_limit():
    gen = torch.Generator().manual_seed(9)
    a = (0.3 + torch.rand(16, 7, generator=gen, dtype=torch.float64)).cumsum(-1)
    # Queries halfway between two elements, or below or above them all: no ties.
    edges = torch.cat([a[:, :1] - 0.5, a, a[:, -1:] + 0.5], -1)
    gap = torch.randint(0, 8, (16, 1), generator=gen)
    q = ((edges.gather(-1, gap) + edges.gather(-1, gap + 1)) / 2).squeeze(-1)
    exact = hard(binary_search)(a, q)
    assert exact.tolist() == gap.squeeze(-1).double().tolist()
    a_, q_ = a.clone().requires_grad_(), q.clone().requires_grad_()
    position = binary_search(a_, q_)
    ga, gq = torch.autograd.grad(position.sum(), (a_, q_))
    finite_nonzero(ga)
    finite_nonzero(gq)
    assert_approaches(binary_search, (a, q), exact, betas=(3.0, 30.0, 300.0))


# ---------------------------------------------------------------------------------------------
# the demos run


@pytest.mark.parametrize(
    "name, kwargs, expect",
    [
        ("odd_even_sort", {"steps": 2}, "relaxed permutation matrix"),
        ("shortest_path", {"size": 3, "batch": 1}, "exact shortest path"),
        ("levenshtein", {"steps": 2}, "exact 3"),
        ("integer_sqrt", {}, "isqrt"),
        ("median_filter", {"n": 8}, "mean |error|"),
        ("selection_sort", {"steps": 2}, "learned weights"),
        ("insertion_sort", {"steps": 2}, "items at their true rank"),
        ("top_k", {"steps": 2}, "hidden query"),
        ("dijkstra", {"steps": 2, "graphs": 2}, "exact distances"),
        ("binary_search", {"steps": 2}, "queries at their target position"),
    ],
)
@pytest.mark.filterwarnings("error")
def test_demo_runs(name, kwargs, expect, capsys):
    module = __import__(f"src_examples.{name}", fromlist=["demo"])
    module.demo(**kwargs)
    assert expect in capsys.readouterr().out

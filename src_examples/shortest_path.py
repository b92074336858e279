"""Relaxed shortest path on a grid: Bellman-Ford over 8 neighbours, then a traceback of the path.

The path runs from the top-left cell to the bottom-right one, may step to any of a cell's 8
neighbours, and costs the sum of ``cost`` over the cells it visits (both ends included).
Bellman-Ford gives every cell its distance, the cost of the cheapest path from the start to it;
then the walk back from the goal steps, from every cell, to the neighbour it was reached from, the
one of least distance, and marks the cells it passes. The program returns the marked grid and the
path's cost. It follows AlgoVision's shortest-path example, written as ordinary Python; there the
walk back takes the softmin weights of the last update as the neighbours' probabilities and runs a
fixed number of steps.

Relaxed, ``min`` of the neighbours' distances is soft (softmin-weighted), the choice of the
neighbour a cell is reached from is a chain of relaxed comparisons (a distribution over the 8
neighbours), the walk back moves a probability mass over the grid, and the marked grid is the
probability that each cell lies on the path (cells are marked with the probabilistic t-conorm,
``path + trace - path * trace``, as in AlgoVision). The walk is a relaxed ``while`` that ends when
its mass has reached the start. Both outputs are differentiable in ``cost``: a network that
predicts the costs can be trained from shortest paths alone.

``rounds`` (a hard argument) is the number of Bellman-Ford sweeps over the grid; 0, the default,
means h * w - 1, enough for any grid. The sweeps update the cells in place, so far fewer usually
suffice, and each costs h * w soft mins.

Run ``python -m src_examples.shortest_path`` for a demo that learns costs from paths alone.
"""

import torch

from avcompile import relax

FAR = 1e6  # the distance of the border around the grid, which no path enters
MOVES = ((-1, -1), (-1, 0), (-1, 1), (0, -1), (0, 1), (1, -1), (1, 0), (1, 1))


@relax(beta=10)
def shortest_path(cost, rounds: int = 0):
    h, w = cost.shape
    if rounds == 0:
        rounds = h * w - 1  # enough for any grid: a shortest path visits each cell at most once
    # dist[i + 1, j + 1] is the distance of cell (i, j); a border of FAR surrounds the grid, so
    # that every cell has 8 neighbours.
    dist = torch.full((h + 2, w + 2), FAR)
    dist[1, 1] = cost[0, 0]
    for _ in range(rounds):
        for i in range(1, h + 1):
            for j in range(1, w + 1):
                if i > 1 or j > 1:
                    dist[i, j] = cost[i - 1, j - 1] + min(
                        dist[i - 1, j - 1],
                        dist[i - 1, j],
                        dist[i - 1, j + 1],
                        dist[i, j - 1],
                        dist[i, j + 1],
                        dist[i + 1, j - 1],
                        dist[i + 1, j],
                        dist[i + 1, j + 1],
                    )

    # came_from[i, j, k] says whether cell (i, j) is reached from its neighbour MOVES[k]: the
    # first of least distance.
    one_hot = torch.eye(8)
    came_from = torch.zeros(h, w, 8)
    for i in range(h):
        for j in range(w):
            best = dist[i, j]
            came_from[i, j] = one_hot[0]
            for k in range(1, 8):
                di, dj = MOVES[k]
                if dist[i + 1 + di, j + 1 + dj] < best:
                    best = dist[i + 1 + di, j + 1 + dj]
                    came_from[i, j] = one_hot[k]

    # Walk back from the goal until the start is reached; trace is where the walk stands.
    trace = torch.zeros(h, w)
    trace[h - 1, w - 1] = 1.0
    path = torch.zeros(h, w)
    path[h - 1, w - 1] = 1.0
    while trace[0, 0] < 0.5:
        step = torch.zeros(h, w)
        step[0, 0] = trace[0, 0]  # the start is where the walk stays
        for i in range(h):
            for j in range(w):
                if i > 0 or j > 0:
                    for k in range(8):
                        di, dj = MOVES[k]
                        if 0 <= i + di < h and 0 <= j + dj < w:
                            step[i + di, j + dj] += trace[i, j] * came_from[i, j, k]
        trace = step
        path = path + trace - path * trace
    return path, dist[h, w]


def demo(steps=30, size=5, batch=8, seed=0):
    """Show the relaxed shortest path on a random grid, then learn what each kind of terrain
    costs from shortest paths alone.

    Every cell of a training grid is one of three kinds of terrain, whose costs are hidden; each
    of the ``batch`` grids of a step comes with its exact shortest path, and nothing else. The
    loss is the squared difference of the relaxed path under the learned costs (one per kind,
    kept positive) from the given path. Paths stay the same when every cost is scaled, so the
    costs are printed relative to the first kind's (the cheapest): what is learned is costs that
    give the same paths, not the hidden numbers.

    Example::

        demo(steps=5, size=4)
    """
    gen = torch.Generator().manual_seed(seed)
    hidden = torch.tensor([0.5, 2.0, 6.0])  # the cost of each kind of terrain
    cost = hidden[torch.randint(0, 3, (1, size, size), generator=gen)].requires_grad_()
    path, total = shortest_path(cost)
    exact = relax(shortest_path, hard=True)
    hard_path, hard_total = exact(cost.detach())
    print("cost of a random grid of the three kinds of terrain:")
    _print_grid(cost[0], 1)
    print(f"\nexact shortest path (cost {hard_total[0].item():.2f}):")
    _print_grid(hard_path[0], 0)
    print(
        f"\nrelaxed path, beta={shortest_path.beta} (expected cost {total[0].item():.2f}): "
        "the probability that each cell is on it (paths of equal cost share it)"
    )
    _print_grid(path[0], 2)
    total.sum().backward()
    print("\nd cost of the path / d cost of each cell: the soft path again")
    _print_grid(cost.grad[0], 2)

    raw = torch.zeros(3, requires_grad=True)  # the learned costs start equal
    opt = torch.optim.Adam([raw], lr=0.1)
    test_kinds = torch.randint(0, 3, (100, size, size), generator=gen)
    test_paths, _ = exact(hidden[test_kinds])
    print(f"\nlearning the costs of 3 kinds of terrain from shortest paths on {size}x{size} grids")
    for step in range(steps + 1):
        kinds = torch.randint(0, 3, (batch, size, size), generator=gen)
        given, _ = exact(hidden[kinds])
        learned = torch.nn.functional.softplus(raw) + 0.05
        # `size` sweeps of Bellman-Ford, far fewer than the default h * w - 1, reach the shortest
        # paths on these grids, which mostly run down and to the right.
        path, _ = shortest_path(learned[kinds], size)
        loss = ((path - given) ** 2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        if step % max(steps // 5, 1) == 0:
            with torch.no_grad():
                found, _ = exact(learned[test_kinds])
            right = (found == test_paths).flatten(1).all(-1).float().mean()
            ratios = " : ".join(f"{c:.2f}" for c in (learned / learned[0]).tolist())
            print(
                f"step {step:4d}  loss {loss.item():.4f}  costs {ratios}  "
                f"test paths right {right:.2f}"
            )
    print("hidden costs", " : ".join(f"{c:.2f}" for c in (hidden / hidden[0]).tolist()))


def _print_grid(values, digits):
    """Print a 2-d tensor row by row, in aligned columns, with ``digits`` decimals."""
    cells = [[f"{round(v, digits) + 0.0:.{digits}f}" for v in row] for row in values.tolist()]
    width = max(len(c) for row in cells for c in row)
    for row in cells:
        print(" ".join(c.rjust(width) for c in row))


if __name__ == "__main__":
    from src_examples import run_demo

    run_demo(demo)

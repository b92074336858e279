"""Relaxed Dijkstra: shortest distances from node 0 in a dense graph with positive edge weights.

One example is an n x n matrix ``w`` of edge weights (``w[u, v]`` the length of the edge from u to
v). The textbook algorithm: every distance starts unknown (infinite), node 0's at 0;
n times, the unvisited node ``u`` of least distance is visited, and every edge from it is relaxed,
``dist[v] = dist[u] + w[u, v]`` where that is shorter.

Relaxed, ``u`` is picked by relaxed comparisons, so it is a relaxed integer (SEMANTICS 10), a
distribution over the nodes; ``dist[u]`` and ``w[u, v]`` are read as expectations over it and
``visited[u] = True`` marks every node to the extent that it is ``u``. The distances are then
differentiable in the edge weights, through which node each step visits as well as through the
sums along the paths.

An infinite distance that takes part in a blend or a read with probability 0 adds nothing, so
values and gradients are finite wherever the exact algorithm's are (in a dense graph every node
is reached after the first step).

Run ``python -m src_examples.dijkstra`` for a demo that learns the edge weights of graphs from
their shortest distances alone.
"""

import math

import torch

from avcompile import relax


@relax(beta=10)
def dijkstra(w):
    n = len(w)
    dist = [math.inf] * n
    dist[0] = 0.0
    visited = [False] * n
    for _ in range(n):
        u = -1
        for v in range(n):
            if not visited[v] and (u == -1 or dist[v] < dist[u]):
                u = v
        visited[u] = True
        for v in range(n):
            if dist[u] + w[u, v] < dist[v]:
                dist[v] = dist[u] + w[u, v]
    return dist


def demo(steps=100, n=6, graphs=8, seed=0):
    """Learn the edge weights of random graphs so that their shortest distances from node 0 match
    given ones.

    Each graph's true weights are hidden; only its distances from node 0 are known. The loss is
    the squared difference of the relaxed distances of the learned weights from the known ones.
    Many weight matrices share the same distances: what is learned is a matrix with the right
    distances, not the hidden one.

    Example::

        demo(steps=30)
    """
    gen = torch.Generator().manual_seed(seed)
    true_w = 0.2 + 1.8 * torch.rand(graphs, n, n, generator=gen)
    exact = relax(dijkstra, hard=True)
    target = exact(true_w)
    print("first graph, exact distances  ", [round(v, 3) for v in target[0].tolist()])
    print("first graph, relaxed distances", [round(v, 3) for v in dijkstra(true_w)[0].tolist()])

    raw = torch.zeros(graphs, n, n, requires_grad=True)  # weights start at softplus(0) + 0.1
    opt = torch.optim.Adam([raw], lr=0.05)
    relaxed = relax(dijkstra)  # a copy whose beta is annealed from 5 to 100
    print(f"\nlearning the weights of {graphs} graphs of {n} nodes from their distances alone")
    for step in range(steps + 1):
        relaxed.beta = 5 * 20 ** (step / steps)
        w = torch.nn.functional.softplus(raw) + 0.1
        loss = ((relaxed(w) - target) ** 2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        if step % max(steps // 4, 1) == 0:
            error = (exact(w.detach()) - target).abs().max()
            print(
                f"step {step:4d}  beta {relaxed.beta:5.1f}  loss {loss.item():.5f}  "
                f"largest error of the exact distances {error:.4f}"
            )


if __name__ == "__main__":
    from src_examples import run_demo

    run_demo(demo)

"""Relaxed top-k: pick the largest score among those not taken yet, mark it taken, k times.

The program finds each pick the way one writes an argmax by hand: ``best`` starts at -1 (nothing
found yet) and moves to ``j`` whenever position ``j`` is not taken and beats the best so far. It
returns, for each round ``r``, the chosen position as a row of ``chosen`` (one-hot in hard mode)
and the chosen value.

Relaxed, ``best`` is a relaxed integer (SEMANTICS 10), a distribution over the positions, and
``avcompile.probs(best, n)`` is that distribution: row ``r`` of ``chosen`` says how likely each
position is to be the r-th pick. A cross-entropy loss on these rows supervises the scores with the
chosen set alone. ``taken[best] = True`` is a weighted write at the relaxed position (SEMANTICS 7):
afterwards ``taken[j]`` is the probability that position ``j`` has been picked, and ``not
taken[j]`` scales its chance in the next rounds. The chosen positions are masked, not overwritten
with ``-math.inf``: a score of ``-inf`` written to the extent that each position is the chosen one
would make every score infinite.

A row sums to 1 minus the probability that ``best`` is still -1 after the scan, which the
relaxation leaves where positions are partly taken: the first row sums to 1, later ones a little
less at moderate beta (by up to several hundredths at the default), exactly 1 in hard mode and
as beta grows.

``k`` is a hard argument (annotated ``int``): the number of rounds is the same for every example.

Run ``python -m src_examples.top_k`` for a demo that finds a hidden query point from the sets of
its nearest neighbours alone.
"""

import torch

import avcompile
from avcompile import relax


@relax(beta=10)
def top_k(scores, k: int):
    n = len(scores)
    chosen = torch.zeros(k, n)
    values = [0.0] * k
    taken = [False] * n
    for r in range(k):
        best = -1
        for j in range(n):
            if not taken[j] and (best == -1 or scores[j] > scores[best]):
                best = j
        chosen[r] = avcompile.probs(best, n)
        values[r] = scores[best]
        taken[best] = True
    return chosen, values


def demo(steps=100, n=10, k=3, batch=64, seed=0):
    """Find a hidden query point in the plane from retrievals: each training bag of n points
    comes with the set of its k points nearest to the query, and nothing else.

    The scores are minus the distances to the current guess of the query; the loss is
    the cross entropy of each round's pick (a row of ``probs``) against the retrieved set.

    Example::

        demo(steps=30)
    """
    gen = torch.Generator().manual_seed(seed)
    x = torch.tensor([[0.3, -1.2, 2.0, 0.7, 1.4]])
    exact_chosen, exact_values = relax(top_k, hard=True)(x, 2)
    chosen, values = relax(top_k, beta=2)(x, 2)
    print("scores", [round(v, 3) for v in x[0].tolist()])
    print(
        f"exact top 2: positions {exact_chosen[0].argmax(-1).tolist()}, "
        f"values {[round(v, 3) for v in exact_values[0].tolist()]}"
    )
    print("relaxed (beta=2) picks, a row per round, a column per position:")
    for row in chosen[0].tolist():
        print("   ", [round(p, 3) for p in row])
    print("relaxed values", [round(v, 3) for v in values[0].tolist()])

    def nearest(points, query):
        return -(points - query).norm(dim=-1)  # larger for nearer points

    query = torch.tensor([1.0, -0.5])
    guess = torch.zeros(2, requires_grad=True)
    opt = torch.optim.Adam([guess], lr=0.05)
    test = torch.randn(500, n, 2, generator=gen)
    test_sets = nearest(test, query).topk(k, -1).indices.sort(-1).values
    print(f"\nfinding the query from the sets of its {k} nearest of {n} points")
    for step in range(steps + 1):
        points = torch.randn(batch, n, 2, generator=gen)
        retrieved = torch.zeros(batch, n).scatter(-1, nearest(points, query).topk(k, -1).indices, 1)
        chosen, _ = top_k(nearest(points, guess), k)
        in_set = (chosen * retrieved[:, None, :]).sum(-1)  # [batch, k]: each pick in the set
        loss = -in_set.clamp_min(1e-12).log().mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        if step % max(steps // 4, 1) == 0:
            with torch.no_grad():
                found = nearest(test, guess).topk(k, -1).indices.sort(-1).values
                right = (found == test_sets).all(-1).float().mean()
            where = [round(v, 2) for v in guess.tolist()]
            print(
                f"step {step:4d}  loss {loss.item():.4f}  guess {where}  "
                f"test sets right {right:.2f}"
            )
    print("hidden query", query.tolist())


if __name__ == "__main__":
    from src_examples import run_demo

    run_demo(demo)

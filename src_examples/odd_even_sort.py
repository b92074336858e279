"""Relaxed odd-even transposition sort: the sorted array and the relaxed permutation matrix.

Odd-even transposition sort is the sorting network of diffsort ("Differentiable Sorting Networks",
Petersen et al., ICML 2021): n layers, alternately comparing the pairs (0, 1), (2, 3), ... and
(1, 2), (3, 4), ..., sort any n values. Alongside the values the program swaps the rows of an
identity matrix, so ``perm[i, j]`` says whether input j ends up at position i, and
``perm @ array == sorted``.

Relaxed, each comparison is a probability and each swap happens to that extent, to the values and
to the rows of ``perm`` alike. ``perm`` then is a doubly stochastic matrix, the relaxed permutation
that sorts the input (the transpose of diffsort's ``P``, which multiplies from the right), still
with ``perm @ array == sorted``. A loss on ``perm`` supervises scores with a ranking alone.

Run ``python -m src_examples.odd_even_sort`` for a demo that trains a network to rank items with a
cross-entropy loss on the relaxed permutation matrix.
"""

import torch

from avcompile import relax


@relax(beta=8)
def odd_even_sort(array):
    n = len(array)
    perm = torch.eye(n)
    for layer in range(n):
        for i in range(layer % 2, n - 1, 2):
            if array[i] > array[i + 1]:
                array[i], array[i + 1] = array[i + 1], array[i]
                perm[i], perm[i + 1] = perm[i + 1], perm[i]
    return array, perm


def demo(steps=300, n=6, batch=100, seed=0):
    """Train a network whose scores, sorted by the relaxed network, give the true ranking.

    Example::

        demo(steps=50)
    """
    torch.manual_seed(seed)
    x = torch.tensor([[0.3, -1.2, 2.0, 0.7]])
    array, perm = odd_even_sort(x)
    print("input", [round(v, 3) for v in x[0].tolist()])
    print("relaxed sorted", [round(v, 3) for v in array[0].tolist()])
    print("relaxed permutation matrix (row i: where the i-th smallest comes from)")
    for row in perm[0].tolist():
        print("   ", [round(p, 3) for p in row])

    # Items are noisy encodings of their rank; the network must learn to score them in order.
    codes = torch.randn(n, 4)
    net = torch.nn.Sequential(torch.nn.Linear(4, 16), torch.nn.ReLU(), torch.nn.Linear(16, 1))
    opt = torch.optim.Adam(net.parameters(), lr=1e-2)
    print("\ntraining a scorer from rankings alone")
    for step in range(steps + 1):
        order = torch.rand(batch, n).argsort(-1)  # each set of items in a random order
        items = codes[order] + 0.3 * torch.randn(batch, n, 4)
        scores = net(items).squeeze(-1)
        _, perm = odd_even_sort(scores)
        target = torch.nn.functional.one_hot(order.argsort(-1), n).float()  # the true permutation
        loss = torch.nn.functional.binary_cross_entropy(perm.clamp(0, 1), target)
        opt.zero_grad()
        loss.backward()
        opt.step()
        if step % max(steps // 6, 1) == 0:
            right = (scores.argsort(-1) == order.argsort(-1)).all(-1).float().mean()
            print(f"step {step:4d}  loss {loss.item():.4f}  rankings right {right:.2f}")


if __name__ == "__main__":
    from src_examples import run_demo

    run_demo(demo)

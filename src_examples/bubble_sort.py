"""Relaxed bubble sort: sorts each example and counts the expected number of swaps.

Written for one example as ordinary Python; ``@relax`` turns it into a batched, differentiable
``torch.nn.Module``. Relaxed, every comparison ``array[i] > array[i + 1]`` is a probability, each
swap happens to that extent, and ``loss`` is the expected number of swaps: zero exactly when the
input is already sorted, so it can supervise a network that should produce scores in order.

Run ``python -m src_examples.bubble_sort`` for a demo that prints the generated module and trains
a small network to put its scores in order.
"""

import torch

from avcompile import relax


@relax(beta=5)
def bubble_sort(array):
    n = len(array)
    swapped = 1.0
    loss = 0.0
    while swapped:
        swapped = 0.0
        for i in range(n - 1):
            if array[i] > array[i + 1]:
                array[i], array[i + 1] = array[i + 1], array[i]
                swapped = 1.0
                loss = loss + 1
        n = n - 1
    return array, loss


def demo(steps=300, n=8, batch=100, seed=0, backend="auto"):
    """Train a small network to score items so that relaxed bubble sort finds them in order.

    ``backend`` is the relaxed module's (``'auto'``: the kernel backend, this program lying in
    its subset; ``'torch'``: the generated torch code printed first).

    Example::

        demo(steps=20)
    """
    torch.manual_seed(seed)
    print(bubble_sort.code)
    sort = relax(bubble_sort.__wrapped__, beta=bubble_sort.beta, backend=backend)
    # Each item is a noisy 4-dimensional encoding of its rank; the network must learn to score
    # items so that a sequence given in true order needs no swaps.
    codes = torch.randn(n, 4)
    net = torch.nn.Sequential(torch.nn.Linear(4, 16), torch.nn.ReLU(), torch.nn.Linear(16, 1))
    opt = torch.optim.Adam(net.parameters(), lr=1e-2)
    for step in range(steps + 1):
        items = codes + 0.3 * torch.randn(batch, n, 4)
        scores = net(items).squeeze(-1)
        _, swaps = sort(scores)
        loss = swaps.mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        if step % max(steps // 6, 1) == 0:
            in_order = (scores.diff(dim=1) > 0).all(dim=1).float().mean()
            print(f"step {step:4d}  expected swaps {loss.item():7.3f}  sorted {in_order:.2f}")


if __name__ == "__main__":
    from src_examples import run_demo

    run_demo(demo)

"""Relaxed selection sort: find the smallest remaining value, swap it to the front, repeat.

The textbook algorithm: for every ``i``, ``m`` starts at ``i`` and moves to ``j`` whenever
``a[j] < a[m]``, so that it ends at the smallest of ``a[i:]``; then ``a[i]`` and ``a[m]`` are
swapped.

Relaxed, each comparison is a probability, so ``m``, an integer assigned under a relaxed ``if``, is
a relaxed integer (SEMANTICS 10): a distribution over the positions ``i, ..., n - 1``, the
probability that each holds the minimum. The swap reads ``a[m]`` as the expectation over that
distribution and writes every position to the extent that it is ``m``. The sorted array is then
differentiable in the input through the positions themselves, with no sorting network and no
permutation matrix written by hand.

Run ``python -m src_examples.selection_sort`` for a demo that learns to score items from the sorted
values of bags of items alone.
"""

import torch

from avcompile import relax


@relax(beta=8)
def selection_sort(a):
    n = len(a)
    for i in range(n - 1):
        m = i
        for j in range(i + 1, n):
            if a[j] < a[m]:
                m = j
        a[i], a[m] = a[m], a[i]
    return a


def demo(steps=150, n=6, batch=64, features=4, seed=0):
    """Learn a scorer from sorted values alone: each training bag of n items comes with the
    values of its items, sorted, but not which item has which value.

    The loss compares the relaxed sort of the predicted values with the sorted true values: its
    gradient reaches the scorer only through the relaxed sort, whose relaxed positions decide
    which true value each predicted value is compared with, and how much.

    Example::

        demo(steps=30)
    """
    gen = torch.Generator().manual_seed(seed)
    x = torch.tensor([[0.3, -1.2, 2.0, 0.7]])
    print("input       ", [round(v, 3) for v in x[0].tolist()])
    print("exact sort  ", [round(v, 3) for v in relax(selection_sort, hard=True)(x)[0].tolist()])
    print("relaxed sort", [round(v, 3) for v in selection_sort(x)[0].tolist()])

    # The value of an item is linear in its features; the scorer has to find the weights.
    true_weights = torch.randn(features, generator=gen)
    weights = (0.1 * torch.randn(features, generator=gen)).requires_grad_()
    opt = torch.optim.Adam([weights], lr=0.2)
    decay = torch.optim.lr_scheduler.LambdaLR(opt, lambda step: 1 - step / (steps + 1))
    test = torch.randn(500, n, features, generator=gen)
    print(f"\nlearning a scorer of {features} features from the sorted values of bags of {n}")
    for step in range(steps + 1):
        items = torch.randn(batch, n, features, generator=gen)
        sorted_values = (items @ true_weights).sort(-1).values  # what is known of each bag
        loss = ((selection_sort(items @ weights) - sorted_values) ** 2).sum(-1).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        decay.step()
        if step % max(steps // 3, 1) == 0:
            with torch.no_grad():
                right = ((test @ weights).argsort(-1) == (test @ true_weights).argsort(-1)).all(-1)
            print(
                f"step {step:4d}  loss {loss.item():7.4f}  "
                f"test bags in the right order {right.float().mean():.2f}"
            )
    print("true weights   ", [round(v, 2) for v in true_weights.tolist()])
    print("learned weights", [round(v, 2) for v in weights.tolist()])


if __name__ == "__main__":
    from src_examples import run_demo

    run_demo(demo)

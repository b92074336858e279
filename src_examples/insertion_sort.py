"""Relaxed insertion sort: take each value in turn and shift it left past the larger ones.

The textbook algorithm: for every ``i``, ``key = a[i]``; while the value left of the gap is larger
than ``key``, move it one place right (``a[j + 1] = a[j]``) and step left; then drop ``key`` into
the gap, ``a[j + 1] = key``.

Relaxed, ``a[j] > key`` is a probability, and the ``while`` loop's result is the expectation over
the iteration at which it stops (SEMANTICS 5). Each example's loop stops at its own iteration, so
after the loop ``j`` is a relaxed integer (SEMANTICS 10): a distribution over ``-1, ..., i - 1``.
``a[j + 1] = key`` is then a weighted write, ``key`` landing at each position to the extent that
the gap is there. The sorted array is differentiable in the input through where each value is
inserted.

Run ``python -m src_examples.insertion_sort`` for a demo that recovers the values of items from
sorted measurements of random groups of them.
"""

import torch

from avcompile import relax


@relax(beta=8)
def insertion_sort(a):
    for i in range(1, len(a)):
        key = a[i]
        j = i - 1
        while j >= 0 and a[j] > key:
            a[j + 1] = a[j]
            j = j - 1
        a[j + 1] = key
    return a


def demo(steps=150, items=12, group=5, batch=64, seed=0):
    """Recover the values of ``items`` items when each measurement is the sorted values of a
    random group of them: which item had which value is lost.

    The loss compares the relaxed sort of the current guesses for a group with its sorted
    measurement; its gradient reaches a guess through the position where the sort inserts it.
    The guesses start all close to 0, where a hard sort could not tell which is which.

    Example::

        demo(steps=30)
    """
    gen = torch.Generator().manual_seed(seed)
    x = torch.tensor([[0.3, -1.2, 2.0, 0.7]])
    print("input       ", [round(v, 3) for v in x[0].tolist()])
    print("exact sort  ", [round(v, 3) for v in relax(insertion_sort, hard=True)(x)[0].tolist()])
    print("relaxed sort", [round(v, 3) for v in insertion_sort(x)[0].tolist()])

    true_values = torch.randn(items, generator=gen)
    guess = (0.01 * torch.randn(items, generator=gen)).requires_grad_()
    opt = torch.optim.Adam([guess], lr=0.05)
    print(f"\nrecovering {items} values from sorted groups of {group}, {batch} groups per step")
    for step in range(steps + 1):
        groups = torch.rand(batch, items, generator=gen).argsort(-1)[:, :group]
        measured = true_values[groups].sort(-1).values
        loss = ((insertion_sort(guess[groups]) - measured) ** 2).sum(-1).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        if step % max(steps // 3, 1) == 0:
            ranked = (guess.argsort() == true_values.argsort()).float().mean()
            error = (guess - true_values).abs().max()
            print(
                f"step {step:4d}  loss {loss.item():.4f}  items at their true rank {ranked:.2f}  "
                f"largest error {error:.3f}"
            )


if __name__ == "__main__":
    from src_examples import run_demo

    run_demo(demo)

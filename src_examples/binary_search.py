"""Relaxed binary search: where a query would be inserted into a sorted array.

The program is ``bisect.bisect_left``: ``lo`` and ``hi`` bracket the answer; while the bracket is
not empty, the middle element decides which half holds it. It returns the position of the first
element that is not smaller than the query ``q``, ``len(a)`` if there is none.

Relaxed, ``a[mid] < q`` is a probability, so ``lo`` and ``hi`` are relaxed integers (SEMANTICS 10),
distributions over the positions, and ``mid`` is computed from them (as if they were independent,
an approximation that is exact in hard mode). ``a[mid]`` is read as an expectation over ``mid``, and
the ``while`` loop's result is the expectation over the iteration at which it stops. The returned
position is a number: its expectation, which rises by one around each element as ``q`` passes
it, so it is differentiable in the query and in the array. Because ``lo`` and ``hi`` are combined
as if independent, the rise is not quite monotone: just past an element, where the middle of the
bracket is itself uncertain, the position can dip by up to about a tenth, over a range of queries
that narrows as beta grows.

Run ``python -m src_examples.binary_search`` for a demo that moves queries until each lands at a
target position.
"""

import torch

from avcompile import relax


@relax(beta=4)
def binary_search(a, q):
    lo, hi = 0, len(a)
    while lo < hi:
        mid = (lo + hi) // 2
        if a[mid] < q:
            lo = mid + 1
        else:
            hi = mid
    return lo


def demo(steps=100, n=8, batch=16, seed=0):
    """Move queries by gradient descent until each one's relaxed position in its sorted array is
    a given target position.

    The loss is the squared difference of the relaxed position from the target; its gradient
    moves a query only through the comparisons that decide the position. Beta is annealed from
    2 (far-reaching gradients) to 20 (close to the exact position). A query can end just past an
    element, where the relaxed position dips back to the target (see the module docstring).

    Example::

        demo(steps=30)
    """
    gen = torch.Generator().manual_seed(seed)
    a = torch.arange(4.0)[None].expand(9, 4)
    q = torch.linspace(-0.5, 3.5, 9)
    exact = relax(binary_search, hard=True)
    print("array", a[0].tolist())
    print("query   ", " ".join(f"{v:6.2f}" for v in q.tolist()))
    print("exact   ", " ".join(f"{v:6.0f}" for v in exact(a, q).tolist()))
    print("relaxed ", " ".join(f"{v:6.2f}" for v in binary_search(a, q).tolist()))

    arrays = (0.2 + torch.rand(batch, n, generator=gen)).cumsum(-1)  # sorted, gaps of 0.2 to 1.2
    target = torch.randint(0, n + 1, (batch,), generator=gen).float()
    query = arrays.mean(-1).requires_grad_()  # every query starts in the middle of its array
    opt = torch.optim.Adam([query], lr=0.1)
    relaxed = relax(binary_search)  # a copy whose beta is annealed from 2 to 20
    print(f"\nmoving {batch} queries to target positions in sorted arrays of {n}")
    for step in range(steps + 1):
        relaxed.beta = 2 * 10 ** (step / steps)
        position = relaxed(arrays, query)
        loss = ((position - target) ** 2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        if step % max(steps // 4, 1) == 0:
            landed = (exact(arrays, query.detach()) == target).float().mean()
            print(
                f"step {step:4d}  beta {relaxed.beta:5.2f}  loss {loss.item():.4f}  "
                f"queries at their target position {landed:.2f}"
            )


if __name__ == "__main__":
    from src_examples import run_demo

    run_demo(demo)

"""Relaxed integer square root: count up while the next square still fits.

The program finds the largest whole k with k * k <= x by counting: start at 0 and add 1 while
(k + 1)^2 <= x. For x >= 0 that is floor(sqrt(x)), ``math.isqrt`` of ``floor(x)``.

Relaxed, the loop condition is a probability, and the ``while`` loop's result is the expectation
of k over the iteration at which the loop stops (SEMANTICS section 5): a smooth staircase
that rises by one around every perfect square, over a width that shrinks as beta grows. Its
derivative in x, a bump at each square, is what a soft floor or soft count needs to pass gradients.

Run ``python -m src_examples.integer_sqrt`` for a demo that prints the soft staircase and its
slope.
"""

import torch

from avcompile import relax


@relax(beta=5)
def integer_sqrt(x):
    k = 0.0
    while (k + 1) * (k + 1) <= x:
        k = k + 1
    return k


def demo(steps=5):
    """Print the relaxed integer square root and its derivative next to the exact one, over the
    first ``steps`` steps of the staircase: at, and a little below and above, each square k * k.

    Example::

        demo(steps=3)
    """
    near_squares = {k * k + d for k in range(1, steps + 1) for d in (-1.0, -0.5, 0.0, 0.5, 1.0)}
    x = torch.tensor(sorted(near_squares | {0.0}), requires_grad=True)
    exact = relax(integer_sqrt, hard=True)(x)
    soft = {}
    for beta in (2.0, 5.0, 20.0):
        module = relax(integer_sqrt, beta=beta)
        soft[beta] = module(x)
    (slope,) = torch.autograd.grad(soft[5.0].sum(), x)
    print(
        f"{'x':>6} {'isqrt':>6} "
        + " ".join(f"{f'beta={b:g}':>8}" for b in soft)
        + f" {'slope(5)':>9}"
    )
    for i, v in enumerate(x.tolist()):
        values = " ".join(f"{s[i].item():>8.3f}" for s in soft.values())
        print(f"{v:>6g} {exact[i].item():>6g} {values} {slope[i].item():>9.3f}")


if __name__ == "__main__":
    from src_examples import run_demo

    run_demo(demo, "steps of the staircase to show")

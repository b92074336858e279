"""Relaxed Levenshtein distance between two sequences of per-token values.

The edit distance is the least number of insertions, deletions and substitutions that turn
``a`` into ``b``. The program fills the textbook dynamic-programming table: ``dist[i, j]`` is the
distance between the first i tokens of ``a`` and the first j tokens of ``b``, the cheapest of
deleting ``a[i - 1]``, inserting ``b[j - 1]`` or substituting one for the other (free when they are
equal).

Relaxed, ``a[i - 1] == b[j - 1]`` is the probability 1 / cosh^2(beta * (a - b) / 2), so the
substitution costs 1 minus it, and ``min`` of the three moves is soft. The distance then is a
smooth function of the tokens' values (ids, or any scalar per token), differentiable in both
sequences; as beta grows it approaches the exact edit distance of integer tokens.

Run ``python -m src_examples.levenshtein`` for a demo that compares words and lets gradient descent
edit one word into another.
"""

import torch

from avcompile import relax


@relax(beta=10)
def levenshtein(a, b):
    n, m = len(a), len(b)
    dist = torch.zeros(n + 1, m + 1)
    for i in range(n + 1):
        dist[i, 0] = i
    for j in range(m + 1):
        dist[0, j] = j
    for i in range(1, n + 1):
        for j in range(1, m + 1):
            if a[i - 1] == b[j - 1]:
                substitution = 0.0
            else:
                substitution = 1.0
            dist[i, j] = min(
                dist[i - 1, j] + 1, dist[i, j - 1] + 1, dist[i - 1, j - 1] + substitution
            )
    return dist[n, m]


def tokens(word):
    """A word as a batch of one sequence of character codes.

    Example::

        tokens("ab")   # tensor([[97., 98.]])
    """
    return torch.tensor([[float(ord(c)) for c in word]])


def demo(steps=200, seed=0):
    """Compare words, exactly and relaxed, then edit one word into another by gradient descent.

    Example::

        demo(steps=20)
    """
    torch.manual_seed(seed)
    exact = relax(levenshtein, hard=True)
    for a, b in (("kitten", "sitting"), ("flaw", "lawn"), ("gumbo", "gambol")):
        soft = levenshtein(tokens(a), tokens(b)).item()
        print(
            f"{a!r:>10} -> {b!r:<9} exact {exact(tokens(a), tokens(b)).item():.0f}  "
            f"relaxed (beta={levenshtein.beta}) {soft:.3f}"
        )

    # The relaxed distance is differentiable in the token values: descend it from noise, annealing
    # beta from 0.5 (smooth, far-reaching gradients) to 4 (close to the exact distance).
    target = tokens("sitting")
    a = (target + 3 * torch.randn(target.shape)).requires_grad_()
    opt = torch.optim.Adam([a], lr=0.1)
    relaxed = relax(levenshtein)
    print("\ngradient descent on the tokens of a noisy copy of 'sitting'")
    for step in range(steps + 1):
        relaxed.beta = 0.5 * 8 ** (step / steps)
        loss = relaxed(a, target).sum()
        opt.zero_grad()
        loss.backward()
        opt.step()
        if step % max(steps // 4, 1) == 0:
            word = "".join(chr(int(v)) for v in a[0].detach().round())
            print(
                f"step {step:4d}  beta {relaxed.beta:5.2f}  relaxed distance {loss.item():.3f}  "
                f"exact {exact(a.detach().round(), target).item():.0f}  {word!r}"
            )


if __name__ == "__main__":
    from src_examples import run_demo

    run_demo(demo)

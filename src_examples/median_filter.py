"""Relaxed median filter: every value replaced by the median of itself and its two neighbours.

The median of three is found the way one writes it by hand, with nested ``if``/``elif``/``else``:
compare a with b, then, on either side, find where c falls. The two end values are kept.

Relaxed, every comparison is a probability and every ``if`` blends its branches (an ``elif`` is an
``if`` nested in the ``else`` branch), so each output is a weighted mix of the three values that
tends to their median as beta grows, differentiable in all three. A median filter removes spikes
from a signal that a mean filter would smear; relaxed, it can sit inside a trained model.

Run ``python -m src_examples.median_filter`` for a demo that cleans spikes from a noisy signal.
"""

import torch

from avcompile import relax


@relax(beta=10)
def median_filter(signal):
    n = len(signal)
    out = torch.zeros(n)
    out[0] = signal[0]
    out[n - 1] = signal[n - 1]
    for i in range(1, n - 1):
        a, b, c = signal[i - 1], signal[i], signal[i + 1]
        if a > b:
            if b > c:
                median = b
            elif a > c:
                median = c
            else:
                median = a
        else:
            if a > c:
                median = a
            elif b > c:
                median = c
            else:
                median = b
        out[i] = median
    return out


def demo(steps=20, n=16, seed=0):
    """Filter ``steps`` sine waves with spikes, exactly and relaxed, and compare with a mean
    filter: the first signal value by value, then the mean error over all of them.

    Example::

        demo(steps=3)
    """
    gen = torch.Generator().manual_seed(seed)
    phase = 6.3 * torch.rand(steps, 1, generator=gen)
    clean = torch.sin(torch.linspace(0, 3, n) + phase)
    # Up to three spikes of +3 or -3 on every signal, at least three positions apart: no window
    # of three values holds two, so that the median of each window removes its spike.
    places = torch.arange(1, n - 1, 3)
    spikes = places[torch.rand(steps, len(places), generator=gen).argsort(-1)[:, :3]]
    signs = 2.0 * torch.randint(0, 2, spikes.shape, generator=gen) - 1
    noisy = clean.scatter_add(1, spikes, 3.0 * signs)
    exact = relax(median_filter, hard=True)(noisy)
    mean = torch.cat(
        [noisy[:, :1], (noisy[:, :-2] + noisy[:, 1:-1] + noisy[:, 2:]) / 3, noisy[:, -1:]], dim=1
    )
    print(
        f"{'clean':>7} {'noisy':>7} {'mean':>7} {'median':>7} "
        + " ".join(f"{f'beta={b:g}':>8}" for b in (1, 10))
    )
    soft = [relax(median_filter, beta=b)(noisy) for b in (1.0, 10.0)]
    for i in range(n):
        print(
            f"{clean[0, i]:>7.3f} {noisy[0, i]:>7.3f} {mean[0, i]:>7.3f} {exact[0, i]:>7.3f} "
            + " ".join(f"{s[0, i]:>8.3f}" for s in soft)
        )
    for name, out in (
        ("mean filter", mean),
        ("median filter", exact),
        ("relaxed median filter (beta=10)", soft[1]),
    ):
        print(f"{name:>32}: mean |error| {(out - clean).abs().mean():.3f} over {steps} signals")


if __name__ == "__main__":
    from src_examples import run_demo

    run_demo(demo, "signals to filter")

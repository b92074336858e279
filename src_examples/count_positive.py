"""Relaxed counting with a network inside the loop: how many items a classifier calls positive.

The program asks a classifier (any ``torch.nn.Module`` that maps a batch of items to one score per
item) about each item in turn and counts the items it scores above zero. The classifier is a static
argument: it is called as it is, with batch-first tensors, the way a network expects.

Relaxed, each ``classifier(item) > 0`` is the probability sigmoid(beta * score), and the count is
the expected number of positives, differentiable in the classifier's parameters. That is enough to
train a classifier from counts alone: told only how many items of each bag are positive, never
which ("learning from label proportions").

Run ``python -m src_examples.count_positive`` for a demo that teaches a network to tell the digits
5 to 9 from 0 to 4 in noisy 8x8 images drawn in code, told only how many of every 8 are >= 5.
"""

import torch

from avcompile import relax


@relax(beta=2, static=("classifier",))
def count_positive(items, classifier):
    count = 0.0
    for i in range(len(items)):
        if classifier(items[i]) > 0:
            count = count + 1
    return count


# The digits 0 to 9 in a 5x7 pixel font, a row of the glyph per string.
GLYPHS = (
    (".###.", "#...#", "#..##", "#.#.#", "##..#", "#...#", ".###."),
    ("..#..", ".##..", "..#..", "..#..", "..#..", "..#..", ".###."),
    (".###.", "#...#", "....#", "...#.", "..#..", ".#...", "#####"),
    ("#####", "...#.", "..#..", "...#.", "....#", "#...#", ".###."),
    ("...#.", "..##.", ".#.#.", "#..#.", "#####", "...#.", "...#."),
    ("#####", "#....", "####.", "....#", "....#", "#...#", ".###."),
    ("..##.", ".#...", "#....", "####.", "#...#", "#...#", ".###."),
    ("#####", "....#", "...#.", "..#..", ".#...", ".#...", ".#..."),
    (".###.", "#...#", "#...#", ".###.", "#...#", "#...#", ".###."),
    (".###.", "#...#", "#...#", ".####", "....#", "...#.", ".##.."),
)


def draw_digits(count, generator):
    """``count`` noisy 8x8 images of random digits, flattened, and the digits they show.

    Each digit of the 5x7 font is placed at a random offset in the 8x8 frame; its pixels have a
    random brightness, a tenth of them are dropped, and noise is added everywhere. Returns the
    images ``[count, 64]`` (values in [0, 1]) and the digits ``[count]``.

    Example::

        images, digits = draw_digits(5, torch.Generator().manual_seed(0))
    """
    font = torch.tensor([[[c == "#" for c in row] for row in glyph] for glyph in GLYPHS]).float()
    digits = torch.randint(0, 10, (count,), generator=generator)
    images = torch.zeros(count, 8, 8)
    rows = torch.randint(0, 2, (count,), generator=generator)
    cols = torch.randint(0, 4, (count,), generator=generator)
    for i in range(count):
        r, c = rows[i].item(), cols[i].item()
        images[i, r : r + 7, c : c + 5] = font[digits[i]]
    brightness = 0.5 + 0.5 * torch.rand(count, 1, 1, generator=generator)
    kept = torch.rand(count, 8, 8, generator=generator) > 0.1
    noise = 0.15 * torch.randn(count, 8, 8, generator=generator)
    return (images * brightness * kept + noise).clamp(0, 1).flatten(1), digits


def demo(steps=400, bag=8, batch=50, seed=0):
    """Train a digit classifier from the number of positives in each bag of digits.

    The digits are drawn in code (``draw_digits``): 1,300 for training, 500 for testing. A bag
    holds ``bag`` training digits; the loss is the squared difference of the relaxed count of
    digits the classifier calls >= 5 from the true count, the only label it is given.

    Example::

        demo(steps=50)
    """
    gen = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    images, digits = draw_digits(1800, gen)
    positive = (digits >= 5).float()
    train, test = torch.arange(1300), torch.arange(1300, 1800)
    classifier = torch.nn.Sequential(
        torch.nn.Linear(64, 32), torch.nn.ReLU(), torch.nn.Linear(32, 1), torch.nn.Flatten(0)
    )
    opt = torch.optim.Adam(classifier.parameters(), lr=3e-3)
    print(f"learning to tell digits >= 5 from bags of {bag} digits and their counts alone")
    for step in range(steps + 1):
        pick = train[torch.randint(len(train), (batch, bag), generator=gen)]
        count = count_positive(images[pick], classifier)
        loss = ((count - positive[pick].sum(-1)) ** 2).mean()  # only the counts are known
        opt.zero_grad()
        loss.backward()
        opt.step()
        if step % max(steps // 4, 1) == 0:
            with torch.no_grad():
                right = ((classifier(images[test]) > 0).float() == positive[test]).float().mean()
            print(
                f"step {step:4d}  squared count error {loss.item():6.3f}  "
                f"test accuracy of single digits {right:.3f}"
            )


if __name__ == "__main__":
    from src_examples import run_demo

    run_demo(demo)

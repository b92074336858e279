"""Relaxed counting with a network inside the loop: how many items a classifier calls positive.

The program asks a classifier (any ``torch.nn.Module`` that maps a batch of items to one score per
item) about each item in turn and counts the items it scores above zero. The classifier is a static
argument: it is called as it is, with batch-first tensors, the way a network expects.

Relaxed, each ``classifier(item) > 0`` is the probability sigmoid(beta * score), and the count is
the expected number of positives, differentiable in the classifier's parameters. That is enough to
train a classifier from counts alone: told only how many items of each bag are positive, never
which ("learning from label proportions").

Run ``python -m src_examples.count_positive`` for a demo that teaches a network to tell the digits
5 to 9 from 0 to 4 in scikit-learn's 8x8 digits, given only how many of every 8 digits are >= 5.
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


def demo(steps=400, bag=8, batch=50, seed=0):
    """Train a digit classifier from the number of positives in each bag of digits.

    Example::

        demo(steps=50)
    """
    from sklearn.datasets import load_digits

    torch.manual_seed(seed)
    digits = load_digits()
    images = torch.tensor(digits.data, dtype=torch.float32) / 16.0
    positive = torch.tensor(digits.target >= 5, dtype=torch.float32)
    split = torch.randperm(len(images))
    train, test = split[:1300], split[1300:]
    classifier = torch.nn.Sequential(
        torch.nn.Linear(64, 32), torch.nn.ReLU(), torch.nn.Linear(32, 1), torch.nn.Flatten(0)
    )
    opt = torch.optim.Adam(classifier.parameters(), lr=3e-3)
    for step in range(steps + 1):
        pick = train[torch.randint(len(train), (batch, bag))]
        count = count_positive(images[pick], classifier)
        loss = ((count - positive[pick].sum(-1)) ** 2).mean()  # only the counts are known
        opt.zero_grad()
        loss.backward()
        opt.step()
        if step % 100 == 0:
            with torch.no_grad():
                right = ((classifier(images[test]) > 0).float() == positive[test]).float().mean()
            print(
                f"step {step:4d}  squared count error {loss.item():6.3f}  "
                f"test accuracy of single digits {right:.3f}"
            )


if __name__ == "__main__":
    demo()

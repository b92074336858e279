"""Relaxed operations to call inside a relaxed function when the defaults are not what you want.

Inside ``@relax`` these compile into the module's relaxation, with their own ``beta`` or ``dist``
where given::

    @relax(beta=10)
    def f(x, y):
        if avcompile.gt(x, y, beta=2.0, dist="cauchy"):   # a softer, heavy-tailed comparison
            x = y
        weights = avcompile.argmax(x)                      # probabilities over positions
        return x, weights

Called outside a relaxed function they relax tensors in the same way (``beta`` 10 and the logistic
family unless given); plain numbers give Python's exact answer.
"""

import operator

import torch

from . import registry
from .runtime import Relaxation, _to_last

__all__ = [
    "argmax",
    "argmin",
    "eq",
    "ge",
    "gt",
    "le",
    "lt",
    "ne",
    "probs",
    "softmax",
    "softmin",
]


def _relaxation(beta, dist):
    return Relaxation(10.0 if beta is None else beta, "soft", dist or "logistic")


def _compare(method):
    python, symbol = getattr(operator, method), registry.BY_NAME[method].symbol

    def compare(a, b, *, beta=None, dist=None):
        if not isinstance(a, torch.Tensor) and not isinstance(b, torch.Tensor):
            return python(a, b)
        return getattr(_relaxation(beta, dist), method)(a, b)

    compare.__name__ = compare.__qualname__ = method
    compare.__doc__ = f"""The probability that ``a {symbol} b``, relaxed with this comparison's own
    ``beta`` and ``dist`` where given (else the module's; 10 and 'logistic' outside one).

    Inside a relaxed function::

        @relax
        def f(x, y):
            if avcompile.{method}(x, y, beta=2.0, dist="cauchy"):
                x = y
            return x

    Outside one, on tensors and on plain numbers::

        >>> avcompile.{method}(torch.tensor([1.0, 0.0, -1.0]), 0.0, beta=2.0)
        {_SHOWN[method]}
        >>> avcompile.{method}(1, 0) == (1 {symbol} 0)
        True
    """
    return compare


# What the example of each comparison's docstring prints (logistic family, beta 2).
_SHOWN = {
    "gt": "tensor([0.8808, 0.5000, 0.1192])",
    "ge": "tensor([0.8808, 0.5000, 0.1192])",
    "lt": "tensor([0.1192, 0.5000, 0.8808])",
    "le": "tensor([0.1192, 0.5000, 0.8808])",
    "eq": "tensor([0.4200, 1.0000, 0.4200])",
    "ne": "tensor([0.5800, 0.0000, 0.5800])",
}


gt, ge, lt, le, eq, ne = (_compare(m) for m in ("gt", "ge", "lt", "le", "eq", "ne"))


def _over_positions(method):
    def reduce(*values, beta=None):
        # Outside a relaxed function a tensor is batch-first: positions are its last dimension.
        values = [
            _to_last(v) if isinstance(v, torch.Tensor) and len(values) == 1 else v for v in values
        ]
        out = getattr(_relaxation(beta, None), method)(*values)
        return out.movedim(0, -1) if method.startswith("arg") else out

    reduce.__name__ = reduce.__qualname__ = method
    return reduce


argmax = _over_positions("argmax")
argmax.__doc__ = """Per-example probabilities over positions of holding the maximum: softmax(beta x).

    Outside a relaxed function a tensor is batch-first, its positions along its last dimension::

        >>> avcompile.argmax(torch.tensor([[0.0, 1.0, 0.0]]), beta=2.0)
        tensor([[0.1065, 0.7870, 0.1065]])
    """
argmin = _over_positions("argmin")
argmin.__doc__ = """Per-example probabilities over positions of holding the minimum: softmin(beta x).

    Outside a relaxed function a tensor is batch-first, its positions along its last dimension::

        >>> avcompile.argmin(torch.tensor([[0.0, 1.0, 0.0]]), beta=2.0)
        tensor([[0.4683, 0.0634, 0.4683]])
    """
softmax = _over_positions("max")
softmax.__doc__ = """The soft maximum: sum of softmax(beta x) * x (AlgoVision's ``Max``).

    Of one tensor, over its last dimension; of several values, element by element::

        >>> avcompile.softmax(torch.tensor([[0.0, 1.0, 0.0]]), beta=2.0)
        tensor([0.7870])
        >>> avcompile.softmax(torch.tensor([0.0, 3.0]), torch.tensor([1.0, 1.0]), beta=2.0)
        tensor([0.8808, 2.9640])
    """
softmin = _over_positions("min")
softmin.__doc__ = """The soft minimum: sum of softmin(beta x) * x (AlgoVision's ``Min``).

    Of one tensor, over its last dimension; of several values, element by element::

        >>> avcompile.softmin(torch.tensor([[0.0, 1.0, 0.0]]), beta=2.0)
        tensor([0.0634])
        >>> avcompile.softmin(torch.tensor([0.0, 3.0]), torch.tensor([1.0, 1.0]), beta=2.0)
        tensor([0.1192, 1.0360])
    """


def probs(k, size=None):
    """The distribution of an integer over ``0, ..., size - 1``, per example.

    Inside a relaxed function ``k`` is a relaxed integer (SEMANTICS 10), such as the position
    that a relaxed selection sort picks, and ``probs`` gives its probabilities, to supervise the
    position directly::

        @relax(beta=10)
        def argmin_position(x):
            m = 0
            for j in range(1, len(x)):
                if x[j] < x[m]:
                    m = j
            return avcompile.probs(m, len(x))      # [B, n], each row sums to 1

    Outside a relaxed function an integer is certain: ``k`` (an int, or a tensor of ints with
    one per example) gives one-hot rows, ``size`` defaulting to one past the largest value::

        >>> avcompile.probs(torch.tensor([2, 0]), 3)
        tensor([[0., 0., 1.],
                [1., 0., 0.]])
    """
    k = torch.as_tensor(k)
    if k.is_floating_point() or k.is_complex() or k.dim() > 1:
        raise TypeError("probs() takes an int or a 1-D tensor of ints (one per example)")
    if size is None:
        size = int(k.max()) + 1 if k.numel() else 1
    if k.numel() and (int(k.min()) < 0 or int(k.max()) >= size):
        raise ValueError(f"probs(): a value lies outside 0, ..., {size - 1}")
    return torch.nn.functional.one_hot(k.long(), size).to(torch.get_default_dtype())


# What each function compiles to inside a relaxed function: its entry in the op registry.
COMPARISONS = {f: registry.BY_NAME[f.__name__] for f in (gt, ge, lt, le, eq, ne)}
REDUCTIONS = {
    argmax: registry.REDUCTIONS["argmax"],
    argmin: registry.REDUCTIONS["argmin"],
    softmax: registry.REDUCTIONS["max"],
    softmin: registry.REDUCTIONS["min"],
}

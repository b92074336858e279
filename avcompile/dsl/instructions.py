"""The instructions and conditions of AlgoVision's DSL: what a user writes in an ``Algorithm``."""

from __future__ import annotations

import re
import types

import torch

from .lambdas import _Lambda

VARIABLE_REGEX = r"^[_a-zA-Z][_a-zA-Z0-9]*$"


def _is_lambda(value):
    """AlgoVision's test for a lambda (``isinstance(x, LambdaType)``): any Python function."""
    return isinstance(value, types.FunctionType)


def _check_name(what, name):
    if not isinstance(name, str) or not re.match(VARIABLE_REGEX, name):
        raise ValueError(
            f"{what}: the name {name!r} is invalid; names have to match the regex {VARIABLE_REGEX}"
        )


def _show(value):
    """A DSL argument as a program would write it, for messages and the listing."""
    if _is_lambda(value):
        return _Lambda.of(value).text
    if isinstance(value, torch.Tensor):
        if value.numel() <= 4:
            return f"torch.tensor({value.tolist()!r})"
        return f"<tensor of shape {tuple(value.shape)}>"
    if isinstance(value, list):
        return "[" + ", ".join(map(_show, value)) + "]"
    return repr(value)


# ------------------------------------------------------------------------------------ core


class Input:
    """An argument of the ``Algorithm``: a batch-first tensor, read and written by name.

    ``shape`` and ``dtype``, when given, are checked at each call (``shape`` is one example's,
    without the batch dimension)::

        Algorithm(Input('x', shape=(8,)), ..., Output('x'))
    """

    def __init__(self, name, shape=None, dtype=None):
        _check_name(f"Input({name!r})", name)
        self.name, self.shape, self.dtype = name, shape, dtype

    def __repr__(self):
        return _call_repr("Input", [repr(self.name)], shape=self.shape, dtype=self.dtype)


class Output:
    """A variable the ``Algorithm`` returns (batch-first); several make a tuple, in order.

    Example::

        Algorithm(Input('x'), ..., Output('x'), Output('loss'))
    """

    def __init__(self, name, shape=None, dtype=None):
        _check_name(f"Output({name!r})", name)
        self.name, self.shape, self.dtype = name, shape, dtype

    def __repr__(self):
        return _call_repr("Output", [repr(self.name)], shape=self.shape, dtype=self.dtype)


class Variable:
    """A relaxed (differentiable) variable, the same initial value in every example.

    ``initial_value`` is a tensor (or a number), or a lambda of the inputs (and of the variables
    declared before) whose result is repeated over the batch. ``Var`` is an alias.

    Example::

        >>> algo = Algorithm(Input('x'), Var('d', lambda x: torch.zeros(x.shape[1])),
        ...                  Let('d', [0], 'x', [1]), Output('d'))
        >>> algo(torch.tensor([[1.0, 2.0], [3.0, 4.0]]))
        tensor([[2., 0.],
                [4., 0.]])
    """

    def __init__(self, name, initial_value):
        _check_name(f"Var({name!r})", name)
        if not (_is_lambda(initial_value) or isinstance(initial_value, (torch.Tensor, int, float))):
            raise TypeError(
                f"Var({name!r}): the initial value must be a tensor or a lambda, not "
                f"{type(initial_value).__name__}"
            )
        self.name = name
        self.initial_value = (
            initial_value.clone().detach()
            if isinstance(initial_value, torch.Tensor)
            else initial_value
        )

    def __repr__(self):
        return f"Var({self.name!r}, {_show(self.initial_value)})"


class VariableInt:
    """A hard integer variable (an int or a list of ints), the same in every example: loop
    bounds and indices. ``VarInt`` is an alias.

    Example::

        >>> algo = Algorithm(Input('x'), VarInt('n', lambda x: x.shape[1] - 1),
        ...                  Var('last', torch.tensor(0.)), Let('last', 'x', ['n']), Output('last'))
        >>> algo(torch.tensor([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]]))
        tensor([3., 6.])
    """

    def __init__(self, name, initial_value):
        _check_name(f"VarInt({name!r})", name)
        self.name = name
        if isinstance(initial_value, int) or _is_lambda(initial_value):
            self.initial_value = initial_value
        elif hasattr(initial_value, "__iter__") and not isinstance(
            initial_value, (str, torch.Tensor)
        ):
            self.initial_value = list(initial_value)
            for value in self.initial_value:
                if not isinstance(value, int):
                    raise TypeError(
                        f"VarInt({name!r}): a hard variable holds an int, a list of "
                        f"ints or a lambda returning one; the element {value!r} is "
                        f"{type(value).__name__}"
                    )
        else:
            raise TypeError(
                f"VarInt({name!r}): a hard variable holds an int, a list of ints or a "
                f"lambda returning one, not {type(initial_value).__name__}"
            )

    def __repr__(self):
        return f"VarInt({self.name!r}, {_show(self.initial_value)})"


Var = Variable
VarInt = VariableInt


def _call_repr(head, args, **kwargs):
    args = list(args) + [f"{k}={v!r}" for k, v in kwargs.items() if v is not None]
    return f"{head}({', '.join(args)})"


# ------------------------------------------------------------------------------------ conditions


class Condition:
    """Base of the conditions of ``If`` and ``While``: a probability per example.

    ``left`` and ``right`` are each a variable name, a lambda, a number or a tensor. ``beta``
    (optional) is the condition's own inverse temperature. ``c1 & c2`` is ``c1 * c2``, ``c1 | c2``
    is ``c1 + c2 - c1 * c2``.
    """

    op = None

    def __init__(self, left, right, *, beta=None):
        self.left, self.right, self.beta = left, right, beta

    def __and__(self, other):
        return _And(self, other)

    def __or__(self, other):
        return _Or(self, other)

    def __repr__(self):
        args = [_show(self.left)] + ([] if self.right is None else [_show(self.right)])
        return _call_repr(type(self).__name__, args, beta=self.beta)


class Eq(Condition):
    """``left == right``: 1 / cosh²(β·(left − right)/2).

    Example, the probability that ``a == 0``::

        >>> algo = Algorithm(Input('a'), Var('y', torch.tensor(0.)),
        ...                  If(Eq('a', 0.), if_true=Let('y', 1.)), Output('y'), beta=2)
        >>> algo(torch.tensor([1.0, 0.0, -1.0]))
        tensor([0.4200, 1.0000, 0.4200])
    """

    op = "=="


class NEq(Condition):
    """``left != right``: 1 − 1 / cosh²(β·(left − right)/2).

    Example, the probability that ``a != 0``::

        >>> algo = Algorithm(Input('a'), Var('y', torch.tensor(0.)),
        ...                  If(NEq('a', 0.), if_true=Let('y', 1.)), Output('y'), beta=2)
        >>> algo(torch.tensor([1.0, 0.0, -1.0]))
        tensor([0.5800, 0.0000, 0.5800])
    """

    op = "!="


class LT(Condition):
    """``left < right``: σ(−β·(left − right)).

    Example, the probability that ``a < 0``::

        >>> algo = Algorithm(Input('a'), Var('y', torch.tensor(0.)),
        ...                  If(LT('a', 0.), if_true=Let('y', 1.)), Output('y'), beta=2)
        >>> algo(torch.tensor([1.0, 0.0, -1.0]))
        tensor([0.1192, 0.5000, 0.8808])
    """

    op = "<"


class LEq(LT):
    """``left <= right``: relaxed as ``LT``; in hard mode ties hold.

    Example, the probability that ``a <= 0``::

        >>> algo = Algorithm(Input('a'), Var('y', torch.tensor(0.)),
        ...                  If(LEq('a', 0.), if_true=Let('y', 1.)), Output('y'), beta=2)
        >>> algo(torch.tensor([1.0, 0.0, -1.0]))
        tensor([0.1192, 0.5000, 0.8808])
    """

    op = "<="


class GT(Condition):
    """``left > right``: σ(β·(left − right)); ``GT('a', 'b', beta=5)`` has its own β.

    Example, the probability that ``a > 0``::

        >>> algo = Algorithm(Input('a'), Var('y', torch.tensor(0.)),
        ...                  If(GT('a', 0.), if_true=Let('y', 1.)), Output('y'), beta=2)
        >>> algo(torch.tensor([1.0, 0.0, -1.0]))
        tensor([0.8808, 0.5000, 0.1192])
    """

    op = ">"


class GEq(GT):
    """``left >= right``: relaxed as ``GT``; in hard mode ties hold.

    Example, the probability that ``a >= 0``::

        >>> algo = Algorithm(Input('a'), Var('y', torch.tensor(0.)),
        ...                  If(GEq('a', 0.), if_true=Let('y', 1.)), Output('y'), beta=2)
        >>> algo(torch.tensor([1.0, 0.0, -1.0]))
        tensor([0.8808, 0.5000, 0.1192])
    """

    op = ">="


class CatProbEq(Condition):
    """Two categorical distributions are equal: 1 / cosh(β·(1 − cos(left, right))), the cosine
    over each example's last dimension.

    Example, equal in the first example, orthogonal in the second::

        >>> algo = Algorithm(Input('p'), Input('q'), Var('y', torch.tensor(0.)),
        ...                  If(CatProbEq('p', 'q'), if_true=Let('y', 1.)), Output('y'), beta=2)
        >>> algo(torch.tensor([[1.0, 0.0], [1.0, 0.0]]), torch.tensor([[1.0, 0.0], [0.0, 1.0]]))
        tensor([1.0000, 0.2658])
    """


class CosineSimilarity(Condition):
    """The cosine similarity of ``left`` and ``right`` (over each example's last dimension) used
    as the probability.

    Example, equal in the first example, orthogonal in the second::

        >>> algo = Algorithm(Input('u'), Input('v'), Var('y', torch.tensor(0.)),
        ...                  If(CosineSimilarity('u', 'v'), if_true=Let('y', 1.)), Output('y'))
        >>> algo(torch.tensor([[1.0, 0.0], [1.0, 0.0]]), torch.tensor([[1.0, 0.0], [0.0, 1.0]]))
        tensor([1., 0.])
    """


class IsTrue(Condition):
    """A value in [0, 1] that is its own probability, as in ``While(IsTrue('swapped'), ...)``.

    Example::

        >>> algo = Algorithm(Input('p'), Var('y', torch.tensor(0.)),
        ...                  If(IsTrue('p'), if_true=Let('y', 1.)), Output('y'))
        >>> algo(torch.tensor([0.25, 1.0]))
        tensor([0.2500, 1.0000])
    """

    def __init__(self, var):
        super().__init__(var, None)


class IsFalse(Condition):
    """1 minus a value in [0, 1], as in ``If(IsFalse('done'), ...)``.

    Example::

        >>> algo = Algorithm(Input('p'), Var('y', torch.tensor(0.)),
        ...                  If(IsFalse('p'), if_true=Let('y', 1.)), Output('y'))
        >>> algo(torch.tensor([0.25, 1.0]))
        tensor([0.7500, 0.0000])
    """

    def __init__(self, var):
        super().__init__(var, None)


class _And(Condition):
    def __init__(self, left, right):
        for c in (left, right):
            if not isinstance(c, Condition):
                raise TypeError(f"`&` combines two conditions; got {type(c).__name__}")
        super().__init__(left, right)

    def __repr__(self):
        return f"({self.left!r} & {self.right!r})"


class _Or(Condition):
    def __init__(self, left, right):
        for c in (left, right):
            if not isinstance(c, Condition):
                raise TypeError(f"`|` combines two conditions; got {type(c).__name__}")
        super().__init__(left, right)

    def __repr__(self):
        return f"({self.left!r} | {self.right!r})"


# ------------------------------------------------------------------------------------ instructions


class AlgoModule:
    """Base of the DSL's instructions and control structures."""

    def __repr__(self):
        return type(self).__name__ + "(...)"


def _block_of(what, value, allow_none=True):
    """A branch or loop body as a list of instructions."""
    if value is None and allow_none:
        return []
    items = value if isinstance(value, (list, tuple)) else [value]
    for item in items:
        if not isinstance(item, AlgoModule):
            raise TypeError(
                f"{what}: expected instructions (Let, If, For, ...), got {item!r} of "
                f"type {type(item).__name__}"
            )
    return list(items)


class If(AlgoModule):
    """``if condition: if_true else: if_false``, relaxed: both branches run and every variable
    is blended, ``p * then + (1 - p) * else``. ``epsilon``, ``hard`` and ``debug`` override the
    ``Algorithm``'s for this ``If`` (avcompile never skips a branch, so ``epsilon`` has no effect)::

        If(GT('a', 'b'), if_true=[Let('max', 'a')], if_false=[Let('max', 'b')])
    """

    def __init__(self, condition, if_true=None, if_false=None, epsilon=None, hard=None, debug=None):
        if not isinstance(condition, Condition):
            raise TypeError(
                f"If: the condition must be a condition such as GT('a', 'b'), not "
                f"{type(condition).__name__}"
            )
        self.condition = condition
        self.if_true = _block_of("If(if_true=...)", if_true)
        self.if_false = _block_of("If(if_false=...)", if_false)
        self.epsilon, self.hard, self.debug = epsilon, hard, debug

    def __repr__(self):
        return _call_repr(
            "If", [repr(self.condition)], epsilon=self.epsilon, hard=self.hard, debug=self.debug
        )


class While(AlgoModule):
    """``while condition: sequence``, relaxed: the expectation over the iteration at which the
    loop stops, until the probability of going on is at most ``epsilon`` or after ``max_iter``
    iterations (local values override the ``Algorithm``'s)::

        While(LT('x', 5), Let('x', lambda x: x + 1), max_iter=100)
    """

    def __init__(self, condition, *sequence, max_iter=None, epsilon=None, hard=None, debug=None):
        if not isinstance(condition, Condition):
            raise TypeError(
                f"While: the condition must be a condition such as LT('x', 5), not "
                f"{type(condition).__name__}"
            )
        self.condition = condition
        self.sequence = _block_of("While", list(sequence))
        self.max_iter, self.epsilon, self.hard, self.debug = max_iter, epsilon, hard, debug

    def __repr__(self):
        return _call_repr(
            "While",
            [repr(self.condition)],
            max_iter=self.max_iter,
            epsilon=self.epsilon,
            hard=self.hard,
            debug=self.debug,
        )


class For(AlgoModule):
    """``for var in range_or_list: sequence``, a hard loop unrolled over an int (``range(n)``), a
    list, a ``VarInt``'s name or a lambda returning either. ``var`` must be a new name::

        For('i', 'n', Let('a', 'array', ['i']))
    """

    def __init__(self, var, range_or_list, *sequence):
        _check_name("For", var)
        if isinstance(range_or_list, (str, int)) or _is_lambda(range_or_list):
            self.range_or_list = range_or_list
        elif hasattr(range_or_list, "__iter__") and not isinstance(range_or_list, torch.Tensor):
            self.range_or_list = list(range_or_list)
        else:
            raise TypeError(
                f"For({var!r}, ...): the range must be an int, a list, a VarInt's name "
                f"or a lambda, not {type(range_or_list).__name__}"
            )
        self.var = var
        self.sequence = _block_of(f"For({var!r}, ...)", list(sequence))

    def __repr__(self):
        return f"For({self.var!r}, {_show(self.range_or_list)})"


class Let(AlgoModule):
    """Assignment. The forms of AlgoVision's table:

    | instruction | means | |
    | --- | --- | --- |
    | ``Let('a', 'x')`` | ``a = x`` | a variable |
    | ``Let('a', lambda x: x ** 2)`` | ``a = x ** 2`` | a lambda of variables |
    | ``Let('a', 'array', ['i'])`` | ``a = array[i]`` | indexing on the right |
    | ``Let('a', 'array', ['i', lambda j: j+1])`` | ``a = array[i, j+1]`` | lambdas as indices |
    | ``Let('a', 'array', [None, slice(0, None, 2)])`` | ``a = array[:, 0::2]`` | ``None``, slices |
    | ``Let('a', ['i'], 'x')`` | ``a[i] = x`` | indexing on the left |
    | ``Let('a', ['i'], 'x', ['j'])`` | ``a[i] = x[j]`` | both sides |
    | ``Let(['a', 'b'], lambda x, y: (x+y, x-y))`` | ``a, b = x+y, x-y`` | several values |
    | ``Let('a', [w], 'x')`` | ``a = w*x + (1-w)*a`` | ``w`` probability weights |

    A value is a variable's name, a lambda, a number or a tensor (repeated over the batch).

    Example, a running sum::

        >>> algo = Algorithm(Input('x'), Var('s', torch.tensor(0.)),
        ...                  For('i', 3, Let('s', lambda s, x, i: s + x[:, i])), Output('s'))
        >>> algo(torch.tensor([[1.0, 2.0, 3.0]]))
        tensor([6.])
    """

    def __init__(self, *args):
        self.variable, self.index_variable, self.value, self.index_value = None, None, None, None
        self.args = args
        if len(args) < 2:
            raise ValueError(f"Let: an assignment needs at least two arguments, got {len(args)}")
        if not isinstance(args[0], str):
            if not (len(args) == 2 and isinstance(args[0], list)):
                raise ValueError(
                    f"Let: the first argument must be a variable's name; a list of "
                    f"names is only allowed with a lambda as the one other argument. "
                    f"Given: {self._args()}"
                )
            if not all(isinstance(x, str) for x in args[0]):
                raise TypeError(
                    f"{self._args()}: the list of variables to write must hold names (strings) only"
                )
            if not _is_lambda(args[1]):
                raise TypeError(
                    f"{self._args()}: several variables are written only from a lambda "
                    f"that returns several values, not from {type(args[1]).__name__}"
                )
            self.variable, self.value = list(args[0]), args[1]
        elif len(args) == 2:
            self.variable, self.value = args
        elif len(args) == 3 and isinstance(args[1], list):
            self.variable, self.index_variable, self.value = args
        elif len(args) == 3 and isinstance(args[1], str) and isinstance(args[2], list):
            self.variable, self.value, self.index_value = args
        elif (
            len(args) == 4
            and isinstance(args[1], list)
            and isinstance(args[2], str)
            and isinstance(args[3], list)
        ):
            self.variable, self.index_variable, self.value, self.index_value = args
        else:
            raise ValueError(
                f"Invalid set of arguments for Let: {self._args()}; the forms are "
                f"Let(var, value), Let(var, [index], value), Let(var, 'x', [index]), "
                f"Let(var, [index], 'x', [index]) and Let([vars], lambda)"
            )
        if not (_is_lambda(self.value) or isinstance(self.value, (str, int, float, torch.Tensor))):
            raise TypeError(
                f"{self._args()}: the value must be a variable's name, a lambda, an "
                f"int, a float or a tensor, not {type(self.value).__name__}"
            )
        if isinstance(self.variable, str):
            _check_name(self._args(), self.variable)

    def _args(self):
        return f"Let({', '.join(_show(a) for a in self.args)})"

    def __repr__(self):
        return self._args()


class LetInt(AlgoModule):
    """Assignment of a hard variable: an int, a list of ints, a variable's name or a lambda
    returning one.

    Example::

        >>> algo = Algorithm(Input('x'), VarInt('n', lambda x: x.shape[1]),
        ...                  Var('last', torch.tensor(0.)), LetInt('n', lambda n: n - 1),
        ...                  Let('last', 'x', ['n']), Output('last'))
        >>> algo(torch.tensor([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]]))
        tensor([3., 6.])
    """

    def __init__(self, *args):
        self.args = args
        if len(args) != 2:
            raise ValueError(
                f"LetInt: exactly two arguments are needed, a variable's name and its "
                f"value; got {len(args)}: {self._args()}"
            )
        self.variable, value = args
        _check_name(self._args(), self.variable)
        if hasattr(value, "__iter__") and not isinstance(value, (str, torch.Tensor)):
            value = list(value)
            for x in value:
                if not isinstance(x, int):
                    raise TypeError(f"{self._args()}: the list holds {x!r}, which is not an int")
        elif not (isinstance(value, (int, str)) or _is_lambda(value)):
            raise TypeError(
                f"{self._args()}: the value must be an int, a list of ints, a "
                f"variable's name or a lambda, not {type(value).__name__}"
            )
        self.value = value
        self.index_variable = self.index_value = None

    def _args(self):
        return f"LetInt({', '.join(_show(a) for a in self.args)})"

    def __repr__(self):
        return self._args()


class Print(AlgoModule):
    """Print a lambda's result (it receives batch-first tensors) each time it runs, for debugging.

    Example::

        >>> algo = Algorithm(Input('x'), Print(lambda x: x.mean()), Output('x'))
        >>> algo(torch.tensor([1.0, 3.0]))
        tensor(2.)
        tensor([1., 3.])
    """

    def __init__(self, function):
        if not _is_lambda(function):
            raise TypeError(f"Print: expected a lambda, not {type(function).__name__}")
        self.function = function

    def __repr__(self):
        return f"Print({_show(self.function)})"


# ------------------------------------------------------------------------------------ functions


class _SoftFunction(torch.nn.Module):
    def __init__(self, beta):
        super().__init__()
        if beta is None:
            raise ValueError(
                f"{type(self).__name__}: beta is None but it has to be given "
                f"explicitly (it cannot be inferred from the Algorithm it is used in)"
            )
        self.beta = beta

    def extra_repr(self):
        return f"beta={self.beta}"


class Min(_SoftFunction):
    """Soft element-wise minimum of tensors of one shape: Σᵢ softmin(β·t)ᵢ·tᵢ over the tensors,
    for lambdas such as ``Let('m', lambda a, b: Min(beta=10)(a, b))``.

    Example::

        >>> Min(beta=2)(torch.tensor([0.0, 3.0]), torch.tensor([1.0, 1.0]))
        tensor([0.1192, 1.0360])
    """

    def forward(self, *tensors):
        tensors = torch.stack(tensors, -1)
        return (torch.nn.Softmin(-1)(self.beta * tensors) * tensors).sum(-1)


class ArgMin(_SoftFunction):
    """Soft arg-minimum of tensors of one shape: softmin(β·t) over the tensors (last dimension),
    for lambdas such as ``Let('w', lambda a, b, c: ArgMin(beta=10)(a, b, c))``.

    Example::

        >>> ArgMin(beta=2)(torch.tensor([0.0, 3.0]), torch.tensor([1.0, 1.0]))
        tensor([[0.8808, 0.1192],
                [0.0180, 0.9820]])
    """

    def forward(self, *tensors):
        return torch.nn.Softmin(-1)(self.beta * torch.stack(tensors, -1))


class Max(_SoftFunction):
    """Soft element-wise maximum of tensors of one shape: Σᵢ softmax(β·t)ᵢ·tᵢ over the tensors,
    for lambdas such as ``Let('m', lambda a, b: Max(beta=10)(a, b))``.

    Example::

        >>> Max(beta=2)(torch.tensor([0.0, 3.0]), torch.tensor([1.0, 1.0]))
        tensor([0.8808, 2.9640])
    """

    def forward(self, *tensors):
        tensors = torch.stack(tensors, -1)
        return (torch.nn.Softmax(-1)(self.beta * tensors) * tensors).sum(-1)


class ArgMax(_SoftFunction):
    """Soft arg-maximum of tensors of one shape: softmax(β·t) over the tensors (last dimension),
    for lambdas such as ``Let('w', lambda a, b: ArgMax(beta=10)(a, b))``.

    Example::

        >>> ArgMax(beta=2)(torch.tensor([0.0, 3.0]), torch.tensor([1.0, 1.0]))
        tensor([[0.1192, 0.8808],
                [0.9820, 0.0180]])
    """

    def forward(self, *tensors):
        return torch.nn.Softmax(-1)(self.beta * torch.stack(tensors, -1))

"""AlgoVision's DSL on avcompile's compiler: change one import, keep the program and its numbers.

``from avcompile.dsl import Algorithm, Input, Output, Var, Let, If, While, For, GT, ...`` takes
the programs of AlgoVision 0.1.2 as they are written for ``from algovision import ...``: the same
names, signatures, defaults and meaning. An ``Algorithm`` is not interpreted instruction by
instruction. It is lowered, once, to the relaxed IR that ``@relax`` produces from a Python function
and runs as the ``torch.nn.Module`` that avcompile's code generator emits for it (its source is
``algorithm.code``; ``avcompile show module:NAME`` prints it)::

    bubble_sort = Algorithm(
        Input('array'),
        Var('a', torch.tensor(0.)), Var('b', torch.tensor(0.)),
        Var('swapped', torch.tensor(1.)), Var('loss', torch.tensor(0.)),
        VarInt('n', lambda array: array.shape[1] - 1),
        While(IsTrue('swapped'),
              Let('swapped', 0),
              For('i', 'n',
                  Let('a', 'array', ['i']),
                  Let('b', 'array', [lambda i: i + 1]),
                  If(GT('a', 'b'), if_true=[
                      Let('array', [lambda i: i + 1], 'a'),
                      Let('array', ['i'], 'b'),
                      Let('swapped', 1.),
                      Let('loss', lambda loss: loss + 1.),
                  ])),
              LetInt('n', lambda n: n - 1)),
        Output('array'), Output('loss'),
        beta=5,
    )
    sorted_array, loss = bubble_sort(torch.randn(100, 8))

Lambdas read the variables their arguments name and receive batched, batch-first tensors, as in
AlgoVision; a lambda that is plain arithmetic of its arguments (``lambda loss: loss + 1.``) is
inlined into the generated code, any other is called. Misuse that AlgoVision catches with
``assert`` raises ``TypeError`` or ``ValueError``, mostly when the ``Algorithm`` is built.

Where avcompile differs on purpose: it never skips a branch (AlgoVision skips one whose probability
is at most ``epsilon`` in every example); hard mode (``hard=True``) makes every comparison exact,
``While`` included (AlgoVision thresholds an ``If``'s probability at 1/2 and keeps ``While`` soft);
``beta``, ``max_iter``, ``epsilon`` and ``hard`` are read at each call, so they can be changed on
the module; ``&`` and ``|`` also work on conditions without their own ``beta``.
"""

from __future__ import annotations

import ast
import builtins
import inspect
import itertools
import keyword
import linecache
import re
import types
import weakref
from dataclasses import dataclass

import torch

from . import ir, registry
from .api import build_module
from .kinds import CONSTANT, HARD, RELAXED
from .module import RelaxedModule
from .parse import Source

__all__ = [
    "GT",
    "LT",
    "Algorithm",
    "ArgMax",
    "ArgMin",
    "CatProbEq",
    "CosineSimilarity",
    "Eq",
    "For",
    "GEq",
    "If",
    "Input",
    "IsFalse",
    "IsTrue",
    "LEq",
    "Let",
    "LetInt",
    "Max",
    "Min",
    "NEq",
    "Output",
    "Print",
    "Var",
    "VarInt",
    "Variable",
    "VariableInt",
    "While",
]

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
    """A variable the ``Algorithm`` returns (batch-first); several make a tuple, in order::

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
    declared before) whose result is repeated over the batch: ``Var('loss', torch.tensor(0.))``,
    ``Var('d', lambda cost: torch.zeros(cost.shape[1]))``. ``Var`` is an alias.
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
    bounds and indices. ``VarInt('n', lambda array: array.shape[1] - 1)``; ``VarInt`` is an alias.
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
    """``left == right``: 1 / cosh²(β·(left − right)/2). ``Eq('a', 'b')``."""

    op = "=="


class NEq(Condition):
    """``left != right``: 1 − 1 / cosh²(β·(left − right)/2). ``NEq('a', 0.)``."""

    op = "!="


class LT(Condition):
    """``left < right``: σ(−β·(left − right)). ``LT('x', 5)``."""

    op = "<"


class LEq(LT):
    """``left <= right``: relaxed as ``LT``; in hard mode ties hold. ``LEq('x', 'y')``."""

    op = "<="


class GT(Condition):
    """``left > right``: σ(β·(left − right)). ``GT('a', 'b', beta=5)``."""

    op = ">"


class GEq(GT):
    """``left >= right``: relaxed as ``GT``; in hard mode ties hold. ``GEq('a', 0.)``."""

    op = ">="


class CatProbEq(Condition):
    """Two categorical distributions are equal: 1 / cosh(β·(1 − cos(left, right))), the cosine
    over each example's last dimension. ``CatProbEq('p', 'q')``."""


class CosineSimilarity(Condition):
    """The cosine similarity of ``left`` and ``right`` (over each example's last dimension) used
    as the probability. ``CosineSimilarity('u', 'v')``."""


class IsTrue(Condition):
    """A value in [0, 1] that is its own probability. ``While(IsTrue('swapped'), ...)``."""

    def __init__(self, var):
        super().__init__(var, None)


class IsFalse(Condition):
    """1 minus a value in [0, 1]. ``If(IsFalse('done'), ...)``."""

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

    =========================================  ======================  ==========================
    ``Let('a', 'x')``                          ``a = x``               a variable
    ``Let('a', lambda x: x ** 2)``             ``a = x ** 2``          a lambda of variables
    ``Let('a', 'array', ['i'])``               ``a = array[i]``        indexing on the right
    ``Let('a', 'array', ['i', lambda j: j+1])`` ``a = array[i, j+1]``  lambdas as indices
    ``Let('a', 'array', [None, slice(0, None, 2)])`` ``a = array[:, 0::2]``  ``None``, slices
    ``Let('a', ['i'], 'x')``                   ``a[i] = x``            indexing on the left
    ``Let('a', ['i'], 'x', ['j'])``            ``a[i] = x[j]``         both sides
    ``Let(['a', 'b'], lambda x, y: (x+y, x-y))`` ``a, b = x+y, x-y``   several values
    ``Let('a', [w], 'x')``                     ``a = w*x + (1-w)*a``   ``w`` probability weights
    =========================================  ======================  ==========================

    A value is a variable's name, a lambda, a number or a tensor (repeated over the batch).
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
    returning one. ``LetInt('n', lambda n: n - 1)``."""

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
    ``Print(lambda loss: loss.mean())``."""

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
    """Soft element-wise minimum of tensors of one shape: Σᵢ softmin(β·t)ᵢ·tᵢ over the tensors.
    For lambdas: ``Let('m', lambda a, b: Min(beta=10)(a, b))``."""

    def forward(self, *tensors):
        tensors = torch.stack(tensors, -1)
        return (torch.nn.Softmin(-1)(self.beta * tensors) * tensors).sum(-1)


class ArgMin(_SoftFunction):
    """Soft arg-minimum of tensors of one shape: softmin(β·t) over the tensors (last dimension).
    ``Let('w', lambda a, b, c: ArgMin(beta=10)(a, b, c))``."""

    def forward(self, *tensors):
        return torch.nn.Softmin(-1)(self.beta * torch.stack(tensors, -1))


class Max(_SoftFunction):
    """Soft element-wise maximum of tensors of one shape: Σᵢ softmax(β·t)ᵢ·tᵢ over the tensors.
    ``Let('m', lambda a, b: Max(beta=10)(a, b))``."""

    def forward(self, *tensors):
        tensors = torch.stack(tensors, -1)
        return (torch.nn.Softmax(-1)(self.beta * tensors) * tensors).sum(-1)


class ArgMax(_SoftFunction):
    """Soft arg-maximum of tensors of one shape: softmax(β·t) over the tensors (last dimension).
    ``Let('w', lambda a, b: ArgMax(beta=10)(a, b))``."""

    def forward(self, *tensors):
        return torch.nn.Softmax(-1)(self.beta * torch.stack(tensors, -1))


# ------------------------------------------------------------------------------------ Algorithm


class Algorithm(RelaxedModule):
    """A relaxed algorithm: a ``torch.nn.Module`` of code generated from the DSL program.

    ``sequence`` holds ``Input``s, ``Output``s, ``Var``s, ``VarInt``s and the instructions, which
    run in order. Calling the module with batch-first tensors (one per ``Input``) returns the
    ``Output``s, batch-first. ``beta`` (inverse temperature), ``max_iter`` and ``epsilon`` (of
    ``While``) and ``hard`` (exact comparisons) are attributes that may change between calls;
    ``debug=True`` prints the generated code. ``name`` names the generated class. ``code`` is the
    generated source, ``listing`` the program as text (the ``# L..`` comments of the code and the
    tracebacks of errors at run time cite its lines)::

        algo = Algorithm(Input('x'), Var('y', torch.tensor(0.)),
                         If(GT('x', 0.), if_true=Let('y', 'x')), Output('y'), beta=5)
        algo(torch.randn(100))   # shape [100]
        print(algo.code)
    """

    def __new__(
        cls,
        *sequence,
        beta=10.0,
        max_iter=2**10,
        epsilon=1e-5,
        hard=False,
        debug=False,
        name="algorithm",
    ):
        if cls is not Algorithm:  # copy.deepcopy and pickle make a bare instance
            return super().__new__(cls)
        builder = _Builder(sequence, name)
        fn_ir = builder.function()
        module = build_module(
            fn_ir,
            free=builder.free,
            user_names=builder.user_names(),
            beta=beta,
            max_iter=max_iter,
            eps=epsilon,
            hard=hard,
            filename="avcompile.dsl",
        )
        module.describe(module.ir, builder.listing_key)
        generated = type(module)
        module.__class__ = type(
            generated.__name__,
            (Algorithm, generated),
            {"__doc__": generated.__doc__, "__module__": generated.__module__},
        )
        module.debug = debug
        module.listing = builder.listing
        if debug:
            print(module.code)
        return module

    def __init__(self, *args, **kwargs):
        """Everything is done when the module is built (``__new__``), whose signature is the
        one ``inspect.signature(Algorithm)`` shows."""

    @property
    def epsilon(self):
        """AlgoVision's name of ``eps``: a ``While`` stops once it goes on with at most this
        probability."""
        return self.eps

    @epsilon.setter
    def epsilon(self, value):
        self.eps = value


# ------------------------------------------------------------------------------------ lambdas

_PURE_NODES = (
    ast.Name,
    ast.Constant,
    ast.BinOp,
    ast.UnaryOp,
    ast.Tuple,
    ast.Load,
    ast.Add,
    ast.Sub,
    ast.Mult,
    ast.Div,
    ast.FloorDiv,
    ast.Mod,
    ast.Pow,
    ast.USub,
    ast.UAdd,
)


_LAMBDAS = weakref.WeakKeyDictionary()  # a lambda -> what _Lambda knows of it


class _Lambda:
    """What the DSL knows of a user's lambda: its arguments (the variables it reads), its text and,
    when it is plain arithmetic of its arguments and numbers, the expression to inline."""

    def __init__(self, fn):
        spec = inspect.getfullargspec(fn)
        self.args = tuple(spec.args)
        self.name = fn.__name__ if fn.__name__.isidentifier() else "lambda"
        plain = not (spec.varargs or spec.varkw or spec.kwonlyargs or spec.defaults)
        body, same = _lambda_body(fn, self.args) if plain else (None, False)
        params = ", ".join(self.args)
        if body is not None:
            self.text = (
                f"lambda {params}: {ast.unparse(body)}"
                if params
                else f"lambda: {ast.unparse(body)}"
            )
        elif fn.__name__ == "<lambda>":
            self.text = f"<lambda {params}>"
        else:
            self.text = fn.__name__
        nodes = list(ast.walk(body)) if body is not None else []
        pure = (
            body is not None
            and same
            and not fn.__code__.co_freevars
            and all(isinstance(n, _PURE_NODES) for n in nodes)
            and all(n.id in self.args for n in nodes if isinstance(n, ast.Name))
            and all(isinstance(n.value, (int, float)) for n in nodes if isinstance(n, ast.Constant))
        )
        self.inline = body if pure else None

    @classmethod
    def of(cls, fn):
        info = _LAMBDAS.get(fn)
        if info is None:
            info = _LAMBDAS[fn] = cls(fn)
        return info


def _lambda_body(fn, args):
    """The body of a lambda as an AST, found from the columns its bytecode comes from, and whether
    compiling it again gives the same bytecode (then it is the lambda's exact body)."""
    code = fn.__code__
    if code.co_name != "<lambda>" or not hasattr(code, "co_positions"):  # Python >= 3.11
        return None, False
    spans = [p for p in code.co_positions() if None not in p and (p[0], p[2]) != (p[1], p[3])]
    lines = linecache.getlines(code.co_filename)
    if not spans or not lines:
        return None, False
    (l0, c0), (l1, c1) = min((p[0], p[2]) for p in spans), max((p[1], p[3]) for p in spans)
    if l1 > len(lines):
        return None, False
    raw = [line.encode() for line in lines[l0 - 1 : l1]]
    text = raw[0][c0:c1] if l0 == l1 else raw[0][c0:] + b"".join(raw[1:-1]) + raw[-1][:c1]
    try:
        text = text.decode()
        body = ast.parse(f"({text})", mode="eval").body
        again = compile(f"lambda {', '.join(args)}: ({text})", code.co_filename, "eval")
    except (SyntaxError, UnicodeDecodeError, ValueError):
        return None, False
    inner = [c for c in again.co_consts if isinstance(c, types.CodeType)]
    same = (
        bool(inner)
        and inner[0].co_code == code.co_code
        and inner[0].co_consts == code.co_consts
        and inner[0].co_names == code.co_names
    )
    return body, same


# ------------------------------------------------------------------------------------ lowering


@dataclass
class _Var:
    """A variable of the program: its DSL name, its name in generated code, its kind, one
    example's shape when known, and for hard variables the type of value (int or list) if known."""

    name: str
    local: str
    kind: object
    what: str
    shape: tuple | None = None
    holds: type | None = None
    unpacked: bool = False  # kept as a Python list of its elements (only used element-wise)

    def ref(self):
        return ir.Name(self.local, self.kind, self.unpacked)


def _number(value):
    """A Python number as a hard IR expression."""
    return ir.Const(value)


def _range(stop):
    return ir.Call(ir.Name("range", HARD), (stop,), (), HARD)


def _max_kind(exprs):
    return max((e.kind for e in exprs), default=HARD)


_ONES_LIKE = ir.Attr(ir.Name("torch", HARD), "ones_like", HARD)
_SLICE_ALL = ir.Slice(None, None, None)
_LISTINGS = itertools.count(1)  # numbers the listings registered with linecache


class _Builder:
    """Lowers a DSL program to an IR ``Function``, with the values of the free names it uses."""

    def __init__(self, sequence, name):
        if not isinstance(name, str) or not name.isidentifier() or keyword.iskeyword(name):
            raise ValueError(f"Algorithm: name={name!r} must be a Python identifier")
        self.name = name
        self.inputs, self.outputs, self.variables, self.variable_ints = [], [], [], []
        self.body = []
        for elem in sequence:
            if isinstance(elem, Input):
                self.inputs.append(elem)
            elif isinstance(elem, Output):
                self.outputs.append(elem)
            elif isinstance(elem, Variable):
                self.variables.append(elem)
            elif isinstance(elem, VariableInt):
                self.variable_ints.append(elem)
            elif isinstance(elem, AlgoModule):
                self.body.append(elem)
            else:
                raise TypeError(
                    f"Algorithm: you inserted {elem!r} of type {type(elem).__name__}, "
                    f"which is not supported; an Algorithm takes Input, Output, Var, "
                    f"VarInt and instructions (Let, If, While, For, ...)"
                )
        if not self.inputs:
            raise ValueError("Algorithm: you need to have at least one Input")
        if not self.outputs:
            raise ValueError("Algorithm: you need to have at least one Output")
        self.free = {}
        self.fn_names = {}  # id(lambda) -> its free name
        self.locals = {}  # DSL name -> name in generated code
        self.taken = set()
        self.scope = {}  # DSL name -> _Var, what the instruction being lowered can read
        self.declared = {}  # every declared variable
        self.written = []  # a stack of the sets of names written in the enclosing If/While
        self.names_in_program = set()
        self.lines, self.line_of = [], {}
        self.listing = self.make_listing()
        self.listing_key = f"<avcompile.dsl {name}#{next(_LISTINGS)}>"
        linecache.cache[self.listing_key] = (len(self.listing), None, self.lines, self.listing_key)
        self.source = Source(self.listing_key, tuple(self.lines))

    # ------------------------------------------------------------------------------ names

    def local(self, name):
        """The name of a DSL variable in generated code: itself, unless it is a keyword or would
        hide a builtin or ``torch`` that generated code uses."""
        if name not in self.locals:
            local = name
            while (
                keyword.iskeyword(local)
                or hasattr(builtins, local)
                or local == "torch"
                or local in self.taken
            ):
                local += "_"
            self.locals[name] = local
            self.taken.add(local)
        return self.locals[name]

    def fresh(self, base):
        """A new name for generated code that is no variable of the program."""
        name, k = base, 0
        while (
            name in self.free
            or name in self.names_in_program
            or name in self.taken
            or hasattr(builtins, name)
            or keyword.iskeyword(name)
            or name == "torch"
        ):
            k += 1
            name = f"{base}_{k}"
        self.taken.add(name)
        return name

    def fresh_free(self, base, value):
        """A new free name of the generated module, holding ``value``."""
        name = self.fresh(base)
        self.free[name] = value
        return name

    def literal(self, value, base):
        """A hard value the program holds, as IR: numbers, strings and lists or tuples of them are
        written out; anything else (a dtype, say) is a free name holding it."""
        plain = (int, float, bool, str, type(None))
        if isinstance(value, plain):
            return ir.Const(value)
        if isinstance(value, (list, tuple)) and all(isinstance(v, plain) for v in value):
            elts = tuple(ir.Const(v) for v in value)
            return ir.Tuple_(elts, HARD, is_list=isinstance(value, list))
        return ir.Name(self.fresh_free(base, value), HARD)

    def constant(self, value, base="constant"):
        """A tensor the program holds (shared by every example), as a free name."""
        return ir.Name(self.fresh_free(base, value.detach()), CONSTANT)

    def user_names(self):
        return set(self.taken) | set(self.locals.values())

    # ------------------------------------------------------------------------------ listing

    def make_listing(self):
        """The program as text, one instruction a line; generated code cites its lines."""
        self.lines.append("Algorithm(\n")
        for elem in self.inputs + self.variables + self.variable_ints:
            self.names_in_program.add(elem.name)
            self.list_line(elem, 1)
        for elem in self.body:
            self.list_item(elem, 1)
        for elem in self.outputs:
            self.list_line(elem, 1)
        self.lines.append(")\n")
        return "".join(self.lines)

    def list_line(self, elem, depth, text=None):
        self.line_of.setdefault(id(elem), len(self.lines) + 1)
        self.lines.append("    " * depth + (text or repr(elem)) + ",\n")

    def list_item(self, elem, depth):
        pad = "    " * depth
        if isinstance(elem, If):
            self.list_line(elem, depth, repr(elem)[:-1])
            for label, block in (("if_true", elem.if_true), ("if_false", elem.if_false)):
                if block:
                    self.lines.append(f"{pad}    {label}=[\n")
                    for item in block:
                        self.list_item(item, depth + 2)
                    self.lines.append(f"{pad}    ],\n")
            self.lines.append(f"{pad}),\n")
        elif isinstance(elem, (While, For)):
            if isinstance(elem, For):
                self.names_in_program.add(elem.var)
            self.list_line(elem, depth, repr(elem)[:-1])
            for item in elem.sequence:
                self.list_item(item, depth + 1)
            self.lines.append(f"{pad}),\n")
        else:
            self.list_line(elem, depth)

    # ------------------------------------------------------------------------------ function

    def function(self):
        """The IR function: inputs, variables' initial values, instructions, outputs."""
        for elem in self.inputs + self.variables + self.variable_ints:
            if elem.name in self.declared:
                raise ValueError(
                    f"{elem!r}: the name '{elem.name}' is defined for the second "
                    f"time, which is not supported. Already defined: "
                    f"{', '.join(self.declared)}"
                )
            self.declared[elem.name] = None
        for name in sorted(self.names_in_program):
            self.local(name)
        self.hard_types = self.infer_hard_types()
        self.unpacked = self.find_unpacked()
        params, body = [], []
        for elem in self.inputs:
            var = self.declare(elem, RELAXED, "an Input", shape=elem.shape)
            params.append(var.ref())
            if elem.shape is not None or elem.dtype is not None:
                body.append(self.check(var, elem))
        for elem in self.variables:
            body.append(self.init_var(elem))
        for elem in self.variable_ints:
            body.append(self.init_var_int(elem))
        body += self.block(self.body)
        refs = []
        for out in self.outputs:
            var = self.read(out.name, out)
            refs.append(var.ref())
            if (out.shape is not None or out.dtype is not None) and var.kind == RELAXED:
                body.append(self.check(var, out))
        value = refs[0] if len(refs) == 1 else ir.Tuple_(tuple(refs), _max_kind(refs))
        body.append(ir.Return(value, self.line_of[id(self.outputs[0])]))
        return ir.Function(
            name=self.name,
            params=tuple(params),
            defaults=(),
            body=tuple(body),
            free=tuple(sorted(self.free)),
            source=self.source,
        )

    def declare(self, elem, kind, what, shape=None, holds=None):
        var = _Var(
            elem.name,
            self.local(elem.name),
            kind,
            what,
            tuple(shape) if shape is not None else None,
            holds,
            unpacked=elem.name in self.unpacked,
        )
        self.scope[elem.name] = var
        self.declared[elem.name] = var
        return var

    def check(self, var, elem):
        dtype = self.literal(elem.dtype, "dtype")
        shape = self.literal(None if elem.shape is None else tuple(elem.shape), "shape")
        call = ir.Call(
            ir.Helper("check_example"), (var.ref(), shape, dtype, ir.Const(repr(elem))), (), HARD
        )
        return ir.ExprStmt(call, self.line_of[id(elem)])

    def init_var(self, elem):
        value = elem.initial_value
        line = self.line_of[id(elem)]
        if _is_lambda(value):
            init = ir.Lift(self.call(value, elem, "shared"), "batch")
            var = self.declare(elem, RELAXED, "a Var")
        elif isinstance(value, torch.Tensor) and value.dim() > 0:
            init = ir.Lift(self.constant(value, f"{self.local(elem.name)}_init"), "batch")
            var = self.declare(elem, RELAXED, "a Var", shape=value.shape)
        else:
            number = value.item() if isinstance(value, torch.Tensor) else value
            init = ir.Lift(_number(float(number)), "batch")
            var = self.declare(elem, RELAXED, "a Var", shape=())
        return ir.Assign((var.ref(),), init, line)

    def init_var_int(self, elem):
        value = elem.initial_value
        if _is_lambda(value):
            init = self.call(value, elem, "hard")
        else:
            init = self.literal(value, elem.name)
        var = self.declare(elem, HARD, "a VarInt", holds=self.hard_types.get(elem.name))
        return ir.Assign((var.ref(),), init, self.line_of[id(elem)])

    def infer_hard_types(self):
        """For each VarInt, int or list when every value it is given is one (else unknown)."""
        types_ = {}
        for v in self.variable_ints:
            init = v.initial_value
            types_[v.name] = type(init) if type(init) in (int, list) else None

        def value_type(value):
            if type(value) in (int, list):
                return type(value)
            if isinstance(value, str):
                return types_.get(value)
            inline = _Lambda.of(value).inline if _is_lambda(value) else None
            if inline is None or isinstance(inline, ast.Tuple):
                return None
            for n in ast.walk(inline):  # int arithmetic of ints stays an int
                if (
                    isinstance(n, (ast.Div, ast.Pow))
                    or isinstance(n, ast.Constant)
                    and type(n.value) is not int
                ):
                    return None
            names = [n.id for n in ast.walk(inline) if isinstance(n, ast.Name)]
            return int if all(types_.get(n) is int for n in names) else None

        def walk(items):
            for item in items:
                if (
                    isinstance(item, (Let, LetInt))
                    and isinstance(item.variable, str)
                    and item.variable in types_
                    and not item.index_variable
                ):
                    if value_type(item.value) is not types_[item.variable] or item.index_value:
                        types_[item.variable] = None
                elif isinstance(item, Let) and isinstance(item.variable, list):
                    for name in item.variable:
                        if name in types_:
                            types_[name] = None
                for block in (
                    getattr(item, "if_true", ()),
                    getattr(item, "if_false", ()),
                    getattr(item, "sequence", ()),
                ):
                    walk(block)

        for _ in range(len(types_) + 1):
            before = dict(types_)
            walk(self.body)
            if before == types_:
                break
        return types_

    def find_unpacked(self):
        """The Inputs and Vars (of a tensor initial value) that the program reads and writes only
        one element at a time, with one hard index: they are kept as lists of their elements, so
        that an element write costs no tensor op and a relaxed If blends only what it wrote."""
        relaxed = {v.name for v in self.inputs} | {v.name for v in self.variables}
        candidates = {v.name for v in self.inputs} | {
            v.name
            for v in self.variables
            if isinstance(v.initial_value, torch.Tensor) and v.initial_value.dim() > 0
        }
        indexed, whole = set(), set()

        def hard_index(index):
            if isinstance(index, bool) or index is None or isinstance(index, slice):
                return False
            if isinstance(index, str):
                return index not in relaxed
            if _is_lambda(index):
                return not set(_Lambda.of(index).args) & relaxed
            return isinstance(index, int)

        def read_by(value):
            if isinstance(value, str):
                whole.add(value)
            elif _is_lambda(value):
                whole.update(_Lambda.of(value).args)

        def condition(cond):
            for side in (cond.left, cond.right):
                if isinstance(side, Condition):
                    condition(side)
                else:
                    read_by(side)

        def walk(items):
            for item in items:
                if isinstance(item, Let) and isinstance(item.variable, str):
                    if item.index_variable:
                        ok = len(item.index_variable) == 1 and hard_index(item.index_variable[0])
                        (indexed if ok else whole).add(item.variable)
                        for index in item.index_variable:
                            read_by(index)
                    else:
                        whole.add(item.variable)
                    if item.index_value:
                        ok = len(item.index_value) == 1 and hard_index(item.index_value[0])
                        (indexed if ok else whole).add(item.value)
                        for index in item.index_value:
                            read_by(index)
                    else:
                        read_by(item.value)
                elif isinstance(item, (Let, LetInt)):
                    whole.update(
                        item.variable if isinstance(item.variable, list) else [item.variable]
                    )
                    read_by(item.value)
                elif isinstance(item, (If, While)):
                    condition(item.condition)
                elif isinstance(item, For):
                    read_by(item.range_or_list)
                elif isinstance(item, Print):
                    read_by(item.function)
                for block in (
                    getattr(item, "if_true", ()),
                    getattr(item, "if_false", ()),
                    getattr(item, "sequence", ()),
                ):
                    walk(block)

        walk(self.body)
        # Lambdas of initial values run once: they may read an unpacked array (it is stacked).
        return (candidates & indexed) - whole

    # ------------------------------------------------------------------------------ reading

    def read(self, name, ins, role="variable"):
        """The variable a name refers to where ``ins`` stands."""
        if not isinstance(name, str):
            raise TypeError(f"{ins!r}: expected a variable's name, got {name!r}")
        var = self.scope.get(name)
        if var is None:
            if name in self.declared:
                raise ValueError(
                    f"{ins!r}: the {role} '{name}' is not defined yet here (a Var's "
                    f"lambda can read the Inputs and the Vars declared before it, a "
                    f"VarInt's also every Var)"
                )
            known = ", ".join(sorted(self.scope)) or "none"
            raise ValueError(
                f"{ins!r}: the {role} '{name}' does not exist; the variables defined "
                f"here are: {known}"
            )
        return var

    def target(self, name, ins):
        """The variable an instruction writes; marks it written in the enclosing If/While."""
        if not isinstance(name, str):
            raise TypeError(f"{ins!r}: expected a variable's name to write, got {name!r}")
        var = self.scope.get(name)
        if var is None:
            known = ", ".join(sorted(self.scope)) or "none"
            raise ValueError(
                f"{ins!r}: the variable '{name}' is not declared but written to; "
                f"declare it with Var or VarInt (defined here: {known})"
            )
        for written in self.written:
            written.add(name)
        return var

    def value(self, value, ins, want):
        """IR of a value: a variable's name, a lambda, a number or a tensor. ``want`` says what a
        lambda's result is: 'relaxed' (per example), 'hard' (an int or list) or 'shared'."""
        if isinstance(value, str):
            return self.read(value, ins).ref()
        if _is_lambda(value):
            return self.call(value, ins, want)
        if isinstance(value, (bool, int, float)):
            return _number(value)
        if isinstance(value, torch.Tensor):
            return self.constant(value)
        raise TypeError(
            f"{ins!r}: {value!r} of type {type(value).__name__} is not a value; use a "
            f"variable's name, a lambda, a number or a tensor"
        )

    def call(self, fn, ins, want):
        """IR of calling a lambda with the variables its arguments name."""
        lam = _Lambda.of(fn)
        refs = [self.read(a, ins, role=f"argument of {lam.text}") for a in lam.args]
        env = dict(zip(lam.args, refs))
        relaxed = [r for r in refs if r.kind == RELAXED]
        same_layout = len({r.name for r in relaxed}) <= 1 or (
            None not in [r.shape for r in relaxed] and len({r.shape for r in relaxed}) == 1
        )
        if lam.inline is not None and same_layout:
            expr = self.inline(lam.inline, env)
            if want == "relaxed" or expr.kind != RELAXED:
                return expr
        key = id(fn)
        if key not in self.fn_names:
            self.fn_names[key] = self.fresh_free(lam.name, fn)
        func = ir.Name(self.fn_names[key], HARD)
        args = tuple(r.ref() for r in refs)
        if want == "relaxed":
            if relaxed:
                return ir.Call(func, args, (), RELAXED, "batched")
            return ir.Call(func, args, (), CONSTANT)
        if relaxed:
            mask = ir.Tuple_(tuple(ir.Const(r.kind == RELAXED) for r in refs), HARD)
            return ir.Call(
                ir.Helper("call_first"), (func, ir.Tuple_(args, RELAXED), mask), (), HARD
            )
        return ir.Call(func, args, (), HARD)

    def inline(self, node, env):
        """A pure lambda's body as IR over the program's variables."""
        if isinstance(node, ast.Name):
            return env[node.id].ref()
        if isinstance(node, ast.Constant):
            return _number(node.value)
        if isinstance(node, ast.Tuple):
            elts = tuple(self.inline(e, env) for e in node.elts)
            return ir.Tuple_(elts, _max_kind(elts))
        if isinstance(node, ast.BinOp):
            left, right = self.inline(node.left, env), self.inline(node.right, env)
            op = registry.BINARY[type(node.op)]
            return ir.BinOp(op, left, right, _max_kind((left, right)))
        operand = self.inline(node.operand, env)
        return ir.UnaryOp(registry.UNARY[type(node.op)], operand, operand.kind)

    # ------------------------------------------------------------------------------ instructions

    def block(self, items):
        out = []
        for item in items:
            out += self.instruction(item)
        return tuple(out)

    def instruction(self, ins):
        line = self.line_of[id(ins)]
        if isinstance(ins, LetInt):
            return self.let_int(ins, line)
        if isinstance(ins, Let):
            return self.let(ins, line)
        if isinstance(ins, If):
            return self.if_(ins, line)
        if isinstance(ins, While):
            return self.while_(ins, line)
        if isinstance(ins, For):
            return self.for_(ins, line)
        if isinstance(ins, Print):
            shown = self.call(ins.function, ins, "shared")
            return [ir.ExprStmt(ir.Call(ir.Name("print", HARD), (shown,), (), HARD), line)]
        raise TypeError(f"{ins!r} is not an instruction avcompile.dsl knows")

    def let(self, ins, line):
        if isinstance(ins.variable, list):
            return self.let_many(ins, line)
        var = self.target(ins.variable, ins)
        if ins.index_value:
            value = self.read_indexed(ins)
        else:
            value = self.value(ins.value, ins, "relaxed" if var.kind == RELAXED else "hard")
        if ins.index_variable:
            return [self.write_indexed(var, ins, value, line)]
        return [ir.Assign((var.ref(),), self.fit(var, value, ins), line)]

    def let_int(self, ins, line):
        var = self.target(ins.variable, ins)
        value = ins.value
        if isinstance(value, list):
            expr = self.literal(value, var.local)
        elif isinstance(value, str):
            expr = self.read(value, ins).ref()
            if expr.kind == RELAXED:
                raise TypeError(
                    f"{ins!r}: '{value}' is a relaxed variable (a tensor); LetInt "
                    f"takes an int, a list of ints or a hard variable"
                )
        else:
            expr = self.value(value, ins, "hard")
        return [ir.Assign((var.ref(),), self.fit(var, expr, ins), line)]

    def fit(self, var, value, ins):
        """``value`` as a Let writes it to the whole of ``var``: a per-example value of the same
        shape as it is, a number or a shared tensor filling the variable."""
        if var.kind != RELAXED:
            if value.kind == RELAXED:
                raise TypeError(
                    f"{ins!r}: '{var.name}' is {var.what}, a hard variable; a "
                    f"per-example value cannot be written to it (write it to a Var)"
                )
            return value
        if value.kind == RELAXED:
            if isinstance(value, ir.Call) and value.how == "batched":
                return ir.Call(
                    ir.Helper("let_value"), (value, var.ref(), ir.Const(repr(ins))), (), RELAXED
                )
            source = self.declared.get(value.id) if isinstance(value, ir.Name) else None
            if (
                source is not None
                and None not in (source.shape, var.shape)
                and source.shape != var.shape
            ):
                raise ValueError(
                    f"{ins!r}: '{source.name}' has shape {source.shape} but "
                    f"'{var.name}' has shape {var.shape} (of one example); a Let must "
                    f"keep the variable's shape"
                )
            return value
        if (
            isinstance(ins, Let)
            and isinstance(ins.value, torch.Tensor)
            and var.shape is not None
            and tuple(ins.value.shape) != var.shape
        ):
            raise ValueError(
                f"{ins!r}: the tensor has shape {tuple(ins.value.shape)} but "
                f"'{var.name}' has shape {var.shape} (of one example)"
            )
        if var.shape == () or (isinstance(ins, Let) and isinstance(ins.value, torch.Tensor)):
            return ir.Lift(value, "batch")
        lifted = ir.Lift(value) if value.kind == CONSTANT else value
        ones = ir.Call(_ONES_LIKE, (var.ref(),), (), RELAXED)
        return ir.BinOp(registry.BY_SYMBOL["*"], lifted, ones, RELAXED)

    def let_many(self, ins, line):
        targets = [self.target(name, ins) for name in ins.variable]
        want = "relaxed" if any(v.kind == RELAXED for v in targets) else "hard"
        value = self.call(ins.value, ins, want)
        refs = ir.Tuple_(tuple(v.ref() for v in targets), HARD)
        if isinstance(value, ir.Tuple_):
            if len(value.elts) != len(targets):
                raise ValueError(
                    f"{ins!r}: {len(targets)} variables to write but the lambda "
                    f"returns {len(value.elts)} values"
                )
            elts = tuple(self.fit(v, e, ins) for v, e in zip(targets, value.elts))
            return [ir.Assign((refs,), ir.Tuple_(elts, _max_kind(elts)), line)]
        if (
            all(v.kind == RELAXED for v in targets)
            and value.kind == RELAXED
            or all(v.kind != RELAXED for v in targets)
            and value.kind != RELAXED
        ):
            return [ir.Assign((refs,), value, line)]
        temps = []
        for v in targets:
            kind = v.kind if value.kind == RELAXED else value.kind
            temps.append(ir.Name(self.fresh(f"{v.local}_value"), kind))
        out = [ir.Assign((ir.Tuple_(tuple(temps), HARD),), value, line)]
        for v, t in zip(targets, temps):
            out.append(ir.Assign((v.ref(),), self.fit(v, t, ins), line))
        return out

    def index_expr(self, index, ins, side):
        """A hard index of a Let's list (``side``: 'value' or 'variable'), or None if it is not
        hard (a probability-weight tensor or a lambda of per-example values)."""
        if index is None:
            return _SLICE_ALL
        if (
            isinstance(index, bool)
            or not isinstance(index, (int, slice, str))
            and not _is_lambda(index)
        ):
            return None
        if isinstance(index, int):
            return _number(index)
        if isinstance(index, slice):
            parts = [
                None if p is None else self.value(p, ins, "hard")
                for p in (index.start, index.stop, index.step)
            ]
            return ir.Slice(*parts)
        if isinstance(index, str):
            var = self.read(index, ins, role="index")
            return var.ref() if var.kind != RELAXED else None
        role = f"argument of {_show(index)}"
        reads = [self.read(a, ins, role=role) for a in _Lambda.of(index).args]
        if side == "variable" and any(v.kind == RELAXED for v in reads):
            return None  # an int or probability weights: known when it runs
        expr = self.call(index, ins, "hard")
        if expr.kind == RELAXED:
            raise TypeError(
                f"{ins!r}: the index {_show(index)} reads per-example values; an index "
                f"of the value must be an int (index relaxed values inside a lambda)"
            )
        return expr

    def read_indexed(self, ins):
        source = self.read(ins.value, ins)
        if source.kind != RELAXED:
            raise TypeError(
                f"{ins!r}: indexing the value is only allowed if it is a tensor, but "
                f"'{source.name}' is {source.what}"
            )
        if source.shape is not None and len(ins.index_value) > len(source.shape):
            raise ValueError(
                f"{ins!r}: too many indices ({len(ins.index_value)}) for "
                f"'{source.name}' of shape {source.shape} (one example's; the batch "
                f"dimension is handled implicitly)"
            )
        elts = []
        for index in ins.index_value:
            expr = self.index_expr(index, ins, "value")
            if expr is None:
                raise TypeError(
                    f"{ins!r}: the index {_show(index)} of the value must be an int, a "
                    f"hard variable, a lambda returning an int, None or a slice"
                )
            elts.append(expr)
        index = elts[0] if len(elts) == 1 else ir.Tuple_(tuple(elts), HARD)
        return ir.Index(source.ref(), index, RELAXED)

    def write_indexed(self, var, ins, value, line):
        if var.kind != RELAXED:
            raise TypeError(
                f"{ins!r}: indexing the variable is only allowed if it is a tensor, "
                f"but '{var.name}' is {var.what}"
            )
        indices = ins.index_variable
        if var.shape is not None and len(indices) > len(var.shape):
            raise ValueError(
                f"{ins!r}: too many indices ({len(indices)}) for '{var.name}' of "
                f"shape {var.shape} (one example's; the batch dimension is handled "
                f"implicitly)"
            )
        hard, weights, dynamic = [], None, False
        for index in indices:
            expr = self.index_expr(index, ins, "variable")
            if expr is not None and expr.kind != RELAXED:
                hard.append(expr)
            elif isinstance(index, str):
                weights = self.read(index, ins).ref()
            elif isinstance(index, torch.Tensor):
                weights = ir.Lift(self.constant(index, "weights"), "batch")
            elif _is_lambda(index):
                dynamic = True
            else:
                raise TypeError(
                    f"{ins!r}: the index {_show(index)} of type "
                    f"{type(index).__name__} is not a legal index type; use an int, a "
                    f"hard variable, None, a slice, a lambda or probability weights"
                )
        if weights is not None:
            if len(indices) != 1:
                raise ValueError(
                    f"{ins!r}: probabilistic indexing for writing to '{var.name}' "
                    f"takes exactly one index, the probability weights of writing "
                    f"each element"
                )
            call = ir.Call(ir.Helper("weighted_write"), (var.ref(), value, weights), (), RELAXED)
            return ir.Assign((var.ref(),), call, line)
        if dynamic:
            elts = []
            for index in indices:
                if index is None or isinstance(index, slice):
                    s = index or slice(None)
                    parts = tuple(ir.Const(p) for p in (s.start, s.stop, s.step))
                    elts.append(ir.Call(ir.Name("slice", HARD), parts, (), HARD))
                elif _is_lambda(index):
                    elts.append(self.call(index, ins, "hard"))
                else:
                    elts.append(self.index_expr(index, ins, "variable"))
            call = ir.Call(
                ir.Helper("index_write"),
                (var.ref(), ir.Tuple_(tuple(elts), HARD), value, ir.Const(repr(ins))),
                (),
                RELAXED,
            )
            return ir.Assign((var.ref(),), call, line)
        index = hard[0] if len(hard) == 1 else ir.Tuple_(tuple(hard), HARD)
        if var.unpacked and value.kind != RELAXED:
            value = ir.Lift(value, "batch")  # an element of its own
        elif value.kind == CONSTANT:
            value = ir.Lift(value)
        return ir.Assign((ir.Index(var.ref(), index, RELAXED),), value, line)

    # ------------------------------------------------------------------------------ control

    def condition(self, cond, ins, mode):
        """IR of a condition: a probability if relaxed, else a Python truth value. ``mode`` is
        the If/While's own 'hard' or 'soft', or None for the module's."""
        rx = (
            ir.Rx()
            if mode is None
            else ir.Call(ir.Helper("mode_of"), (ir.Rx(), ir.Const(mode)), (), HARD)
        )
        if isinstance(cond, (_And, _Or)):
            op = registry.BOOL[ast.And if isinstance(cond, _And) else ast.Or]
            left = self.condition(cond.left, ins, mode)
            right = self.condition(cond.right, ins, mode)
            if RELAXED not in (left.kind, right.kind):
                return ir.BoolOp(op, (left, right), HARD)
            if left.kind != RELAXED:  # a hard operand decides as in Python
                if op.name == "and":
                    return ir.IfExp(left, right, ir.Const(0.0), RELAXED)
                return ir.IfExp(left, ir.Const(1.0), right, RELAXED)
            if right.kind != RELAXED:
                right = ir.IfExp(right, ir.Const(1.0), ir.Const(0.0), HARD)
            return ir.BoolOp(op, (left, right), RELAXED)
        if isinstance(cond, (IsTrue, IsFalse)):
            value = self.value(cond.left, ins, "relaxed")
            if value.kind != RELAXED:
                return value if isinstance(cond, IsTrue) else ir.Not(value, HARD)
            truth = (
                ir.Truth(value)
                if mode is None
                else ir.Call(ir.Attr(rx, "truth", HARD), (value,), (), RELAXED)
            )
            return truth if isinstance(cond, IsTrue) else ir.Not(truth, RELAXED)
        left, right = self.operand(cond.left, ins), self.operand(cond.right, ins)
        if cond.beta is None:
            beta = None
        elif isinstance(cond.beta, (int, float)) and not isinstance(cond.beta, bool):
            beta = _number(cond.beta)
        elif isinstance(cond.beta, torch.Tensor):
            beta = ir.Name(self.fresh_free("beta", cond.beta), CONSTANT)  # learnable, say
        else:
            raise TypeError(
                f"{ins!r}: the beta of {cond!r} must be a number or a tensor, not "
                f"{type(cond.beta).__name__}"
            )
        kwargs = (("beta", beta),) if beta is not None else ()
        if isinstance(cond, (CatProbEq, CosineSimilarity)):
            helper = "cat_prob_eq" if isinstance(cond, CatProbEq) else "cosine_similarity"
            return ir.Call(
                ir.Helper(helper),
                (rx, left, right),
                kwargs if isinstance(cond, CatProbEq) else (),
                RELAXED,
            )
        if cond.op is None:
            raise TypeError(
                f"{ins!r}: {type(cond).__name__} is not a condition that avcompile.dsl knows"
            )
        op = registry.BY_SYMBOL[cond.op]
        if RELAXED not in (left.kind, right.kind):
            return ir.Compare(op, left, right, HARD)
        if mode is None:
            return ir.Compare(op, left, right, RELAXED, beta)
        return ir.Call(ir.Attr(rx, op.relaxation, HARD), (left, right), kwargs, RELAXED)

    def operand(self, value, ins):
        expr = self.value(value, ins, "relaxed")
        return ir.Lift(expr) if expr.kind == CONSTANT else expr

    def debug_print(self, ins, test, line):
        if not ins.debug or test.kind != RELAXED:
            return []
        shown = ir.Call(ir.Helper("output"), (test,), (), HARD)
        return [
            ir.ExprStmt(
                ir.Call(ir.Name("print", HARD), (ir.Const(f"{ins!r}:"), shown), (), HARD), line
            )
        ]

    def enter(self):
        self.written.append(set())
        return dict(self.scope)

    def leave(self, outer):
        written = self.written.pop()
        return sorted((outer[n] for n in written if n in outer), key=lambda v: v.local)

    def if_(self, ins, line):
        mode = None if ins.hard is None else ("hard" if ins.hard else "soft")
        test = self.condition(ins.condition, ins, mode)
        outer = self.enter()
        body, orelse = self.block(ins.if_true), self.block(ins.if_false)
        written = self.leave(outer)
        pre = self.debug_print(ins, test, line)
        if test.kind != RELAXED:
            return pre + [ir.If(test, body, orelse, False, (), line)]
        for var in written:
            if var.kind != RELAXED:
                raise ValueError(
                    f"{ins!r}: '{var.name}' is {var.what}, a hard variable, and is "
                    f"written under this relaxed condition; a hard variable has one "
                    f"value for the whole batch. Write it outside the If, or keep a "
                    f"Var for the per-example value"
                )
        blended = tuple(v.ref() for v in written)
        return pre + [ir.If(test, body, orelse, True, blended, line)]

    def while_(self, ins, line):
        mode = None if ins.hard is None else ("hard" if ins.hard else "soft")
        test = self.condition(ins.condition, ins, mode)
        outer = self.enter()
        body = self.block(ins.sequence)
        carried = tuple(v.ref() for v in self.leave(outer))
        pre = self.debug_print(ins, test, line)
        if test.kind != RELAXED:
            return pre + [ir.While(test, body, False, (), line)]
        max_iter = None if ins.max_iter is None else _number(ins.max_iter)
        eps = None if ins.epsilon is None else _number(ins.epsilon)
        return pre + [ir.While(test, body, True, carried, line, max_iter=max_iter, eps=eps)]

    def for_(self, ins, line):
        if ins.var in self.scope:
            raise ValueError(
                f"{ins!r}: the loop variable '{ins.var}' must not exist in the outer "
                f"scope, but it is {self.scope[ins.var].what}"
            )
        over = ins.range_or_list
        if isinstance(over, int):
            iter_ = _range(ir.Const(over))
        elif isinstance(over, list):
            iter_ = self.literal(over, "values")
        elif isinstance(over, str):
            var = self.read(over, ins, role="range")
            if var.kind == RELAXED:
                raise TypeError(
                    f"{ins!r}: the range '{over}' is {var.what}, a tensor; a For loop "
                    f"runs over an int or a list of ints (a VarInt)"
                )
            if var.holds is int:
                iter_ = _range(var.ref())
            elif var.holds is list:
                iter_ = var.ref()
            else:
                iter_ = ir.Call(ir.Helper("as_range"), (var.ref(),), (), HARD)
        else:
            iter_ = ir.Call(ir.Helper("as_range"), (self.call(over, ins, "hard"),), (), HARD)
        counter = _Var(ins.var, self.local(ins.var), HARD, "a For loop's variable", holds=int)
        self.scope[ins.var] = counter
        try:
            body = self.block(ins.sequence)
        finally:
            del self.scope[ins.var]
        return [ir.For(counter.ref(), iter_, body, line)]

"""The op registry: every operation a relaxed program can apply, with all of its rules in one entry.

An entry says how the front ends recognise the op (its Python spelling and AST node), its kind rule,
how it acts on a batch, whether it can make values that are not finite (then a relaxed branch
guards it), and which runtime implementation relaxes it (the soft, hard and straight-through forms
of comparisons and soft extrema live in ``runtime.Relaxation`` under that name). The front ends,
the passes and the emitter read entries; none of them lists ops of its own. Adding an op is adding
an entry here.
"""

import ast
import enum
from dataclasses import dataclass
from typing import Optional

from .ir import HARD, Kind


class Batching(enum.Enum):
    """How an op treats the batch (batch-last inside a generated module, see runtime.py)."""

    ELEMENTWISE = "elementwise"  # element by element: broadcasting already acts per example
    PER_EXAMPLE = "per_example"  # a torch function applied to each example (through torch.vmap)
    CONSTRUCT = "construct"  # makes a tensor from hard values: shared by every example
    HARD_ONLY = "hard"  # a Python builtin whose result is hard (len, range, ...)
    SOFT = "soft"  # relaxed through the call's Relaxation (comparisons, soft min / max)
    CALLED = "called"  # called as written (a builtin such as `abs`): as its arguments allow


ELEMENTWISE, PER_EXAMPLE, CONSTRUCT = Batching.ELEMENTWISE, Batching.PER_EXAMPLE, Batching.CONSTRUCT
HARD_ONLY, SOFT, CALLED = Batching.HARD_ONLY, Batching.SOFT, Batching.CALLED


@dataclass(frozen=True)
class Op:
    """One operation and its rules."""

    name: str  # the op's name: 'add', 'gt', 'sqrt', 'min'
    symbol: Optional[str] = None  # Python's spelling of an operator: '+', '>', 'not'
    node: Optional[type] = None  # its AST node type, to translate and to emit
    batching: Batching = ELEMENTWISE
    risky: bool = False  # can give values that are not finite or infinite slopes
    guard: Optional[str] = None  # the runtime function computing a risky operator, for `guarded`
    relaxation: Optional[str] = None  # the runtime.Relaxation method that relaxes it
    on_tensors: Optional[str] = None  # the runtime function computing it on relaxed values
    float_result: bool = False  # a constructor whose dtype follows the call's inputs
    integral: bool = False  # integers in, an integer out: a relaxed integer stays one
    needs_law: bool = False  # on a relaxed integer it needs the distribution, not the expectation
    per_example: Optional[str] = None  # on relaxed values: this torch function, per example

    def __str__(self):
        return self.symbol or self.name

    def kind(self, arg_kinds):
        """The kind of the op's result from the kinds of its arguments."""
        if self.batching == HARD_ONLY:
            return HARD
        return Kind(max(arg_kinds, default=HARD))

    def safe_with(self, right):
        """Whether a risky operator is safe with this literal right operand (``x / 2``,
        ``x ** 2``): a literal divisor that is not 0, a whole non-negative exponent."""
        if not isinstance(right, (int, float)) or isinstance(right, bool):
            return False
        if self.name == "pow":
            return right == int(right) and right >= 0
        return right != 0


# Operators that map integers to integers (SEMANTICS 10), and those of them whose result on a
# relaxed integer is not a linear function of it (so its expectation would not do).
_INTEGRAL = frozenset({"add", "sub", "mul", "floordiv", "mod", "neg", "pos"})
_NEEDS_LAW = frozenset({"floordiv", "mod"})


def _operators(rows):
    per_example = {"matmul": "matmul"}  # `A @ v` of relaxed values is torch.matmul per example
    return {
        node: Op(
            name,
            symbol,
            node,
            risky=guard is not None,
            guard=guard,
            on_tensors=tensors,
            integral=name in _INTEGRAL,
            needs_law=name in _NEEDS_LAW,
            per_example=per_example.get(name),
        )
        for node, name, symbol, guard, tensors in rows
    }


BINARY = _operators(
    [
        (ast.Add, "add", "+", None, None),
        (ast.Sub, "sub", "-", None, None),
        (ast.Mult, "mul", "*", None, None),
        (ast.Div, "truediv", "/", "div", None),
        # Python's floor division, with a zero derivative (torch's `//` has none)
        (ast.FloorDiv, "floordiv", "//", "floordiv", "floordiv"),
        (ast.Mod, "mod", "%", "mod", None),
        (ast.Pow, "pow", "**", "power", None),
        (ast.MatMult, "matmul", "@", None, None),
        (ast.BitAnd, "and_", "&", None, None),
        (ast.BitOr, "or_", "|", None, None),
        (ast.BitXor, "xor", "^", None, None),
        (ast.LShift, "lshift", "<<", None, None),
        (ast.RShift, "rshift", ">>", None, None),
    ]
)
UNARY = _operators(
    [
        (ast.USub, "neg", "-", None, None),
        (ast.UAdd, "pos", "+", None, None),
        (ast.Invert, "invert", "~", None, None),
        (ast.Not, "not", "not", None, None),
    ]
)


def _comparisons():
    rows = [
        (ast.Gt, "gt", ">"),
        (ast.GtE, "ge", ">="),
        (ast.Lt, "lt", "<"),
        (ast.LtE, "le", "<="),
        (ast.Eq, "eq", "=="),
        (ast.NotEq, "ne", "!="),
    ]
    out = {
        node: Op(name, symbol, node, SOFT, relaxation=name, needs_law=True)
        for node, name, symbol in rows
    }
    for node, name, symbol in [
        (ast.Is, "is_", "is"),
        (ast.IsNot, "is_not", "is not"),
        (ast.In, "contains", "in"),
        (ast.NotIn, "not_contains", "not in"),
    ]:
        out[node] = Op(name, symbol, node, HARD_ONLY)  # no relaxed meaning
    return out


COMPARE = _comparisons()
BOOL = {ast.And: Op("and", "and", ast.And, SOFT), ast.Or: Op("or", "or", ast.Or, SOFT)}
BY_SYMBOL = {op.symbol: op for table in (BINARY, COMPARE, BOOL) for op in table.values()}
BY_NAME = {op.name: op for table in (BINARY, COMPARE, BOOL) for op in table.values()}
UNARY_BY_SYMBOL = {op.symbol: op for op in UNARY.values()}


def relaxes(op):
    """Whether a comparison has a relaxed meaning (``<``, ``==``, ... but not ``in``, ``is``)."""
    return op.batching == SOFT


# ----------------------------------------------------------------------------- torch functions

_ELEMENTWISE_NAMES = """
abs absolute acos arccos acosh add addcmul addcdiv asin arcsin asinh atan arctan atan2 atanh
ceil clamp clamp_min clamp_max clip cos cosh deg2rad div divide erf erfc erfinv exp exp2 expm1
float_power floor floor_divide fmax fmin fmod frac hypot isfinite isinf isnan isneginf isposinf
lerp lgamma log log10 log1p log2 logaddexp logaddexp2 logical_and logical_not logical_or
logical_xor logit maximum minimum mul multiply nan_to_num neg negative pow rad2deg reciprocal
remainder round rsqrt sigmoid sign signbit sin sinc sinh softplus sqrt square sub subtract tan
tanh true_divide trunc where xlogy relu relu6 elu selu celu gelu silu mish hardtanh hardsigmoid
hardswish leaky_relu logsigmoid softsign tanhshrink threshold
float double half bfloat16 to clone detach contiguous type_as digamma arctanh arccosh
""".split()
_RISKY_NAMES = frozenset(
    """
sqrt rsqrt log log2 log10 log1p reciprocal acos arccos asin arcsin atanh arctanh acosh arccosh
pow float_power div divide true_divide floor_divide remainder fmod exp exp2 expm1 tan lgamma
digamma erfinv logit xlogy
""".split()
)
_FLOAT_CONSTRUCTORS = "zeros ones full empty eye linspace logspace rand randn".split()
_CONSTRUCTORS = _FLOAT_CONSTRUCTORS + ["arange", "tensor"]

TORCH = {name: Op(name, risky=name in _RISKY_NAMES) for name in _ELEMENTWISE_NAMES}
TORCH.update(
    {
        name: Op(name, batching=CONSTRUCT, float_result=name in _FLOAT_CONSTRUCTORS)
        for name in _CONSTRUCTORS
    }
)
# Tensor methods that describe the example rather than its values: hard, like `len(x)`; on a
# relaxed value, the runtime function of the same name gives the example's.
TORCH.update(
    {
        name: Op(name, batching=HARD_ONLY, integral=True, on_tensors=name)
        for name in ("size", "numel", "dim")
    }
)


def torch_op(name):
    """The entry of the torch function (or tensor method) ``name``: elementwise, a constructor, or
    any other function, which is applied to each example."""
    op = TORCH.get(name)
    return op if op is not None else Op(name, batching=PER_EXAMPLE)


# ----------------------------------------------------------------------------- builtins

BUILTINS = {
    name: Op(name, batching=HARD_ONLY, integral=name in ("len", "int"))
    for name in "len range isinstance int float bool str type print enumerate zip reversed".split()
}
# `any(xs)` / `all(xs)` of relaxed values: the relaxed `or` / `and` of their truths, computed by
# `rt.<on_tensors>(rx, xs)` (the relaxation decides the truth of a value, SEMANTICS 4).
BUILTINS.update({name: Op(name, on_tensors=name + "_") for name in ("any", "all")})
# List methods that change the list in place (`append`, `extend`, `insert` are translated as the
# assignment of the grown list): refused where the change would apply to every example at once.
LIST_MUTATORS = frozenset({"pop", "remove", "sort", "reverse", "clear"})
# `list(x)` / `tuple(x)` of a relaxed array: a copy, which value semantics already make.
BUILTINS.update({name: Op(name, batching=CALLED) for name in ("list", "tuple")})


def builtin_op(name):
    """The entry of the Python builtin ``name`` (one without an entry is called as written)."""
    op = BUILTINS.get(name)
    return op if op is not None else Op(name, batching=CALLED)


# Functions of the `math` module: on relaxed values, the torch function of the same name.
MATH_TO_TORCH = {"fabs": "abs"}


def math_op(name):
    """The entry of ``math.<name>`` applied to relaxed values, or None if torch has no such
    function."""
    import torch

    short = MATH_TO_TORCH.get(name, name)
    return torch_op(short) if callable(getattr(torch, short, None)) else None


# Conversions that have no meaning on a per-example tensor.
NO_RELAXED_CONVERSION = frozenset({"float", "int", "bool", "round", "str"})
# Attributes of a relaxed value that are hard: they describe the example, not its values.
SHAPE_ATTRS = frozenset({"shape", "ndim", "dtype", "device"})
# Attributes of a relaxed value computed per example by a runtime function (`rt.<on_tensors>`):
# the example's shape and number of dimensions (hard), its transposes (relaxed).
ATTRIBUTES = {
    "shape": Op("shape", batching=HARD_ONLY, on_tensors="shape"),
    "ndim": Op("ndim", batching=HARD_ONLY, integral=True, on_tensors="dim"),
    "T": Op("T", on_tensors="transpose"),
    "mT": Op("mT", on_tensors="matrix_transpose"),
}
# Parameter annotations that make a parameter hard.
HARD_TYPES = frozenset({"int", "float", "bool", "str"})

# `avcompile.gt(...)` and kin: comparisons and reductions with options of their own.
REDUCTIONS = {
    name: Op(name, batching=SOFT, relaxation=name) for name in ("min", "max", "argmin", "argmax")
}
# `min` and `max` of relaxed values are soft (SEMANTICS 8).
BUILTINS["min"], BUILTINS["max"] = REDUCTIONS["min"], REDUCTIONS["max"]

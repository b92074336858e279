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

from ..api import build_module
from ..errors import HardInRelaxedBranch
from ..module import RelaxedModule
from .builder import Builder
from .instructions import (
    GT,
    LT,
    ArgMax,
    ArgMin,
    CatProbEq,
    CosineSimilarity,
    Eq,
    For,
    GEq,
    If,
    Input,
    IsFalse,
    IsTrue,
    LEq,
    Let,
    LetInt,
    Max,
    Min,
    NEq,
    Output,
    Print,
    Var,
    Variable,
    VariableInt,
    VarInt,
    While,
)

# The other public names of the module as it was one file, not in __all__:
from .instructions import VARIABLE_REGEX as VARIABLE_REGEX
from .instructions import AlgoModule as AlgoModule
from .instructions import Condition as Condition

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
        builder = Builder(sequence, name)
        fn_ir = builder.function()
        try:
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
        except HardInRelaxedBranch as err:
            raise builder.hard_in_branch(err) from None
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

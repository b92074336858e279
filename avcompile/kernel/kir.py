"""The kernel IR: a relaxed program as statements over the values of one example, each run for
every example of a chunk (the batch innermost), from which the forward kernel and its adjoint
are generated (``codegen.py``), one rule per statement and per primitive.

Storage is explicit. A *relaxed* name holds one value per example (``[C]``) or an array of them
(``[d0, ..., C]``); a *hard* name is one Python number for the whole chunk. Expressions are
trees over the values of one example (``Read``, ``Const``, ``Hard``, ``Prim``); the control flow
is hard (``For``, ``If``, ``While``): the relaxed constructs of the program have been lowered into
these by ``lower.py`` (a relaxed ``if`` into blends, a relaxed ``while`` into its expectation).
"""

import re
from dataclasses import dataclass, field
from typing import Optional, Tuple


@dataclass(frozen=True)
class Loc:
    """A relaxed location: a name's value (``index`` empty) or an element of an array, at hard
    positions (Python source of hard expressions)."""

    name: str
    index: Tuple[str, ...] = ()

    def __str__(self):
        return self.name + (f"[{', '.join(self.index)}]" if self.index else "")


@dataclass(frozen=True)
class Read:
    loc: Loc

    def __str__(self):
        return str(self.loc)


@dataclass(frozen=True)
class Const:
    value: float

    def __str__(self):
        return repr(self.value)


@dataclass(frozen=True)
class Hard:
    """A hard value (Python source), the same for every example, with no derivative."""

    src: str

    def __str__(self):
        return f"<{self.src}>"


@dataclass(frozen=True)
class Prim:
    """A primitive (``prims.PRIMS``) of relaxed arguments, with hard parameters."""

    name: str
    args: Tuple = ()
    params: Tuple = ()

    def __str__(self):
        inner = ", ".join(map(str, self.args))
        return (
            f"{self.name}({inner}{'; ' + ', '.join(map(str, self.params)) if self.params else ''})"
        )


# ------------------------------------------------------------------------------------ statements


@dataclass(frozen=True)
class Set:
    """``loc = expr`` for every example."""

    loc: Loc
    expr: object
    line: int = 0


@dataclass(frozen=True)
class HardSet:
    """``name = src``: a hard value (``integer``: an int, else a float)."""

    name: str
    src: str
    integer: bool
    line: int = 0


@dataclass(frozen=True)
class Alloc:
    """A relaxed array made once: ``name`` of shape ``dims`` (hard sources), filled with
    ``fill`` (a constant) or, with ``like``, shaped as that array."""

    name: str
    dims: Tuple[str, ...] = ()
    fill: Optional[float] = None
    like: Optional[str] = None
    line: int = 0


@dataclass(frozen=True)
class For:
    """``for var in range(lo, hi, step)``, on hard bounds."""

    var: str
    lo: str
    hi: str
    step: str
    body: Tuple
    line: int = 0


@dataclass(frozen=True)
class If:
    """A hard ``if``."""

    test: str
    body: Tuple
    orelse: Tuple = ()
    line: int = 0


@dataclass(frozen=True)
class While:
    """A hard ``while`` (its test may read relaxed storage through a reduction over the chunk)."""

    test: str
    body: Tuple
    line: int = 0


@dataclass(frozen=True)
class Flag:
    """Record in the kernel's flags (returned to the caller) that ``test`` held: a relaxed
    ``while`` cut off at ``max_iter`` (``what`` its line), a condition out of [0, 1]."""

    slot: int
    test: str
    line: int = 0


@dataclass(frozen=True)
class Kernel:
    """A relaxed program as a kernel: its relaxed inputs (name, rank) and hard inputs, the
    relaxed names with their ranks, the hard names (int or not), the body, the outputs (each a
    relaxed name, or Python source of a hard value), and what its flags mean."""

    name: str
    inputs: Tuple[Tuple[str, int], ...]
    hard_inputs: Tuple[str, ...]
    relaxed: Tuple[Tuple[str, int], ...]
    hard: Tuple[Tuple[str, bool], ...]
    body: Tuple
    outputs: Tuple[Tuple[str, str], ...]  # ('relaxed', name) or ('hard', source)
    flags: Tuple[Tuple[str, int], ...] = ()  # (what, line) of each flag slot
    uses_beta: bool = True
    notes: Tuple[str, ...] = field(default=(), compare=False)


def constant_inputs(kernel):
    """The hard inputs of ``kernel`` that its body never changes (free numbers and tuples, hard
    parameters it does not assign)."""
    changed = set()

    def visit(stmts):
        for s in stmts:
            if isinstance(s, HardSet):
                changed.add(s.name)
            elif isinstance(s, For):
                changed.add(s.var)
            for part in (getattr(s, "body", ()), getattr(s, "orelse", ())):
                visit(part)

    visit(kernel.body)
    return tuple(n for n in kernel.hard_inputs if n not in changed)


_OFFSET = re.compile(r"^\(?(h_\w+)(?: ([+-]) (\d+))?\)?$")


def distinct(a, b):
    """Whether two elements of one array are surely not one: at some position their indices
    are different integers, or one hard name plus different offsets (``i`` and ``i + 1``)."""
    for x, y in zip(a.index, b.index):
        if x.lstrip("-").isdigit() and y.lstrip("-").isdigit():
            if int(x) != int(y) and (int(x) < 0) == (int(y) < 0):
                return True
            continue
        mx, my = _OFFSET.match(x), _OFFSET.match(y)
        if mx and my and mx.group(1) == my.group(1):
            ox = int(mx.group(3) or 0) * (-1 if mx.group(2) == "-" else 1)
            oy = int(my.group(3) or 0) * (-1 if my.group(2) == "-" else 1)
            if ox != oy:
                return True
    return False

"""The relaxed IR: a few frozen dataclasses that print themselves, so ``show --ir`` is ``print(ir)``.

Expressions that involve only hard values stay Python (``Py``); everything that touches a relaxed
or constant value is spelled out, so that the emitter knows where to blend, lift and accumulate.
"""

import ast
from dataclasses import dataclass, field
from typing import Any, Optional, Tuple

from .kinds import Kind

# ------------------------------------------------------------------------------------ expressions


class Expr:
    kind: Kind = Kind.HARD


@dataclass(frozen=True)
class Py(Expr):
    """A hard Python expression, emitted as written."""

    node: Any = field(compare=False)
    text: str = ""
    kind: Kind = Kind.HARD

    def __str__(self):
        return self.text


@dataclass(frozen=True)
class Name(Expr):
    id: str
    kind: Kind
    unpacked: bool = False

    def __str__(self):
        return self.id


@dataclass(frozen=True)
class Const(Expr):
    value: Any
    kind: Kind = Kind.HARD

    def __str__(self):
        return repr(self.value)


@dataclass(frozen=True)
class BinOp(Expr):
    op: str
    left: Expr
    right: Expr
    kind: Kind

    def __str__(self):
        return f"({self.left} {self.op} {self.right})"


@dataclass(frozen=True)
class UnaryOp(Expr):
    op: str
    operand: Expr
    kind: Kind

    def __str__(self):
        return f"({self.op}{self.operand})"


@dataclass(frozen=True)
class Compare(Expr):
    """A comparison; relaxed when an operand is, then a probability (one operator only)."""

    op: str
    left: Expr
    right: Expr
    kind: Kind
    beta: Optional[Expr] = None  # this comparison's own inverse temperature, if it has one
    dist: Optional[Expr] = None  # and its own distribution family

    def __str__(self):
        tag = "relaxed " if self.kind == Kind.RELAXED else ""
        own = "".join(
            f" [{k}={v}]" for k, v in (("beta", self.beta), ("dist", self.dist)) if v is not None
        )
        return f"{tag}({self.left} {self.op} {self.right}){own}"


@dataclass(frozen=True)
class BoolOp(Expr):
    op: str  # 'and' | 'or'
    values: Tuple[Expr, ...]
    kind: Kind

    def __str__(self):
        tag = "relaxed " if self.kind == Kind.RELAXED else ""
        return tag + "(" + f" {self.op} ".join(map(str, self.values)) + ")"


@dataclass(frozen=True)
class Not(Expr):
    operand: Expr
    kind: Kind

    def __str__(self):
        return f"(not {self.operand})"


@dataclass(frozen=True)
class Truth(Expr):
    """``if v:`` on a relaxed value: its probability is the value itself."""

    operand: Expr
    kind: Kind = Kind.RELAXED

    def __str__(self):
        return f"truth({self.operand})"


@dataclass(frozen=True)
class IfExp(Expr):
    test: Expr
    body: Expr
    orelse: Expr
    kind: Kind

    def __str__(self):
        return f"({self.body} if {self.test} else {self.orelse})"


@dataclass(frozen=True)
class Index(Expr):
    value: Expr
    index: Expr
    kind: Kind

    def __str__(self):
        return f"{self.value}[{self.index}]"


@dataclass(frozen=True)
class Slice(Expr):
    lower: Optional[Expr]
    upper: Optional[Expr]
    step: Optional[Expr]

    def __str__(self):
        parts = ["" if p is None else str(p) for p in (self.lower, self.upper, self.step)]
        return ":".join(parts if self.step is not None else parts[:2])


@dataclass(frozen=True)
class Tuple_(Expr):
    elts: Tuple[Expr, ...]
    kind: Kind
    is_list: bool = False

    def __str__(self):
        inner = ", ".join(map(str, self.elts))
        return f"[{inner}]" if self.is_list else f"({inner})"


@dataclass(frozen=True)
class Attr(Expr):
    value: Expr
    attr: str
    kind: Kind

    def __str__(self):
        return f"{self.value}.{self.attr}"


@dataclass(frozen=True)
class Shape(Expr):
    """The example's shape of a relaxed value (``x.shape``)."""

    value: Expr
    kind: Kind = Kind.HARD

    def __str__(self):
        return f"{self.value}.shape"


@dataclass(frozen=True)
class Call(Expr):
    """A call. ``how``: 'plain' (as written), 'per_example' (a torch function applied to each
    example) or 'batched' (a user's callable, given batch-first tensors)."""

    func: Expr
    args: Tuple[Expr, ...]
    kwargs: Tuple[Tuple[str, Expr], ...]
    kind: Kind
    how: str = "plain"

    def __str__(self):
        args = [str(a) for a in self.args] + [f"{k}={v}" for k, v in self.kwargs]
        tag = "" if self.how == "plain" else f"{self.how} "
        return f"{tag}{self.func}({', '.join(args)})"


@dataclass(frozen=True)
class MinMax(Expr):
    """Soft ``min``/``max`` of relaxed values, or the probabilities of ``argmin``/``argmax``."""

    op: str  # 'min' | 'max' | 'argmin' | 'argmax'
    args: Tuple[Expr, ...]
    kind: Kind = Kind.RELAXED
    beta: Optional[Expr] = None

    def __str__(self):
        own = f", beta={self.beta}" if self.beta is not None else ""
        return f"soft {self.op}({', '.join(map(str, self.args))}{own})"


@dataclass(frozen=True)
class Guarded(Expr):
    """An op inside a relaxed branch that can produce values that are not finite (``1 / d``,
    ``sqrt(x)``): guarded so that where the branch is not taken it poisons no gradient. ``op``
    names a runtime helper for an operator, or ``func`` is the function called."""

    args: Tuple[Expr, ...]
    op: Optional[str] = None
    func: Optional[Expr] = None
    kind: Kind = Kind.RELAXED

    def __str__(self):
        return f"guarded {self.op or self.func}({', '.join(map(str, self.args))})"


@dataclass(frozen=True)
class Helper(Expr):
    """A helper of the runtime, ``rt.<name>`` in generated code (the DSL calls its own)."""

    name: str
    kind: Kind = Kind.HARD

    def __str__(self):
        return f"rt.{self.name}"


@dataclass(frozen=True)
class Rx(Expr):
    """The relaxation of the running call (its beta, mode and distribution): ``rx`` in
    generated code, for helpers that relax a condition themselves (the DSL's)."""

    kind: Kind = Kind.HARD

    def __str__(self):
        return "rx"


@dataclass(frozen=True)
class Lift(Expr):
    """A constant made to broadcast against relaxed values (``to``: 'broadcast' | 'batch')."""

    value: Expr
    to: str = "broadcast"
    kind: Kind = Kind.RELAXED

    def __str__(self):
        return f"lift[{self.to}]({self.value})"


# ------------------------------------------------------------------------------------ statements


class Stmt:
    line: int


@dataclass(frozen=True)
class Assign(Stmt):
    """``targets = value``. A target is a ``Name``, an ``Index`` (element write) or a ``Tuple_``."""

    targets: Tuple[Expr, ...]
    value: Expr
    line: int

    def __str__(self):
        return " = ".join(map(str, self.targets)) + f" = {self.value}"


@dataclass(frozen=True)
class ExprStmt(Stmt):
    value: Expr
    line: int

    def __str__(self):
        return str(self.value)


@dataclass(frozen=True)
class Return(Stmt):
    value: Optional[Expr]
    line: int

    def __str__(self):
        return f"return {self.value}" if self.value is not None else "return"


@dataclass(frozen=True)
class Jump(Stmt):
    """``break``, ``continue`` or ``pass``."""

    what: str
    line: int

    def __str__(self):
        return self.what


@dataclass(frozen=True)
class PyStmt(Stmt):
    """A hard statement emitted as written (``assert``, ``raise`` on hard values)."""

    node: Any = field(compare=False)
    text: str = ""
    line: int = 0

    def __str__(self):
        return self.text


@dataclass(frozen=True)
class If(Stmt):
    """An ``if``. Relaxed: both branches run and ``blended`` variables are mixed by p."""

    test: Expr
    body: Tuple[Stmt, ...]
    orelse: Tuple[Stmt, ...]
    relaxed: bool
    blended: Tuple[Name, ...]
    line: int
    fused: Tuple["Fused", ...] = ()
    new: Tuple[str, ...] = ()  # blended names first defined by this `if` (in both branches)
    guarded: bool = False  # a branch can produce values that are not finite

    def __str__(self):
        head = f"if {self.test}:"
        if self.relaxed:
            head = f"relaxed if {self.test}:  # blends {', '.join(n.id for n in self.blended)}"
            head += " (guarded)" if self.guarded else ""
        out = head + "\n" + _block(self.body)
        if self.orelse:
            out += "\nelse:\n" + _block(self.orelse)
        for f in self.fused:
            out += f"\n{f}"
        return out


@dataclass(frozen=True)
class Fused:
    """A blend the optimiser computes in one op, out of the branch: ``var + p * value`` (op
    'add') or the blend of ``var`` with the hard ``value`` (op 'set')."""

    op: str
    var: Name
    value: Expr
    line: int = 0

    def __str__(self):
        if self.op == "add":
            return f"{self.var} = {self.var} + p * {self.value}"
        return f"{self.var} = blend(p, {self.value}, {self.var})"


@dataclass(frozen=True)
class While(Stmt):
    """A ``while``. Relaxed: the expectation over the stopping iteration of ``carried``; the
    relaxed ones are accumulated, the hard ones take their last value."""

    test: Expr
    body: Tuple[Stmt, ...]
    relaxed: bool
    carried: Tuple[Name, ...]
    line: int
    max_iter: Optional[Expr] = None  # this loop's own limits, if it has them (else the module's)
    eps: Optional[Expr] = None

    def __str__(self):
        if not self.relaxed:
            return f"while {self.test}:\n" + _block(self.body)
        acc = ", ".join(n.id for n in self.carried if n.kind == Kind.RELAXED)
        last = ", ".join(n.id for n in self.carried if n.kind != Kind.RELAXED)
        own = "".join(
            f" [{k}={v}]"
            for k, v in (("max_iter", self.max_iter), ("eps", self.eps))
            if v is not None
        )
        return (
            f"relaxed while {self.test}{own}:  # accumulates {acc or '-'}; "
            f"last value {last or '-'}\n" + _block(self.body)
        )


@dataclass(frozen=True)
class For(Stmt):
    target: Expr
    iter: Expr
    body: Tuple[Stmt, ...]
    line: int

    def __str__(self):
        return f"for {self.target} in {self.iter}:\n" + _block(self.body)


@dataclass(frozen=True)
class Function:
    """A lowered function: its parameters with kinds, its body, the free names it reads."""

    name: str
    params: Tuple[Name, ...]
    defaults: Tuple[Any, ...]
    body: Tuple[Stmt, ...]
    free: Tuple[str, ...]
    source: Any = field(compare=False, default=None)
    lines: Any = field(compare=False, default=None)  # line -> source text, for comments

    def __str__(self):
        params = ", ".join(
            f"{p.id}: {p.kind}{' unpacked' if p.unpacked else ''}" for p in self.params
        )
        return f"def {self.name}({params}):\n" + _block(self.body)


def _block(stmts):
    if not stmts:
        return "    pass"
    return "\n".join("    " + line for s in stmts for line in str(s).splitlines())


def py(node):
    """Wrap a hard Python expression."""
    return Py(node, ast.unparse(node))

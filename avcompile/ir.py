"""The relaxed IR: a few frozen dataclasses that print themselves, so ``show --ir`` is ``print(ir)``.

Every expression is spelled out as nodes, hard ones too, so that no stage parses Python text again;
ops are entries of the registry (``registry.py``). Generic traversal (``children``, ``walk``,
``map_children``) and the queries the passes share (``assigned``, ``written``) are at the end.
"""

import enum
from dataclasses import dataclass, field, replace
from typing import Any, Optional, Tuple

# Ops are entries of the registry (registry.Op), which builds on this module: typed Any here.
Op = Any


class Kind(enum.IntEnum):
    """How a value varies over the batch (SEMANTICS 2); a combination takes the larger kind."""

    HARD = 0  # a Python value, the same for every example
    CONSTANT = 1  # a tensor shared by every example
    RELAXED_INT = 2  # a per-example distribution over integers (SEMANTICS 10)
    RELAXED = 3  # a per-example tensor

    def __str__(self):
        return self.name.lower().replace("_", " ")

    @property
    def per_example(self):
        """Whether a value of this kind differs per example."""
        return self >= Kind.RELAXED_INT


HARD, CONSTANT, RELAXED_INT, RELAXED = Kind.HARD, Kind.CONSTANT, Kind.RELAXED_INT, Kind.RELAXED


class How(str, enum.Enum):
    """How a call treats the batch in generated code."""

    PLAIN = "plain"  # as written: broadcasting in the batch-last layout acts per example
    PER_EXAMPLE = "per_example"  # a torch function applied to each example (torch.vmap)
    BATCHED = "batched"  # a user's callable, given batch-first tensors
    CONSTRUCT = "construct"  # a tensor made from hard values, on the call's device and dtype

    def __str__(self):
        return self.value


class LiftTo(str, enum.Enum):
    """What a lifted value is made into."""

    BROADCAST = "broadcast"  # a shared tensor that broadcasts against batch-last values
    BATCH = "batch"  # a per-example value, the same in every example

    def __str__(self):
        return self.value


class JumpKind(str, enum.Enum):
    """Which jump a ``Jump`` statement is."""

    BREAK = "break"
    CONTINUE = "continue"
    PASS = "pass"
    RETURN = "return"  # only as the kind of an ``Exit``

    def __str__(self):
        return self.value


class FuseOp(str, enum.Enum):
    """A blend fused out of a relaxed branch: ``var + p * value`` or ``blend(p, value, var)``."""

    ADD = "add"
    SET = "set"

    def __str__(self):
        return self.value


class Callee(enum.Enum):
    """What a call calls, as the front end resolved it: the kinds pass derives the result's kind
    from it, and the specialising pass how the call treats the batch."""

    DECLARED = "declared"  # the front end gave the call's kind (the DSL's runtime helpers)
    BUILTIN = "builtin"  # a Python builtin (`len`, `min`, ...)
    TORCH = "torch"  # a function of the torch package
    METHOD = "method"  # a method of a value (`x.sum()`)
    MATH = "math"  # a function of Python's `math` module (torch's on relaxed values)
    USER = "user"  # any other callable: the user's function or network
    COMPILED = "compiled"  # a recursive helper compiled as a function of its own (`subroutines`)


# ------------------------------------------------------------------------------------ expressions


class Expr:
    kind: Kind = Kind.HARD


# How tightly Python binds each operator, to print expressions with no more parentheses than needed.
_BINDING = {
    **dict.fromkeys(["|"], 1),
    **dict.fromkeys(["^"], 2),
    **dict.fromkeys(["&"], 3),
    **dict.fromkeys(["<<", ">>"], 4),
    **dict.fromkeys(["+", "-"], 5),
    **dict.fromkeys(["*", "/", "//", "%", "@"], 6),
    **dict.fromkeys(["**"], 8),
}
_UNARY_BINDING = 7


def _wrap(e, at_least):
    """``e`` printed as an operand that must bind at least this tightly."""
    if isinstance(e, BinOp):
        binding = _BINDING[e.op.symbol]
    elif isinstance(e, UnaryOp):
        binding = _UNARY_BINDING
    else:
        return str(e)
    return str(e) if binding >= at_least else f"({e})"


@dataclass(frozen=True)
class Name(Expr):
    id: str
    kind: Kind
    unpacked: bool = False
    pos: Any = field(default=None, compare=False, repr=False)  # (line, column) in the source

    def __str__(self):
        return self.id


@dataclass(frozen=True)
class Const(Expr):
    value: Any
    kind: Kind = Kind.HARD
    pos: Any = field(default=None, compare=False, repr=False)  # (line, column) in the source

    def __str__(self):
        return repr(self.value)


@dataclass(frozen=True)
class BinOp(Expr):
    op: Op  # an entry of registry.BINARY
    left: Expr
    right: Expr
    kind: Kind
    pos: Any = field(default=None, compare=False, repr=False)  # (line, column) in the source

    def __str__(self):
        mine = _BINDING[self.op.symbol]
        left = _wrap(self.left, mine + (self.op.symbol == "**"))
        right = _wrap(self.right, mine + (self.op.symbol != "**"))
        return f"{left} {self.op} {right}"


@dataclass(frozen=True)
class UnaryOp(Expr):
    op: Op  # an entry of registry.UNARY
    operand: Expr
    kind: Kind
    pos: Any = field(default=None, compare=False, repr=False)  # (line, column) in the source

    def __str__(self):
        return f"{self.op}{_wrap(self.operand, _UNARY_BINDING)}"


@dataclass(frozen=True)
class Compare(Expr):
    """A comparison; relaxed when an operand is, then a probability (one operator only)."""

    op: Op  # an entry of registry.COMPARE
    left: Expr
    right: Expr
    kind: Kind
    beta: Optional[Expr] = None  # this comparison's own inverse temperature, if it has one
    dist: Optional[Expr] = None  # and its own distribution family
    same: Optional[Expr] = None  # hard: whether both sides are one element (then it is exact)
    pos: Any = field(default=None, compare=False, repr=False)  # (line, column) in the source

    def __str__(self):
        tag = "relaxed " if self.kind == Kind.RELAXED else ""
        own = "".join(
            f" [{k}={v}]" for k, v in (("beta", self.beta), ("dist", self.dist)) if v is not None
        )
        return f"{tag}({self.left} {self.op} {self.right}){own}"


@dataclass(frozen=True)
class BoolOp(Expr):
    op: Op  # registry.BOOL: `and` or `or`
    values: Tuple[Expr, ...]
    kind: Kind
    pos: Any = field(default=None, compare=False, repr=False)  # (line, column) in the source

    def __str__(self):
        tag = "relaxed " if self.kind == Kind.RELAXED else ""
        return tag + "(" + f" {self.op} ".join(map(str, self.values)) + ")"


@dataclass(frozen=True)
class Not(Expr):
    operand: Expr
    kind: Kind
    pos: Any = field(default=None, compare=False, repr=False)  # (line, column) in the source

    def __str__(self):
        return f"(not {self.operand})"


@dataclass(frozen=True)
class Truth(Expr):
    """``if v:`` on a relaxed value: its probability is the value itself."""

    operand: Expr
    kind: Kind = Kind.RELAXED
    pos: Any = field(default=None, compare=False, repr=False)  # (line, column) in the source

    def __str__(self):
        return f"truth({self.operand})"


@dataclass(frozen=True)
class IfExp(Expr):
    test: Expr
    body: Expr
    orelse: Expr
    kind: Kind
    infinite: bool = False  # an arm may be infinite: blended so that 0 * inf counts as 0
    pos: Any = field(default=None, compare=False, repr=False)  # (line, column) in the source

    def __str__(self):
        return f"({self.body} if {self.test} else {self.orelse})"


@dataclass(frozen=True)
class Index(Expr):
    value: Expr
    index: Expr
    kind: Kind
    pos: Any = field(default=None, compare=False, repr=False)  # (line, column) in the source
    infinite: bool = False  # at a relaxed position in an array that may hold infinite values

    def __str__(self):
        return f"{self.value}[{self.index}]"


@dataclass(frozen=True)
class Slice(Expr):
    lower: Optional[Expr]
    upper: Optional[Expr]
    step: Optional[Expr]
    pos: Any = field(default=None, compare=False, repr=False)  # (line, column) in the source

    def __str__(self):
        parts = ["" if p is None else str(p) for p in (self.lower, self.upper, self.step)]
        return ":".join(parts if self.step is not None else parts[:2])


@dataclass(frozen=True)
class FString(Expr):
    """An f-string: literal parts (``Const``) and ``Formatted`` values."""

    values: Tuple[Expr, ...]
    kind: Kind = Kind.HARD
    pos: Any = field(default=None, compare=False, repr=False)  # (line, column) in the source

    def __str__(self):
        return "f(" + ", ".join(map(str, self.values)) + ")"


@dataclass(frozen=True)
class Formatted(Expr):
    """``{value!r:spec}`` inside an f-string; ``conversion`` is Python's code (-1 for none)."""

    value: Expr
    conversion: int = -1
    spec: Optional[Expr] = None
    kind: Kind = Kind.HARD
    pos: Any = field(default=None, compare=False, repr=False)  # (line, column) in the source

    def __str__(self):
        return f"{{{self.value}}}"


@dataclass(frozen=True)
class Tuple_(Expr):
    elts: Tuple[Expr, ...]
    kind: Kind
    is_list: bool = False
    pos: Any = field(default=None, compare=False, repr=False)  # (line, column) in the source

    def __str__(self):
        inner = ", ".join(map(str, self.elts))
        return f"[{inner}]" if self.is_list else f"({inner})"


@dataclass(frozen=True)
class Attr(Expr):
    value: Expr
    attr: str
    kind: Kind
    pos: Any = field(default=None, compare=False, repr=False)  # (line, column) in the source

    def __str__(self):
        return f"{self.value}.{self.attr}"


@dataclass(frozen=True)
class Shape(Expr):
    """The example's shape of a relaxed value (``x.shape``)."""

    value: Expr
    kind: Kind = Kind.HARD
    pos: Any = field(default=None, compare=False, repr=False)  # (line, column) in the source

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
    how: How = How.PLAIN
    op: Optional[Op] = None  # the registry's entry of the function, if it has one
    callee: Callee = Callee.DECLARED
    takes: Tuple[Kind, ...] = ()  # a compiled function's call: the kinds of its parameters
    pos: Any = field(default=None, compare=False, repr=False)  # (line, column) in the source

    def __str__(self):
        args = [str(a) for a in self.args] + [f"{k}={v}" for k, v in self.kwargs]
        tag = "" if self.how is How.PLAIN else f"{self.how} "
        return f"{tag}{self.func}({', '.join(args)})"


@dataclass(frozen=True)
class MinMax(Expr):
    """Soft ``min``/``max`` of relaxed values, or the probabilities of ``argmin``/``argmax``."""

    op: Op  # an entry of registry.REDUCTIONS
    args: Tuple[Expr, ...]
    kind: Kind = Kind.RELAXED
    beta: Optional[Expr] = None
    infinite: bool = False  # a value may be infinite: its weight, not a NaN, decides
    pos: Any = field(default=None, compare=False, repr=False)  # (line, column) in the source

    def __str__(self):
        own = f", beta={self.beta}" if self.beta is not None else ""
        return f"soft {self.op}({', '.join(map(str, self.args))}{own})"


@dataclass(frozen=True)
class Guarded(Expr):
    """An op inside a relaxed branch that can produce values that are not finite (``1 / d``,
    ``sqrt(x)``): guarded so that where the branch is not taken it poisons no gradient. ``op``
    names a runtime helper for an operator, or ``func`` is the function called."""

    args: Tuple[Expr, ...]
    op: Optional[Op] = None  # a risky operator of registry.BINARY
    func: Optional[Expr] = None
    kind: Kind = Kind.RELAXED
    pos: Any = field(default=None, compare=False, repr=False)  # (line, column) in the source

    def __str__(self):
        what = self.op.guard if self.op is not None else self.func
        return f"guarded {what}({', '.join(map(str, self.args))})"


@dataclass(frozen=True)
class Helper(Expr):
    """A helper of the runtime, ``rt.<name>`` in generated code (the DSL calls its own)."""

    name: str
    kind: Kind = Kind.HARD
    packs: bool = False  # it stacks a relaxed array given as a list of its elements
    pos: Any = field(default=None, compare=False, repr=False)  # (line, column) in the source

    def __str__(self):
        return f"rt.{self.name}"


@dataclass(frozen=True)
class Rx(Expr):
    """The relaxation of the running call (its beta, mode and distribution): ``rx`` in
    generated code, for helpers that relax a condition themselves (the DSL's)."""

    kind: Kind = Kind.HARD
    pos: Any = field(default=None, compare=False, repr=False)  # (line, column) in the source

    def __str__(self):
        return "rx"


@dataclass(frozen=True)
class Expect(Expr):
    """A relaxed integer used as a number: its expectation (SEMANTICS 10)."""

    value: Expr
    kind: Kind = Kind.RELAXED
    pos: Any = field(default=None, compare=False, repr=False)  # (line, column) in the source

    def __str__(self):
        return f"expect({self.value})"


@dataclass(frozen=True)
class Probs(Expr):
    """``avcompile.probs(k, size)``: a relaxed integer's distribution over 0, ..., size - 1."""

    value: Expr
    size: Optional[Expr] = None
    kind: Kind = Kind.RELAXED
    pos: Any = field(default=None, compare=False, repr=False)  # (line, column) in the source

    def __str__(self):
        return f"probs({self.value}" + (f", {self.size})" if self.size is not None else ")")


@dataclass(frozen=True)
class Lift(Expr):
    """A constant made to broadcast against relaxed values (``to``: 'broadcast' | 'batch')."""

    value: Expr
    to: LiftTo = LiftTo.BROADCAST
    kind: Kind = Kind.RELAXED
    pos: Any = field(default=None, compare=False, repr=False)  # (line, column) in the source

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
    grows: bool = False  # a list grown (`xs.append(v)` as `xs = xs + [v]`): its length changes

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

    what: JumpKind
    line: int

    def __str__(self):
        return str(self.what)


@dataclass(frozen=True)
class Exit(Stmt):
    """A ``break``, ``continue`` or ``return`` that examples take to an extent (SEMANTICS 11):
    the state (or the returned ``value``), weighted by the probability of being here, leaves
    for after the loop (the next iteration, the function's result); what runs on is the rest."""

    what: JumpKind
    value: Optional[Expr]
    line: int
    alive: Optional[Name] = None  # the mass still running, which it lowers (a write of it)

    def __str__(self):
        value = f" {self.value}" if self.value is not None else ""
        return f"relaxed {self.what}{value}"


@dataclass(frozen=True)
class Assert(Stmt):
    """``assert test, msg`` on hard values."""

    test: Expr
    msg: Optional[Expr]
    line: int

    def __str__(self):
        return f"assert {self.test}" + (f", {self.msg}" if self.msg is not None else "")


@dataclass(frozen=True)
class Raise(Stmt):
    """``raise exc from cause`` (hard values)."""

    exc: Optional[Expr]
    cause: Optional[Expr]
    line: int

    def __str__(self):
        out = "raise" if self.exc is None else f"raise {self.exc}"
        return out + (f" from {self.cause}" if self.cause is not None else "")


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
    infinite: Tuple[str, ...] = ()  # blended names that may be infinite (`math.inf` sentinels)
    exits: bool = False  # a branch leaves to an extent: blends weigh what is still running

    def __str__(self):
        head = f"if {self.test}:"
        if self.relaxed:
            head = f"relaxed if {self.test}:  # blends {', '.join(n.id for n in self.blended)}"
            head += " (guarded)" if self.guarded else ""
            head += " (exits)" if self.exits else ""
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
        if self.op is FuseOp.ADD:
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
    # hard names the loop leaves per example, each with its relaxed twin (their expectation)
    stopped: Tuple[Tuple[str, str], ...] = ()
    stopped_ints: Tuple[str, ...] = ()  # the twins that are relaxed integers (distributions)
    infinite: bool = False  # a carried value may be infinite
    exits: bool = False  # examples leave it to an extent (relaxed exits): it ends per example

    def __str__(self):
        if not self.relaxed:
            return f"while {self.test}:{_exits(self)}\n" + _block(self.body)
        acc = ", ".join(n.id for n in self.carried if n.kind == Kind.RELAXED)
        last = ", ".join(n.id for n in self.carried if n.kind != Kind.RELAXED)
        own = "".join(
            f" [{k}={v}]"
            for k, v in (("max_iter", self.max_iter), ("eps", self.eps))
            if v is not None
        )
        twins = "".join(
            f"; {twin} = {'law of' if twin in self.stopped_ints else 'expected'} {name}"
            for name, twin in self.stopped
        )
        return (
            f"relaxed while {self.test}{own}:  # accumulates {acc or '-'}; "
            f"last value {last or '-'}{twins}\n" + _block(self.body)
        )


@dataclass(frozen=True)
class For(Stmt):
    target: Expr
    iter: Expr
    body: Tuple[Stmt, ...]
    line: int
    exits: bool = False  # examples leave it to an extent (relaxed exits): it ends per example
    # with exits: the names whose values after the loop mix the exits' (as a relaxed while's)
    carried: Tuple[Name, ...] = ()
    stopped: Tuple[Tuple[str, str], ...] = ()
    stopped_ints: Tuple[str, ...] = ()

    def __str__(self):
        return f"for {self.target} in {self.iter}:{_exits(self)}\n" + _block(self.body)


def _exits(loop):
    """What a loop with relaxed exits mixes after it, as a comment."""
    if not loop.exits:
        return ""
    mixed = ", ".join(n.id for n in loop.carried) or "-"
    twins = "".join(
        f"; {twin} = {'law of' if twin in loop.stopped_ints else 'expected'} {name}"
        for name, twin in loop.stopped
    )
    return f"  # relaxed exits: mixes {mixed}{twins}"


@dataclass(frozen=True)
class Function:
    """A lowered function: its parameters with kinds, its body, the free names it reads."""

    name: str
    params: Tuple[Name, ...]
    defaults: Tuple[Any, ...]
    body: Tuple[Stmt, ...]
    free: Tuple[str, ...]
    declared: Tuple[str, ...] = ()  # names whose kind the front end fixed (the kinds pass keeps it)
    # names a relaxed `while` made relaxed (assigned there, not used as indices), with its line
    relaxed_by_loops: Tuple[Tuple[str, int], ...] = field(compare=False, default=())
    # free names of inlined helpers, looked up in the helper's namespace: (name, (namespace, key))
    lookups: Tuple[Tuple[str, Any], ...] = field(compare=False, default=())
    alive: Optional[str] = None  # with relaxed exits: the name of the mass still running
    returns: bool = False  # it returns to an extent (a relaxed `return`): results are mixed
    source: Any = field(compare=False, default=None)
    lines: Any = field(compare=False, default=None)  # line -> source text, for comments
    # recursive helpers, each a function of its own that the body calls (`Callee.COMPILED`)
    subroutines: Tuple["Function", ...] = ()

    def __str__(self):
        params = ", ".join(
            f"{p.id}: {p.kind}{' unpacked' if p.unpacked else ''}" for p in self.params
        )
        own = f"def {self.name}({params}):\n" + _block(self.body)
        return "\n\n".join([str(sub) for sub in self.subroutines] + [own])


# ------------------------------------------------------------------------------------ traversal


def _is_node(value):
    return isinstance(value, (Expr, Stmt))


def children(node):
    """The IR nodes directly inside ``node`` (expressions and statements), in field order."""
    for name in node.__dataclass_fields__:
        value = getattr(node, name)
        if _is_node(value):
            yield value
        elif isinstance(value, tuple):
            for item in value:
                if _is_node(item):
                    yield item
                elif isinstance(item, tuple):  # a call's (keyword, value) pairs
                    yield from (v for v in item if _is_node(v))


def walk(node):
    """``node`` and every IR node inside it, parents first."""
    yield node
    for child in children(node):
        yield from walk(child)


def map_children(node, f):
    """``node`` with ``f`` applied to each IR node directly inside it (a copy when any changed)."""

    def apply(value):
        if _is_node(value):
            return f(value)
        if isinstance(value, tuple):
            items = tuple(apply(item) for item in value)
            return value if all(a is b for a, b in zip(items, value)) else items
        return value

    changes = {}
    for name in node.__dataclass_fields__:
        value = getattr(node, name)
        new = apply(value)
        if new is not value:
            changes[name] = new
    return replace(node, **changes) if changes else node


def root(target):
    """The variable an element write ``x[i][j] = v`` writes to."""
    while isinstance(target, Index):
        target = target.value
    return target


def assigned(target):
    """The names an assignment target gives a value to (an element write counts for its array)."""
    if isinstance(target, Tuple_):
        return {n for e in target.elts for n in assigned(e)}
    base = root(target)
    return {base.id} if isinstance(base, Name) else set()


def written(stmts):
    """The names assigned anywhere in ``stmts``, loop targets included."""
    out = set()
    for s in stmts:
        for node in walk(s):
            if isinstance(node, Assign):
                for t in node.targets:
                    out |= assigned(t)
            elif isinstance(node, For):
                out |= assigned(node.target)
            elif isinstance(node, Exit) and node.alive is not None:
                out.add(node.alive.id)
    return out


def tensor_method(name):
    """``torch.Tensor.<name>``: a tensor method called as a function."""
    return Attr(Attr(Name("torch", Kind.HARD), "Tensor", Kind.HARD), name, Kind.HARD)


def _block(stmts):
    if not stmts:
        return "    pass"
    return "\n".join("    " + line for s in stmts for line in str(s).splitlines())

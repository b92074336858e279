"""Lowering: the relaxed IR after the passes, as the kernel IR (``kir.py``).

A relaxed ``if`` becomes its two branches run one after the other on the same storage, the
values the first one wrote set aside and the storage put back before the second, then the
blends; a relaxed ``while`` becomes its expectation over the stopping iteration, accumulated as
``runtime.relaxed_while`` does (AlgoVision's stopping rule over the chunk of examples). What
lies outside the kernel's subset raises ``NotInKernel`` naming the construct and its line; the
``auto`` backend then keeps the torch backend and says why.
"""

from dataclasses import replace

from .. import ir
from ..ir import HARD, RELAXED, RELAXED_INT, Callee, FuseOp, LiftTo
from ..passes.kinds import int_valued, integer_names, is_range
from . import kir
from .kruntime import CDF, DENSITY, EQ, GE, GT, LE, LT, NE, NOT_DENSITY
from .prims import GUARDED

# Elementwise torch functions (and builtins) with a kernel primitive of the same meaning.
_FUNCTIONS = {
    "exp",
    "log",
    "sqrt",
    "sin",
    "cos",
    "tanh",
    "sigmoid",
    "abs",
    "square",
    "floor",
    "ceil",
}
_BINARY = {"add", "sub", "mul", "truediv", "pow"}
# comparison -> (exact op, what it relaxes into, sign of beta * (a - b))
_COMPARE = {
    "gt": (GT, CDF, 1),
    "ge": (GE, CDF, 1),
    "lt": (LT, CDF, -1),
    "le": (LE, CDF, -1),
    "eq": (EQ, DENSITY, 1),
    "ne": (NE, NOT_DENSITY, 1),
}
_DISTS = ("logistic", "cauchy", "gaussian", "reciprocal", "optimal")


class NotInKernel(Exception):
    """A construct the kernel backend does not compile: ``what`` in words, at ``line``."""

    def __init__(self, what, line=0):
        super().__init__(f"{what} (line {line})" if line else what)
        self.what, self.line = what, line


def lower(fn, ranks, numbers=None):
    """The kernel of IR function ``fn`` (after the passes) for relaxed parameters of ``ranks``
    (``{name: dimensions of one example}``); ``numbers``: the free names that hold a number or a
    tuple of numbers (read at each call, hard inputs of the kernel), each with whether it holds
    integers."""
    return _Lowering(fn, ranks, numbers).kernel()


class _Lowering:
    def __init__(self, fn, ranks, numbers=None):
        self.fn = fn
        self.numbers = {n: k for n, k in sorted((numbers or {}).items()) if n in fn.free}
        self.ranks = {}  # relaxed name -> rank of its storage (0: one value per example)
        self.shapes = {}  # array the program names -> its dimensions (hard sources)
        self.hard = {}  # hard name -> whether it is an integer
        self.ints = integer_names(fn)
        self.taken = {n.id for s in fn.body for n in ir.walk(s) if isinstance(n, ir.Name)}
        self.taken |= {p.id for p in fn.params}
        self.counter = 0
        self.depth = 0  # loops around the statement being lowered
        self.varying = []  # per loop around the statement: the hard names it changes
        self.allocated = set()
        self.hoisted = []  # allocations made inside loops, put before the top-level statement
        self.column = None  # the column counters while rows are moved column by column
        self.laws = {}  # relaxed integer -> the hard names of its support's bounds [lo, hi)
        self.pre = []  # statements an expression needs before the statement that holds it
        self.as_hard = {}  # a relaxed integer read as one value of its support (a hard name)
        self.clamped = 0  # inside an arm of a hard conditional: positions kept inside arrays
        self.exit_loops = []  # the loops examples leave to an extent around here: their exits
        self.skip_loops = []  # and what their `continue`s set aside in an iteration (or None)
        self.returned = None  # with returns under relaxed conditions: (mass, the results' sums)
        self.flags = []
        self.line = 0
        self.hard_params = {p.id for p in fn.params if p.kind == HARD}
        for p in fn.params:
            if p.kind == RELAXED:
                self.ranks[p.id] = ranks.get(p.id, 0)
                self.shapes[p.id] = tuple(f"v_{p.id}.shape[{k}]" for k in range(self.ranks[p.id]))
            elif p.kind == HARD:
                self.hard[p.id] = p.id in self.ints
            else:
                raise NotInKernel(f"the shared tensor parameter `{p.id}`")

    def fresh(self, base):
        while True:
            self.counter += 1
            name = f"{base}_{self.counter}"
            if name not in self.taken:
                self.taken.add(name)
                return name

    def relaxed_name(self, base, rank=0):
        name = self.fresh(base)
        self.ranks[name] = rank
        return name

    def hard_name(self, base, integer=True):
        name = self.fresh(base)
        self.hard[name] = integer
        return name

    def refuse(self, what):
        raise NotInKernel(what, self.line)

    # ------------------------------------------------------------------------------ function

    def kernel(self):
        fn = self.fn
        if fn.subroutines:
            raise NotInKernel("a recursive helper (a function the generated code calls)")
        body = list(fn.body)
        if not body or not isinstance(body[-1], ir.Return):
            raise NotInKernel("a function that does not end with its `return`")
        statements = self.law_capacity()
        for s in body[:-1]:
            lowered = self.block([s])
            statements += self.hoisted + lowered
            self.hoisted = []
        self.line = body[-1].line
        extra, outputs = self.outputs(body[-1].value)
        extra, self.pre = self.pre + extra, []
        inputs = tuple((p.id, self.ranks[p.id]) for p in fn.params if p.kind == RELAXED)
        hard_inputs = tuple(p.id for p in fn.params if p.kind == HARD) + tuple(self.numbers)
        return kir.Kernel(
            name=fn.name,
            inputs=inputs,
            hard_inputs=hard_inputs,
            relaxed=tuple(sorted(self.ranks.items())),
            hard=tuple(sorted(self.hard.items())),
            body=tuple(statements + extra),
            outputs=outputs,
            flags=tuple(self.flags),
        )

    def outputs(self, value):
        values = value.elts if isinstance(value, ir.Tuple_) else (value,)
        out, extra = [], []
        if self.fn.returns:  # mixed with what returned earlier (SEMANTICS 11)
            mass, sums = self.return_collector(len(values))
            alive = kir.Read(kir.Loc(self.fn.alive))
            total = kir.Prim("add", (kir.Read(kir.Loc(mass)), alive))
            for v, acc in zip(values, sums):
                name = self.relaxed_name("result")
                mixed = kir.Prim("exit_mix", (kir.Read(kir.Loc(acc)), alive, self.value(v), total))
                extra.append(kir.Set(kir.Loc(name), mixed, self.line))
                out.append(("relaxed", name))
            return extra, tuple(out)
        for v in values:
            if v.kind == HARD:
                self.refuse("a hard value returned (the kernel returns per-example values)")
            elif isinstance(v, ir.Name) and v.id in self.ranks:
                out.append(("relaxed", v.id))
            else:
                name = self.relaxed_name("result")
                extra.append(kir.Set(kir.Loc(name), self.value(v), self.line))
                out.append(("relaxed", name))
        return extra, tuple(out)

    # ------------------------------------------------------------------------------ statements

    def block(self, stmts):
        out = []
        for s in stmts:
            self.line = s.line
            outer, self.pre = self.pre, []
            try:
                lowered = self.stmt(s)
                out += self.pre + lowered
            finally:
                self.pre = outer
        return out

    def stmt(self, s):
        if isinstance(s, ir.Assign):
            return self.assign(s)
        if isinstance(s, ir.If):
            return self.relaxed_if(s) if s.relaxed else self.hard_if(s)
        if isinstance(s, ir.While):
            return self.relaxed_while(s) if s.relaxed else self.hard_while(s)
        if isinstance(s, ir.For):
            return self.for_(s)
        if isinstance(s, ir.Return):
            self.refuse("a `return` before the end of the function")
        if isinstance(s, ir.Jump):
            if s.what is ir.JumpKind.PASS:
                return []
            self.refuse(f"`{s.what}`")
        if isinstance(s, ir.Exit):
            return self.exit(s)
        self.refuse(f"the statement `{s}`")

    def loop_body(self, stmts, counter=None):
        self.depth += 1
        self.varying.append(set(ir.written(stmts)) | {counter})
        try:
            return tuple(self.block(stmts))
        finally:
            self.depth -= 1
            self.varying.pop()

    def assign(self, s):
        if len(s.targets) != 1:
            self.refuse("a chained assignment `a = b = ...`")
        target, value = s.targets[0], s.value
        if isinstance(target, ir.Tuple_):
            return self.unpack(target, value)
        if isinstance(target, ir.Name) and target.kind == HARD:
            return [self.hard_set(target.id, value)]
        if isinstance(target, ir.Name) and target.kind == RELAXED_INT:
            return self.law_assign(target.id, value)
        if isinstance(target, ir.Name) and target.kind != RELAXED:
            # a constant tensor the body makes (`torch.eye(8)`): an array of every example
            array = self.new_array(target.id, value)
            if array is None:
                self.refuse(f"the shared tensor `{target.id}`")
            return array
        if isinstance(target, ir.Index) and _at_law(target):
            return self.law_write(target, self.value(value))
        if isinstance(target, ir.Name):
            return self.assign_relaxed(target.id, value)
        if isinstance(value, ir.Probs) and (self.is_row(target) or isinstance(target, ir.Name)):
            return self.probs(target, value)
        if self.is_row(target):
            return self.rows([target], [value])
        return [kir.Set(self.location(target), self.value(value), self.line)]

    def probs(self, target, value):
        """``row = avcompile.probs(k, size)``: the probabilities of ``k``'s values 0, ..., size - 1
        (a hard ``k``: one-hot), into a row of an array or a new array of ``size`` values."""
        if value.size is None:
            self.refuse("`probs` without a size")
        size = self.hard_src(value.size)
        if isinstance(target, ir.Name):
            if self.ranks.get(target.id) is None:
                self.alloc_check(target.id)
                self.ranks[target.id], self.shapes[target.id] = 1, (size,)
                self.pre.append(kir.Alloc(target.id, (size,), 0.0, line=self.line))
            dest = kir.Loc(target.id, ())
        else:
            dest = self.location(target, partial=True)
        if self.shapes.get(dest.name, ())[len(dest.index) :] != (size,):
            self.refuse(f"`probs` of a size not known to be the length of a row of `{dest.name}`")
        k, line = value.value, self.line
        if isinstance(k, ir.Name) and k.kind == RELAXED_INT:
            lo, hi = self.law_storage(k.id)

            def element(idx):
                (e,) = idx
                set_ = kir.Set(
                    kir.Loc(dest.name, dest.index + idx), kir.Read(self.law_at(k.id, e)), line
                )
                zero = kir.Set(kir.Loc(dest.name, dest.index + idx), kir.Const(0.0), line)
                return [kir.If(f"h_{lo} <= {e} and {e} < h_{hi}", (set_,), (zero,), line)]

        elif k.kind == HARD:
            at = self.hard_src(k)

            def element(idx):
                (e,) = idx
                one, zero = kir.Const(1.0), kir.Const(0.0)
                return [
                    kir.If(
                        f"{e} == {at}",
                        (kir.Set(kir.Loc(dest.name, dest.index + idx), one, line),),
                        (kir.Set(kir.Loc(dest.name, dest.index + idx), zero, line),),
                        line,
                    )
                ]

        else:
            self.refuse(f"`probs` of `{k}`, which is not an integer")
        if self.column is not None:  # one column of the rows (``rows_by_column``)
            return element(self.column)
        return self.elementwise(dest.name, element, dest.index)

    def is_row(self, e):
        """Whether ``e`` is a row of a relaxed array: fewer positions than its rank."""
        if not isinstance(e, ir.Index) or e.kind == HARD or _at_law(e):
            return False
        loc = self.location(e, partial=True)
        return len(loc.index) < self.ranks[loc.name]

    def rows(self, targets, values):
        """``targets = values`` of rows of one array (a swap of rows, a row copied to
        another): every value read before any is written, element by element."""
        values = [_unlifted(v) for v in values]
        dests = [self.location(t, partial=True) for t in targets]
        sources = [
            self.location(v, partial=True) if isinstance(v, ir.Index) else None for v in values
        ]
        name = dests[0].name
        depth = len(dests[0].index)
        within = self.ranks[name] - depth  # the dimensions of a row
        if any(
            loc is None or self.ranks[loc.name] - len(loc.index) != within
            for loc in dests + sources
        ) or any(loc.name != name for loc in dests):
            self.refuse(f"rows of `{name}` assigned from other than rows of arrays")
        row = self.shapes.get(name, ())[depth:]
        if any(
            src.name != name and self.shapes.get(src.name, ())[len(src.index) :] != row
            for src in sources
        ):
            self.refuse(f"rows of `{name}` assigned rows not known to have their length")

        def elements(idx):
            temps = [self.relaxed_name("t") for _ in sources]
            reads = [
                kir.Set(kir.Loc(t, ()), kir.Read(kir.Loc(src.name, src.index + idx)), self.line)
                for t, src in zip(temps, sources)
            ]
            writes = [
                kir.Set(kir.Loc(name, dest.index + idx), kir.Read(kir.Loc(t)), self.line)
                for t, dest in zip(temps, dests)
            ]
            return reads + writes

        if self.column is not None:  # one column of them (``rows_by_column``)
            return elements(self.column)
        return self.elementwise(name, elements, dests[0].index)

    def hard_set(self, name, value):
        if name in self.hard_params:  # its type is its argument's: a cast only keeps an integer
            return kir.HardSet(name, self.hard_src(value), int_valued(value, self.ints), self.line)
        integer = name in self.ints or isinstance(value, ir.Const) and type(value.value) is int
        self.hard[name] = self.hard.get(name, integer) and integer
        return kir.HardSet(name, self.hard_src(value), self.hard[name], self.line)

    def assign_relaxed(self, name, value):
        """``name = value`` of a relaxed name: a value of one example, a new array or a copy."""
        array = self.new_array(name, value)
        if array is not None:
            return array
        if isinstance(value, ir.Name) and self.ranks.get(value.id, 0) > 0:
            return self.copy_array(name, value.id)
        operands = self.whole_arrays(value)
        if operands:
            return self.array_arithmetic(name, value, operands)
        known = self.ranks.get(name)
        if known:
            self.refuse(f"`{name}`, an array, assigned a value of one example")
        self.ranks[name] = 0
        return [kir.Set(kir.Loc(name), self.value(value), self.line)]

    def new_array(self, name, value):
        """The statements that make ``name`` a new array from ``value``, or None if ``value``
        is not an array made in the body."""
        inner = value.value if isinstance(value, ir.Lift) and value.to is LiftTo.BATCH else value
        dims = fill = filler = None
        elements, after = None, []  # a list display's values; statements that fill the array
        if isinstance(inner, ir.BinOp) and inner.op.symbol == "*":
            lst, count = inner.left, inner.right
            if isinstance(lst, ir.Tuple_) and lst.is_list and len(lst.elts) == 1:
                element = lst.elts[0]
                dims = (self.hard_src(count),)
                if isinstance(element, ir.Const):
                    fill = float(element.value)
                elif element.kind == HARD:  # `[math.inf] * n`: filled in a loop
                    k = self.hard_name("k")
                    value = kir.Hard(self.hard_src(element))
                    one = kir.Set(kir.Loc(name, (f"h_{k}",)), value, self.line)
                    after = [kir.For(k, "0", dims[0], "1", (one,), self.line)]
                else:
                    dims = None
        elif isinstance(inner, ir.Call) and inner.callee is Callee.TORCH and inner.op is not None:
            fills = {"zeros": 0.0, "ones": 1.0, "eye": 0.0, "full": None}
            args = inner.args
            if inner.op.name == "full" and len(args) == 2:
                args, value = args[:1], args[1]
                if isinstance(value, ir.Const):
                    fill = float(value.value)
                else:  # a hard value: filled element by element
                    fill, filler = 0.0, kir.Hard(self.hard_src(value))
            if len(args) == 1 and isinstance(args[0], ir.Tuple_):  # `torch.zeros((h, w))`
                args = args[0].elts
            if inner.op.name in fills and set(inner.kwargs) <= _MADE_LIKE_THE_BATCH and args:
                dims = tuple(self.hard_src(a) for a in args)
                fill = fills[inner.op.name] if fill is None else fill
                if inner.op.name == "eye":
                    dims = dims * 2 if len(dims) == 1 else dims
                    diagonal = self.hard_name("k")
                    one = kir.Set(kir.Loc(name, (f"h_{diagonal}",) * 2), kir.Const(1.0), self.line)
                    last = f"min({dims[0]}, {dims[1]})"
                    after = [kir.For(diagonal, "0", last, "1", (one,), self.line)]
        elif isinstance(inner, ir.Tuple_) and inner.is_list:
            elements = inner.elts
            dims = (str(len(elements)),)
        elif _whole_slice(inner):  # `w[0][:]`: a copy of a row
            return self.row_copy_of(name, self.location(inner.value, partial=True))
        if dims is None:
            return None
        fill = fill if fill is not None else 0.0
        if self.depth and name not in self.allocated and self.invariant(inner):
            # made in a loop: once, before the top-level statement, and filled where it is made
            self.allocated.add(name)
            self.ranks[name], self.shapes[name] = len(dims), dims
            self.hoisted.append(kir.Alloc(name, dims, fill, line=self.line))
            if filler is None:
                filler = kir.Const(fill)
            out = []
        else:
            self.alloc_check(name)
            self.ranks[name], self.shapes[name] = len(dims), dims
            out = [kir.Alloc(name, dims, fill, line=self.line)]
        if filler is not None:
            line = self.line
            out += self.elementwise(name, lambda idx: [kir.Set(kir.Loc(name, idx), filler, line)])
        for k, e in enumerate(elements or ()):
            out.append(kir.Set(kir.Loc(name, (str(k),)), self.value(e), self.line))
        return out + after

    def row_copy_of(self, name, src):
        """``name = x[i][:]``: a new array, a copy of row ``src`` of an array."""
        row = self.shapes.get(src.name)
        if row is None:
            self.refuse(f"a copy of a row of `{src.name}`, whose shape is not known")
        row = row[len(src.index) :]
        self.alloc_check(name)
        self.ranks[name], self.shapes[name] = len(row), row
        line = self.line

        def copy(idx):
            return [kir.Set(kir.Loc(name, idx), kir.Read(kir.Loc(src.name, src.index + idx)), line)]

        return [kir.Alloc(name, row, 0.0, line=line)] + self.elementwise(name, copy)

    def invariant(self, e):
        """Whether hard expression ``e`` has one value in every iteration of the loops around."""
        names = {n.id for n in ir.walk(e) if isinstance(n, ir.Name)}
        return not any(names & changed for changed in self.varying)

    def same_shape(self, a, b):
        """Whether arrays ``a`` and ``b`` have the same dimensions in every example, as far as
        their making shows (the sources of their dimensions are the same)."""
        return self.shapes.get(a) is not None and self.shapes.get(a) == self.shapes.get(b)

    def whole_arrays(self, e):
        """The arrays of the program that ``e`` reads whole (``path + trace``), in order."""
        if isinstance(e, ir.Name):
            return [e.id] if self.ranks.get(e.id, 0) > 0 else []
        if isinstance(e, (ir.BinOp, ir.UnaryOp, ir.Call, ir.Lift)):
            return [a for part in _operands(e) for a in self.whole_arrays(part)]
        return []

    def array_arithmetic(self, name, value, operands):
        """``name = value`` where ``value`` combines whole arrays of one shape element by
        element (``path + trace - path * trace``); each element reads only its own position,
        so ``name`` may be one of them."""
        like = operands[0]
        if any(not self.same_shape(like, a) for a in operands):
            self.refuse("arithmetic on whole arrays of shapes not known to be equal")
        out = []
        if name not in self.allocated and name not in self.shapes:
            self.alloc_check(name)
            self.ranks[name], self.shapes[name] = self.ranks[like], self.shapes[like]
            out.append(kir.Alloc(name, like=like, line=self.line))
        elif not self.same_shape(name, like):
            self.refuse(f"`{name}` given an array of another shape")

        def element(idx):
            at = ir.Tuple_(tuple(ir.Name(i[2:], HARD) for i in idx), HARD)
            arrays = set(operands)

            def pick(e):
                if isinstance(e, ir.Name) and e.id in arrays:
                    return ir.Index(e, at, e.kind)
                return _rebuilt(e, pick)

            return [kir.Set(kir.Loc(name, idx), self.value(pick(value)), self.line)]

        return out + self.elementwise(name, element)

    def alloc_check(self, name):
        if self.depth or name in self.allocated:
            self.refuse(f"the array `{name}` made inside a loop, or made twice")
        self.allocated.add(name)

    def copy_array(self, name, source):
        rank = self.ranks[source]
        out = []
        if name not in self.allocated:
            self.alloc_check(name)
            self.ranks[name] = rank
            self.shapes[name] = self.shapes.get(source)
            out.append(kir.Alloc(name, like=source, line=self.line))
        elif self.ranks.get(name) != rank or not self.same_shape(name, source):
            self.refuse(f"`{name}` given arrays of different shapes")
        return out + self.elementwise(
            source,
            lambda idx: [kir.Set(kir.Loc(name, idx), kir.Read(kir.Loc(source, idx)), self.line)],
        )

    def elementwise(self, like, make, prefix=()):
        """Statements ``make(index)`` for every element of array ``like`` (of its row at
        positions ``prefix``), in nested loops; ``index`` is the element's within the row."""
        rank = self.ranks[like]
        counters = [self.hard_name("e") for _ in range(len(prefix), rank)]
        body = tuple(make(tuple(f"h_{c}" for c in counters)))
        for k in reversed(range(len(counters))):
            hi = f"v_{like}.shape[{len(prefix) + k}]"
            body = (kir.For(counters[k], "0", hi, "1", body, self.line),)
        return list(body)

    def unpack(self, target, value):
        """``a, b = c, d``: every value read before any is written (a swap)."""
        if not isinstance(value, ir.Tuple_) and all(
            isinstance(t, ir.Name) and t.kind == HARD for t in target.elts
        ):
            return self.unpack_hard(target, value)
        if not isinstance(value, ir.Tuple_) or len(value.elts) != len(target.elts):
            self.refuse("unpacking a value that is not a tuple display")
        if any(self.is_row(t) for t in target.elts):
            return self.rows(target.elts, value.elts)
        temps, out = [], []
        for t, v in zip(target.elts, value.elts):
            if isinstance(t, ir.Tuple_):
                self.refuse("a nested unpacking")
            if isinstance(t, ir.Name) and t.kind == RELAXED_INT:
                self.refuse(f"the relaxed integer `{t.id}` unpacked from a tuple")
            if t.kind == HARD and isinstance(t, ir.Name):
                tmp = self.hard_name("t", t.id in self.ints)
                out.append(kir.HardSet(tmp, self.hard_src(v), self.hard[tmp], self.line))
                temps.append(("hard", tmp))
            else:
                tmp = self.relaxed_name("t")
                out.append(kir.Set(kir.Loc(tmp), self.value(v), self.line))
                temps.append(("relaxed", tmp))
        for t, (kind, tmp) in zip(target.elts, temps):
            if kind == "hard":
                integer = self.hard.setdefault(t.id, self.hard[tmp])
                out.append(kir.HardSet(t.id, f"h_{tmp}", integer, self.line))
            elif isinstance(t, ir.Name):
                if self.ranks.get(t.id, 0):
                    self.refuse(f"an array `{t.id}` unpacked from a tuple")
                self.ranks[t.id] = 0
                out.append(kir.Set(kir.Loc(t.id), kir.Read(kir.Loc(tmp)), self.line))
            elif _at_law(t):
                out += self.law_write(t, kir.Read(kir.Loc(tmp)))
            else:
                out.append(kir.Set(self.location(t), kir.Read(kir.Loc(tmp)), self.line))
        return out

    def unpack_hard(self, target, value):
        """``h, w = x.shape`` or ``di, dj = MOVES[k]``: hard names from a hard sequence."""
        if isinstance(value, ir.Shape):
            name = self.array_name(value.value)
            if len(target.elts) != self.ranks[name]:
                self.refuse(f"unpacking the {self.ranks[name]} dimensions of `{name}`")
            parts = [(f"v_{name}.shape[{k}]", True) for k in range(len(target.elts))]
        elif self.free_tuple(value) is not None:
            src, integer = self.hard_src(value), self.free_tuple(value)
            parts = [(f"{src}[{k}]", integer) for k in range(len(target.elts))]
        else:
            self.refuse("unpacking a value that is not a tuple display")
        out = []
        for t, (src, integer) in zip(target.elts, parts):
            if self.hard.setdefault(t.id, integer) != integer:
                self.refuse(f"`{t.id}`, which holds both integers and floats")
            out.append(kir.HardSet(t.id, src, integer, self.line))
        return out

    # ------------------------------------------------------------------------------ control flow

    def hard_if(self, s):
        return [
            kir.If(
                self.hard_src(s.test),
                tuple(self.block(s.body)),
                tuple(self.block(s.orelse)),
                s.line,
            )
        ]

    def hard_while(self, s):
        if s.exits:
            return self.exit_loop(s)
        test = self.hard_src(s.test)
        return [kir.While(test, self.loop_body(s.body), s.line)]

    def for_(self, s):
        if s.exits:
            return self.exit_loop(s)
        if not is_range(s.iter) or not isinstance(s.target, ir.Name):
            self.refuse("a `for` loop over something other than `range`")
        args = [self.hard_src(a) for a in s.iter.args]
        if len(args) == 1:
            lo, hi, step = "0", args[0], "1"
        elif len(args) == 2:
            lo, hi, step = args[0], args[1], "1"
        else:
            lo, hi, step = args
        self.hard[s.target.id] = True
        body = self.loop_body(s.body, s.target.id)
        return [kir.For(s.target.id, lo, hi, step, body, s.line)]

    def relaxed_if(self, s):
        """Both branches on the same storage: the values the first one wrote are set aside and
        the storage put back before the second; then each blended value is mixed by ``p``."""
        if s.exits:
            return self.exiting_if(s)
        p = self.relaxed_name(f"p_L{s.line}")
        out = [kir.Set(kir.Loc(p), self.value(s.test), s.line)]
        s, rows = self.split_rows(s)
        if rows is not None:
            out += self.rows_by_column(rows, p)
        s, laws = self.split_laws(s)
        straight = self.straight_if(s, p)
        if straight is not None:
            return out + straight + self.fused(s, p) + laws(p)
        saves, restores, thens, blends = [], [], [], []
        for var in s.blended:
            name = var.id
            if name in s.new:
                then = self.relaxed_name(f"{name}_then")
                thens.append(kir.Set(kir.Loc(then), kir.Read(kir.Loc(name)), s.line))
                how = self.blend_kind(s, name)
                blends.append(self.blend(p, kir.Loc(name), kir.Loc(then), how=how))
                continue
            rank = self.ranks.get(name)
            if rank is None:
                self.refuse(f"`{name}`, blended before it has a value")
            if rank == 0:
                locs = [kir.Loc(name)]
            else:
                locs = self.written_elements(name, s)
            rows = [loc for loc in locs if len(loc.index) < rank]
            if rows and (len(rows) < len(locs) or len({len(r.index) for r in rows}) > 1):
                self.refuse(f"rows and elements of `{name}` written in one relaxed `if`")
            for k, loc in enumerate(rows):
                before, then = self.row_temporary(loc), self.row_temporary(loc)
                saves += self.row_copy(kir.Loc(before), loc)
                thens += self.row_copy(kir.Loc(then), loc)
                restores += self.row_copy(loc, kir.Loc(before))
                blends += self.row_blend(p, loc, then, rows[:k], self.blend_kind(s, name))
            for loc in locs if not rows else ():
                before = self.relaxed_name(f"{name}_before")
                then = self.relaxed_name(f"{name}_then")
                saves.append(kir.Set(kir.Loc(before), kir.Read(loc), s.line))
                thens.append(kir.Set(kir.Loc(then), kir.Read(loc), s.line))
                restores.append(kir.Set(loc, kir.Read(kir.Loc(before)), s.line))
                earlier = locs[: locs.index(loc)]
                how = self.blend_kind(s, name)
                blends.append(self.blend(p, loc, kir.Loc(then), earlier, how))
        out += saves + self.block(s.body) + thens + restores + self.block(s.orelse) + blends
        return out + self.fused(s, p) + laws(p)

    # ------------------------------------------------------------------------------ relaxed integers

    # A relaxed integer (SEMANTICS 10) is held as its probabilities over absolute positions: value v
    # at element v + h_lawoff of an array of 2 * h_lawoff + 1, with the bounds [lo, hi) of its
    # support as hard names (the same for the whole chunk, as the hard control flow is), and 0
    # outside them. h_lawoff exceeds every dimension of the inputs; a value beyond it raises a flag
    # (the call then refuses, or `auto` runs the torch backend) rather than write elsewhere.

    def law_capacity(self):
        if not any(
            isinstance(n, ir.Name) and n.kind == RELAXED_INT
            for st in self.fn.body
            for n in ir.walk(st)
        ):
            return []
        dims = [
            f"v_{p.id}.shape[{k}]"
            for p in self.fn.params
            if p.kind == RELAXED
            for k in range(self.ranks[p.id])
        ]
        self.hard["lawoff"] = True
        return [kir.HardSet("lawoff", f"max({', '.join(dims + ['1', '1'])}) + 1", True, 0)]

    def law_storage(self, name):
        if name not in self.laws:
            if self.depth:
                self.hoisted.append(kir.Alloc(name, ("2 * h_lawoff + 1",), 0.0, line=self.line))
            else:
                self.pre.append(kir.Alloc(name, ("2 * h_lawoff + 1",), 0.0, line=self.line))
            self.ranks[name] = 1
            self.laws[name] = (self.hard_name(f"{name}_lo"), self.hard_name(f"{name}_hi"))
        return self.laws[name]

    def law_at(self, name, position):
        """The location of the probability of value ``position`` (hard source), kept inside the
        storage (a value outside it has raised the support flag)."""
        return kir.Loc(name, (f"min(max({position} + h_lawoff, 0), 2 * h_lawoff)",))

    def law_flag(self, lo, hi):
        slot = len(self.flags)
        self.flags.append(("support", self.line))
        return kir.Flag(slot, f"{hi} > {lo} and ({lo} < -h_lawoff or {hi} > h_lawoff + 1)")

    def law_clear(self, name, copy=None):
        """Statements that set the probabilities of ``name`` to 0 (``copy``: after copying them
        into that array)."""
        lo, hi = self.laws[name]
        e = self.hard_name("e")
        body = [kir.Set(self.law_at(name, f"h_{e}"), kir.Const(0.0), self.line)]
        if copy is not None:
            read = kir.Read(self.law_at(name, f"h_{e}"))
            body.insert(0, kir.Set(self.law_at(copy, f"h_{e}"), read, self.line))
        return [kir.For(e, f"h_{lo}", f"h_{hi}", "1", tuple(body), self.line)]

    def law_assign(self, name, value):
        """``k = value`` of a relaxed integer outside a relaxed ``if``: a value certain in every
        example."""
        if isinstance(value, ir.Name) and value.id == name:
            return []
        if value.kind != HARD:
            self.refuse(f"the relaxed integer `{name}` given a value other than a hard one")
        lo, hi = self.law_storage(name)
        t = self.hard_name("t")
        return [
            kir.HardSet(t, self.hard_src(value), True, self.line),
            *self.law_clear(name),
            self.law_flag(f"h_{t}", f"h_{t} + 1"),
            kir.HardSet(lo, f"h_{t}", True, self.line),
            kir.HardSet(hi, f"h_{t} + 1", True, self.line),
            kir.Set(self.law_at(name, f"h_{t}"), kir.Const(1.0), self.line),
        ]

    def split_laws(self, s):
        """Relaxed ``if`` ``s`` without its assignments of relaxed integers, and a function of
        ``p`` giving the statements that blend those after the rest. A branch may give a
        relaxed integer a hard value or move it by a hard offset (``c = c + 1``), in one
        statement of its own that nothing else in the branches reads past."""
        names = [v.id for v in s.blended if v.kind == RELAXED_INT]
        if not names:
            return s, lambda p: []
        changes = {}
        for k, branch in enumerate((s.body, s.orelse)):
            for st in branch:
                if (
                    isinstance(st, ir.Assign)
                    and len(st.targets) == 1
                    and isinstance(st.targets[0], ir.Name)
                    and st.targets[0].id in names
                    and (k, st.targets[0].id) not in changes
                ):
                    changes[k, st.targets[0].id] = st
        moved = {id(st) for st in changes.values()}
        for branch in (s.body, s.orelse):
            for st in branch:
                if id(st) in moved:
                    continue
                for n in ir.walk(st):
                    if isinstance(n, ir.Name) and n.id in names:
                        self.refuse(f"the relaxed integer `{n.id}` used beside its change")
        body = tuple(st for st in s.body if id(st) not in moved)
        orelse = tuple(st for st in s.orelse if id(st) not in moved)
        blended = tuple(v for v in s.blended if v.id not in names)
        new = tuple(n for n in s.new if n not in names)
        rest = replace(s, body=body, orelse=orelse, blended=blended, new=new)

        def blends(p):
            out = []
            for name in names:
                sides = [self.law_change(name, changes.get((k, name))) for k in (0, 1)]
                out += self.law_blend(name, p, *sides)
            return out

        return rest, blends

    def law_change(self, name, st):
        """How a branch changes relaxed integer ``name``: (hard statements, kind, hard source)
        with kind None (unchanged), 'point' (a hard value) or 'shift' (moved by an offset)."""
        if st is None:
            return [], None, None
        self.line = st.line
        value = st.value
        if value.kind == HARD:
            t = self.hard_name("t")
            return [kir.HardSet(t, self.hard_src(value), True, st.line)], "point", f"h_{t}"
        if (
            isinstance(value, ir.BinOp)
            and value.op.name in ("add", "sub")
            and isinstance(value.left, ir.Name)
            and value.left.id == name
            and value.right.kind == HARD
        ):
            t = self.hard_name("t")
            sign = "" if value.op.name == "add" else "-"
            offset = kir.HardSet(t, f"{sign}{self.hard_src(value.right)}", True, st.line)
            return [offset], "shift", f"h_{t}"
        if isinstance(value, ir.Name) and value.id == name:
            return [], None, None
        self.refuse(f"the relaxed integer `{name}` given a value other than a hard one or a move")

    def law_blend(self, name, p, then, orelse):
        """``name = then`` with probability ``p``, else ``orelse`` (each from ``law_change``):
        the probabilities over the hull of both supports, blended."""
        if then[1] is None and orelse[1] is None:
            return []
        lo, hi = self.law_storage(name)
        copy = self.relaxed_name(f"{name}_old", 1)
        self.hoisted.append(kir.Alloc(copy, ("2 * h_lawoff + 1",), 0.0, line=self.line))
        out = then[0] + orelse[0]

        def bounds(side):
            kind, src = side[1], side[2]
            if kind == "point":
                return src, f"{src} + 1"
            if kind == "shift":
                return f"h_{lo} + {src}", f"h_{hi} + {src}"
            return f"h_{lo}", f"h_{hi}"

        def value(side, v):
            kind, src = side[1], side[2]
            if kind == "point":
                return kir.Hard(f"(1.0 if {v} == {src} else 0.0)")
            at = f"{v} - {src}" if kind == "shift" else v
            old = kir.Read(self.law_at(copy, at))
            return kir.Prim("select", (old, kir.Const(0.0)), (f"h_{lo} <= {at} < h_{hi}",))

        new_lo, new_hi = self.hard_name("lo"), self.hard_name("hi")
        (tl, th), (el, eh) = bounds(then), bounds(orelse)
        out += [
            kir.HardSet(new_lo, f"min({tl}, {el})", True, self.line),
            kir.HardSet(new_hi, f"max({th}, {eh})", True, self.line),
            self.law_flag(f"h_{new_lo}", f"h_{new_hi}"),
            *self.law_clear(name, copy),
        ]
        v = self.hard_name("v")
        mixed = kir.Prim(
            "blend", (kir.Read(kir.Loc(p)), value(then, f"h_{v}"), value(orelse, f"h_{v}"))
        )
        set_ = kir.Set(self.law_at(name, f"h_{v}"), mixed, self.line)
        out.append(kir.For(v, f"h_{new_lo}", f"h_{new_hi}", "1", (set_,), self.line))
        out += [
            kir.HardSet(lo, f"h_{new_lo}", True, self.line),
            kir.HardSet(hi, f"h_{new_hi}", True, self.line),
        ]
        return out

    def law_of(self, e):
        """The one relaxed integer that expression ``e`` reads (with hard values)."""
        names = {n.id for n in ir.walk(e) if isinstance(n, ir.Name) and n.kind == RELAXED_INT}
        if len(names) != 1:
            self.refuse(f"`{e}`, an expression of {len(names)} relaxed integers")
        (name,) = names
        if name not in self.laws:
            self.refuse(f"the relaxed integer `{name}` read before it has a value")
        return name

    def at_value(self, name, e, v):
        """Hard source of ``e`` with relaxed integer ``name`` as the value in hard name ``v``."""
        self.as_hard[name] = v
        try:
            return self.hard_src(e)
        finally:
            del self.as_hard[name]

    def law_sum(self, e, weight):
        """The expectation over the relaxed integer in ``e`` of ``weight(source of e)``: a sum
        over its support, made in statements before the one being lowered."""
        name = self.law_of(e)
        lo, hi = self.laws[name]
        acc, v = self.relaxed_name("law"), self.hard_name("v")
        term = kir.Prim(
            "mul", (kir.Read(self.law_at(name, f"h_{v}")), weight(self.at_value(name, e, f"h_{v}")))
        )
        add = kir.Set(kir.Loc(acc), kir.Prim("add", (kir.Read(kir.Loc(acc)), term)), self.line)
        self.pre += [
            kir.Set(kir.Loc(acc), kir.Const(0.0), self.line),
            kir.For(v, f"h_{lo}", f"h_{hi}", "1", (add,), self.line),
        ]
        return kir.Read(kir.Loc(acc))

    def law_position(self, e):
        """For ``x[..., f(k), ...]``, ``k`` a relaxed integer in one component of the position:
        the relaxed integer, a function of a hard name ``v`` (a value of ``k``) giving the hard
        statement that sets hard name ``q`` to the position ``f(v)`` names along that dimension
        (negative positions count from the end) and the test that it lies in the array, a
        function giving the element at ``q``, and the array's length along that dimension."""
        parts = e.index.elts if isinstance(e.index, ir.Tuple_) else (e.index,)
        if not isinstance(e.value, ir.Name) or self.ranks.get(e.value.id) != len(parts):
            self.refuse("an element at a relaxed position of other than an array's element")
        relaxed = [k for k, part in enumerate(parts) if _at_law(ir.Index(e.value, part, e.kind))]
        if len(relaxed) != 1:
            self.refuse("an element at relaxed positions along two dimensions")
        (dim,) = relaxed
        array, name = e.value.id, self.law_of(parts[dim])
        fixed = [None if k == dim else self.hard_src(part) for k, part in enumerate(parts)]
        n = f"v_{array}.shape[{dim}]"

        def position(v, q):
            f = self.at_value(name, parts[dim], v)
            return kir.HardSet(
                q, f"({f}) + {n} if ({f}) < 0 else ({f})", True, self.line
            ), f"0 <= h_{q} < {n}"

        def element(q):
            return kir.Loc(array, tuple(f"h_{q}" if k == dim else i for k, i in enumerate(fixed)))

        return name, position, element, n

    def law_read(self, e):
        """``x[f(k)]``: sum over the support of P(k = v) x[f(v)], positions outside the array
        reading nothing (SEMANTICS 7); in an array that may hold infinities, a value of
        probability 0 adds nothing."""
        name, position, element, _ = self.law_position(e)
        lo, hi = self.laws[name]
        acc, v, q = self.relaxed_name("law"), self.hard_name("v"), self.hard_name("q")
        at, inside = position(f"h_{v}", q)
        term = kir.Prim(
            "mul_safe" if e.infinite else "mul",
            (kir.Read(self.law_at(name, f"h_{v}")), kir.Read(element(q))),
        )
        add = kir.Set(kir.Loc(acc), kir.Prim("add", (kir.Read(kir.Loc(acc)), term)), self.line)
        self.pre += [
            kir.Set(kir.Loc(acc), kir.Const(0.0), self.line),
            kir.For(
                v, f"h_{lo}", f"h_{hi}", "1", (at, kir.If(inside, (add,), (), self.line)), self.line
            ),
        ]
        return kir.Read(kir.Loc(acc))

    def law_write(self, target, value):
        """``x[f(k)] = value``: each position m of the array set to
        P(f(k) = m) value + (1 - P(f(k) = m)) x[m] (SEMANTICS 7), value read once before; in
        an array that may hold infinities, a side of probability 0 adds nothing."""
        name, position, element, n = self.law_position(target)
        lo, hi = self.laws[name]
        weights = self.relaxed_name(f"{target.value.id}_weights", 1)
        self.hoisted.append(kir.Alloc(weights, (n,), 0.0, line=self.line))
        tmp, v, q, m = (
            self.relaxed_name("t"),
            self.hard_name("v"),
            self.hard_name("q"),
            self.hard_name("m"),
        )
        at, inside = position(f"h_{v}", q)
        w = kir.Loc(weights, (f"h_{q}",))
        gather = kir.Set(
            w, kir.Prim("add", (kir.Read(w), kir.Read(self.law_at(name, f"h_{v}")))), self.line
        )
        put = kir.Set(
            element(m),
            kir.Prim(
                "blend_safe" if target.infinite else "blend",
                (
                    kir.Read(kir.Loc(weights, (f"h_{m}",))),
                    kir.Read(kir.Loc(tmp)),
                    kir.Read(element(m)),
                ),
            ),
            self.line,
        )
        return [
            kir.Set(kir.Loc(tmp), value, self.line),
            kir.For(
                m,
                "0",
                n,
                "1",
                (kir.Set(kir.Loc(weights, (f"h_{m}",)), kir.Const(0.0), self.line),),
                self.line,
            ),
            kir.For(
                v,
                f"h_{lo}",
                f"h_{hi}",
                "1",
                (at, kir.If(inside, (gather,), (), self.line)),
                self.line,
            ),
            kir.For(m, "0", n, "1", (put,), self.line),
        ]

    def split_rows(self, s):
        """Relaxed ``if`` ``s`` as the ``if`` of its other statements and the ``if`` of the
        statements that move rows of one array (a swap of rows), where the two are independent:
        the rest neither reads nor writes that array. The rows are then blended column by
        column (``rows_by_column``) rather than saved and put back whole. ``None`` for the
        second where there is no such split."""
        moves = {}
        for st in s.body + s.orelse:
            if isinstance(st, ir.Assign) and len(st.targets) == 1:
                t = st.targets[0]
                elts = t.elts if isinstance(t, ir.Tuple_) else (t,)
                if all(self.is_row(e) for e in elts):
                    moves[id(st)] = {ir.root(e).id for e in elts}
        arrays = set().union(*moves.values()) if moves else set()
        if len(arrays) != 1 or s.fused:
            return s, None
        (array,) = arrays
        rest = [st for st in s.body + s.orelse if id(st) not in moves]
        if any(isinstance(n, ir.Name) and n.id == array for st in rest for n in ir.walk(st)):
            return s, None

        def keep(stmts, rows):
            return tuple(st for st in stmts if (id(st) in moves) == rows)

        blended = tuple(v for v in s.blended if v.id != array)
        row_if = replace(s, body=keep(s.body, True), orelse=keep(s.orelse, True), blended=())
        return replace(
            s, body=keep(s.body, False), orelse=keep(s.orelse, False), blended=blended
        ), row_if

    def rows_by_column(self, s, p):
        """The row moves of relaxed ``if`` ``s`` (``split_rows``) as one loop over the columns,
        each column's elements blended as a straight-line ``if`` of single values."""
        first = s.body[0] if s.body else s.orelse[0]
        target = first.targets[0]
        row = self.location(target.elts[0] if isinstance(target, ir.Tuple_) else target, True)
        rank = self.ranks[row.name]
        counters = [self.hard_name("col") for _ in range(len(row.index), rank)]
        self.column = tuple(f"h_{c}" for c in counters)
        try:
            branches = [_symbolic(self.block(b)) for b in (s.body, s.orelse)]
        finally:
            self.column = None
        if any(b is None for b in branches):
            self.refuse(f"rows of `{row.name}` moved where a row is read after another is written")
        locs = []
        for values in branches:  # the elements moved (not the temporaries of a swap)
            locs += [loc for loc in values if loc.name == row.name and loc not in locs]
        body = tuple(self.blend_branches(s, p, locs, branches))
        for k in reversed(range(len(counters))):
            hi = f"v_{row.name}.shape[{len(row.index) + k}]"
            body = (kir.For(counters[k], "0", hi, "1", body, s.line),)
        return list(body)

    # ------------------------------------------------------------------------------ early exits

    # SEMANTICS 11 as runtime.Exits computes it: an exit adds the mass still running (``alive``)
    # and that mass times each value it carries out to sums of its loop (or of the function's
    # result), and leaves no mass running; after the loop each value is the mean over where the
    # examples left, ``exit_mix``. ``continue`` and exits of a relaxed ``while`` stay outside.

    def return_collector(self, count):
        if self.returned is None:
            mass = self.relaxed_name("returned")
            sums = tuple(self.relaxed_name("returned_sum") for _ in range(count))
            self.returned = (mass, sums)
        elif len(self.returned[1]) != count:
            self.refuse("returns of different numbers of values under relaxed conditions")
        return self.returned

    def exit(self, s):
        alive = kir.Loc(self.fn.alive)
        out = []
        if s.what is ir.JumpKind.RETURN:
            values = s.value.elts if isinstance(s.value, ir.Tuple_) else (s.value,)
            mass, sums = self.return_collector(len(values))
            for v, acc in zip(values, sums):
                if v.kind != HARD and self.ranks.get(getattr(v, "id", None), 0):
                    self.refuse("an array returned under a relaxed condition")
                out.append(
                    self.add_to(kir.Loc(acc), kir.Prim("mul", (kir.Read(alive), self.value(v))))
                )
        elif s.what is ir.JumpKind.BREAK and self.exit_loops:
            mass, sums, laws, means = self.exit_loops[-1]
            for name, acc in sums:
                out += self.elementwise_add(acc, name)
            for name, twin in laws:
                out += self.law_add(twin, f"h_{name}", kir.Read(alive))
            for name, twin in means:
                term = kir.Prim("mul", (kir.Read(alive), kir.Hard(f"float(h_{name})")))
                out.append(self.add_to(kir.Loc(twin), term))
        elif s.what is ir.JumpKind.CONTINUE and self.skip_loops and self.skip_loops[-1]:
            mass, sums = self.skip_loops[-1]
            for name, acc in sums:
                out += self.elementwise_add(acc, name)
        else:
            self.refuse(f"`{s.what}` under a relaxed condition")
        out.append(self.add_to(kir.Loc(mass), kir.Read(alive)))
        out.append(kir.Set(alive, kir.Const(0.0), s.line))
        return out

    def add_to(self, loc, term):
        return kir.Set(loc, kir.Prim("add", (kir.Read(loc), term)), self.line)

    def elementwise_add(self, acc, name):
        """``acc += alive * name``, element by element for an array."""
        alive = kir.Read(kir.Loc(self.fn.alive))

        def make(idx):
            term = kir.Prim("mul", (alive, kir.Read(kir.Loc(name, idx))))
            return [self.add_to(kir.Loc(acc, idx), term)]

        return self.elementwise(name, make) if self.ranks[name] else make(())

    def law_add(self, twin, value, weight):
        """Probability ``weight`` added at hard ``value`` of relaxed integer ``twin`` (its support
        grown to hold it; empty when its bounds are equal)."""
        lo, hi = self.laws[twin]
        at = self.law_at(twin, value)
        return [
            kir.HardSet(
                lo, f"({value} if h_{lo} == h_{hi} else min(h_{lo}, {value}))", True, self.line
            ),
            kir.HardSet(hi, f"max(h_{hi}, {value} + 1)", True, self.line),
            self.law_flag(f"h_{lo}", f"h_{hi}"),
            kir.Set(at, kir.Prim("add", (kir.Read(at), weight)), self.line),
        ]

    def exit_loop(self, s):
        """A ``for`` loop or a hard ``while`` that examples leave to an extent: the sums its
        exits add to start at 0, then after it each carried value (and hard value read after it)
        is mixed."""
        continues = any(
            isinstance(n, ir.Exit) and n.what is ir.JumpKind.CONTINUE for n in ir.walk(s)
        )
        if self.depth:
            self.refuse("a loop left under a relaxed condition inside another loop")
        if any(v.kind == RELAXED_INT for v in s.carried):
            self.refuse("a relaxed integer changed in a loop left under a relaxed condition")
        line, alive = s.line, kir.Read(kir.Loc(self.fn.alive))
        mass = self.relaxed_name(f"left_L{line}")
        start = [kir.Set(kir.Loc(mass), kir.Const(0.0), line)]
        sums = self.carried_sums(s, "left")
        for name, acc in sums:
            start += self.zeroed(acc, like=name)
        laws, means = [], []
        for name, twin in s.stopped:
            if twin in s.stopped_ints:
                lo, hi = self.law_storage(twin)
                start += self.law_clear(twin) + [kir.HardSet(hi, f"h_{lo}", True, line)]
                laws.append((name, twin))
            else:
                self.ranks[twin] = 0
                start.append(kir.Set(kir.Loc(twin), kir.Const(0.0), line))
                means.append((name, twin))
        skips = self.skip_collector(s) if continues else None
        self.exit_loops.append((mass, sums, laws, means))
        self.skip_loops.append(skips)
        try:
            if isinstance(s, ir.While):
                loop = self.exiting_while(s)
            else:
                loop = self.for_(replace(s, exits=False))
        finally:
            self.exit_loops.pop()
            self.skip_loops.pop()
        if skips is not None:
            (f,) = loop
            start_iteration, end_iteration = self.skip_merge(s, skips)
            loop = [replace(f, body=tuple(start_iteration) + f.body + tuple(end_iteration))]
        total = self.relaxed_name(f"total_L{line}")
        after = [kir.Set(kir.Loc(total), kir.Prim("add", (kir.Read(kir.Loc(mass)), alive)), line)]
        after += self.mixed_by_mass(sums, total, line)
        for name, twin in means:
            value = kir.Prim(
                "exit_mix",
                (
                    kir.Read(kir.Loc(twin)),
                    alive,
                    kir.Hard(f"float(h_{name})"),
                    kir.Read(kir.Loc(total)),
                ),
            )
            after.append(kir.Set(kir.Loc(twin), value, line))
        for name, twin in laws:
            lo, hi = self.laws[twin]
            after += [
                kir.HardSet(
                    lo, f"(h_{name} if h_{lo} == h_{hi} else min(h_{lo}, h_{name}))", True, line
                ),
                kir.HardSet(hi, f"max(h_{hi}, h_{name} + 1)", True, line),
                self.law_flag(f"h_{lo}", f"h_{hi}"),
            ]
            v = self.hard_name("v")
            at = self.law_at(twin, f"h_{v}")
            point = kir.Hard(f"(1.0 if h_{v} == h_{name} else 0.0)")
            value = kir.Prim("exit_mix", (kir.Read(at), alive, point, kir.Read(kir.Loc(total))))
            after.append(kir.For(v, f"h_{lo}", f"h_{hi}", "1", (kir.Set(at, value, line),), line))
        after.append(kir.Set(kir.Loc(self.fn.alive), kir.Read(kir.Loc(total)), line))
        return start + loop + after

    def exiting_while(self, s):
        """A hard ``while`` that examples leave to an extent (``while True:`` with relaxed
        ``break``s): after each statement that may exit, the loop stops once every example's
        mass still running is at most ``eps`` of what entered, or after ``max_iter`` iterations,
        raising the flag (``runtime.Stopping``); the statements after such a check run only
        where it goes on."""
        line = s.line
        max_iter, eps = self.own_limit(s.max_iter, "max_iter"), self.own_limit(s.eps, "eps")
        entry = self.relaxed_name(f"entry_L{line}")
        k, going = self.hard_name(f"k_L{line}"), self.hard_name(f"going_L{line}")
        slot = len(self.flags)
        self.flags.append(("max_iter", line))

        def check():
            more = f"kr.bexcess(v_{self.fn.alive}, v_{entry}, {eps}) > 0.0"
            return [
                kir.Flag(slot, f"{more} and h_{k} > {max_iter}", line),
                kir.HardSet(going, f"1 if {more} and h_{k} <= {max_iter} else 0", True, line),
            ]

        self.depth += 1
        self.varying.append(set(ir.written(s.body)) | {k, going})
        try:
            parts = []  # per statement: its lowering, and whether a check follows it
            for st in s.body:
                exits = any(isinstance(n, ir.Exit) for n in ir.walk(st))
                parts.append((self.block([st]), exits))
        finally:
            self.depth -= 1
            self.varying.pop()
        body = []
        for lowered, exits in reversed(parts):
            if exits:
                rest = tuple(body)
                body = [*lowered, *check()] + (
                    [kir.If(f"h_{going}", rest, (), line)] if rest else []
                )
            else:
                body = [*lowered, *body]
        test = self.hard_src(s.test)
        return [
            kir.Set(kir.Loc(entry), kir.Read(kir.Loc(self.fn.alive)), line),
            kir.HardSet(k, "0", True, line),
            kir.HardSet(going, "1", True, line),
            kir.While(
                f"h_{going} and ({test})",
                (kir.HardSet(k, f"h_{k} + 1", True, line), *body),
                line,
            ),
        ]

    def zeroed(self, acc, like):
        """Statements that set ``acc`` (an array shaped as ``like``, or one value) to 0."""
        line = self.line

        def zero(idx):
            return [kir.Set(kir.Loc(acc, idx), kir.Const(0.0), line)]

        return self.elementwise(like, zero) if self.ranks[like] else zero(())

    def mixed_by_mass(self, sums, total, line):
        """Each carried value, element by element, the mix by mass of what left (``acc``, its
        sum weighted by the mass that left) and of itself, still running: ``exit_mix``."""
        alive, out = kir.Read(kir.Loc(self.fn.alive)), []
        for name, acc in sums:

            def mix(idx, name=name, acc=acc):
                value = kir.Prim(
                    "exit_mix",
                    (
                        kir.Read(kir.Loc(acc, idx)),
                        alive,
                        kir.Read(kir.Loc(name, idx)),
                        kir.Read(kir.Loc(total)),
                    ),
                )
                return [kir.Set(kir.Loc(name, idx), value, line)]

            out += self.elementwise(name, mix) if self.ranks[name] else mix(())
        return out

    def skip_collector(self, s):
        """What the ``continue``s of loop ``s`` set aside in an iteration: the mass and, for each
        value the loop carries, its sum weighted by the mass (arrays made before the loop)."""
        return self.relaxed_name(f"skipped_L{s.line}"), self.carried_sums(s, "skipped")

    def carried_sums(self, s, suffix):
        """``(name, sum)`` for each value loop ``s`` carries: where what leaves it adds up,
        weighted by its mass (an array's made before the top-level statement)."""
        sums = []
        for v in s.carried:
            rank = self.ranks.get(v.id)
            if rank is None:
                self.refuse(f"`{v.id}`, carried before it has a value")
            acc = self.relaxed_name(f"{v.id}_{suffix}", rank)
            if rank:
                self.hoisted.append(kir.Alloc(acc, like=v.id, line=s.line))
            sums.append((v.id, acc))
        return sums

    def skip_merge(self, s, skips):
        """The statements that start an iteration of loop ``s`` with nothing set aside, and
        those that end it: each carried value the mix, by mass, of where examples continued and
        of what ran to the end of the body (SEMANTICS 11), and all that mass running on."""
        line, (mass, sums) = s.line, skips
        alive = kir.Read(kir.Loc(self.fn.alive))
        start = [kir.Set(kir.Loc(mass), kir.Const(0.0), line)]
        for name, acc in sums:
            start += self.zeroed(acc, like=name)
        total = self.relaxed_name(f"total_skipped_L{line}")
        end = [kir.Set(kir.Loc(total), kir.Prim("add", (kir.Read(kir.Loc(mass)), alive)), line)]
        end += self.mixed_by_mass(sums, total, line)
        end.append(kir.Set(kir.Loc(self.fn.alive), kir.Read(kir.Loc(total)), line))
        return start, end

    def exiting_if(self, s):
        """A relaxed ``if`` whose branches exit to an extent (SEMANTICS 11): each branch runs
        with the mass of examples that take it, and the values are blended by each branch's share
        of the mass still running after it."""
        alive = self.fn.alive
        p = self.relaxed_name(f"p_L{s.line}")
        before = self.relaxed_name(f"{alive}_before")
        masses = [self.relaxed_name(f"{alive}_then"), self.relaxed_name(f"{alive}_else")]
        out = [
            kir.Set(kir.Loc(p), self.value(s.test), s.line),
            kir.Set(kir.Loc(before), kir.Read(kir.Loc(alive)), s.line),
        ]
        others = [v for v in s.blended if v.id != alive]
        if any(v.kind == RELAXED_INT for v in others):
            self.refuse("a relaxed integer changed in a relaxed `if` whose branches exit")
        saves, restores, thens, blends = [], [], [], []
        q = self.relaxed_name(f"share_L{s.line}")
        for var in others:
            name = var.id
            if self.ranks.get(name, 0) or name in s.new:
                self.refuse(
                    f"`{name}`, an array or a new name, in a relaxed `if` whose branches exit"
                )
            if name not in self.ranks:
                self.refuse(f"`{name}`, blended before it has a value")
            keep = self.relaxed_name(f"{name}_before")
            then = self.relaxed_name(f"{name}_then")
            saves.append(kir.Set(kir.Loc(keep), kir.Read(kir.Loc(name)), s.line))
            thens.append(kir.Set(kir.Loc(then), kir.Read(kir.Loc(name)), s.line))
            restores.append(kir.Set(kir.Loc(name), kir.Read(kir.Loc(keep)), s.line))
            how = self.blend_kind(s, name)
            blends.append(
                kir.Set(
                    kir.Loc(name),
                    kir.Prim(
                        how,
                        (kir.Read(kir.Loc(q)), kir.Read(kir.Loc(then)), kir.Read(kir.Loc(name))),
                    ),
                    s.line,
                )
            )

        def mass_in(weight):
            product = kir.Prim("mul", (kir.Read(kir.Loc(before)), weight))
            return kir.Set(kir.Loc(alive), product, s.line)

        not_p = kir.Prim("sub", (kir.Const(1.0), kir.Read(kir.Loc(p))))
        out += saves + [mass_in(kir.Read(kir.Loc(p)))] + self.block(s.body)
        out += thens + [kir.Set(kir.Loc(masses[0]), kir.Read(kir.Loc(alive)), s.line)]
        out += restores + [mass_in(not_p)] + self.block(s.orelse)
        out.append(kir.Set(kir.Loc(masses[1]), kir.Read(kir.Loc(alive)), s.line))
        share = kir.Prim(
            "share",
            (kir.Read(kir.Loc(masses[0])), kir.Read(kir.Loc(masses[1])), kir.Read(kir.Loc(p))),
        )
        out.append(kir.Set(kir.Loc(q), share, s.line))
        out += blends
        total = kir.Prim("add", (kir.Read(kir.Loc(masses[0])), kir.Read(kir.Loc(masses[1]))))
        out.append(kir.Set(kir.Loc(alive), total, s.line))
        return out + self.fused(s, q)

    def fused(self, s, p):
        """The blends the optimiser took out of the branches (``ir.Fused``)."""
        out = []
        for f in s.fused:
            self.line = f.line
            loc = kir.Loc(f.var.id)
            if f.op is FuseOp.ADD:
                step = kir.Prim("mul", (kir.Read(kir.Loc(p)), self.value(f.value)))
                out.append(kir.Set(loc, kir.Prim("add", (kir.Read(loc), step)), f.line))
            else:
                blend = kir.Prim(
                    "blend", (kir.Read(kir.Loc(p)), self.value(f.value), kir.Read(loc))
                )
                out.append(kir.Set(loc, blend, f.line))
        return out

    def straight_if(self, s, p):
        """A relaxed ``if`` whose branches only set values: each branch's values as expressions
        of the values before it (no storage written or put back), then the blends; None where a
        branch has control flow, or reads an element of an array after writing another one (they
        might be one element)."""
        saved = (dict(self.ranks), dict(self.hard), set(self.taken), self.counter, list(self.flags))
        branches = []
        for stmts in (s.body, s.orelse):
            lowered = self.block(stmts)
            values = _symbolic(lowered)
            if values is None:
                self.ranks, self.hard, self.taken, self.counter, self.flags = saved
                return None
            branches.append(values)
        locs = []
        for var in s.blended:
            name = var.id
            if self.ranks.get(name, 0) == 0:
                locs.append(kir.Loc(name))
            else:
                locs += [
                    loc
                    for values in branches
                    for loc in values
                    if loc.name == name and loc not in locs
                ]
        if any(self.ranks.get(loc.name) is None for loc in locs):
            self.refuse("a value blended before it has one")
        return self.blend_branches(s, p, locs, branches)

    def blend_branches(self, s, p, locs, branches):
        """Each of ``locs`` blended by ``p`` between its values after the two ``branches``
        (``_symbolic``), each branch's value first set in a temporary."""
        out, blends = [], []
        for k, loc in enumerate(locs):
            parts = []
            for values in branches:
                value = values.get(loc, kir.Read(loc))
                if value != kir.Read(loc):
                    tmp = self.relaxed_name(f"{loc.name}_branch")
                    out.append(kir.Set(kir.Loc(tmp), value, s.line))
                    value = kir.Read(kir.Loc(tmp))
                parts.append(value)
            how = self.blend_kind(s, loc.name)
            blends.append(self.blend_values(p, loc, parts, locs[:k], how))
        return out + blends

    def blend_kind(self, s, name):
        """The blend of ``name`` after relaxed ``if`` ``s`` (``emit``'s rule): an infinite
        sentinel is blended as a value; a guarded op's value that is not finite is not."""
        if name in s.infinite and s.guarded:
            self.refuse("a value that may be an infinite sentinel, blended from a guarded branch")
        if name in s.infinite:
            return "blend_inf"
        return "blend_finite" if s.guarded else "blend"

    def blend_values(self, p, loc, parts, earlier, how="blend"):
        """``loc = blend(p, then, else)``, skipped where ``loc`` is an element listed ``earlier``
        (the same element written twice: blended once)."""
        value = kir.Prim(how, (kir.Read(kir.Loc(p)), parts[0], parts[1]))
        stmt = kir.Set(loc, value, self.line)
        same = [
            " and ".join(f"({a}) == ({b})" for a, b in zip(loc.index, e.index))
            for e in earlier
            if e.name == loc.name and e.index and not kir.distinct(e, loc)
        ]
        if not same:
            return stmt
        return kir.If(" or ".join(f"({t})" for t in same), (), (stmt,), self.line)

    def blend(self, p, loc, then, earlier=(), how="blend"):
        """``loc = blend(p, then, loc)``, skipped where ``loc`` is an element listed ``earlier``
        (the same element written twice: blended once)."""
        value = kir.Prim(how, (kir.Read(kir.Loc(p)), kir.Read(then), kir.Read(loc)))
        stmt = kir.Set(loc, value, self.line)
        same = [
            " and ".join(f"({a}) == ({b})" for a, b in zip(loc.index, e.index)) for e in earlier
        ]
        if not same:
            return stmt
        return kir.If(" or ".join(f"({t})" for t in same), (), (stmt,), self.line)

    def row_temporary(self, row):
        """A new array shaped as ``row``, made before the top-level statement that needs it (so
        that the kernel allocates it once, not in every iteration of a loop around it)."""
        rank = self.ranks[row.name]
        dims = tuple(f"v_{row.name}.shape[{k}]" for k in range(len(row.index), rank))
        name = self.relaxed_name(f"{row.name}_row", len(dims))
        self.hoisted.append(kir.Alloc(name, dims, 0.0, line=self.line))
        return name

    def row_copy(self, dest, source):
        """``dest = source`` element by element, one of them a row of an array and the other a
        temporary of its shape."""
        row = dest if dest.index else source
        return self.elementwise(
            row.name,
            lambda idx: [
                kir.Set(
                    kir.Loc(dest.name, dest.index + idx),
                    kir.Read(kir.Loc(source.name, source.index + idx)),
                    self.line,
                )
            ],
            row.index,
        )

    def row_blend(self, p, row, then, earlier, how="blend"):
        """``row = blend(p, then, row)`` element by element, skipped where ``row`` is one of
        the rows ``earlier`` (blended once)."""

        def blend(idx):
            loc = kir.Loc(row.name, row.index + idx)
            value = kir.Prim(
                how, (kir.Read(kir.Loc(p)), kir.Read(kir.Loc(then, idx)), kir.Read(loc))
            )
            return [kir.Set(loc, value, self.line)]

        body = self.elementwise(row.name, blend, row.index)
        same = [
            " and ".join(f"({a}) == ({b})" for a, b in zip(row.index, e.index))
            for e in earlier
            if not kir.distinct(e, row)
        ]
        if not same:
            return body
        return [kir.If(" or ".join(f"({t})" for t in same), (), tuple(body), self.line)]

    def written_elements(self, name, s):
        """The elements of array ``name`` that the branches of relaxed ``if`` ``s`` write, each
        at positions fixed before the branches run; refused where they are not."""
        changed = ir.written(s.body + s.orelse)
        found = []

        def visit(stmts, looped):
            for st in stmts:
                if isinstance(st, ir.Assign):
                    for t in st.targets:
                        for elt in t.elts if isinstance(t, ir.Tuple_) else (t,):
                            if ir.root(elt) == ir.Name(name, elt.kind) or (
                                isinstance(ir.root(elt), ir.Name) and ir.root(elt).id == name
                            ):
                                if looped or not isinstance(elt, ir.Index):
                                    self.refuse(
                                        f"`{name}` written in a loop or as a whole inside a "
                                        f"relaxed `if`"
                                    )
                                used = {n.id for n in ir.walk(elt.index) if isinstance(n, ir.Name)}
                                if used & changed:
                                    self.refuse(f"`{name}` written where the branch moves")
                                loc = self.location(elt, partial=True)
                                if loc not in found:
                                    found.append(loc)
                elif isinstance(st, ir.If):
                    visit(st.body, looped)
                    visit(st.orelse, looped)
                elif isinstance(st, (ir.For, ir.While)):
                    visit(st.body, True)

        visit(s.body + s.orelse, False)
        return found

    def relaxed_while(self, s):
        """The expectation over the stopping iteration (``runtime.relaxed_while``)."""
        if s.exits:
            self.refuse("an early exit under a relaxed condition")
        if s.infinite:
            self.refuse("a relaxed `while` whose values may be infinite")
        max_iter = self.own_limit(s.max_iter, "max_iter")
        eps = self.own_limit(s.eps, "eps")
        line = s.line
        p, p_next, weight = (self.relaxed_name(f"{b}_L{line}") for b in ("p", "p_next", "w"))
        k = self.hard_name(f"k_L{line}")
        if any(v.kind == RELAXED_INT for v in s.carried):
            self.refuse("a relaxed integer changed in a relaxed `while`")
        before = len(self.pre)
        cond = self.value(s.test)
        if len(self.pre) > before:
            self.refuse("a relaxed integer read in a relaxed `while`'s condition")
        carried = [v.id for v in s.carried if v.kind == RELAXED]
        start, step, last, back = [], [], [], []
        for name in carried:
            rank = self.ranks.get(name)
            if rank is None:
                self.refuse(f"`{name}`, carried before it has a value")
            a = self.fresh(f"{name}_acc")
            self.ranks[a] = rank
            if rank and self.depth:  # made once, before the top-level statement
                self.hoisted.append(kir.Alloc(a, like=name, line=line))
            elif rank:
                self.alloc_check(a)
                start.append(kir.Alloc(a, like=name, line=line))
            parts = self.accumulator(name, a, p, weight, line)
            for out, part in zip((start, step, last, back), parts):
                out += part
        for name, twin in s.stopped:  # hard values the loop leaves per example (SEMANTICS 10)
            if twin in s.stopped_ints:
                parts = self.law_accumulator(twin, f"h_{name}", p, weight)
            else:
                self.ranks[twin] = 0
                parts = self.hard_accumulator(twin, f"h_{name}", p, weight)
            for out, part in zip((start, step, last), parts):
                out += part
        body = self.loop_body(s.body)
        more = f"h_{k} < {max_iter} and kr.bmax(v_{p}) > {eps}"
        loop_body = body + (
            kir.Set(kir.Loc(p_next), kir.Prim("mul", (kir.Read(kir.Loc(p)), cond)), line),
            kir.Set(
                kir.Loc(weight),
                kir.Prim("sub", (kir.Read(kir.Loc(p)), kir.Read(kir.Loc(p_next)))),
                line,
            ),
            *step,
            kir.Set(kir.Loc(p), kir.Read(kir.Loc(p_next)), line),
            kir.HardSet(k, f"h_{k} + 1", True, line),
        )
        slot = len(self.flags)
        self.flags.append(("max_iter", line))
        return (
            [kir.Set(kir.Loc(p), cond, line)]
            + start
            + [kir.HardSet(k, "0", True, line), kir.While(more, loop_body, line)]
            + [kir.Flag(slot, f"h_{k} == {max_iter} and kr.bmax(v_{p}) > {eps}", line)]
            + last
            + back
        )

    def hard_accumulator(self, twin, value, p, weight):
        """The expectation in ``twin`` of hard ``value`` over the iteration at which a relaxed
        ``while`` stops: the statements at its start, after each iteration and at its end."""

        def plus(w):
            term = kir.Prim("mul", (kir.Read(kir.Loc(w)), kir.Hard(f"float({value})")))
            return [
                kir.Set(kir.Loc(twin), kir.Prim("add", (kir.Read(kir.Loc(twin)), term)), self.line)
            ]

        rest = kir.Prim("sub", (kir.Const(1.0), kir.Read(kir.Loc(p))))
        first = kir.Set(
            kir.Loc(twin), kir.Prim("mul", (rest, kir.Hard(f"float({value})"))), self.line
        )
        return [first], plus(weight), plus(p)

    def law_accumulator(self, twin, value, p, weight):
        """The distribution in relaxed integer ``twin`` of hard integer ``value`` over the
        iteration at which a relaxed ``while`` stops (as ``hard_accumulator``)."""
        lo, hi = self.law_storage(twin)
        at = self.law_at(twin, value)

        def plus(w):
            return [
                kir.HardSet(lo, f"min(h_{lo}, {value})", True, self.line),
                kir.HardSet(hi, f"max(h_{hi}, {value} + 1)", True, self.line),
                self.law_flag(f"h_{lo}", f"h_{hi}"),
                kir.Set(at, kir.Prim("add", (kir.Read(at), kir.Read(kir.Loc(w)))), self.line),
            ]

        rest = kir.Prim("sub", (kir.Const(1.0), kir.Read(kir.Loc(p))))
        first = [
            *self.law_clear(twin),
            kir.HardSet(lo, value, True, self.line),
            kir.HardSet(hi, f"{value} + 1", True, self.line),
            self.law_flag(f"h_{lo}", f"h_{hi}"),
            kir.Set(at, rest, self.line),
        ]
        return first, plus(weight), plus(p)

    def accumulator(self, name, acc, p, weight, line):
        """The statements that accumulate carried ``name`` in ``acc`` over a relaxed
        ``while``: at the start ``acc = (1 - p) * name``, after each iteration ``acc += w * name``,
        at the end ``acc += p * name`` (the mass still running), then ``name = acc``."""

        def read(n, idx=()):
            return kir.Read(kir.Loc(n, idx))

        def each(value, target=acc):
            def make(idx):
                return [kir.Set(kir.Loc(target, idx), value(idx), line)]

            return self.elementwise(name, make) if self.ranks[name] else make(())

        def plus(w):
            return lambda idx: kir.Prim(
                "add", (read(acc, idx), kir.Prim("mul", (read(w), read(name, idx))))
            )

        rest = kir.Prim("sub", (kir.Const(1.0), read(p)))
        return (
            each(lambda idx: kir.Prim("mul", (rest, read(name, idx)))),
            each(plus(weight)),
            each(plus(p)),
            each(lambda idx: read(acc, idx), target=name),
        )

    def own_limit(self, e, name):
        if e is None:
            return name
        if isinstance(e, ir.Const):
            return repr(e.value)
        self.refuse(f"a `while` with its own `{name}` that is not a number")

    # ------------------------------------------------------------------------------ expressions

    def location(self, e, partial=False):
        """The relaxed location of a name or an element read or written at hard positions;
        with ``partial``, also of a row (fewer positions than the array has)."""
        index = []
        while isinstance(e, ir.Index):
            part = e.index
            parts = part.elts if isinstance(part, ir.Tuple_) else (part,)
            if any(isinstance(x, ir.Slice) or x.kind != HARD for x in parts):
                self.refuse("an element at a relaxed position, or a slice")
            index[:0] = [self.hard_src(x) for x in parts]
            e = e.value
        if not isinstance(e, ir.Name) or e.id not in self.ranks:
            self.refuse(f"an element of `{e}`, which is not a relaxed array of the program")
        if self.clamped:
            index = [
                f"min(max({i}, -v_{e.id}.shape[{k}]), v_{e.id}.shape[{k}] - 1)"
                for k, i in enumerate(index)
            ]
        if len(index) != self.ranks[e.id] and not (partial and len(index) < self.ranks[e.id]):
            self.refuse(
                f"`{e.id}` read or written with {len(index)} of its {self.ranks[e.id]} positions"
            )
        return kir.Loc(e.id, tuple(index))

    def value(self, e):
        """The kernel expression of a value of one example."""
        if e.kind == HARD:
            return kir.Hard(self.hard_src(e))
        if isinstance(e, ir.Const):
            return kir.Const(float(e.value))
        if isinstance(e, ir.Lift):
            if e.value.kind == HARD:
                return kir.Hard(self.hard_src(e.value))
            base = e.value
            while isinstance(base, ir.Index):
                base = base.value
            if isinstance(base, ir.Name) and base.id in self.ranks:  # an array the body made
                return self.value(e.value)
            self.refuse("a shared tensor read by every example")
        if isinstance(e, ir.Index) and _at_law(e):
            return self.law_read(e)
        if isinstance(e, ir.Name) and e.kind == RELAXED_INT:
            self.refuse(f"the relaxed integer `{e.id}` used as a value")
        if isinstance(e, (ir.Name, ir.Index)):
            return kir.Read(self.location(e))
        if isinstance(e, ir.Expect):
            return self.law_sum(e.value, lambda v: kir.Hard(f"float({v})"))
        if isinstance(e, ir.Compare) and RELAXED_INT in (e.left.kind, e.right.kind):
            return self.law_sum(e, lambda v: kir.Hard(f"(1.0 if {v} else 0.0)"))
        if isinstance(e, ir.BinOp):
            if e.op.name not in _BINARY:
                self.refuse(f"`{e.op}` on relaxed values")
            if e.op.name == "pow":
                if e.right.kind != HARD:
                    self.refuse("`**` with a relaxed exponent")
                return kir.Prim("pow", (self.value(e.left),), (self.hard_src(e.right),))
            return kir.Prim(e.op.name, (self.value(e.left), self.value(e.right)))
        if isinstance(e, ir.UnaryOp):
            if e.op.name not in ("neg", "pos"):
                self.refuse(f"`{e.op}` on a relaxed value")
            return kir.Prim(e.op.name, (self.value(e.operand),))
        if isinstance(e, ir.Compare):
            return self.compare(e)
        if isinstance(e, ir.BoolOp):
            values = [self.value(v) for v in e.values]
            out = values[0]
            for v in values[1:]:
                out = kir.Prim(e.op.name, (out, v))
            return out
        if isinstance(e, ir.Not):
            return kir.Prim("not", (self.value(e.operand),))
        if isinstance(e, ir.Truth):
            slot = len(self.flags)
            self.flags.append(("truth", self.line))
            return kir.Prim("truth", (self.value(e.operand),), (str(slot),))
        if isinstance(e, ir.IfExp):
            if e.test.kind == HARD:
                # both arms are computed, so the one not taken may index out of the array
                # (`x[i] < 0 if i < len(x) else 0.0`): its reads are kept inside it
                self.clamped += 1
                try:
                    args = (self.value(e.body), self.value(e.orelse))
                finally:
                    self.clamped -= 1
                return kir.Prim("select", args, (self.hard_src(e.test),))
            arms = (e.body, e.orelse)
            guarded = any(isinstance(n, ir.Guarded) for a in arms for n in ir.walk(a))
            how = "blend_inf" if e.infinite else ("blend_finite" if guarded else "blend")
            return kir.Prim(how, (self.value(e.test), self.value(e.body), self.value(e.orelse)))
        if isinstance(e, ir.MinMax):
            return self.extreme(e)
        if isinstance(e, ir.Call):
            return self.call(e)
        if isinstance(e, ir.Guarded):
            return self.guarded(e)
        self.refuse(f"`{e}`")

    def guarded(self, e):
        """A risky op inside a relaxed branch (SEMANTICS 12): its value, with no adjoint where
        its value or slope is not finite."""
        if e.op is not None:
            inner = self.value(ir.BinOp(e.op, e.args[0], e.args[1], RELAXED))
        else:
            func = e.func
            name = func.attr if isinstance(func, ir.Attr) else getattr(func, "id", None)
            if name not in _FUNCTIONS or len(e.args) != 1:
                self.refuse(f"the guarded operation `{e}`")
            inner = kir.Prim(name, (self.value(e.args[0]),))
        if not isinstance(inner, kir.Prim) or inner.name not in GUARDED:
            self.refuse(f"the guarded operation `{e}`")
        return kir.Prim(f"guarded_{inner.name}", inner.args, inner.params)

    def beta(self, e):
        if e is None:
            return "beta"
        if isinstance(e, ir.Const):
            return repr(float(e.value))
        self.refuse("a comparison with a `beta` of its own that is not a number")

    def compare(self, e):
        if e.op.name not in _COMPARE:
            self.refuse(f"`{e.op}` on relaxed values")
        op, kind, sign = _COMPARE[e.op.name]
        if e.dist is None:
            dist = "DIST"
        elif isinstance(e.dist, ir.Const) and e.dist.value in _DISTS:
            dist = str(_DISTS.index(e.dist.value))
        else:
            self.refuse("a comparison with a `dist` of its own that is not a name")
        same = "False" if e.same is None else self.hard_src(e.same)
        params = (str(op), str(kind), str(sign), dist, self.beta(e.beta), same)
        return kir.Prim("compare", (self.value(e.left), self.value(e.right)), params)

    def extreme(self, e):
        if e.op.name not in ("min", "max"):
            self.refuse(f"`{e.op.name}` of relaxed values")
        args = [self.value(a) for a in e.args]
        if any(
            isinstance(a, kir.Read) and self.ranks[a.loc.name] and not a.loc.index for a in args
        ):
            self.refuse(f"`{e.op.name}` of a whole array")
        sign = "1" if e.op.name == "max" else "-1"
        how = "extreme_inf" if e.infinite else "extreme"
        return kir.Prim(how, tuple(args), (sign, self.beta(e.beta)))

    def call(self, e):
        name = e.op.name if e.op is not None else None
        if name == "sigmoid" or (
            name in _FUNCTIONS and e.callee in (Callee.TORCH, Callee.BUILTIN, Callee.METHOD)
        ):
            args = e.args if e.callee is not Callee.METHOD else (e.func.value,) + tuple(e.args)
            if len(args) == 1 and not e.kwargs:
                return kir.Prim(name, (self.value(args[0]),))
        self.refuse(f"the call `{e}`")

    # ------------------------------------------------------------------------------ hard values

    def hard_src(self, e):
        """Python source of a hard value, as the kernel computes it."""
        if isinstance(e, ir.Name):
            if e.id in self.as_hard:
                return self.as_hard[e.id]
            if e.id in self.ranks:
                self.refuse(f"`{e.id}` read as a hard value")
            if e.id == "math":
                return "math"
            if e.id in self.fn.free and e.id not in self.numbers:
                self.refuse(f"the free name `{e.id}`, which does not hold a number")
            if e.id not in self.hard:
                self.hard[e.id] = self.numbers.get(e.id, e.id in self.ints)
            return f"h_{e.id}"
        if isinstance(e, ir.Const):
            if isinstance(e.value, (bool, int, float)) or e.value is None:
                return repr(e.value)
            self.refuse(f"the constant {e.value!r}")
        if isinstance(e, ir.Tuple_) and not e.is_list:
            return "(" + "".join(f"{self.hard_src(x)}, " for x in e.elts) + ")"
        if isinstance(e, ir.BinOp):
            return f"({self.hard_src(e.left)} {e.op.symbol} {self.hard_src(e.right)})"
        if isinstance(e, ir.UnaryOp):
            return f"({e.op.symbol}{self.hard_src(e.operand)})"
        if isinstance(e, ir.Not):
            return f"(not {self.hard_src(e.operand)})"
        if isinstance(e, ir.Compare):
            return f"({self.hard_src(e.left)} {e.op.symbol} {self.hard_src(e.right)})"
        if isinstance(e, ir.BoolOp):
            return "(" + f" {e.op.symbol} ".join(self.hard_src(v) for v in e.values) + ")"
        if isinstance(e, ir.IfExp):
            parts = (self.hard_src(e.body), self.hard_src(e.test), self.hard_src(e.orelse))
            return "({} if {} else {})".format(*parts)
        if isinstance(e, ir.Index) and isinstance(e.value, ir.Shape):
            return f"v_{self.array_name(e.value.value)}.shape[{self.hard_src(e.index)}]"
        if isinstance(e, ir.Index) and self.free_tuple(e.value) is not None:
            return f"{self.hard_src(e.value)}[{self.hard_src(e.index)}]"
        if isinstance(e, ir.Attr) and isinstance(e.value, ir.Name) and e.value.id == "math":
            return f"math.{e.attr}"
        if isinstance(e, ir.Call) and e.callee is Callee.BUILTIN:
            name = e.op.name
            if name == "len" and len(e.args) == 1 and self.free_tuple(e.args[0]) is not None:
                return f"len({self.hard_src(e.args[0])})"
            if name == "len" and len(e.args) == 1:
                return f"v_{self.array_name(e.args[0])}.shape[0]"
            if name in ("int", "float", "abs", "min", "max", "bool") and not e.kwargs:
                return f"{name}({', '.join(self.hard_src(a) for a in e.args)})"
        if isinstance(e, ir.Call) and e.callee is Callee.MATH and not e.kwargs:
            return f"math.{e.func.attr}({', '.join(self.hard_src(a) for a in e.args)})"
        self.refuse(f"the hard value `{e}`")

    def free_tuple(self, e):
        """Whether hard value ``e`` is (an element of) a free tuple of integers (True) or floats
        (False); None when it is not one."""
        while isinstance(e, ir.Index):
            e = e.value
        if isinstance(e, ir.Name) and e.id in self.numbers:
            return self.numbers[e.id]
        return None

    def array_name(self, e):
        if isinstance(e, ir.Name) and self.ranks.get(e.id, 0) > 0:
            return e.id
        self.refuse(f"the length of `{e}`, which is not a relaxed array of the program")


def _symbolic(stmts):
    """The value each location has after straight-line ``Set`` statements, as an expression of
    the values before them; None where they are not all ``Set`` or an element is read after
    another element of its array was written (the two might be one)."""
    values = {}

    def substitute(e):
        if isinstance(e, kir.Read):
            if e.loc in values:
                return values[e.loc]
            if any(not kir.distinct(w, e.loc) for w in values if w.name == e.loc.name):
                raise _Aliased
            return e
        if isinstance(e, kir.Prim):
            return kir.Prim(e.name, tuple(substitute(a) for a in e.args), e.params)
        return e

    try:
        for st in stmts:
            if not isinstance(st, kir.Set):
                return None
            value = substitute(st.expr)
            if any(
                w != st.loc and not kir.distinct(w, st.loc) for w in values if w.name == st.loc.name
            ):
                raise _Aliased
            values[st.loc] = value
    except _Aliased:
        return None
    return values


class _Aliased(Exception):
    pass


# Keywords of a constructor the kernel ignores: its arrays have the batch's dtype and device.
_MADE_LIKE_THE_BATCH = {"dtype", "device"}


def _whole_slice(e):
    """Whether ``e`` is ``x[:]``."""
    return (
        isinstance(e, ir.Index)
        and isinstance(e.index, ir.Slice)
        and e.index.lower is None
        and e.index.upper is None
        and e.index.step is None
    )


def _operands(e):
    """The operands of an arithmetic expression or a call."""
    if isinstance(e, ir.BinOp):
        return (e.left, e.right)
    if isinstance(e, ir.UnaryOp):
        return (e.operand,)
    if isinstance(e, ir.Lift):
        return (e.value,)
    return tuple(e.args)


def _rebuilt(e, f):
    """``e`` with ``f`` applied to its operands (arithmetic and calls; others as they are)."""
    if isinstance(e, ir.BinOp):
        return replace(e, left=f(e.left), right=f(e.right))
    if isinstance(e, ir.UnaryOp):
        return replace(e, operand=f(e.operand))
    if isinstance(e, ir.Call):
        return replace(e, args=tuple(f(a) for a in e.args))
    if isinstance(e, ir.Lift):
        return replace(e, value=f(e.value))
    return e


def _unlifted(e):
    """``e`` without a lift: in a kernel every value is one example's."""
    return e.value if isinstance(e, ir.Lift) else e


def _at_law(e):
    """Whether an element is read or written at a relaxed integer's position."""
    return isinstance(e, ir.Index) and any(
        isinstance(n, ir.Name) and n.kind == RELAXED_INT for n in ir.walk(e.index)
    )

"""Kinds: whether each name and expression is hard, constant, a relaxed integer or relaxed
(SEMANTICS 2, 10), inferred on the IR, and the check that a name that must be hard is not assigned
under a relaxed condition.

A local starts hard and only rises: to the kind of what is assigned to it, to relaxed when it is
assigned under a relaxed ``if``, or under a relaxed ``while`` unless it must stay hard (it is used
as an index or loop bound, or to compute one; SEMANTICS 2 lets such a name change inside a relaxed
``while``, where it is the same for every example still running). An integer variable assigned
under a relaxed ``if`` whose value reaches a use that needs its distribution (an index, a
comparison, ``//``, ``%``, ``avcompile.probs``) is a relaxed integer; elsewhere its expectation
is all a program can observe, and it is an ordinary relaxed value. Names the front end declared
(``Function.declared``: the DSL's ``Var``/``VarInt``) keep their kind. The pass repeats until
nothing rises, then writes every kind into the IR and marks ``if``/``while`` relaxed where their
condition is.
"""

from dataclasses import replace

from .. import ir, registry
from ..errors import HardInRelaxedBranch, Position
from ..ir import CONSTANT, HARD, RELAXED, RELAXED_INT, Callee, Kind


def infer_kinds(fn):
    """``fn`` with the kind of every name and expression inferred."""
    return _Inference(fn).run()


def _join(kinds):
    return Kind(max(kinds, default=HARD))


def is_range(e):
    """Whether ``e`` is a call of the builtin ``range``."""
    return isinstance(e, ir.Call) and e.callee is Callee.BUILTIN and e.op.name == "range"


def _value_names(e):
    """Names whose values ``e``'s value depends on, skipping ``len(x)`` and ``x.shape``."""
    if isinstance(e, ir.Name):
        return {e.id}
    if describes_example(e):
        return set()
    return {n for child in ir.children(e) for n in _value_names(child)}


def describes_example(e):
    """Whether ``e`` is the shape of a value rather than a function of its elements: ``len(x)``,
    ``x.shape``, ``x.ndim``, ``x.size(0)``, ``x.numel()``, hard for every kind of ``x``."""
    if isinstance(e, ir.Shape):
        return True
    if isinstance(e, ir.Attr):
        return e.attr in registry.SHAPE_ATTRS
    if isinstance(e, ir.Call) and e.callee in (Callee.BUILTIN, Callee.METHOD, Callee.TORCH):
        return (
            e.op is not None
            and e.op.batching == registry.HARD_ONLY
            and (e.op.name == "len" or e.op.on_tensors is not None)
        )
    return False


def required_hard(body):
    """Names that must be hard: indices, loop bounds and counters, and what they come from."""
    required = set()
    for s in body:
        for node in ir.walk(s):
            if isinstance(node, ir.Index):
                required |= _value_names(node.index)
            elif is_range(node):
                for arg in node.args:
                    required |= _value_names(arg)
            if isinstance(node, ir.For) and is_range(node.iter):
                required |= ir.assigned(node.target)
    return _sources(body, required)


def law_uses(body, ints):
    """Names whose value reaches a use that needs a relaxed integer's distribution rather than its
    expectation: an index, a loop bound, a comparison, ``//``, ``%`` or ``avcompile.probs``, and
    the integers (``ints``) they are computed from by integer arithmetic."""
    seeds = set()
    for s in body:
        for node in ir.walk(s):
            if isinstance(node, (ir.Compare, ir.BinOp)) and node.op.needs_law:
                seeds |= _value_names(node.left) | _value_names(node.right)
            elif isinstance(node, ir.Probs):
                seeds |= _value_names(node.value)
    return _sources(body, seeds | required_hard(body), ints)


def _sources(body, names, ints=None):
    """``names`` and every name that the values of those names are computed from (only through
    integer arithmetic, if ``ints`` names the integers)."""
    names = set(names)
    assigns = [n for s in body for n in ir.walk(s) if isinstance(n, ir.Assign)]
    changed = True
    while changed:
        changed = False
        for a in assigns:
            for target in a.targets:
                if isinstance(target, ir.Name) and target.id in names:
                    if ints is not None and not int_valued(a.value, ints):
                        continue
                    new = _value_names(a.value) - names
                    if new:
                        names |= new
                        changed = True
    return names


def int_valued(e, ints):
    """Whether ``e`` is an integer on every example, given the names ``ints`` known to hold one."""
    if isinstance(e, ir.Const):
        return isinstance(e.value, int)
    if isinstance(e, ir.Name):
        return e.id in ints or e.kind == RELAXED_INT
    if isinstance(e, ir.BinOp):
        return e.op.integral and int_valued(e.left, ints) and int_valued(e.right, ints)
    if isinstance(e, ir.UnaryOp):
        return e.op.integral and int_valued(e.operand, ints)
    if isinstance(e, ir.IfExp):
        return int_valued(e.body, ints) and int_valued(e.orelse, ints)
    if isinstance(e, ir.Call) and e.callee is Callee.BUILTIN:
        return e.op.integral
    if isinstance(e, ir.Attr):
        return e.attr == "ndim"
    if isinstance(e, ir.Call) and describes_example(e):  # `x.numel()`, `x.size(0)`, not `x.size()`
        return e.op.name != "size" or len(e.args) + len(e.kwargs) == 1
    if isinstance(e, ir.Index):  # `x.shape[0]`
        return isinstance(e.value, ir.Shape) or (
            isinstance(e.value, ir.Attr) and e.value.attr == "shape"
        )
    return False


def integer_names(fn):
    """The locals that hold an integer wherever they are assigned (loop counters over ``range``,
    lengths, integer literals and arithmetic on them)."""
    ints = set(ir.written(fn.body)) - {p.id for p in fn.params}
    nodes = [n for s in fn.body for n in ir.walk(s) if isinstance(n, (ir.Assign, ir.For))]
    changed = True
    while changed:
        changed = False
        for node in nodes:
            if isinstance(node, ir.For):
                pairs = [(node.target, None if not is_range(node.iter) else ir.Const(0))]
            else:
                pairs = [(t, node.value) for t in node.targets]
            for target, value in pairs:
                for name, v in _unpack_pairs(target, value):
                    if name in ints and (v is None or not int_valued(v, ints)):
                        ints.discard(name)
                        changed = True
    return ints


def _unpack_pairs(target, value):
    """(name, value or None) for each name an assignment gives a value to."""
    if isinstance(target, ir.Name):
        return [(target.id, value)]
    if isinstance(target, ir.Tuple_):
        if isinstance(value, ir.Tuple_) and len(value.elts) == len(target.elts):
            return [p for t, v in zip(target.elts, value.elts) for p in _unpack_pairs(t, v)]
        if isinstance(value, ir.Shape):  # `h, w = x.shape`: dimensions
            return [
                p
                for k, t in enumerate(target.elts)
                for p in _unpack_pairs(t, ir.Index(value, ir.Const(k), HARD))
            ]
        return [(n, None) for n in ir.assigned(target)]
    return []  # an element write: the array is no integer


class _Inference:
    def __init__(self, fn):
        self.fn = fn
        self.declared = set(fn.declared)
        self.env = {p.id: p.kind for p in fn.params}
        for name in ir.written(fn.body):
            self.env.setdefault(name, HARD)
        for s in fn.body:  # a declared name keeps the kind its Name nodes carry
            for n in ir.walk(s):
                if isinstance(n, ir.Name) and n.id in self.declared:
                    self.env[n.id] = n.kind
        self.required = required_hard(fn.body)
        self.ints = integer_names(fn)
        self.law = law_uses(fn.body, self.ints) | self.required
        # names that stay hard in a relaxed `while` (the same in every example still running) and
        # differ per example after it: positions, and integers whose distribution is wanted
        self.stay_hard = self.required | (self.law & self.ints)
        self.branch_writes = {}  # name -> (line of its first write under a relaxed `if`, the if's)
        self.loop_writes = {}  # name -> line of the relaxed `while` that made it relaxed
        self.changed = False

    def run(self):
        for _ in range(len(self.env) + 2):
            self.changed = False
            self.block(self.fn.body, None, None)
            if not self.changed:
                break
        self.check_required()
        params = tuple(replace(p, kind=self.env[p.id]) for p in self.fn.params)
        body = tuple(self.annotate_stmt(s) for s in self.fn.body)
        made = tuple(sorted((n, line) for n, line in self.loop_writes.items() if n in self.env))
        return replace(self.fn, params=params, body=body, relaxed_by_loops=made)

    # ------------------------------------------------------------------------------ kinds

    def kind(self, e):
        """The kind of expression ``e`` under the kinds found so far."""
        if isinstance(e, ir.Name):
            return self.env.get(e.id, e.kind)
        if isinstance(e, (ir.Const, ir.FString, ir.Formatted, ir.Helper, ir.Rx, ir.Shape)):
            return HARD
        if isinstance(e, (ir.Lift, ir.Truth, ir.Guarded, ir.Expect, ir.Probs)):
            return RELAXED
        if describes_example(e):
            return HARD
        if isinstance(e, ir.Call):
            kind = self.call_kind(e)
        else:
            kind = _join(self.kind(c) for c in ir.children(e))
        if kind == RELAXED_INT and not self.keeps_int(e):
            return RELAXED  # a relaxed integer used as a number: its expectation
        return kind

    def keeps_int(self, e):
        """Whether ``e``, which takes a relaxed integer, is one itself (SEMANTICS 10)."""
        if isinstance(e, (ir.Name, ir.Tuple_)):
            return True
        if isinstance(e, (ir.BinOp, ir.UnaryOp, ir.IfExp, ir.Call)):
            return int_valued(e, self.ints | self.relaxed_ints())
        return False

    def relaxed_ints(self):
        return {n for n, k in self.env.items() if k == RELAXED_INT}

    def call_kind(self, e):
        args = [self.kind(a) for a in e.args] + [self.kind(v) for _, v in e.kwargs]
        if e.callee in (Callee.DECLARED, Callee.COMPILED):  # given by its front end / caller
            return e.kind
        if e.callee is Callee.BUILTIN:
            if RELAXED_INT in args and e.op.batching == registry.HARD_ONLY:
                return RELAXED_INT if e.op.integral else RELAXED  # int(k); float(k)
            return e.op.kind(args)
        if e.callee is Callee.TORCH:
            return max(_join(args), CONSTANT)  # a torch function returns a tensor
        if e.callee is Callee.MATH:
            return _join(args)
        if e.callee is Callee.METHOD:
            return _join(args + [self.kind(e.func.value)])
        return _join(args)

    def target_kind(self, target):
        if isinstance(target, ir.Tuple_):
            return HARD
        return self.kind(ir.root(target))

    # ------------------------------------------------------------------------------ walk

    def set(self, name, kind, line, rif, rwhile):
        """Raise the kind of ``name``, assigned at ``line``; ``rif`` and ``rwhile`` are the lines of
        the innermost relaxed ``if`` and ``while`` around it (or None)."""
        if name in self.declared:
            if rif is not None and not self.env[name].per_example:
                self.hard_in_branch(name, line, rif)
            return
        if rif is not None:
            self.branch_writes.setdefault(name, (line, rif))
            integer = name in self.ints and kind <= RELAXED_INT
            kind = RELAXED_INT if name in self.law and integer else RELAXED
        elif rwhile is not None and name not in self.stay_hard:
            if kind != RELAXED:
                self.loop_writes.setdefault(name, rwhile)
            kind = RELAXED
        if kind == RELAXED_INT and name not in self.law:
            kind = RELAXED  # only its expectation is ever read
        if kind > self.env.get(name, HARD):
            self.env[name] = kind
            self.changed = True

    def assign(self, target, value, kind, line, rif, rwhile):
        if isinstance(target, ir.Tuple_):
            values = value.elts if isinstance(value, ir.Tuple_) else None
            for k, elt in enumerate(target.elts):
                if values is not None and len(values) == len(target.elts):
                    self.assign(elt, values[k], self.kind(values[k]), line, rif, rwhile)
                else:
                    self.assign(elt, None, kind, line, rif, rwhile)
            return
        root = ir.root(target)
        if isinstance(target, ir.Index) and self.at_relaxed_position(target):
            kind = RELAXED  # written at every position, weighted: a per-example array
        if isinstance(root, ir.Name):
            self.set(root.id, kind, line, rif, rwhile)

    def at_relaxed_position(self, target):
        """Whether an element write's index (at any depth) holds a relaxed integer."""
        while isinstance(target, ir.Index):
            if any(self.kind(n) == RELAXED_INT for n in ir.walk(target.index)):
                return True
            target = target.value
        return False

    def block(self, stmts, rif, rwhile):
        for s in stmts:
            self.stmt(s, rif, rwhile)

    def stmt(self, s, rif, rwhile):
        if isinstance(s, ir.Assign):
            kind = self.kind(s.value)
            for target in s.targets:
                self.assign(target, s.value, kind, s.line, rif, rwhile)
        elif isinstance(s, ir.If):
            inner = s.line if self.kind(s.test) == RELAXED else rif
            self.block(s.body, inner, rwhile)
            self.block(s.orelse, inner, rwhile)
        elif isinstance(s, ir.While):
            relaxed = self.kind(s.test) == RELAXED or self.left_to_an_extent(s)
            self.block(s.body, rif, s.line if relaxed else rwhile)
        elif isinstance(s, ir.For):
            self.for_target(s.target, s.iter, s.line)
            self.block(s.body, rif, s.line if self.left_to_an_extent(s) else rwhile)

    def left_to_an_extent(self, loop):
        """Whether examples leave ``loop`` at different iterations: a ``break``/``continue`` of it
        or a ``return`` under a relaxed ``if`` in its body (SEMANTICS 11). Then, as in a relaxed
        ``while``, its hard variables are the same for the examples still running only."""

        def visit(stmts, under, own):
            for s in stmts:
                if isinstance(s, ir.Return) and under:
                    return True
                if isinstance(s, ir.Jump) and s.what is not ir.JumpKind.PASS and under and own:
                    return True
                if isinstance(s, ir.If):
                    inner = under or self.kind(s.test) == RELAXED
                    if visit(s.body, inner, own) or visit(s.orelse, inner, own):
                        return True
                elif isinstance(s, (ir.While, ir.For)) and visit(s.body, under, False):
                    return True
            return False

        return loop.exits or visit(loop.body, False, True)

    def for_target(self, target, it, line):
        """Loop targets take the kind of what they iterate over; never forced by a branch."""
        if is_range(it):
            for name in ir.assigned(target):
                self.set(name, HARD, line, None, None)
            return
        builtin = it.op.name if isinstance(it, ir.Call) and it.callee is Callee.BUILTIN else None
        pair = isinstance(target, ir.Tuple_) and len(target.elts) == 2
        if builtin == "enumerate" and pair and it.args:
            for name in ir.assigned(target.elts[0]):
                self.set(name, HARD, line, None, None)
            self.for_target(target.elts[1], it.args[0], line)
            return
        if builtin == "zip" and isinstance(target, ir.Tuple_) and len(target.elts) == len(it.args):
            for elt, arg in zip(target.elts, it.args):
                self.for_target(elt, arg, line)
            return
        if builtin == "reversed" and it.args:
            self.for_target(target, it.args[0], line)
            return
        for name in ir.assigned(target):
            self.set(name, self.kind(it), line, None, None)

    def check_required(self):
        for name in sorted(self.required):
            write = self.branch_writes.get(name)
            if write is not None and self.env.get(name) == RELAXED:
                self.hard_in_branch(name, *write)

    def hard_in_branch(self, name, line, branch_line):
        raise HardInRelaxedBranch(
            f"hard variable `{name}` is assigned inside a relaxed `if`: `{name}` is used as "
            f"an index or loop bound, but not every value assigned to it is an integer that "
            f"avcompile can see (an int literal, a loop counter, a length, `int(...)`, or "
            f"arithmetic on them), so it cannot be held as a relaxed integer. Assign `{name}` "
            f"integers only, assign it outside the relaxed `if`, or keep a separate relaxed "
            f"variable for the per-example value.",
            self.fn.source,
            Position.of_line(self.fn.source, line),
            name,
            branch_line,
        )

    # ------------------------------------------------------------------------------ annotate

    def annotate(self, e):
        """``e`` with the kind of every node inside it written in."""
        if e is None:
            return None
        e = ir.map_children(e, self.annotate)
        if isinstance(e, ir.Slice):
            return e
        kind = self.kind(e)
        return e if kind == e.kind else replace(e, kind=kind)

    def annotate_target(self, target):
        if isinstance(target, ir.Name):
            return self.annotate(target)
        if isinstance(target, ir.Tuple_):
            elts = tuple(self.annotate_target(t) for t in target.elts)
            return replace(target, elts=elts, kind=HARD)
        base = self.annotate_target(target.value)
        return ir.Index(base, self.annotate(target.index), self.target_kind(target))

    def annotate_stmt(self, s):
        if isinstance(s, ir.Assign):
            targets = tuple(self.annotate_target(t) for t in s.targets)
            return replace(s, targets=targets, value=self.annotate(s.value))
        if isinstance(s, ir.For):
            body = tuple(self.annotate_stmt(b) for b in s.body)
            target = self.annotate_target(s.target)
            return replace(s, target=target, iter=self.annotate(s.iter), body=body)
        if isinstance(s, (ir.If, ir.While)):
            test = self.annotate(s.test)
            changes = {"test": test, "body": tuple(self.annotate_stmt(b) for b in s.body)}
            if isinstance(s, ir.If):
                changes["orelse"] = tuple(self.annotate_stmt(b) for b in s.orelse)
            return replace(s, relaxed=test.kind == RELAXED, **changes)
        return ir.map_children(s, self.annotate)

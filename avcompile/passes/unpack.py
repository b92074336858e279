"""Unpacking: relaxed arrays used only element by element are kept as Python lists of elements.

An array that the program only reads and writes at hard positions (``x[i]``, ``x[i] = v``),
measures (``len(x)``), iterates over or returns can live in generated code as a list of its
elements: a swap then costs no tensor op, and a relaxed branch blends only the elements it wrote.
Any other use of the whole array (arithmetic, a call, a slice) keeps it one tensor, except as an
argument of a runtime helper that stacks a list it receives (``ir.Helper.packs``: the DSL's call of
a lambda) outside any loop: that runs once, so it costs one stack.
"""

from dataclasses import replace

from .. import ir
from ..ir import RELAXED, RELAXED_INT, Callee


def unpack(fn):
    """``fn`` with every array that can be kept unpacked marked so on all its names."""
    names = _unpackable(fn)
    if not names:
        return fn

    def mark(node):
        node = ir.map_children(node, mark)
        if isinstance(node, ir.Name) and node.id in names and not node.unpacked:
            return replace(node, unpacked=True)
        return node

    params = tuple(mark(p) for p in fn.params)
    return replace(fn, params=params, body=tuple(mark(s) for s in fn.body))


def _unpackable(fn):
    """Relaxed names used only element by element, that are indexed at least once."""
    indexed, whole = set(), set()
    depth = [0]  # how many loops enclose the statement being read

    def expr(e, whole_ok=False):
        """Record the uses in ``e``; ``whole_ok``: ``e`` may be a whole array (returned,
        iterated over)."""
        if e is None:
            return
        packs = isinstance(e, ir.Call) and isinstance(e.func, ir.Helper) and e.func.packs
        if packs and not depth[0]:
            for child in ir.children(e):
                expr(child, whole_ok=True)
            return
        if isinstance(e, ir.Name):
            if not whole_ok:
                whole.add(e.id)
            return
        if isinstance(e, ir.Tuple_) and whole_ok:  # arrays packed together, as they are
            for elt in e.elts:
                expr(elt, whole_ok=True)
            return
        if (
            isinstance(e, ir.Index)
            and isinstance(e.value, ir.Name)
            and not isinstance(e.index, (ir.Slice, ir.Tuple_))
            and e.index.kind != RELAXED_INT  # read and written at once at every position
        ):
            indexed.add(e.value.id)
            expr(e.index)
            return
        if _is_len_of_name(e):
            return
        for child in ir.children(e):
            expr(child)

    def target(t):
        if isinstance(t, ir.Tuple_):
            for elt in t.elts:
                target(elt)
        elif isinstance(t, ir.Index):
            expr(t)  # an element write uses the array as an element read does

    def block(stmts):
        for s in stmts:
            if isinstance(s, ir.Assign):
                for t in s.targets:
                    target(t)
                expr(s.value)
            elif isinstance(s, ir.For):
                whole.update(ir.assigned(s.target))  # rebound whole at each iteration
                expr(s.iter, whole_ok=True)
                depth[0] += 1
                block(s.body)
                depth[0] -= 1
            elif isinstance(s, ir.Return):
                expr(s.value, whole_ok=True)
            elif isinstance(s, ir.If):
                expr(s.test)
                block(s.body)
                block(s.orelse)
            elif isinstance(s, ir.While):
                depth[0] += 1
                expr(s.test)
                block(s.body)
                depth[0] -= 1
            else:
                for child in ir.children(s):
                    expr(child)

    block(fn.body)
    relaxed = {p.id for p in fn.params if p.kind == RELAXED}
    relaxed |= {
        n.id for s in fn.body for n in ir.walk(s) if isinstance(n, ir.Name) and n.kind == RELAXED
    }
    return (relaxed & indexed) - whole


def _is_len_of_name(e):
    return (
        isinstance(e, ir.Call)
        and e.callee is Callee.BUILTIN
        and e.op.name == "len"
        and len(e.args) == 1
        and isinstance(e.args[0], ir.Name)
    )

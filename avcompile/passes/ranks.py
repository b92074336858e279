"""How many dimensions of one example the function reads of each relaxed parameter.

``array[i]`` and ``len(array)`` read one dimension of an example, ``d[i, j]`` and ``d[i][j]`` two,
``x.shape[2]`` three. A call whose tensor has fewer dimensions than the batch dimension and these
was given one example without its batch dimension (or the wrong array): the module says so at the
call instead of reading across the batch.
"""

from .. import ir
from ..ir import RELAXED, Callee


def example_ranks(fn):
    """``{parameter: dimensions of one example it reads}`` for the relaxed parameters that are
    read by position or length at all."""
    relaxed = {p.id for p in fn.params if p.kind == RELAXED}
    ranks = {}

    def note(name, rank):
        if name in relaxed and rank > ranks.get(name, 0):
            ranks[name] = rank

    for s in fn.body:
        for node in ir.walk(s):
            if isinstance(node, ir.Index):
                depth, base = 0, node
                while isinstance(base, ir.Index):
                    index = base.index
                    depth += len(index.elts) if isinstance(index, ir.Tuple_) else 1
                    base = base.value
                if isinstance(base, ir.Name):
                    note(base.id, depth)
                if isinstance(base, ir.Shape) and isinstance(base.value, ir.Name):
                    if isinstance(node.index, ir.Const) and isinstance(node.index.value, int):
                        note(base.value.id, node.index.value + 1)
            elif isinstance(node, ir.Call) and node.callee is Callee.BUILTIN:
                if node.op.name == "len" and node.args and isinstance(node.args[0], ir.Name):
                    note(node.args[0].id, 1)
            elif isinstance(node, ir.For) and isinstance(node.iter, ir.Name):
                note(node.iter.id, 1)
    return ranks

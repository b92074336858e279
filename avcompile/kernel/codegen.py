"""Code generation: a kernel (``kir.Kernel``) as the Python source of two numba functions.

``forward`` runs the program on a chunk of examples, each statement a loop over the examples
(the batch innermost, so the compiler can vectorise across them). ``backward`` runs it again,
pushing on a tape each value a statement overwrites, then runs the adjoint: the statements in
reverse, each taking its old value back from the tape, recomputing its expression and adding
the adjoint of every value it read (Tangent's scheme, one rule per statement and per primitive,
``prims.py``). Hard values the adjoint needs (loop bounds, branches taken, trip counts, the hard
variables' old values) go on a second tape. Relaxed storage is named ``v_<name>``, its adjoint
``g_<name>``, hard values ``h_<name>``; nothing else the kernel names starts with those.
"""

from . import kir
from .prims import PRIMS

_HEADER = """\
import math

import numba
import numpy as np

from avcompile.kernel import kruntime as kr

MODE = {mode}
DIST = {dist}
"""


def generate(kernel, mode, dist, source=None):
    """The module source of ``kernel``'s ``forward``, ``taped`` and ``backward`` in relaxation
    ``mode`` and family ``dist`` (codes of ``kruntime``); ``source`` (a ``parse.Source``) puts
    the user's line above the code it became."""
    forward = _Function(kernel, tape=False, source=source).source()
    backward = _Function(kernel, tape=True, source=source).source()
    return _HEADER.format(mode=mode, dist=dist) + "\n\n" + forward + "\n\n" + backward


def _indent(lines, n=1):
    return ["    " * n + line if line else line for line in lines]


class _Function:
    """The source of one function of a kernel, the chunk's examples in loops; the layout hooks
    (``each_example``, ``tape_room``, ``hard_room``, ``reduced``, ``alloc``) are what
    ``cuda.py`` changes for one example per GPU thread."""

    def __init__(self, kernel, tape, source=None):
        self.k = kernel
        self.tape = tape
        self.user = source
        self.last_line = None
        self.ranks = dict(kernel.relaxed)
        self.temps = _temporaries(kernel)
        self.linear = _linear_only(kernel)
        self.counter = 0

    def local(self, base):
        self.counter += 1
        return f"{base}{self.counter}"

    # ------------------------------------------------------------------------------ layout

    def at(self, loc):
        """The source of ``loc`` for example ``b`` (a temporary of a run is a local)."""
        if loc.name in self.temps:
            return f"T_{loc.name}"
        return f"v_{loc.name}[{', '.join(loc.index + ('b',))}]"

    def grad_at(self, loc):
        if loc.name in self.temps:
            return f"GT_{loc.name}"
        return f"g_{loc.name}[{', '.join(loc.index + ('b',))}]"

    def each_example(self, body):
        """``body``, lines for example ``b``, run for every example of the chunk."""
        return ["for b in range(C):"] + _indent(body)

    def tape_room(self, slots):
        """Lines that make room for ``slots`` more rows of the tape (it grows)."""
        return [f"while top + {slots} > tape.shape[0]:", "    tape = kr.grow(tape)"]

    def hard_room(self):
        """Lines that make room for one more value on the hard tape (it grows)."""
        return ["if htop == htape.shape[0]:", "    htape = kr.grow(htape)"]

    def reduced(self, test):
        """A hard ``test`` or value that reads relaxed storage through a reduction over the
        chunk (a relaxed ``while``'s ``kr.bmax(v_p) > eps``, ``kr.bexcess``): here, over the
        chunk's examples."""
        return test

    def alloc(self, s):
        """The lines that make array ``s.name`` (an ``Alloc``)."""
        if s.like is not None:
            return [f"v_{s.name} = np.empty_like(v_{s.like})"]
        dims = ", ".join(s.dims + ("C",))
        return [f"v_{s.name} = np.full(({dims}), {s.fill!r}, DT)"]

    def source(self):
        """``forward`` (outputs and flags) or, taping, ``taped`` (the same and the state the
        adjoint starts from) followed by ``backward`` (the adjoint sweep from that state)."""
        k = self.k
        params = [f"v_{n}_in" for n, _ in k.inputs] + [f"h_{n}" for n in k.hard_inputs]
        params += ["beta", "max_iter", "eps"]
        first = f"v_{k.inputs[0][0]}_in"
        lines = [
            f"C = {first}.shape[-1]",
            f"DT = {first}.dtype",
            f"flags = np.zeros({max(len(k.flags), 1)})",
        ]
        for n, _ in k.inputs:
            lines.append(f"v_{n} = v_{n}_in.copy()")
        inputs = {n for n, _ in k.inputs}
        for n, rank in sorted(self.ranks.items()):
            if rank == 0 and n not in inputs and n not in self.temps:
                lines.append(f"v_{n} = np.zeros(C, DT)")
        lines += self.hard_locals()
        if self.tape:
            lines += [
                "tape = np.empty((max(rows, 64), C), DT)",
                "top = 0",
                "peak = 0",
                "htape = np.empty(64, np.float64)",
                "htop = 0",
            ]
        lines += self.block(k.body)
        outs = [f"v_{value}.copy()" for _, value in k.outputs] + ["flags"]
        head = '@numba.njit(cache=True, nogil=True, error_model="numpy")'
        if not self.tape:
            lines.append(f"return ({', '.join(outs)},)")
            return "\n".join([head, f"def forward({', '.join(params)}):"] + _indent(lines))
        state = self.state()
        lines.append(f"return ({', '.join(outs)}, ({', '.join(state)},))")
        taped = "\n".join([head, f"def taped({', '.join(params + ['rows'])}):"] + _indent(lines))
        seeds = [f"seed{i}" for i in range(len(k.outputs))]
        sweep = [f"{name} = state[{i}]" for i, name in enumerate(state)]
        sweep = [
            line + (".copy()" if line.split(" = ")[0].startswith("v_") else "") for line in sweep
        ]
        sweep += [
            "C = tape.shape[1]",
            "DT = tape.dtype",
            f"flags = np.zeros({max(len(k.flags), 1)})",
        ]
        sweep += self.sweep()
        backward = "\n".join(
            [head, f"def backward({', '.join(['beta', 'state'] + seeds)}):"] + _indent(sweep)
        )
        return taped + "\n\n\n" + backward

    def hard_locals(self):
        """Every hard name that is no input, at zero."""
        k = self.k
        return [
            f"h_{n} = {'0' if integer else '0.0'}"
            for n, integer in sorted(k.hard)
            if n not in k.hard_inputs
        ]

    def state(self):
        """What the adjoint sweep starts from: the tapes and every value at the end."""
        names = ["tape", "htape", "top", "htop", "peak"]
        names += [f"v_{n}" for n in sorted(self.ranks) if n not in self.temps]
        names += [f"h_{n}" for n, _ in sorted(self.k.hard)]
        return names

    def sweep(self):
        """The reverse sweep: adjoint storage, the seeds, the statements' adjoints."""
        k = self.k
        lines = []
        for n in sorted(self.ranks):
            if n not in self.temps:
                lines.append(f"g_{n} = np.zeros_like(v_{n})")
        lines.append("GBETA = np.zeros(C, DT)")
        for i, (_, value) in enumerate(k.outputs):
            lines.append(f"g_{value} += seed{i}")
        lines += self.adjoint_block(k.body)
        grads = [f"g_{n}" for n, _ in k.inputs]
        lines.append(f"return ({', '.join(grads + ['GBETA', 'peak'])},)")
        return lines

    # ------------------------------------------------------------------------------ forward

    def comment(self, line):
        """``# Lnn: <the user's line>`` where the user's line changes, else nothing."""
        if self.user is None or not line or line == self.last_line:
            return []
        self.last_line = line
        return [f"# L{line}: {self.user.line(line).strip()}"]

    def block(self, stmts):
        out = []
        for run in _runs(stmts):
            if isinstance(run, list):
                out += self.sets(run)
            else:
                out += self.comment(run.line) + self.stmt(run)
        return out or ["pass"]

    def stmt(self, s):
        if isinstance(s, kir.HardSet):
            value = f"{'int' if s.integer else 'float'}({self.reduced(s.src)})"
            push = self.hard_push(f"h_{s.name}") if self.tape else []
            return push + [f"h_{s.name} = {value}"]
        if isinstance(s, kir.Alloc):
            return self.alloc(s)
        if isinstance(s, kir.For):
            lo, hi, step = (self.local(x) for x in ("lo", "hi", "step"))
            out = [f"{lo} = {s.lo}", f"{hi} = {s.hi}", f"{step} = {s.step}"]
            if self.tape:
                out += self.hard_push(f"h_{s.var}")
            out += [f"for h_{s.var} in range({lo}, {hi}, {step}):"] + _indent(self.block(s.body))
            if self.tape:
                out += self.hard_push(lo) + self.hard_push(step)
                out += self.hard_push(f"len(range({lo}, {hi}, {step}))")
            return out
        if isinstance(s, kir.If):
            taken = self.local("taken")
            out = [f"{taken} = {s.test}", f"if {taken}:"] + _indent(self.block(s.body))
            out += ["else:"] + _indent(self.block(s.orelse))
            if self.tape:
                out += self.hard_push(f"1 if {taken} else 0")
            return out
        if isinstance(s, kir.While):
            count = self.local("count")
            out = [f"{count} = 0", f"while {self.reduced(s.test)}:"]
            out += _indent(self.block(s.body) + [f"{count} += 1"])
            if self.tape:
                out += self.hard_push(count)
            return out
        if isinstance(s, kir.Flag):
            return [f"if {self.reduced(s.test)}:", f"    flags[{s.slot}] = 1.0"]
        raise TypeError(f"no kernel rule for {s!r}")

    def hard_push(self, src):
        return self.hard_room() + [f"htape[htop] = {src}", "htop += 1"]

    def expression(self, e, saved=None):
        """Lines computing ``e`` for example ``b`` into locals; ``(lines, result, nodes)`` with
        ``nodes`` the (kind, local, argument locals, node) of each step, in order. ``saved``:
        the source of ``e``'s value, which the root primitive then takes instead of computing it
        (its arguments are still computed, for its adjoint)."""
        lines, nodes = [], []

        def visit(node):
            if isinstance(node, kir.Read):
                name = self.local("r")
                lines.append(f"{name} = {self.at(node.loc)}")
                nodes.append(("read", name, (), node))
                return name
            if isinstance(node, kir.Const):
                return repr(float(node.value))
            if isinstance(node, kir.Hard):
                return f"({node.src})"
            if isinstance(node, kir.Prim):
                args = [visit(a) for a in node.args]
                name = self.local("t")
                if node is e and saved is not None:
                    lines.append(f"{name} = {saved}")
                else:
                    lines.extend(PRIMS[node.name].forward(name, args, node.params))
                nodes.append(("prim", name, tuple(args), node))
                return name
            raise TypeError(f"no kernel rule for {node!r}")

        result = visit(e)
        return lines, result, nodes

    def sets(self, run):
        """Consecutive ``Set`` statements as one loop over the examples (each example's values
        depend on its own only), pushing the old value of each location that outlives the run
        on the tape when taping (a temporary of the run needs none: its adjoint recomputes it)."""
        inner, kept, saved = [], self.kept(run), self.saved(run)
        for j, s in enumerate(run):
            lines, result, _ = self.expression(s.expr)
            inner += self.comment(s.line)
            if self.tape and j in kept:
                inner.append(f"tape[top + {kept.index(j)}, b] = {self.at(s.loc)}")
            inner += lines + [f"{self.at(s.loc)} = {result}"]
            if self.tape and j in saved:
                inner.append(f"tape[top + {len(kept) + saved.index(j)}, b] = {result}")
        slots = len(kept) + len(saved)
        if not self.tape or not slots:
            return self.each_example(inner)
        return [
            *self.tape_room(slots),
            *self.each_example(inner),
            f"top += {slots}",
            "peak = max(peak, top)",
        ]

    def saved(self, run):
        """The positions in ``run`` of the statements whose value the tape keeps, so that the
        adjoint need not compute it again: comparisons (their slope follows from their value)."""
        return [
            j for j, s in enumerate(run) if isinstance(s.expr, kir.Prim) and s.expr.name in _SAVED
        ]

    def kept(self, run):
        """The positions in ``run`` of the statements whose old value the adjoint needs: not a
        temporary of the run, nor a name only ever added to (an accumulator), whose value no
        derivative reads."""
        return [
            j
            for j, s in enumerate(run)
            if (s.loc.index or s.loc.name not in self.temps) and s.loc.name not in self.linear
        ]

    # ------------------------------------------------------------------------------ adjoint

    def adjoint_block(self, stmts):
        out = []
        for run in reversed(_runs(stmts)):
            if isinstance(run, list):
                out += self.adjoint_sets(run)
            else:
                out += self.comment(run.line) + self.adjoint(run)
        return out or ["pass"]

    def hard_pop(self, target):
        return ["htop -= 1", f"{target} = htape[htop]"]

    def adjoint(self, s):
        if isinstance(s, kir.HardSet):
            cast = "int" if s.integer else "float"
            return ["htop -= 1", f"h_{s.name} = {cast}(htape[htop])"]
        if isinstance(s, (kir.Alloc, kir.Flag)):
            return []
        if isinstance(s, kir.For):
            lo, step, count, it = (self.local(x) for x in ("lo", "step", "count", "it"))
            out = ["htop -= 1", f"{count} = int(htape[htop])"]
            out += ["htop -= 1", f"{step} = int(htape[htop])"]
            out += ["htop -= 1", f"{lo} = int(htape[htop])"]
            body = [f"h_{s.var} = {lo} + {it} * {step}"] + self.adjoint_block(s.body)
            out += [f"for {it} in range({count} - 1, -1, -1):"] + _indent(body)
            out += ["htop -= 1", f"h_{s.var} = int(htape[htop])"]
            return out
        if isinstance(s, kir.If):
            taken = self.local("taken")
            out = ["htop -= 1", f"{taken} = htape[htop]", f"if {taken} > 0.5:"]
            out += _indent(self.adjoint_block(s.body))
            return out + ["else:"] + _indent(self.adjoint_block(s.orelse))
        if isinstance(s, kir.While):
            count, it = self.local("count"), self.local("it")
            out = ["htop -= 1", f"{count} = int(htape[htop])"]
            return out + [f"for {it} in range({count}):"] + _indent(self.adjoint_block(s.body))
        raise TypeError(f"no kernel rule for {s!r}")

    def adjoint_sets(self, run):
        """A run of ``Set`` statements backwards, in one loop over the examples: the locations
        it wrote put back to their values before it (from the tape), the run recomputed with
        every value it read or made kept in locals, then each statement's adjoint in reverse,
        which puts its location back to the value before it."""
        kept, saved = self.kept(run), self.saved(run)
        body = [
            f"{self.at(run[j].loc)} = tape[top + {k}, b]"
            for k, j in reversed(list(enumerate(kept)))
        ]
        temps = sorted({s.loc.name for s in run if s.loc.name in self.temps})
        body += [f"GT_{name} = 0.0" for name in temps]
        steps = []
        for j, s in enumerate(run):
            value = f"tape[top + {len(kept) + saved.index(j)}, b]" if j in saved else None
            lines, result, nodes = self.expression(s.expr, value)
            old = self.local("old")
            body += lines
            if j in kept and not _touched_after(run, j):
                # nothing later in the run reads or writes it: it keeps its old value, which
                # the adjoint needs back anyway
                steps.append((s, result, nodes, None))
                continue
            if j in kept:
                body.append(f"{old} = {self.at(s.loc)}")
            body.append(f"{self.at(s.loc)} = {result}")
            steps.append((s, result, nodes, old if j in kept else None))
        for s, result, nodes, old in reversed(steps):
            body += self.comment(s.line) + self.adjoint_step(s, result, nodes)
            if old is not None:
                body.append(f"{self.at(s.loc)} = {old}")
        slots = len(kept) + len(saved)
        head = [f"top -= {slots}"] if slots else []
        return head + self.each_example(body)

    def adjoint_step(self, s, result, nodes):
        """``loc = e`` backwards for example ``b``, its values in locals: the adjoint of ``loc``
        taken (the old value has its own) and ``e``'s added to the values it read."""
        g = self.local("g")
        body = [f"{g} = {self.grad_at(s.loc)}", f"{self.grad_at(s.loc)} = 0.0"]
        grads = {name: f"d{name}" for _, name, _, _ in nodes}
        body += [f"{grads[name]} = 0.0" for _, name, _, _ in nodes]
        if result in grads:
            body.append(f"{grads[result]} = {g}")
        uses_beta = any(kind == "prim" and PRIMS[n.name].reads_beta for kind, _, _, n in nodes)
        if uses_beta:
            body.append("gbeta = 0.0")
        for kind, name, args, node in reversed(nodes):
            if kind == "read":
                body.append(f"{self.grad_at(node.loc)} += {grads[name]}")
                continue
            arg_grads = [grads.get(a) for a in args]
            body += PRIMS[node.name].adjoint(name, grads[name], list(args), node.params, arg_grads)
        if uses_beta:
            body.append("GBETA[b] += gbeta")
        return body


def _touched_after(run, j):
    """Whether a statement of ``run`` after the ``j``-th reads or writes a location that may be
    the one it writes."""
    loc = run[j].loc

    def same(other):
        return other.name == loc.name and not kir.distinct(other, loc)

    for s in run[j + 1 :]:
        if same(s.loc) or any(same(r) for r in _read_locs(s.expr)):
            return True
    return False


def _read_locs(e):
    if isinstance(e, kir.Read):
        yield e.loc
    elif isinstance(e, kir.Prim):
        for a in e.args:
            yield from _read_locs(a)


def _temporaries(kernel):
    """Relaxed names of one value per example that live within one run of ``Set`` statements:
    written there before any read, in every run that uses them, and read nowhere else."""
    outside = " ".join(_hard_sources(kernel.body))
    out = {n for n, rank in kernel.relaxed if rank == 0}
    out -= {n for n, _ in kernel.inputs} | {v for kind, v in kernel.outputs if kind == "relaxed"}
    out = {n for n in out if f"v_{n}" not in outside}

    def visit(stmts):
        for run in _runs(stmts):
            if isinstance(run, list):
                written = set()
                for s in run:
                    for name in _reads(s.expr):
                        if name not in written:
                            out.discard(name)
                    if not s.loc.index:
                        written.add(s.loc.name)
            else:
                for body in (getattr(run, "body", ()), getattr(run, "orelse", ())):
                    visit(body)

    visit(kernel.body)
    return out


# Primitives whose value the tape keeps rather than the adjoint computing it again.
_SAVED = {"compare"}
# Primitives whose partial derivatives are constants: a value read through them only is never
# needed by the adjoint.
_LINEAR = {"add", "sub", "neg", "pos"}


def _linear_only(kernel):
    """Relaxed names whose old values the adjoint never needs, so that they need no tape: read
    only through sums and differences (an accumulator ``acc = acc + w * x``, a count ``loss =
    loss + p``) or copied, never in a hard value, and, within a run of statements (which the
    adjoint recomputes from the values it reads), never into a value that the run then reads
    otherwise."""
    outside = " ".join(_hard_sources(kernel.body))
    names = {n for n, _ in kernel.relaxed} - {n for n, _ in kernel.inputs}
    names = {n for n in names if f"v_{n}" not in outside}
    runs = list(_all_runs(kernel.body))
    for run in runs:
        for s in run:
            names -= {name for name, linear in _read_kinds(s.expr, True) if not linear}
    for run in runs:
        for name in names & {n for s in run for n in _reads(s.expr)}:
            if _reaches_a_derivative(run, name):
                names.discard(name)
    return names


def _reaches_a_derivative(run, name):
    """Whether, in ``run``, a value computed from ``name`` through sums and copies is read
    otherwise by a later statement of the run."""
    tainted = {name}
    for s in run:
        reads = list(_read_kinds(s.expr, True))
        if any(n in tainted and not linear for n, linear in reads):
            return True
        if any(n in tainted for n, _ in reads):
            tainted.add(s.loc.name)
    return False


def _read_kinds(e, linear):
    """(name, whether read only through sums and differences) of each location ``e`` reads."""
    if isinstance(e, kir.Read):
        yield e.loc.name, linear
    elif isinstance(e, kir.Prim):
        for a in e.args:
            yield from _read_kinds(a, linear and e.name in _LINEAR)


def _all_runs(stmts):
    """Every run of consecutive ``Set`` statements in ``stmts``, nested bodies included."""
    for run in _runs(stmts):
        if isinstance(run, list):
            yield run
        else:
            for body in (getattr(run, "body", ()), getattr(run, "orelse", ())):
                yield from _all_runs(body)


def _reads(e):
    return (loc.name for loc in _read_locs(e))


def _hard_sources(stmts):
    """Every piece of hard source in ``stmts`` (tests, bounds, indices, values)."""
    for s in stmts:
        for name in ("test", "src", "lo", "hi", "step"):
            value = getattr(s, name, None)
            if isinstance(value, str):
                yield value
        if isinstance(s, kir.Set):
            yield from s.loc.index
            yield from _expr_sources(s.expr)
        for body in (getattr(s, "body", ()), getattr(s, "orelse", ())):
            yield from _hard_sources(body)


def _expr_sources(e):
    if isinstance(e, kir.Read):
        yield from e.loc.index
    elif isinstance(e, kir.Hard):
        yield e.src
    elif isinstance(e, kir.Prim):
        yield from (p for p in e.params if isinstance(p, str))
        for a in e.args:
            yield from _expr_sources(a)


def _runs(stmts):
    """``stmts`` with each run of consecutive ``Set`` statements gathered in a list."""
    out = []
    for s in stmts:
        if isinstance(s, kir.Set):
            if out and isinstance(out[-1], list):
                out[-1].append(s)
            else:
                out.append([s])
        else:
            out.append(s)
    return out

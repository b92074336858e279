"""The CUDA target of the kernel backend: a kernel (``kir.Kernel``) as ``numba.cuda`` kernels
that run one example per GPU thread, and what runs them from the host.

The statements and primitives are ``codegen.py``'s, written once; ``_Thread`` changes only the
layout. Where the CPU code runs a run of statements as a loop over the chunk's examples, a thread
runs it once for its own example ``b``; every relaxed array keeps the batch as its last axis, so
neighbouring threads touch neighbouring memory (coalesced). Hard values are a thread's locals.
A relaxed ``while`` goes on while *this example's* probability of going on exceeds ``eps`` (on
the CPU, while some example's of the chunk does): each example stops on its own, as it would in a
chunk of one, and its result differs from the chunk's by less than ``eps`` times the loop's
values (SEMANTICS 12).

Device code cannot allocate. The host makes every relaxed array (the shapes of those the program
makes come from ``shapes``, a host function generated from the program's top-level hard
statements), the flags, the tape and the hard tape (a column of each per example). A thread whose
tape would overflow marks it and stops; the host launches again with twice the rows.

numba's CUDA target does not compile the builtins ``max`` and ``min`` (their overload takes
``*args``): the kernels call ``larger`` and ``smaller`` of two values instead, and ``kruntime``'s
functions run on the device as ``RUNTIME``'s, compiled again from the same Python with those.
"""

import re
import types

import numba
import torch
from numba import cuda

from . import codegen, kir, kruntime
from .codegen import _indent
from .lower import NotInKernel

_HEADER = """\
import math
from types import SimpleNamespace as Shaped

from numba import cuda

from avcompile.kernel.cuda import RUNTIME as kr

MODE = {mode}
DIST = {dist}
INPUTS = {inputs!r}
STORAGE = {storage!r}
"""

# Threads per block (a kernel's locals are many: registers, not threads, bound its occupancy).
THREADS = 128

_BMAX = re.compile(r"kr\.bmax\((v_\w+)\)")
_BEXCESS = re.compile(r"kr\.bexcess\((v_\w+), (v_\w+), ([\w.+-]+)\)")
_HARD_NAME = re.compile(r"\bh_(\w+)")
_EXTREME = re.compile(r"(?<![\w.])(max|min)\(")


def larger(a, b):
    """``max(a, b)`` as Python computes it (the first of equals)."""
    return b if b > a else a


def smaller(a, b):
    """``min(a, b)`` as Python computes it (the first of equals)."""
    return b if b < a else a


def _device_runtime():
    """``kruntime`` for the device: its constants, and each of its functions compiled by
    ``cuda.jit(device=True)`` from the same Python, seeing the others' device versions and
    ``max`` and ``min`` as ``larger`` and ``smaller``."""
    runtime = types.ModuleType("avcompile.kernel.kruntime_on_device")
    space = vars(runtime)
    for name, value in vars(kruntime).items():
        if isinstance(value, numba.core.dispatcher.Dispatcher):
            f = value.py_func
            value = types.FunctionType(f.__code__, space, name, f.__defaults__, f.__closure__)
            value = cuda.jit(device=True)(value)
        space.setdefault(name, value)
    space["larger"] = space["max"] = cuda.jit(device=True)(larger)
    space["smaller"] = space["min"] = cuda.jit(device=True)(smaller)
    return runtime


RUNTIME = _device_runtime()


def generate(kernel, mode, dist, source=None):
    """The module source of ``kernel``'s CUDA kernels ``forward``, ``taped`` and ``backward`` and
    of the host's ``shapes``, in relaxation ``mode`` and family ``dist`` (codes of ``kruntime``);
    ``NotInKernel`` where the host cannot know the shape of an array before the run."""
    plain = _Thread(kernel, tape=False, source=source)
    storage = tuple(n for n in sorted(plain.ranks) if n not in plain.temps)
    inputs = tuple(n for n, _ in kernel.inputs)
    header = _HEADER.format(mode=mode, dist=dist, inputs=inputs, storage=storage)
    parts = [
        header,
        plain.shapes(),
        plain.forward(storage),
        _Thread(kernel, tape=True, source=source).taped(storage),
        _Thread(kernel, tape=True, source=source).backward(storage),
    ]
    return "\n\n".join(parts)


class _Thread(codegen._Function):
    """``codegen._Function`` laid out for one example per thread, ``b`` the thread's: the
    arrays' last axis is the batch, the tape's a column per example, hard values its locals."""

    def each_example(self, body):
        return body

    def tape_room(self, slots):
        return [f"if top + {slots} > tape.shape[0]:", "    used[0, b] = -1", "    return"]

    def hard_room(self):
        return ["if htop == htape.shape[0]:", "    used[1, b] = -1", "    return"]

    def reduced(self, test):
        return _BEXCESS.sub(r"(\1[b] - \3 * \2[b])", _BMAX.sub(r"\1[b]", test))

    def alloc(self, s):
        return []  # the host made it, filled, before the launch

    def kernel(self, name, params, lines):
        head = ["b = cuda.grid(1)", "if b >= all_flags.shape[1]:", "    return"]
        head.append("flags = all_flags[:, b]")
        if self.tape:
            head.append("htape = all_htape[:, b]")
        body = _indent([_pairwise(line) for line in head + lines])
        return "\n".join(["@cuda.jit(cache=True)", f"def {name}({', '.join(params)}):"] + body)

    def scalars(self):
        return [f"h_{n}" for n in self.k.hard_inputs] + ["beta", "max_iter", "eps"]

    def forward(self, storage):
        """The forward on the relaxed storage (inputs there already) and the flags."""
        params = [f"v_{n}" for n in storage] + self.scalars() + ["all_flags"]
        return self.kernel("forward", params, self.hard_locals() + self.block(self.k.body))

    def taped(self, storage):
        """The forward pushing on the tapes what the adjoint needs, and every hard value at the
        end; ``used`` gets how much of each tape it used, or -1 where one overflowed."""
        params = [f"v_{n}" for n in storage] + self.scalars()
        params += ["all_flags", "tape", "all_htape", "used"]
        lines = self.hard_locals() + ["top = 0", "peak = 0", "htop = 0"]
        lines += self.block(self.k.body)
        for n, _ in self.taped_hard():
            lines += self.hard_push(f"h_{n}")
        lines += ["used[0, b] = peak", "used[1, b] = htop"]
        return self.kernel("taped", params, lines)

    def taped_hard(self):
        """The hard names ``taped`` leaves on the hard tape for ``backward``: all but the inputs
        the body never changes (a tuple has no place on the tape; ``backward`` takes those)."""
        constant = set(kir.constant_inputs(self.k))
        return [(n, integer) for n, integer in sorted(self.k.hard) if n not in constant]

    def backward(self, storage):
        """The adjoint sweep from the end of ``taped`` (the forward only pushes: its peak is
        where its tape ends), the adjoints of the outputs seeded by the host."""
        params = [f"v_{n}" for n in storage] + [f"g_{n}" for n in storage]
        params += [f"h_{n}" for n in kir.constant_inputs(self.k)]
        params += ["GBETA", "beta", "all_flags", "tape", "all_htape", "used"]
        lines = ["top = used[0, b]", "htop = used[1, b]"]
        for n, integer in reversed(self.taped_hard()):
            lines += ["htop -= 1", f"h_{n} = {'int' if integer else 'float'}(htape[htop])"]
        lines += self.adjoint_block(self.k.body)
        return self.kernel("backward", params, lines)

    def shapes(self):
        """The host function giving each array the program makes (its shape, the batch last,
        and its fill) from the top-level hard statements before it: an array made under a hard
        ``if`` is made whether the ``if`` runs its body or not. Refuses one whose size depends on
        a hard value that a loop or an ``if`` sets."""
        k = self.k
        known = {n for n, _ in k.hard}  # at zero, or an input
        lines, made, needed = [], [], 0
        for s in k.body:
            if isinstance(s, kir.HardSet):
                if _hard_names(s.src) <= known:
                    lines.append(f"h_{s.name} = {'int' if s.integer else 'float'}({s.src})")
                    known.add(s.name)
                else:
                    known.discard(s.name)
            elif not isinstance(s, (kir.Set, kir.Flag)):
                inner = list(_nested([s]))
                known -= {getattr(x, "name", getattr(x, "var", None)) for x in inner}
                for alloc in (x for x in inner if isinstance(x, kir.Alloc)):
                    lines.append(_shape(alloc, known))
                    made.append(alloc.name)
                    needed = len(lines)
        params = ["C"] + [f"v_{n}" for n, _ in k.inputs] + self.scalars()
        body = self.hard_locals() + lines[:needed]
        body.append("return {" + ", ".join(f"{n!r}: v_{n}" for n in made) + "}")
        return "\n".join([f"def shapes({', '.join(params)}):"] + _indent(body))


def _shape(alloc, known):
    """The host's line making array ``alloc`` (an ``Alloc``), its size from hard values
    ``known``."""
    if alloc.like is not None:
        return f"v_{alloc.name} = Shaped(shape=v_{alloc.like}.shape, fill=0.0)"
    if not _hard_names(" ".join(alloc.dims)) <= known:
        raise NotInKernel(
            f"the array `{alloc.name}`, whose size the host cannot know before a CUDA run (a "
            f"loop or an `if` sets a hard value it depends on)",
            alloc.line,
        )
    dims = ", ".join(alloc.dims + ("C",))
    return f"v_{alloc.name} = Shaped(shape=({dims}), fill={alloc.fill!r})"


def _pairwise(line):
    """``line`` with each ``max(a, b, c)`` as ``kr.larger(kr.larger(a, b), c)`` (and ``min`` as
    ``kr.smaller``), outside a comment."""
    found = _EXTREME.search(line)
    if found is None or line.lstrip().startswith("#"):
        return line
    args, depth, start = [], 0, found.end()
    for end in range(found.end(), len(line)):
        if line[end] in "([{":
            depth += 1
        elif line[end] in ")]}" and depth:
            depth -= 1
        elif line[end] == ")":
            break
        elif line[end] == "," and not depth:
            args.append(line[start:end])
            start = end + 1
    args.append(line[start:end])
    rest = _pairwise(line[end + 1 :])
    if len(args) < 2:  # of an iterable: none here
        return line[: found.end()] + _pairwise(args[0]) + ")" + rest
    call = _pairwise(args[0].strip())
    name = "kr.larger" if found.group(1) == "max" else "kr.smaller"
    for arg in args[1:]:
        call = f"{name}({call}, {_pairwise(arg.strip())})"
    return line[: found.start()] + call + rest


def _nested(stmts):
    """Every statement in ``stmts`` and in the bodies of those."""
    for s in stmts:
        yield s
        yield from _nested(getattr(s, "body", ()) + getattr(s, "orelse", ()))


def _hard_names(src):
    return set(_HARD_NAME.findall(src))


# ------------------------------------------------------------------------------ the host


class DeviceKernels:
    """The CUDA kernels of one kernel IR (a module ``generate`` wrote), run from the host on
    tensors: CUDA tensors, or CPU tensors under numba's CUDA simulator. Every array is made by
    the host with the batch last, as the kernels expect."""

    def __init__(self, kernel, module):
        self.kernel, self.module = kernel, module
        self.constant = set(kir.constant_inputs(kernel))
        self.tape_rows = self.htape_rows = 64  # per example: the last taped run's need
        self.relaunches = 0  # of the last taped run, its tape too short

    def forward(self, inputs, hard, beta, hyper, taping):
        """The outputs, the flags raised (one value per slot) and, ``taping``, the state the
        adjoint starts from, for ``inputs`` (float tensors, batch last)."""
        scalars = [*hard, beta, *hyper]
        if not taping:
            storage, flags = self.storage(inputs, scalars)
            _launch(self.module.forward, flags.shape[1], [*storage.values(), *scalars, flags])
            return self.outputs(storage), flags.amax(1), None
        like = inputs[0]
        size = like.shape[-1]
        self.relaunches = 0
        while True:
            storage, flags = self.storage(inputs, scalars)
            tape = like.new_empty((self.tape_rows, size))
            htape = like.new_empty((self.htape_rows, size), dtype=torch.float64)
            used = like.new_zeros((2, size), dtype=torch.int64)
            args = [*storage.values(), *scalars, flags, tape, htape, used]
            _launch(self.module.taped, size, args)
            short_tape, short_htape = (used < 0).any(1).tolist()
            if not (short_tape or short_htape):
                break
            self.tape_rows *= 2 if short_tape else 1
            self.htape_rows *= 2 if short_htape else 1
            self.relaunches += 1
        rows, hard_rows = used.amax(1).tolist() if size else (0, 0)
        self.tape_rows = max(rows + rows // 8, 1)
        self.htape_rows = max(hard_rows + hard_rows // 8, 1)
        constant = [h for n, h in zip(self.kernel.hard_inputs, hard) if n in self.constant]
        return self.outputs(storage), flags.amax(1), (storage, tape, htape, used, rows, constant)

    def backward(self, state, seeds, beta):
        """The adjoints of the inputs and the sum of that of ``beta`` over the batch, given
        those of the outputs (``seeds``, batch last), and the rows of tape used per example."""
        storage, tape, htape, used, rows, constant = state
        values = {n: v.clone() for n, v in storage.items()}  # the sweep puts them back
        grads = {n: torch.zeros_like(v) for n, v in storage.items()}
        for (_, name), seed in zip(self.kernel.outputs, seeds):
            grads[name] += seed
        like = next(iter(storage.values()))
        gbeta = like.new_zeros(used.shape[1])
        flags = like.new_zeros((max(len(self.kernel.flags), 1), used.shape[1]), dtype=torch.float64)
        args = [*values.values(), *grads.values(), *constant, gbeta, beta, flags, tape, htape, used]
        _launch(self.module.backward, used.shape[1], args)
        return [grads[n] for n, _ in self.kernel.inputs], gbeta.sum(), rows

    def storage(self, inputs, scalars):
        """Every relaxed array of the kernels (the inputs copied), and zero flags."""
        like = inputs[0]
        size = like.shape[-1]
        arrays = {n: x.clone() for n, x in zip(self.module.INPUTS, inputs)}
        for name, made in self.module.shapes(size, *arrays.values(), *scalars).items():
            arrays[name] = torch.full(made.shape, made.fill, dtype=like.dtype, device=like.device)
        storage = {
            n: arrays[n] if n in arrays else like.new_zeros(size) for n in self.module.STORAGE
        }
        flags = like.new_zeros((max(len(self.kernel.flags), 1), size), dtype=torch.float64)
        return storage, flags

    def outputs(self, storage):
        return [storage[name].clone() for _, name in self.kernel.outputs]


def _launch(kernel, size, args):
    """``kernel`` on one thread per example of ``size``, the last axis of every array."""
    if not size:
        return
    threads = min(size, THREADS)
    arrays = [
        (cuda.as_cuda_array(a) if a.is_cuda else a.numpy()) if isinstance(a, torch.Tensor) else a
        for a in args
    ]
    kernel[-(-size // threads), threads](*arrays)

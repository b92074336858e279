"""The kernel backend: a relaxed module's program run as one compiled forward and one generated
adjoint per chunk of examples (numba), wrapped in one ``torch.autograd.Function``.

Kernels are made per relaxation mode and family and per the ranks of the relaxed arguments, on
the first call that needs them. Their source is written to a cache directory under a name that
is its hash, and numba caches the compiled code beside it, so a second process compiles nothing.
The batch is split into chunks run on ``torch.get_num_threads()`` threads (numba releases the
GIL); each chunk stops a relaxed ``while`` by its own examples (SEMANTICS 12).
"""

import concurrent.futures
import hashlib
import importlib.util
import os
import sys
import threading
import warnings
from pathlib import Path

import numpy as np
import torch

from ..runtime import DISTRIBUTIONS, MODES, MaxIterWarning
from . import codegen
from .lower import NotInKernel, lower

# A batch runs in chunks of at most this many examples (a chunk's values and tape stay in the
# processor's caches), split further across threads down to MIN_CHUNK examples per chunk.
CHUNK = 512
MIN_CHUNK = 256

_lock = threading.Lock()


def cache_dir():
    """Where generated kernels and numba's compiled code are kept."""
    root = os.environ.get("AVCOMPILE_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.join(Path.home(), ".cache"), "avcompile"
    )
    path = Path(root) / "kernels"
    path.mkdir(parents=True, exist_ok=True)
    return path


def _load(source):
    """The module of generated ``source``, from a file named by its hash (numba caches the
    compiled functions beside it, keyed by that file)."""
    digest = hashlib.sha256(source.encode()).hexdigest()[:24]
    name = f"avcompile_kernel_{digest}"
    if name in sys.modules:
        return sys.modules[name]
    path = cache_dir() / f"{name}.py"
    if not path.exists() or path.read_text() != source:
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(source)
        os.replace(tmp, path)
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    sys.modules[name] = module
    return module


class KernelProgram:
    """The kernels of one relaxed function, made on demand."""

    def __init__(self, fn_ir, numbers=()):
        self.fn_ir = fn_ir
        self.numbers = tuple(numbers)  # free names holding numbers: hard inputs of the kernels
        self.kernels = {}  # (ranks, mode, dist) -> (kir.Kernel, module)
        self.peak_tape_bytes = None  # per example, of the last backward
        self.tape_rows = {}  # kernel -> rows of tape it needed last time (to allocate at once)

    def __deepcopy__(self, memo):
        return self  # compiled code, shared by copies of a module as its generated class is

    def check(self, ranks=None):
        """The kernel IR of the program, or ``NotInKernel`` saying why it has none."""
        return lower(self.fn_ir, ranks or {}, self.numbers)

    def get(self, ranks, mode, dist):
        key = (tuple(sorted(ranks.items())), mode, dist)
        found = self.kernels.get(key)
        if found is None:
            with _lock:
                found = self.kernels.get(key)
                if found is None:
                    kernel = lower(self.fn_ir, ranks, self.numbers)
                    source = codegen.generate(
                        kernel, MODES.index(mode), DISTRIBUTIONS.index(dist), self.fn_ir.source
                    )
                    found = self.kernels[key] = (kernel, _load(source), source)
        return found

    def source(self, ranks, mode="soft", dist="logistic"):
        return self.get(ranks, mode, dist)[2]


def _chunks(batch):
    """The ``(start, end)`` of each chunk of a batch: one chunk up to ``CHUNK`` examples on one
    thread, else chunks of at most ``CHUNK`` and, for the threads, at least ``MIN_CHUNK``."""
    threads = max(1, torch.get_num_threads())
    count = max(-(-batch // CHUNK), min(threads, batch // MIN_CHUNK), 1)
    edges = [batch * k // count for k in range(count + 1)]
    return list(zip(edges[:-1], edges[1:]))


_pools = {}


def _pool(threads):
    pool = _pools.get(threads)
    if pool is None:
        pool = _pools[threads] = concurrent.futures.ThreadPoolExecutor(threads)
    return pool


def _run(function, chunks, make_args):
    """``function`` on each chunk ``(a, b)`` of the batch, with ``make_args(k, a, b)``, the
    chunks on threads of their own (the kernels release the GIL)."""
    threads = max(1, torch.get_num_threads())
    if len(chunks) == 1 or threads == 1:
        return [function(*make_args(k, a, b)) for k, (a, b) in enumerate(chunks)]
    pool = _pool(threads)
    jobs = [pool.submit(function, *make_args(k, a, b)) for k, (a, b) in enumerate(chunks)]
    return [job.result() for job in jobs]


def _float(value):
    """A tensor as the float32 / float64 numpy array the kernel computes in."""
    if value.dtype not in (torch.float32, torch.float64):
        value = value.to(torch.float32)
    return value.detach().cpu().numpy()


class _KernelCall(torch.autograd.Function):
    """The kernel's forward and its generated adjoint, run chunk by chunk."""

    @staticmethod
    def forward(ctx, program, key, hyper, hard, beta, *inputs):
        kernel, module, _ = program.kernels[key]
        like = inputs[0]
        arrays = [np.ascontiguousarray(_float(x.movedim(0, -1))) for x in inputs]
        chunks = _chunks(arrays[0].shape[-1])
        scalars = list(hard) + [float(beta), *hyper]
        taping = any(ctx.needs_input_grad)
        rows = [program.tape_rows.get(key, 64)] if taping else []  # the tape's size last time
        results = _run(
            module.taped if taping else module.forward,
            chunks,
            lambda k, a, b: [x[..., a:b] for x in arrays] + scalars + rows,
        )
        n_out = len(kernel.outputs)
        _raise_flags(kernel, [r[n_out] for r in results])
        outputs = [np.concatenate([r[k] for r in results], axis=-1) for k in range(n_out)]
        ctx.states = [r[n_out + 1] for r in results] if taping else None
        ctx.program, ctx.key, ctx.beta, ctx.chunks = program, key, float(beta), chunks
        ctx.like = like
        ctx.shapes = [o.shape for o in outputs]
        ctx.beta_is_tensor = isinstance(beta, torch.Tensor)
        dtype = like.dtype if like.is_floating_point() else torch.float32
        result = tuple(torch.from_numpy(o).to(like.device, dtype).movedim(-1, 0) for o in outputs)
        return result if len(result) > 1 else result[0]

    @staticmethod
    def backward(ctx, *grads):
        kernel, module, _ = ctx.program.kernels[ctx.key]
        like = ctx.like
        dtype = ctx.states[0][0].dtype
        seeds = [
            np.zeros(shape, dtype)
            if g is None
            else np.ascontiguousarray(g.detach().movedim(0, -1).cpu().numpy().astype(dtype))
            for g, shape in zip(grads, ctx.shapes)
        ]

        def args(k, a, b):
            return [ctx.beta, ctx.states[k]] + [np.ascontiguousarray(s[..., a:b]) for s in seeds]

        results = _run(module.backward, ctx.chunks, args)
        n = len(kernel.inputs)
        grads_in = [
            torch.from_numpy(np.concatenate([r[k] for r in results], axis=-1))
            .to(like.device, like.dtype)
            .movedim(-1, 0)
            for k in range(n)
        ]
        gbeta = None
        if ctx.beta_is_tensor:
            gbeta = torch.tensor(sum(float(r[n].sum()) for r in results), dtype=like.dtype)
        peak = max(int(r[n + 1]) for r in results)
        ctx.program.peak_tape_bytes = peak * dtype.itemsize
        ctx.program.tape_rows[ctx.key] = peak + peak // 8
        return (None, None, None, None, gbeta, *grads_in)


def _raise_flags(kernel, flag_arrays):
    raised = np.max(np.stack(flag_arrays), axis=0) if flag_arrays else []
    for (what, line), value in zip(kernel.flags, raised):
        if value <= 0.5:
            continue
        if what == "support":
            raise NotInKernel(
                "a relaxed integer takes a value further from 0 than every dimension of the "
                "inputs, beyond the storage the kernel gives it",
                line,
            )
        if what == "truth":
            raise ValueError(
                "a relaxed value used as a condition must lie in [0, 1] (it is its own "
                f"probability) (line {line})"
            )
        if what == "max_iter":
            warnings.warn(
                f"the relaxed `while` at line {line} was cut off after max_iter iterations with "
                f"probability above eps of going on (the rest is put on its last state); raise "
                f"max_iter, or check that the loop ends",
                MaxIterWarning,
                stacklevel=4,
            )


def call(module, program, args, relaxed_names, ranks):
    """Run ``program``'s kernel for ``module``'s call with arguments ``args`` (by name); a hard
    input that is no argument is a free name, read as it is now."""
    key = (tuple(sorted(ranks.items())), module.mode, module.dist)
    kernel = program.get(ranks, module.mode, module.dist)[0]
    inputs = [args[n] for n in relaxed_names]
    hard = tuple(args[n] if n in args else module.free(n) for n in kernel.hard_inputs)
    beta = module.beta
    hyper = (int(module.max_iter), float(module.eps))
    return _KernelCall.apply(program, key, hyper, hard, beta, *inputs)


__all__ = ["KernelProgram", "NotInKernel", "call", "cache_dir"]

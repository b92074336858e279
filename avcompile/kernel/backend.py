"""The kernel backend: a relaxed module's program run as one compiled forward and one generated
adjoint per chunk of examples (numba), wrapped in one ``torch.autograd.Function``.

Kernels are made per relaxation mode and family and per the ranks of the relaxed arguments, on
the first call that needs them. Their source is written to a cache directory under a name that
is its hash, and numba caches the compiled code beside it, so a second process compiles nothing.
The batch is split into chunks run on ``torch.get_num_threads()`` threads (numba releases the
GIL); each chunk stops a relaxed ``while`` by its own examples (SEMANTICS 12). CUDA tensors run
the CUDA kernels of ``cuda.py`` instead, one thread per example (each stops a relaxed ``while``
by itself), where the CUDA target compiles the kernel; elsewhere the CPU kernels, with a warning.
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

# Run CPU tensors through the CUDA kernels too: for tests under numba's CUDA simulator
# (``NUMBA_ENABLE_CUDASIM=1`` before numba is imported), where device arrays are numpy arrays.
FORCE_CUDA = False


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

    def __init__(self, fn_ir, numbers=None):
        self.fn_ir = fn_ir
        # free names holding numbers or tuples of numbers, hard inputs of the kernels: whether
        # each holds integers
        self.numbers = {
            n: kind
            for n, v in (numbers or {}).items()
            for kind in [hard_kind(v)]
            if kind is not None
        }
        self.kernels = {}  # (ranks, mode, dist) -> (kir.Kernel, module)
        self.peak_tape_bytes = None  # per example, of the last backward
        self.tape_rows = {}  # kernel -> rows of tape it needed last time (to allocate at once)
        self.devices = {}  # kernel -> its CUDA kernels (cuda.DeviceKernels), or None: it has none

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

    def device(self, key):
        """The CUDA kernels of kernel ``key`` (``get`` made it), or None where the CUDA target
        does not compile it: it warns once, saying why, and the CPU kernels run."""
        if key not in self.devices:
            with _lock:
                if key not in self.devices:
                    self.devices[key] = self.make_device(key)
        return self.devices[key]

    def make_device(self, key):
        """The CUDA kernels of kernel ``key``, or None (warned) where it has none."""
        from . import cuda

        kernel = self.kernels[key][0]
        _, mode, dist = key
        try:
            source = cuda.generate(
                kernel, MODES.index(mode), DISTRIBUTIONS.index(dist), self.fn_ir.source
            )
        except NotInKernel as err:
            warnings.warn(
                f"`{kernel.name}` runs on the CPU kernel: the CUDA target does not compile {err}",
                RuntimeWarning,
                stacklevel=10,  # the module's caller
            )
            return None
        return cuda.DeviceKernels(kernel, _load(source))


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
    return _float_tensor(value).cpu().numpy()


def _float_tensor(value):
    """A tensor as the float32 / float64 tensor the kernel computes in, where it is."""
    if value.dtype not in (torch.float32, torch.float64):
        value = value.to(torch.float32)
    return value.detach()


class _KernelCall(torch.autograd.Function):
    """The kernel's forward and its generated adjoint: on the CPU chunk by chunk, on a CUDA
    device (or forced, ``FORCE_CUDA``) one thread per example."""

    @staticmethod
    def forward(ctx, program, key, hyper, hard, beta, *inputs):
        kernel = program.kernels[key][0]
        like = inputs[0]
        taping = any(ctx.needs_input_grad)
        ctx.device_kernels = program.device(key) if like.is_cuda or FORCE_CUDA else None
        ctx.program, ctx.key, ctx.beta = program, key, float(beta)
        ctx.like = like
        ctx.beta_is_tensor = isinstance(beta, torch.Tensor)
        run = _forward if ctx.device_kernels is None else _forward_on_device
        outputs, flags = run(ctx, kernel, hyper, hard, inputs, taping)
        _raise_flags(kernel, flags)
        ctx.shapes = [o.shape for o in outputs]
        dtype = like.dtype if like.is_floating_point() else torch.float32
        result = tuple(o.to(like.device, dtype).movedim(-1, 0) for o in outputs)
        return result if len(result) > 1 else result[0]

    @staticmethod
    def backward(ctx, *grads):
        like = ctx.like
        run = _backward if ctx.device_kernels is None else _backward_on_device
        grads_in, gbeta, ctx.program.peak_tape_bytes = run(ctx, grads)
        grads_in = [g.to(like.device, like.dtype).movedim(-1, 0) for g in grads_in]
        if gbeta is not None:
            gbeta = torch.tensor(gbeta, dtype=like.dtype)
        return (None, None, None, None, gbeta, *grads_in)


def _forward(ctx, kernel, hyper, hard, inputs, taping):
    """The CPU kernels on the batch's chunks: the outputs (batch last) and each chunk's flags."""
    module = ctx.program.kernels[ctx.key][1]
    arrays = [np.ascontiguousarray(_float(x.movedim(0, -1))) for x in inputs]
    ctx.chunks = _chunks(arrays[0].shape[-1])
    scalars = list(hard) + [ctx.beta, *hyper]
    rows = [ctx.program.tape_rows.get(ctx.key, 64)] if taping else []  # the tape's size last time
    results = _run(
        module.taped if taping else module.forward,
        ctx.chunks,
        lambda k, a, b: [x[..., a:b] for x in arrays] + scalars + rows,
    )
    n_out = len(kernel.outputs)
    ctx.states = [r[n_out + 1] for r in results] if taping else None
    outputs = [
        torch.from_numpy(np.concatenate([r[k] for r in results], axis=-1)) for k in range(n_out)
    ]
    return outputs, [r[n_out] for r in results]


def _backward(ctx, grads):
    """The CPU adjoint on each chunk: the inputs' adjoints (batch last), that of ``beta`` where
    it is a tensor, and the bytes of tape an example needed."""
    kernel, module, _ = ctx.program.kernels[ctx.key]
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
        torch.from_numpy(np.concatenate([r[k] for r in results], axis=-1)) for k in range(n)
    ]
    gbeta = sum(float(r[n].sum()) for r in results) if ctx.beta_is_tensor else None
    peak = max(int(r[n + 1]) for r in results)
    ctx.program.tape_rows[ctx.key] = peak + peak // 8
    return grads_in, gbeta, peak * dtype.itemsize


def _forward_on_device(ctx, kernel, hyper, hard, inputs, taping):
    """The CUDA kernels, one thread per example: the outputs (batch last) and the flags."""
    arrays = [_float_tensor(x).movedim(0, -1).contiguous() for x in inputs]
    outputs, flags, ctx.states = ctx.device_kernels.forward(arrays, hard, ctx.beta, hyper, taping)
    return outputs, [flags.cpu().numpy()]


def _backward_on_device(ctx, grads):
    """The CUDA adjoint: as ``_backward`` returns it."""
    like = next(iter(ctx.states[0].values()))
    seeds = [
        like.new_zeros(shape) if g is None else g.detach().movedim(0, -1).to(like.dtype)
        for g, shape in zip(grads, ctx.shapes)
    ]
    grads_in, gbeta, rows = ctx.device_kernels.backward(ctx.states, seeds, ctx.beta)
    return grads_in, float(gbeta) if ctx.beta_is_tensor else None, rows * like.dtype.itemsize


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
    hard = tuple(args[n] if n in args else _free(module, program, n) for n in kernel.hard_inputs)
    beta = module.beta
    hyper = (int(module.max_iter), float(module.eps))
    return _KernelCall.apply(program, key, hyper, hard, beta, *inputs)


def hard_kind(value):
    """Whether a number or a rectangular (nested) tuple of numbers holds integers (True) or
    floats (False): a free name holding one is a hard input of the kernels; None otherwise."""
    if isinstance(value, (bool, int)):
        return True
    if isinstance(value, float):
        return False
    if not isinstance(value, tuple) or not value:
        return None
    kinds = {hard_kind(v) for v in value}
    lengths = {len(v) if isinstance(v, tuple) else -1 for v in value}
    if len(kinds) != 1 or None in kinds or len(lengths) != 1:
        return None
    return kinds.pop()


def _free(module, program, name):
    """A free name's value now, which must hold numbers of the kind the kernel was made for."""
    value = module.free(name)
    if hard_kind(value) != program.numbers[name]:
        raise NotInKernel(
            f"the free name `{name}`, which held "
            f"{'integers' if program.numbers[name] else 'floats'} when the kernel was made and "
            f"now holds {value!r}"
        )
    return value


__all__ = ["KernelProgram", "NotInKernel", "call", "cache_dir"]

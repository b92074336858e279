"""The kernel backend: a relaxed program as one compiled forward and one generated adjoint per
chunk of examples (numba), equal in meaning to the torch backend (SEMANTICS 12).

``lower.py`` makes the kernel IR (``kir.py``) of a program after the passes, ``codegen.py`` its
forward and adjoint, ``prims.py`` holds each primitive's rules, ``kruntime.py`` what the kernels
call, and ``backend.py`` compiles, caches and runs them for a module.
"""

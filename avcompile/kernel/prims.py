"""The primitives of the kernel IR, each with all of its rules in one entry: the Python source of
its value for one example and of its adjoint (what it adds to the adjoint of each argument, and
of ``beta`` where it reads it), in the three modes of the relaxation.

An entry's ``forward(out, args, params)`` returns lines that set the local ``out`` from the
locals ``args``; ``adjoint(out, g, args, params, grads)`` returns lines that add to each local
of ``grads`` (None where an argument needs none) the adjoint of that argument given the adjoint
``g`` of ``out``, and to the local ``gbeta`` that of ``beta``. ``MODE`` and ``DIST`` are constants
of the generated module; ``kr`` is ``kernel/kruntime.py``.
"""

from dataclasses import dataclass
from typing import Callable

from ..runtime import TRUTH_SLACK


@dataclass(frozen=True)
class PrimRule:
    forward: Callable
    adjoint: Callable
    reads_beta: bool = False


def _add(grads, k, term):
    return [f"{grads[k]} += {term}"] if grads[k] is not None else []


def _elementwise(value, *partials):
    """A primitive ``value.format(*args)`` whose partial derivatives are ``partials`` (sources
    over ``a0, a1, ...`` (the arguments), ``o`` (its value) and ``p0, ...`` (its parameters))."""

    def names(out, args, params):
        table = {f"a{k}": a for k, a in enumerate(args)}
        table.update({f"p{k}": p for k, p in enumerate(params)})
        table["o"] = out
        return table

    def forward(out, args, params):
        return [f"{out} = " + value.format(**names(out, args, params))]

    def adjoint(out, g, args, params, grads):
        lines = []
        for k, partial in enumerate(partials):
            term = partial.format(**names(out, args, params))
            lines += _add(grads, k, f"{g} * ({term})")
        return lines

    return PrimRule(forward, adjoint)


PRIMS = {
    "add": _elementwise("{a0} + {a1}", "1.0", "1.0"),
    "sub": _elementwise("{a0} - {a1}", "1.0", "-1.0"),
    "mul": _elementwise("{a0} * {a1}", "{a1}", "{a0}"),
    "truediv": _elementwise("{a0} / {a1}", "1.0 / {a1}", "-{a0} / ({a1} * {a1})"),
    "neg": _elementwise("-{a0}", "-1.0"),
    "pos": _elementwise("{a0}", "1.0"),
    "pow": _elementwise("{a0} ** {p0}", "{p0} * {a0} ** ({p0} - 1)"),
    "exp": _elementwise("math.exp({a0})", "{o}"),
    "log": _elementwise("math.log({a0})", "1.0 / {a0}"),
    "sqrt": _elementwise("math.sqrt({a0})", "0.5 / {o}"),
    "sin": _elementwise("math.sin({a0})", "math.cos({a0})"),
    "cos": _elementwise("math.cos({a0})", "-math.sin({a0})"),
    "tanh": _elementwise("math.tanh({a0})", "1.0 - {o} * {o}"),
    "sigmoid": _elementwise("kr.cdf({a0}, 0)", "{o} * (1.0 - {o})"),
    "abs": _elementwise("abs({a0})", "(1.0 if {a0} > 0.0 else (-1.0 if {a0} < 0.0 else 0.0))"),
    "square": _elementwise("{a0} * {a0}", "2.0 * {a0}"),
    "floor": _elementwise("math.floor({a0})", "0.0"),
    "ceil": _elementwise("math.ceil({a0})", "0.0"),
    "and": _elementwise("{a0} * {a1}", "{a1}", "{a0}"),
    "or": _elementwise("{a0} + {a1} - {a0} * {a1}", "1.0 - {a1}", "1.0 - {a0}"),
    "not": _elementwise("1.0 - {a0}", "-1.0"),
    "blend": _elementwise("kr.blend({a0}, {a1}, {a2})", "{a1} - {a2}", "{a0}", "1.0 - {a0}"),
    "select": _elementwise(
        "({a0} if {p0} else {a1})", "(1.0 if {p0} else 0.0)", "(0.0 if {p0} else 1.0)"
    ),
}


# ------------------------------------------------------------------------------ comparisons


def _compare_forward(out, args, params):
    """params: (op code, what it relaxes into, sign, dist, beta source, same source)."""
    op, kind, sign, dist, beta, same = params
    a, b = args
    return [
        f"{out}_x = {sign} * {beta} * ({a} - {b})",
        f"if MODE == kr.SOFT and not ({same}):",
        f"    {out} = kr.relaxed({kind}, {out}_x, {dist})",
        "else:",
        f"    {out} = kr.exact({op}, {a}, {b})",
    ]


def _compare_adjoint(out, g, args, params, grads):
    op, kind, sign, dist, beta, same = params
    a, b = args
    # the logistic CDF's slope from its value, which the forward just computed (soft mode)
    slope = f"kr.relaxed_slope({kind}, {out}_x, {dist})"
    if kind == "0":  # CDF
        slope = f"({out} * (1.0 - {out}) if MODE == kr.SOFT and {dist} == kr.LOGISTIC else {slope})"
    lines = [
        f"if MODE != kr.HARD and not ({same}):",
        f"    {out}_x = {sign} * {beta} * ({a} - {b})",
        f"    {out}_s = {g} * {slope} * {sign}",
    ]
    for k, term in ((0, f"{out}_s * {beta}"), (1, f"-{out}_s * {beta}")):
        lines += ["    " + line for line in _add(grads, k, term)]
    if beta == "beta":
        lines.append(f"    gbeta += {out}_s * ({a} - {b})")
    return lines


PRIMS["compare"] = PrimRule(_compare_forward, _compare_adjoint, reads_beta=True)


def _truth_forward(out, args, params):
    """``if v:`` on a relaxed value: ``v`` itself, which must lie in [0, 1] (flag ``params[0]``
    records that it did not, for the caller to raise as the torch backend does)."""
    (v,), (slot,) = args, params
    return [
        f"if MODE != kr.HARD and ({v} < -{TRUTH_SLACK!r} or {v} > 1.0 + {TRUTH_SLACK!r}):",
        f"    flags[{slot}] = 1.0",
        f"{out} = {v} if MODE == kr.SOFT else (1.0 if {v} > 0.5 else 0.0)",
    ]


def _truth_adjoint(out, g, args, params, grads):
    return ["if MODE != kr.HARD:"] + ["    " + line for line in _add(grads, 0, g)]


PRIMS["truth"] = PrimRule(_truth_forward, _truth_adjoint)


# ------------------------------------------------------------------------------ soft extrema


def _extreme_forward(out, args, params):
    """Soft ``max`` (sign 1) or ``min`` (-1) of the arguments: the softmax-weighted mean; hard
    and straight-through: the exact extreme."""
    sign, beta = params
    n = len(args)
    z = [f"{sign} * {beta} * {a}" for a in args]
    lines = [f"{out}_m = max({', '.join(z)})" if n > 1 else f"{out}_m = {z[0]}"]
    lines += [f"{out}_w{k} = math.exp({z[k]} - {out}_m)" for k in range(n)]
    total = " + ".join(f"{out}_w{k}" for k in range(n))
    mean = " + ".join(f"{out}_w{k} * {a}" for k, a in enumerate(args))
    best = f"{'max' if sign == 1 else 'min'}({', '.join(args)})" if n > 1 else args[0]
    return lines + [
        "if MODE == kr.SOFT:",
        f"    {out} = ({mean}) / ({total})",
        "else:",
        f"    {out} = {best}",
    ]


def _extreme_adjoint(out, g, args, params, grads):
    sign, beta = params
    n = len(args)
    lines = _extreme_forward(f"{out}_f", args, params)[:-4]  # the weights
    total = " + ".join(f"{out}_f_w{k}" for k in range(n))
    lines.append(f"{out}_z = {total}")
    mean = " + ".join(f"{out}_f_w{k} * {a}" for k, a in enumerate(args))
    lines.append(f"{out}_soft = ({mean}) / {out}_z")
    best = f"{'max' if sign == 1 else 'min'}({', '.join(args)})" if n > 1 else args[0]
    ties = " + ".join(f"(1.0 if {a} == {out}_best else 0.0)" for a in args)
    lines += ["if MODE == kr.HARD:", f"    {out}_best = {best}", f"    {out}_ties = {ties}"]
    for k, a in enumerate(args):
        lines += [
            "    " + x
            for x in _add(grads, k, f"{g} * (1.0 if {a} == {out}_best else 0.0) / {out}_ties")
        ]
    lines.append("else:")
    for k, a in enumerate(args):
        weight = f"{out}_f_w{k} / {out}_z"
        term = f"{g} * {weight} * (1.0 + {sign} * {beta} * ({a} - {out}_soft))"
        lines += ["    " + x for x in _add(grads, k, term)]
    if beta == "beta":
        second = " + ".join(f"{out}_f_w{k} * {a} * {a}" for k, a in enumerate(args))
        lines.append(
            f"    gbeta += {g} * {sign} * (({second}) / {out}_z - {out}_soft * {out}_soft)"
        )
    return lines


PRIMS["extreme"] = PrimRule(_extreme_forward, _extreme_adjoint, reads_beta=True)

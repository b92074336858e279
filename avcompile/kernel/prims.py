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


# the exact extreme of a sign parameter (the source "1" for max, "-1" for min)
_EXACT = {"1": "max", "-1": "min"}


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
    best = f"{_EXACT[sign]}({', '.join(args)})" if n > 1 else args[0]
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
    best = f"{_EXACT[sign]}({', '.join(args)})" if n > 1 else args[0]
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


# ------------------------------------------------------------------------------ guards (SEMANTICS 12)


def _guarded(inner):
    """``inner`` inside a relaxed branch, where it may make a value that is not finite or a slope
    that is not (``1 / d`` at 0, ``sqrt`` at 0): the value is kept, but where either is not
    finite no adjoint flows through it, as ``runtime.guarded`` does."""

    def adjoint(out, g, args, params, grads):
        slopes = [f"{out}_d{k}" if grads[k] is not None else None for k in range(len(args))]
        lines = [f"{s} = 0.0" for s in slopes if s is not None]
        lines += inner.adjoint(out, "1.0", args, params, slopes)
        finite = " and ".join(
            [f"math.isfinite({out})"] + [f"math.isfinite({s})" for s in slopes if s is not None]
        )
        added = [line for k, s in enumerate(slopes) if s for line in _add(grads, k, f"{g} * {s}")]
        return lines + [f"if {finite}:"] + ["    " + line for line in added or ["pass"]]

    def forward(out, args, params):
        # a value that is not finite is NaN, where Python raises: never taken for a sentinel
        return inner.forward(out, args, params) + [
            f"if not math.isfinite({out}):",
            f"    {out} = math.nan",
        ]

    return PrimRule(forward, adjoint, inner.reads_beta)


GUARDED = ("truediv", "pow", "exp", "log", "sqrt")
for _name in GUARDED:
    PRIMS[f"guarded_{_name}"] = _guarded(PRIMS[_name])

# ``blend`` where a branch may make values that are not finite: such a value counts as its branch
# not taken (``runtime.blend_finite``, whose torch.where the partials follow).
_THEN = "(math.isfinite({a1}))"
_ELSE = "(math.isfinite({a2}))"
_SAFE_THEN = f"({{a1}} if {_THEN} else {{a2}})"
_SAFE_ELSE = f"({{a2}} if {_ELSE} else {_SAFE_THEN})"
PRIMS["blend_finite"] = _elementwise(
    f"{{a0}} * {_SAFE_THEN} + (1.0 - {{a0}}) * {_SAFE_ELSE}",
    f"{_SAFE_THEN} - {_SAFE_ELSE}",
    f"(({{a0}} + (0.0 if {_ELSE} else 1.0 - {{a0}})) if {_THEN} else 0.0)",
    f"((1.0 - {{a0}}) if {_ELSE} else 0.0)"
    f" + (({{a0}} + (0.0 if {_ELSE} else 1.0 - {{a0}})) if not {_THEN} else 0.0)",
)

# ``blend`` where a value may be an infinite sentinel (``runtime.blend_inf``): a branch of
# probability 0 contributes nothing, even infinity; equal values are kept as they are.
_MIXED = "(0.0 < {a0} < 1.0 and {a1} != {a2})"
PRIMS["blend_inf"] = _elementwise(
    "({a1} if {a0} >= 1.0 else ({a2} if {a0} <= 0.0 else ({a1} if {a1} == {a2} else "
    "{a0} * {a1} + (1.0 - {a0}) * {a2})))",
    f"(({{a1}} - {{a2}}) if {_MIXED} else 0.0)",
    f"({{a0}} if {_MIXED} else (1.0 if {{a0}} >= 1.0 or ({{a0}} > 0.0 and {{a1}} == {{a2}}) else 0.0))",
    f"((1.0 - {{a0}}) if {_MIXED} else (1.0 if {{a0}} <= 0.0 else 0.0))",
)


# Products and blends where a value may be infinite (``relaxed_int._safe_weighted``): a value of
# weight 0 adds nothing, even infinity; every other keeps its derivative in the weight.
_KEEP = "not ({w} == 0.0 and math.isinf({v}))"
_KEEP1, _KEEP2 = _KEEP.format(w="{a0}", v="{a1}"), _KEEP.format(w="(1.0 - {a0})", v="{a2}")
PRIMS["mul_safe"] = _elementwise(
    f"({{a0}} * {{a1}} if {_KEEP1} else 0.0)",
    f"({{a1}} if {_KEEP1} else 0.0)",
    f"({{a0}} if {_KEEP1} else 0.0)",
)
PRIMS["blend_safe"] = _elementwise(
    f"(({{a0}} * {{a1}} if {_KEEP1} else 0.0) + ((1.0 - {{a0}}) * {{a2}} if {_KEEP2} else 0.0))",
    f"(({{a1}} if {_KEEP1} else 0.0) - ({{a2}} if {_KEEP2} else 0.0))",
    f"({{a0}} if {_KEEP1} else 0.0)",
    f"((1.0 - {{a0}}) if {_KEEP2} else 0.0)",
)


def _extreme_inf_weights(out, args, params):
    """Lines setting ``{out}_fin`` (how many arguments are finite), ``{out}_near`` (how many
    are infinite at the end the extreme goes to) and, where some are finite, the softmax weights
    ``{out}_w<k>`` of the finite ones (0 for the others) and their total ``{out}_z``."""
    sign, beta = params
    finite = [f"math.isfinite({a})" for a in args]
    z = [f"({sign} * {beta} * {a} if {f} else -math.inf)" for a, f in zip(args, finite)]
    lines = [
        f"{out}_fin = " + " + ".join(f"(1.0 if {f} else 0.0)" for f in finite),
        f"{out}_near = " + " + ".join(f"(1.0 if {sign} * {a} == math.inf else 0.0)" for a in args),
        f"{out}_z = 1.0",
        f"if {out}_fin > 0.0:",
        f"    {out}_m = max({', '.join(z)})" if len(z) > 1 else f"    {out}_m = {z[0]}",
    ]
    for k, (zk, f) in enumerate(zip(z, finite)):
        lines.append(f"    {out}_w{k} = math.exp({zk} - {out}_m) if {f} else 0.0")
    lines.append(f"    {out}_z = " + " + ".join(f"{out}_w{k}" for k in range(len(args))))
    return lines


def _extreme_inf_soft(out, args):
    """The soft extreme over the finite arguments (the weights of the others are 0)."""
    terms = " + ".join(
        f"({out}_w{k} * {a} if math.isfinite({a}) else 0.0)" for k, a in enumerate(args)
    )
    return f"({terms}) / {out}_z"


def _extreme_inf_forward(out, args, params):
    """Soft ``max``/``min`` where some values may be infinite (``runtime.extreme`` with ``inf``):
    one at the far end gets weight 0, those at the near end make the result infinite, and with
    no finite value at all the result is the far end."""
    sign = params[0]
    best = f"{_EXACT[sign]}({', '.join(args)})" if len(args) > 1 else args[0]
    return _extreme_inf_weights(out, args, params) + [
        "if MODE != kr.SOFT:",
        f"    {out} = {best}",
        f"elif {out}_near > 0.0:",
        f"    {out} = {sign} * math.inf",
        f"elif {out}_fin == 0.0:",
        f"    {out} = -{sign} * math.inf",
        "else:",
        f"    {out} = {_extreme_inf_soft(out, args)}",
    ]


def _extreme_inf_adjoint(out, g, args, params, grads):
    sign, beta = params
    hard = _extreme_adjoint(out, g, args, params, grads)
    start, split = hard.index("if MODE == kr.HARD:"), hard.index("else:")
    lines = _extreme_inf_weights(f"{out}_f", args, params) + hard[start:split]
    lines += [f"elif {out}_f_near == 0.0 and {out}_f_fin > 0.0:"]
    lines.append(f"    {out}_soft = {_extreme_inf_soft(f'{out}_f', args)}")
    for k, a in enumerate(args):
        weight = f"{out}_f_w{k} / {out}_f_z"
        term = f"({g} * {weight} * (1.0 + {sign} * {beta} * ({a} - {out}_soft)) if math.isfinite({a}) else 0.0)"
        lines += ["    " + x for x in _add(grads, k, term)]
    if beta == "beta":
        second = " + ".join(
            f"({out}_f_w{k} * {a} * {a} if math.isfinite({a}) else 0.0)" for k, a in enumerate(args)
        )
        lines.append(
            f"    gbeta += {g} * {sign} * (({second}) / {out}_f_z - {out}_soft * {out}_soft)"
        )
    return lines


PRIMS["extreme_inf"] = PrimRule(_extreme_inf_forward, _extreme_inf_adjoint, reads_beta=True)


# ------------------------------------------------------------------------------ early exits


# After a loop that examples leave to an extent (SEMANTICS 11): ``(left + alive * value) / total``,
# the expectation over where each example left, with ``left`` the sum of mass times value of those
# that left, ``alive`` the mass still running and ``total`` both masses; ``value`` where no mass
# reaches here (``runtime.Exits.merge``).
PRIMS["exit_mix"] = _elementwise(
    "(({a0} + {a1} * {a2}) / {a3} if {a3} > 0.0 else {a2})",
    "(1.0 / {a3} if {a3} > 0.0 else 0.0)",
    "({a2} / {a3} if {a3} > 0.0 else 0.0)",
    "({a1} / {a3} if {a3} > 0.0 else 1.0)",
    "(-({a0} + {a1} * {a2}) / ({a3} * {a3}) if {a3} > 0.0 else 0.0)",
)
# The weight of the then-branch of a relaxed ``if`` whose branches exit to an extent: its share of
# the mass still running after it, ``p`` where none runs on (``runtime.share``).
PRIMS["share"] = _elementwise(
    "({a0} / ({a0} + {a1}) if {a0} + {a1} > 0.0 else {a2})",
    "({a1} / (({a0} + {a1}) * ({a0} + {a1})) if {a0} + {a1} > 0.0 else 0.0)",
    "(-{a0} / (({a0} + {a1}) * ({a0} + {a1})) if {a0} + {a1} > 0.0 else 0.0)",
    "(0.0 if {a0} + {a1} > 0.0 else 1.0)",
)

"""Recursive helpers: each is a function of its own (``Function.subroutines``) that the generated
code calls, compiled by the whole pipeline with the kinds its calls give it.

- A parameter's kind joins the kinds of the arguments of every call, the helper's own included,
  and the kind of a call is the join of the helper's returned values: both found together, by
  iterating until nothing rises (a relaxed integer passed or returned is its expectation).
- Its depth must depend on hard values only: a call of a recursive helper inside the helper may
  not stand under a relaxed condition, where both branches run and the base case would not stop
  it for any example.
- Python passes a list by reference: a helper that writes elements of a parameter (``a[k] = v``)
  changes the caller's list. Here values are never shared, so such a helper also returns the
  parameter's final value and each call whose argument is a variable assigns it back; a helper
  that also rebinds that parameter (then its writes no longer reach the caller in Python) is
  refused.
"""

from dataclasses import replace

from .. import ir
from ..errors import CompileError, Position
from ..ir import HARD, RELAXED, RELAXED_INT, Callee, Kind
from .kinds import infer_kinds


def compile_calls(fn, pipeline):
    """``fn`` with its recursive helpers compiled by ``pipeline`` and every call of one given
    the kind of its result."""
    subs = {sub.name: sub for sub in fn.subroutines}
    if not subs:
        return fn
    written = {name: _written_params(sub) for name, sub in subs.items()}
    fn = replace(fn, body=_assign_back(fn.body, written, fn.source))
    subs = {
        name: _returning_params(
            replace(sub, body=_assign_back(sub.body, written, sub.source)), written, name
        )
        for name, sub in subs.items()
    }
    params = {name: (HARD,) * len(sub.params) for name, sub in subs.items()}
    results = {name: HARD for name in subs}
    for _ in range(4 * (len(subs) + sum(len(p) for p in params.values())) + 4):
        main = infer_kinds(_with_calls(fn, results))
        inferred = {
            name: infer_kinds(_with_calls(_with_params(sub, params[name]), results))
            for name, sub in subs.items()
        }
        new_params = dict(params)
        for unit in [main] + list(inferred.values()):
            for call in _calls(unit.body):
                kinds = tuple(_as_value(a.kind) for a in call.args)
                old = new_params[call.func.id]
                new_params[call.func.id] = tuple(max(a, b) for a, b in zip(old, kinds))
        new_results = {name: _result_kind(sub) for name, sub in inferred.items()}
        if new_params == params and new_results == results:
            break
        params, results = new_params, new_results
    for sub in inferred.values():
        _check_depth(sub)
    compiled = tuple(
        pipeline(_with_calls(_with_params(sub, params[name]), results, params))
        for name, sub in subs.items()
    )
    return replace(_with_calls(fn, results, params), subroutines=compiled)


def _as_value(kind):
    """The kind a parameter or result takes from a value: a relaxed integer is its expectation."""
    return RELAXED if kind >= RELAXED_INT else kind


def _with_params(sub, kinds):
    return replace(sub, params=tuple(replace(p, kind=k) for p, k in zip(sub.params, kinds)))


def _with_calls(fn, results, params=None):
    """``fn`` with each call of a recursive helper given the kind of that helper's result (and
    the kinds its parameters take)."""

    def mark(node):
        node = ir.map_children(node, mark)
        if isinstance(node, ir.Call) and node.callee is Callee.COMPILED:
            takes = params[node.func.id] if params is not None else ()
            return replace(node, kind=results[node.func.id], takes=takes)
        return node

    return replace(fn, body=tuple(mark(s) for s in fn.body))


def _calls(stmts):
    for s in stmts:
        for node in ir.walk(s):
            if isinstance(node, ir.Call) and node.callee is Callee.COMPILED:
                yield node


def _result_kind(sub):
    kinds = [
        node.value.kind
        for s in sub.body
        for node in ir.walk(s)
        if isinstance(node, ir.Return) and node.value is not None
    ]
    return _as_value(Kind(max(kinds, default=HARD)))


def _check_depth(sub):
    """Refuse a call of a recursive helper under relaxed control inside one."""

    def visit(stmts, relaxed):
        for s in stmts:
            if isinstance(s, (ir.If, ir.While)):
                inner = relaxed or s.relaxed
                visit(s.body, inner)
                visit(getattr(s, "orelse", ()), inner)
                parts = [s.test]
                # after a relaxed `return`, the rest runs for every example, to an extent
                returns = any(isinstance(n, ir.Return) for n in ir.walk(s))
                relaxed = relaxed or (s.relaxed and returns)
            elif isinstance(s, ir.For):
                visit(s.body, relaxed)
                parts = [s.iter]
            else:
                parts = list(ir.children(s))
            for part in parts:
                for call in _calls_in(part, relaxed):
                    _refuse(sub, call, s.line)

    visit(sub.body, False)


def _calls_in(e, relaxed):
    """The calls of recursive helpers in ``e`` that run for every example while a relaxed
    condition holds only to an extent (an arm of a relaxed ``x if c else y``)."""
    if isinstance(e, ir.Call) and e.callee is Callee.COMPILED and relaxed:
        yield e
    inner = relaxed or (isinstance(e, (ir.IfExp, ir.BoolOp)) and e.kind == RELAXED)
    for child in ir.children(e):
        yield from _calls_in(child, inner)


def _refuse(sub, call, line):
    at = Position(*call.pos) if call.pos else Position.of_line(sub.source, line)
    raise CompileError(
        f"the recursive call of `{call.func.id}` stands under a relaxed condition: both "
        f"branches of a relaxed condition run for every example, so a base case tested on "
        f"relaxed values would never stop the recursion. Decide the depth with hard values "
        f"(lengths, index ranges) only.",
        sub.source,
        at,
    )


# ------------------------------------------------------------------------ in-place parameters


def _written_params(sub):
    """The positions of the parameters whose elements ``sub`` writes (changing the caller's
    list, in Python); refused if ``sub`` also rebinds one."""
    names = {p.id: k for k, p in enumerate(sub.params)}
    written, rebound = {}, {}
    for s in sub.body:
        for node in ir.walk(s):
            targets = node.targets if isinstance(node, ir.Assign) else ()
            if isinstance(node, ir.For):
                targets = (node.target,)
            for target in targets:
                for t in _flat(target):
                    root = ir.root(t)
                    if isinstance(root, ir.Name) and root.id in names:
                        (written if isinstance(t, ir.Index) else rebound)[root.id] = node.line
    for name, line in sorted(written.items()):
        if name in rebound:
            raise CompileError(
                f"the recursive helper `{sub.name}` writes elements of its parameter and also "
                f"assigns the parameter a new value (line {rebound[name]}): in Python the writes "
                f"after that no longer reach the caller's list. Either change the list in place "
                f"only, or build and return a new one.",
                sub.source,
                Position.of_line(sub.source, line),
            )
    return tuple(sorted(names[n] for n in written))


def _flat(target):
    if isinstance(target, ir.Tuple_):
        for elt in target.elts:
            yield from _flat(elt)
    else:
        yield target


def _returning_params(sub, written, name):
    """``sub`` returning ``(result, *params it writes)`` from every ``return`` and its end."""
    positions = written[name]
    if not positions:
        return sub
    params = [sub.params[k] for k in positions]

    def rewrite(stmts):
        out = []
        for s in stmts:
            if isinstance(s, ir.Return):
                value = s.value if s.value is not None else ir.Const(None)
                s = replace(s, value=ir.Tuple_((value,) + tuple(params), HARD))
            elif isinstance(s, (ir.If, ir.While, ir.For)):
                changes = {"body": rewrite(s.body)}
                if isinstance(s, ir.If):
                    changes["orelse"] = rewrite(s.orelse)
                s = replace(s, **changes)
            out.append(s)
        return tuple(out)

    body = rewrite(sub.body)
    if not body or not isinstance(sub.body[-1], ir.Return):
        last = sub.body[-1].line if sub.body else 0
        body += (ir.Return(ir.Tuple_((ir.Const(None),) + tuple(params), HARD), last),)
    return replace(sub, body=body)


def _assign_back(stmts, written, source):
    """Each statement that calls a helper writing a parameter in place, followed by the
    assignment of the parameter's final value to the variable that was passed (Python's list
    passed by reference)."""
    out = []
    for s in stmts:
        if isinstance(s, (ir.If, ir.While, ir.For)):
            changes = {"body": _assign_back(s.body, written, source)}
            if isinstance(s, ir.If):
                changes["orelse"] = _assign_back(s.orelse, written, source)
            out.append(replace(s, **changes))
            continue
        calls = [c for c in _own_calls(s) if written.get(c.func.id)]
        if not calls:
            out.append(s)
            continue
        value = s.value if isinstance(s, (ir.Assign, ir.ExprStmt)) else None
        if len(calls) > 1 or value is not calls[0]:
            at = Position(*calls[0].pos) if calls[0].pos else Position.of_line(source, s.line)
            raise CompileError(
                f"`{calls[0].func.id}` changes a list it is given in place: call it in a "
                f"statement of its own (`{calls[0].func.id}(...)` or `r = "
                f"{calls[0].func.id}(...)`), so that the change reaches the list.",
                source,
                at,
            )
        call = calls[0]
        back = [call.args[k] for k in written[call.func.id]]
        if not all(isinstance(a, ir.Name) for a in back):
            raise CompileError(
                f"`{call.func.id}` changes a list it is given in place: pass it a variable, so "
                f"that the change has a list to reach.",
                source,
                Position(*call.pos) if call.pos else Position.of_line(source, s.line),
            )
        if isinstance(s, ir.ExprStmt):  # `x, = f(x, ...)[1:]`
            rest = ir.Index(call, ir.Slice(ir.Const(1), None, None), call.kind)
            out.append(ir.Assign((ir.Tuple_(tuple(back), HARD),), rest, s.line))
        elif len(s.targets) == 1:  # `r, x = f(x, ...)`
            out.append(replace(s, targets=(ir.Tuple_((s.targets[0],) + tuple(back), HARD),)))
        else:
            raise CompileError(
                f"`{call.func.id}` changes a list in place: assign its result to one target.",
                source,
                Position.of_line(source, s.line),
            )
    return tuple(out)


def _own_calls(s):
    """The calls of recursive helpers in statement ``s`` itself (not in nested blocks)."""
    for child in ir.children(s):
        if isinstance(child, tuple):
            continue
        for node in ir.walk(child):
            if isinstance(node, ir.Call) and node.callee is Callee.COMPILED:
                yield node

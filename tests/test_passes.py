"""Each pass over the relaxed IR on small hand-built programs, independent of both front ends."""

import pytest

from avcompile import ir, registry
from avcompile.errors import CompileError
from avcompile.ir import HARD, RELAXED
from avcompile.parse import Source
from avcompile.passes import check_liveness, fuse, place_guards, run_passes

ADD, DIV, POW, GT = (registry.BY_SYMBOL[s] for s in ("+", "/", "**", ">"))
LINES = tuple(f"line {k}\n" for k in range(1, 30))


def name(ident, kind=RELAXED):
    return ir.Name(ident, kind)


def const(value):
    return ir.Const(value)


def function(*body, params=("x",)):
    return ir.Function(
        name="f",
        params=tuple(name(p) for p in params),
        defaults=(),
        body=tuple(body),
        free=(),
        source=Source("prog.py", LINES),
    )


def assign(target, value, line=1):
    return ir.Assign((name(target) if isinstance(target, str) else target,), value, line)


def relaxed_if(test, body, orelse=(), blended=(), line=1):
    return ir.If(test, tuple(body), tuple(orelse), True, tuple(name(b) for b in blended), line)


RANGE_3 = ir.Call(ir.Name("range", HARD), (ir.Const(3),), (), HARD)
X_GT_0 = ir.Compare(GT, name("x"), const(0.0), RELAXED)


def guarded_nodes(fn):
    return [n for s in fn.body for n in ir.walk(s) if isinstance(n, ir.Guarded)]


# ------------------------------------------------------------------------------------ guards


def test_a_division_in_a_relaxed_branch_is_guarded_and_the_branch_marked():
    div = ir.BinOp(DIV, const(1.0), name("x"), RELAXED)
    fn = place_guards(function(relaxed_if(X_GT_0, [assign("r", div)], blended=["r"])))
    (guard,) = guarded_nodes(fn)
    assert guard.op is DIV and guard.args == (const(1.0), name("x"))
    assert fn.body[0].guarded


def test_nothing_is_guarded_outside_relaxed_branches_or_with_a_safe_literal():
    div = ir.BinOp(DIV, name("x"), name("x"), RELAXED)
    square = ir.BinOp(POW, name("x"), const(2), RELAXED)
    half = ir.BinOp(DIV, name("x"), const(2.0), RELAXED)
    hard_if = ir.If(X_GT_0, (assign("r", div),), (), False, (), 1)
    fn = place_guards(
        function(
            assign("r", div),
            hard_if,
            relaxed_if(X_GT_0, [assign("r", square), assign("r", half)], blended=["r"]),
        )
    )
    assert guarded_nodes(fn) == []
    assert not fn.body[2].guarded


def test_arms_of_a_relaxed_conditional_expression_are_guarded():
    root = ir.Call(
        ir.Attr(name("x"), "sqrt", RELAXED), (), (), RELAXED, op=registry.torch_op("sqrt")
    )
    choice = ir.IfExp(X_GT_0, root, const(0.0), RELAXED)
    fn = place_guards(function(assign("r", choice)))
    (guard,) = guarded_nodes(fn)
    assert guard.args == (name("x"),)


def test_a_risky_op_nested_in_a_hard_loop_inside_a_relaxed_branch_marks_the_branch():
    div = ir.BinOp(DIV, const(1.0), name("x"), RELAXED)
    loop = ir.For(name("i", HARD), RANGE_3, (assign("r", div),), 1)
    fn = place_guards(function(relaxed_if(X_GT_0, [loop], blended=["r"])))
    assert fn.body[0].guarded and len(guarded_nodes(fn)) == 1


# ------------------------------------------------------------------------------------ liveness


def test_a_name_set_in_one_branch_and_read_after_is_rejected_at_the_if():
    fn = function(
        relaxed_if(X_GT_0, [assign("y", name("x"), line=3)], line=2),
        ir.Return(name("y"), 5),
    )
    with pytest.raises(CompileError, match=r"`y` is assigned only in the `if` branch.*line 5") as e:
        check_liveness(fn)
    assert e.value.lineno == 2 and e.value.filename == "prog.py"


def test_a_name_set_in_one_branch_is_unset_at_the_next_iteration():
    body = (
        assign("s", ir.BinOp(ADD, name("s"), name("y"), RELAXED), line=4),
        relaxed_if(X_GT_0, [assign("y", name("x"), line=6)], line=5),
    )
    loop = ir.For(name("i", HARD), RANGE_3, body, 3)
    fn = function(assign("s", const(0.0), line=2), loop, ir.Return(name("s"), 7))
    with pytest.raises(CompileError, match=r"`y` .*line 4") as e:
        check_liveness(fn)
    assert e.value.lineno == 5


def test_blended_names_and_names_assigned_again_are_fine():
    fn = function(
        assign("y", const(0.0)),
        relaxed_if(X_GT_0, [assign("y", name("x")), assign("t", name("x"))], blended=["y"]),
        assign("t", const(1.0)),
        ir.Return(ir.Tuple_((name("y"), name("t")), RELAXED), 9),
    )
    assert check_liveness(fn) is fn


def test_a_name_first_assigned_in_a_relaxed_while_is_unset_after_it():
    loop = ir.While(X_GT_0, (assign("t", name("x"), line=3),), True, (), 2)
    with pytest.raises(CompileError, match="`t` is first assigned inside a relaxed `while`"):
        check_liveness(function(loop, ir.Return(name("t"), 4)))


def test_a_break_carries_its_state_out_of_the_loop():
    # for ...: if relaxed: y = x (only one branch); break  -> y may be unset after the loop
    body = (relaxed_if(X_GT_0, [assign("y", name("x"), line=3)], line=2), ir.Jump("break", 4))
    loop = ir.For(name("i", HARD), RANGE_3, body, 1)
    with pytest.raises(CompileError, match="`y`"):
        check_liveness(function(loop, ir.Return(name("y"), 6)))


# ------------------------------------------------------------------------------------ fusion


def test_an_increment_in_a_relaxed_branch_is_fused():
    plus_one = ir.BinOp(ADD, name("loss"), const(1), RELAXED)
    fn = fuse(function(relaxed_if(X_GT_0, [assign("loss", plus_one, line=3)], blended=["loss"])))
    (s,) = fn.body
    assert s.body == () and s.blended == ()
    assert [(f.op, f.var.id) for f in s.fused] == [("add", "loss")]


def test_the_pipeline_runs_every_pass():
    div = ir.BinOp(DIV, const(1.0), name("x"), RELAXED)
    fn = run_passes(function(relaxed_if(X_GT_0, [assign("x", div)], blended=["x"])))
    assert fn.body[0].guarded

"""Each pass over the relaxed IR on small hand-built programs, independent of both front ends."""

import ast

import pytest

from avcompile import ir, registry
from avcompile.errors import CompileError
from avcompile.ir import CONSTANT, HARD, RELAXED, RELAXED_INT
from avcompile.parse import Source
from avcompile.passes import check_liveness, fuse, infer_kinds, place_guards, run_passes

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


RANGE_3 = ir.Call(
    ir.Name("range", HARD),
    (ir.Const(3),),
    (),
    HARD,
    op=registry.BUILTINS["range"],
    callee=ir.Callee.BUILTIN,
)
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
    body = (
        relaxed_if(X_GT_0, [assign("y", name("x"), line=3)], line=2),
        ir.Jump(ir.JumpKind.BREAK, 4),
    )
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


# ------------------------------------------------------------------------------------ kinds

LT = registry.BY_SYMBOL["<"]


def builtin(fname, *args):
    op = registry.builtin_op(fname)
    return ir.Call(ir.Name(fname, HARD), tuple(args), (), HARD, op=op, callee=ir.Callee.BUILTIN)


def kinds_of(fn):
    """Every name's kind after inference, and the function itself."""
    out = infer_kinds(fn)
    names = {n.id: n.kind for s in out.body for n in ir.walk(s) if isinstance(n, ir.Name)}
    return names, out


def test_kinds_rise_with_values_and_relaxed_branches():
    names, fn = kinds_of(
        function(
            assign("n", builtin("len", name("x")), line=2),  # hard: a length
            assign("s", const(0.0), line=3),  # relaxed: assigned under a relaxed `if`
            assign("t", name("x"), line=4),  # relaxed: a relaxed value
            relaxed_if(
                ir.Compare(GT, name("t", HARD), const(0.0), HARD), [assign("s", const(1.0))]
            ),
        )
    )
    assert (names["n"], names["s"], names["t"]) == (HARD, RELAXED, RELAXED)
    assert fn.body[3].relaxed  # its test reads `t`, which is relaxed


def test_an_integer_index_assigned_under_a_relaxed_if_is_a_relaxed_integer():
    read = ir.Index(name("x"), name("k", HARD), HARD)
    names, fn = kinds_of(
        function(
            assign("k", const(0), line=2),
            relaxed_if(X_GT_0, [assign("k", const(1), line=4)], line=3),
            ir.Return(read, 5),
        )
    )
    assert names["k"] == RELAXED_INT
    assert fn.body[2].value.kind == RELAXED  # the read at a relaxed position is a value


def test_an_integer_only_counted_under_a_relaxed_if_is_a_relaxed_value():
    # its expectation is all that is read: no distribution is kept
    names, _ = kinds_of(
        function(
            assign("k", const(0), line=2),
            relaxed_if(X_GT_0, [assign("k", ir.BinOp(ADD, name("k"), const(1), HARD))], line=3),
            ir.Return(name("k"), 5),
        )
    )
    assert names["k"] == RELAXED


def test_an_integer_compared_after_a_relaxed_if_is_a_relaxed_integer():
    compare = ir.Compare(GT, name("k"), const(1), HARD)
    names, fn = kinds_of(
        function(
            assign("k", const(0), line=2),
            relaxed_if(X_GT_0, [assign("k", ir.BinOp(ADD, name("k"), const(1), HARD))], line=3),
            relaxed_if(compare, [assign("x", const(1.0))], line=5),
        )
    )
    assert names["k"] == RELAXED_INT and fn.body[2].relaxed


def test_an_index_that_is_not_always_an_integer_is_rejected_at_the_write():
    from avcompile.errors import HardInRelaxedBranch

    read = ir.Index(name("x"), name("k", HARD), HARD)
    fn = function(
        assign("k", const(0), line=2),
        relaxed_if(X_GT_0, [assign("k", const(1.5), line=4)], line=3),
        ir.Return(read, 5),
    )
    with pytest.raises(HardInRelaxedBranch, match="hard variable `k`.*not every value") as info:
        infer_kinds(fn)
    assert info.value.lineno == 4 and info.value.branch_line == 3 and info.value.name == "k"


def test_in_a_relaxed_while_only_names_that_need_not_be_hard_become_relaxed():
    body = (
        assign("k", ir.BinOp(ADD, name("k", HARD), const(1), HARD), line=3),
        assign("c", ir.BinOp(ADD, name("c", HARD), const(1.0), HARD), line=4),
    )
    loop = ir.While(X_GT_0, body, False, (), 2)
    names, fn = kinds_of(
        function(
            assign("k", const(0)),
            assign("c", const(0.0)),
            loop,
            ir.Return(ir.Index(name("x"), name("k"), HARD), 5),
        )
    )
    assert names["k"] == HARD and names["c"] == RELAXED and fn.body[2].relaxed


def test_declared_names_keep_their_kind():
    # A DSL VarInt changed in a relaxed While stays hard (its last value), as AlgoVision's LetInt;
    # an undeclared name there becomes relaxed.
    step = ir.BinOp(ADD, name("n", HARD), const(1), HARD)
    body = (assign(name("n", HARD), step, line=3), assign(name("m", HARD), step, line=4))
    fn = function(
        assign(name("n", HARD), const(0)),
        assign(name("m", HARD), const(0)),
        ir.While(X_GT_0, body, False, (), 2),
    )
    names, _ = kinds_of(ir.Function(**{**fn.__dict__, "declared": ("n",)}))
    assert names["n"] == HARD and names["m"] == RELAXED


# ------------------------------------------------------------------------------------ reject


def test_a_relaxed_index_is_rejected_at_its_own_column():
    read = ir.Index(name("x"), name("x"), HARD, pos=(3, 11))
    with pytest.raises(CompileError, match="relaxed value is used as an index") as info:
        run_passes(function(ir.Return(read, 3)))
    assert (info.value.lineno, info.value.offset) == (3, 12)


def test_a_break_under_a_relaxed_if_is_an_exit_but_not_in_a_loop_inside_it():
    from avcompile.passes.exits import lower_exits

    inner = ir.For(name("i", HARD), RANGE_3, (ir.Jump(ir.JumpKind.BREAK, 4),), 3)
    fn = lower_exits(infer_kinds(function(relaxed_if(X_GT_0, [inner], line=2))))
    assert fn.alive is None  # it leaves the hard loop inside the branch: Python's break
    loop = ir.For(
        name("i", HARD), RANGE_3, (relaxed_if(X_GT_0, [ir.Jump(ir.JumpKind.BREAK, 3)], line=2),), 1
    )
    fn = lower_exits(infer_kinds(function(loop)))
    lowered = fn.body[1]
    assert fn.alive == "alive" and lowered.exits
    branch = lowered.body[0]
    assert branch.exits and isinstance(branch.body[0], ir.Exit)
    assert branch.body[0].what is ir.JumpKind.BREAK


def test_a_relaxed_while_with_an_exit_becomes_while_true_with_its_test_first():
    from avcompile.passes.exits import lower_exits

    loop = ir.While(X_GT_0, (ir.Jump(ir.JumpKind.BREAK, 3),), False, (), 2)
    fn = lower_exits(infer_kinds(function(loop)))
    lowered = fn.body[1]
    assert not lowered.relaxed and lowered.exits and lowered.test == ir.Const(True)
    first, then = lowered.body
    assert isinstance(first.test, ir.Not) and isinstance(first.body[0], ir.Exit)
    assert then == ir.Jump(ir.JumpKind.BREAK, 3)  # all examples still running leave: Python's


# ------------------------------------------------------------------------------------ unpack


def test_arrays_used_element_by_element_are_unpacked_and_others_not():
    fn = run_passes(
        function(
            assign("y", ir.Index(name("x"), const(0), HARD), line=2),
            assign(ir.Index(name("x"), const(1), HARD), name("y"), line=3),
            ir.Return(ir.Tuple_((name("x"), ir.BinOp(ADD, name("z"), name("z"), HARD)), HARD), 4),
            params=("x", "z"),
        )
    )
    x, z = fn.params
    assert x.unpacked and not z.unpacked


# ------------------------------------------------------------------------------------ specialize


def test_conditions_become_probabilities_and_constants_are_lifted():
    w = ir.Name("w", CONSTANT)  # a shared tensor (a global)
    hard_test = ir.Compare(LT, name("n", HARD), const(3), HARD)
    test = ir.BoolOp(registry.BOOL[ast.And], (hard_test, name("x")), HARD)
    fn = run_passes(
        function(
            assign("n", const(1)),
            assign("y", ir.BinOp(ADD, name("x"), w, HARD)),
            ir.If(test, (assign("y", const(0.0)),), (), False, (), 3),
            ir.Return(name("y"), 4),
        )
    )
    add, branch = fn.body[1].value, fn.body[2]
    assert add.right == ir.Lift(w)
    # `hard and relaxed`: Python's short circuit on the hard side, the value's truth on the other
    assert isinstance(branch.test, ir.IfExp) and isinstance(branch.test.body, ir.Truth)


def test_min_of_relaxed_values_is_soft_and_a_hard_value_written_to_a_relaxed_name_is_lifted():
    fn = run_passes(
        function(
            assign("m", builtin("min", name("x"), const(0.0))),
            assign("m", const(2.0)),
            ir.Return(name("m"), 3),
        )
    )
    assert isinstance(fn.body[0].value, ir.MinMax)
    assert fn.body[1].value == ir.Lift(const(2.0), "batch")


# ------------------------------------------------------------------------------------ blend sets


def test_an_if_blends_names_defined_before_or_in_both_branches():
    fn = run_passes(
        function(
            assign("a", name("x")),
            relaxed_if(
                X_GT_0,
                [assign("a", const(1.0)), assign("b", const(1.0)), assign("c", const(1.0))],
                [assign("b", const(2.0))],
            ),
            ir.Return(ir.Tuple_((name("a"), name("b")), HARD), 5),
        )
    )
    branch = fn.body[1]
    blended = {n.id for n in branch.blended} | {f.var.id for f in branch.fused}
    assert blended == {"a", "b"} and branch.new == ("b",)  # `c` is not blended: never read


def test_a_while_carries_names_defined_before_but_not_loop_counters():
    body = (
        ir.For(
            name("i", HARD), RANGE_3, (assign("s", ir.BinOp(ADD, name("s"), name("x"), HARD)),), 3
        ),
        assign("x", ir.BinOp(ADD, name("x"), const(1.0), HARD), line=4),
    )
    fn = run_passes(
        function(
            assign("s", const(0.0)), assign("i", const(0)), ir.While(X_GT_0, body, False, (), 2)
        )
    )
    assert {n.id for n in fn.body[2].carried} == {"s", "x"}


# ------------------------------------------------------------------------------------ stopped


def test_a_counter_read_after_a_relaxed_while_reads_its_relaxed_twin():
    from avcompile.passes import leave_per_example

    step = ir.BinOp(ADD, name("i", HARD), const(1), HARD)
    body = (
        assign("s", ir.Index(name("x"), name("i", HARD), HARD), line=3),  # `i` is an index: hard
        assign(name("i", HARD), step, line=4),
    )
    fn = infer_kinds(
        function(
            assign(name("i", HARD), const(0)),
            assign("s", const(0.0)),
            ir.While(X_GT_0, body, False, (), 2),
            ir.Return(ir.Tuple_((name("i", HARD), name("s")), HARD), 5),
        )
    )
    out = leave_per_example(fn)
    ((hard_name, twin),) = out.body[2].stopped
    assert hard_name == "i" and out.body[3].value.elts[0] == ir.Name(twin, RELAXED)


# ------------------------------------------------------------------------------------ infinity


def test_only_blends_that_may_see_an_infinite_literal_are_marked():
    from avcompile.passes import mark_infinities

    inf = ir.Attr(ir.Name("math", HARD), "inf", HARD)
    fn = run_passes(
        function(
            assign("best", inf),
            assign("other", const(0.0)),
            relaxed_if(X_GT_0, [assign("best", name("x")), assign("other", name("x"))]),
            ir.Return(ir.Tuple_((name("best"), name("other")), HARD), 4),
        )
    )
    branch = fn.body[2]
    assert branch.infinite == ("best",)
    plain = run_passes(function(relaxed_if(X_GT_0, [assign("x", const(1.0))], blended=["x"])))
    assert mark_infinities(plain) is plain

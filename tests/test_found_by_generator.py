"""Minimal programs of the defects that tests/test_generated_programs.py found, one test each."""

import math

import pytest
import torch

from avcompile import CompileError, relax

ROWS = [[-1.0, 2.0, 0.5], [1.0, -1.0, 3.0], [0.5, 0.25, -2.0], [-1.0, -2.0, 3.0]]


def assert_hard_equals_python(fn, rows=ROWS):
    """``relax(fn, hard=True)`` gives, on every example of a batch, what ``fn`` gives on it."""
    x = torch.tensor(rows, dtype=torch.float64)
    got = relax(fn, hard=True)(x.clone())
    for b, row in enumerate(rows):
        want = fn(list(row))
        value = got[b].tolist() if isinstance(got, torch.Tensor) else got
        if isinstance(want, float) and math.isinf(want):
            assert value == want, (b, row, value)
        else:
            assert value == pytest.approx(want, rel=1e-9), (b, row, value)


# ---------------------------------------------------------------------------------------------
# Open defects: each test fails today; remove its mark when the compiler is fixed.


def argmin_value(a):
    m = 0
    for j in range(1, len(a)):
        if a[j] < a[m]:
            m = j
    return a[m]


def test_relaxed_integer_as_index():
    # fixed by relaxed integers (SEMANTICS 10): m is a distribution, a[m] its expectation
    assert_hard_equals_python(argmin_value)


def leading_negatives_over_one(x):
    k = 0
    while k < len(x) - 1 and x[k] < 0.0:
        k += 1
    s = 0.0
    if k > 1:
        s = 1.0
    return s


def test_relaxed_integer_compared():
    # fixed by relaxed integers: after the loop k is a distribution, `k > 1` read off it
    assert_hard_equals_python(leading_negatives_over_one)


def halvings(x):
    w = x[0] * x[0] + 1.0
    c = 0.0
    while True:
        w = w / 2.0
        c = c + 1.0
        if w <= 1.0:
            break
    return c


def test_relaxed_break():
    # fixed by early exits (SEMANTICS 11): the break sets its state aside with its mass
    assert_hard_equals_python(halvings)


def squares_when_large(x):
    s = x[0]
    if x[0] > 2.0:
        for i in range(12):  # noqa: B007
            s = s * s
    return s


@pytest.mark.xfail(
    strict=True,
    raises=AssertionError,
    reason="both branches run: the branch not taken (p = 0) overflows to inf and the blend "
    "gives 0 * inf = NaN, in hard mode too, where Python returns x[0] (feature product)",
)
def test_overflow_in_a_branch_not_taken():
    assert_hard_equals_python(squares_when_large, rows=[[1.5, 0.0], [-1.5, 1.0], [0.5, 2.0]])


# ---------------------------------------------------------------------------------------------
# Fixed since the generator found them (the commit that fixed each is named): regressions.


def pick_larger(v, w):
    r = w
    if v > w:
        r = v
    return r


def calls_helper_with_branch(x):
    return pick_larger(x[0], x[1]) * 0.5


def test_helper_with_relaxed_if_runs_per_example():
    # c505732: the helper got the whole batch; `if v > w` raised "Boolean value ... ambiguous".
    assert_hard_equals_python(calls_helper_with_branch)


def total(a):
    t = 0.0
    for i in range(len(a)):
        t = t + a[i]
    return t


def calls_helper_with_array(x):
    return total(x)


def test_helper_with_array_sums_one_example():
    # c505732: len(a) was the batch size and the sum mixed examples.
    assert_hard_equals_python(calls_helper_with_array)


def first(a):
    return a[0]


def writes_after_helper_reads(x):
    s = first(x)
    x[1] = s
    return x


def test_write_after_passing_the_array_to_a_helper():
    # 85989df: refused as a write through an alias of the helper's parameter.
    assert_hard_equals_python(writes_after_helper_reads)


def inf_sentinel_min(x):
    best = math.inf
    for i in range(len(x)):
        if x[i] < best:
            best = x[i]
    return best


def test_inf_sentinel_is_not_nan():
    # ae6799b: the blend computed 0 * inf = NaN, in hard mode too.
    assert_hard_equals_python(inf_sentinel_min)


def sentinel_with_quotient(x):
    best = math.inf
    if x[0] > 0.0:
        best = x[0] / (x[1] * x[1] + 1.0)
    return best


def test_sentinel_kept_beside_a_guarded_division():
    # 85989df: blend_finite took the sentinel for a value not taken and kept the quotient.
    assert_hard_equals_python(sentinel_with_quotient)


def leading_negatives(x):
    k = 0
    while k < len(x) - 1 and x[k] < 0.0:
        k += 1
    return 1.0 * k


def test_counter_after_relaxed_while_is_per_example():
    # 6ad0be1: the counter took the value of the example that ran longest, for every example
    # (found by the generator run against a9be0fb).
    assert_hard_equals_python(leading_negatives)


def same_number_both_arms(x):
    x[1] = 3.0 if x[0] > 0.0 else 3.0
    return x


def test_conditional_expression_with_one_number_in_both_arms():
    # 949af4b: the blend of one object with itself was a Python float: a crash at the call.
    assert_hard_equals_python(same_number_both_arms)


def for_each_sees_writes_under_relaxed_if(x):
    s = 0.0
    for v in x:
        if x[0] < 0.0:
            x[-1] = 5.0
        s = v
    return s


def test_for_each_sees_writes_under_relaxed_if():
    # 85989df: the loop iterated over the list x was at its start; the blend rebinds x.
    assert_hard_equals_python(for_each_sees_writes_under_relaxed_if)


def counter_read_after_loop_in_branch(x):
    s = 0.0
    if x[0] > 0.0:
        for i in range(len(x)):
            x[i] = 1.0
        s = s + i
    return s


def test_counter_read_after_loop_in_branch():
    # 85989df: `s = s + i` was fused after the branch, where i does not exist (NameError).
    assert_hard_equals_python(counter_read_after_loop_in_branch)


def write_through_alias(x):
    z = x
    z[0] = 5.0
    return x


def test_write_through_alias_is_python_or_refused():
    # 949af4b: the write did not reach x (Python lists alias); it is refused now, as designed.
    try:
        relax(write_through_alias, hard=True)
    except CompileError as err:
        assert "shares its value" in err.msg
        return
    assert_hard_equals_python(write_through_alias)


def counter_after_loop_in_branch_in_loop(x):
    s = 0.0
    for k in range(2):  # noqa: B007 (the outer loop is the point)
        if x[0] > 0.0:
            for i in range(len(x)):  # noqa: B007 (i is read after the loop)
                s = s + 1.0
            s = s + i
    return s


def test_counter_after_loop_in_branch_inside_a_loop():
    # 12ad5d9: refused as "assigned only in the if branch" (liveness took the for loop's
    # zero-iteration path); without the outer loop the same branch compiled.
    assert_hard_equals_python(counter_after_loop_in_branch_in_loop)


def counter_after_loop_in_relaxed_while(x):
    w = x[0] * x[0] + 1.0
    s = 0.0
    while w > 1.0:
        w = w / 2.0
        for i in range(len(x)):  # noqa: B007 (i is read after the loop)
            s = s + 1.0
        s = s + i
    return s


def test_counter_after_loop_in_relaxed_while():
    # 12ad5d9: refused as "first assigned inside a relaxed while and read where it may have no
    # value"; in a hard loop the same body compiled.
    assert_hard_equals_python(counter_after_loop_in_relaxed_while)

"""One test per rejected construct: the message names it, says what to write instead, and points
at the user's file and line with a caret; and the checks made when a module is called."""

import inspect
import traceback
import warnings

import pytest
import torch

from avcompile import CompileError, relax


def marked_line(fn):
    """The file line of ``fn`` that carries the comment ``# error here``."""
    lines, first = inspect.getsourcelines(fn)
    for k, line in enumerate(lines):
        if "# error here" in line:
            return first + k
    raise AssertionError("no marked line")


def compile_error(fn, **options):
    with pytest.raises(CompileError) as info:
        relax(fn, **options)
    err = info.value
    assert isinstance(err, SyntaxError)
    assert err.filename == __file__
    assert err.lineno == marked_line(fn)
    assert (
        err.text.strip()
        == inspect.getsource(fn).splitlines()[err.lineno - inspect.getsourcelines(fn)[1]].strip()
    )
    printed = "".join(traceback.format_exception_only(type(err), err))
    assert "^" in printed and f"line {err.lineno}" in printed
    return str(err.msg)


def f_hard_in_branch(x):
    n = len(x)
    if x[0] > 0:
        n = n - 1
    for i in range(n):  # error here
        x[i] = x[i] + 1
    return x


def f_one_branch(x):
    if x[0] > 0:  # error here
        y = x[0]
    return y


def f_one_branch_read_next_iteration(x):
    s = 0.0
    for i in range(len(x)):
        if i > 0:
            s = s + y  # noqa: F821 (`y` of the iteration before: unset where the branch was not taken)
        if x[i] > 0:  # error here
            y = x[i]  # noqa: F841
    return s


def f_first_assigned_in_relaxed_while(x):
    while x < 3:  # error here
        x = x + 1
        t = x * 2
    return t


def f_relaxed_index(x):
    k = x[0]
    return x[k]  # error here


def f_yield(x):
    yield x  # error here


def f_try(x):
    try:  # error here
        y = x + 1
    except ValueError:
        y = x
    return y


def f_with(x):
    with torch.no_grad():  # error here
        y = x + 1
    return y


def f_global(x):
    global SOME_NAME  # error here
    SOME_NAME = 1
    return x


def f_nonlocal_outer():
    z = 0

    def inner(x):
        nonlocal z  # error here
        z = 1
        return x

    return inner


@pytest.mark.parametrize(
    "fn, words, fix",
    [
        (
            f_hard_in_branch,
            "a relaxed integer (`n`) is used as a bound of `range`",
            "Loop to the largest bound",
        ),
        (f_one_branch, "`y` is assigned only in the `if` branch", "Give `y` a value before"),
        (
            f_one_branch_read_next_iteration,
            "`y` is assigned only in the `if` branch",
            "Give `y` a value before",
        ),
        (
            f_first_assigned_in_relaxed_while,
            "`t` is first assigned inside a relaxed `while`",
            "Give `t` a value before the loop",
        ),
        (f_relaxed_index, "a relaxed value is used as an index", "Index with hard values"),
        (f_yield, "`yield` is not supported", "return them at the end"),
        (f_try, "`try` is not supported", "check the inputs"),
        (f_with, "`with` is not supported", "call the module inside it"),
        (f_global, "`global` is not supported", "return the value instead"),
        (f_nonlocal_outer(), "`nonlocal` is not supported", "return the value instead"),
    ],
)
def test_rejected_construct(fn, words, fix):
    message = compile_error(fn)
    assert words in message
    assert fix in message


def test_liveness_error_names_the_line_that_reads():
    lines, first = inspect.getsourcelines(f_one_branch_read_next_iteration)
    read = first + next(k for k, line in enumerate(lines) if "s = s + y" in line)
    assert f"(line {read})" in compile_error(f_one_branch_read_next_iteration)


def test_function_without_source():
    namespace = {}
    exec("def f(x):\n    return x\n", namespace)
    with pytest.raises(TypeError, match="cannot read the source of f"):
        relax(namespace["f"])


@relax
def pair(x, y):
    return x + y


def test_missing_argument_is_named():
    with pytest.raises(TypeError, match="'y'"):
        pair(torch.zeros(2, 3))


def test_too_many_arguments():
    with pytest.raises(TypeError, match="positional argument"):
        pair(torch.zeros(2), torch.zeros(2), torch.zeros(2))


def test_non_tensor_argument_is_named():
    with pytest.raises(TypeError, match="argument 'y' must be a torch.Tensor"):
        pair(torch.zeros(2, 3), [1.0, 2.0, 3.0])


def test_batch_sizes_must_agree():
    with pytest.raises(ValueError, match="argument 'y' has batch size 3, but 'x' has batch size 2"):
        pair(torch.zeros(2, 3), torch.zeros(3, 3))


def test_scalar_tensor_has_no_batch():
    with pytest.raises(ValueError, match="argument 'x' is a 0-dimensional tensor"):
        pair(torch.tensor(1.0), torch.zeros(3))


def test_unknown_static_name():
    def f(x, k):
        return x

    with pytest.raises(TypeError, match="not parameters"):
        relax(f, static=("j",))


def test_truth_test_outside_unit_interval():
    def f(x):
        y = 0.0
        if x:
            y = 1.0
        return y

    with pytest.raises(ValueError, match=r"must lie in \[0, 1\]"):
        relax(f)(torch.tensor([0.5, 2.0]))


def f_dict(x):
    table = {"a": 1}  # error here
    return x * table["a"]


def test_a_construct_outside_the_allowlist_is_refused_at_its_line():
    assert "a dict display" in compile_error(f_dict)


def test_a_bug_of_the_compiler_is_reported_at_the_users_line(monkeypatch):
    from avcompile.errors import InternalError
    from avcompile.translate import _Translator

    def broken(self, node):
        raise ZeroDivisionError("broken on purpose")

    monkeypatch.setattr(_Translator, "expr_BinOp", broken)

    def f(x):
        y = x * 2.0  # error here
        return y

    message = compile_error(f)
    assert "internal error of avcompile" in message and "ZeroDivisionError" in message
    with pytest.raises(InternalError) as info:
        relax(f)
    assert isinstance(info.value.__cause__, ZeroDivisionError)


SCALE = 2.0


def scaled(x):
    return x * SCALE


def test_a_free_name_whose_kind_changed_is_an_error(monkeypatch):
    module = relax(scaled)
    assert torch.equal(module(torch.ones(2, 3)), torch.full((2, 3), 2.0))
    # A tensor now: read as a shared tensor it would broadcast along the batch dimension.
    monkeypatch.setitem(globals(), "SCALE", torch.tensor([1.0, 2.0, 3.0]))
    with pytest.raises(TypeError, match=r"free name `SCALE` was not a tensor \(float\)"):
        module(torch.ones(2, 3))
    monkeypatch.setitem(globals(), "SCALE", 3.0)  # the same kind again: fine
    assert torch.equal(module(torch.ones(2, 3)), torch.full((2, 3), 3.0))


def test_a_bug_of_the_emitter_is_reported_at_the_users_line(monkeypatch):
    from avcompile.emit import _Emitter

    def broken(self, e):
        raise KeyError("broken on purpose")

    monkeypatch.setattr(_Emitter, "ex_BinOp", broken)

    def f(x):
        y = x + 1.0  # error here
        return y

    assert "internal error of avcompile" in compile_error(f)


def f_range_after_relaxed_while(x):
    i = 0
    while i < len(x) and x[i] < 0:
        i += 1
    y = x[0]
    for k in range(i):  # error here
        y = y + x[k]
    return y


def f_exit_and_assignment_both_reach(x):
    i = 0
    if len(x) > 2:
        while i < len(x) and x[i] < 0:
            i += 1
    return i * 1.0  # error here


@pytest.mark.parametrize(
    "fn, words",
    [
        (f_range_after_relaxed_while, "used as a bound of `range` here"),
        (f_exit_and_assignment_both_reach, "the loop's exit and another assignment may both"),
    ],
)
def test_a_hard_value_a_relaxed_while_leaves_per_example(fn, words):
    # SEMANTICS 2, 10: after a relaxed `while`, a counter it changed differs per example: a
    # relaxed integer, which cannot bound a loop; nor can a read mix it with another assignment.
    message = compile_error(fn)
    assert "is changed inside the relaxed `while`" in message and words in message


def h_returns_in_loop(v):
    for k in range(3):
        if k > 1:
            return v * k
    return v


def calls_h_returns_in_loop(x):
    return h_returns_in_loop(x[0])


def h_with_try(v):
    try:  # the helper's line
        return v
    except ValueError:
        return v


def calls_h_with_try(x):
    return h_with_try(x[0])


def h_recursive(v, depth: int):
    if depth == 0:
        return v
    return h_recursive(v, depth - 1)


def calls_h_recursive(x):
    return h_recursive(x[0], 3)


def test_helper_errors_point_into_the_helper():
    with pytest.raises(CompileError, match="`try` is not supported") as info:
        relax(calls_h_with_try)
    lines, first = inspect.getsourcelines(h_with_try)
    assert info.value.filename == __file__
    assert info.value.lineno == first + next(k for k, t in enumerate(lines) if "helper's line" in t)
    x = torch.randn(3, 2)
    assert torch.equal(relax(calls_h_recursive)(x), x[:, 0])  # recursion of hard depth
    # a `return` inside a helper's loop: the helper is compiled as a function of its own
    assert torch.equal(relax(calls_h_returns_in_loop)(x), x[:, 0] * 2)


def f_continue_changes_hard(x):
    k = 0
    for i in range(len(x)):
        if x[i] > 0:
            continue
        k = k + 1  # error here
        x[k] = 0.0
    return x


def f_first_assigned_in_exit_loop(x):
    for i in range(len(x)):  # error here
        y = x[i] * 2.0
        if x[i] > 0:
            break
    return y


def f_per_example_into_a_hard_name(x):
    j = 0
    while j < len(x) - 1 and x[j] > 0:
        j += 1
    i = 0
    while i < len(x) - 1 and x[i] < 0:
        i += 1
    i = j  # error here
    return x[i]


def f_no_final_return(x):
    if x[0] > 0:
        return x
    x[0] = 1.0  # error here


@pytest.mark.parametrize(
    "fn, words",
    [
        (
            f_continue_changes_hard,
            "hard variable `k` is changed in a loop with a relaxed `continue`",
        ),
        (f_no_final_return, "must end with a `return`"),
        (f_per_example_into_a_hard_name, "it is assigned here to `i`, which a relaxed loop needs"),
        (f_first_assigned_in_exit_loop, "`y` is first assigned inside a loop that examples leave"),
    ],
)
def test_early_exits_that_cannot_be_relaxed(fn, words):
    message = compile_error(fn)
    assert words in message


def test_a_tensor_without_the_dimensions_the_function_reads_is_refused_at_the_call():
    from src_examples.bubble_sort import bubble_sort

    with pytest.raises(ValueError, match=r"argument 'array' has shape \(5,\).*unsqueeze\(0\)"):
        bubble_sort(torch.randn(5))  # one example without its batch dimension
    with pytest.raises(ValueError, match="empty batch"):
        bubble_sort(torch.randn(0, 5))


def test_integer_tensors_are_made_floating():
    from src_examples.bubble_sort import bubble_sort

    ints = torch.tensor([[3, 1, 2], [1, 2, 3]])
    hard = relax(bubble_sort.__wrapped__, hard=True)
    sorted_ints, swaps = hard(ints)
    assert sorted_ints.dtype == torch.get_default_dtype()
    assert sorted_ints.tolist() == [[1, 2, 3], [1, 2, 3]] and swaps.tolist() == [2, 0]


def slow_while(x):
    while x < 100.0:
        x = x + 1.0
    return x


def test_a_relaxed_while_cut_off_at_max_iter_warns_once_naming_its_line():
    from avcompile.runtime import MaxIterWarning

    module = relax(slow_while, max_iter=3)
    line = inspect.getsourcelines(slow_while)[1] + 1
    with pytest.warns(MaxIterWarning, match=rf"test_errors.py:{line} was cut off after max_iter=3"):
        module(torch.tensor([0.0, 1.0]))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        module(torch.tensor([0.0, 1.0]))  # once per loop
        relax(slow_while)(torch.tensor([99.5, 200.0]))  # no cut-off: no warning


def f_alias_then_write(x):
    y = x
    y[0] = 5.0  # error here
    return x


def test_an_element_write_through_an_alias_is_refused():
    # Python's lists alias: `y = x; y[0] = 5.0` changes x too. avcompile's values never share.
    assert "shares its value with `x`" in compile_error(f_alias_then_write)

"""The Python researchers write: comprehensions, generator expressions, recursion, per-example
linear algebra, hard defaults and sizes, tuples and lists of relaxed values.

The registry programs of ``programs.PYTHON_CONSTRUCTS`` already meet hard mode against Python
(test_hard_mode.py), batch independence and, for two of them, AlgoVision (test_conformance.py).
Here: their soft values and gradients, their approach to Python as beta grows, one test per
construct that stays unsupported, and the README's list of supported Python, line by line.
"""

import importlib.util
import inspect
import re
import sys
import traceback
from pathlib import Path

import pytest
import torch
from programs import BY_NAME, PYTHON_CONSTRUCTS, as_tuple, gaps_to_python

from avcompile import CompileError, relax
from avcompile.parse import NoSourceError

ROOT = Path(__file__).resolve().parents[1]


def _inputs(program, n, seed=3):
    generator = torch.Generator().manual_seed(seed)
    return program.random_inputs(3, n, generator)


@pytest.mark.parametrize("program", PYTHON_CONSTRUCTS, ids=lambda p: p.name)
def test_soft_values_and_gradients_are_finite(program):
    inputs = tuple(x.requires_grad_() for x in _inputs(program, program.n_range[1]))
    outputs = as_tuple(relax(program.fn, beta=2.0)(*inputs))
    assert all(torch.isfinite(out).all() for out in outputs), program.name
    total = sum(out.sum() for out in outputs if out.requires_grad)
    grads = torch.autograd.grad(total, inputs, allow_unused=True)
    assert any(g is not None and g.abs().sum() > 0 for g in grads), program.name
    assert all(g is None or torch.isfinite(g).all() for g in grads), program.name


@pytest.mark.parametrize(
    "name",
    [
        "edit_distance_of_lists",
        "generator_reductions",
        "divide_and_conquer_max",
        "merge_sort_ranges",
        "per_example_linear_algebra",
        "tuples_of_relaxed_values",
    ],
)
def test_gradcheck(name):
    program = BY_NAME[name]
    generator = torch.Generator().manual_seed(5)
    inputs = program.separated_inputs(2, 4, 0.3, generator, dtype=torch.float64)
    inputs = tuple(x.requires_grad_() for x in inputs)
    module = relax(program.fn, beta=2.0)
    assert torch.autograd.gradcheck(module, inputs, eps=1e-6, atol=1e-6)


# Programs whose soft result does not depend on beta (their comparisons all decide hard values,
# or they have none): they equal Python at every beta.
_BETA_FREE = {"comprehensions_of_values"}


@pytest.mark.parametrize("program", PYTHON_CONSTRUCTS, ids=lambda p: p.name)
def test_soft_approaches_hard_as_beta_grows(program):
    gaps = gaps_to_python(program, (3.0, 10.0, 3000.0), n=4, gap=0.3, seed=6)
    assert gaps[-1] < 1e-3, (program.name, gaps)
    if program.name not in _BETA_FREE:
        assert gaps[0] > gaps[1] > gaps[2], (program.name, gaps)


# ------------------------------------------------------------------------------ unsupported


def marked_line(fn):
    """The file line of ``fn`` that carries the comment ``# error here``."""
    lines, first = inspect.getsourcelines(fn)
    return first + next(k for k, line in enumerate(lines) if "# error here" in line)


def compile_error(fn, at=None):
    """The message of the ``CompileError`` that compiling ``fn`` raises, which must point at the
    line marked ``# error here`` in ``at`` (``fn`` itself by default), with a caret."""
    with pytest.raises(CompileError) as info:
        relax(fn)
    err = info.value
    assert err.filename == inspect.getsourcefile(at or fn)
    assert err.lineno == marked_line(at or fn), (err.lineno, str(err))
    printed = "".join(traceback.format_exception_only(type(err), err))
    assert "^" in printed and f"line {err.lineno}" in printed
    return str(err.msg)


def f_set_comprehension(x):
    s = {v for v in x}  # error here
    return s


def f_dict_comprehension(x):
    d = {i: x[i] for i in range(len(x))}  # error here
    return d[0]


def f_relaxed_comprehension_filter(x):
    ys = [v for v in x if v > 0.0]  # error here
    return ys[0]


def f_append_in_relaxed_if(x):
    ys = []
    for v in x:
        if v > 0.0:
            ys.append(v)  # error here
    return ys[0]


def f_comprehension_in_while_test(x):
    k = 0
    while k < sum([1 for v in x]):  # error here
        k = k + 1
    return x[0] * k


def f_pop_of_relaxed_values(x):
    ys = [x[0], x[1]]
    ys.pop()  # error here
    return ys[0]


def f_min_with_default(x):
    return min((v for v in x), default=0.0)  # error here


def f_assert_on_relaxed_value(x):
    assert x[0] > 0.0  # error here
    return x[0]


def f_raise_in_relaxed_if(x):
    if x[0] > 0.0:
        raise ValueError("positive")  # error here
    return x[0]


def _countdown(v):
    if v < 0.0:
        return v
    return _countdown(v - 1.0)  # error here


def f_relaxed_depth(x):
    return _countdown(x[0])


def _halve(v, k: int):
    if v > 1.0:
        return _halve(v / 2.0, k + 1)  # error here
    return v


def f_relaxed_depth_under_if(x):
    return _halve(x[0], 0)


def _rebinds_and_writes(a, lo):
    if lo < len(a):
        a = a[:]
        a[lo] = 0.0  # error here
        _rebinds_and_writes(a, lo + 1)


def f_rebinds_and_writes(x):
    _rebinds_and_writes(x, 0)
    return x


def f_nested_recursion(x):
    def count(k):
        if k == 0:
            return 0.0
        return 1.0 + count(k - 1)  # error here

    return x[0] * count(3)


@pytest.mark.parametrize(
    "fn, at, words, fix",
    [
        (f_set_comprehension, None, "a set comprehension is not supported", "list comprehension"),
        (f_dict_comprehension, None, "a dict comprehension is not supported", "indexed by hard"),
        (
            f_relaxed_comprehension_filter,
            None,
            "a list grown inside a relaxed `if`",
            "put the condition into the value",
        ),
        (f_append_in_relaxed_if, None, "a list grown inside a relaxed `if`", "full length"),
        (
            f_comprehension_in_while_test,
            None,
            "a comprehension in the condition of a `while`",
            "assign its result to a variable",
        ),
        (f_pop_of_relaxed_values, None, "`.pop()` on relaxed values", "as a value instead"),
        (f_min_with_default, None, "`min` with keyword arguments", "never empty"),
        (f_assert_on_relaxed_value, None, "`assert` on a relaxed value", "Check the inputs"),
        (f_raise_in_relaxed_if, None, "`raise` inside a relaxed `if`", "Move it out"),
        (f_relaxed_depth, _countdown, "stands under a relaxed condition", "hard values"),
        (f_relaxed_depth_under_if, _halve, "stands under a relaxed condition", "hard values"),
        (f_rebinds_and_writes, _rebinds_and_writes, "writes elements of its parameter", "in place"),
        (f_nested_recursion, None, "calls itself", "define a recursive helper at module level"),
    ],
    ids=lambda v: v.__name__ if callable(v) else None,
)
def test_unsupported_construct(fn, at, words, fix):
    message = compile_error(fn, at)
    assert words in message, message
    assert fix in message, message


def test_a_function_without_source_says_what_works():
    namespace = {}
    exec("def typed_at_a_prompt(x):\n    return x * 2.0\n", namespace)
    with pytest.raises(NoSourceError, match="IPython or a Jupyter notebook"):
        relax(namespace["typed_at_a_prompt"])


def test_hard_parameters_are_passed_as_python_values():
    program = BY_NAME["sliding_max"]
    x = torch.tensor([[1.0, 3.0, 2.0, 5.0]])
    module = relax(program.fn, hard=True)
    assert module(x, 3).tolist() == [[3.0, 5.0]]
    assert module(x).tolist() == [[3.0, 3.0, 5.0]]  # the default, k=2
    with pytest.raises(AssertionError, match="shorter than a window"):
        module(x, 5)


def test_recursion_is_a_function_the_generated_code_calls():
    code = relax(BY_NAME["divide_and_conquer_max"].fn).code
    assert re.search(r"def (largest\w*)\(.*\):[\s\S]*\1\(", code), code


# ------------------------------------------------------------------------------ the README's list


def _readme_table():
    text = (ROOT / "README.md").read_text()
    section = text.split("## The Python a relaxed function may contain", 1)[1].split("\n## ", 1)[0]
    rows = re.findall(r"^\| (.+?) \| `(.+?)` \| .+ \|$", section, flags=re.M)
    helpers = re.search(r"```python\n(.*?)```", section, flags=re.S).group(1)
    return [(construct, line) for construct, line in rows if construct != "Construct"], helpers


ROWS, HELPERS = _readme_table()


def row_function(line, tmp_path, k, helpers=HELPERS, stem="readme_row"):
    """``f(x, k=2)`` with a table's ``line`` in it, after the table's ``helpers``, in a file of
    its own (relax reads it)."""
    source = (
        "import math\nimport torch\nimport avcompile\n\n"
        + helpers
        + f"\n\ndef f(x, k=2):\n    n = len(x)\n    y = 0.0\n    {line}\n    return y\n"
    )
    path = tmp_path / f"{stem}_{k}.py"
    path.write_text(source)
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[path.stem] = module
    spec.loader.exec_module(module)
    return module.f


def test_the_readme_lists_the_constructs_of_this_issue():
    listed = " ".join(construct for construct, _ in ROWS)
    for construct in ("comprehension", "generator", "recursion", "`@`", "defaults", "`assert`"):
        assert construct in listed, construct
    assert len(ROWS) >= 20


@pytest.mark.parametrize("k", range(len(ROWS)), ids=[c for c, _ in ROWS])
def test_each_construct_the_readme_lists_compiles_and_equals_python(k, tmp_path):
    construct, line = ROWS[k]
    fn = row_function(line, tmp_path, k)
    x = torch.tensor([[0.5, -1.25, 2.0, 0.75], [-0.5, 3.0, 1.5, -2.0]], dtype=torch.float64)
    got = relax(fn, hard=True)(x.clone())
    uses_torch = re.search(r"torch\.|\.size\(|\.numel\(|\.ndim|\.shape|@", line)
    for b in range(x.shape[0]):
        example = x[b].clone() if uses_torch else x[b].tolist()
        want = torch.as_tensor(fn(example), dtype=torch.float64)
        assert torch.allclose(got[b].double(), want, rtol=1e-12, atol=1e-12), (construct, b)


def lists_built_in_each_branch(x):
    if x[0] > 0.0:
        ys = [v * 2.0 for v in x]
    else:
        ys = [v - 1.0 for v in x]
    return ys[1]


def list_length_by_condition(x):
    ys = [x[0]]
    if x[0] > 0.0:
        ys = [v for v in x]
    return ys[0]


def test_a_list_built_inside_a_relaxed_branch_is_blended_element_by_element():
    x = torch.tensor([[1.0, 2.0, 3.0], [-1.0, 5.0, 0.5]], dtype=torch.float64)
    got = relax(lists_built_in_each_branch, hard=True)(x)
    assert got.tolist() == [lists_built_in_each_branch(row.tolist()) for row in x]
    soft = relax(lists_built_in_each_branch, beta=1.0)(x)
    p = torch.sigmoid(x[:, 0])
    torch.testing.assert_close(soft, p * x[:, 1] * 2.0 + (1 - p) * (x[:, 1] - 1.0))


def test_a_list_whose_length_a_relaxed_condition_decides_is_an_error_at_the_call():
    module = relax(list_length_by_condition)
    with pytest.raises(ValueError, match="a list's length cannot depend on a relaxed condition"):
        module(torch.ones(2, 3))


def f_grows_a_shared_list(x):
    xs = [x[0]]
    ys = xs
    xs.append(x[1])  # error here
    return len(ys) * x[0]


def test_a_list_grown_under_one_of_two_names_is_refused():
    message = compile_error(f_grows_a_shared_list)
    assert "shares its value with `ys`" in message and "list(" in message

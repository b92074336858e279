"""The generated module as a PyTorch user meets it: batching, dtype and device, hyperparameters,
value semantics, and the Python subset it accepts."""

import ast
import inspect
import math
import os
import pickle

import pytest
import torch

import avcompile
from avcompile import relax, runtime
from src_examples.bubble_sort import bubble_sort

SCALE = torch.tensor([1.0, 2.0, 3.0])
net = torch.nn.Linear(3, 3)


def test_caller_tensor_is_not_changed():
    x = torch.randn(4, 6)
    before = x.clone()
    bubble_sort(x)
    assert torch.equal(x, before)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.bfloat16])
def test_outputs_follow_input_dtype(dtype):
    x = torch.randn(3, 5).to(dtype)
    array, loss = bubble_sort(x)
    assert array.dtype == dtype and loss.dtype == dtype
    assert array.shape == (3, 5) and loss.shape == (3,)
    assert torch.isfinite(array.float()).all()


def test_float32_matches_float64():
    x = torch.randn(8, 7, dtype=torch.float64)
    a64, l64 = bubble_sort(x)
    a32, l32 = bubble_sort(x.float())
    assert torch.allclose(a32.double(), a64, atol=1e-5)
    assert torch.allclose(l32.double(), l64, atol=1e-4)


def test_outputs_and_body_constants_follow_input_device():
    # No accelerator here: the meta device stands in for one (it has no data, so no `while`).
    def f(x):
        counts = torch.zeros(len(x))
        for i in range(len(x)):
            if x[i] > 0:
                counts[i] = 1.0
        return counts, x.sum()

    device = torch.device("meta")
    counts, total = relax(f)(torch.randn(3, 4, device=device, dtype=torch.float64))
    assert counts.device == device and total.device == device
    assert counts.dtype == torch.float64 and counts.shape == (3, 4)


def test_hyperparameters_change_without_recompiling():
    module = relax(bubble_sort.__wrapped__, beta=1.0)
    forward = type(module).forward
    x = torch.randn(5, 6)
    soft = module(x)[1]
    module.beta = 100.0
    sharp = module(x)[1]
    module.hard = True
    hard = module(x)[1]
    assert type(module).forward is forward
    assert not torch.allclose(soft, sharp)
    assert torch.equal(hard, hard.round())
    assert (sharp - hard).abs().max() < (soft - hard).abs().max()


def test_bare_decorator_and_defaults():
    def f(x):
        return x * 2

    module = relax(f)
    assert isinstance(module, torch.nn.Module)
    assert module.beta == 10.0 and module.max_iter == 1024 and module.eps == 1e-5
    assert module.hard is False
    assert "def forward" in module.code


def test_value_semantics_of_reads():
    @relax(hard=True)
    def rotate(x):
        first = x[0]
        for i in range(len(x) - 1):
            x[i] = x[i + 1]
        x[len(x) - 1] = first
        return x

    x = torch.arange(12.0).reshape(2, 6)
    assert torch.equal(rotate(x), torch.roll(x, -1, dims=1))


def test_elif_chain_soft_value():
    def classify(x):
        if x < -1:
            y = -1.0
        elif x < 1:
            y = 0.0
        else:
            y = 1.0
        return y

    module = relax(classify, beta=3.0)
    x = torch.linspace(-3, 3, 13)
    p1 = torch.sigmoid(-(x + 1) * 3)
    p2 = torch.sigmoid(-(x - 1) * 3)
    expected = p1 * -1.0 + (1 - p1) * (p2 * 0.0 + (1 - p2) * 1.0)
    assert torch.allclose(module(x), expected, atol=1e-6)


def test_conditional_expression_and_bool_ops():
    def f(a, b):
        return a if a > b and not a > 2 or b < -1 else b

    module = relax(f, beta=2.0)
    a, b = torch.randn(7), torch.randn(7)
    p = torch.sigmoid((a - b) * 2) * (1 - torch.sigmoid((a - 2) * 2))
    q = torch.sigmoid(-(b + 1) * 2)
    p = p + q - p * q
    assert torch.allclose(module(a, b), p * a + (1 - p) * b, atol=1e-6)


def test_chained_comparison_is_a_conjunction():
    def inside(x):
        return 1.0 if 0 < x < 1 else 0.0

    module = relax(inside, beta=4.0)
    x = torch.linspace(-1, 2, 7)
    expected = torch.sigmoid(x * 4) * torch.sigmoid(-(x - 1) * 4)
    assert torch.allclose(module(x), expected, atol=1e-6)


def test_arithmetic_operators_hard_mode_equals_python():
    def arith(x):
        y = x[0] + x[1] * 2 - x[2] / 4
        y += x[1] ** 2
        z = -y % 3 + y // 2 + abs(x[2])
        return z

    module = relax(arith, hard=True)
    x = torch.randn(6, 3, dtype=torch.float64)
    got = module(x)
    for b in range(6):
        assert got[b].item() == pytest.approx(arith(x[b].tolist()), abs=1e-12)


def test_for_over_relaxed_tensor_and_shape():
    def total(x):
        s = 0.0
        for v in x:
            if v > 0:
                s = s + v
        return s, x.shape[0], len(x)

    module = relax(total, hard=True)
    x = torch.randn(5, 4)
    s, n, m = module(x)
    assert (n, m) == (4, 4)
    assert torch.allclose(s, x.clamp(min=0).sum(1))


def test_break_and_continue_under_hard_control():
    def first_three(x):
        s = 0.0
        for i in range(len(x)):
            if i == 1:
                continue
            if i > 3:
                break
            s = s + x[i]
        return s

    module = relax(first_three)
    x = torch.randn(3, 8)
    assert torch.allclose(module(x), x[:, 0] + x[:, 2] + x[:, 3])


def test_soft_min_max_and_abs():
    def f(a, b, c):
        return min(a, b, c), max(a, b), abs(a - b)

    module = relax(f, beta=2.0)
    a, b, c = torch.randn(3, 5).unbind(0)
    lo, hi, d = module(a, b, c)
    s = torch.stack([a, b, c], -1)
    assert torch.allclose(lo, (torch.softmax(-2 * s, -1) * s).sum(-1), atol=1e-6)
    s2 = torch.stack([a, b], -1)
    assert torch.allclose(hi, (torch.softmax(2 * s2, -1) * s2).sum(-1), atol=1e-6)
    assert torch.allclose(d, (a - b).abs())


def test_torch_functions_and_methods_act_per_example():
    def f(x):
        return x.sum(), torch.softmax(x, dim=-1), torch.exp(x), x.mean(dim=0)

    module = relax(f)
    x = torch.randn(4, 3, 5)
    s, sm, e, m = module(x)
    assert torch.allclose(s, x.sum((1, 2)))
    assert torch.allclose(sm, torch.softmax(x, -1))
    assert torch.allclose(e, x.exp())
    assert torch.allclose(m, x.mean(1))


def test_constants_closures_and_networks():
    offset = torch.tensor([0.5, -0.5, 0.0])

    def f(x):
        y = net(x) * SCALE + offset
        table = torch.zeros(2, 3)
        table[1] = y
        return table, SCALE

    module = relax(f)
    x = torch.randn(4, 3)
    table, scale = module(x)
    assert table.shape == (4, 2, 3)
    assert torch.allclose(table[:, 1], net(x) * SCALE + offset)
    assert torch.equal(table[:, 0], torch.zeros(4, 3))
    assert scale is SCALE


def test_hard_parameters_static_and_annotated():
    def f(x, k: int, mode):
        y = x * k
        if mode == "double":
            y = y * 2
        return y

    module = relax(f, static=("mode",))
    x = torch.randn(3)
    assert torch.allclose(module(x, 3, "double"), x * 6)
    assert torch.allclose(module(x, 3, "single"), x * 3)


def test_default_arguments_are_kept():
    def f(x, k: int = 2):
        return x * k

    module = relax(f)
    x = torch.randn(3)
    assert torch.allclose(module(x), 2 * x)
    assert torch.allclose(module(x, k=5), 5 * x)


def test_relaxed_while_expectation():
    def count(x):
        n = 0.0
        while x < 3:
            x = x + 1
            n = n + 1
        return n

    module = relax(count, beta=1.0)
    x = torch.tensor([0.0, 5.0])
    got = module(x)
    # the expectation over the stopping step, written out for the first example
    xs, n = 0.0, 0.0
    q = 1 / (1 + math.exp(-(3 - xs)))
    p_cur = q
    acc = (1 - q) * 0.0
    for _ in range(1024):
        if p_cur <= 1e-5:
            break
        xs, n = xs + 1, n + 1
        p_next = p_cur / (1 + math.exp(-(3 - xs)))
        acc += (p_cur - p_next) * n
        p_cur = p_next
    acc += p_cur * n
    assert got[0].item() == pytest.approx(acc, rel=1e-5)
    assert 0.0 <= got[1].item() < 0.2


def test_levenshtein_table_made_in_the_body():
    from src_examples.levenshtein import levenshtein

    edit_distance = levenshtein.__wrapped__  # builds its DP table with torch.zeros in the body
    module = relax(edit_distance, hard=True)
    a = torch.tensor([[1.0, 2.0, 3.0, 4.0], [1.0, 1.0, 1.0, 1.0]])
    b = torch.tensor([[1.0, 3.0, 4.0], [2.0, 2.0, 2.0]])
    assert module(a, b).tolist() == [1.0, 4.0]
    soft = relax(edit_distance, beta=5.0)(a.requires_grad_(), b)
    soft.sum().backward()
    assert torch.isfinite(a.grad).all() and a.grad.abs().sum() > 0


def test_gradients_flow_to_inputs():
    x = torch.randn(4, 6, requires_grad=True)
    _, loss = bubble_sort(x)
    loss.sum().backward()
    assert torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0


def test_slice_reads_and_writes():
    def f(x):
        d = torch.zeros(4, 4)
        d[1:3] = x[0:2]
        d[0, 0:2] = x[2, 1:3]
        return d, x[1:]

    module = relax(f)
    x = torch.randn(3, 4, 4)
    d, tail = module(x)
    expected = torch.zeros(3, 4, 4)
    expected[:, 1:3] = x[:, 0:2]
    expected[:, 0, 0:2] = x[:, 2, 1:3]
    assert torch.equal(d, expected) and torch.equal(tail, x[:, 1:])


def test_relaxing_a_module_again_keeps_its_hard_parameters():
    module = relax(lambda_free_scale, static=("k",))
    again = relax(module, hard=True)
    assert again.static == ("k",) and again.hard
    assert torch.equal(again(torch.tensor([1.0, -1.0]), 3), torch.tensor([3.0, -1.0]))


def lambda_free_scale(x, k):
    if x > 0:
        x = x * k
    return x


def test_torch_compile_gives_the_same_values_and_gradients():
    from src_examples.odd_even_sort import odd_even_sort

    torch.manual_seed(0)
    x = torch.randn(6, 4, dtype=torch.float64, requires_grad=True)
    # Without a relaxed while the whole module is one graph: fullgraph=True must trace it.
    compiled = torch.compile(odd_even_sort, backend="aot_eager", fullgraph=True)
    for got, want in zip(compiled(x), odd_even_sort(x)):
        torch.testing.assert_close(got, want)
    (grad,) = torch.autograd.grad(compiled(x)[1].square().sum(), x)
    (want,) = torch.autograd.grad(odd_even_sort(x)[1].square().sum(), x)
    torch.testing.assert_close(grad, want)
    # A relaxed while decides when to stop from the data, which is a graph break, not an error.
    compiled = torch.compile(bubble_sort, backend="eager")
    for got, want in zip(compiled(x), bubble_sort(x)):
        torch.testing.assert_close(got, want)


def test_deepcopy_and_pickle_keep_settings_and_a_learned_beta():
    import copy
    import io
    import pickle

    x = torch.randn(3, 5, dtype=torch.float64)
    sort = relax(bubble_sort.__wrapped__, beta=3.0, dist="cauchy")
    sort.beta = torch.nn.Parameter(torch.tensor(2.0, dtype=torch.float64))
    model = torch.nn.Sequential(sort)  # as a submodule of the user's model
    twin = copy.deepcopy(model)[0]
    assert twin.beta is not sort.beta and twin.free("torch") is torch
    torch.testing.assert_close(twin(x), sort(x))
    buffer = io.BytesIO()
    torch.save(model, buffer)
    buffer.seek(0)
    loaded = torch.load(buffer, weights_only=False)[0]
    assert (loaded.dist, loaded.beta.item(), loaded.code) == ("cauchy", 2.0, sort.code)
    assert [n for n, _ in loaded.named_parameters()] == ["beta"]
    torch.testing.assert_close(loaded(x), sort(x))

    @relax
    def local(x):
        return x

    with pytest.raises(TypeError, match="inside a function.*state_dict"):
        pickle.dumps(local)


def test_line_map_leads_each_generated_line_to_the_users():
    generated = bubble_sort.code.splitlines()
    here = next(n for n, text in enumerate(generated, 1) if "rx.gt(array[i], array[i + 1])" in text)
    lines, first = inspect.getsourcelines(bubble_sort.__wrapped__)
    user = first + next(k for k, text in enumerate(lines) if "if array[i] > array[i + 1]:" in text)
    assert bubble_sort.line_map[here] == user
    assert generated[0] == "import torch" and 1 not in bubble_sort.line_map
    assert not any(generated[n - 1].lstrip().startswith("#") for n in bubble_sort.line_map)
    # Made again, like the code, when a pickle is loaded.
    assert "line_map" not in bubble_sort.__reduce_ex__(2)[2]
    assert pickle.loads(pickle.dumps(bubble_sort)).line_map == bubble_sort.line_map


def _imports(path):
    with open(path, encoding="utf-8") as f:
        tree = ast.parse(f.read())
    imported = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            imported.append("." * node.level + (node.module or ""))
    return imported


def test_runtime_imports_nothing_of_the_compiler():
    # `import avcompile.runtime` runs avcompile/__init__.py, which imports the whole compiler, so
    # sys.modules cannot show it; runtime.py's own import statements (anywhere in it) do. It may
    # import the runtime's other part, relaxed integers, which imports nothing of avcompile.
    imported = _imports(runtime.__file__)
    ours = [name for name in imported if name.startswith(".") or name.split(".")[0] == "avcompile"]
    assert imported and set(ours) == {".relaxed_int"}
    part = os.path.join(os.path.dirname(runtime.__file__), "relaxed_int.py")
    assert not [
        name for name in _imports(part) if name.startswith(".") or name.split(".")[0] == "avcompile"
    ]


def inner_sort_step(x):
    if x[0] > x[1]:
        x[0], x[1] = x[1], x[0]
    return x


inner_relaxed = relax(inner_sort_step, beta=0.5)  # a soft module of its own


def outer_calls_relaxed_module(x):
    return inner_relaxed(x)


def test_a_relaxed_module_called_inside_runs_with_the_callers_relaxation():
    # SEMANTICS 8: compiled with the caller, per example, with the caller's beta and mode.
    x = torch.tensor([[2.0, 1.0], [1.0, 3.0]])
    hard = relax(outer_calls_relaxed_module, hard=True)(x)
    assert hard.tolist() == [[1.0, 2.0], [1.0, 3.0]]
    assert not torch.equal(inner_relaxed(x), hard)  # the inner module alone is soft (beta 0.5)
    sharp = relax(outer_calls_relaxed_module, beta=50.0)(x)
    assert torch.allclose(sharp, hard, atol=1e-6)


def per_example_total(v):
    return v.sum()


@avcompile.batched
def batch_total(v):
    return v.sum(-1)


def totals(x):
    return per_example_total(x), batch_total(x)


def test_helpers_run_per_example_unless_marked_batched():
    x = torch.tensor([[1.0, 2.0], [3.0, 4.0]])
    each, whole = relax(totals)(x)
    assert each.tolist() == [3.0, 7.0]  # compiled with the caller: one example at a time
    assert whole.tolist() == [3.0, 7.0]  # marked: the batch-first tensor, summed over its rows
    code = relax(totals).code
    assert "rt.batched_call(batch_total" in code and "free('per_example_total')" not in code


# ---------------------------------------------------------------------------------------------
# A PyTorch citizen: documentation, signature, hyperparameters checked, devices, TorchScript.


def scaled_where_positive(x, k: int = 2, *, shift=0.5):
    """Scale ``x`` by ``k`` where it is positive, then shift it."""
    if x > 0:
        x = x * k
    return x + shift


def test_signature_and_help_show_the_users_function():
    import pydoc

    module = relax(scaled_where_positive)
    expected = inspect.signature(scaled_where_positive)
    assert inspect.signature(module) == expected
    assert inspect.signature(module.forward) == expected  # what torch.export binds by
    text = pydoc.render_doc(module, renderer=pydoc.plaintext)
    assert "scaled_where_positive(x, k: int = 2, *, shift=0.5)" in text
    assert "Scale ``x`` by ``k`` where it is positive, then shift it." in text
    assert "torch.nn.Module" in text and "batch dimension on each relaxed argument (x)" in text
    x = torch.tensor([1.0, -1.0])
    assert module(x).tolist() == pytest.approx([2.5, -0.5], abs=1e-3)  # defaults still apply
    assert module(x, 3, shift=0.0).tolist() == pytest.approx([3.0, -1.0], abs=1e-3)


def test_signature_of_a_dsl_algorithm_names_its_inputs():
    from avcompile.dsl import GT, Algorithm, If, Input, Let, Output, Var

    algo = Algorithm(
        Input("x"),
        Input("t"),
        Var("y", torch.tensor(0.0)),
        If(GT("x", "t"), if_true=Let("y", "x")),
        Output("y"),
    )
    assert list(inspect.signature(algo).parameters) == ["x", "t"]


@pytest.mark.parametrize(
    "value, error",
    [
        (0, ValueError),
        (-1.5, ValueError),
        (math.nan, ValueError),
        ("5", TypeError),
        (None, TypeError),
        (True, TypeError),
        (torch.tensor([1.0, -1.0]), ValueError),
        (torch.tensor(True), TypeError),
    ],
)
def test_a_beta_that_cannot_be_one_is_refused_naming_it(value, error):
    with pytest.raises(error, match="beta"):
        relax(beta=value)  # at the decorator, before any function is compiled
    module = relax(lambda_free_scale, beta=3.0)
    with pytest.raises(error, match="beta"):
        module.beta = value
    assert module.beta == 3.0  # unchanged


@pytest.mark.parametrize(
    "name, value, error",
    [
        ("max_iter", 0, ValueError),
        ("max_iter", 2.5, TypeError),
        ("max_iter", True, TypeError),
        ("eps", -1e-3, ValueError),
        ("eps", 1.0, ValueError),
        ("eps", math.nan, ValueError),
        ("eps", "small", TypeError),
    ],
)
def test_loop_limits_that_cannot_be_are_refused_naming_them(name, value, error):
    with pytest.raises(error, match=name):
        relax(lambda_free_scale, **{name: value})
    module = relax(lambda_free_scale)
    with pytest.raises(error, match=name):
        setattr(module, name, value)


def test_beta_may_be_a_number_a_tensor_or_a_parameter_and_change_kind():
    x = torch.tensor([[0.3, -0.2], [1.0, 2.0]], dtype=torch.float64)
    module = relax(bubble_sort.__wrapped__, beta=2)
    expected = module(x)
    assert module.beta == 2 and isinstance(module.beta, int)  # as it was given
    module.beta = torch.tensor(2.0)
    torch.testing.assert_close(module(x), expected)
    module.beta = torch.nn.Parameter(torch.tensor(2.0, dtype=torch.float64))
    assert [name for name, _ in module.named_parameters()] == ["beta"]
    assert "beta" in module.state_dict()
    module(x)[1].sum().backward()
    assert module.beta.grad is not None and module.beta.grad != 0
    module.beta = 2.0
    assert list(module.parameters()) == [] and "beta" not in module.state_dict()
    torch.testing.assert_close(module(x), expected)


def test_a_number_beta_stays_exact_when_the_module_is_cast():
    # beta = 0.1 has no exact float32 value: float64 inputs must see the float64 one
    module = relax(lambda_free_scale, beta=0.1, static=("k",))
    x = torch.tensor([0.7, -0.4], dtype=torch.float64)
    before = module(x, 3)
    module.half()
    assert module.beta == 0.1
    torch.testing.assert_close(module(x, 3), before, rtol=0, atol=0)


def test_to_meta_moves_beta_and_the_module_runs_on_meta_tensors():
    def count_positive(x):
        n = 0.0
        for i in range(len(x)):
            if x[i] > 0:
                n = n + 1
        return n

    meta = torch.device("meta")
    module = relax(count_positive, beta=4.0).to(meta)
    out = module(torch.empty(5, 3, device=meta))
    assert out.device == meta and out.shape == (5,)
    module.beta = torch.nn.Parameter(torch.tensor(2.0))
    module.to(meta)
    assert module.beta.device == meta
    assert module(torch.empty(2, 3, device=meta)).shape == (2,)
    assert "beta=" in repr(module)


def test_a_relaxed_while_on_meta_tensors_says_why_it_cannot_run():
    module = relax(bubble_sort.__wrapped__).to("meta")
    with pytest.raises(RuntimeError, match="relaxed `while`.*meta"):
        module(torch.empty(3, 4, device="meta"))


def test_torch_jit_script_says_to_use_torch_compile():
    message = r"avcompile.*bubble_sort.*torch\.jit\.script.*torch\.compile\(module\)"
    with pytest.raises(RuntimeError, match=message):
        torch.jit.script(bubble_sort)
    with pytest.raises(RuntimeError, match=message):  # inside a model, too
        torch.jit.script(torch.nn.Sequential(torch.nn.Identity(), bubble_sort))

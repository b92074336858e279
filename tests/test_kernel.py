"""The kernel backend means what the torch backend means (SEMANTICS 12): values and gradients
equal in float64 on every registry program and example in the kernel's subset, in every mode and
family, with a learned ``beta``; ``gradcheck`` of its generated adjoint; and the subset check."""

import math
import warnings

import pytest
import torch
from programs import PROGRAMS
from test_batch_independence import EXAMPLES

from avcompile import CompileError, relax
from src_examples.bubble_sort import bubble_sort

TOL = dict(atol=1e-9, rtol=1e-9)


def _kernel_or_none(fn, **options):
    try:
        return relax(fn, backend="kernel", **options)
    except CompileError:
        return None


IN_SUBSET = [p for p in PROGRAMS if _kernel_or_none(p.fn) is not None]


def _compare(fn, inputs, **options):
    """Run both backends on ``inputs`` (float64 tensors, and hard arguments) with random output
    weights; assert equal values and gradients (of every tensor, and of ``beta`` when it is a
    tensor)."""
    torch_module = relax(fn, **options)
    kernel_module = relax(fn, backend="kernel", **options)
    results = []
    for module in (torch_module, kernel_module):
        args = [
            x.detach().clone().requires_grad_() if isinstance(x, torch.Tensor) else x
            for x in inputs
        ]
        leaves = [x for x in args if isinstance(x, torch.Tensor)]
        out = module(*args)
        out = out if isinstance(out, tuple) else (out,)
        generator = torch.Generator().manual_seed(0)
        weights = [torch.randn(o.shape, generator=generator, dtype=o.dtype) for o in out]
        total = sum((o * w).sum() for o, w in zip(out, weights))
        wrt = leaves + ([module.beta] if isinstance(module.beta, torch.Tensor) else [])
        if total.requires_grad:
            grads = torch.autograd.grad(total, wrt, allow_unused=True)
        else:  # nothing the module returns depends on its inputs (hard mode, say)
            grads = [None] * len(wrt)
        results.append((out, grads))
    (out_t, grads_t), (out_k, grads_k) = results
    assert len(out_t) == len(out_k)
    for a, b in zip(out_t, out_k):
        torch.testing.assert_close(b, a, **TOL)
    for a, b in zip(grads_t, grads_k):
        a = torch.zeros(()) if a is None else a
        b = torch.zeros(()) if b is None else b
        torch.testing.assert_close(b.to(a.dtype), a.expand_as(b) if b.dim() else a, **TOL)
    return out_k


def test_the_subset_holds_enough_registry_programs():
    names = {p.name for p in IN_SUBSET}
    assert len(names) >= 41, sorted(names)  # the README says how many
    for name in (
        "bubble_sort",
        "odd_even_sort",
        "while_counter",
        "logic",
        "soft_min3",
        "selection_sort_textbook",
        "insertion_sort_textbook",
        "running_min_from_inf",
        "dp_table_from_inf",
    ):
        assert name in names, name


@pytest.mark.parametrize("program", IN_SUBSET, ids=lambda p: p.name)
@pytest.mark.parametrize("seed, mode", [(0, "soft"), (1, "soft"), (2, "hard")])
def test_kernel_equals_torch_backend_on_the_registry(program, seed, mode):
    generator = torch.Generator().manual_seed(seed)
    n = program.n_range[seed % 2]
    inputs = program.random_inputs(5, n, generator)
    _compare(program.fn, inputs, beta=3.0, mode=mode)


MODES_AND_FAMILIES = (
    [("soft", "logistic"), ("hard", "logistic"), ("st", "logistic")]
    + [("soft", dist) for dist in ("cauchy", "gaussian", "reciprocal", "optimal")]
    + [("st", "optimal")]
)


@pytest.mark.parametrize("mode, dist", MODES_AND_FAMILIES)
def test_modes_and_families(mode, dist):
    x = torch.randn(4, 6, dtype=torch.float64)
    _compare(bubble_sort.__wrapped__, (x,), beta=2.0, mode=mode, dist=dist)
    t = x[:, 0].clone()
    logic = next(p for p in PROGRAMS if p.name == "count_matches")
    x[:, 1] = t  # ties: == is exact 1
    _compare(logic.fn, (x, t), beta=2.0, mode=mode, dist=dist)


EXAMPLES_IN_SUBSET = [
    name for name, (fn, *_) in EXAMPLES.items() if _kernel_or_none(fn.__wrapped__) is not None
]


def test_the_subset_holds_the_examples_it_should():
    assert set(EXAMPLES) == set(EXAMPLES_IN_SUBSET)


@pytest.mark.parametrize("name", EXAMPLES_IN_SUBSET)
def test_kernel_equals_torch_backend_on_the_examples(name):
    fn, shapes, (low, high), (smallest, largest) = EXAMPLES[name]
    generator = torch.Generator().manual_seed(3)
    for n in sorted({smallest, largest}):
        inputs = [
            low + (high - low) * torch.rand((3, *shape), generator=generator, dtype=torch.float64)
            for shape in shapes(n, n)
        ]
        if name == "levenshtein":  # tokens: ties are the point
            inputs = [x.round() for x in inputs]
        _compare(fn.__wrapped__, inputs, beta=4.0)


def _more_examples():
    """The ``src_examples`` functions beyond the batch-independence table, with inputs: name ->
    (function, inputs of a batch of 3, hard arguments)."""
    from src_examples.dijkstra import dijkstra
    from src_examples.insertion_sort import insertion_sort
    from src_examples.selection_sort import selection_sort
    from src_examples.top_k import top_k

    generator = torch.Generator().manual_seed(4)

    def rand(*shape, scale=1.0):
        return scale * torch.rand((3, *shape), generator=generator, dtype=torch.float64)

    return {
        "dijkstra": (dijkstra, (rand(5, 5, scale=3.0),)),
        "insertion_sort": (insertion_sort, (rand(6) - 0.5,)),
        "selection_sort": (selection_sort, (rand(6) - 0.5,)),
        "top_k": (top_k, (rand(6) - 0.5, 3)),
    }


@pytest.mark.parametrize("name", ["dijkstra", "insertion_sort", "selection_sort", "top_k"])
@pytest.mark.parametrize("mode", ["soft", "hard"])
def test_kernel_equals_torch_backend_on_more_examples(name, mode):
    fn, inputs = _more_examples()[name]
    assert fn.kernel_program() is not None, fn.kernel_reason
    _compare(fn.__wrapped__, inputs, beta=4.0, mode=mode)


def test_gradcheck_of_the_generated_adjoint():
    module = relax(bubble_sort.__wrapped__, beta=2.0, backend="kernel")
    x = torch.randn(3, 5, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(module, (x,), eps=1e-6, atol=1e-6)


def test_a_learned_beta_gets_the_torch_backends_gradient():
    x = torch.randn(4, 6, dtype=torch.float64)
    beta = torch.nn.Parameter(torch.tensor(2.5, dtype=torch.float64))
    _compare(bubble_sort.__wrapped__, (x,), beta=beta)


def test_float32_runs_in_float32():
    module = relax(bubble_sort.__wrapped__, beta=3.0, backend="kernel")
    x = torch.randn(4, 5)
    array, loss = module(x)
    assert array.dtype == torch.float32 and loss.dtype == torch.float32
    expected, _ = relax(bubble_sort.__wrapped__, beta=3.0)(x)
    torch.testing.assert_close(array, expected, atol=1e-5, rtol=1e-5)


class Net(torch.nn.Module):
    def forward(self, v):
        return v * 2.0


net = Net()


def calls_a_network(x):
    y = net(x)  # error here
    return y


def test_the_subset_check_refuses_a_network_call():
    with pytest.raises(CompileError) as info:
        relax(calls_a_network, backend="kernel")
    assert "call" in str(info.value) and "net" in str(info.value)
    module = relax(calls_a_network, backend="auto")
    assert not module.uses_kernel()
    assert "runs the torch backend" in repr(module) and "net" in repr(module)
    x = torch.randn(2, 3)
    torch.testing.assert_close(module(x), x * 2.0)


def test_auto_uses_the_kernel_in_the_subset():
    module = relax(bubble_sort.__wrapped__, backend="auto")
    assert module.uses_kernel()
    assert "runs the torch backend" not in repr(module)


def test_backend_is_an_attribute_checked_when_set():
    module = relax(bubble_sort.__wrapped__)
    assert module.backend == "torch"
    module.backend = "kernel"
    x = torch.randn(2, 4, dtype=torch.float64)
    torch.testing.assert_close(module(x)[0], relax(bubble_sort.__wrapped__)(x)[0], **TOL)
    with pytest.raises(ValueError, match="backend must be one of"):
        module.backend = "gpu"


def truth_of_a_value(x):
    y = 0.0
    if x[0]:
        y = 1.0
    return y


def test_a_condition_outside_zero_one_raises_as_on_the_torch_backend():
    module = relax(truth_of_a_value, backend="kernel")
    with pytest.raises(ValueError, match="must lie in \\[0, 1\\]"):
        module(torch.tensor([[2.0, 0.0]]))
    torch.testing.assert_close(module(torch.tensor([[0.25, 0.0]])), torch.tensor([0.25]))


def test_max_iter_cut_off_warns():
    while_counter = next(p for p in PROGRAMS if p.name == "while_counter")
    module = relax(while_counter.fn, max_iter=2, backend="kernel")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        module(torch.zeros(2, dtype=torch.float64))
    assert any("cut off" in str(w.message) for w in caught)


def test_peak_tape_memory_per_example_is_reported():
    module = relax(bubble_sort.__wrapped__, backend="kernel")
    x = torch.randn(3, 8, requires_grad=True)
    array, loss = module(x)
    (array.sum() + loss.sum()).backward()
    assert 0 < module.kernel_program().peak_tape_bytes < 10**6


SCALE = 2.0


def scaled_max(x):
    m = x[0]
    for i in range(1, len(x)):
        if x[i] * SCALE > m:
            m = x[i] * SCALE
    return m


def test_a_free_name_holding_a_number_is_read_at_each_call():
    global SCALE
    x = torch.randn(3, 5, dtype=torch.float64)
    _compare(scaled_max, (x,), beta=2.0)
    module = relax(scaled_max, backend="kernel")
    before = module(x)
    SCALE = 3.0
    try:
        torch.testing.assert_close(module(x), relax(scaled_max)(x), **TOL)
        assert not torch.allclose(module(x), before)
    finally:
        SCALE = 2.0


def test_a_module_that_ran_its_kernel_copies_and_pickles():
    import copy
    import pickle

    x = torch.randn(2, 5, dtype=torch.float64)
    module = relax(bubble_sort.__wrapped__, beta=bubble_sort.beta, backend="kernel")
    expected = module(x)
    for other in (copy.deepcopy(module), pickle.loads(pickle.dumps(bubble_sort))):
        other.backend = "kernel"
        torch.testing.assert_close(other(x), expected, **TOL)


def rows_moved(x):
    n = x.shape[0]
    order = torch.eye(n)
    x[0] = x[n - 1]  # a row copied
    for i in range(n - 1):
        if x[i, 0] > x[i + 1, 0]:  # rows swapped under a relaxed if, with the identity's
            x[i], x[i + 1] = x[i + 1], x[i]
            order[i], order[i + 1] = order[i + 1], order[i]
        if x[i, 1] < 0.0:  # a row swapped with itself: blended once
            x[i], x[i] = x[i], x[i]
    x[1], x[0] = x[0], x[1]  # rows swapped unconditionally
    return x, order


def rows_from_another_array(x, y):
    x[0] = y[0]
    return x


def test_rows_and_the_identity_matrix():
    generator = torch.Generator().manual_seed(5)
    x = torch.randn(4, 5, 3, generator=generator, dtype=torch.float64)
    _compare(rows_moved, (x,), beta=2.0)
    _compare(rows_moved, (x,), beta=2.0, mode="hard")


def test_a_row_of_an_array_of_unknown_length_is_outside_the_subset():
    with pytest.raises(TypeError, match="rows of `x` assigned rows not known to have their length"):
        relax(rows_from_another_array, backend="kernel")(torch.zeros(1, 2, 2), torch.zeros(1, 2, 2))


def guarded_branches(x):
    r = 0.0
    if x[1] != 0.0:
        r = x[0] / x[1]  # divides by zero where the branch is not taken
    s = math.sqrt(x[2]) if x[2] > 0.0 else 0.0
    if x[3] > 0.0:
        s = s + torch.log(x[3])
    return r + s


def smallest_positive_from_inf(x):
    best = math.inf
    for i in range(len(x)):
        if x[i] > 0.0:
            if x[i] < best:
                best = x[i]
    return min(best, 10.0), best


@pytest.mark.parametrize("mode", ["soft", "hard", "st"])
def test_nan_guards_and_infinite_sentinels_mean_what_they_mean_on_the_torch_backend(mode):
    """SEMANTICS 12: a guarded op's value that is not finite counts as its branch not taken, and
    an infinite sentinel is blended as a value, on both backends alike."""
    x = torch.tensor(
        [[1.0, 0.0, -4.0, 0.0], [2.0, 4.0, 9.0, 2.0], [-1.0, 0.5, 0.0, -1.0]], dtype=torch.float64
    )
    out = _compare(guarded_branches, (x,), beta=3.0, mode=mode)
    assert torch.isfinite(out[0]).all()
    leaf = x.clone().requires_grad_()
    relax(guarded_branches, beta=3.0, mode=mode, backend="kernel")(leaf).sum().backward()
    assert torch.isfinite(leaf.grad).all()
    y = torch.tensor([[-1.0, -2.0, -3.0], [0.5, -1.0, 2.0], [3.0, 1.0, -1.0]], dtype=torch.float64)
    _compare(smallest_positive_from_inf, (y,), beta=3.0, mode=mode)


def far_position(x):
    k = 0
    if x[0] > 0.0:
        k = 3 * len(x) + 5  # further from 0 than any dimension of the input
    y = 0.0
    if k > 4:  # read off k's distribution: k is a relaxed integer
        y = 1.0
    return y


@pytest.mark.parametrize("mode", ["soft", "hard", "st"])
def test_relaxed_integers_in_every_mode(mode):
    """SEMANTICS 10 on the kernel: a position chosen under relaxed conditions, read, written,
    moved, compared and used as a number."""
    generator = torch.Generator().manual_seed(7)
    for name in (
        "selection_sort_textbook",
        "insertion_sort_textbook",
        "shifted_positions",
        "counted_then_compared",
    ):
        program = next(p for p in PROGRAMS if p.name == name)
        inputs = program.random_inputs(4, program.n_range[1], generator)
        _compare(program.fn, inputs, beta=2.0, mode=mode)


def test_a_relaxed_integer_beyond_its_storage_is_refused_at_the_call_not_wrong():
    x = torch.tensor([[1.0, 2.0], [-1.0, 2.0]], dtype=torch.float64)
    with pytest.raises(TypeError, match="relaxed integer takes a value further from 0"):
        relax(far_position, backend="kernel")(x)
    torch.testing.assert_close(relax(far_position, backend="auto")(x), relax(far_position)(x))


_WITHOUT_NUMBA = """
import sys, warnings
sys.modules["numba"] = None  # as if numba were not installed
import torch
from avcompile import relax
from src_examples.bubble_sort import bubble_sort
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    first = relax(bubble_sort.__wrapped__, backend="auto")
    second = relax(bubble_sort.__wrapped__, backend="auto")
    x = torch.randn(2, 4)
    torch.testing.assert_close(first(x)[0], relax(bubble_sort.__wrapped__)(x)[0])
    assert not first.uses_kernel() and not second.uses_kernel()
    assert "numba" in repr(first)
print(sum("needs numba" in str(w.message) for w in caught))
"""


def test_without_numba_auto_runs_the_torch_backend_with_one_warning():
    import subprocess
    import sys
    from pathlib import Path

    result = subprocess.run(
        [sys.executable, "-c", _WITHOUT_NUMBA],
        cwd=Path(__file__).resolve().parent.parent,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split()[-1] == "1"


def soft_extremes(x):
    return max(x[0], min(x[1], x[2])), min(x[0], max(x[1], x[2]))


@pytest.mark.parametrize("mode", ["soft", "hard", "st"])
def test_max_is_max_and_min_is_min_in_every_mode(mode):
    # hard and straight-through mode once took every exact extreme for a min
    x = torch.tensor([[0.5, -1.0, 2.0], [3.0, 1.0, 0.0]], dtype=torch.float64)
    out = _compare(soft_extremes, (x,), beta=2.0, mode=mode)
    if mode != "soft":
        python = [soft_extremes(row) for row in x.tolist()]
        torch.testing.assert_close(torch.stack(out, 1), torch.tensor(python, dtype=x.dtype))


@pytest.mark.parametrize("mode", ["soft", "hard", "st"])
def test_break_continue_and_return_under_relaxed_conditions(mode):
    """SEMANTICS 11 on the kernel: the result is the mean over where each example left (or, for
    `continue`, where it skipped the rest of an iteration). In straight-through mode these once
    ran on the torch backend, whose gradient of a return was lost where the exact probability of
    returning was 0."""
    generator = torch.Generator().manual_seed(11)
    for name in (
        "first_positive",
        "sum_skipping_negatives",
        "guard_clauses",
        "returns_from_a_loop",
        "halve_do_while",
        "break_in_relaxed_while",
    ):
        program = next(p for p in PROGRAMS if p.name == name)
        inputs = program.random_inputs(4, program.n_range[1], generator)
        _compare(program.fn, inputs, beta=2.0, mode=mode)


STEPS = ((0, 1), (1, 0), (1, 1))  # a free tuple of integer pairs
FILL = 7.5  # a free number


def grid_walk(cost):
    h, w = cost.shape  # hard dimensions from a shape
    best = torch.full((h + 1, w + 1), FILL)  # a free number as the fill
    best[0, 0] = cost[0, 0]
    for i in range(h):
        for j in range(w):
            for k in range(len(STEPS)):
                di, dj = STEPS[k]  # a pair of a free tuple, at a loop counter
                if i + di < h and j + dj < w:
                    best[i + di, j + dj] = min(best[i + di, j + dj], best[i, j] + cost[i, j])
    return best[h - 1, w - 1]


def whole_arrays(x):
    n = len(x)
    picks = torch.eye(n)  # a constant the body makes: an array of every example
    chosen = torch.zeros((n, n))
    mass = torch.zeros(n)
    for i in range(n):
        step = torch.zeros(n)  # made in a loop of fixed size: once, refilled each time
        step[i] = x[i]
        chosen[i] = picks[n - 1 - i]  # a row of another array of the same length
        if x[i] > 0:
            chosen[i] = picks[i]
        mass = mass + step * step - mass * step  # arithmetic on whole arrays, element by element
    return chosen, mass


def test_shapes_free_tuples_fills_and_whole_arrays():
    generator = torch.Generator().manual_seed(8)
    cost = torch.rand(3, 4, 5, generator=generator, dtype=torch.float64)
    x = torch.randn(3, 5, generator=generator, dtype=torch.float64)
    for mode in ("soft", "hard", "st"):
        _compare(grid_walk, (cost,), beta=3.0, mode=mode)
        _compare(whole_arrays, (x,), beta=3.0, mode=mode)
    hard = relax(grid_walk, hard=True, backend="kernel")(cost)
    python = torch.stack([grid_walk(c) for c in cost])  # float32: torch.full's default dtype
    torch.testing.assert_close(hard, python.to(hard.dtype), rtol=1e-6, atol=1e-6)


WEIGHTS = (1, 2, 3)


def weighted(x):
    total = 0.0
    for k in range(len(WEIGHTS)):
        w = WEIGHTS[k]
        if x[k] > 0:
            total = total + w * x[k]
    return total


def test_a_free_tuple_that_changes_kind_runs_on_the_torch_backend():
    global WEIGHTS
    x = torch.randn(2, 3, dtype=torch.float64)
    auto = relax(weighted, beta=3.0, backend="auto")
    kernel = relax(weighted, beta=3.0, backend="kernel")
    assert auto.uses_kernel()
    torch.testing.assert_close(kernel(x), relax(weighted, beta=3.0)(x))
    saved, WEIGHTS = WEIGHTS, (1.5, 2.0, 0.5)  # floats now: the kernel was made for integers
    try:
        with pytest.raises(TypeError, match="`WEIGHTS`, which held integers"):
            kernel(x)
        torch.testing.assert_close(auto(x), relax(weighted, beta=3.0)(x))
    finally:
        WEIGHTS = saved


def arrays_of_unknown_shapes(x, y):
    z = x + y
    return z


def made_in_a_loop_of_varying_size(x):
    total = 0.0
    for i in range(1, len(x)):
        part = torch.zeros(i)
        total = total + part[0] + x[i]
    return total


def test_arrays_the_kernel_cannot_size_are_outside_the_subset():
    x = torch.zeros(1, 3)
    with pytest.raises(TypeError, match="shapes not known to be equal"):
        relax(arrays_of_unknown_shapes, backend="kernel")(x, x)
    with pytest.raises(CompileError, match="made inside a loop"):
        relax(made_in_a_loop_of_varying_size, backend="kernel")

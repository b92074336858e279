"""Relaxed modules under torch.compile: a new beta or batch size compiles nothing new, a relaxed
`while` breaks the graph once and never reaches the recompile limit, the kernel backend runs as
it is, and every value equals the module's own, uncompiled."""

import pytest
import torch
import torch._dynamo
from torch._dynamo.utils import counters

from avcompile import relax
from src_examples.bubble_sort import bubble_sort
from src_examples.insertion_sort import insertion_sort
from src_examples.odd_even_sort import odd_even_sort

N = 5  # examples' length; the batch sizes below differ from it, so no size is taken for another


@pytest.fixture(autouse=True)
def fresh_dynamo():
    """Each test compiles from nothing and counts its own compiles; reaching the recompile limit
    is an error, not a silent fall back to Python."""
    torch._dynamo.reset()
    counters.clear()
    with torch._dynamo.config.patch(fail_on_recompile_limit_hit=True):
        yield
    torch._dynamo.reset()


def frames_compiled():
    """How many times dynamo has compiled a frame (a recompile is one more)."""
    return counters["frames"]["total"]


def graph_breaks():
    return sum(counters["graph_break"].values())


def batch(size, seed=0):
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(size, N, dtype=torch.float64, generator=generator)


def assert_same(got, want):
    for g, w in zip(got, want):
        torch.testing.assert_close(g, w, rtol=1e-12, atol=1e-12)


def run_changing_beta_and_batch(module, compiled):
    """Call ``compiled`` as a training run would (annealing beta three times, then two new batch
    sizes), each value checked against the module itself; what the first call compiled."""
    assert_same(compiled(batch(7)), module(batch(7)))
    first = frames_compiled()
    for beta in (2.0, 3.5, 11.0):
        module.beta = beta
        assert_same(compiled(batch(7, seed=1)), module(batch(7, seed=1)))
    for size in (12, 30):
        assert_same(compiled(batch(size, seed=size)), module(batch(size, seed=size)))
    return first


@pytest.mark.parametrize("backend", ["torch", "auto"])
@pytest.mark.parametrize("program", [odd_even_sort, bubble_sort], ids=["odd_even", "bubble"])
def test_new_beta_and_batch_sizes_compile_nothing_new(program, backend):
    module = relax(program.__wrapped__, beta=5.0, backend=backend)
    compiled = torch.compile(module, backend="aot_eager")
    first = run_changing_beta_and_batch(module, compiled)
    assert frames_compiled() == first, "beta or the batch size caused a recompile"
    if module.uses_kernel():
        # the kernel runs as it is, between two graphs: one break
        assert graph_breaks() == 1


def test_a_program_without_relaxed_while_is_one_graph_with_a_dynamic_batch():
    module = relax(odd_even_sort.__wrapped__, beta=5.0)
    compiled = torch.compile(module, backend="eager", fullgraph=True)
    run_changing_beta_and_batch(module, compiled)
    assert counters["stats"]["unique_graphs"] == 1 and graph_breaks() == 0


def test_a_relaxed_while_breaks_the_graph_once():
    module = relax(bubble_sort.__wrapped__, beta=5.0)
    compiled = torch.compile(module, backend="aot_eager")
    first = run_changing_beta_and_batch(module, compiled)
    # compiled once: the code before the loop, and after it (which returns to its caller)
    assert frames_compiled() == first
    assert graph_breaks() == 1
    # the loop itself runs as Python: however many iterations it takes, nothing is recompiled
    x = batch(9, seed=3) * 10
    assert_same(compiled(x), module(x))
    assert frames_compiled() == first


def test_gradients_through_a_compiled_relaxed_while_are_the_modules():
    module = relax(bubble_sort.__wrapped__, beta=3.0)
    compiled = torch.compile(module, backend="aot_eager")
    x = batch(6).requires_grad_()
    (got,) = torch.autograd.grad(compiled(x)[1].sum() + compiled(x)[0][:, 0].sum(), x)
    (want,) = torch.autograd.grad(module(x)[1].sum() + module(x)[0][:, 0].sum(), x)
    torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-12)


def test_a_relaxed_while_inside_a_loop_runs_as_python_and_never_recompiles():
    # Dynamo cannot resume inside a loop: the module runs as Python under torch.compile, rather
    # than having each runtime function it calls compiled on its own for every length.
    module = relax(insertion_sort.__wrapped__, beta=5.0)
    compiled = torch.compile(module, backend="eager")
    for n, beta in [(4, 5.0), (9, 2.0), (12, 7.0)]:
        module.beta = beta
        x = torch.randn(8, n, dtype=torch.float64, generator=torch.Generator().manual_seed(n))
        torch.testing.assert_close(compiled(x), module(x), rtol=1e-12, atol=1e-12)
    assert counters["stats"]["unique_graphs"] == 0


def halve_until_small_or_negative(x):
    while x > 1:
        if x < -5:
            break
        x = x / 2
    return x


def test_a_relaxed_while_that_examples_leave_runs_as_python():
    module = relax(halve_until_small_or_negative, beta=2.0)
    compiled = torch.compile(module, backend="eager")
    for size in (5, 11, 23):
        x = torch.linspace(-20, 40, size, dtype=torch.float64)
        torch.testing.assert_close(compiled(x), module(x), rtol=1e-12, atol=1e-12)
    assert counters["stats"]["unique_graphs"] == 0


class Scores(torch.nn.Module):
    """A model that calls a relaxed module: scores, then their relaxed sort."""

    def __init__(self, sort):
        super().__init__()
        self.score = torch.nn.Linear(3, 1, dtype=torch.float64)
        self.sort = sort

    def forward(self, items):
        array, _ = self.sort(self.score(items).squeeze(-1))
        return array


def test_a_relaxed_module_inside_a_compiled_model_is_part_of_its_graph():
    torch.manual_seed(0)
    model = Scores(relax(odd_even_sort.__wrapped__, beta=4.0))
    compiled = torch.compile(model, backend="eager", fullgraph=True)
    items = torch.randn(6, N, 3, dtype=torch.float64)
    torch.testing.assert_close(compiled(items), model(items), rtol=1e-12, atol=1e-12)
    model.sort.beta = 9.0
    torch.testing.assert_close(compiled(items), model(items), rtol=1e-12, atol=1e-12)
    assert counters["stats"]["unique_graphs"] == 1 and graph_breaks() == 0


def test_a_tensor_beta_is_read_at_each_call_too():
    module = relax(odd_even_sort.__wrapped__, beta=torch.tensor(3.0))
    compiled = torch.compile(module, backend="eager")
    assert_same(compiled(batch(7)), module(batch(7)))
    with torch.no_grad():
        module.beta.fill_(6.0)  # changed in place
    assert_same(compiled(batch(7)), module(batch(7)))
    module.beta = torch.nn.Parameter(torch.tensor(0.5))  # learned: a parameter, read the same way
    assert_same(compiled(batch(7)), module(batch(7)))
    module.beta = torch.nn.Parameter(torch.tensor(2.0))
    assert_same(compiled(batch(7)), module(batch(7)))
    assert counters["stats"]["unique_graphs"] == 2  # a tensor, then a parameter


def test_a_mode_compiles_once_and_changing_back_reuses_it():
    module = relax(odd_even_sort.__wrapped__, beta=5.0)
    compiled = torch.compile(module, backend="eager")
    x = batch(7)
    for mode in ("soft", "hard", "soft", "st", "hard", "st"):
        module.mode = mode
        assert_same(compiled(x), module(x))
    assert counters["stats"]["unique_graphs"] == 3  # one per mode


def running_max(x):
    m = x[0]
    for i in range(1, len(x)):
        if x[i] > m:
            m = x[i]
    return m


def test_inductor_compiles_once_for_every_beta_and_batch_size():
    module = relax(running_max, beta=2.0)
    compiled = torch.compile(module)  # the default backend, inductor
    x = torch.randn(6, 4)
    torch.testing.assert_close(compiled(x), module(x))
    first = frames_compiled()
    for beta, size in [(8.0, 6), (0.5, 3), (0.5, 17)]:
        module.beta = beta
        x = torch.randn(size, 4)
        torch.testing.assert_close(compiled(x), module(x))
    assert frames_compiled() == first

"""``avcompile.dsl``: AlgoVision's programs, built by avcompile's compiler, give its numbers.

Most programs here are written once as a function of a module ``m`` and built twice, with
``m = avcompile.dsl`` and with ``m = algovision``; outputs and the gradients of a random linear
function of them must agree within 1e-6 in float64. AlgoVision is built with ``epsilon=1e-12`` (so
that it skips no ``If`` branch, which avcompile never does) and so is avcompile (the same threshold
then ends both ``While`` loops).
"""

import inspect
import re
import subprocess
import sys
import warnings

import algovision
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from avcompile import dsl, relax
from avcompile.api import compile_ir
from avcompile.module import RelaxedModule
from benchmarks.common import algovision_bubble_sort

TOL = 1e-6
EPS = 1e-12

# AlgoVision indexes with lists, which torch deprecates; that is not what these tests are about.
pytestmark = pytest.mark.filterwarnings("ignore:Using a non-tuple sequence:UserWarning")


def _leaves(inputs):
    return [x.detach().clone().requires_grad_(True) for x in inputs]


def _tuple(out):
    return out if isinstance(out, tuple) else (out,)


def compare(make, *inputs, seed=0):
    """Build ``make(m)`` with both libraries, run both on ``inputs`` (float64), and assert equal
    outputs and gradients. Returns avcompile's outputs."""
    ours_module, theirs_module = make(dsl), make(algovision)
    assert isinstance(ours_module, RelaxedModule)
    ours_in, theirs_in = _leaves(inputs), _leaves(inputs)
    ours = _tuple(ours_module(*ours_in))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        theirs = _tuple(theirs_module(*theirs_in))
    assert len(ours) == len(theirs)
    for k, (a, b) in enumerate(zip(ours, theirs)):
        assert a.shape == b.shape, f"output {k}: shape {tuple(a.shape)} != {tuple(b.shape)}"
        assert a.dtype == torch.float64
        torch.testing.assert_close(
            a, b.double(), atol=TOL, rtol=0, msg=lambda s, k=k: f"output {k}: {s}"
        )
    generator = torch.Generator().manual_seed(seed)
    weights = [torch.randn(b.shape, generator=generator, dtype=torch.float64) for b in theirs]
    wanted = [x for x in ours_in if x.dtype.is_floating_point]
    ours_grads = torch.autograd.grad(
        sum((a * w).sum() for a, w in zip(ours, weights)), wanted, allow_unused=True
    )
    wanted = [x for x in theirs_in if x.dtype.is_floating_point]
    theirs_grads = torch.autograd.grad(
        sum((b * w).sum() for b, w in zip(theirs, weights)), wanted, allow_unused=True
    )
    nonzero = False
    for k, (g, h) in enumerate(zip(ours_grads, theirs_grads)):
        g = torch.zeros_like(wanted[k]) if g is None else g
        h = torch.zeros_like(wanted[k]) if h is None else h
        torch.testing.assert_close(g, h, atol=TOL, rtol=0, msg=lambda s, k=k: f"gradient {k}: {s}")
        nonzero = nonzero or bool(h.abs().sum() > 0)
    assert nonzero, "the outputs do not depend on the inputs: the comparison means nothing"
    return ours


def randn(*shape, seed=0):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


# ------------------------------------------------------------------------------------ AlgoVision's
# bubble sort (its README) and `while` example


def bubble_sort(m, beta=5, **hyper):
    return algovision_bubble_sort(m, beta=beta, epsilon=EPS, **hyper)


@pytest.mark.parametrize("n, beta", [(2, 5), (6, 5), (9, 2)])
def test_bubble_sort(n, beta):
    compare(lambda m: bubble_sort(m, beta=beta), randn(5, n, seed=n))


@settings(max_examples=15, deadline=None)
@given(
    st.lists(
        st.lists(
            st.sampled_from([-1.0, 0.0, 0.5, 1.0, 2.0]) | st.floats(-3, 3), min_size=4, max_size=4
        ),
        min_size=1,
        max_size=3,
    ),
    st.floats(0.5, 8.0),
)
def test_bubble_sort_on_ties_and_random_values(rows, beta):
    compare(lambda m: bubble_sort(m, beta=beta), torch.tensor(rows, dtype=torch.float64))


def test_bubble_sort_keeps_the_array_unpacked_like_relax():
    # The array is only read and written element by element: a list of its elements, as @relax
    # keeps it, so that a swap costs no tensor op.
    code = bubble_sort(dsl).code
    assert "array = rt.unpack(array)" in code
    assert "array[i + 1] = a" in code and "rt.put" not in code
    assert "loss = torch.add(loss, p, alpha=1.0)" in code  # `loss + 1.` inlined, then fused


def test_bubble_sort_hard_mode_is_exact():
    x = randn(7, 9, seed=3)
    array, loss = bubble_sort(dsl, hard=True)(x)
    assert torch.equal(array, x.sort(dim=1).values)
    inversions = (x.unsqueeze(2) > x.unsqueeze(1)).triu(1).sum((1, 2)).double()
    assert torch.equal(loss, inversions)


def while_counter(m, **hyper):
    return m.Algorithm(
        m.Input("x"),
        m.Var("count", torch.tensor(0.0, dtype=torch.float64)),
        m.While(m.LT("x", 5), m.Let("x", lambda x: x + 1), m.Let("count", lambda count: count + 1)),
        m.Output("x"),
        m.Output("count"),
        beta=1.25,
        epsilon=EPS,
        **hyper,
    )


def test_while_example():
    x = torch.linspace(-3, 7, 11, dtype=torch.float64)
    _, count = compare(while_counter, x)
    assert (count > 0).all() and (count[:-1] >= count[1:]).all()  # fewer steps from further up


@pytest.mark.parametrize("max_iter, epsilon", [(3, EPS), (1024, 0.05)])
def test_while_local_max_iter_and_epsilon_override_the_global_ones(max_iter, epsilon):
    def make(m):
        return m.Algorithm(
            m.Input("x"),
            m.While(m.LT("x", 5), m.Let("x", lambda x: x + 1), max_iter=max_iter, epsilon=epsilon),
            m.Output("x"),
            beta=1.25,
            epsilon=EPS,
            max_iter=2**10,
        )

    x = torch.linspace(-3, 7, 11, dtype=torch.float64)
    cut = compare(make, x)[0]
    assert not torch.allclose(cut, while_counter(dsl)(x)[0], atol=1e-4)


# ------------------------------------------------------------------------------------ shortest path

INF = 1e3
NEIGHBOURS = [(-1, -1), (-1, 0), (-1, 1), (0, -1), (0, 1), (1, -1), (1, 0), (1, 1)]


def shifted(t, di, dj, fill):
    """``t[:, i + di, j + dj]`` at (i, j), ``fill`` outside the grid (t batch-first: [B, H, W])."""
    h, w = t.shape[1], t.shape[2]
    padded = torch.nn.functional.pad(t, (1, 1, 1, 1), value=fill)
    return padded[:, 1 + di : 1 + di + h, 1 + dj : 1 + dj + w]


def bellman_ford_step(m, dist, cost, beta):
    """One relaxed Bellman-Ford step on the grid: the cost of a cell plus the soft minimum of its 8
    neighbours' distances, and the soft argmin over them (the predecessor's distribution)."""
    candidates = [shifted(dist, di, dj, INF) for di, dj in NEIGHBOURS]
    return cost + m.Min(beta)(*candidates), m.ArgMin(beta)(*candidates)


def trace_back(trace, pred):
    """Move the mass of ``trace`` from each cell to its predecessors; the start keeps its own."""
    at_start = trace[:, 0, 0]
    trace = trace.clone()
    trace[:, 0, 0] = 0.0
    moved = sum(
        shifted(trace * pred[..., k], -di, -dj, 0.0) for k, (di, dj) in enumerate(NEIGHBOURS)
    )
    moved[:, 0, 0] = moved[:, 0, 0] + at_start
    return moved


def shortest_path(m, traceback, beta=10.0, n_iter=10):
    """The relaxed shortest path from the top-left to the bottom-right cell of a cost grid, in the
    manner of AlgoVision's example: Bellman-Ford, then a traceback from the end that marks the cells
    it passes with the t-conorm a + b - a*b."""
    if traceback == "for":

        def loop(*body):
            return m.For("k", n_iter, *body)
    else:

        def loop(*body):
            return m.While(m.LT(lambda path: path[:, 0, 0], 0.5), *body, max_iter=3 * n_iter)

    return m.Algorithm(
        m.Input("cost"),
        m.Var("dist", lambda cost: cost.new_full(cost.shape[1:], INF)),
        m.Var("pred", lambda cost: cost.new_zeros(*cost.shape[1:], 8)),
        m.Var("trace", lambda cost: cost.new_zeros(cost.shape[1:])),
        m.Var("path", lambda cost: cost.new_zeros(cost.shape[1:])),
        m.Let("dist", [0, 0], lambda cost: cost[:, 0, 0]),
        m.Let("trace", [-1, -1], 1.0),
        m.For(
            "i",
            n_iter,
            m.Let(["dist", "pred"], lambda dist, cost: bellman_ford_step(m, dist, cost, beta)),
            m.Let("dist", [0, 0], lambda cost: cost[:, 0, 0]),
        ),
        loop(
            m.Let("path", lambda path, trace: path + trace - path * trace),
            m.Let("trace", lambda trace, pred: trace_back(trace, pred)),
        ),
        m.Output("path"),
        m.Output("dist"),
        beta=beta,
        epsilon=EPS,
    )


@pytest.mark.parametrize("traceback", ["for", "while"])
def test_grid_shortest_path(traceback):
    cost = (
        torch.rand(3, 5, 4, generator=torch.Generator().manual_seed(1), dtype=torch.float64) + 0.2
    )
    path, dist = compare(lambda m: shortest_path(m, traceback), cost)
    assert path[:, 0, 0].min() > 0.5 and path[:, -1, -1].min() > 0.99  # both ends on the path
    assert torch.allclose(dist[:, 0, 0], cost[:, 0, 0])


def test_shortest_path_generated_code_calls_the_lambdas():
    code = shortest_path(dsl, "while").code
    assert "rt.relaxed_while(" in code and ", 30, eps)" in code  # the local max_iter
    assert "dist, pred = rt.batched_call(" in code


# ------------------------------------------------------------------------------------ Let's table


def let_program(body, inputs=("x",), variables=(), outputs=("a",), ints=()):
    def make(m):
        return m.Algorithm(
            *[m.Input(name) for name in inputs],
            *[m.Var(name, value) for name, value in variables],
            *[m.VarInt(name, value) for name, value in ints],
            *body(m),
            *[m.Output(name) for name in outputs],
            beta=3.0,
            epsilon=EPS,
        )

    return make


def zeros(*shape):
    return torch.zeros(*shape, dtype=torch.float64)


def test_let_a_x():  # a = x
    make = let_program(lambda m: [m.Let("a", "x")], variables=[("a", zeros(()))])
    compare(make, randn(4))


def test_let_lambda():  # a = x ** 2
    make = let_program(lambda m: [m.Let("a", lambda x: x**2)], variables=[("a", zeros(()))])
    compare(make, randn(4))


def test_let_index_on_the_right():  # a = array[i], summed over i
    make = let_program(
        lambda m: [
            m.For("i", 5, m.Let("a", "x", ["i"]), m.Let("s", lambda s, a, i: s + a * (i + 1)))
        ],
        variables=[("a", zeros(())), ("s", zeros(()))],
        outputs=("s",),
    )
    compare(make, randn(3, 5))


def test_let_index_inside_a_lambda():  # a = array[i], the batch dimension written out
    make = let_program(
        lambda m: [
            m.For(
                "i",
                5,
                m.Let("a", lambda x, i: x[:, i]),
                m.Let("s", lambda s, a, i: s + a * (i + 1)),
            )
        ],
        variables=[("a", zeros(())), ("s", zeros(()))],
        outputs=("s",),
    )
    compare(make, randn(3, 5))


def test_let_several_indices_and_lambdas():  # a = array[i, j + 1]
    make = let_program(
        lambda m: [
            m.For(
                "i",
                3,
                m.For(
                    "j",
                    3,
                    m.Let("a", "x", ["i", lambda j: j + 1]),
                    m.Let("s", lambda s, a, i, j: s * 0.5 + a * (i - j)),
                ),
            )
        ],
        variables=[("a", zeros(())), ("s", zeros(()))],
        outputs=("s",),
    )
    compare(make, randn(2, 3, 4))


def test_let_none_and_slices():  # a = array[:, 0::2]
    make = let_program(
        lambda m: [m.Let("a", "x", [None, slice(0, None, 2)])], variables=[("a", zeros(3, 2))]
    )
    ours = compare(make, randn(2, 3, 4))[0]
    assert ours.shape == (2, 3, 2)


def test_let_index_on_the_left():  # a[i] = x
    make = let_program(
        lambda m: [m.For("i", 4, m.Let("a", ["i"], lambda x, i: x * (i - 1.5)))],
        variables=[("a", zeros(4))],
    )
    compare(make, randn(5))


def test_let_index_on_both_sides():  # a[i] = x[j], a reversal
    make = let_program(
        lambda m: [m.For("i", 4, m.Let("a", ["i"], "x", [lambda i: 3 - i]))],
        variables=[("a", zeros(4))],
    )
    ours = compare(make, randn(3, 4))[0]
    assert ours.shape == (3, 4)


def test_let_several_return_values():  # a, b = x + y, x - y
    make = let_program(
        lambda m: [
            m.Let(["a", "b"], lambda x, y: (x + y, x - y)),
            m.Let(["c", "d"], lambda x, y: (torch.maximum(x, y), x * y)),
        ],
        inputs=("x", "y"),
        outputs=("a", "b", "c", "d"),
        variables=[(v, zeros(())) for v in "abcd"],
    )
    compare(make, randn(4), randn(4, seed=1))


def test_let_probability_weights_on_the_left():  # a = w * x + (1 - w) * a, per element
    make = let_program(
        lambda m: [
            m.Let("w", lambda x: torch.softmax(3 * x, -1)),
            m.Let("a", ["w"], "y"),  # weights in a variable
            m.Let("a", [lambda x: torch.sigmoid(x)], lambda y: 2 * y),  # returned by a lambda
            m.Let("a", [torch.tensor([0.25, 0.5, 0.75])], "y"),  # a constant tensor
        ],
        inputs=("x", "y"),
        variables=[("w", zeros(3)), ("a", zeros(3))],
    )
    compare(make, randn(4, 3), randn(4, seed=1))


def test_let_tensor_and_number_values():
    make = let_program(
        lambda m: [
            m.Let("a", torch.tensor([1.0, 2.0, 3.0], dtype=torch.float64)),
            m.Let("a", [1], "x"),
            m.Let("b", 2),
            m.Let("b", [0], lambda x: x * x),
        ],
        variables=[("a", zeros(3)), ("b", zeros(2))],
        outputs=("a", "b"),
    )
    a, b = compare(make, randn(4))
    assert torch.equal(a[:, 0], torch.ones(4, dtype=torch.float64))
    assert torch.equal(b[:, 1], torch.full((4,), 2.0, dtype=torch.float64))


def test_var_initial_values_from_lambdas_and_var_int_lists():
    make = let_program(
        lambda m: [
            m.For("i", "idx", m.Let("s", lambda s, x, i: s + x[:, i] * i)),
            m.LetInt("idx", [0, 1]),
            m.For("i", "idx", m.Let("s", lambda s, x, i: s - x[:, i])),
        ],
        variables=[("s", lambda x: x.new_zeros(()))],
        ints=[("idx", [3, 1, 2])],
        outputs=("s",),
    )
    compare(make, randn(3, 4))


# ------------------------------------------------------------------------------------ conditions


CONDITIONS = {
    "Eq": lambda m: m.Eq("x", "y"),
    "NEq": lambda m: m.NEq("x", lambda y: y + 0.5),
    "LT": lambda m: m.LT("x", 0.3),
    "LEq": lambda m: m.LEq(lambda x: 2 * x, "y"),
    "GT": lambda m: m.GT("x", "y", beta=7.0),
    "GEq": lambda m: m.GEq(-0.2, "y"),
    "IsTrue": lambda m: m.IsTrue(lambda x: torch.sigmoid(x)),
    "IsFalse": lambda m: m.IsFalse(lambda y: torch.sigmoid(y)),
    "and": lambda m: m.GT("x", "y", beta=2.0) & m.LT("x", 1.0, beta=3.0),
    "or": lambda m: m.GT("x", "y", beta=2.0) | m.LT("y", -0.5, beta=3.0),
    "CatProbEq": lambda m: m.CatProbEq(
        lambda x, y: torch.stack([x, y], -1), lambda y: torch.stack([y, 1 - y], -1)
    ),
    "CosineSimilarity": lambda m: m.CosineSimilarity(
        lambda x: torch.stack([x, x * x], -1), lambda y: torch.stack([y, 1.0 + 0 * y], -1)
    ),
}


@pytest.mark.parametrize("name", sorted(CONDITIONS))
def test_condition_in_if_else(name):
    def make(m):
        return m.Algorithm(
            m.Input("x"),
            m.Input("y"),
            m.Var("z", torch.tensor(0.0, dtype=torch.float64)),
            m.If(
                CONDITIONS[name](m),
                if_true=[m.Let("z", lambda x, y: x * y + 1.0)],
                if_false=m.Let("z", lambda y: y - 2.0),
            ),
            m.Output("z"),
            beta=4.0,
            epsilon=EPS,
        )

    compare(make, randn(6), randn(6, seed=1))


def test_conditions_combine_without_their_own_beta():
    # AlgoVision asks for an explicit beta on both sides of & and |, and cannot combine a
    # combination again; avcompile uses the global beta and can.
    def make(m, explicit):
        beta = {"beta": 4.0} if explicit else {}
        return m.Algorithm(
            m.Input("x"),
            m.Var("z", torch.tensor(0.0, dtype=torch.float64)),
            m.If(m.GT("x", 0.0, **beta) & m.LT("x", 1.0, **beta), if_true=m.Let("z", 1.0)),
            m.Output("z"),
            beta=4.0,
            epsilon=EPS,
        )

    x = randn(8)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        expected = make(algovision, True)(x)
    torch.testing.assert_close(make(dsl, False)(x), expected, atol=TOL, rtol=0)

    nested = dsl.Algorithm(
        dsl.Input("x"),
        dsl.Var("z", torch.tensor(0.0)),
        dsl.If(
            (dsl.GT("x", 0.0) & dsl.LT("x", 1.0)) | dsl.LT("x", -1.0, beta=2.0),
            if_true=dsl.Let("z", 1.0),
        ),
        dsl.Output("z"),
        beta=4.0,
    )
    p, q = torch.sigmoid(4 * x) * torch.sigmoid(-4 * (x - 1)), torch.sigmoid(-2 * (x + 1))
    torch.testing.assert_close(nested(x), p + q - p * q)


def test_local_hard_on_if_overrides_the_global_soft():
    def make(m):
        return m.Algorithm(
            m.Input("x"),
            m.Var("z", torch.tensor(0.0, dtype=torch.float64)),
            m.If(m.GT("x", 0.0), if_true=m.Let("z", lambda x: x * 3.0), hard=True),
            m.If(m.LT("x", 0.5), if_true=m.Let("z", lambda z, x: z + x)),
            m.Output("z"),
            beta=2.0,
            epsilon=EPS,
        )

    compare(make, randn(9))


def test_local_soft_on_if_overrides_the_global_hard():
    x = randn(9)
    module = dsl.Algorithm(
        dsl.Input("x"),
        dsl.Var("z", torch.tensor(0.0)),
        dsl.If(dsl.GT("x", 0.0), if_true=dsl.Let("z", 1.0), hard=False),
        dsl.Output("z"),
        beta=2.0,
        hard=True,
    )
    torch.testing.assert_close(module(x), torch.sigmoid(2 * x))


def test_hard_mode_covers_while():
    x = torch.tensor([-2.5, 0.0, 4.2, 6.0], dtype=torch.float64)
    _, count = while_counter(dsl, hard=True)(x)
    assert torch.equal(count, torch.tensor([8.0, 5.0, 1.0, 0.0], dtype=torch.float64))


def test_beta_can_change_on_the_module():
    module = while_counter(dsl)
    x = randn(5)
    soft = module(x)[1]
    module.beta = 50.0
    sharp = module(x)[1]
    assert not torch.allclose(soft, sharp)
    module.epsilon = 1e-3
    assert module.eps == 1e-3


def test_conditions_of_hard_values_are_python_ifs():
    # AlgoVision needs a per-example value in every condition; on hard values (VarInt, For
    # variables) avcompile's is an ordinary Python `if` / `while`, as with @relax.
    module = dsl.Algorithm(
        dsl.Input("x"),
        dsl.Var("s", torch.tensor(0.0)),
        dsl.VarInt("k", 0),
        dsl.For("i", 4, dsl.If(dsl.GEq("i", 2), if_true=dsl.Let("s", lambda s, x, i: s + x[:, i]))),
        dsl.While(dsl.LT("k", 3), dsl.LetInt("k", lambda k: k + 1)),
        dsl.If(dsl.Eq("k", 3), if_true=dsl.Let("s", lambda s: s * 10.0)),
        dsl.Output("s"),
        dsl.Output("k"),
    )
    assert "if i >= 2:" in module.code and "while k < 3:" in module.code
    x = randn(3, 4)
    s, k = module(x)
    assert k == 3
    torch.testing.assert_close(s, 10 * x[:, 2:].sum(1))


def test_is_true_outside_the_unit_interval_is_an_error():
    module = dsl.Algorithm(
        dsl.Input("x"),
        dsl.Var("z", torch.tensor(0.0)),
        dsl.If(dsl.IsTrue("x"), if_true=dsl.Let("z", 1.0)),
        dsl.Output("z"),
    )
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        module(torch.tensor([0.5, 2.0]))


# ------------------------------------------------------------------------------------ functions


@pytest.mark.parametrize("name", ["Min", "ArgMin", "Max", "ArgMax"])
def test_soft_functions_equal_algovision(name):
    tensors = [randn(3, 4, seed=k) for k in range(3)]
    ours = getattr(dsl, name)(beta=3.0)(*tensors)
    theirs = getattr(algovision, name)(beta=3.0)(*tensors)
    torch.testing.assert_close(ours, theirs, atol=1e-12, rtol=0)
    with pytest.raises(ValueError, match=f"{name}: beta is None"):
        getattr(dsl, name)(None)


def test_print_prints_batch_first_values(capsys):
    module = dsl.Algorithm(
        dsl.Input("x"), dsl.For("i", 2, dsl.Print(lambda x, i: x[:, i].sum() + i)), dsl.Output("x")
    )
    module(torch.ones(3, 2))
    assert capsys.readouterr().out.split() == ["tensor(3.)", "tensor(4.)"]


def test_input_and_output_shapes_and_dtypes_are_checked():
    module = dsl.Algorithm(
        dsl.Input("x", shape=(3,), dtype=torch.float32), dsl.Output("x", shape=(3,))
    )
    assert module(torch.ones(2, 3)).shape == (2, 3)
    with pytest.raises(ValueError, match=r"Input\('x'.*\(4,\).*\(3,\) is declared"):
        module(torch.ones(2, 4))
    with pytest.raises(ValueError, match=r"Input\('x'.*dtype is torch.float64"):
        module(torch.ones(2, 3, dtype=torch.float64))


def test_names_signatures_and_defaults_are_algovisions():
    exported = [name for name in dir(algovision) if name[0].isupper()]
    assert set(exported) <= set(dsl.__all__)
    for name in exported:
        theirs, ours = getattr(algovision, name), getattr(dsl, name)
        theirs_params = inspect.signature(theirs).parameters
        ours_params = inspect.signature(ours).parameters
        for param in theirs_params.values():
            if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
                kinds = {p.kind for p in ours_params.values()}
                assert param.kind in kinds or param.kind == param.VAR_KEYWORD, (name, param)
                continue
            assert param.name in ours_params, (name, param.name)
            assert ours_params[param.name].default == param.default, (name, param.name)
    for name in ("Eq", "NEq", "LT", "LEq", "GT", "GEq", "CatProbEq", "CosineSimilarity"):
        assert inspect.signature(getattr(dsl, name)).parameters["beta"].default is None


# ------------------------------------------------------------------------------------ same compiler


def sort_plain(array):
    a = 0.0
    b = 0.0
    swapped = 1.0
    loss = 0.0
    n = 5
    while swapped:
        swapped = 0
        for i in range(n):
            a = array[i]
            b = array[i + 1]
            if a > b:
                array[i + 1] = a
                array[i] = b
                swapped = 1.0
                loss = loss + 1.0
        n = n - 1
    return array, loss


def sort_dsl(m):
    return m.Algorithm(
        m.Input("array"),
        m.Var("a", torch.tensor(0.0)),
        m.Var("b", torch.tensor(0.0)),
        m.Var("swapped", torch.tensor(1.0)),
        m.Var("loss", torch.tensor(0.0)),
        m.VarInt("n", 5),
        m.While(
            m.IsTrue("swapped"),
            m.Let("swapped", 0),
            m.For(
                "i",
                "n",
                m.Let("a", "array", ["i"]),
                m.Let("b", "array", [lambda i: i + 1]),
                m.If(
                    m.GT("a", "b"),
                    if_true=[
                        m.Let("array", [lambda i: i + 1], "a"),
                        m.Let("array", ["i"], "b"),
                        m.Let("swapped", 1.0),
                        m.Let("loss", lambda loss: loss + 1.0),
                    ],
                ),
            ),
            m.LetInt("n", lambda n: n - 1),
        ),
        m.Output("array"),
        m.Output("loss"),
        name="sort_plain",
    )


def test_dsl_and_relax_build_the_same_ir_and_code():
    algorithm = sort_dsl(dsl)
    from_dsl = str(algorithm.ir)
    from_python = str(compile_ir(sort_plain)[0])
    assert from_dsl == from_python
    assert "relaxed while truth(swapped)" in from_dsl and "relaxed if relaxed (a > b)" in from_dsl

    def code(text):  # without comments and line numbers: they cite the listing or the source
        return [
            re.sub(r"_L\d+", "_L", line)
            for line in text.splitlines()
            if not line.strip().startswith("#") and "generated by avcompile" not in line
        ]

    assert code(algorithm.code) == code(relax(sort_plain).code)
    x = randn(4, 6)
    for ours, theirs in zip(algorithm(x), relax(sort_plain)(x)):
        assert torch.equal(ours, theirs)


def test_an_algorithm_is_a_relaxed_module_with_its_code():
    algorithm = bubble_sort(dsl)
    assert isinstance(algorithm, dsl.Algorithm)
    assert isinstance(algorithm, RelaxedModule) and isinstance(algorithm, torch.nn.Module)
    assert algorithm.code.startswith("import torch")
    assert "def forward(self, array):" in algorithm.code
    assert "# L8: While(IsTrue('swapped')," in algorithm.code  # cites the program's listing
    assert algorithm.listing.splitlines()[7].strip() == "While(IsTrue('swapped'),"
    assert algorithm.beta == 5 and algorithm.eps == EPS and algorithm.max_iter == 1024
    assert not algorithm.hard


def test_variable_names_that_would_shadow_python_are_renamed():
    module = dsl.Algorithm(
        dsl.Input("max"),
        dsl.Var("lambda", torch.tensor(0.0)),
        dsl.VarInt("range", 3),
        dsl.For("print", "range", dsl.Let("lambda", lambda max: max + 1.0)),
        dsl.If(dsl.GT("lambda", 0.0), if_true=dsl.Let("lambda", "max")),
        dsl.Output("lambda"),
    )
    assert "for print_ in range(range_):" in module.code
    x = randn(5)
    p = torch.sigmoid(10 * (x + 1))
    torch.testing.assert_close(module(x), p * x + (1 - p) * (x + 1))


def test_debug_prints_the_generated_code(capsys):
    module = dsl.Algorithm(dsl.Input("x"), dsl.Output("x"), debug=True)
    assert module.code in capsys.readouterr().out


# ------------------------------------------------------------------------------------ misuse


def _program(*body, **hyper):
    return dsl.Algorithm(
        dsl.Input("x"),
        dsl.Var("a", torch.tensor(0.0)),
        dsl.Var("v", torch.zeros(3)),
        dsl.Var("w", torch.zeros(3, 3)),
        dsl.VarInt("n", 3),
        *body,
        dsl.Output("a"),
        **hyper,
    )


MISUSE = [
    (lambda: dsl.Input("1x"), ValueError, r"Input\('1x'\).*invalid"),
    (lambda: dsl.Var("a b", torch.tensor(0.0)), ValueError, r"Var\('a b'\).*invalid"),
    (lambda: dsl.Var("a", "x"), TypeError, r"Var\('a'\).*tensor or a lambda"),
    (lambda: dsl.VarInt("n", 1.5), TypeError, r"VarInt\('n'\).*float"),
    (lambda: dsl.VarInt("n", [1, "x"]), TypeError, r"VarInt\('n'\).*'x'"),
    (lambda: dsl.Algorithm(dsl.Output("x")), ValueError, "at least one Input"),
    (lambda: dsl.Algorithm(dsl.Input("x")), ValueError, "at least one Output"),
    (lambda: dsl.Algorithm(dsl.Input("x"), "x", dsl.Output("x")), TypeError, "'x' of type str"),
    (
        lambda: dsl.Algorithm(dsl.Input("x"), dsl.Var("x", torch.tensor(0.0)), dsl.Output("x")),
        ValueError,
        r"Var\('x'.*'x' is defined for the second time",
    ),
    (lambda: dsl.Let("a"), ValueError, "at least two arguments"),
    (lambda: dsl.Let("a", ["i"], "x", "y"), ValueError, "Invalid set of arguments for Let"),
    (lambda: dsl.Let(["a", "b"], "x"), TypeError, r"Let\(\['a', 'b'\], 'x'\).*lambda"),
    (lambda: dsl.Let("a", [1, 2]), TypeError, r"Let\('a', \[1, 2\]\).*list"),
    (lambda: dsl.LetInt("n"), ValueError, "exactly two arguments"),
    (lambda: dsl.LetInt("n", [1, 2.5]), TypeError, r"LetInt.*2.5"),
    (lambda: dsl.If("x"), TypeError, "If: the condition must be a condition"),
    (lambda: dsl.While(dsl.IsTrue("x"), "x"), TypeError, "While: expected instructions"),
    (lambda: dsl.For("i", 2.5), TypeError, r"For\('i'.*float"),
    (lambda: dsl.Print("x"), TypeError, "Print: expected a lambda"),
    (lambda: dsl.GT("x", 0) & "y", TypeError, "`&` combines two conditions"),
    (
        lambda: _program(dsl.Let("nope", 1.0)),
        ValueError,
        r"Let\('nope', 1.0\).*'nope' is not declared",
    ),
    (
        lambda: _program(dsl.Let("a", "nope")),
        ValueError,
        r"Let\('a', 'nope'\).*'nope' does not exist",
    ),
    (lambda: _program(dsl.Let("a", lambda zz: zz)), ValueError, r"Let\('a', lambda zz: zz\).*'zz'"),
    (lambda: _program(dsl.Let("n", "x")), TypeError, r"Let\('n', 'x'\).*'n' is a VarInt"),
    (lambda: _program(dsl.Let("n", ["i"], "x")), TypeError, r"Let\('n', \['i'\], 'x'\).*'n'"),
    (
        lambda: _program(dsl.Let("a", "n", [0])),
        TypeError,
        r"Let\('a', 'n', \[0\]\).*'n' is a VarInt",
    ),
    (lambda: _program(dsl.Let("a", "v", [0, 1])), ValueError, r"too many indices.*'v'"),
    (lambda: _program(dsl.Let("a", "v", ["x"])), TypeError, r"index 'x' of the value"),
    (lambda: _program(dsl.Let("w", [torch.ones(3, 3), 0], "x")), ValueError, "exactly one index"),
    (lambda: _program(dsl.Let("v", [2.5], "x")), TypeError, "not a legal index type"),
    (
        lambda: _program(dsl.Let("v", torch.ones(2))),
        ValueError,
        r"shape \(2,\).*'v' has shape \(3,\)",
    ),
    (lambda: _program(dsl.LetInt("n", "x")), TypeError, r"LetInt\('n', 'x'\).*'x' is a relaxed"),
    (lambda: _program(dsl.For("n", 2)), ValueError, r"For\('n', 2\).*'n' must not exist"),
    (lambda: _program(dsl.For("i", "x")), TypeError, r"For\('i', 'x'\).*'x' is an Input"),
    (lambda: _program(dsl.For("i", 2), dsl.Let("a", "i")), ValueError, r"'i' does not exist"),
    (
        lambda: _program(dsl.If(dsl.GT("x", 0), if_true=dsl.LetInt("n", 2))),
        ValueError,
        r"If\(GT\('x', 0\)\).*'n' is a VarInt, a hard variable",
    ),
    (lambda: _program(dsl.If(dsl.GT("x", [1]))), TypeError, r"If\(GT\('x', \[1\]\)\).*not a value"),
    (lambda: dsl.Algorithm(dsl.Input("x"), dsl.Output("y")), ValueError, r"Output\('y'\).*'y'"),
    (
        lambda: dsl.Algorithm(
            dsl.Input("x"), dsl.Var("a", lambda b: b), dsl.Var("b", lambda x: x), dsl.Output("a")
        ),
        ValueError,
        r"Var\('a'.*'b' is not defined yet",
    ),
]


@pytest.mark.parametrize("build, error, message", MISUSE, ids=[m[2][:40] for m in MISUSE])
def test_misuse_is_a_type_or_value_error_naming_instruction_and_variable(build, error, message):
    with pytest.raises(error, match=message):
        build()


def test_runtime_misuse_is_a_value_error():
    module = _program(dsl.Let("v", lambda x: torch.stack([x, x], -1)))
    with pytest.raises(ValueError, match=r"Let\('v', lambda x: .*shape \(4, 2\).*\(4, 3\)"):
        module(torch.ones(4))


def test_algovision_and_avcompile_agree_on_errors_of_the_same_kind():
    # What AlgoVision asserts, avcompile raises as an exception that python -O keeps.
    with pytest.raises(AssertionError):
        algovision.Algorithm(algovision.Input("x"))
    with pytest.raises(ValueError):
        dsl.Algorithm(dsl.Input("x"))


def test_misuse_is_caught_under_python_O():
    # python -O strips assert statements; the checks must not be asserts.
    script = (
        "from avcompile import dsl\n"
        "for build in (lambda: dsl.Algorithm(dsl.Input('x')),\n"
        "              lambda: dsl.Let('v', 'x', ['i'], 'extra'),\n"
        "              lambda: dsl.If(3, [])):\n"
        "    try:\n"
        "        build()\n"
        "    except (TypeError, ValueError) as e:\n"
        "        print(type(e).__name__, str(e).split(':')[0])\n"
    )
    run = subprocess.run(
        [sys.executable, "-O", "-c", script], capture_output=True, text=True, check=True
    )
    assert run.stdout.splitlines() == [
        "ValueError Algorithm",
        "ValueError Invalid set of arguments for Let",
        "TypeError If",
    ], run.stdout + run.stderr


@pytest.mark.parametrize("mode", ["soft", "hard", "st"])
def test_guarded_division_is_finite_through_the_dsl_as_through_relax(mode):
    # The NaN guards are placed by a pass over the IR, so the DSL gets them as @relax does.
    algorithm = dsl.Algorithm(
        dsl.Input("d"),
        dsl.Var("r", torch.tensor(0.0)),
        dsl.If(dsl.NEq("d", 0.0), if_true=dsl.Let("r", lambda d: 1 / d)),
        dsl.Output("r"),
        beta=10.0,
    )
    algorithm.mode = mode

    def reciprocal(d):
        r = 0.0
        if d != 0:
            r = 1 / d
        return r

    python = relax(reciprocal, beta=10.0, mode=mode)
    d = torch.tensor([0.0, -0.0, 1e-30, 0.5, -2.0], dtype=torch.float64, requires_grad=True)
    out = algorithm(d)
    (grad,) = torch.autograd.grad(out.sum(), d)
    assert torch.isfinite(out).all() and torch.isfinite(grad).all(), (out, grad)
    d2 = d.detach().clone().requires_grad_()
    expected = python(d2)
    (expected_grad,) = torch.autograd.grad(expected.sum(), d2)
    assert torch.allclose(out, expected, rtol=1e-12, atol=1e-12)
    assert torch.allclose(grad, expected_grad, rtol=1e-12, atol=1e-12)
    assert "rt.guarded(rt.div" in algorithm.code and "rt.blend_finite(" in algorithm.code


def reciprocal_after_halving(x):
    r = 0.0
    count = 0.0
    while x > 1.0:
        x = x / 2.0
        count = count + 1.0
    if x != 0.0:
        r = 1.0 / x
    return r, count


def test_a_while_and_a_guarded_division_give_the_same_ir_through_both_front_ends():
    algorithm = dsl.Algorithm(
        dsl.Input("x"),
        dsl.Var("r", torch.tensor(0.0)),
        dsl.Var("count", torch.tensor(0.0)),
        dsl.While(
            dsl.GT("x", 1.0),
            dsl.Let("x", lambda x: x / 2.0),
            dsl.Let("count", lambda count: count + 1.0),
        ),
        dsl.If(dsl.NEq("x", 0.0), if_true=dsl.Let("r", lambda x: 1.0 / x)),
        dsl.Output("r"),
        dsl.Output("count"),
        name="reciprocal_after_halving",
    )
    from_dsl = str(algorithm.ir)
    assert from_dsl == str(compile_ir(reciprocal_after_halving)[0])
    assert "relaxed while relaxed (x > 1.0)" in from_dsl and "guarded div(1.0, x)" in from_dsl
    x = torch.tensor([0.0, 0.5, 3.0, 40.0], dtype=torch.float64)
    for ours, theirs in zip(algorithm(x), relax(reciprocal_after_halving)(x)):
        assert torch.equal(ours, theirs)

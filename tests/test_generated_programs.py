"""Random programs of avcompile's subset (tests/program_generator.py): hard mode equals Python.

Each generated program either compiles or raises ``CompileError``. When it compiles, hard mode
computes on every example of a batch what Python computes on that example alone, soft mode gives
finite values and gradients, the caller's tensors stay unchanged, and no call raises.

CI runs ``max_examples=400`` derandomized examples with the features of ``CI_FEATURES``; set the
environment variable ``AVCOMPILE_GENERATED_EXAMPLES`` (e.g. ``=3000``) to run more, and
``AVCOMPILE_GENERATED_ALL=1`` to enable every feature, including those of ``DISABLED`` and
``ONLY_COMPILE_ERRORS``.
"""

import math
import os
import sys

import numpy
import pytest
import torch
from hypothesis import HealthCheck, assume, event, given, note, settings
from hypothesis import strategies as st
from program_generator import FEATURES, INF_TABLE, MAX_N, SENTINEL, load, programs

from avcompile import CompileError, relax
from avcompile.errors import InternalError

# Features the compiler gets wrong today, with why: off in CI. tests/test_found_by_generator.py
# holds a minimal program for each defect found; enable a feature here once its defect is fixed.
# (for_each, counter_after_for_in_branch, inf_sentinel and helper_array were here until 85989df;
# the defects of relaxed_int_wrap_write and tensor_of_input were fixed in 1cbad2a, of
# constant_table_write in fd4953e, of relaxed_int_move_after_while and
# sentinel_under_branch_counter in 90bbf77, of relaxed_int_certain in bd28ed4, of
# write_at_certain_int in a35a034, before they were ever listed here; table_from_inf and
# table_at_relaxed_int were here until their defects were fixed (test_found_by_generator.py).)
DISABLED = {
    "product": "a product that overflows in a relaxed branch not taken gives NaN in hard mode",
}
# Features that pass but only ever give a CompileError today: off in CI so that its examples are
# spent on programs that run. Enable them when the compiler accepts them. (int_loop_in_branch,
# relaxed_int_index and relaxed_int_compare were here until relaxed integers, d908685.)
ONLY_COMPILE_ERRORS = {
    "alias": "an element write through an alias (z = x; z[0] = v) is refused, by design",
}

CI_FEATURES = {name: name not in DISABLED and name not in ONLY_COMPILE_ERRORS for name in FEATURES}
if os.environ.get("AVCOMPILE_GENERATED_ALL"):
    CI_FEATURES = dict.fromkeys(FEATURES, True)
EXAMPLES = int(os.environ.get("AVCOMPILE_GENERATED_EXAMPLES", "400"))
LINE_BUDGET = 2000  # lines Python may run per example; longer runs are rejected as inputs
LARGEST = 1e6  # a larger (or non-finite) value in Python's run rejects the inputs: see run_python
POOL = (-2.0, -1.0, -0.5, 0.0, 0.5, 1.0, 2.0, 3.0)


class Unfit(Exception):
    """Python ran more than ``LINE_BUDGET`` lines of the generated program, or one of its values
    grew beyond ``LARGEST``: such inputs are rejected. Values that overflow are outside what hard
    mode promises (a guarded branch value that overflows counts as not taken), and soft mode,
    which mixes both branches, would overflow sooner than Python."""


def fit(value, inf=False):
    """Whether ``value`` (a number, a list, a table) is within ``LARGEST``; with ``inf`` its
    elements may also be ``math.inf`` (a table started at ``math.inf``, see ``INF_TABLE``)."""
    if isinstance(value, list):
        return all(fit(v, inf) for v in value)
    if isinstance(value, numpy.ndarray):  # a table (see TABLES)
        return bool((numpy.abs(value) <= LARGEST).all())
    return not isinstance(value, float) or abs(value) <= LARGEST or (inf and value == math.inf)


class TABLES:
    """What ``torch`` is in Python's run: the few functions that make the generated programs'
    tables, as numpy arrays. A table's element is then a number (numpy.float64, a float), as
    SEMANTICS 7 reads it, where a torch tensor's would be a view that a later write, or an
    augmented assignment to another name for it, would change."""

    float64 = numpy.float64

    @staticmethod
    def zeros(*shape, dtype):
        return numpy.zeros(shape, dtype=dtype)

    @staticmethod
    def as_tensor(values, dtype):
        return numpy.array(values, dtype=dtype)

    tensor = as_tensor


def run_python(fn, args):
    """``fn(*args)`` counting the lines it runs in its own file and checking its float values
    (``math.inf`` is allowed in the sentinel ``best`` and in the cells of the tables named
    ``INF_TABLE...``); raises ``Unfit``."""
    filename, count = fn.__code__.co_filename, 0

    def trace(frame, event, arg):
        nonlocal count
        if frame.f_code.co_filename != filename:
            return None
        count += event == "line"
        values = frame.f_locals
        if count > LINE_BUDGET or not all(
            fit(v, inf=k.startswith(INF_TABLE))
            for k, v in values.items()
            if not (k == SENTINEL and v == math.inf)
        ):
            raise Unfit
        return trace

    previous = sys.gettrace()
    sys.settrace(trace)
    try:
        return fn(*args)
    finally:
        sys.settrace(previous)


def as_tuple(value):
    return value if isinstance(value, tuple) else (value,)


def draw_row(data, size):
    """``size`` distinct values: some from ``POOL`` (0.0 and values on which branches of literals
    turn), the others multiples of 0.001 in [-3, 3] not in it, in a random order."""
    from_pool = data.draw(st.integers(0, min(size, len(POOL))), label="from pool")
    others = st.integers(-2999, 2999).map(lambda k: (k if k % 500 else k + 1) / 1000)
    chosen = data.draw(st.permutations(POOL))[:from_pool] + data.draw(
        st.lists(others, min_size=size - from_pool, max_size=size - from_pool, unique=True)
    )
    return data.draw(st.permutations(chosen), label="row")


def draw_inputs(data, program):
    """Batched float64 inputs: 1 to 3 examples, distinct values within each example."""
    batch = data.draw(st.integers(1, 3), label="batch")
    n = data.draw(st.integers(program.n_min, MAX_N), label="n")
    arrays = 2 if program.has_y else 1
    rows = [draw_row(data, arrays * n) for _ in range(batch)]
    flat = torch.tensor(rows, dtype=torch.float64)
    return tuple(flat[:, k * n : (k + 1) * n].clone() for k in range(arrays))


def python_results(fn, inputs):
    """Python's results on every example, each a tuple of floats or lists of floats."""
    results = []
    module = fn.__globals__
    real = module.get("torch")
    if real is not None:
        module["torch"] = TABLES
    try:
        for b in range(inputs[0].shape[0]):
            try:
                results.append(as_tuple(run_python(fn, [x[b].tolist() for x in inputs])))
            except Unfit:
                assume(False)
    finally:
        if real is not None:
            module["torch"] = real
    return results


def values_of(output, b, batch):
    """Example ``b``'s value of one module output as a flat list of floats."""
    if isinstance(output, torch.Tensor) and output.dim() > 0 and output.shape[0] == batch:
        return torch.atleast_1d(output[b]).tolist()
    assert not isinstance(output, torch.Tensor), f"output of shape {tuple(output.shape)}"
    return [float(output)]  # a hard value: the same for every example


def flat(value):
    return [float(v) for v in value] if isinstance(value, list) else [float(value)]


def close(got, want):
    if math.isnan(want):
        return math.isnan(got)
    return math.isclose(got, want, rel_tol=1e-9, abs_tol=1e-12)


def check_hard(module, inputs, expected):
    before = [x.clone() for x in inputs]
    outputs = as_tuple(module(*inputs))
    assert all(torch.equal(x, y) for x, y in zip(inputs, before)), "hard call changed its input"
    batch = inputs[0].shape[0]
    for b, want in enumerate(expected):
        assert len(outputs) == len(want), f"{len(outputs)} outputs, Python gives {len(want)}"
        for k, (got, value) in enumerate(zip(outputs, want)):
            got_b, want_b = values_of(got, b, batch), flat(value)
            assert len(got_b) == len(want_b) and all(map(close, got_b, want_b)), (
                f"hard output {k} of example {b}: module {got_b} != Python {want_b} "
                f"on inputs {[x[b].tolist() for x in inputs]}"
            )


def check_soft(module, inputs, expected, names):
    """Values finite where Python's are, and never NaN; the sentinel ``best`` may be infinite (its
    expectation is, when a relaxed branch or loop may leave it at ``math.inf``); the gradient of
    the sum of the other outputs finite."""
    leaves = [x.clone().requires_grad_() for x in inputs]
    before = [x.detach().clone() for x in leaves]
    outputs = as_tuple(module(*leaves))
    assert all(torch.equal(x.detach(), y) for x, y in zip(leaves, before)), "soft call changed x"
    batch, total = inputs[0].shape[0], 0.0
    for k, (got, name) in enumerate(zip(outputs, names)):
        finite = [all(math.isfinite(v) for v in flat(want[k])) for want in expected]
        for b in range(batch):
            values = values_of(got, b, batch)
            ok = math.isfinite if finite[b] and name != SENTINEL else lambda v: not math.isnan(v)
            assert all(map(ok, values)), f"soft output {name} of example {b}: {values}"
        if isinstance(got, torch.Tensor) and got.requires_grad and all(finite):
            total = total + (got.sum() if name != SENTINEL else 0.0)
    if isinstance(total, torch.Tensor):
        grads = torch.autograd.grad(total, leaves, allow_unused=True)
        for g in grads:
            assert g is None or torch.isfinite(g).all(), f"soft gradient not finite: {g}"


def check_program(program, directory, data):
    """The property, for one program and inputs drawn from ``data``; returns "compiled" or the
    message of the ``CompileError``."""
    note(f"program:\n{program.source}")
    fn = load(program, directory).f
    try:
        soft = relax(fn, beta=5)
    except InternalError:
        raise
    except CompileError as err:
        return err.msg
    hard = relax(fn, hard=True)
    inputs = draw_inputs(data, program)
    note(f"inputs: {[x.tolist() for x in inputs]}")
    expected = python_results(fn, inputs)
    check_hard(hard, inputs, expected)
    check_soft(soft, inputs, expected, program.results)
    return "compiled"


def derandomized(examples):
    """Hypothesis settings of the generated-program tests: ``examples`` programs, the same in
    every run, with no deadline (a compile takes its time)."""
    return settings(
        max_examples=examples,
        deadline=None,
        derandomize=True,
        suppress_health_check=list(HealthCheck),
    )


@pytest.fixture(scope="module")
def directory(tmp_path_factory):
    return tmp_path_factory.mktemp("generated")


@derandomized(EXAMPLES)
@given(data=st.data())
def test_generated_program(directory, data):
    program = data.draw(programs(CI_FEATURES), label="program")
    compiled = check_program(program, directory, data) == "compiled"
    outcome = "compiled" if compiled else "CompileError"
    event(outcome)
    for name in sorted(program.features):  # --hypothesis-show-statistics: per feature
        event(f"{name}: {outcome}")


def test_switched_off_features_exist():
    assert set(DISABLED) | set(ONLY_COMPILE_ERRORS) <= set(FEATURES)

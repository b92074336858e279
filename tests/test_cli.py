"""The ``avcompile`` command, run as a user runs it (a subprocess), and errors at run time that
point at the user's line."""

import importlib
import os
import pathlib
import subprocess
import sys
import traceback

import pytest
import torch

import avcompile
from avcompile import relax, to_code
from avcompile.module import RelaxedModule

ROOT = pathlib.Path(__file__).resolve().parent.parent
SNAPSHOTS = pathlib.Path(__file__).parent / "snapshots"


def avcompile_cli(*args, cwd=ROOT):
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.run(
        [sys.executable, "-m", "avcompile", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=env,
        timeout=120,
    )


def example_functions():
    """Every relaxed function defined in ``src_examples``, as (module name, function name)."""
    found = []
    for path in sorted((ROOT / "src_examples").glob("*.py")):
        if path.name.startswith("_"):
            continue
        module = importlib.import_module(f"src_examples.{path.stem}")
        for name, obj in sorted(vars(module).items()):
            if (
                isinstance(obj, RelaxedModule)
                and getattr(obj, "__wrapped__", None) is not None
                and obj.__wrapped__.__module__ == module.__name__
            ):
                found.append((path.stem, name))
    return found


@pytest.mark.parametrize("module, name", example_functions())
def test_show_every_example_matches_snapshot(module, name):
    result = avcompile_cli("show", f"src_examples/{module}.py:{name}")
    assert result.returncode == 0, result.stderr
    snapshot = SNAPSHOTS / f"show_{module}_{name}.txt"
    if os.environ.get("AVCOMPILE_UPDATE_SNAPSHOTS"):
        snapshot.write_text(result.stdout)
    assert result.stdout == snapshot.read_text(), f"`avcompile show` output changed: {snapshot}"


def test_show_by_module_path_equals_fn_code_and_to_code():
    from src_examples.bubble_sort import bubble_sort

    result = avcompile_cli("show", "src_examples.bubble_sort:bubble_sort")
    assert result.returncode == 0, result.stderr
    header, code = result.stdout.split("\n", 1)
    assert header == (
        "# Hyperparameters (read at each call): beta=5, mode='soft', dist='logistic', "
        "max_iter=1024, eps=1e-05, backend='torch'"
    )
    assert code == bubble_sort.code == to_code(bubble_sort)
    assert "\033[" not in result.stdout  # piped: no colour


def test_show_colour_when_asked():
    result = avcompile_cli("show", "src_examples.bubble_sort:bubble_sort", "--color", "always")
    assert result.returncode == 0 and "\033[32m# L19: n = len(array)" in result.stdout


def test_show_ir():
    result = avcompile_cli("show", "src_examples/bubble_sort.py:bubble_sort", "--ir")
    assert result.returncode == 0, result.stderr
    header, out = result.stdout.split("\n", 1)
    assert header.startswith("# Hyperparameters (read at each call): beta=5, mode='soft'")
    assert out.startswith("def bubble_sort(array: relaxed unpacked):")
    assert "relaxed while truth(swapped):  # accumulates array, loss, swapped; last value n" in out
    assert "relaxed if relaxed (array[i] > array[i + 1]):  # blends array" in out


def test_show_annotate():
    result = avcompile_cli("show", "src_examples/bubble_sort.py:bubble_sort", "--annotate")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    k = lines.index("25 |             if array[i] > array[i + 1]:")
    assert lines[k + 1].endswith("p = rx.gt(array[i], array[i + 1])")
    assert "28 |                 loss = loss + 1" in lines


def test_show_plain_function_with_options(tmp_path):
    (tmp_path / "plain.py").write_text(
        "def scale(x, k):\n    if x > 0:\n        x = x * k\n    return x\n"
    )
    result = avcompile_cli("show", str(tmp_path / "plain.py") + ":scale", "--static", "k")
    assert result.returncode == 0, result.stderr
    assert "rt.Batch('scale', {'x': x})" in result.stdout  # k is hard, so not batched
    result = avcompile_cli("show", str(tmp_path / "plain.py") + ":scale")
    assert "rt.Batch('scale', {'x': x, 'k': k})" in result.stdout


BROKEN = """from avcompile import relax


@relax
def fine(x):
    return x * 2


@relax
def bounds(x):
    n = 0
    if x[0] > 0:
        n = 1
    for i in range(n):
        x[i] = 0.0
    return x


@relax
def picks(x):
    k = x[0]
    return x[k]
"""


def test_check_reports_every_broken_function(tmp_path):
    path = tmp_path / "broken.py"
    path.write_text(BROKEN)
    result = avcompile_cli("check", str(path))
    assert result.returncode == 1
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 2
    assert lines[0].startswith(f"{path}:14:20: a relaxed integer (`n`) is used as a bound")
    assert lines[1].startswith(f"{path}:22:12: a relaxed value is used as an index")


def test_check_clean_file():
    result = avcompile_cli("check", "src_examples/bubble_sort.py")
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout == ""


def test_show_a_good_function_beside_broken_ones(tmp_path):
    path = tmp_path / "broken.py"
    path.write_text(BROKEN)
    result = avcompile_cli("show", f"{path}:fine")
    assert result.returncode == 0, result.stderr
    assert "class fine(RelaxedModule):" in result.stdout
    assert "Relaxed fine, generated by avcompile from broken.py:5." in result.stdout


@pytest.mark.parametrize(
    "name, error",
    [
        ("bounds", "14:20: a relaxed integer (`n`) is used as a bound"),
        ("picks", "22:12: a relaxed value is used as an index"),
    ],
)
def test_show_a_broken_function_reports_its_own_error(tmp_path, name, error):
    path = tmp_path / "broken.py"
    path.write_text(BROKEN)
    result = avcompile_cli("show", f"{path}:{name}")
    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr.startswith(f"{path}:{error}")
    assert len(result.stderr.strip().splitlines()) == 1  # not the other function's error


KERNEL_OUTSIDE = """from avcompile import relax


@relax(backend="kernel")
def doubled(x):
    out = []
    for i in range(len(x)):
        out.append(x[i] * 2)
    return out


@relax
def fine(x):
    return x * 2
"""


def test_a_function_outside_the_kernel_subset_stops_neither_check_nor_show(tmp_path):
    path = tmp_path / "kernels.py"
    path.write_text(KERNEL_OUTSIDE)
    result = avcompile_cli("check", str(path))
    assert result.returncode == 1
    assert result.stdout.startswith(f"{path}:8:9: backend='kernel': ")
    assert avcompile_cli("show", f"{path}:fine").returncode == 0
    result = avcompile_cli("show", f"{path}:doubled")
    assert result.returncode == 1 and result.stderr.startswith(f"{path}:8:9: backend='kernel'")


def write_package(root):
    """A package whose module reads a constant by a relative import, with a good and a broken
    function: what ``show`` and ``check`` must import through the package."""
    package = root / "shapes"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "constants.py").write_text("SCALE = 3.0\n")
    (package / "algo.py").write_text(
        "from avcompile import relax\n"
        "\n"
        "from .constants import SCALE\n"
        "\n"
        "\n"
        "@relax\n"
        "def scaled(x):\n"
        "    if x > 0:\n"
        "        x = x * SCALE\n"
        "    return x\n"
        "\n"
        "\n"
        "@relax\n"
        "def picks(x):\n"
        "    k = x[0]\n"
        "    return x[k]\n"
    )
    return package


@pytest.mark.parametrize("target", ["shapes/algo.py", "shapes.algo"])
def test_check_a_package_module_with_a_relative_import(tmp_path, target):
    write_package(tmp_path)
    result = avcompile_cli("check", target, cwd=tmp_path)
    assert result.returncode == 1, result.stderr
    assert "ImportError" not in result.stdout + result.stderr
    assert result.stdout.splitlines() == [
        "shapes/algo.py:16:12: a relaxed value is used as an index: which element it picks "
        "differs per example and is not a whole number. Index with hard values (loop counters, "
        "lengths), or compare against each position with a relaxed `if`."
    ]


def test_show_a_package_module_from_inside_the_package(tmp_path):
    package = write_package(tmp_path)
    result = avcompile_cli("show", "algo.py:scaled", cwd=package)
    assert result.returncode == 0, result.stderr
    assert "# L9: x = x * SCALE" in result.stdout


def test_check_module_paths():
    result = avcompile_cli("check", "src_examples.bubble_sort", "src_examples/top_k.py")
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout == ""


def test_check_names_files_of_a_module_target_relative_to_the_directory(tmp_path):
    (tmp_path / "broken_module.py").write_text(BROKEN)
    result = avcompile_cli("check", "broken_module", cwd=tmp_path)
    assert result.returncode == 1
    lines = result.stdout.splitlines()
    assert [line.split(": ")[0] for line in lines] == [
        "broken_module.py:14:20",
        "broken_module.py:22:12",
    ]


@pytest.mark.parametrize("command", ["check", "show"])
@pytest.mark.parametrize("name", ["notes.txt", "sub/data.json", "Makefile"])
def test_a_file_that_is_not_python_is_a_usage_error(tmp_path, command, name):
    path = tmp_path / name
    path.parent.mkdir(exist_ok=True)
    path.write_text("def f(x):\n    return x\n")
    target = name if command == "check" else f"{name}:f"
    result = avcompile_cli(command, target, cwd=tmp_path)
    output = result.stdout + result.stderr
    assert result.returncode == 2
    assert (
        result.stderr
        == f"avcompile {command}: {name} is not a Python file: give a FILE.py or a package.module to import\n"
    )
    assert "Traceback" not in output and str(ROOT / "avcompile") not in output


def test_top_level_code_that_raises_is_reported_at_its_line(tmp_path):
    (tmp_path / "script.py").write_text(
        "import torch\n\nprint('loading')\nWEIGHTS = torch.zeros(2) + torch.zeros(3)\n"
    )
    for args in (("check", "script.py"), ("show", "script.py:f")):
        result = avcompile_cli(*args, cwd=tmp_path)
        assert result.returncode == 1
        report = result.stdout if args[0] == "check" else result.stderr
        assert "script.py:4:1: RuntimeError: The size of tensor a (2) must match" in report
        assert "Traceback" not in result.stderr
        assert "loading" not in result.stdout  # what the file prints goes to stderr


SETTINGS_HEADER = "# Hyperparameters (read at each call): "


def show_parts(*args):
    """The header comment and the rest of ``avcompile show``'s output for ``args``."""
    result = avcompile_cli("show", "src_examples/bubble_sort.py:bubble_sort", *args)
    assert result.returncode == 0, result.stderr
    header, body = result.stdout.split("\n", 1)
    assert header.startswith(SETTINGS_HEADER)
    return header[len(SETTINGS_HEADER) :], body


def test_show_states_and_changes_the_hyperparameters():
    default, default_code = show_parts()
    assert default == (
        "beta=5, mode='soft', dist='logistic', max_iter=1024, eps=1e-05, backend='torch'"
    )
    changed, changed_code = show_parts(
        "--beta", "3", "--hard", "--max-iter", "50", "--eps", "0.001", "--dist", "cauchy"
    )
    assert changed == (
        "beta=3.0, mode='hard', dist='cauchy', max_iter=50, eps=0.001, backend='torch'"
    )
    # The module reads them at each call: its code is the same, and its comparisons relax or
    # not by the mode the call finds (`rx`).
    assert changed_code == default_code
    assert "p = rx.gt(array[i], array[i + 1])" in changed_code
    assert show_parts("--mode", "st")[0].startswith("beta=5, mode='st',")


def test_show_a_plain_function_with_hyperparameters(tmp_path):
    (tmp_path / "plain.py").write_text(
        "def clip(x):\n    if x > 1:\n        x = 1.0\n    return x\n"
    )
    result = avcompile_cli("show", "plain.py:clip", "--beta", "2", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(
        SETTINGS_HEADER + "beta=2.0, mode='soft', dist='logistic', max_iter=1024"
    )


def test_show_hard_kernels_compare_exactly():
    pytest.importorskip("numba")
    soft, soft_kernels = show_parts("--backend", "kernel")
    hard, hard_kernels = show_parts("--backend", "kernel", "--hard")
    assert soft.endswith("mode='soft', dist='logistic', max_iter=1024, eps=1e-05, backend='kernel'")
    assert hard.endswith("mode='hard', dist='logistic', max_iter=1024, eps=1e-05, backend='kernel'")
    assert "MODE = 0\n" in soft_kernels and "MODE = 1\n" in hard_kernels
    assert soft_kernels.replace("MODE = 0\n", "MODE = 1\n") == hard_kernels


def test_show_auto_says_which_backend_runs():
    pytest.importorskip("numba")
    header, body = show_parts("--backend", "auto")
    assert header.endswith("backend='auto' (runs the kernel backend)")
    assert body.startswith("import torch\n")  # the torch module; `--backend kernel` shows kernels


@pytest.mark.parametrize(
    "args, words",
    [
        (("check", "no/such/file.py"), "no such file: no/such/file.py"),
        (("show", "no/such/file.py:f"), "no such file"),
        (("show", "src_examples/bubble_sort.py:missing"), "has no function named 'missing'"),
        (("show", "no_such_package.mod:f"), "cannot import no_such_package.mod"),
        (("show", "bubble_sort"), "expected FILE.py:NAME"),
    ],
)
def test_missing_file_or_name(args, words):
    result = avcompile_cli(*args)
    assert result.returncode == 2
    assert words in result.stderr


def test_help_and_version():
    result = avcompile_cli("--help")
    assert result.returncode == 0 and "show" in result.stdout and "check" in result.stdout
    for command in ("show", "check"):
        result = avcompile_cli(command, "--help")
        assert result.returncode == 0 and "usage: avcompile " + command in result.stdout
    result = avcompile_cli("--version")
    assert result.stdout.strip() == f"avcompile {avcompile.__version__}"


def test_print_gives_a_summary():
    from src_examples.bubble_sort import bubble_sort

    text = str(bubble_sort)
    assert text == (
        "bubble_sort(inputs=(array: relaxed), outputs=(array, loss), beta=5, "
        "mode='soft', max_iter=1024, eps=1e-05)"
    )


def mismatched(x, y):
    s = x[0]
    if s > 0:
        s = x + y * 2  # the failing line
    return s


def test_runtime_error_points_at_user_line():
    module = relax(mismatched)
    with pytest.raises(RuntimeError, match="must match the size") as info:
        module(torch.randn(3, 4), torch.randn(3, 5))
    frames = traceback.extract_tb(info.value.__traceback__)
    user = [f for f in frames if f.filename == __file__ and f.name == "mismatched"]
    assert len(user) == 1
    assert user[0].line == "s = x + y * 2  # the failing line"
    assert frames[-1].filename != __file__ or frames[-1] is user[0]


DSL_PROGRAM = """import torch
from avcompile.dsl import GT, Algorithm, If, Input, Let, Output, Var

clip = Algorithm(
    Input("x"),
    Var("y", torch.tensor(0.0)),
    Let("y", "x"),
    If(GT("x", 1.0), if_true=[Let("y", 1.0)]),
    Output("y"),
    beta=4.0,
)
"""


def test_show_an_algorithm_of_the_dsl(tmp_path):
    path = tmp_path / "dsl_program.py"
    path.write_text(DSL_PROGRAM)
    result = avcompile_cli("show", f"{path}:clip")
    assert result.returncode == 0, result.stderr
    assert "(RelaxedModule):" in result.stdout and "rx.gt(" in result.stdout
    result = avcompile_cli("show", f"{path}:clip", "--ir")
    assert result.returncode == 0, result.stderr
    assert "relaxed if" in result.stdout

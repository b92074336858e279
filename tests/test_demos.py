"""Every demo of ``src_examples`` runs from the command line, as the README shows, with a few
steps: it exits 0 and prints nothing on stderr (no warning, no traceback)."""

import importlib
import inspect
import os
import pathlib
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

import pytest

from src_examples import run_demo

ROOT = pathlib.Path(__file__).resolve().parent.parent
DEMOS = sorted(p.stem for p in (ROOT / "src_examples").glob("*.py") if p.stem != "__init__")


def run_from_command_line(name, steps=2):
    """``python -m src_examples.NAME --steps STEPS`` from the repository's root, one thread."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONWARNINGS"}
    env["OMP_NUM_THREADS"] = "1"  # the demos run side by side
    return subprocess.run(
        [sys.executable, "-m", f"src_examples.{name}", "--steps", str(steps)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )


@pytest.fixture(scope="module")
def demo_runs():
    """Every demo started at once, as many at a time as there are cores: {name: future}."""
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as pool:
        yield {name: pool.submit(run_from_command_line, name) for name in DEMOS}


def test_every_example_has_a_demo_with_steps():
    assert len(DEMOS) >= 12
    for name in DEMOS:
        demo = importlib.import_module(f"src_examples.{name}").demo
        assert "steps" in inspect.signature(demo).parameters, name


@pytest.mark.parametrize("name", DEMOS)
def test_demo_runs_quietly_from_the_command_line(name, demo_runs):
    result = demo_runs[name].result()
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    assert "step" in result.stdout or name in ("integer_sqrt", "median_filter")


def test_steps_come_from_the_command_line():
    seen = []

    def demo(steps=7):
        seen.append(steps)

    run_demo(demo, argv=[])
    run_demo(demo, argv=["--steps", "3"])
    assert seen == [7, 3]
    with pytest.raises(SystemExit) as exit_info:
        run_demo(demo, argv=["--steps", "0"])
    assert exit_info.value.code == 2
    assert seen == [7, 3]

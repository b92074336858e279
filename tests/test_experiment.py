"""The sorting-supervision experiment: its data and metrics, a few training steps with each engine,
training across two processes with DistributedDataParallel on loopback, and what a run does
without its optional packages."""

import json
import pathlib
import subprocess
import sys
import types

import pytest
import torch

from benchmarks import sorting_supervision as ss

SMOKE = ss.Config(steps=100, eval_every=100, test_sets=100)


def test_numbers_are_digit_images_side_by_side_and_pools_are_disjoint():
    pools = ss.load_digit_pools()
    train = {tuple(img.flatten().tolist()) for img in pools.train_images}
    test = {tuple(img.flatten().tolist()) for img in pools.test_images}
    assert len(pools.train_images) + len(pools.test_images) == 1797
    assert not train & test  # no image is in both pools

    gen = torch.Generator().manual_seed(0)
    x, values = ss.sample_sets(pools.test_images, pools.test_labels, 50, 5, gen, in_order=True)
    assert x.shape == (50, 5, 1, 8, 32) and values.shape == (50, 5)
    assert (values.diff(dim=-1) > 0).all()  # distinct and in ascending order
    # The k-th 8x8 block of every image is a test-pool image of the k-th digit of its value.
    by_image = {
        tuple(img.flatten().tolist()): int(label)
        for img, label in zip(pools.test_images, pools.test_labels)
    }
    for image, value in zip(x[:5].flatten(0, 1), values[:5].flatten()):
        digits = [
            by_image[tuple(image[0, :, 8 * k : 8 * k + 8].flatten().tolist())] for k in range(4)
        ]
        assert int("".join(map(str, digits))) == value


def test_ranking_accuracy_definitions():
    values = torch.tensor([[10, 20, 30, 40, 50, 60], [60, 50, 40, 30, 20, 10]])
    # The second set's smallest two numbers are swapped: the whole ranking is wrong at two ranks,
    # but the ranking of its first five numbers (all but the smallest) is right.
    scores = torch.tensor([[1.0, 2, 3, 4, 5, 6], [6.0, 5, 4, 3, 1, 2]])
    acc = ss.ranking_accuracy(scores, values)
    assert acc == pytest.approx({"em": 0.5, "ew": 10 / 12, "em5": 1.0})
    scores[1] = torch.tensor([5.0, 6, 4, 3, 2, 1])  # now two of the first five are swapped
    assert ss.ranking_accuracy(scores, values) == pytest.approx(
        {"em": 0.5, "ew": 10 / 12, "em5": 0.5}
    )


def test_engines_compute_the_same_loss():
    scores = torch.randn(100, 5, dtype=torch.float64, requires_grad=True)
    losses, grads = [], []
    for engine in ss.ENGINES:
        _, swaps = ss.relaxed_sort(engine, 8.0)(scores)
        losses.append(swaps)
        grads.append(torch.autograd.grad(swaps.sum(), scores)[0])
    assert torch.allclose(losses[0], losses[1], atol=1e-5)
    assert torch.allclose(grads[0], grads[1], atol=1e-4)


def test_training_lowers_the_loss_and_engines_agree():
    runs = {
        engine: ss.train(ss.Config(**{**vars(SMOKE), "engine": engine})) for engine in ss.ENGINES
    }
    for history in runs.values():
        first, last = history["loss"][:10], history["loss"][-10:]
        assert sum(last) < 0.85 * sum(first), (first, last)  # about 0.7 at seed 0
        assert 0 <= history["evals"][-1]["em"] <= 1
    # From the same seed the two engines take (nearly) the same first steps.
    a, b = runs["avcompile"]["loss"][:5], runs["algovision"]["loss"][:5]
    assert max(abs(u - v) for u, v in zip(a, b)) < 1e-3, (a, b)


def test_ddp_on_two_processes_keeps_parameters_equal():
    # Without dropout, whose masks depend on how the batch is split, so that the run can be
    # compared with one process.
    config = ss.Config(steps=4, eval_every=4, test_sets=20, dropout=0.0)
    ranks = ss.train_spawned(config, world_size=2)
    first, second = ranks[0]["parameters"], ranks[1]["parameters"]
    torch.manual_seed(config.seed)
    initial = ss.NumberScorer(dropout=0.0).state_dict()
    assert first.keys() == second.keys() == initial.keys()
    for name in first:
        assert torch.equal(first[name], second[name]), name
    assert any(not torch.equal(first[k], initial[k]) for k in first)  # training happened
    # Each rank trained on its half of the same global batch: together they take the steps of
    # one process on the whole batch (up to rounding, which Adam's first steps amplify only in
    # parameters whose gradient is near zero, so compare the losses).
    assert ranks[0]["loss"] != ranks[1]["loss"]
    mean = [(a + b) / 2 for a, b in zip(ranks[0]["loss"], ranks[1]["loss"])]
    assert mean == pytest.approx(ss.train(config)["loss"], rel=1e-4)
    assert ranks[0]["evals"] and not ranks[1]["evals"]  # rank 0 alone evaluates


# ---------------------------------------------------------------------------------------------
# optional packages and outputs


def test_a_run_names_the_optional_packages_it_lacks_before_training(monkeypatch):
    monkeypatch.setitem(sys.modules, "sklearn", None)  # as if not installed
    monkeypatch.setitem(sys.modules, "algovision", None)
    monkeypatch.setattr(ss, "train", lambda *a, **k: pytest.fail("training started"))
    with pytest.raises(SystemExit) as exit_info:
        ss.main(["--steps", "2", "--engine", "both", "--no-progress"])
    message = str(exit_info.value.code)
    assert "scikit-learn (for the digits)" in message
    assert "algovision (for --engine algovision)" in message
    assert "tqdm" not in message and "matplotlib" not in message  # installed, or not needed
    assert message.endswith("Install them with: pip install -e '.[bench]'")


def test_what_a_run_needs_follows_its_options():
    assert list(ss.needed_packages(("avcompile",), progress=False, plot=False)) == ["sklearn"]
    assert list(ss.needed_packages(ss.ENGINES, progress=True, plot=True)) == [
        "sklearn",
        "tqdm",
        "matplotlib",
        "algovision",
    ]


def test_the_command_line_without_scikit_learn_says_so_on_stderr():
    # A fresh interpreter in which importing sklearn fails, running the script as `python -m`.
    shim = (
        "import runpy, sys; sys.modules['sklearn'] = None; "
        "sys.argv = ['sorting_supervision', '--steps', '2', '--no-progress']; "
        "runpy.run_module('benchmarks.sorting_supervision', run_name='__main__')"
    )
    root = pathlib.Path(__file__).resolve().parent.parent
    result = subprocess.run(
        [sys.executable, "-c", shim], cwd=root, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 1
    assert result.stdout == ""  # nothing trained, nothing printed
    assert "Traceback" not in result.stderr
    assert "scikit-learn (for the digits)" in result.stderr
    assert "pip install -e '.[bench]'" in result.stderr


def test_results_are_written_before_the_plot_is_drawn(tmp_path, monkeypatch):
    results, figure = tmp_path / "results.json", tmp_path / "accuracy.png"
    monkeypatch.setitem(sys.modules, "matplotlib", types.ModuleType("matplotlib"))
    seen = []

    def failing_plot(histories, path):
        seen.append(json.loads(results.read_text()))  # fails if the results are not there yet
        raise RuntimeError("the plot could not be drawn")

    monkeypatch.setattr(ss, "plot", failing_plot)
    argv = ["--steps", "2", "--eval-every", "1", "--test-sets", "10", "--no-progress"]
    with pytest.raises(RuntimeError, match="could not be drawn"):
        ss.main(argv + ["--json", str(results), "--plot", str(figure)])
    assert len(seen) == 1
    (figures,) = seen[0]["figures"]
    assert figures["engine"] == "avcompile" and figures["steps"] == 2
    assert len(seen[0]["histories"][0]["loss"]) == 2

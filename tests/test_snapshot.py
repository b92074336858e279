"""Snapshot of the generated source of ``src_examples``' bubble sort: a change in generated code
shows up in review. Regenerate with ``AVCOMPILE_UPDATE_SNAPSHOTS=1 pytest tests/test_snapshot.py``."""

import os
import pathlib

from src_examples.bubble_sort import bubble_sort

SNAPSHOTS = pathlib.Path(__file__).parent / "snapshots"


def check_snapshot(name, text):
    path = SNAPSHOTS / name
    if os.environ.get("AVCOMPILE_UPDATE_SNAPSHOTS"):
        path.write_text(text)
    assert text == path.read_text(), f"generated code changed; review and update {path}"


def test_bubble_sort_generated_source():
    code = bubble_sort.code
    check_snapshot("bubble_sort.py.txt", code)


def test_generated_source_reads_like_the_program():
    code = bubble_sort.code
    assert "nonlocal" not in code
    for name in ("array", "swapped", "loss", "n", "i"):
        assert f"{name} = " in code or f"for {name} in" in code
    for line, text in [(19, "n = len(array)"), (22, "while swapped:"),
                       (25, "if array[i] > array[i + 1]:"), (30, "return array, loss")]:
        assert f"# L{line}: {text}" in code
    assert max(len(line) for line in code.splitlines()) < 160

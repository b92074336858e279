"""What the generated source of bubble sort must look like to a person. (Its exact text is
pinned, with every example's, by ``test_cli``; regenerate those snapshots with
``AVCOMPILE_UPDATE_SNAPSHOTS=1 pytest tests/test_cli.py``.)"""

from src_examples.bubble_sort import bubble_sort


def test_generated_source_reads_like_the_program():
    code = bubble_sort.code
    assert "nonlocal" not in code
    for name in ("array", "swapped", "loss", "n", "i"):
        assert f"{name} = " in code or f"for {name} in" in code
    for line, text in [
        (19, "n = len(array)"),
        (22, "while swapped:"),
        (25, "if array[i] > array[i + 1]:"),
        (30, "return array, loss"),
    ]:
        assert f"# L{line}: {text}" in code
    assert max(len(line) for line in code.splitlines()) < 160


def test_readme_shows_real_generated_code():
    import pathlib

    readme = (pathlib.Path(__file__).resolve().parent.parent / "README.md").read_text()
    section = readme.split("## What it compiles to", 1)[1]
    block = section.split("```python\n", 1)[1].split("```", 1)[0]
    assert block in bubble_sort.code

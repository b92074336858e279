"""The documentation: every public name has a docstring with an example, the ``>>>`` examples
compute what they show, ``docs/SEMANTICS.md`` has every section the code cites, and the site
builds with strict warnings."""

import doctest
import importlib.util
import inspect
import pathlib
import re
import subprocess
import sys

import pytest
import torch
from test_python_constructs import row_function

import avcompile
import avcompile.dsl
from avcompile import relax

ROOT = pathlib.Path(__file__).resolve().parent.parent


def public_names():
    """``(qualified name, object)`` of every public name: ``avcompile.__all__``, the ``__all__``
    of each module it exports (``avcompile.schedule``) and ``avcompile.dsl.__all__``."""
    found = []
    for module in (avcompile, avcompile.dsl):
        for name in module.__all__:
            value = getattr(module, name)
            found.append((f"{module.__name__}.{name}", value))
            if inspect.ismodule(value):
                found += [(f"{value.__name__}.{n}", getattr(value, n)) for n in value.__all__]
    return found


PUBLIC = public_names()


def example_in(doc):
    """The first example of a docstring, or None: a doctest (a ``>>>`` line) or a literal block
    (a line ending in ``::`` followed, after blank lines, by a more indented line)."""
    lines = inspect.cleandoc(doc or "").splitlines()
    for k, line in enumerate(lines):
        if line.lstrip().startswith(">>>"):
            return line.strip()
        if not line.rstrip().endswith("::"):
            continue
        indent = len(line) - len(line.lstrip())
        rest = [text for text in lines[k + 1 :] if text.strip()]
        if rest and len(rest[0]) - len(rest[0].lstrip()) > indent:
            return rest[0].strip()
    return None


def test_examples_are_found_only_where_a_reader_sees_code():
    # Docstrings as they stand in the source: the lines after the first are indented.
    assert example_in(">>> gt(1, 0)\n    True\n    ") == ">>> gt(1, 0)"
    assert example_in("Sort.\n\n    Example::\n\n        sort(x)\n    ") == "sort(x)"
    assert example_in("Sort.\n\n    Example::\n        sort(x)\n    ") == "sort(x)"
    assert example_in("Sort, as in ``sort(x)``.") is None  # inline code is not an example
    assert example_in("Sort.\n\n    Example::\n\n    sort(x)\n    ") is None  # prose
    # After a first line ending in `::` the block is all that is indented, so nothing is
    # indented: it reads (and renders) as prose.
    assert example_in("Sort it::\n\n        sort(x)\n    ") is None
    assert example_in(None) is None


def test_every_public_name_is_listed():
    names = {name for name, _ in PUBLIC}
    assert {"avcompile.relax", "avcompile.probs", "avcompile.schedule.geometric"} <= names
    assert {"avcompile.dsl.Algorithm", "avcompile.dsl.Let", "avcompile.dsl.GT"} <= names


@pytest.mark.parametrize("name, value", PUBLIC, ids=[name for name, _ in PUBLIC])
def test_public_name_has_a_docstring_with_an_example(name, value):
    doc = inspect.getdoc(value)
    assert doc, f"{name} has no docstring"
    assert example_in(value.__doc__) is not None, (
        f"{name}'s docstring shows no example: add a `>>>` doctest or a block of code after a "
        f"line ending in `::`"
    )


def doctests():
    """The ``>>>`` examples of the public names, each to run with ``torch`` and ``avcompile``."""
    finder = doctest.DocTestFinder(recurse=False)
    tests, seen = [], set()
    for name, value in PUBLIC:
        if id(value) in seen:  # an alias (`Var` is `Variable`)
            continue
        seen.add(id(value))
        globs = {"torch": torch, "avcompile": avcompile, **vars(avcompile.dsl)}
        tests += [t for t in finder.find(value, name, globs=globs) if t.examples]
    return tests


DOCTESTS = doctests()


def test_some_public_names_have_doctests():
    assert len(DOCTESTS) >= 10


@pytest.mark.parametrize("test", DOCTESTS, ids=[t.name for t in DOCTESTS])
def test_doctest_of_public_name(test):
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    torch.manual_seed(0)
    runner.run(test, out=lambda text: pytest.fail(text, pytrace=False))
    assert runner.failures == 0


def semantics_sections():
    """``{number: title}`` of the sections of ``docs/SEMANTICS.md``, in order."""
    text = (ROOT / "docs" / "SEMANTICS.md").read_text()
    return {int(n): title for n, title in re.findall(r"^## (\d+)\. (.+)$", text, re.M)}


def test_semantics_document_has_sections_1_to_12_in_order():
    sections = semantics_sections()
    assert list(sections) == list(range(1, 13))


CITATION = re.compile(r"SEMANTICS (?:section )?(\d+(?:(?:, | and )\d+)*)")


def test_every_cited_semantics_section_exists():
    cited = set()
    for folder in ("avcompile", "src_examples", "tests", "benchmarks"):
        for path in (ROOT / folder).glob("**/*.py"):
            for numbers in CITATION.findall(path.read_text()):
                cited |= {int(n) for n in re.findall(r"\d+", numbers)}
    assert {2, 5, 7, 10, 11, 12} <= cited
    assert cited <= set(semantics_sections())


@pytest.mark.skipif(importlib.util.find_spec("mkdocs") is None, reason="pip install '.[docs]'")
def test_documentation_site_builds_with_strict_warnings(tmp_path):
    done = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert (tmp_path / "api" / "index.html").exists()


# ------------------------------------------------------------------------------ docs/python.md


def python_page_table():
    """The rows ``(construct, line)`` of the table of ``docs/python.md`` and its helpers."""
    text = (ROOT / "docs" / "python.md").read_text()
    section = text.split("## At a glance", 1)[1].split("\n## ", 1)[0]
    rows = re.findall(r"^\| (.+?) \| `(.+?)` \| .+ \|$", section, flags=re.M)
    helpers = re.search(r"```python\n(.*?)```", section, flags=re.S).group(1)
    return rows, helpers


ROWS, HELPERS = python_page_table()


def test_the_python_page_lists_the_constructs():
    assert len(ROWS) >= 25
    assert "def largest(" in HELPERS and "@avcompile.batched" in HELPERS


@pytest.mark.parametrize("k", range(len(ROWS)), ids=[construct for construct, _ in ROWS])
def test_each_line_of_the_python_page_compiles_and_equals_python(k, tmp_path):
    construct, line = ROWS[k]
    fn = row_function(line, tmp_path, k, HELPERS, "python_page_row")
    x = torch.tensor([[0.5, -1.25, 2.0, 0.75], [-0.5, 3.0, 1.5, -2.0]], dtype=torch.float64)
    got = relax(fn, hard=True)(x.clone())
    for b in range(x.shape[0]):
        try:  # a list where Python takes one: a tensor's elements would be views
            want = fn(x[b].tolist())
        except (AttributeError, TypeError):
            want = fn(x[b].clone())
        want = torch.as_tensor(want, dtype=torch.float64)
        assert torch.allclose(got[b].double(), want, rtol=1e-12, atol=1e-12), (construct, b)

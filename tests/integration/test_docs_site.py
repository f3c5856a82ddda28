"""The documentation site: the user guide's code runs, and ``mkdocs build --strict`` passes.

A fenced ```python block of ``docs/guide/*.md`` preceded by the line ``<!-- test -->`` is run;
the blocks of one page run in order in one namespace, in a temporary working directory. When the
next block is a ```text block preceded by ``<!-- output -->``, what the code printed must equal
it line by line (trailing spaces ignored). Blocks without the marker (a real Hugging Face
tokenizer, shell commands) are shown, not run.
"""

from __future__ import annotations

import contextlib
import importlib.util
import io
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
GUIDE = DOCS / "guide"

_FENCE = re.compile(r"^```(\w*)[^\n]*\n(.*?)^```[ \t]*$", re.MULTILINE | re.DOTALL)


def _blocks(text: str) -> list[tuple[str, str | None]]:
    """``(code, expected output or None)`` of every marked python block of a page, in order."""
    fences = []  # (language, body, the marker on the line before the fence)
    for match in _FENCE.finditer(text):
        before = text[: match.start()].rstrip("\n").rsplit("\n", 1)[-1].strip()
        fences.append((match.group(1), match.group(2), before))
    blocks = []
    for i, (language, body, marker) in enumerate(fences):
        if marker != "<!-- test -->":
            continue
        assert language == "python", f"<!-- test --> marks a ```{language} block, not a ```python one"
        expected = None
        if i + 1 < len(fences) and fences[i + 1][2] == "<!-- output -->":
            expected = fences[i + 1][1]
        blocks.append((body, expected))
    return blocks


def _pages() -> list[Path]:
    return sorted(path for path in GUIDE.glob("*.md") if _blocks(path.read_text()))


def _lines(text: str) -> list[str]:
    return [line.rstrip() for line in text.strip("\n").splitlines()]


def test_marked_blocks_are_found():
    pages = _pages()
    assert len(pages) >= 6, [page.name for page in pages]
    assert sum(len(_blocks(page.read_text())) for page in pages) >= 15


@pytest.mark.parametrize("page", _pages(), ids=lambda page: page.name)
def test_guide_code_runs(page: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.chdir(tmp_path)  # a Trainer writes lightning_logs/ into the working directory
    namespace: dict = {"__name__": f"docs_guide_{page.stem.replace('-', '_')}"}
    for number, (code, expected) in enumerate(_blocks(page.read_text()), start=1):
        printed = io.StringIO()
        with contextlib.redirect_stdout(printed):
            exec(compile(code, f"{page.name}, block {number}", "exec"), namespace)
        if expected is not None:
            assert _lines(printed.getvalue()) == _lines(expected), f"{page.name}, block {number}"


def test_every_page_is_in_the_nav():
    """Pages not in mkdocs.yml's nav are built but unreachable; --strict does not catch that."""
    nav = (ROOT / "mkdocs.yml").read_text()
    pages = [path.relative_to(DOCS).as_posix() for path in DOCS.rglob("*.md")]
    missing = [page for page in pages if f": {page}\n" not in nav]
    assert not missing, f"add these pages to the nav of mkdocs.yml: {missing}"


def _hooks():
    spec = importlib.util.spec_from_file_location("docs_hooks", DOCS / "hooks.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.skipif(importlib.util.find_spec("griffe") is None, reason="the docs extra is not installed")
def test_docstring_rewrite():
    rewrite = _hooks().rewrite
    text = rewrite(
        "See :class:`~lightning_interactions.masking.Masker` and :func:`compute`.\n\n"
        "Example:\n    >>> f(:class:`x`)\n    [1, 2]\n\n"
        "Sampling:\n    a, b: the two.\n        More.\n"
    )
    assert '<autoref identifier="lightning_interactions.masking.Masker" optional><code>Masker</code>' in text
    assert '<autoref identifier="compute" optional><code>compute()</code></autoref>' in text
    assert "Examples:\n    >>> f(:class:`x`)" in text  # doctest code is left alone
    # Without an object there are no parameter names, so the group stays as written.
    assert "Sampling:\n    a, b: the two." in text


@pytest.mark.skipif(importlib.util.find_spec("griffe") is None, reason="the docs extra is not installed")
def test_argument_groups_become_tables():
    import griffe

    hooks = _hooks()
    source = (
        "def f(a, b, c):\n"
        '    """Do.\n\n'
        "    Sampling:\n"
        "        a, b: the two.\n"
        "            More.\n"
        "        c: the third.\n"
        '    """\n'
    )
    module = griffe.visit("m", filepath=Path("m.py"), code=source)
    text = hooks.rewrite(module["f"].docstring.value, module["f"])
    assert text.splitlines()[2:] == [
        "**Sampling**",
        "",
        "Args:",
        "    a: the two.",
        "        More.",
        "    b: the two.",
        "        More.",
        "    c: the third.",
    ]


@pytest.mark.skipif(
    importlib.util.find_spec("mkdocs") is None or importlib.util.find_spec("mkdocstrings") is None,
    reason="the docs extra (mkdocs, mkdocs-material, mkdocstrings) is not installed",
)
def test_site_builds_strict(tmp_path: Path):
    site = tmp_path / "site"
    run = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(site)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
    )
    assert run.returncode == 0, f"mkdocs build --strict failed:\n{run.stdout}\n{run.stderr}"
    for page in ("index.html", "guide/maskers.html", "api/monitor.html", "theory.html"):
        assert (site / page).is_file(), page
    api = (site / "api" / "monitor.html").read_text()
    assert "InteractionMonitor" in api and "alert_gap_rise" in api
    # Nothing is fetched at view time: no Google Fonts, no CDN.
    assert "fonts.googleapis.com" not in (site / "index.html").read_text()

"""Shared test helpers: a bank built inline from YAML snippets, and the `tex` marker."""

from __future__ import annotations

import os
import shutil
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
BANK = ROOT / "question_bank"
FIXTURES = Path(__file__).resolve().parent / "fixtures"

# In CI (CI=true) TeX must be there: a missing engine fails the TeX tests instead of skipping them.
needs_tex = pytest.mark.skipif(
    not os.environ.get("CI") and (shutil.which("pdflatex") is None or shutil.which("pdftotext") is None),
    reason="needs pdflatex and pdftotext (apt-get install texlive-latex-base poppler-utils)",
)


@pytest.fixture(autouse=True, scope="session")
def _cache_folder(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Builds keep pdflatex's unpacked format in a cache folder of the session's own, not the
    user's (generator.typeset.formats.cache_folder); subprocesses inherit it."""
    os.environ["XDG_CACHE_HOME"] = str(tmp_path_factory.mktemp("xdg-cache"))


@pytest.fixture(autouse=True, scope="session")
def _working_directory(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """The tests (and module fixtures) run in an empty folder, outside the repository and outside
    every test's tmp_path, whatever folder pytest was started from. Messages show a path relative to the
    working directory when it is below it (generator.errors.display_path), so without this the
    expected messages would depend on where pytest runs (from /tmp, every tmp_path is below it);
    and a test that reaches the repository through a relative path fails everywhere, not only
    elsewhere than the repository root. Tests use ROOT, BANK and FIXTURES; a test of relative
    paths changes folder itself (monkeypatch.chdir)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(tmp_path_factory.mktemp("cwd"))
        yield


def root_relative(text: str) -> str:
    """`text` with the repository's absolute path written as <ROOT> (rendered documents name
    their question files; golden files must not depend on where the repository is)."""
    return text.replace(str(ROOT), "<ROOT>")


def write(path: Path, text: str) -> Path:
    """Write dedented text to `path`, creating folders; returns the path."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    return path


@pytest.fixture
def bank(tmp_path: Path) -> Path:
    """An empty bank folder (questions/ and worksheets/) to fill in a test."""
    root = tmp_path / "bank"
    (root / "questions").mkdir(parents=True)
    (root / "worksheets").mkdir()
    return root

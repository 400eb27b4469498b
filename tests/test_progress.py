"""The progress bar: drawn on a terminal, silent anywhere else (CI logs, pipes)."""

from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import FIXTURES, ROOT, needs_tex

from generator import progress as module
from generator.progress import progress


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def run_stages(stream: io.StringIO) -> None:
    with progress(stream) as shown:
        shown.stage("solving", 3)
        for _ in range(3):
            shown.advance()
        shown.stage("typesetting", 2)
        shown.advance(2)


def test_nothing_is_written_when_the_stream_is_not_a_terminal() -> None:
    stream = io.StringIO()
    run_stages(stream)
    assert stream.getvalue() == ""


def test_a_terminal_gets_a_bar_with_the_stage_name(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(module, "DELAY", 0.0)
    stream = Terminal()
    run_stages(stream)
    assert "solving" in stream.getvalue() and "typesetting: " in stream.getvalue()


def test_a_short_build_shows_no_bar_even_on_a_terminal() -> None:
    stream = Terminal()
    run_stages(stream)  # done well within the one-second delay
    assert "solving" not in stream.getvalue() and "typesetting" not in stream.getvalue()


@needs_tex
def test_a_build_with_stderr_in_a_pipe_prints_only_its_notes(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "generator", "build", "--bank", str(FIXTURES / "classbank"), "--out", str(tmp_path / "out"),
         "--variants", "20", "--worksheet", "drill"],
        cwd=ROOT, capture_output=True, text=True, timeout=300, check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr == "note: square: only 7 distinct variants exist, 20 asked\n"

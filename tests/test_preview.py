"""`preview`: one question, one seed, as PDF and PNG pages, the same numbers as a build."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from authoring_helpers import QUESTION, make_bank, question, write
from conftest import needs_tex

from generator.cli import main
from generator.commands.preview import PreviewOptions, find_question, preview
from generator.errors import SpecError


def test_find_question_by_id_or_file(tmp_path: Path) -> None:
    bank = make_bank(tmp_path / "bank", {"q": QUESTION, "broken": "id: [\n"})
    assert find_question("q", bank).path == f"{bank}/questions/q.yaml"
    assert find_question(str(bank / "questions" / "q.yaml"), bank).id == "q"


def test_unknown_id_suggests_a_close_one(tmp_path: Path) -> None:
    bank = make_bank(tmp_path / "bank", {"q": QUESTION.replace("id: q", "id: affine-vector")})
    with pytest.raises(SpecError) as info:
        find_question("afine-vector", bank)
    assert str(info.value) == f"{bank}/questions: no question with id 'afine-vector'; did you mean 'affine-vector'?"


def test_a_worksheet_is_not_a_question(tmp_path: Path) -> None:
    sheet = write(tmp_path / "sheet.yaml", "id: s\ntitle: S\nquestions: [q]\n")
    with pytest.raises(SpecError) as info:
        find_question(str(sheet), tmp_path)
    assert str(info.value) == f"{sheet}:1:1: is a worksheet; preview takes one question (its id or its file)"


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(SpecError) as info:
        find_question(str(tmp_path / "nope.yaml"), tmp_path)
    assert str(info.value) == f"{tmp_path}/nope.yaml: no such file"


@needs_tex
def test_preview_writes_pdf_and_png_pages_and_prints_their_paths(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bank = make_bank(tmp_path / "bank", {"q": QUESTION})
    out = tmp_path / "preview"
    assert main(["preview", "q", "--bank", str(bank), "--seed", "3", "--out", str(out)]) == 0
    assert capsys.readouterr().out == (
        "question 'q', seed 3, variant A: sheet, then key\n"
        f"  {out}/q.pdf\n  {out}/q-1.png\n  {out}/q-2.png\n"
    )
    assert (out / "q-1.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    text = subprocess.run(["pdftotext", "-layout", str(out / "q.pdf"), "-"], capture_output=True, text=True, check=True).stdout
    assert "Student sheet (seed 3)" in text and "Answer key (seed 3)" in text
    assert text.index("Student sheet") < text.index("Answer key")


@needs_tex
def test_preview_shows_the_numbers_of_the_build_with_the_same_seed(tmp_path: Path) -> None:
    bank = make_bank(tmp_path / "bank", {"q": QUESTION})
    result = preview(PreviewOptions(target="q", seed=7, bank=bank, out=tmp_path / "p", png=False))
    assert main(["build", "--no-pdf", "--seed", "7", "--bank", str(bank), "--out", str(tmp_path / "b")]) == 0
    stem = next(line for line in (tmp_path / "b" / "sheet" / "A" / "sheet.tex").read_text().splitlines() if line.startswith("\\[ W ="))
    assert stem in result.tex.read_text().splitlines()
    assert result.pngs == ()


@needs_tex
def test_failed_preview_keeps_the_previous_one(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path / "q.yaml", QUESTION)
    out = tmp_path / "p"
    assert main(["preview", str(path), "--out", str(out), "--no-png"]) == 0
    before = (out / "q.pdf").read_bytes()
    write(path, question(**{"  Let $u = W x$ with": "  Let $u = W x$ \\oops with"}))
    assert main(["preview", str(path), "--out", str(out), "--no-png"]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"error: {path}:19: stem: LaTeX error in question 'q', stem (q.tex:")
    assert (out / "q.pdf").read_bytes() == before

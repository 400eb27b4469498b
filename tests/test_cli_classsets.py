"""`python -m generator build` options of class sets: messages without tracebacks."""

from __future__ import annotations

from conftest import FIXTURES

from generator.cli import main

CLASSBANK = FIXTURES / "classbank"


def test_build_command_reports_an_unknown_exam_without_traceback(capsys, tmp_path):
    assert main(["build", "--bank", str(CLASSBANK), "--out", str(tmp_path), "--no-pdf", "--exam", "qiz"]) == 1
    assert capsys.readouterr().err == f"error: no exam named 'qiz' in {CLASSBANK}; did you mean 'quiz'?\n"


def test_build_command_reports_roster_rows(capsys, tmp_path):
    roster = tmp_path / "r.csv"
    roster.write_text("name,id\nAda,1\nBob,1\n", encoding="utf-8")
    assert main(["build", "--bank", str(CLASSBANK), "--out", str(tmp_path / "out"), "--no-pdf", "--roster", str(roster)]) == 1
    assert capsys.readouterr().err == f"error: {roster}: row 3: duplicate id '1' (also in row 2)\n"


def test_build_command_prints_notes_and_a_summary_per_document(capsys, tmp_path):
    assert main(["build", "--bank", str(CLASSBANK), "--out", str(tmp_path), "--no-pdf", "--variants", "20", "--worksheet", "drill"]) == 0
    captured = capsys.readouterr()
    assert captured.err == "note: square: only 7 distinct variants exist, 20 asked\n"
    assert captured.out == (
        f"wrote 62 files to {tmp_path}/\n"
        "  answers.csv\n"
        "  manifest.json\n"
        "  drill/: 20 copies (A ... T), 60 files\n"
    )


def test_build_kinds_writes_only_the_asked_documents_and_lists_them_in_the_manifest(tmp_path):
    import json

    out = tmp_path / "out"
    assert main(["build", "--bank", str(CLASSBANK), "--out", str(out), "--no-pdf", "--variants", "2",
                 "--worksheet", "drill", "--kinds", "key,sheet"]) == 0
    written = sorted(p.relative_to(out).as_posix() for p in out.rglob("*.tex"))
    assert written == ["drill/A/key.tex", "drill/A/sheet.tex", "drill/B/key.tex", "drill/B/sheet.tex"]
    documents = json.loads((out / "manifest.json").read_text(encoding="utf-8"))["documents"]
    (drill,) = documents
    assert drill["combined"] == ["drill/combined-sheet.pdf", "drill/combined-key.pdf"]
    assert drill["copies"][0]["files"] == ["drill/A/sheet.tex", "drill/A/key.tex"]


def test_build_kinds_rejects_an_unknown_kind_without_traceback(capsys, tmp_path):
    import pytest

    with pytest.raises(SystemExit) as stopped:
        main(["build", "--bank", str(CLASSBANK), "--out", str(tmp_path), "--no-pdf", "--kinds", "sheet,keys"])
    assert stopped.value.code == 2
    err = capsys.readouterr().err
    assert "argument --kinds: unknown kind 'keys'; choose from sheet, key, solutions (comma-separated)" in err
    assert "Traceback" not in err
    assert not any(tmp_path.iterdir())

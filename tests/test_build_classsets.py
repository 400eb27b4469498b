"""Class-set builds end to end: layout, manifest, key table, rosters, reproducible bytes."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import shutil
import subprocess
from pathlib import Path

import pytest
import sympy
from conftest import BANK, FIXTURES, needs_tex

from generator.build import BuildOptions, build

CLASSBANK = FIXTURES / "classbank"
AWKWARD = [
    ("Zoë Müller", "s-001"),
    ("Søren Kierkegaard", "s_002"),
    ("Siobhán O'Brien", "#3 & 4%"),
    ("Łukasz Straße-Wałęsa", "{5}~^\\$"),
    ("José Ångström", "\\textbf{6}"),
]
CJK = [("张伟", "7"), ("山田 はなこ", "8_jp")]


def write_roster(path: Path, rows) -> Path:
    with open(path, "w", encoding="utf-8", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["name", "id", "email"])
        writer.writerows([name, sid, "x@example.org"] for name, sid in rows)
    return path


def digests(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_layout_has_a_folder_per_document_and_copy(tmp_path):
    result = build(BuildOptions(bank=CLASSBANK, out=tmp_path / "out", pdf=False, variants=2))
    copies = [f"{doc}/{v}/{kind}.tex" for doc in ("drill", "quiz") for v in "AB" for kind in ("key", "sheet", "solutions")]
    assert result.files == tuple(sorted(["answers.csv", "manifest.json", *copies]))
    written = sorted(str(p.relative_to(tmp_path / "out")) for p in (tmp_path / "out").rglob("*")
                     if p.is_file() and p.parent.name != ".generator-solved")
    assert written == [".generator-cache.json", ".generator-output", *result.files]


def test_key_shows_answers_and_solutions_add_the_worked_solution(tmp_path):
    build(BuildOptions(bank=CLASSBANK, out=tmp_path, pdf=False, worksheets=("drill",)))
    sheet, key, solutions = ((tmp_path / "drill" / "A" / f"{kind}.tex").read_text() for kind in ("sheet", "key", "solutions"))
    assert "Answer:" not in sheet and "Answer:" in key and "Answer:" in solutions
    assert "Solution." not in key and "\\paragraph{Solution.} $\\dfrac{dy}{dx} = 2x" in solutions


def test_manifest_lists_every_variant_and_maps_students_to_variants(tmp_path):
    roster = write_roster(tmp_path / "roster.csv", [("Ada", "s1"), ("Bob", "s2"), ("Cy", "s3")])
    build(BuildOptions(bank=CLASSBANK, out=tmp_path / "out", pdf=False, variants=2, roster=roster))
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert [v["id"] for v in manifest["variants"]] == ["A", "B"]
    assert [(s["id"], s["name"], s["row"], s["variant"], s["folder"]) for s in manifest["students"]] == [
        ("s1", "Ada", 2, "A", "001-s1"), ("s2", "Bob", 3, "B", "002-s2"), ("s3", "Cy", 4, "A", "003-s3")]
    assert manifest["roster"] == {"file": "roster.csv", "sha256": hashlib.sha256(roster.read_bytes()).hexdigest()}
    quiz = next(d for d in manifest["documents"] if d["id"] == "quiz")
    assert [(c["folder"], c["student"], c["variant"], c["total"]) for c in quiz["copies"]] == [
        ("quiz/001-s1", "s1", "A", 11), ("quiz/002-s2", "s2", "B", 11), ("quiz/003-s3", "s3", "A", 11)]
    assert quiz["spec_sha256"] == hashlib.sha256((CLASSBANK / "exams" / "quiz.yaml").read_bytes()).hexdigest()
    for name in ("sympy", "numpy", "jinja2"):
        assert manifest["libraries"][name]
    from importlib.metadata import version

    for name in ("pyyaml", "pypdf"):  # read from the metadata folders' names: what importlib.metadata says
        assert manifest["libraries"][name] == version(name)


def test_key_table_agrees_with_the_manifest(tmp_path):
    build(BuildOptions(bank=CLASSBANK, out=tmp_path, pdf=False, variants=4))
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    answers = {(v["id"], q["id"], p["id"]): p for v in manifest["variants"] for q in v["questions"] for p in q["parts"]}
    orders = {(d["id"], c["variant"]): [q["id"] for q in c["questions"]] for d in manifest["documents"] for c in d["copies"]}
    rows = list(csv.DictReader(io.StringIO((tmp_path / "answers.csv").read_text(encoding="utf-8"))))
    parts = {(v["id"], q["id"]): len(q["parts"]) for v in manifest["variants"] for q in v["questions"]}
    assert len(rows) == sum(parts[(variant, q)] for (_, variant), qs in orders.items() for q in qs)
    for row in rows:
        part = answers[(row["variant"], row["question"], row["part"])]
        assert row["latex"] == part["latex"]
        assert json.loads(row["decimal"]) == pytest.approx(part["value"], rel=1e-9)
        assert _floats(sympy.sympify(row["exact"])) == pytest.approx(part["value"], rel=1e-12)
        assert orders[(row["document"], row["variant"])][int(row["number"]) - 1] == row["question"]


def _floats(value):
    return [_floats(v) for v in value] if isinstance(value, list) else float(value)


def test_a_too_small_parameter_space_is_noted_and_the_build_goes_on(tmp_path):
    result = build(BuildOptions(bank=CLASSBANK, out=tmp_path, pdf=False, variants=9, worksheets=("drill",)))
    assert result.notes == ("square: only 7 distinct variants exist, 9 asked",)
    assert json.loads((tmp_path / "manifest.json").read_text())["notes"] == list(result.notes)
    assert (tmp_path / "drill" / "I" / "sheet.tex").exists()


def test_rebuild_gives_identical_tex_manifest_and_csv(tmp_path):
    roster = write_roster(tmp_path / "roster.csv", AWKWARD)
    for out in ("one", "two"):
        build(BuildOptions(bank=CLASSBANK, out=tmp_path / out, pdf=False, roster=roster, variants=3))
    assert digests(tmp_path / "one") == digests(tmp_path / "two")


def test_two_hundred_students_build(tmp_path):
    rows = [(f"Student {i:03d} Ø'ß & Co", f"id-{i:03d}") for i in range(200)]
    roster = write_roster(tmp_path / "roster.csv", rows)
    result = build(BuildOptions(bank=CLASSBANK, out=tmp_path / "out", pdf=False, roster=roster))
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert len(manifest["students"]) == 200 and manifest["students"][-1]["variant"] == "GR"
    assert len([f for f in result.files if f.endswith("/sheet.tex")]) == 400  # drill and quiz
    assert "\\rhead{Student 199 Ø\\textquotesingle{}ß \\& Co\\enspace(ID id-{}199)" in (
        tmp_path / "out" / "quiz" / "200-id-199" / "sheet.tex").read_text()


def test_default_bank_builds_while_exam_questions_are_missing(tmp_path):
    result = build(BuildOptions(bank=BANK, out=tmp_path, pdf=False))
    assert any(f.startswith("nn-derivatives/A/") for f in result.files)
    if not any(f.startswith("midterm/") for f in result.files):
        assert any(n.startswith("exam 'midterm' skipped: ") for n in result.notes)


def pdftotext(path: Path) -> str:
    return subprocess.run(["pdftotext", "-enc", "UTF-8", str(path), "-"], capture_output=True, check=True, text=True).stdout


@needs_tex
def test_rebuild_gives_identical_pdfs_including_combined_files(tmp_path):
    for out in ("one", "two"):
        build(BuildOptions(bank=CLASSBANK, out=tmp_path / out, variants=2, worksheets=("drill",)))
    first = digests(tmp_path / "one")
    assert "drill/combined-sheet.pdf" in first and "drill/A/solutions.pdf" in first
    assert first == digests(tmp_path / "two")


@needs_tex
def test_combined_files_start_every_copy_on_an_odd_page_unless_one_sided(tmp_path):
    from pypdf import PdfReader

    build(BuildOptions(bank=CLASSBANK, out=tmp_path / "two", variants=3, worksheets=("drill",)))
    build(BuildOptions(bank=CLASSBANK, out=tmp_path / "one", variants=3, worksheets=("drill",), two_sided=False))
    single = len(PdfReader(tmp_path / "two" / "drill" / "A" / "sheet.pdf").pages)
    assert single % 2 == 1  # a one-page sheet, so padding shows
    assert len(PdfReader(tmp_path / "two" / "drill" / "combined-sheet.pdf").pages) == 3 * (single + 1)
    assert len(PdfReader(tmp_path / "one" / "drill" / "combined-sheet.pdf").pages) == 3 * single
    outline = PdfReader(tmp_path / "two" / "drill" / "combined-sheet.pdf").outline
    assert [o.title for o in outline] == ["Variant A", "Variant B", "Variant C"]


@needs_tex
def test_awkward_names_and_ids_print_literally(tmp_path):
    roster = write_roster(tmp_path / "roster.csv", AWKWARD)
    build(BuildOptions(bank=CLASSBANK, out=tmp_path / "out", roster=roster, exams=("quiz",)))
    text = pdftotext(tmp_path / "out" / "quiz" / "combined-sheet.pdf")
    for name, sid in AWKWARD:
        assert f"{name} (ID {sid})" in text  # the page header
    cover = pdftotext(tmp_path / "out" / "quiz" / "003-3_4" / "sheet.pdf")
    assert "Siobhán O'Brien" in cover and "#3 & 4%" in cover


@needs_tex
@pytest.mark.skipif(shutil.which("kpsewhich") is None or not subprocess.run(
    ["kpsewhich", "CJKutf8.sty"], capture_output=True, text=True).stdout.strip(),
    reason="needs the CJK package (apt-get install latex-cjk-common latex-cjk-chinese-arphic-gbsn00lp)")
def test_chinese_and_japanese_names_print_literally(tmp_path):
    roster = write_roster(tmp_path / "roster.csv", CJK)
    build(BuildOptions(bank=CLASSBANK, out=tmp_path / "out", roster=roster, worksheets=("drill",)))
    text = pdftotext(tmp_path / "out" / "drill" / "combined-key.pdf")
    for name, sid in CJK:
        assert f"{name} (ID {sid})" in text

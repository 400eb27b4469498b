"""Paper exams as printed: answer spaces, points, pages that name their copy, QR codes, print sizes.

The PDFs are read back: `pdftotext` for the text of each page and word positions (`-bbox`),
`zbarimg` (Debian's zbar-tools) for the QR code at the foot of each page of a sheet.
"""

from __future__ import annotations

import csv
import re
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pytest
from conftest import BANK, needs_tex, write

from generator.build import BuildOptions, build
from generator.errors import SpecError
from generator.render.documents import answer_space, copy_mark, with_points
from generator.spec.model import AnswerSpace, load_bank, load_question
from generator.typeset.qr import qr_content, write_qr_codes

needs_zbar = pytest.mark.skipif(shutil.which("zbarimg") is None or shutil.which("pdftoppm") is None,
                                reason="needs zbarimg and pdftoppm (apt-get install zbar-tools poppler-utils)")

QUESTION = """
id: q
title: "Spaces"
points: 4
dimensions:
  d: [2, 3]
parameters:
  W: {shape: [d, d], entries: [-2, 2]}
  x: {shape: [d], entries: [-2, 2]}
define:
  u: W @ x
  s: sum(x)
parts:
  - {id: a, of: u, wrt: x, points: 2, prompt: "a", SPACE_A}
  - {id: b, of: s, wrt: x, points: 1, prompt: "b"}
  - {id: c, of: s, points: 1, prompt: "c"}
stem: "stem"
"""


def question_with(tmp_path: Path, space: str):
    return load_question(write(tmp_path / "q.yaml", QUESTION.replace("SPACE_A", space)))


# --- answer spaces and points (no TeX) --------------------------------------------------------


@pytest.mark.parametrize(("space", "expected", "latex"), [
    ("space: 4cm", AnswerSpace("blank", "4cm"), r"\answerblank{4cm}"),
    ("space: {lines: 6}", AnswerSpace("lines", 6), r"\answerlines{6}"),
    ("space: {box: 5cm}", AnswerSpace("box", "5cm"), r"\answerbox{5cm}"),
    ("space: {grid: 3.5cm}", AnswerSpace("grid", "3.5cm"), r"\answergrid{3.5cm}"),
    # Sized to the answer at the largest d (3 x 3): 3 rows of 1.6 lines, 2 for the index form, 1 more.
    ("space: box", AnswerSpace("box", None), r"\answerbox{8\baselineskip}"),
    ("space: grid", AnswerSpace("grid", None), r"\answergrid{8\baselineskip}"),
    ("space: lines", AnswerSpace("lines", None), r"\answerlines{4}"),
])
def test_a_parts_space_is_as_its_author_asks(tmp_path: Path, space: str, expected: AnswerSpace, latex: str) -> None:
    question = question_with(tmp_path, space)
    assert question.parts[0].space == expected
    assert answer_space(question, question.parts[0]) == latex


def test_default_space_fits_the_answers_largest_shape(tmp_path: Path) -> None:
    question = question_with(tmp_path, "space: box")
    # (b) is a gradient of d <= 3 entries: a box; (c) a scalar: a line (no index form asked).
    assert answer_space(question, question.parts[1]) == r"\answerbox{8\baselineskip}"
    assert answer_space(question, question.parts[2]) == r"\answerlines{1}"


# The shipped bank's parts of the newer kinds, by default: a scalar a line, a formula two, a
# vector or matrix a box (sized to its largest shape), a choice part its tick boxes only.
@pytest.mark.parametrize(("question_id", "part_id", "expected"), [
    ("la-determinant", "det", r"\answerlines{1}"),
    ("la-rank", "rank", r"\answerlines{1}"),
    ("calc-definite-integral", "I", r"\answerlines{1}"),
    ("calc-product-rule", "df", r"\answerlines{1}"),
    ("calc-second-derivative", "d2f", r"\answerlines{2}"),
    ("calc-indefinite-integral", "F", r"\answerlines{2}"),
    ("la-inverse", "inv", "box"),
    ("la-system", "x", "box"),
    ("la-eigenvalues", "eigenvalues", "box"),
    ("calc-hessian", "hess", "box"),
])
def test_each_kinds_default_space_fits_its_answer(question_id: str, part_id: str, expected: str) -> None:
    question = load_bank(BANK).questions[question_id]
    part = next(p for p in question.parts if p.id == part_id)
    space = answer_space(question, part)
    if expected == "box":
        assert space.startswith(r"\answerbox{") and space != r"\answerbox{8\baselineskip}", space
    else:
        assert space == expected


def test_a_wrong_space_is_reported_where_it_stands(tmp_path: Path) -> None:
    with pytest.raises(SpecError) as caught:
        question_with(tmp_path, "space: 4 furlongs")
    assert "parts[0].space: expected a length (e.g. 4cm), box, grid, lines, {lines: N}, {box: LENGTH} or " \
           "{grid: LENGTH}, got text '4 furlongs'" in str(caught.value)


def test_every_variant_leaves_the_same_answer_spaces(tmp_path: Path) -> None:
    out = tmp_path / "out"
    build(BuildOptions(bank=BANK, out=out, pdf=False, variants=6, worksheets=("nn-derivatives", "nn-backprop"),
                       kinds=("sheet",)))
    for sheet in ("nn-derivatives", "nn-backprop"):
        spaces = {re.findall(r"\\answer\w+\{[^}]*\}", (out / sheet / v / "sheet.tex").read_text(encoding="utf-8"))
                  .__repr__() for v in "ABCDEF"}
        assert len(spaces) == 1, sheet
        assert r"\answerbox" in next(iter(spaces))


def test_part_points_are_printed_and_scaled_with_an_exams_points(tmp_path: Path) -> None:
    from generator.render.documents import RenderedPart, RenderedQuestion

    parts = tuple(RenderedPart(i, p, "", "", "", "") for i, p in (("a", 2), ("b", 2)))
    question = RenderedQuestion("q", "Q", 4, "q.yaml", "A", "", parts, "")
    assert [p.points for p in with_points(question, 5).parts] == [2.5, 2.5]
    assert [p.points for p in with_points(question, 5.1).parts] == [None, None]  # not in quarter points
    out = tmp_path / "out"
    build(BuildOptions(bank=BANK, out=out, pdf=False, worksheets=("nn-derivatives",), kinds=("sheet",)))
    text = (out / "nn-derivatives" / "A" / "sheet.tex").read_text(encoding="utf-8")
    assert r"\subsection*{\pointedtitle{1.2\quad Vectorized case}{(6 points)}}" in text
    assert r"\item {\small(2 points)}\enspace $\dfrac{\partial \mathbf{u}}{\partial \mathbf{b}}" in text


def test_the_vectorized_case_reads_as_the_seed_sheet(tmp_path: Path) -> None:
    out = tmp_path / "out"
    build(BuildOptions(bank=BANK, out=out, pdf=False, worksheets=("nn-derivatives",), kinds=("sheet",)))
    text = (out / "nn-derivatives" / "A" / "sheet.tex").read_text(encoding="utf-8")
    # Given on the original: du/db = I and du/dx = W; every other matrix-level derivative ends in "=".
    assert r"\dfrac{\partial}{\partial \mathbf{b}}\, W\mathbf{x} + \mathbf{b} = \mathbb{I}$" in text
    assert r"\dfrac{\partial}{\partial \mathbf{x}}\, W\mathbf{x} + \mathbf{b} = W$" in text
    assert r"\dfrac{\partial}{\partial W}\, W\mathbf{x} + \mathbf{b} =$" in text
    for wrt in (r"\mathbf{b}", "W", "X"):
        assert rf"\dfrac{{\partial}}{{\partial {wrt}}}\, XW^T + \mathbf{{1}} \otimes \mathbf{{b}} =$" in text


def test_every_question_of_the_bank_has_a_worked_solution() -> None:
    bank = load_bank(BANK)
    assert sorted(q.id for q in bank.questions.values() if q.solution is None) == []
    for question in bank.questions.values():
        assert "Worked steps" in question.solution.source, question.id


def test_copy_keys_encode_document_and_copy(tmp_path: Path) -> None:
    mark = copy_mark("midterm", "B", None)
    assert (mark.label, qr_content(mark.key, 3)) == ("B", "midterm|B|3")
    (tmp_path / "job.qrq").write_text(f"{mark.key} 1\n{mark.key} 2\n{mark.key} 1\n", encoding="ascii")
    assert write_qr_codes(tmp_path / "job.tex")
    assert not (tmp_path / "job.qrq").exists()
    codes = (tmp_path / "job.qrc").read_text(encoding="ascii")
    assert codes.count(r"\generator@qrdef") == 2 and f"{{{mark.key}@2}}" in codes
    assert not write_qr_codes(tmp_path / "job.tex")  # nothing asked: no further pass


# --- PDFs read back ---------------------------------------------------------------------------


def page_texts(pdf: Path) -> list[str]:
    text = subprocess.run(["pdftotext", "-layout", str(pdf), "-"], check=True, capture_output=True, text=True).stdout
    return text.split("\f")[:-1]


def qr_codes(pdf: Path, folder: Path) -> dict[int, str]:
    """Page number (from 1) -> what the QR code in its bottom right corner decodes to."""
    dpi = 150
    info = subprocess.run(["pdfinfo", str(pdf)], check=True, capture_output=True, text=True).stdout
    width, height = (float(v) * dpi / 72 for v in re.search(r"Page size:\s+([\d.]+) x ([\d.]+)", info).groups())
    folder.mkdir()
    w, h = 340, 310
    subprocess.run(["pdftoppm", "-r", str(dpi), "-gray", "-png", "-x", str(int(width) - w), "-y", str(int(height) - h),
                    "-W", str(w), "-H", str(h), str(pdf), str(folder / "p")], check=True)
    xml = subprocess.run(["zbarimg", "-q", "--xml", *sorted(map(str, folder.glob("p-*.png")))],
                         capture_output=True, text=True).stdout
    found = {}
    for name, data in re.findall(r"<source href='[^']*p-0*(\d+)\.png'>\s*<index num='0'>\s*<symbol[^>]*>"
                                 r"\s*<data><!\[CDATA\[(.*?)\]\]></data>", xml):
        found[int(name)] = data
    return found


@needs_tex
@needs_zbar
@pytest.mark.tex
def test_a_roster_exam_names_copy_page_and_qr_code_on_every_page(tmp_path: Path) -> None:
    students = [(f"Student {n}", f"s{1000 + n}") for n in range(30)]
    roster = tmp_path / "roster.csv"
    with open(roster, "w", encoding="utf-8", newline="") as f:
        csv.writer(f).writerows([("name", "id"), *students])
    out = tmp_path / "out"
    build(BuildOptions(bank=BANK, out=out, roster=roster, exams=("midterm",), kinds=("sheet",), two_sided=False,
                       variants=3))
    pages = page_texts(out / "midterm" / "combined-sheet.pdf")
    codes = qr_codes(out / "midterm" / "combined-sheet.pdf", tmp_path / "png")
    seen: list[tuple[str, int, int]] = []
    for number, text in enumerate(pages, start=1):
        page = re.search(r"Page (\d+) of (\d+)", text)
        copy = re.search(r"Copy (s\d+)", text)
        assert page and copy, f"page {number}: {text[-300:]}"
        seen.append((copy.group(1), int(page.group(1)), int(page.group(2))))
        assert codes.get(number) == f"midterm|{copy.group(1)}|{page.group(1)}", number
    # Each student's pages run 1..y in order, y their own count, and the cover comes first.
    by_student: dict[str, list[tuple[int, int]]] = {}
    for sid, page, total in seen:
        by_student.setdefault(sid, []).append((page, total))
    assert sorted(by_student) == sorted(sid for _, sid in students)
    for sid, numbers in by_student.items():
        total = numbers[0][1]
        assert numbers == [(k, total) for k in range(1, total + 1)], sid
    first = page_texts(next((out / "midterm").glob("*s1000*")) / "sheet.pdf")[0]
    for phrase in ("Student 0 (ID s1000)", "Name:", "Student ID:", "Variant A", "Question", "Points", "Score", "Total", "Instructions"):
        assert phrase in first, phrase
    assert re.search(r"3 questions, 16 points\s+•\s+\d+ pages", first)



@needs_tex
@needs_zbar
@pytest.mark.tex
def test_worksheet_sheets_get_page_totals_and_qr_codes_when_asked(tmp_path: Path) -> None:
    # Off by default (a second TeX pass over every sheet batch); --scan-marks turns them on.
    plain, marked = tmp_path / "plain", tmp_path / "marked"
    for out, scan in ((plain, False), (marked, True)):
        build(BuildOptions(bank=BANK, out=out, worksheets=("nn-backprop",), kinds=("sheet",), variants=2,
                           two_sided=False,
                           scan_marks=scan))
    plain_pages = page_texts(plain / "nn-backprop" / "combined-sheet.pdf")
    assert all(re.search(r"Copy [AB]", text) and re.search(r"Page \d+\s", text) for text in plain_pages)
    assert not any(re.search(r"Page \d+ of \d+", text) for text in plain_pages)
    assert qr_codes(plain / "nn-backprop" / "combined-sheet.pdf", tmp_path / "png-plain") == {}
    marked_pages = page_texts(marked / "nn-backprop" / "combined-sheet.pdf")
    codes = qr_codes(marked / "nn-backprop" / "combined-sheet.pdf", tmp_path / "png-marked")
    for number, text in enumerate(marked_pages, start=1):
        page, copy = re.search(r"Page (\d+) of \d+", text), re.search(r"Copy ([AB])", text)
        assert page and copy, number
        assert codes.get(number) == f"nn-backprop|{copy.group(1)}|{page.group(1)}", number

class _Words(HTMLParser):
    """`pdftotext -bbox` output: (page, yMin, xMin, word) of every word."""

    def __init__(self) -> None:
        super().__init__()
        self.page, self.words, self._at = 0, [], (0.0, 0.0)
        self._in_word = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "page":
            self.page += 1
        elif tag == "word":
            values = dict(attrs)
            self._in_word, self._at = True, (float(values["ymin"] or 0), float(values["xmin"] or 0))

    def handle_endtag(self, tag: str) -> None:
        self._in_word = False if tag == "word" else self._in_word

    def handle_data(self, data: str) -> None:
        if self._in_word and data.strip():
            self.words.append((self.page, *self._at, data.strip()))


def headings_and_first_parts(pdf: Path) -> list[tuple[int, float, int | None, float | None]]:
    """For each question heading (found by its right-aligned "(N points)"): its page and height,
    and the page and height of the first "(a)" below it on that page, before the next heading."""
    bbox = subprocess.run(["pdftotext", "-bbox", str(pdf), "-"], check=True, capture_output=True, text=True).stdout
    parser = _Words()
    parser.feed(bbox)
    words = parser.words
    labels = [(page, y, x) for page, y, x, word in words if re.fullmatch(r"\([a-z]\)", word)]
    headings = []
    for page, y, x, word in words:
        if word not in ("points)", "point)"):
            continue
        if any(p == page and abs(py - y) < 3 and px < x for p, py, px in labels):
            continue  # a part's points, beside its label
        headings.append((page, y))
    headings.sort()
    found = []
    for n, (page, y) in enumerate(headings):
        below = headings[n + 1][1] if n + 1 < len(headings) and headings[n + 1][0] == page else float("inf")
        first = min((py for p, py, _ in labels if p == page and y < py < below), default=None)
        found.append((page, y, page if first is not None else None, first))
    return found


@needs_tex
@pytest.mark.tex
def test_no_question_is_parted_from_its_first_part(tmp_path: Path) -> None:
    out = tmp_path / "out"
    variants = "ABCD"
    build(BuildOptions(bank=BANK, out=out, variants=len(variants), kinds=("sheet",),
                       worksheets=("nn-derivatives", "nn-backprop"), exams=("midterm",)))
    checked = 0
    for sheet in ("nn-derivatives", "nn-backprop", "midterm"):
        for variant in variants:
            for page, y, part_page, part_y in headings_and_first_parts(out / sheet / variant / "sheet.pdf"):
                assert part_page == page, f"{sheet} {variant}: the question headed on page {page} at {y:.0f} has no (a) below it there"
                checked += 1
    assert checked >= len(variants) * (8 + 3)


@needs_tex
@pytest.mark.tex
def test_letter_paper_and_large_print(tmp_path: Path) -> None:
    out = tmp_path / "out"
    build(BuildOptions(bank=BANK, out=out, worksheets=("nn-derivatives",), kinds=("sheet",), paper="letter",
                       large_print=True))
    tex = (out / "nn-derivatives" / "A" / "sheet.tex").read_text(encoding="utf-8")
    assert tex.startswith("\\documentclass[14pt,letterpaper]{extarticle}") and "\\linespread{1.25}" in tex
    info = subprocess.run(["pdfinfo", str(out / "nn-derivatives" / "A" / "sheet.pdf")], check=True, capture_output=True,
                          text=True).stdout
    assert "612 x 792 pts (letter)" in info
    regular = tmp_path / "regular"
    build(BuildOptions(bank=BANK, out=regular, worksheets=("nn-derivatives",), kinds=("sheet",)))
    assert len(page_texts(out / "nn-derivatives" / "A" / "sheet.pdf")) > len(page_texts(regular / "nn-derivatives" / "A" / "sheet.pdf"))

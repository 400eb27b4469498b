"""From a line of generated .tex back to the spec line of the template that produced it."""

from __future__ import annotations

from pathlib import Path

import pytest
from authoring_helpers import QUESTION, make_bank, question, write
from conftest import ROOT, needs_tex

from generator.cli import main
from generator.errors import Location
from generator.spec.sourcemap import TemplateLine, template_origin

SPEC = """\
id: q
title: Q
parts:
  - id: p
    of: u
    prompt: |
      First line of the prompt.
      Second $<< x | latex >>$ line.
    answer: |
      <% if x %>
      The answer is << answer | latex >> \\bad.
      <% endif %>
stem: |
  Stem line one.
  << W | display >>
  Stem line three \\oops{}.
solution: "Solution on one line."
"""


@pytest.fixture
def spec(tmp_path: Path) -> str:
    return str(write(tmp_path / "q.yaml", SPEC))


def test_stem_line_by_its_literal_text(spec: str) -> None:
    rendered = ["Stem line one.", "\\begin{center}...\\end{center}", "Stem line three \\oops{}."]
    assert template_origin(spec, "q", "stem", rendered) == TemplateLine(Location(spec, 16), "stem", "Stem line three \\oops{}.")


def test_a_line_that_is_only_a_value_is_found_by_position(spec: str) -> None:
    rendered = ["Stem line one.", "\\begin{center}$\\displaystyle 1$\\end{center}"]
    assert template_origin(spec, "q", "stem", rendered) == TemplateLine(Location(spec, 15), "stem", "<< W | display >>")


def test_part_pieces_search_prompt_and_answer(spec: str) -> None:
    rendered = ["\\item First line of the prompt.", "Second $3$ line.", "", "\\textit{Answer:}", "The answer is 3 \\bad."]
    assert template_origin(spec, "q", "part p", rendered) == TemplateLine(
        Location(spec, 11), "parts[0].answer", "The answer is << answer | latex >> \\bad."
    )
    assert template_origin(spec, "q", "part p", rendered[:2]) == TemplateLine(
        Location(spec, 8), "parts[0].prompt", "Second $<< x | latex >>$ line."
    )


def test_plain_scalar_keeps_its_column(spec: str) -> None:
    assert template_origin(spec, "q", "solution", ["Solution on one line."]) == TemplateLine(
        Location(spec, 17, 11), "solution", "Solution on one line."
    )


@pytest.mark.parametrize("question_id, piece", [("other", "stem"), ("q", "part nope"), ("q", "index")])
def test_no_guess_when_the_spec_does_not_match(spec: str, question_id: str, piece: str) -> None:
    assert template_origin(spec, question_id, piece, ["Stem line one."]) is None


def test_unreadable_spec_gives_no_origin(tmp_path: Path) -> None:
    assert template_origin(str(tmp_path / "gone.yaml"), "q", "stem", ["x"]) is None


@needs_tex
def test_latex_error_in_a_part_prompt_points_at_the_prompt_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bank = make_bank(tmp_path / "bank", {"q": question(**{"      $\\dfrac": "      \\nosuchmacro $\\dfrac"})})
    assert main(["build", "--bank", str(bank), "--out", str(tmp_path / "out")]) == 1
    lines = capsys.readouterr().err.splitlines()
    assert lines[0].startswith(f"error: {bank}/questions/q.yaml:17: parts[0].prompt: LaTeX error in question 'q', part du_dx (")
    assert lines[-1] == "    template line: \\nosuchmacro $\\dfrac{\\partial u}{\\partial x}$"


@needs_tex
def test_latex_error_in_a_document_template(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bank = make_bank(tmp_path / "bank", {"q": QUESTION})
    templates = tmp_path / "templates"
    source = (ROOT / "templates" / "sheet.tex.j2").read_text()
    write(templates / "sheet.tex.j2", source.replace("\\begin{document}", "\\begin{document}\n\\brokenheader"))
    assert main(["build", "--bank", str(bank), "--out", str(tmp_path / "out"), "--templates", str(templates)]) == 1
    first = capsys.readouterr().err.splitlines()[0]
    assert first.startswith("error: sheet.tex:")
    assert first.endswith(": LaTeX error (in the document template, not in a question):")

"""Exam specs: loading, validation messages with file:line:col, and checks against the bank."""

from __future__ import annotations

import shutil

import pytest
from conftest import FIXTURES, write

from generator.errors import SpecError
from generator.spec.model import ExamEntry, load_bank, load_exam

CLASSBANK = FIXTURES / "classbank"
EITHER = "give either 'id' (one question) or 'tag' (questions drawn from a tag), not both or neither"


def test_exam_loads_ids_tags_points_and_cover_fields():
    exam = load_exam(CLASSBANK / "exams" / "quiz.yaml")
    assert (exam.id, exam.title, exam.date, exam.duration, exam.shuffle, exam.total) == (
        "quiz", "Quiz", "1 April 2025", "30 minutes", True, 11)
    assert [(e.id, e.tag, e.count, e.points) for e in exam.entries] == [("lin", None, 1, 3), (None, "activations", 2, 4)]
    assert all(isinstance(e, ExamEntry) for e in exam.entries)


def test_a_plain_string_entry_is_a_question_id(tmp_path):
    path = write(tmp_path / "e.yaml", """
        id: e
        title: E
        questions: [lin, {tag: activations}]
    """)
    exam = load_exam(path)
    assert [(e.id, e.tag, e.count, e.points) for e in exam.entries] == [("lin", None, 1, None), (None, "activations", 1, None)]
    assert (exam.shuffle, exam.total, exam.duration) == (False, None, "")


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("questions: [{id: a, tag: b}]", f"5:13: questions[0]: {EITHER}"),
        ("questions: [{points: 3}]", f"5:13: questions[0]: {EITHER}"),
        ("questions: [{id: a, count: 2}]", "5:21: questions[0].count: 'count' goes with 'tag'; an 'id' entry is one question"),
        ("questions: [a, b, a]", "5:19: questions[2].id: question 'a' is already listed as questions[0]"),
        ("questions: [{tag: t, cuont: 2}]", "5:22: questions[0].cuont: unknown key 'cuont'; did you mean 'count'?"),
        ("questions: [{tag: t, count: 0}]", "5:29: questions[0].count: expected a number >= 1, got 0"),
        ("questions: []", "5:12: questions: expected at least 1 items, got 0"),
        ("shufle: true\nquestions: [a]", "5:1: shufle: unknown key 'shufle'; did you mean 'shuffle'?"),
    ],
)
def test_bad_exam_gives_file_line_and_column(tmp_path, body, message):
    path = write(tmp_path / "e.yaml", "id: e\ntitle: E\ncourse: C\ndate: today\n" + body + "\n")
    with pytest.raises(SpecError) as error:
        load_exam(path)
    assert str(error.value) == f"{path}:{message}"


def test_exam_naming_a_missing_question_fails_the_bank_with_a_hint(tmp_path):
    root = tmp_path / "bank"
    shutil.copytree(CLASSBANK, root)
    exam = write(root / "exams" / "final.yaml", """
        id: final
        title: Final
        questions:
          - squares
    """)
    with pytest.raises(SpecError) as error:
        load_bank(root)
    assert str(error.value) == f"{exam}:4:5: questions[0]: no question with id 'squares' in the bank; did you mean 'square'?"


def test_exam_and_worksheet_ids_must_differ(tmp_path):
    root = tmp_path / "bank"
    shutil.copytree(CLASSBANK, root)
    exam = write(root / "exams" / "drill.yaml", "id: drill\ntitle: Drill\nquestions: [lin]\n")
    with pytest.raises(SpecError) as error:
        load_bank(root)
    assert str(error.value) == f"{exam}: id 'drill' is also used by {root / 'worksheets' / 'drill.yaml'} (ids name the output folders)"


def test_bank_loads_exams():
    assert sorted(load_bank(CLASSBANK).exams) == ["quiz"]

"""Assembling copies: seats for variants and rosters, exam tag picks, shuffling and points."""

from __future__ import annotations

import shutil

import pytest
from conftest import FIXTURES, write

from generator.errors import SpecError
from generator.spec.assemble import assemble
from generator.spec.model import load_bank
from generator.spec.roster import Roster, Student

CLASSBANK = FIXTURES / "classbank"


@pytest.fixture(scope="module")
def classbank():
    return load_bank(CLASSBANK)


def quiz(plan):
    return next(d for d in plan.documents if d.id == "quiz")


def order(plan, variant):
    return [s.question for s in quiz(plan).slots[variant]]


def test_each_variant_is_a_seat_with_its_label_as_folder(classbank):
    plan = assemble(classbank, seed=1, variants=3)
    assert [(s.variant, s.folder, s.student) for s in plan.seats] == [("A", "A", None), ("B", "B", None), ("C", "C", None)]


def test_roster_students_get_variants_in_turn_and_numbered_folders(classbank):
    students = tuple(Student(n, i, r) for r, (n, i) in enumerate([("Ada", "s1"), ("Bob", "x/2"), ("Cy", "#3")], 2))
    plan = assemble(classbank, seed=1, variants=2, roster=Roster("r.csv", students, "0"))
    assert [(s.student.id, s.variant, s.folder) for s in plan.seats] == [
        ("s1", "A", "001-s1"), ("x/2", "B", "002-x_2"), ("#3", "A", "003-3")]


def test_roster_without_variants_gives_every_student_a_variant(classbank):
    students = tuple(Student(f"S{i}", str(i), i + 2) for i in range(4))
    plan = assemble(classbank, seed=1, roster=Roster("r.csv", students, "0"))
    assert [s.variant for s in plan.seats] == ["A", "B", "C", "D"]


def test_tag_entries_pick_distinct_questions_carrying_the_tag(classbank):
    plan = assemble(classbank, seed=5, variants=20)
    for v in range(20):
        picked = [q for q in order(plan, v) if q != "lin"]
        assert len(picked) == len(set(picked)) == 2
        assert set(picked) <= {"square", "sig", "step"}
    assert len({frozenset(order(plan, v)) for v in range(20)}) > 1  # picks differ between variants


def test_exam_assembly_is_deterministic_per_seed_and_variant(classbank):
    first = assemble(classbank, seed=5, variants=10)
    again = assemble(classbank, seed=5, variants=10)
    other = assemble(classbank, seed=6, variants=10)
    assert [order(first, v) for v in range(10)] == [order(again, v) for v in range(10)]
    assert [order(first, v) for v in range(10)] != [order(other, v) for v in range(10)]


def test_shuffle_reorders_per_variant_without_changing_the_picks(tmp_path, classbank):
    root = tmp_path / "bank"
    shutil.copytree(CLASSBANK, root)
    text = (root / "exams" / "quiz.yaml").read_text().replace("shuffle: true", "shuffle: false")
    (root / "exams" / "quiz.yaml").write_text(text)
    fixed = assemble(load_bank(root), seed=5, variants=12)
    shuffled = assemble(classbank, seed=5, variants=12)
    for v in range(12):
        assert order(fixed, v)[0] == "lin"  # ids keep their place, picks follow in bank order
        assert sorted(order(fixed, v)) == sorted(order(shuffled, v))
    assert any(order(shuffled, v)[0] != "lin" for v in range(12))


def test_points_come_from_the_exam_the_question_or_its_parts(tmp_path):
    root = tmp_path / "bank"
    shutil.copytree(CLASSBANK, root)
    write(root / "exams" / "quiz.yaml", """
        id: quiz
        title: Quiz
        questions: [lin, square, {id: sig, points: 2.5}]
    """)
    plan = assemble(load_bank(root), seed=1)
    assert [(s.number, s.question, s.points) for s in quiz(plan).slots[0]] == [(1, "lin", 3), (2, "square", 4), (3, "sig", 2.5)]


def test_a_wrong_total_stops_the_build(tmp_path):
    root = tmp_path / "bank"
    shutil.copytree(CLASSBANK, root)
    path = write(root / "exams" / "quiz.yaml", "id: quiz\ntitle: Quiz\nquestions: [lin, square]\ntotal: 8\n")
    with pytest.raises(SpecError) as error:
        assemble(load_bank(root), seed=1, exams=["quiz"])
    assert str(error.value) == f"{path}:4:8: total: the questions add up to 7 points, but total says 8 (variant A)"


def tag_shortage_bank(tmp_path):
    root = tmp_path / "bank"
    shutil.copytree(CLASSBANK, root)
    path = write(root / "exams" / "quiz.yaml", """
        id: quiz
        title: Quiz
        questions:
          - square
          - {tag: activations, count: 3}
    """)
    return root, path


def test_a_tag_with_too_few_questions_is_an_error_when_the_exam_is_asked_for(tmp_path):
    root, path = tag_shortage_bank(tmp_path)
    with pytest.raises(SpecError) as error:
        assemble(load_bank(root), seed=1, exams=["quiz"])
    assert str(error.value) == f"{path}:5:5: questions[1]: tag 'activations' has 2 questions not already in the exam (3 in all), 3 asked"


def test_an_exam_that_cannot_be_assembled_is_skipped_with_a_note_in_a_default_build(tmp_path):
    root, path = tag_shortage_bank(tmp_path)
    plan = assemble(load_bank(root), seed=1)
    assert [d.id for d in plan.documents] == ["drill"]
    assert plan.notes == (
        f"exam 'quiz' skipped: {path}:5:5: questions[1]: tag 'activations' has 2 questions not already in the exam "
        "(3 in all), 3 asked (name it with --exam quiz to make this an error)",
    )


def test_an_unknown_tag_suggests_a_close_one(tmp_path):
    root = tmp_path / "bank"
    shutil.copytree(CLASSBANK, root)
    path = write(root / "exams" / "quiz.yaml", "id: quiz\ntitle: Quiz\nquestions: [{tag: activation, count: 1}]\n")
    with pytest.raises(SpecError) as error:
        assemble(load_bank(root), seed=1, exams=["quiz"])
    assert str(error.value) == f"{path}:3:13: questions[0]: tag 'activation' has 0 questions, 1 asked; did you mean 'activations'?"


def test_unequal_totals_between_variants_get_a_note(tmp_path):
    root = tmp_path / "bank"
    shutil.copytree(CLASSBANK, root)
    write(root / "exams" / "quiz.yaml", "id: quiz\ntitle: Quiz\nquestions: [{tag: activations}]\n")
    plan = assemble(load_bank(root), seed=1, variants=10, exams=["quiz"])
    assert plan.notes == (
        "exam 'quiz': the total differs between variants (3 to 5 points); give 'points' on its tag entries to make them equal",
    )


def test_unknown_worksheet_or_exam_names_are_errors(classbank):
    with pytest.raises(SpecError) as error:
        assemble(classbank, seed=1, worksheets=["dril"], exams=["exam"])
    assert str(error.value).splitlines() == [
        f"no worksheet named 'dril' in {CLASSBANK}; did you mean 'drill'?",
        f"no exam named 'exam' in {CLASSBANK} (have: quiz)",
    ]

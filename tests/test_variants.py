"""Many variants of one question: labels, distinctness, and the small-space note."""

from __future__ import annotations

import pytest
from conftest import FIXTURES

from generator.answers.sampling import count_variants, sample_variants
from generator.spec.assemble import variant_label
from generator.spec.model import load_question

QUESTIONS = FIXTURES / "classbank" / "questions"


def fingerprint(instance):  # what makes two variants the same
    return (tuple(sorted(instance.dims.items())), tuple((k, tuple(v.flat)) for k, v in instance.params.items()))


@pytest.mark.parametrize(
    ("index", "label"), [(0, "A"), (1, "B"), (25, "Z"), (26, "AA"), (27, "AB"), (51, "AZ"), (52, "BA"), (701, "ZZ"), (702, "AAA")]
)
def test_variant_labels_run_like_spreadsheet_columns(index, label):
    assert variant_label(index) == label


@pytest.mark.parametrize(
    ("question", "expected"),
    [
        ("square", (7, True)),  # x in -3..3
        ("sig", (4, True)),  # z in -2..2 without 0
        ("step", (6, True)),  # z in -3..3 with the constraint z != 0, counted by enumeration
        ("lin", (11**4 + 11**6, True)),  # n in 2..3, two vectors of entries in -5..5
    ],
)
def test_count_variants_counts_the_parameter_space(question, expected):
    assert count_variants(load_question(QUESTIONS / f"{question}.yaml")) == expected


def test_variants_differ_when_the_space_allows():
    question = load_question(QUESTIONS / "square.yaml")
    drawn, note = sample_variants(question, 42, range(7))
    assert note is None
    assert len({fingerprint(i) for i in drawn.values()}) == 7


def test_a_large_space_gives_distinct_variants_without_a_note():
    question = load_question(QUESTIONS / "lin.yaml")
    drawn, note = sample_variants(question, 7, range(60))
    assert note is None
    assert len({fingerprint(i) for i in drawn.values()}) == 60


def test_small_space_is_reported_in_one_line_and_variants_repeat():
    question = load_question(QUESTIONS / "square.yaml")
    drawn, note = sample_variants(question, 42, range(20))
    assert note == "square: only 7 distinct variants exist, 20 asked"
    assert len(drawn) == 20
    assert len({fingerprint(i) for i in drawn.values()}) == 7


def test_earlier_variants_do_not_depend_on_how_many_are_asked():
    question = load_question(QUESTIONS / "lin.yaml")
    few, _ = sample_variants(question, 42, range(3))
    many, _ = sample_variants(question, 42, range(40))
    assert [fingerprint(few[i]) for i in range(3)] == [fingerprint(many[i]) for i in range(3)]


def test_redraws_are_deterministic():
    question = load_question(QUESTIONS / "square.yaml")
    first, _ = sample_variants(question, 3, range(7))
    second, _ = sample_variants(question, 3, range(7))
    assert [fingerprint(first[i]) for i in range(7)] == [fingerprint(second[i]) for i in range(7)]
    assert [first[i].variant for i in range(7)] == list("ABCDEFG")

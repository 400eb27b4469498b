"""The grade command: the key scores full marks, each perturbation loses exactly its points,
hostile responses are refused, bad rows are reported by line, and nothing is overwritten."""

from __future__ import annotations

import csv
import io
import json
import time
from fractions import Fraction
from pathlib import Path

import pytest

from generator.build import BuildOptions, build
from generator.errors import GradeError
from generator.grade.grading import GradeOptions, grade
from generator.grade.responses import ResponseError, parse_response
from generator.outputs.spreadsheet import spreadsheet_safe
from tests.conftest import BANK


def _manifest(parts: list[dict], points: float = 6) -> dict:
    """A one-document, two-variant manifest with one question of the given parts."""
    question = {"id": "q", "parts": parts}
    negated = {"id": "q", "parts": [{**p, "value": _map(p["value"], lambda v: -v)} for p in parts]}
    return {
        "seed": 1,
        "variants": [{"id": "A", "questions": [question]}, {"id": "B", "questions": [negated]}],
        "documents": [{"id": "sheet", "copies": [
            {"folder": "sheet/A", "variant": "A", "questions": [{"number": 1, "id": "q", "points": points}]},
            {"folder": "sheet/B", "variant": "B", "questions": [{"number": 1, "id": "q", "points": points}]},
        ]}],
    }


def _map(value, f):
    return [_map(v, f) for v in value] if isinstance(value, list) else f(value)


MATRIX = {"id": "J", "shape": [2, 2], "value": [[1, 2], [3, 4]]}
SCALAR = {"id": "s", "shape": [], "value": 0.5}


def _rows(answers: dict[tuple[str, str, str], str]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["student", "question", "part", "entry", "response"])
    for (student, part, entry), response in answers.items():
        writer.writerow([student, "q", part, entry, response])
    return out.getvalue()


def _key(matrix=((1, 2), (3, 4)), scalar="1/2", student="A") -> dict[tuple[str, str, str], str]:
    rows = {(student, "J", f"{i},{j}"): str(matrix[i - 1][j - 1]) for i in (1, 2) for j in (1, 2)}
    rows[(student, "s", "")] = scalar
    return rows


def _grade(tmp_path: Path, manifest: dict, answers: dict, **options) -> tuple[dict[str, dict[str, str]], list[dict[str, str]]]:
    (tmp_path / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    responses = tmp_path / "responses.csv"
    responses.write_text(_rows(answers), encoding="utf-8")
    result = grade(GradeOptions(responses, tmp_path / "manifest.json", force=True, **options))
    scores = {row["student"]: row for row in csv.DictReader(io.StringIO(result.scores.read_text(encoding="utf-8")))}
    summary = list(csv.DictReader(io.StringIO(result.summary.read_text(encoding="utf-8"))))
    return scores, summary


def test_the_key_scores_full_marks(tmp_path):
    scores, summary = _grade(tmp_path, _manifest([MATRIX, SCALAR]), _key())
    assert (scores["A"]["q"], scores["A"]["total"], scores["A"]["max"]) == ("6", "6", "6")
    assert [(r["part"], r["full_marks"]) for r in summary] == [("J", "1"), ("s", "1")]


@pytest.mark.parametrize(("answers", "points"), [
    (_key(matrix=((1, 2), (3, 5))), "5.25"),  # one entry of four off by one: 3/4 of the matrix's 3 points
    (_key(matrix=((1, 3), (2, 4))), "4.5"),  # transposed: the two off-diagonal entries wrong
    (_key(scalar="0.5000001"), "3"),  # exact rule: close is not equal
    (_key(scalar="0.5"), "6"),  # a decimal equal to the key
    (_key(scalar="abc"), "3"),  # unreadable: scores nothing
])
def test_each_perturbation_loses_exactly_its_points(tmp_path, answers, points):
    scores, _ = _grade(tmp_path, _manifest([MATRIX, SCALAR]), answers)
    assert scores["A"]["total"] == points


def test_all_or_nothing_parts_lose_everything_for_one_entry(tmp_path):
    scores, _ = _grade(tmp_path, _manifest([{**MATRIX, "credit": "all"}, SCALAR]), _key(matrix=((1, 2), (3, 5))))
    assert scores["A"]["total"] == "3"


@pytest.mark.parametrize(("response", "total"), [("0.509", "6"), ("0.510", "6"), ("0.5101", "3"), ("0.49", "6"),
                                                  ("0.4899", "3")])
def test_a_tolerance_counts_to_its_edge_and_not_beyond(tmp_path, response, total):
    rounded = {**SCALAR, "rule": {"kind": "decimals", "digits": 2, "abs_tol": "1/100", "rel_tol": None}}
    scores, _ = _grade(tmp_path, _manifest([MATRIX, rounded]), _key(scalar=response))
    assert scores["A"]["total"] == total


def test_a_relative_tolerance_scales_with_the_value(tmp_path):
    rounded = {**SCALAR, "value": 200, "rule": {"kind": "sigfigs", "digits": 2, "abs_tol": None, "rel_tol": "1/100"}}
    assert _grade(tmp_path, _manifest([rounded]), {("A", "s", ""): "202"})[0]["A"]["total"] == "6"
    assert _grade(tmp_path, _manifest([rounded]), {("A", "s", ""): "202.5"})[0]["A"]["total"] == "0"


def test_a_closed_form_in_e_matches_its_double(tmp_path):
    sigmoid = {"id": "s", "shape": [], "value": 0.8807970779778824}
    scores, _ = _grade(tmp_path, _manifest([sigmoid]), {("A", "s", ""): "exp(2)/(exp(2) + 1)"})
    assert scores["A"]["total"] == "6"
    assert _grade(tmp_path, _manifest([sigmoid]), {("A", "s", ""): "0.8808"})[0]["A"]["total"] == "0"


def test_the_summary_names_misconceptions_and_common_wrong_values(tmp_path):
    answers = {**_key(matrix=((1, 3), (2, 4))), **_key(matrix=((-1, -2), (-3, -4)), scalar="1/2", student="B")}
    _, summary = _grade(tmp_path, _manifest([MATRIX, SCALAR]), answers)
    by_part = {row["part"]: row for row in summary}
    assert by_part["J"]["misconceptions"] == "transposed Jacobian (x1)"
    assert by_part["J"]["common_wrong"] == "A[1, 2]: 3 (x1); A[2, 1]: 2 (x1)"
    assert by_part["s"]["misconceptions"] == "sign flip (x1)"  # B's key is -1/2
    assert (by_part["J"]["answered"], by_part["J"]["full_marks"]) == ("2", "1")  # B got J right


def test_a_misconception_the_manifest_lists_is_named(tmp_path):
    dropped = {**SCALAR, "misconceptions": [{"name": "dropped inner derivative", "value": 0.25}]}
    _, summary = _grade(tmp_path, _manifest([dropped]), {("A", "s", ""): "1/4"})
    assert summary[0]["misconceptions"] == "dropped inner derivative (x1)"


def test_bad_rows_are_reported_with_their_line_numbers(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    answers = {("A", "J", "1,1"): "1", ("Z", "J", "1,1"): "1", ("A", "K", ""): "1", ("A", "J", "3,1"): "1",
               ("A", "J", "1,1 "): "1"}
    with pytest.raises(GradeError) as error:
        _grade(tmp_path, _manifest([MATRIX]), answers)
    assert error.value.problems == [
        "responses.csv:3: unknown student or copy 'Z'",
        "responses.csv:4: question q has no part 'K'",
        "responses.csv:5: part q/J (2x2) has no entry '3,1'",
        "responses.csv:6: repeats line 2 (A, q, J, entry 1,1)",
    ]


def test_nothing_is_overwritten_without_force(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "manifest.json").write_text(json.dumps(_manifest([SCALAR])), encoding="utf-8")
    (tmp_path / "r.csv").write_text(_rows({("A", "s", ""): "1/2"}), encoding="utf-8")
    (tmp_path / "r-scores.csv").write_text("mine", encoding="utf-8")
    with pytest.raises(GradeError, match="r-scores.csv: exists already; give --force to overwrite"):
        grade(GradeOptions(tmp_path / "r.csv", tmp_path / "manifest.json"))
    assert (tmp_path / "r-scores.csv").read_text() == "mine" and not (tmp_path / "r-summary.csv").exists()


@pytest.mark.parametrize("text", [
    "__import__('os').system('true')", "1 if 1 else 2", "x", "pi", "sin(1)", "[1, 2]", "1,5", "9**9**9", "10**1000",
    "e**1000", "1/0", "lambda: 1", "1_000", "()" * 50, "1" * 81, "", "=1+1", "2 3", "exp(1, 2)", "0x10", "1e999",
    "exp(1e999)", "(1).real", "'1'", "1e99999999", "exp(10**9)",
])
def test_hostile_or_unreadable_responses_are_refused_quickly(text):
    start = time.perf_counter()
    with pytest.raises(ResponseError):
        parse_response(text)
    assert time.perf_counter() - start < 0.5


@pytest.mark.parametrize(("text", "value"), [("3", Fraction(3)), ("-1/4", Fraction(-1, 4)), ("0.1", Fraction(1, 10)),
                                             ("1.5e-3", Fraction(3, 2000)), ("(2 - 1/2) * 2", Fraction(3)),
                                             ("2**-2", Fraction(1, 4)), ("+7", Fraction(7))])
def test_rational_responses_are_exact(text, value):
    assert parse_response(text) == value


@pytest.mark.parametrize(("cell", "safe"), [("=1+1", "'=1+1"), ("+1", "'+1"), ("-0.5", "'-0.5"), ("@x", "'@x"),
                                            ("\tx", "'\tx"), ("\rx", "'\rx"), ("Ada", "Ada"), (3, "3"), ("", "")])
def test_spreadsheet_safe(cell, safe):
    assert spreadsheet_safe(cell) == safe


def test_a_build_manifest_grades_its_own_key(tmp_path):
    """Every entry of every copy of a real build, answered with the key's value: full marks."""
    build(BuildOptions(seed=3, bank=BANK, out=tmp_path / "b", pdf=False, variants=2, worksheets=("nn-backprop",)))
    manifest = json.loads((tmp_path / "b" / "manifest.json").read_text(encoding="utf-8"))
    variants = {v["id"]: {q["id"]: q for q in v["questions"]} for v in manifest["variants"]}
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["student", "question", "part", "entry", "response"])
    for copy in manifest["documents"][0]["copies"]:
        for slot in copy["questions"]:
            for part in variants[copy["variant"]][slot["id"]]["parts"]:
                for index, value in _flat(part["value"]):
                    writer.writerow([copy["variant"], slot["number"], part["id"], ",".join(map(str, index)), repr(value)])
    (tmp_path / "r.csv").write_text(out.getvalue(), encoding="utf-8")
    result = grade(GradeOptions(tmp_path / "r.csv", tmp_path / "b" / "manifest.json"))
    assert result.notes == () and result.mean == result.maximum == 15
    rows = list(csv.DictReader(io.StringIO(result.scores.read_text(encoding="utf-8"))))
    assert [(r["student"], r["total"]) for r in rows] == [("A", "15"), ("B", "15")]


def _flat(value, index=()):
    if not isinstance(value, list):
        return [(index, value)]
    return [pair for k, item in enumerate(value, 1) for pair in _flat(item, index + (k,))]


@pytest.mark.parametrize(("response", "total"), [("0.51", "6"), ("0.5101", "3")])
def test_the_rule_as_the_manifest_writes_it(tmp_path, response, total):
    """generator.outputs.manifest writes a rounded part's rule with a tolerance mapping of numbers."""
    rounded = {**SCALAR, "rule": {"kind": "decimals", "digits": 2, "tolerance": {"abs": 0.01}}, "rounded": 0.5}
    scores, _ = _grade(tmp_path, _manifest([MATRIX, rounded]), _key(scalar=response))
    assert scores["A"]["total"] == total


# --- choice parts: letters against the manifest's `letters` ---------------------------------------

def _choice_part(letters: list[str], **extra) -> dict:
    sources = {"A": "options[0]", "B": "answer", "C": "sign", "D": "inner_dropped", "E": "transposed"}
    return {"id": "c", "kind": "choice", "shape": [], "value": 1, "letters": letters,
            "choices": [{"letter": x, "source": sources[x], "correct": x in letters, "text": x} for x in "ABCDE"],
            **extra}


@pytest.mark.parametrize(("response", "total"), [
    ("B", "6"), ("b", "6"), (" B ", "6"),  # case and spaces do not matter
    ("A", "3"), ("B,C", "3"), ("", "3"),  # a wrong letter, an extra one, unreadable: the part scores nothing
])
def test_a_choice_part_is_graded_by_its_letters(tmp_path, response, total):
    scores, _ = _grade(tmp_path, _manifest([_choice_part(["B"]), SCALAR]), {("A", "c", ""): response,
                                                                             ("A", "s", ""): "1/2"})
    assert scores["A"]["total"] == total


@pytest.mark.parametrize(("response", "total"), [("A,C", "6"), ("c, a", "6"), ("a c", "6"), ("A", "0"),
                                                 ("A,B,C", "0")])
def test_several_right_letters_are_all_or_nothing(tmp_path, response, total):
    scores, _ = _grade(tmp_path, _manifest([_choice_part(["A", "C"])]), {("A", "c", ""): response})
    assert scores["A"]["total"] == total


@pytest.mark.parametrize(("response", "total"), [("A,C", "6"), ("A", "3"), ("A,B", "0"), ("A,B,C", "3")])
def test_a_choice_part_with_credit_entries_earns_per_letter(tmp_path, response, total):
    scores, _ = _grade(tmp_path, _manifest([_choice_part(["A", "C"], credit="entries")]), {("A", "c", ""): response})
    assert scores["A"]["total"] == total


@pytest.mark.parametrize(("response", "named"), [
    ("C", "sign flip (x1)"), ("D", "inner derivative dropped (x1)"), ("E", "transposed Jacobian (x1)"),
    ("A", ""),  # an author's distractor: no misconception recorded
    ("B", ""),  # right
])
def test_a_wrong_letter_that_is_a_misconception_is_named(tmp_path, response, named):
    _, summary = _grade(tmp_path, _manifest([_choice_part(["B"])]), {("A", "c", ""): response})
    assert summary[0]["misconceptions"] == named
    assert summary[0]["common_wrong"] == ("" if response == "B" else f"A: {response} (x1)")


def test_bad_letters_are_reported_with_their_line(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "manifest.json").write_text(json.dumps(_manifest([_choice_part(["B"]), SCALAR])), encoding="utf-8")
    (tmp_path / "r.csv").write_text(_rows({("A", "c", ""): "F", ("B", "c", ""): "B2", ("A", "s", ""): "1/2"}),
                                    encoding="utf-8")
    result = grade(GradeOptions(tmp_path / "r.csv", tmp_path / "manifest.json"))
    assert result.notes == (
        "r.csv:2: response 'F' not read (no option F (the options are A, B, C, D, E)); scored 0",
        "r.csv:3: response 'B2' not read (expected letters of the options (A, B, C, D, E), such as 'B' or 'A,C'); "
        "scored 0",
    )


def test_a_choice_part_answered_at_an_entry_is_a_bad_row(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(GradeError) as error:
        _grade(tmp_path, _manifest([_choice_part(["B"])]), {("A", "c", "1"): "B"})
    assert error.value.problems == ["responses.csv:2: part q/c (scalar) has no entry '1'"]


def test_a_build_manifest_grades_its_choice_parts_by_letter(tmp_path):
    """The calculus worksheet's multiple-choice question: its letters score full marks; each
    misconception distractor the build recorded is named when ticked."""
    build(BuildOptions(seed=3, bank=BANK, out=tmp_path / "b", pdf=False, variants=1, worksheets=("calculus",)))
    manifest = json.loads((tmp_path / "b" / "manifest.json").read_text(encoding="utf-8"))
    questions = {q["id"]: q for q in manifest["variants"][0]["questions"]}
    copy = manifest["documents"][0]["copies"][0]
    number, qid, part = next((s["number"], s["id"], p) for s in copy["questions"] for p in questions[s["id"]]["parts"]
                        if p.get("kind") == "choice")
    wrong = {c["source"]: c["letter"] for c in part["choices"] if not c["correct"]}
    assert {"sign", "inner_dropped"} <= set(wrong)
    for response, points, named in [(",".join(part["letters"]).lower(), "2", ""),
                                    (wrong["sign"], "0", "sign flip (x1)"),
                                    (wrong["inner_dropped"], "0", "inner derivative dropped (x1)")]:
        (tmp_path / "r.csv").write_text(f"student,question,part,entry,response\nA,{number},{part['id']},,{response}\n",
                                        encoding="utf-8")
        result = grade(GradeOptions(tmp_path / "r.csv", tmp_path / "b" / "manifest.json", force=True))
        assert result.notes == ()
        scores = next(csv.DictReader(io.StringIO(result.scores.read_text(encoding="utf-8"))))
        assert scores["total"] == points
        summary = csv.DictReader(io.StringIO(result.summary.read_text(encoding="utf-8")))
        row = next(r for r in summary if (r["question"], r["part"]) == (qid, part["id"]))
        assert row["misconceptions"] == named


def test_a_build_manifest_names_each_numeric_misconception(tmp_path):
    """mlp2's dE/dW2 in a real build: three copies answer it with the inner derivative dropped (the
    value the manifest records), transposed, and with the sign flipped; the summary names each."""
    build(BuildOptions(seed=42, bank=BANK, out=tmp_path / "b", pdf=False, variants=3, worksheets=("nn-backprop",)))
    manifest = json.loads((tmp_path / "b" / "manifest.json").read_text(encoding="utf-8"))
    parts = {v["id"]: next(p for q in v["questions"] if q["id"] == "mlp2" for p in q["parts"] if p["id"] == "dE_dW2")
             for v in manifest["variants"]}
    import numpy as np

    def transposed(value):
        array = np.array(value, dtype=object)
        return array.T.tolist()

    def negated(value):
        return _map(value, lambda v: -v)

    # (transposed: a copy whose W2 is square, which the seed's dimensions give variant A)
    square = next(k for k, p in parts.items() if np.array(p["value"], dtype=object).shape[0] ==
                  np.array(p["value"], dtype=object).shape[1])
    others = [k for k in parts if k != square]
    wrong = {square: lambda p: transposed(p["value"]), others[0]: lambda p: p["misconceptions"][0]["value"],
             others[1]: lambda p: negated(p["value"])}
    assert all(p["misconceptions"][0]["name"] == "inner derivative dropped" for p in parts.values())
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["student", "question", "part", "entry", "response"])
    for label, mistake in wrong.items():
        assert mistake(parts[label]) != parts[label]["value"]
        for index, value in _flat(mistake(parts[label])):
            writer.writerow([label, "mlp2", "dE_dW2", ",".join(map(str, index)), repr(value)])
    (tmp_path / "r.csv").write_text(out.getvalue(), encoding="utf-8")
    result = grade(GradeOptions(tmp_path / "r.csv", tmp_path / "b" / "manifest.json"))
    row = next(r for r in csv.DictReader(io.StringIO(result.summary.read_text(encoding="utf-8")))
               if (r["question"], r["part"]) == ("mlp2", "dE_dW2"))
    assert row["full_marks"] == "0"
    assert sorted(row["misconceptions"].split("; ")) == [
        "inner derivative dropped (x1)", "sign flip (x1)", "transposed Jacobian (x1)"]


def test_the_recorded_inner_derivative_dropped_value_is_the_hand_made_one(tmp_path):
    """calc-product-rule: f = x^2 sin(a x), so dropping the inner derivative a gives
    2 x0 sin(a x0) + x0^2 cos(a x0) (worked by hand, in floats, independently of the solver)."""
    import math

    build(BuildOptions(seed=3, bank=BANK, out=tmp_path / "b", pdf=False, variants=3, worksheets=("calculus",)))
    manifest = json.loads((tmp_path / "b" / "manifest.json").read_text(encoding="utf-8"))
    for variant in manifest["variants"]:
        question = next(q for q in variant["questions"] if q["id"] == "calc-product-rule")
        a, x0 = question["params"]["a"], question["params"]["x0"]
        (part,) = question["parts"]
        assert part["misconceptions"][0]["name"] == "inner derivative dropped"
        by_hand = 2 * x0 * math.sin(a * x0) + x0**2 * math.cos(a * x0)
        assert math.isclose(part["misconceptions"][0]["value"], by_hand, rel_tol=1e-12)
        assert not math.isclose(part["value"], by_hand, rel_tol=1e-6)

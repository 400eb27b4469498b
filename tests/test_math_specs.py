"""Specs beyond matrix calculus (issue 16): symbols, decimal steps, answer rules, the messages
that say what to do, and the example questions of tests/fixtures/mathbank built to PDF."""

from __future__ import annotations

import csv
import io
import json
import os
import re
import subprocess
from fractions import Fraction
from pathlib import Path

import pytest
from conftest import FIXTURES, ROOT, needs_tex, write

from generator.answers.sampling import sample
from generator.answers.solve import solve
from generator.answers.verify import verify
from generator.commands.check import CheckOptions, check
from generator.errors import RenderError, SpecError
from generator.outputs.keytable import answer_rows
from generator.outputs.manifest import manifest_entry
from generator.render.documents import make_environment, render_question
from generator.spec.model import AnswerRule, entry_values, load_question

MATHBANK = FIXTURES / "mathbank"

BASE = """
id: demo
title: Demo
symbols: [x]
parameters:
  a: {entries: [1, 3]}
  x0: {entries: [0.50, 0.80], step: 0.01}
define:
  f: a * x ** 2
  f_at: subs(f, x, x0)
parts:
  - {id: df, of: f_at, wrt: x0, decimals: 2, prompt: "$f'$"}
stem: "Let $f(x) = << f | latex >>$."
"""


def problems(tmp_path: Path, text: str) -> list[str]:
    path = write(tmp_path / "q.yaml", text)
    with pytest.raises(SpecError) as info:
        load_question(path)
    return [p.replace(str(path), "q.yaml") for p in info.value.problems]


def test_decimal_steps_are_exact_decimals(tmp_path):
    q = load_question(write(tmp_path / "q.yaml", BASE))
    x0 = q.parameters[1]
    assert x0.step == Fraction(1, 100) and x0.low == Fraction(1, 2) and x0.high == Fraction(4, 5)
    values = entry_values(x0)
    assert len(values) == 31 and values[0] == Fraction(1, 2) and values[-1] == Fraction(4, 5)
    assert q.parts[0].rule == AnswerRule("decimals", 2, Fraction(1, 100), None, None)
    assert q.symbols == ("x",)


@pytest.mark.parametrize("change, expected", [
    (("{entries: [0.50, 0.80], step: 0.01}", "{entries: [0.5, 0.8]}"),
     "q.yaml:6:17: parameters.x0.entries: expected whole numbers, got [0.5, 0.8]; for decimals give a step as well, "
     "e.g. step: 0.01 (or denominators for fractions)"),
    (("step: 0.01}", "step: 0.07}"), "q.yaml:6:37: parameters.x0.step: [0.5, 0.8] is not a whole number of steps of 0.07"),
    (("step: 0.01}", "step: 0.01, denominators: [2]}"),
     "q.yaml:6:31: parameters.x0.step: give either step (decimals: 0.5, 0.51, ...) or denominators (fractions), not both"),
    (("decimals: 2,", "decimals: 2, sigfigs: 3,"),
     "q.yaml:11:46: parts[0].sigfigs: give either decimals (places after the point) or sigfigs (significant digits), not both"),
    (("decimals: 2,", "tolerance: {abs: 0.1},"),
     "q.yaml:11:33: parts[0].tolerance: tolerance goes with decimals: N or sigfigs: N; an exact answer is given exactly"),
    (("of: f_at, wrt: x0", "of: f"),
     "q.yaml:11:21: parts[0].decimals: 'f' is a formula, which is answered exactly; round its value at a point instead "
     "(subs(f, x, x0))"),
    (("decimals: 2,", "form: expand,"),
     "q.yaml:11:33: parts[0].form: form goes with a formula answer; 'f_at' has no symbols"),
    (("wrt: x0", "wrt: 'x[1]'"), "q.yaml:11:29: parts[0].wrt: 'x' is a symbol, which has no entries; write x"),
    (("wrt: x0", "wrt: [x, x0]"),
     "q.yaml:11:29: parts[0].wrt: a derivative is either with respect to symbols (a formula) or to parameters "
     "(numbers), not both"),
    (("wrt: x0", "wrt: 'x0[0]'"), "q.yaml:11:29: parts[0].wrt: 'x0' has 0 indices, got 1 in 'x0[0]'"),
    (("wrt: x0", "wrt: [x0, y]"), "q.yaml:11:34: parts[0].wrt[1]: 'y' is not a parameter or symbol (parameters: a, x0)"),
    (("  f: a * x ** 2", "  f: a * x ^ 2"),
     "q.yaml:8:6: define.f: '^' is not a power here; write ** for powers, e.g. w**2 (column 1 of 'a * x ^ 2')"),
    (("  f: a * x ** 2", "  f: a if x else 1"),
     "q.yaml:8:6: define.f: a conditional (a if c else b) is not allowed; write where(c, a, b) (column 1 of 'a if x else 1')"),
    (("  a: {entries: [1, 3]}", "  in: {entries: [1, 3]}"),
     "q.yaml:5:3: parameters.in: 'in' is a reserved word (of Python, which reads the expressions); name it e.g. 'in_' instead"),
    (("  f: a * x ** 2", "  f: a * x ** 2 + for"),
     "q.yaml:8:6: define.f: 'for' is a reserved word (of Python, which reads the expressions); name it e.g. 'for_' instead "
     "(column 14 of 'a * x ** 2 + for')"),
    (("subs(f, x, x0)", "subs(f, a, x0)"),
     "q.yaml:9:9: define.f_at: subs() replaces a symbol of the question, got 'a' (symbols: x) (column 1 of 'subs(f, a, x0)')"),
])
def test_bad_specs_say_what_to_do(tmp_path, change, expected):
    old, new = change
    assert old in BASE
    assert problems(tmp_path, BASE.replace(old, new, 1))[0] == expected


@pytest.mark.parametrize("name, hint", [
    ("det2", "did you mean 'det'?"), ("inverse", "did you mean 'inv'?"), ("ln", "write log(x)"),
    ("arcsin", "did you mean 'asin'?"), ("piecewise", "did you mean 'where'?"),
])
def test_unknown_functions_are_suggested_by_meaning(tmp_path, name, hint):
    found = problems(tmp_path, BASE.replace("  f: a * x ** 2", f"  f: {name}(a * x)"))
    assert found[0].startswith(f"q.yaml:8:6: define.f: unknown function '{name}'; {hint} (functions: abs, acos, all, ")


def test_lambda_is_allowed_as_a_name(tmp_path):
    text = BASE.replace("  a: {entries: [1, 3]}", "  lambda: {entries: [1, 3]}").replace("a * x ** 2", "lambda * x ** 2")
    q = load_question(write(tmp_path / "q.yaml", text))
    assert q.parameter_names == ("lambda", "x0")
    assert q.define[0][1].names == {"lambda", "x"}


def solved(path: Path, seed: int = 0):
    solution = solve(sample(load_question(path), seed, 0))
    verify(solution)
    return solution


def test_a_formula_prints_sign_correct_and_its_value_at_the_point_is_checked():
    solution = solved(MATHBANK / "questions" / "quadratic-form.yaml")
    rendered = render_question(make_environment(), solution)
    a, b, c = (int(solution.instance.params[n][()]) for n in "abc")
    formula = rendered.stem.split("$")[1]
    assert "+ -" not in formula and not re.search(r"(?<![\w{])1 x", formula)
    sign = "- " if b < 0 else "+ "
    assert f"{sign}{abs(b) if abs(b) != 1 else ''} x_{{1}} x_{{2}}".replace("  ", " ") in formula
    assert formula.index("x_{1}^{2}") < formula.index("x_{1} x_{2}") < formula.index("x_{2}^{2}")
    assert (a, c) != (0, 0)


def test_rounded_parts_record_their_rule_in_manifest_and_answers_csv():
    solution = solved(MATHBANK / "questions" / "regularised-loss.yaml")
    entry = manifest_entry(solution)
    loss, gradient = entry["parts"]
    assert loss["rule"] == {"kind": "sigfigs", "digits": 3, "tolerance": {"rel": 0.01}}
    assert gradient["rule"] == {"kind": "decimals", "digits": 3, "tolerance": {"abs": 0.002}}
    assert gradient["rounded"] == [round(v, 3) for v in gradient["value"]]
    rows = answer_rows(solution)
    assert [row[4:] for row in rows][1][0] == "decimals 3" and rows[1][6] == "abs 0.002"


def test_exact_parts_keep_the_manifest_as_it_was():
    entry = manifest_entry(solved(MATHBANK / "questions" / "determinant-inverse.yaml"))
    assert all(set(part) == {"id", "of", "wrt", "shape", "value", "latex"} for part in entry["parts"])


def test_templates_see_scalars_as_plain_numbers(tmp_path):
    text = BASE.replace('stem: "Let $f(x) = << f | latex >>$."', 'stem: "<< [\'p\', \'q\', \'r\', \'s\'][a] >> << a + 1 >>"')
    rendered = render_question(make_environment(), solved(write(tmp_path / "q.yaml", text)))
    assert rendered.stem in ("q 2", "r 3", "s 4")


def test_template_errors_say_what_a_value_is(tmp_path):
    text = BASE.replace("parameters:\n", "parameters:\n  W: {shape: [3, 4], entries: [0, 1]}\n").replace(
        'stem: "Let $f(x) = << f | latex >>$."', 'stem: "<< W.rows >>"')
    with pytest.raises(RenderError, match=r"stem: undefined template variable: W is a 3x4 matrix: it has no attribute rows$"):
        render_question(make_environment(), solved(write(tmp_path / "q.yaml", text)))


def test_check_reports_nothing_for_the_example_questions():
    report = check(CheckOptions(paths=(MATHBANK,), seeds=8, compile=False))
    assert report.problems == () and report.questions == 4 and report.worksheets == 1


def test_check_still_guards_exact_answers_against_large_numbers(tmp_path):
    path = write(tmp_path / "q.yaml", BASE.replace("decimals: 2, ", ""))
    report = check(CheckOptions(paths=(path,), seeds=3, compile=False))
    assert len(report.problems) == 0  # a decimal point: worked in decimals, not held to the fraction bound
    path = write(tmp_path / "q.yaml", BASE.replace("step: 0.01", "step: 1").replace("0.50, 0.80", "990, 999")
                 .replace("decimals: 2, ", ""))
    report = check(CheckOptions(paths=(path,), seeds=3, compile=False))
    assert any("a student would compute with" in p for p in report.problems)


@needs_tex
@pytest.mark.tex
def test_the_example_worksheet_builds_to_pdf_and_reads_back(tmp_path):
    out = tmp_path / "out"
    subprocess.run(["python3", "-m", "generator", "build", "--bank", str(MATHBANK), "--seed", "1", "--variants", "1",
                    "--out", str(out)], check=True, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)},
                   capture_output=True)
    key = subprocess.run(["pdftotext", str(out / "math" / "combined-key.pdf"), "-"], check=True, capture_output=True,
                         text=True).stdout
    sheet = subprocess.run(["pdftotext", str(out / "math" / "combined-sheet.pdf"), "-"], check=True, capture_output=True,
                           text=True).stdout
    manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    parts = {(q["id"], p["id"]): p for q in manifest["variants"][0]["questions"] for p in q["parts"]}
    rows = list(csv.DictReader(io.StringIO((out / "answers.csv").read_text(encoding="utf-8"))))
    # The derivative at a decimal point, to 2 decimals, with its tolerance.
    df = parts[("product-rule", "df")]
    assert f"{df['rounded']:.2f}".replace("-", "−") in key
    assert "to 2 decimal places, accepted within ±0.01" in key
    assert "x0 = 0." in sheet.replace(" ", "").replace("x0=", "x0 = ")
    # A quadratic form: signs right, never "+ −".
    assert "+ −" not in key and "q(x1 , x2 ) =" in sheet
    # The regularised loss with lambda, and the determinant and inverse (exact integers/fractions).
    assert "λ = 0." in sheet and parts[("determinant-inverse", "det")]["value"] != 0
    assert {row["rule"] for row in rows} == {"exact", "decimals 2", "decimals 3", "sigfigs 3"}
    # The key says only what is true of it: the convention (a Jacobian is asked), both kinds of check.
    assert "each derivative was checked against central finite differences, each value by evaluating" in key
    assert "Index forms" not in key

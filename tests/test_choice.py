"""Choice parts (issue 17, item 6): multiple choice and true/false, their options shuffled per
variant, redrawn when two are equal, checked again in numpy, and shown as boxes to tick."""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import sympy
from conftest import ROOT, needs_tex, write

from generator.answers.sampling import sample
from generator.answers.solve import solve
from generator.answers.verify import verify
from generator.commands.check import CheckOptions, check
from generator.errors import SolveError, SpecError, VerifyError
from generator.outputs.keytable import answer_rows
from generator.outputs.manifest import manifest_entry
from generator.render.documents import make_environment, render_question
from generator.spec.model import load_question

BANK = ROOT / "question_bank" / "questions"

BASE = """
id: demo
title: Demo
parameters:
  a: {entries: [1, 3]}
  v: {shape: [2], entries: [1, 3]}
define:
  f: a ** 2
  g: v * a
parts:
  - id: c
    of: f
    wrt: a
    prompt: "Which?"
    choice:
      options:
        - {value: "a"}
      misconceptions: [sign]
stem: "S"
"""


def problems(tmp_path: Path, text: str) -> list[str]:
    path = tmp_path / "q.yaml"
    path.write_text(text, encoding="utf-8")  # (as written: the lines of BASE, from 2)
    with pytest.raises(SpecError) as info:
        load_question(path)
    return [p.replace(str(path), "q.yaml") for p in info.value.problems]


@pytest.mark.parametrize(("old", "new", "expected"), [
    ('- {value: "a"}', '- {value: "a", text: "x"}',
     ["q.yaml:17:11: parts[0].choice.options[0]: give either value (an expression) or text (LaTeX), not both or "
      "neither"]),
    ('- {value: "a"}', '- {text: "x", correct: "a >"}',
     ["q.yaml:17:32: parts[0].choice.options[0].correct: syntax error at column 1 of 'a >'"]),
    ("misconceptions: [sign]", "misconceptions: [flipped]",
     ["q.yaml:18:24: parts[0].choice.misconceptions[0]: unknown misconception 'flipped' (known: transposed, sign, "
      "inner_dropped)"]),
    ("    of: f\n    wrt: a\n", "    of: f\n",
     ["q.yaml:17:7: parts[0].choice.misconceptions: misconceptions are wrong derivatives: the part needs `of` and "
      "`wrt`"]),
    ('- {value: "a"}', '- {value: "2 * a", correct: true}',
     ["q.yaml:17:37: parts[0].choice.options[0].correct: the part's answer (f) is the correct value; another value "
      "marked correct would equal it (leave out `of` to mark values yourself)"]),
    ('      options:\n        - {value: "a"}\n      misconceptions: [sign]\n', "      shuffle: false\n",
     ["q.yaml:15:5: parts[0].choice: expected at least 2 options, got 1"]),
    ("    prompt:", "    decimals: 2\n    prompt:",
     ["q.yaml:14:5: parts[0].decimals: a choice part is answered by its letters; decimals does not apply"]),
    ("    of: f\n    wrt: a\n", "",
     ['q.yaml:14:7: parts[0].choice.options: no option is correct: mark one with correct: true, give a condition '
      '(correct: "det(M) > 0"), or give the part an `of` (its answer is then an option)',
      "q.yaml:16:7: parts[0].choice.misconceptions: misconceptions are wrong derivatives: the part needs `of` and "
      "`wrt`"]),
    ("    choice:\n", "    choise:\n", ["q.yaml:15:5: parts[0].choise: unknown key 'choise'; did you mean 'choice'?"]),
    ("    choice:\n      options:\n        - {value: \"a\"}\n      misconceptions: [sign]\n", "",
     ["q.yaml:11:5: parts[0]: missing required key 'of'"]),
])
def test_spec_errors_say_what_is_wrong(tmp_path, old, new, expected):
    assert old in BASE
    text = BASE.replace(old, new)
    if "missing required key" in expected[0]:
        text = text.replace("    of: f\n    wrt: a\n", "")
    assert problems(tmp_path, text) == expected


def solved(path: Path, seed: int = 42, variant: int = 0):
    solution = solve(sample(load_question(path), seed, variant))
    verify(solution)
    return solution


def order(solution, part: int = 0) -> list[str]:
    choice = solution.parts[part].choice
    return [option.source for option in choice.options]


def test_the_shuffle_is_the_same_for_a_seed_and_differs_across_variants():
    path = BANK / "mc-derivative-rule.yaml"
    assert order(solved(path, 42, 0)) == order(solved(path, 42, 0))
    orders = {tuple(order(solved(path, 42, v))) for v in range(8)}
    assert len(orders) > 3  # 5 options: 120 orders
    first = solved(path, 42, 0).parts[0].choice
    assert [o.letter for o in first.options] == ["A", "B", "C", "D", "E"]
    assert first.letters == tuple(o.letter for o in first.options if o.source == "answer")


def test_shuffle_false_keeps_the_written_order():
    solution = solved(BANK / "mc-linear-algebra.yaml", 42, 3)
    choice = solution.parts[1].choice
    assert [(o.letter, o.text) for o in choice.options] == [("A", "True"), ("B", "False")]
    det = solution.values["D"][()]
    assert choice.letters == (("A",) if det > 0 else ("B",))


CLASH = """
id: clash
title: Clash
parameters:
  a: {entries: [1, 3]}
define:
  f: 2 * a
parts:
  - id: c
    of: f
    prompt: "Which is $2a$?"
    choice:
      options:
        - {value: "a * a"}
        - {value: "a + 10"}
stem: "S"
"""


def test_a_variant_where_a_distractor_equals_the_answer_is_drawn_again(tmp_path):
    path = write(tmp_path / "q.yaml", CLASH)
    question = load_question(path)
    redrawn = 0
    for variant in range(12):
        first = sample(question, 5, variant)
        solution = solve(first)
        assert solution.instance.params["a"][()] != 2  # 2 * 2 == 2 ** 2: never shown
        choice = solution.parts[0].choice
        values = [o.value[()] for o in choice.options]
        assert len(set(values)) == 3
        if first.params["a"][()] == 2:
            redrawn += 1
            assert choice.redraws >= 1
        else:
            assert choice.redraws == 0 and solution.instance is first
    assert redrawn  # (seed 5 draws a = 2 in some of the 12 variants)


def test_options_that_are_always_equal_stop_with_a_message(tmp_path):
    path = write(tmp_path / "q.yaml", CLASH.replace('"a * a"', '"a + a"'))
    with pytest.raises(SolveError) as info:
        solve(sample(load_question(path), 0, 0))
    assert str(info.value) == (
        "question 'clash', variant A (seed 0): part 'c': option options[0] equals option answer in each of 51 draws; "
        "make the options differ (another distractor, a constraint)"
    )


def test_check_reports_a_part_whose_options_are_often_equal(tmp_path):
    path = write(tmp_path / "q.yaml", CLASH)
    report = check(CheckOptions(paths=(path,), seeds=20, compile=False))
    assert len(report.problems) == 1
    assert "parts[0] (c): two options were equal, and the variant drawn again, in" in report.problems[0]
    quiet = check(CheckOptions(paths=(BANK / "mc-derivative-rule.yaml", BANK / "mc-linear-algebra.yaml"),
                               seeds=20, compile=False))
    assert quiet.problems == ()


@pytest.mark.parametrize(("define", "wrt", "name", "expected"), [
    ("sin(a * x0)", "x0", "inner_dropped", "cos(a*x0)"),
    ("(a * x0 + 1) ** 3", "x0", "inner_dropped", "3*(a*x0 + 1)**2"),
    ("x0 * exp(a * x0)", "x0", "inner_dropped", "exp(a*x0) + x0*exp(a*x0)"),
    ("x0 * exp(a * x0)", "x0", "sign", "-(exp(a*x0) + a*x0*exp(a*x0))"),
])
def test_misconceptions_are_the_stated_wrong_derivatives(tmp_path, define, wrt, name, expected):
    path = write(tmp_path / "q.yaml", f"""
        id: m
        title: M
        parameters:
          a: {{entries: [2, 3]}}
          x0: {{entries: [1, 2]}}
        define:
          f: {define}
        parts:
          - id: c
            of: f
            wrt: {wrt}
            prompt: "Which?"
            choice: {{misconceptions: [{name}]}}
        stem: "S"
        """)
    solution = solved(path)
    option = next(o for o in solution.parts[0].choice.options if o.source == name)
    params = solution.instance.params
    a, x0 = sympy.Symbol("a"), sympy.Symbol("x0")
    want = sympy.sympify(expected).subs({a: params["a"][()], x0: params["x0"][()]})
    assert sympy.simplify(option.value[()] - want) == 0


def test_transposed_swaps_output_and_input_axes():
    solution = solved(BANK / "mc-linear-algebra.yaml", 42, 1)
    choice = solution.parts[2].choice
    values = {o.source: o.value for o in choice.options}
    M = solution.instance.params["M"]
    assert (values["answer"] == M).all() and (values["transposed"] == M.T).all() and (values["sign"] == -M).all()


def test_transposed_of_a_scalar_is_refused(tmp_path):
    path = write(tmp_path / "q.yaml", BASE.replace("[sign]", "[transposed]"))
    with pytest.raises(SolveError, match="misconception 'transposed' needs a non-scalar output and input"):
        solve(sample(load_question(path), 0, 0))


def planted(solution, part: int, wrong: str):
    """The solution with the key's correct option moved to the letter `wrong`."""
    answer = solution.parts[part]
    options = tuple(dataclasses.replace(o, correct=o.letter == wrong) for o in answer.choice.options)
    parts = list(solution.parts)
    parts[part] = dataclasses.replace(answer, choice=dataclasses.replace(answer.choice, options=options))
    return dataclasses.replace(solution, parts=tuple(parts))


def test_a_planted_wrong_key_fails_naming_question_part_variant_and_values():
    solution = solved(BANK / "mc-derivative-rule.yaml", 42, 0)
    right = solution.parts[0].choice.letters[0]
    wrong = "A" if right != "A" else "B"
    with pytest.raises(VerifyError) as info:
        verify(planted(solution, 0, wrong))
    message = str(info.value)
    assert "question 'mc-derivative-rule', part 'rule', variant A (seed 42)" in message
    assert f"the key marks ({wrong}) but the options evaluated again with numpy make ({right}) correct" in message
    values = {o.letter: float(o.value[()]) for o in solution.parts[0].choice.options}
    assert f"({right}) {values[right]:.10g}" in message and f"({wrong}) {values[wrong]:.10g}" in message


def test_a_planted_wrong_true_false_key_fails():
    solution = solved(BANK / "mc-linear-algebra.yaml", 42, 0)
    right = solution.parts[1].choice.letters[0]
    with pytest.raises(VerifyError, match=r"part 'positive', variant A .*the key marks \(.\) but"):
        verify(planted(solution, 1, "B" if right == "A" else "A"))


def test_a_planted_wrong_option_value_fails():
    solution = solved(BANK / "mc-linear-algebra.yaml", 42, 0)
    answer = solution.parts[0]
    options = tuple(dataclasses.replace(o, value=o.value + 1) if o.source == "options[0]" else o
                    for o in answer.choice.options)
    parts = (dataclasses.replace(answer, choice=dataclasses.replace(answer.choice, options=options)),
             *solution.parts[1:])
    with pytest.raises(VerifyError, match=r"part 'det', variant A \(seed 42\): option \(.\) \(options\[0\]\) is "
                                          r"-?\d+ exactly but -?\d+ in floats"):
        verify(dataclasses.replace(solution, parts=parts))


def test_manifest_and_answers_record_the_letters_and_every_option():
    solution = solved(BANK / "mc-linear-algebra.yaml", 42, 0)
    entry = json.loads(json.dumps(manifest_entry(solution)))  # (as manifest.json holds it)
    det, positive, jacobian = entry["parts"]
    choice = solution.parts[0].choice
    assert det["kind"] == "choice" and det["letters"] == list(choice.letters)
    assert det["latex"] == f"({choice.letters[0]})"
    assert det["of"] == "D" and det["value"] == int(solution.values["D"][()])
    assert [o["letter"] for o in det["choices"]] == ["A", "B", "C", "D"]
    assert {o["source"] for o in det["choices"]} == {"answer", "options[0]", "options[1]", "options[2]"}
    assert all(o["correct"] == (o["source"] == "answer") for o in det["choices"])
    assert all(o["text"] == f"${o['latex']}$" for o in det["choices"])
    assert positive["of"] is None and positive["value"] == [] and positive["choices"][0]["text"] == "True"
    assert "value" not in positive["choices"][0]
    assert [o["source"] for o in jacobian["choices"]] == [o.source for o in solution.parts[2].choice.options]
    rows = answer_rows(solution)
    assert rows[0][1] == det["latex"] and rows[0][7] == choice.letters[0]
    assert rows[0][8] == "; ".join(f"({o['letter']}) {o['value']}" for o in det["choices"])
    assert rows[1][2:4] == ("", "") and rows[1][8] == "(A) True; (B) False"


def test_the_sheet_shows_boxes_and_the_key_ticks_the_correct_ones():
    solution = solved(BANK / "mc-derivative-rule.yaml", 42, 0)
    part = render_question(make_environment(), solution).parts[0]
    letter = solution.parts[0].choice.letters[0]
    assert part.options.count(r"$\square$") == 5 and r"\boxtimes" not in part.options
    assert part.marked.count(r"$\boxtimes$") == 1 and rf"$\boxtimes$~({letter})" in part.marked
    assert part.answer == f"({letter})"


@needs_tex
@pytest.mark.tex
def test_a_built_worksheet_shows_the_options_and_its_key_the_letters(tmp_path):
    bank = tmp_path / "bank"
    for name in ("mc-derivative-rule", "mc-linear-algebra"):
        (bank / "questions").mkdir(parents=True, exist_ok=True)
        shutil.copy(BANK / f"{name}.yaml", bank / "questions" / f"{name}.yaml")
    write(bank / "worksheets" / "mc.yaml", """
        id: mc
        title: Multiple choice
        questions: [mc-derivative-rule, mc-linear-algebra]
        """)
    out = tmp_path / "out"
    subprocess.run(["python3", "-m", "generator", "build", "--bank", str(bank), "--seed", "42", "--variants", "2",
                    "--out", str(out)], check=True, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)},
                   capture_output=True)
    manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    rows = list(csv.DictReader(io.StringIO((out / "answers.csv").read_text(encoding="utf-8"))))
    assert list(rows[0])[-2:] == ["letters", "options"]
    for variant in manifest["variants"]:
        label = variant["id"]
        key = subprocess.run(["pdftotext", "-layout", str(out / "mc" / label / "key.pdf"), "-"], check=True,
                             capture_output=True, text=True).stdout
        sheet = subprocess.run(["pdftotext", "-layout", str(out / "mc" / label / "sheet.pdf"), "-"], check=True,
                               capture_output=True, text=True).stdout
        for question in variant["questions"]:
            for part in question["parts"]:
                assert f"Answer: {part['latex']}" in key
                for letter in part["letters"]:
                    assert f"⊠ ({letter})" in key and f"□ ({letter})" in sheet
                for option in part["choices"]:
                    assert f"({option['letter']})" in sheet
        assert "Answer:" not in sheet
        assert "correct letters worked out again from those numbers" in key
        csv_letters = [row["letters"] for row in rows if row["variant"] == label]
        assert csv_letters == [";".join(p["letters"]) for q in variant["questions"] for p in q["parts"]]
    assert np.all([p["redraws"] >= 0 for v in manifest["variants"] for q in v["questions"] for p in q["parts"]])


def test_a_variant_where_no_option_is_correct_is_drawn_again(tmp_path):
    path = write(tmp_path / "q.yaml", """
        id: tf
        title: TF
        parameters:
          a: {entries: [1, 3]}
        define:
          f: a
        parts:
          - id: c
            prompt: "True or false: $a > 2$."
            choice:
              shuffle: false
              options:
                - {text: "True", correct: "a > 2"}
                - {text: "False", correct: "a < 2"}
        stem: "S"
        """)
    question = load_question(path)
    for variant in range(10):
        solution = solve(sample(question, 1, variant))
        verify(solution)
        a = solution.instance.params["a"][()]
        assert a != 2 and solution.parts[0].choice.letters == (("A",) if a > 2 else ("B",))


@pytest.mark.parametrize("fmt", ["moodle", "qti21"])
def test_generator_export_writes_the_choice_parts_and_reads_them_back(tmp_path, fmt):
    bank = tmp_path / "bank"
    for name in ("mc-derivative-rule", "mc-linear-algebra"):
        (bank / "questions").mkdir(parents=True, exist_ok=True)
        shutil.copy(BANK / f"{name}.yaml", bank / "questions" / f"{name}.yaml")
    write(bank / "worksheets" / "mc.yaml", "id: mc\ntitle: MC\nquestions: [mc-derivative-rule, mc-linear-algebra]\n")
    run = subprocess.run(["python3", "-m", "generator", "export", fmt, "--bank", str(bank), "--seed", "42",
                          "--variants", "2", "--out", str(tmp_path / "out")], cwd=ROOT, capture_output=True,
                         check=False, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert run.returncode == 0, run.stderr
    assert "each read back equal to the key" in run.stdout and "left out" not in run.stdout + run.stderr


def test_formula_options_are_shown_as_formulas_and_checked_at_the_symbols_stand_ins(tmp_path):
    path = write(tmp_path / "q.yaml", """
        id: formulas
        title: Formulas
        symbols: [x]
        parameters:
          a: {entries: [2, 4]}
        define:
          df: sin(a * x) + a * x * cos(a * x)
        parts:
          - id: c
            of: df
            prompt: "Which is $f'(x)$ for $f(x) = x \\\\sin(<< a >> x)$?"
            choice:
              options:
                - {value: "a * cos(a * x)"}
                - {value: "sin(a * x) + x * cos(a * x)"}
        stem: "S"
        """)
    solution = solved(path)
    choice = solution.parts[0].choice
    answer = next(o for o in choice.options if o.source == "answer")
    assert sympy.Symbol("x", real=True) in answer.value[()].free_symbols
    part = render_question(make_environment(), solution).parts[0]
    assert r"\cos{\left(" in part.options
    wrong = "A" if answer.letter != "A" else "B"
    with pytest.raises(VerifyError, match=f"the key marks \\({wrong}\\) but"):
        verify(planted(solution, 0, wrong))

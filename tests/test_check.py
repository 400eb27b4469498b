"""`check`: which files it looks at, what it finds across many draws, and how it reports."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from authoring_helpers import QUESTION, make_bank, question, write
from conftest import BANK, needs_tex

from generator.cli import main
from generator.commands.check import CheckOptions, check


def run(*paths: Path, seeds: int = 20) -> tuple[tuple[str, ...], tuple[str, ...]]:
    report = check(CheckOptions(paths=paths, seeds=seeds, compile=False))
    return report.problems, report.notes


def test_the_real_bank_is_clean() -> None:
    report = check(CheckOptions(bank=BANK, seeds=5, compile=False))
    assert report.problems == ()
    assert report.questions >= 1 and report.worksheets >= 1


def test_clean_question_exits_0(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path / "q.yaml", QUESTION)
    assert main(["check", "--no-tex", "--seeds", "4", str(path)]) == 0
    assert capsys.readouterr().out == "ok: 1 question(s), 0 worksheet(s), 4 seed(s) each\n"


def test_default_is_the_whole_bank_questions_and_worksheets(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    make_bank(tmp_path / "question_bank", {"a": QUESTION, "b": QUESTION.replace("id: q", "id: b")})
    monkeypatch.chdir(tmp_path)
    report = check(CheckOptions(seeds=2, compile=False))
    assert (report.problems, report.questions, report.worksheets) == ((), 2, 1)


def test_folders_are_searched_and_files_classified(tmp_path: Path) -> None:
    write(tmp_path / "mine" / "one.yaml", QUESTION)
    write(tmp_path / "mine" / "deeper" / "sheet.yml", "id: s\ntitle: S\nquestions: [q, nope]\n")
    write(tmp_path / "mine" / ".hidden" / "broken.yaml", "id: [\n")
    report = check(CheckOptions(paths=(tmp_path / "mine",), seeds=2, compile=False))
    assert (report.questions, report.worksheets) == (1, 1)
    assert report.problems == (
        f"{tmp_path}/mine/deeper/sheet.yml:3:16: questions[1]: no question with id 'nope' in the bank",
    )


def test_missing_paths_are_problems(tmp_path: Path) -> None:
    problems, _ = run(tmp_path / "nope.yaml")
    assert problems == (f"{tmp_path}/nope.yaml: no such file or folder",)


def test_worksheet_ids_are_looked_up_in_its_bank(tmp_path: Path) -> None:
    bank = make_bank(tmp_path / "bank", {"q": QUESTION}, sheet=False)
    sheet = write(bank / "worksheets" / "s.yaml", "id: s\ntitle: S\nquestions: [q, qq]\n")
    problems, _ = run(sheet)  # only the worksheet is checked; its bank's questions are known
    assert problems == (f"{sheet}:3:16: questions[1]: no question with id 'qq' in the bank; did you mean 'q'?",)


def test_duplicate_ids(tmp_path: Path) -> None:
    write(tmp_path / "a.yaml", QUESTION)
    write(tmp_path / "b.yaml", QUESTION)
    problems, _ = run(tmp_path, seeds=1)
    assert problems == (f"{tmp_path}/b.yaml:1:5: id: 'q' is also the id of {tmp_path}/a.yaml",)


def test_every_problem_of_every_file_is_reported(tmp_path: Path) -> None:
    write(tmp_path / "a.yaml", question(**{"title: Q": "titel: Q"}))
    write(tmp_path / "b.yaml", question(**{"  u: W @ x": "  u: W @ y"}))
    problems, _ = run(tmp_path)
    assert problems == (
        f"{tmp_path}/a.yaml:1:1: (document): missing required key 'title'",
        f"{tmp_path}/a.yaml:2:1: titel: unknown key 'titel'; did you mean 'title'?",
        f"{tmp_path}/b.yaml:11:6: define.u: unknown name 'y' (column 5 of 'W @ y')",
    )


# --- findings across draws ----------------------------------------------------------------------


def test_constraints_that_cannot_be_met(tmp_path: Path) -> None:
    path = write(tmp_path / "q.yaml", question(**{"  - nonzero_rows(W)": "  - sum(x) > 100"}))
    assert run(path)[0] == (
        (
            f"{path}:9:5: constraints[0]: 'sum(x) > 100' could not be met in 1000 draws (question 'q', seed 0); "
            "widen the entry ranges or relax the constraint"
        ),
    )


def test_constraints_that_reject_most_draws(tmp_path: Path) -> None:
    path = write(tmp_path / "q.yaml", question(**{"  - nonzero_rows(W)": "  - W[0, 0] == 2 and W[0, 1] == 2 and W[1, 0] == 2"}))
    [problem] = run(path)[0]
    assert re.fullmatch(
        re.escape(f"{path}:9:5: constraints: reject most draws (on average ") + r"\d+" + re.escape(
            " draws per variant; a build gives up after 1000), so some seeds will fail; widen the entry ranges or relax "
            "the constraints"), problem), problem


REPEATS = """\
id: r
title: R
parameters:
  a: {entries: [1, 99]}
constraints:
  - a < 4
define:
  u: 2 * a * a
parts:
  - {id: du_da, of: u, wrt: a, prompt: "P"}
stem: "S << a >>"
"""


def test_variants_that_repeat_beyond_what_the_ranges_force(tmp_path: Path) -> None:
    path = write(tmp_path / "r.yaml", REPEATS)
    assert run(path)[0] == (
        (
            f"{path}:4:6: parameters: seeds 0 and 1 draw the same numbers (3 different draws in 20 seeds, although the "
            "ranges allow 99); the constraints leave few choices, so students would share variants: widen the ranges or "
            "relax the constraints"
        ),
    )


def test_repeats_forced_by_a_small_space_are_only_a_note(tmp_path: Path) -> None:
    path = write(tmp_path / "r.yaml", REPEATS.replace("  - a < 4", "  - a >= 0").replace("[1, 99]", "[1, 4]"))
    problems, notes = run(path)
    assert problems == ()
    assert notes == (f"{path}: question 'r' has only 4 different draws of its parameters, so variants repeat",)


def test_chance_repeats_in_a_large_space_are_not_reported(tmp_path: Path) -> None:
    # 40 values: 20 draws collide by chance more often than not (birthday problem); that is fine.
    path = write(tmp_path / "r.yaml", REPEATS.replace("  - a < 4", "  - a >= 0").replace("[1, 99]", "[1, 40]").replace("2 * a * a", "2 * a"))
    assert run(path) == ((), ())


def test_degenerate_answers(tmp_path: Path) -> None:
    path = write(tmp_path / "q.yaml", question(**{"  u: W @ x": "  u: W @ x\n  v: x * 0", "    of: u": "    of: v"}))
    assert run(path)[0] == (
        (
            f"{path}:14:5: parts[0] (du_dx): every entry of the answer is 0 [seeds 0, 1, 2, 3, 4, 5, 6, 7, ...: 20 of 20]; "
            "a constraint should rule this out"
        ),
    )


def test_numbers_too_large_for_hand_computation(tmp_path: Path) -> None:
    path = write(tmp_path / "q.yaml", question(**{"entries: [-2, 2]": "entries: [-2, 2], denominators: [1, 997]"}))
    problems = run(path)[0]
    assert [p.split(": a student would compute with ")[0] for p in problems] == [
        f"{path}:7:6: parameters.W", f"{path}:11:6: define.u", f"{path}:13:5: parts[0] (du_dx)",
    ]
    assert all(re.search(r"with -?\d+/997 \(entry at \[\d+(, \d+)*\] = -?\d+/997\) \[seeds? [\d, .:of]+\]; keep numerators "
                         r"and denominators within 1000: narrow the entry ranges or the dimensions$", p) for p in problems), problems


def test_closed_forms_count_their_inner_numbers(tmp_path: Path) -> None:
    path = write(tmp_path / "q.yaml", question(**{"  u: W @ x": "  u: exp(x / 1001)"}))
    problems = run(path, seeds=2)[0]
    assert [p.split(": a student")[0] for p in problems] == [f"{path}:11:6: define.u", f"{path}:13:5: parts[0] (du_dx)"]
    assert all(re.search(r": a student would compute with -?\d+/1001 \(entry at \[\d+(, \d+)?\] = .*exp\(", p) for p in problems)


def test_answers_failing_verification(tmp_path: Path) -> None:
    path = write(tmp_path / "q.yaml", question(**{"    wrt: x\n": "    wrt: x\n    vectorized: {expr: W.T, latex: \"$W^T$\"}\n"}))
    problem = run(path, seeds=3)[0][0]
    assert problem.startswith(f"{path}:16:24: question 'q', part 'du_dx', variant A (seed 0): the vectorized form "
                              "disagrees at index [0, 1]: exact ")


def test_template_errors_with_the_seeds_they_affect(tmp_path: Path) -> None:
    path = write(tmp_path / "q.yaml", question(**{"$\\dfrac": "<< nope >> $\\dfrac"}))
    assert run(path, seeds=3)[0] == (
        f"{path}:17: parts[0].prompt: undefined template variable: 'nope' is undefined [seeds 0, 1, 2: 3 of 3]",
    )


@needs_tex
def test_each_question_is_compiled_and_latex_errors_name_seed_and_line(tmp_path: Path) -> None:
    path = write(tmp_path / "q.yaml", question(**{"  Let $u = W x$ with": "  Let $u = W x$ \\oops with"}))
    report = check(CheckOptions(paths=(path,), seeds=3))
    [problem] = report.problems
    lines = problem.splitlines()
    assert re.fullmatch(re.escape(f"{path}:19: stem: LaTeX error in question 'q', stem (q.tex:") + r"\d+\):", lines[0])
    assert lines[-2] == "    template line: Let $u = W x$ \\oops with"
    assert lines[-1] == f"    (seed 0; see it with: python -m generator preview {path} --seed 0)"
    assert report.compiled == 0


@needs_tex
def test_clean_questions_compile(tmp_path: Path) -> None:
    path = write(tmp_path / "q.yaml", QUESTION)
    report = check(CheckOptions(paths=(path,), seeds=3))
    assert (report.problems, report.compiled) == ((), 1)

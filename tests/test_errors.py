"""Every user error is one message with its location: a table of bad inputs and their exact messages.

Spec problems are checked through `load_question` (all problems of a file, in order); errors
that only show up later (templates, constraints, TeX, output folder) through the CLI, which must
print them without a traceback and exit 1.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from authoring_helpers import QUESTION, make_bank, question, write
from conftest import needs_tex

from generator.cli import main
from generator.errors import SpecError
from generator.spec.expr import FUNCTIONS
from generator.spec.model import load_question

ALL_FUNCTIONS = ", ".join(sorted(FUNCTIONS))

PARTS = "parts:\n  - id: du_dx\n    of: u\n    wrt: x\n    prompt: |\n      $\\dfrac{\\partial u}{\\partial x}$\n"

# (case, spec text, expected problems with {file} for the spec's path)
SPEC_ERRORS = [
    ("yaml-unclosed-bracket", question(**{"  d: [2, 3]": "  d: [2, 3"}), [
        "{file}:5:11: YAML syntax: expected ',' or ']', but got ':' (while parsing a flow sequence at line 4, column 6)",
    ]),
    ("yaml-tab", question(**{"  d: [2, 3]": "\td: [2, 3]"}), [
        "{file}:4:1: YAML syntax: found character '\\t' that cannot start any token (while scanning for the next token)",
    ]),
    ("yaml-duplicate-key", question(**{"title: Q\n": "title: Q\ntitle: R\n"}), [
        "{file}:3:1: YAML syntax: duplicate key 'title'",
    ]),
    ("yaml-python-tag", question(**{"title: Q": "title: !!python/object/apply:os.system ['touch pwned']"}), [
        "{file}:2:8: YAML syntax: tag 'tag:yaml.org,2002:python/object/apply:os.system' is not allowed (only plain YAML data is)",
    ]),
    ("yaml-control-character", question(**{"title: Q": "title: Q\x07"}), [
        "{file}:2:9: YAML syntax: unacceptable character #x0007: special characters are not allowed",
    ]),
    ("empty-file", "", [
        "{file}:1:1: expected a mapping of question keys, got nothing (null)",
    ]),
    ("not-a-mapping", "- just\n- a list\n", [
        "{file}:1:1: expected a mapping of question keys, got a list of 2",
    ]),
    ("unknown-key", question(**{"title: Q": "titel: Q"}), [
        "{file}:1:1: (document): missing required key 'title'",
        "{file}:2:1: titel: unknown key 'titel'; did you mean 'title'?",
    ]),
    ("unknown-parameter-key", question(**{"entries: [-2, 2]": "entires: [-2, 2]"}), [
        "{file}:7:22: parameters.W.entires: unknown key 'entires'; did you mean 'entries'?",
    ]),
    ("unknown-part-key", question(**{"    wrt: x": "    wtr: x"}), [
        "{file}:15:5: parts[0].wtr: unknown key 'wtr'; did you mean 'wrt'?",
    ]),
    ("wrong-type-number", question(**{"title: Q\n": "title: Q\npoints: many\n"}), [
        "{file}:3:9: points: expected a number, got text 'many'",
    ]),
    ("wrong-type-list", question(**{"entries: [-2, 2]": "entries: 2"}), [
        "{file}:7:31: parameters.W.entries: expected a list, got number 2",
    ]),
    ("wrong-type-parts", question(**{PARTS: "parts: du_dx\n"}), [
        "{file}:12:8: parts: expected a list, got text 'du_dx'",
    ]),
    ("float-for-integer", question(**{"shape: [2, d]": "shape: [2.0, d]", "  d: [2, 3]": "  d: [2, 3.0]"}), [
        "{file}:4:10: dimensions.d[1]: expected an integer, got number 3.0",
        "{file}:7:15: parameters.W.shape[0]: expected text or an integer, got number 2.0",
    ]),
    ("key-with-line-break", question(**{"title: Q": "title: Q\n\"ti\\ntle\": R"}), [
        "{file}:3:1: ['ti\\ntle']: unknown key 'ti\\ntle'; did you mean 'title'?",
    ]),
    ("missing-key", question(**{"define:\n  u: W @ x\n": ""}), [
        "{file}:1:1: (document): missing required key 'define'",
    ]),
    ("range-reversed", question(**{"entries: [-2, 2]": "entries: [2, -2]"}), [
        "{file}:7:31: parameters.W.entries: expected [low, high] with low <= high, got [2, -2]",
    ]),
    ("unknown-dimension", question(**{"shape: [2, d]": "shape: [2, n]"}), [
        "{file}:7:18: parameters.W.shape[1]: unknown dimension 'n' (dimensions: d)",
    ]),
    ("used-before-defined", question(**{"  u: W @ x": "  u: W @ h\n  h: x + x"}), [
        (
            "{file}:11:6: define.u: 'h' is used before it is defined: define.h is at line 12; move it above this one "
            "(column 5 of 'W @ h')"
        ),
    ]),
    ("constraint-uses-define", question(**{"  - nonzero_rows(W)": "  - nonzero(u)"}), [
        (
            "{file}:9:5: constraints[0]: 'u' is used before it is defined: define.u is at line 11, and define is evaluated "
            "after derived and constraints, so move it to derived (column 9 of 'nonzero(u)')"
        ),
    ]),
    ("derived-uses-itself", question(**{"constraints:": "derived:\n  s: s + 1\nconstraints:"}), [
        "{file}:9:6: derived.s: 's' is used before it is defined: a definition cannot use itself (column 1 of 's + 1')",
    ]),
    ("unknown-function", question(**{"  u: W @ x": "  u: sigmod(W @ x)"}), [
        "{file}:11:6: define.u: unknown function 'sigmod'; did you mean 'sigmoid'? (functions: " + ALL_FUNCTIONS + ") (column 1 of 'sigmod(W @ x)')",
    ]),
    ("unknown-name", question(**{"  u: W @ x": "  u: W @ y"}), [
        "{file}:11:6: define.u: unknown name 'y' (column 5 of 'W @ y')",
    ]),
    ("part-of-and-wrt-unknown", question(**{"    of: u\n    wrt: x": "    of: v\n    wrt: X"}), [
        "{file}:14:9: parts[0].of: 'v' is not in define (defined: u)",
        "{file}:15:10: parts[0].wrt: 'X' is not a parameter (parameters: x, W)",
    ]),
    ("size-too-large", question(**{"  d: [2, 3]": "  d: [2, 30]"}), [
        "{file}:4:6: dimensions.d: expected sizes of at most 20, got [2, 30]",
    ]),
    ("too-many-values", question(**{"entries: [-2, 2]": "entries: [-2, 2], denominators: [100000]"}), [
        (
            "{file}:7:31: parameters.W.entries: expected at most 10000 values to draw from, got about 400001 "
            "(entries [-2, 2], denominators [100000])"
        ),
    ]),
    ("every-problem-at-once", question(**{"title: Q": "titel: Q", "entries: [-2, 2]": "entries: two"}), [
        "{file}:1:1: (document): missing required key 'title'",
        "{file}:2:1: titel: unknown key 'titel'; did you mean 'title'?",
        "{file}:7:31: parameters.W.entries: expected a list, got text 'two'",
    ]),
]


@pytest.mark.parametrize("text, expected", [case[1:] for case in SPEC_ERRORS], ids=[case[0] for case in SPEC_ERRORS])
def test_spec_error_messages(tmp_path: Path, text: str, expected: list[str]) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(SpecError) as info:
        load_question(path)
    assert info.value.problems == [line.format(file=path) for line in expected]


def test_check_prints_every_problem_one_per_line_and_exits_1(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path / "bad.yaml", question(**{"title: Q": "titel: Q", "entries: [-2, 2]": "entries: two"}))
    assert main(["check", "--no-tex", str(path)]) == 1
    out, err = capsys.readouterr()
    assert out.splitlines() == [
        f"{path}:1:1: (document): missing required key 'title'",
        f"{path}:2:1: titel: unknown key 'titel'; did you mean 'title'?",
        f"{path}:7:31: parameters.W.entries: expected a list, got text 'two'",
    ]
    assert "Traceback" not in err


# --- errors found after loading, through the CLI ----------------------------------------------


def _build(bank: Path, out: Path, capsys: pytest.CaptureFixture[str], *extra: str) -> tuple[int, str]:
    code = main(["build", "--bank", str(bank), "--out", str(out), *extra])
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err
    return code, captured.err


def test_undefined_template_variable_names_template_and_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bank = make_bank(tmp_path / "bank", {"q": question(**{"$\\dfrac": "<< y >> $\\dfrac"})})
    code, err = _build(bank, tmp_path / "out", capsys, "--no-pdf")
    assert code == 1
    assert err == f"error: {bank}/questions/q.yaml:17: parts[0].prompt: undefined template variable: 'y' is undefined\n"


TEMPLATE_ERRORS = [
    ("<% if %>", "template syntax: Expected an expression, got 'end of statement block'"),
    ("<< x | nosuchfilter >>", "template syntax: No filter named 'nosuchfilter'."),
    ("<< 1 / 0 >>", "ZeroDivisionError: division by zero"),
    ("<% macro m() %><< m() >><% endmacro %><< m() >>", "RecursionError: maximum recursion depth exceeded while calling a Python object"),
    ("<< range(10 ** 6) | list >>", "OverflowError: Range too big. The sandbox blocks ranges larger than MAX_RANGE (100000)."),
]


@pytest.mark.parametrize("template, message", TEMPLATE_ERRORS, ids=[t for t, _ in TEMPLATE_ERRORS])
def test_template_mistakes(tmp_path: Path, capsys: pytest.CaptureFixture[str], template: str, message: str) -> None:
    path = write(tmp_path / "q.yaml", question(**{"  Let $u = W x$ with": f"  Let $u = W x$ with {template}"}))
    assert main(["check", "--no-tex", "--seeds", "1", str(path)]) == 1
    assert capsys.readouterr().out == f"{path}:19: stem: {message} [seed 0]\n"


def test_constraints_that_cannot_be_met_name_the_constraint(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bank = make_bank(tmp_path / "bank", {"q": question(**{"  - nonzero_rows(W)": "  - sum(x) > 100"})})
    code, err = _build(bank, tmp_path / "out", capsys, "--no-pdf")
    assert code == 1
    assert err == (
        f"error: {bank}/questions/q.yaml:9:5: constraints[0]: 'sum(x) > 100' could not be met in 1000 draws "
        "(question 'q', seed 42); widen the entry ranges or relax the constraint\n"
    )


def test_answers_of_too_high_order(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bank = make_bank(tmp_path / "bank", {"q": question(**{"shape: [2, d]": "shape: [2, d, 2, 2]", "  u: W @ x": "  u: sum(W, 0)",
                                                        "  - nonzero_rows(W)": "  - nonzero(x)", "    wrt: x": "    wrt: W",
                                                        "  d: [2, 3]": "  d: [3, 3]"})})
    code, err = _build(bank, tmp_path / "out", capsys, "--no-pdf")
    assert code == 1
    assert err == (
        f"error: {bank}/questions/q.yaml:13:5: question 'q' part 'du_dx': the answer would have order 7 "
        "(shape [3, 2, 2, 2, 3, 2, 2]); a key can show at most order 4\n"
    )


def test_output_folder_that_cannot_be_written(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bank = make_bank(tmp_path / "bank", {"q": QUESTION})
    blocker = write(tmp_path / "file", "not a folder")
    code, err = _build(bank, blocker / "out", capsys, "--no-pdf")
    assert code == 1
    assert err == f"error: {blocker}/out: cannot write the output folder ({blocker} is a file, not a folder)\n"


def test_output_folder_not_written_by_us_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bank = make_bank(tmp_path / "bank", {"q": QUESTION})
    precious = write(tmp_path / "notes" / "thesis.tex", "years of work")
    code, err = _build(bank, precious.parent, capsys, "--no-pdf")
    assert code == 1
    assert err == (
        f"error: {precious.parent}: exists and was not written by this tool (no .generator-output or manifest.json); "
        "it would be replaced, so choose another output folder or empty it first\n"
    )
    assert precious.read_text() == "years of work"


def test_bad_worksheet_entry(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bank = make_bank(tmp_path / "bank", {"q": QUESTION}, sheet=False)
    write(bank / "worksheets" / "sheet.yaml", "id: sheet\ntitle: S\nquestions: [qq]\n")
    code, err = _build(bank, tmp_path / "out", capsys, "--no-pdf")
    assert code == 1
    assert err == f"error: {bank}/worksheets/sheet.yaml:3:13: questions[0]: no question with id 'qq' in the bank; did you mean 'q'?\n"


def test_no_tex_engine_build_writes_tex_and_says_how_to_install(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    bank = make_bank(tmp_path / "bank", {"q": QUESTION})
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    code = main(["build", "--bank", str(bank), "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert code == 0
    assert err == (
        "note: no TeX engine (pdflatex) on PATH; wrote .tex and manifest only. Install TeX with: apt-get install "
        "texlive-latex-base texlive-latex-recommended texlive-latex-extra texlive-fonts-recommended lmodern latexmk\n"
    )
    out = tmp_path / "out"
    assert sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file() and p.parent.name != ".generator-solved") == [
        ".generator-cache.json", ".generator-output", "answers.csv", "manifest.json", "sheet/A/key.tex", "sheet/A/sheet.tex", "sheet/A/solutions.tex",
    ]


def test_no_tex_engine_preview_is_an_error(tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    path = write(tmp_path / "q.yaml", QUESTION)
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    assert main(["preview", str(path), "--out", str(tmp_path / "out")]) == 1
    assert capsys.readouterr().err == (
        "error: no TeX engine (pdflatex) on PATH; preview needs it to make the PDF. Install TeX with: apt-get install "
        "texlive-latex-base texlive-latex-recommended texlive-latex-extra texlive-fonts-recommended lmodern latexmk\n"
    )
    assert not (tmp_path / "out").exists()


def test_no_tex_engine_check_still_checks_and_says_so(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write(tmp_path / "q.yaml", QUESTION)
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    assert main(["check", "--seeds", "3", str(path)]) == 0
    out, err = capsys.readouterr()
    assert out == "ok: 1 question(s), 0 worksheet(s), 3 seed(s) each\n"
    assert err.startswith("note: no TeX engine (pdflatex) on PATH, so questions were not compiled. Install TeX with: apt-get")


@needs_tex
def test_latex_error_names_question_and_template_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bank = make_bank(tmp_path / "bank", {"q": question(**{"  Let $u = W x$ with": "  Let $u = W x$ \\badmacro with"})})
    code, err = _build(bank, tmp_path / "out", capsys)
    assert code == 1
    lines = err.splitlines()
    assert re.fullmatch(
        rf"error: {re.escape(str(bank))}/questions/q\.yaml:19: stem: LaTeX error in question 'q', stem "
        r"\((sheet|key|solutions)\.tex:\d+\):", lines[0]
    ), lines[0]
    assert re.fullmatch(r"    \./(sheet|key|solutions)\.tex:\d+: Undefined control sequence\.", lines[1])
    assert lines[-1] == "    template line: Let $u = W x$ \\badmacro with"


@pytest.mark.parametrize("command", ["build", "preview q"])
def test_negative_seed_is_a_usage_error(command: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main([*command.split(), "--seed", "-1"])
    assert info.value.code == 2
    assert capsys.readouterr().err.endswith("error: argument --seed: expected a whole number >= 0, got -1\n")


def test_debug_shows_the_traceback(tmp_path: Path) -> None:
    path = write(tmp_path / "bad.yaml", "id: [\n")
    with pytest.raises(SpecError):
        main(["preview", "--debug", str(path)])

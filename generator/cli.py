"""Command line: parse arguments, call the pipeline, print results. No logic of its own."""

from __future__ import annotations

import argparse
import signal
import sys
from collections.abc import Sequence
from pathlib import Path

from generator import __version__
from generator.errors import GeneratorError

__all__ = ["main"]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m generator",
        description="Build worksheets and verified answer keys from a bank of YAML question specs.",
    )
    parser.add_argument("--version", action="version", version=f"generator {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks for errors (for bug reports)")
    # --debug is also accepted after the command (`build --debug`); SUPPRESS keeps the top-level value.
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    b = sub.add_parser(
        "build", parents=[common], help="build sheets, keys, solutions, manifest.json and answers.csv",
        description=(
            "Draw every question of every worksheet and exam for the seed, compute and verify the keys, and write "
            "for each variant (or each student of a roster) the student sheet, the answer key and the worked "
            "solutions (.tex and .pdf; --kinds picks fewer), one combined print file per kind, manifest.json and "
            "the grader's answers.csv into build/seed-<S>/ or --out. Layout: docs/output.md.")
    )
    b.add_argument("--seed", type=_seed, default=42, help="build seed (default 42)")
    b.add_argument("--out", type=Path, help="output folder (default build/seed-<S>)")
    b.add_argument("--bank", type=Path, default=Path("question_bank"), help=(
        "question bank folder (default question_bank)"))
    b.add_argument("--no-pdf", action="store_true", help="write .tex and manifest only, do not run TeX")
    b.add_argument("--variants", type=int, metavar="N", help=(
        "number of variants A, B, ..., Z, AA, ... (default 1; with --roster, one per student)"))
    b.add_argument("--roster", type=Path, metavar="FILE.csv", help=(
        "UTF-8 CSV with columns name and id: one personalized copy per student (with --variants N, "
        "student k gets variant k mod N)"))
    b.add_argument("--worksheet", action="append", default=[], metavar="ID", help=(
        "build only this worksheet (repeatable)"))
    b.add_argument("--exam", action="append", default=[], metavar="ID", help="build only this exam (repeatable)")
    b.add_argument("--one-sided", action="store_true", help=(
        "combined print files without the blank pages that make each copy start on a front page"))
    b.add_argument("--templates", type=Path, help="folder of document templates that override the project's")
    b.add_argument("--jobs", type=int, metavar="N", help=(
        "worker processes for SymPy and TeX runs at the same time (default: one per core); the output is the same"))
    b.add_argument("--kinds", type=_kinds, default=None, metavar="LIST", help=(
        "which documents each copy gets, comma-separated from sheet, key, solutions (default: all three); "
        "e.g. --kinds sheet,key skips the worked solutions"))
    b.add_argument("--paper", choices=("a4", "letter"), default="a4", help="paper size of every document (default a4)")
    b.add_argument("--font-size", type=_font_size, metavar="PT", help=(
        "font size in points: 10, 11, 12, 14, 17 or 20 (default 11; 14 with --large-print)"))
    b.add_argument("--large-print", action="store_true", help=(
        "large print for students who need it: 14 pt at least, wider line spacing, answer spaces to match"))
    b.add_argument("--scan-marks", action="store_true", help=(
        "'page x of y' and a QR code (document, copy, page) on every page of worksheet sheets too, for "
        "scanning; exam sheets always have them (a second TeX pass over the sheets)"))

    c = sub.add_parser(
        "check", parents=[common], help="find every problem in question and worksheet files",
        description=(
            "Validate question and worksheet files against the schema, draw N seeds of each question and "
            "compute, verify and render every draw; report constraints that cannot be met, answers that fail "
            "verification, variants that repeat or are all zero, numbers too large for hand computation, and "
            "LaTeX errors (each question is compiled on its own when TeX is installed). One problem per line, "
            "file:line:col first. Exit 0 when all is well, 1 otherwise.")
    )
    c.add_argument("paths", nargs="*", type=Path, metavar="PATH",
                   help="question or worksheet files, or folders of them (default: the whole bank)")
    c.add_argument("--seeds", type=int, default=20, metavar="N", help="seeds to draw per question (default 20)")
    c.add_argument("--bank", type=Path, default=Path("question_bank"), help=(
        "question bank folder (default question_bank)"))
    c.add_argument("--no-tex", action="store_true", help="do not compile the questions with TeX")
    c.add_argument("--templates", type=Path, help="folder of document templates that override the project's")

    p = sub.add_parser(
        "preview", parents=[common], help="one question's sheet and key as PDF and PNG pages",
        description=(
            "Draw one question for a seed (as variant A of a build with that seed), and write its student-sheet "
            "and answer-key text as a PDF and PNG pages (pdftoppm) into build/preview/<id>/ or --out; the paths "
            "are printed.")
    )
    p.add_argument("question", metavar="QUESTION_ID_OR_FILE", help="a question id from the bank, or a question file")
    p.add_argument("--seed", type=_seed, default=42, help="seed (default 42, as build)")
    p.add_argument("--out", type=Path, help="output folder (default build/preview/<id>)")
    p.add_argument("--bank", type=Path, default=Path("question_bank"), help=(
        "question bank folder (default question_bank)"))
    p.add_argument("--templates", type=Path, help="folder of document templates that override the project's")
    p.add_argument("--no-png", action="store_true", help="write the PDF only")

    x = sub.add_parser(
        "export", parents=[common], help="the draw as Moodle XML or a QTI 1.2 / 2.1 package",
        description=(
            "Draw as `build` does (same seed, variants and plan: the same numbers and key as the PDFs) and write "
            "one file per worksheet or exam into build/seed-<S>/export/<FORMAT>/ or --out: Moodle XML (moodle), a "
            "QTI 1.2 zip for Canvas (qti12) or a QTI 2.1 content package (qti21). Each file is read back and "
            "compared with the key. Formats and importing: docs/export.md."),
    )
    x.add_argument("format", choices=("moodle", "qti12", "qti21"), metavar="FORMAT", help="moodle, qti12 or qti21")
    x.add_argument("--seed", type=_seed, default=42, help="build seed (default 42)")
    x.add_argument("--out", type=Path, help="output folder (default build/seed-<S>/export/<FORMAT>)")
    x.add_argument("--bank", type=Path, default=Path("question_bank"), help=(
        "question bank folder (default question_bank)"))
    x.add_argument("--variants", type=int, metavar="N", help="number of variants (default 1), as for build")
    x.add_argument("--worksheet", action="append", default=[], metavar="ID", help=(
        "export only this worksheet (repeatable)"))
    x.add_argument("--exam", action="append", default=[], metavar="ID", help="export only this exam (repeatable)")
    x.add_argument("--templates", type=Path, help="folder of document templates that override the project's")
    x.add_argument("--jobs", type=int, metavar="N", help="worker processes for SymPy (default: one per core)")

    g = sub.add_parser(
        "grade", parents=[common], help="mark a response file against manifest.json",
        description=(
            "Read RESPONSES.csv (columns student, question, part, entry, response; optional document), parse each "
            "response with the project's safe number parser, grade it by the part's rule against manifest.json, "
            "and write a score CSV (one row per student, a column per question, the total) and a per-part summary "
            "CSV (how many got it, the most common wrong values, known misconceptions). Details: docs/grading.md."),
    )
    g.add_argument("responses", type=Path, metavar="RESPONSES.csv", help="one row per answer entry")
    g.add_argument("--manifest", type=Path, required=True, help="the build's manifest.json")
    g.add_argument("--document", metavar="ID", help=(
        "the worksheet or exam answered (needed when the build has several)"))
    g.add_argument("--scores", type=Path, help="score CSV to write (default RESPONSES-scores.csv)")
    g.add_argument("--summary", type=Path, help="per-part summary CSV to write (default RESPONSES-summary.csv)")
    g.add_argument("--force", action="store_true", help="overwrite existing output files")

    ls = sub.add_parser(
        "list", parents=[common], help="show the bank: questions, and the worksheets and exams using them",
        description=(
            "List every question of the bank (id, title, tags, points, parts) with the worksheets and exams "
            "that use it, then the worksheets and exams.")
    )
    ls.add_argument("--bank", type=Path, default=Path("question_bank"), help=(
        "question bank folder (default question_bank)"))
    return parser


def _seed(text: str) -> int:
    """argparse type: seeds are whole numbers >= 0 (numpy's SeedSequence takes no negatives)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 0, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 0, got {value}")
    return value


def _font_size(text: str) -> int:
    """argparse type: one of the font sizes the document classes offer."""
    from generator.render.templating import FONT_SIZES

    if not text.isdigit() or int(text) not in FONT_SIZES:
        raise argparse.ArgumentTypeError(f"expected one of {', '.join(map(str, FONT_SIZES))}, got {text!r}")
    return int(text)


def _kinds(text: str) -> tuple[str, ...]:
    """argparse type: `sheet,key` -> ("sheet", "key"), in the build's order, each once."""
    from generator.build import DOCUMENT_KINDS

    asked = [word.strip() for word in text.split(",") if word.strip()]
    unknown = [word for word in asked if word not in DOCUMENT_KINDS]
    if unknown or not asked:
        got = f"unknown kind {unknown[0]!r}" if unknown else "an empty list"
        raise argparse.ArgumentTypeError(f"{got}; choose from {', '.join(DOCUMENT_KINDS)} (comma-separated)")
    return tuple(kind for kind in DOCUMENT_KINDS if kind in asked)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of `python -m generator`; returns the exit code."""
    args = _parser().parse_args(argv)
    commands = {
        "build": _build, "check": _check, "preview": _preview, "list": _list, "export": _export, "grade": _grade,
    }
    # SIGTERM (e.g. `kill`, a CI timeout) unwinds like Ctrl-C, so temporary folders are removed.
    previous = signal.signal(signal.SIGTERM, _terminate) if _main_thread() else None
    try:
        _check_paths(args)
        return commands[args.command](args)
    except GeneratorError as e:
        if args.debug:
            raise
        print(f"error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted; previous output left as it was", file=sys.stderr)
        return 130
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


# Path options and what each must be, checked before any work starts (a --templates folder
# that does not exist would otherwise fall back to the project's templates without a word).
_PATH_OPTIONS = {"bank": "folder", "templates": "folder", "roster": "file", "out": "folder or nothing"}


def _check_paths(args: argparse.Namespace) -> None:
    problems = []
    for name, kind in _PATH_OPTIONS.items():
        path = getattr(args, name, None)
        if path is None or (name == "bank" and path == Path("question_bank")):
            continue  # (the default bank is looked for only by the commands that need it)
        option = f"--{name}"
        if kind == "folder or nothing":
            if path.exists() and not path.is_dir():
                problems.append(f"{option} {path}: not a folder")
        elif not path.exists():
            problems.append(f"{option} {path}: no such {kind}")
        elif kind == "folder" and not path.is_dir():
            problems.append(f"{option} {path}: not a folder")
        elif kind == "file" and not path.is_file():
            problems.append(f"{option} {path}: not a regular file")
    if problems:
        raise GeneratorError("\n".join(problems))


def _main_thread() -> bool:
    import threading

    return threading.current_thread() is threading.main_thread()


def _terminate(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def _build(args: argparse.Namespace) -> int:
    from generator.build import BuildOptions, build

    if args.variants is not None and args.variants < 1:
        raise GeneratorError(f"--variants: expected a number >= 1, got {args.variants}")
    if args.jobs is not None and args.jobs < 1:
        raise GeneratorError(f"--jobs: expected a number >= 1, got {args.jobs}")
    result = build(BuildOptions(
        seed=args.seed, bank=args.bank, out=args.out, pdf=not args.no_pdf, variants=args.variants,
        worksheets=tuple(args.worksheet), exams=tuple(args.exam), roster=args.roster,
        two_sided=not args.one_sided, templates=args.templates, jobs=args.jobs,
        paper=args.paper, font_size=args.font_size, large_print=args.large_print, scan_marks=args.scan_marks,
        **({"kinds": args.kinds} if args.kinds else {}),
    ))
    for note in result.notes:
        print(f"note: {note}", file=sys.stderr)
    if result.reused:
        print(f"up to date: {len(result.files)} files in {result.destination}/ "
              "(same inputs as its last build; nothing rebuilt)")
        return 0
    print(f"wrote {len(result.files)} files to {result.destination}/")
    folders: dict[str, list[str]] = {}
    for name in result.files:
        head, _, rest = name.partition("/")
        folders.setdefault(head if rest else "", []).append(rest or head)
    for head, names in sorted(folders.items()):
        if not head or len(names) <= 12:
            for name in names:
                print(f"  {head + '/' if head else ''}{name}")
            continue
        copies = sorted({n.split("/")[0] for n in names if "/" in n})
        combined = [n for n in names if "/" not in n]
        print(f"  {head}/: {len(copies)} copies ({copies[0]} ... {copies[-1]}), {len(names) - len(combined)} files"
              + (f"; {', '.join(combined)}" if combined else ""))
    if result.cached:
        print(f"TeX: {result.compiled} document kind(s) compiled, {result.cached} unchanged and taken from the "
              "last build")
    return 0


def _list(args: argparse.Namespace) -> int:
    from generator.commands.listing import list_bank
    from generator.spec.model import load_bank

    bank = load_bank(args.bank)
    for warning in bank.warnings:
        print(f"note: {warning}", file=sys.stderr)
    print(list_bank(bank), end="")
    return 0


def _check(args: argparse.Namespace) -> int:
    from generator.commands.check import CheckOptions, check, summary

    report = check(CheckOptions(
        paths=tuple(args.paths), bank=args.bank, seeds=args.seeds, compile=not args.no_tex, templates=args.templates,
    ))
    for problem in report.problems:
        print(problem)
    for note in report.notes:
        print(f"note: {note}", file=sys.stderr)
    print(summary(report, args.seeds), file=sys.stderr if report.problems else sys.stdout)
    return 0 if report.ok else 1


def _preview(args: argparse.Namespace) -> int:
    from generator.commands.preview import PreviewOptions, preview

    result = preview(PreviewOptions(
        target=args.question, seed=args.seed, bank=args.bank, out=args.out, templates=args.templates,
        png=not args.no_png,
    ))
    for note in result.notes:
        print(f"note: {note}", file=sys.stderr)
    print(f"question '{result.question}', seed {result.seed}, variant {result.variant}: sheet, then key")
    for path in (result.pdf, *result.pngs):
        print(f"  {path}")
    return 0


def _export(args: argparse.Namespace) -> int:
    from generator.export.exporter import ExportOptions, export

    if args.variants is not None and args.variants < 1:
        raise GeneratorError(f"--variants: expected a number >= 1, got {args.variants}")
    result = export(ExportOptions(
        format=args.format, seed=args.seed, bank=args.bank, out=args.out, variants=args.variants,
        worksheets=tuple(args.worksheet), exams=tuple(args.exam), templates=args.templates, jobs=args.jobs,
    ))
    for note in result.notes:
        print(f"note: {note}", file=sys.stderr)
    print(f"wrote {len(result.files)} {args.format} file(s), each read back equal to the key:")
    for path in result.files:
        print(f"  {path}")
    return 0


def _grade(args: argparse.Namespace) -> int:
    from generator.grade.grading import GradeOptions, grade

    result = grade(GradeOptions(
        responses=args.responses, manifest=args.manifest, document=args.document, scores=args.scores,
        summary=args.summary, force=args.force,
    ))
    for note in result.notes:
        print(f"note: {note}", file=sys.stderr)
    print(f"graded {result.rows} response rows of {result.students} student(s) in {result.document}: "
          f"mean {result.mean:g} of {result.maximum:g} points")
    print(f"  {result.scores}")
    print(f"  {result.summary}")
    return 0

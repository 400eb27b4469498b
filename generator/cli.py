"""Command line: parse arguments, call the pipeline, print results. No logic of its own."""

from __future__ import annotations

import argparse
import signal
import sys
from pathlib import Path
from typing import Sequence

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

    b = sub.add_parser("build", parents=[common], help="build sheets, keys and manifest.json", description=(
        "Draw every question of every worksheet for the seed, compute and verify the keys, and write "
        "student sheets, answer keys (.tex and .pdf) and manifest.json into build/seed-<S>/ or --out."))
    b.add_argument("--seed", type=_seed, default=42, help="build seed (default 42)")
    b.add_argument("--out", type=Path, help="output folder (default build/seed-<S>)")
    b.add_argument("--bank", type=Path, default=Path("question_bank"), help="question bank folder (default question_bank)")
    b.add_argument("--no-pdf", action="store_true", help="write .tex and manifest only, do not run TeX")
    b.add_argument("--variants", type=int, default=1, metavar="N", help="number of variants A, B, ... (default 1)")
    b.add_argument("--worksheet", action="append", default=[], metavar="ID", help="build only this worksheet (repeatable)")
    b.add_argument("--templates", type=Path, help="folder of document templates that override the project's")

    c = sub.add_parser("check", parents=[common], help="find every problem in question and worksheet files", description=(
        "Validate question and worksheet files against the schema, draw N seeds of each question and "
        "compute, verify and render every draw; report constraints that cannot be met, answers that fail "
        "verification, variants that repeat or are all zero, numbers too large for hand computation, and "
        "LaTeX errors (each question is compiled on its own when TeX is installed). One problem per line, "
        "file:line:col first. Exit 0 when all is well, 1 otherwise."))
    c.add_argument("paths", nargs="*", type=Path, metavar="PATH",
                   help="question or worksheet files, or folders of them (default: the whole bank)")
    c.add_argument("--seeds", type=int, default=20, metavar="N", help="seeds to draw per question (default 20)")
    c.add_argument("--bank", type=Path, default=Path("question_bank"), help="question bank folder (default question_bank)")
    c.add_argument("--no-tex", action="store_true", help="do not compile the questions with TeX")
    c.add_argument("--templates", type=Path, help="folder of document templates that override the project's")

    p = sub.add_parser("preview", parents=[common], help="one question's sheet and key as PDF and PNG pages", description=(
        "Draw one question for a seed (as variant A of a build with that seed), and write its student-sheet "
        "and answer-key text as a PDF and PNG pages (pdftoppm) into build/preview/<id>/ or --out; the paths "
        "are printed."))
    p.add_argument("question", metavar="QUESTION_ID_OR_FILE", help="a question id from the bank, or a question file")
    p.add_argument("--seed", type=_seed, default=42, help="seed (default 42, as build)")
    p.add_argument("--out", type=Path, help="output folder (default build/preview/<id>)")
    p.add_argument("--bank", type=Path, default=Path("question_bank"), help="question bank folder (default question_bank)")
    p.add_argument("--templates", type=Path, help="folder of document templates that override the project's")
    p.add_argument("--no-png", action="store_true", help="write the PDF only")
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


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of `python -m generator`; returns the exit code."""
    args = _parser().parse_args(argv)
    commands = {"build": _build, "check": _check, "preview": _preview}
    # SIGTERM (e.g. `kill`, a CI timeout) unwinds like Ctrl-C, so temporary folders are removed.
    previous = signal.signal(signal.SIGTERM, _terminate) if _main_thread() else None
    try:
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


def _main_thread() -> bool:
    import threading

    return threading.current_thread() is threading.main_thread()


def _terminate(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def _build(args: argparse.Namespace) -> int:
    from generator.build import BuildOptions, build

    if args.variants < 1:
        raise GeneratorError(f"--variants: expected a number >= 1, got {args.variants}")
    result = build(BuildOptions(
        seed=args.seed, bank=args.bank, out=args.out, pdf=not args.no_pdf, variants=args.variants,
        worksheets=tuple(args.worksheet), templates=args.templates,
    ))
    for note in result.notes:
        print(f"note: {note}", file=sys.stderr)
    print(f"wrote {len(result.files)} files to {result.destination}/")
    for name in result.files:
        print(f"  {name}")
    return 0


def _check(args: argparse.Namespace) -> int:
    from generator.check import CheckOptions, check, summary

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
    from generator.preview import PreviewOptions, preview

    result = preview(PreviewOptions(
        target=args.question, seed=args.seed, bank=args.bank, out=args.out, templates=args.templates, png=not args.no_png,
    ))
    for note in result.notes:
        print(f"note: {note}", file=sys.stderr)
    print(f"question '{result.question}', seed {result.seed}, variant {result.variant}: sheet, then key")
    for path in (result.pdf, *result.pngs):
        print(f"  {path}")
    return 0

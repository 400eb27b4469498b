"""Command line: parse arguments, call the pipeline, print results. No logic of its own."""

from __future__ import annotations

import argparse
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
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    b = sub.add_parser("build", help="build sheets, keys, solutions, manifest.json and answers.csv", description=(
        "Draw every question of every worksheet and exam for the seed, compute and verify the keys, and write "
        "for each variant (or each student of a roster) the student sheet, the answer key and the worked "
        "solutions (.tex and .pdf), one combined print file per kind, manifest.json and the grader's "
        "answers.csv into build/seed-<S>/ or --out. Layout: docs/output.md."))
    b.add_argument("--seed", type=int, default=42, help="build seed (default 42)")
    b.add_argument("--out", type=Path, help="output folder (default build/seed-<S>)")
    b.add_argument("--bank", type=Path, default=Path("question_bank"), help="question bank folder (default question_bank)")
    b.add_argument("--no-pdf", action="store_true", help="write .tex and manifest only, do not run TeX")
    b.add_argument("--variants", type=int, metavar="N", help=(
        "number of variants A, B, ..., Z, AA, ... (default 1; with --roster, one per student)"))
    b.add_argument("--roster", type=Path, metavar="FILE.csv", help=(
        "UTF-8 CSV with columns name and id: one personalized copy per student (with --variants N, "
        "student k gets variant k mod N)"))
    b.add_argument("--worksheet", action="append", default=[], metavar="ID", help="build only this worksheet (repeatable)")
    b.add_argument("--exam", action="append", default=[], metavar="ID", help="build only this exam (repeatable)")
    b.add_argument("--one-sided", action="store_true", help=(
        "combined print files without the blank pages that make each copy start on a front page"))
    b.add_argument("--templates", type=Path, help="folder of document templates that override the project's")

    c = sub.add_parser("check", help="validate question files and verify their answers", description=(
        "Parse and validate question files, draw several seeds of each, compute and verify every answer "
        "and render every template. No PDF is made. Exit 0 when all is well, 1 otherwise."))
    c.add_argument("files", nargs="+", type=Path, metavar="FILE", help="question YAML files")
    c.add_argument("--seeds", type=int, default=5, metavar="N", help="seeds to draw per question (default 5)")

    ls = sub.add_parser("list", help="show the bank: questions, and the worksheets and exams using them", description=(
        "List every question of the bank (id, title, tags, points, parts) with the worksheets and exams "
        "that use it, then the worksheets and exams."))
    ls.add_argument("--bank", type=Path, default=Path("question_bank"), help="question bank folder (default question_bank)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of `python -m generator`; returns the exit code."""
    args = _parser().parse_args(argv)
    try:
        if args.command == "build":
            return _build(args)
        if args.command == "list":
            return _list(args)
        return _check(args)
    except GeneratorError as e:
        if args.debug:
            raise
        print(f"error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted; previous output left as it was", file=sys.stderr)
        return 130


def _build(args: argparse.Namespace) -> int:
    from generator.build import BuildOptions, build

    if args.seed < 0:
        raise GeneratorError(f"--seed: expected a number >= 0, got {args.seed}")
    if args.variants is not None and args.variants < 1:
        raise GeneratorError(f"--variants: expected a number >= 1, got {args.variants}")
    result = build(BuildOptions(
        seed=args.seed, bank=args.bank, out=args.out, pdf=not args.no_pdf, variants=args.variants,
        worksheets=tuple(args.worksheet), exams=tuple(args.exam), roster=args.roster,
        two_sided=not args.one_sided, templates=args.templates,
    ))
    for note in result.notes:
        print(f"note: {note}", file=sys.stderr)
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
    return 0


def _list(args: argparse.Namespace) -> int:
    from generator.listing import list_bank
    from generator.spec import load_bank

    print(list_bank(load_bank(args.bank)), end="")
    return 0


def _check(args: argparse.Namespace) -> int:
    from generator.check import check_files

    problems = check_files(args.files, seeds=args.seeds)
    for problem in problems:
        print(problem)
    if problems:
        print(f"{len(problems)} problem(s)", file=sys.stderr)
        return 1
    print(f"ok: {len(args.files)} file(s), {args.seeds} seed(s) each")
    return 0

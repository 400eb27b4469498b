"""`python -m generator export FORMAT`: the build's draw as Moodle XML or a QTI 1.2 / 2.1 package.

The draw is the build's: the same bank, seed, variants and plan (`generator.spec.assemble`), the
same sampling, solving and verification (`generator.questions`, which takes what a build in the
same output folder kept, when it can), so a variant online has the numbers and key of its paper
copy. One file per worksheet or exam goes to `<build>/export/<format>/`. Every file is read back
and each answer compared with the key before the command reports success.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from generator.errors import ExportError
from generator.export import moodle, qti12, qti21
from generator.export.common import Answers, ExportDocument, ExportPart, ExportSlot, ExportVariant, html_of, make_part

if TYPE_CHECKING:
    from generator.questions import Solved
    from generator.spec.assemble import Plan

__all__ = ["FORMATS", "ExportOptions", "ExportResult", "check_export", "export"]


@dataclass(frozen=True, slots=True)
class _Format:
    suffix: str
    write: Callable[[ExportDocument, list[str]], bytes]
    read: Callable[[bytes], Answers]
    right: Callable[[ExportPart], tuple[str, ...]]  # a choice part's right options as `read` gives them


FORMATS: dict[str, _Format] = {
    "moodle": _Format(".xml", moodle.write_moodle, moodle.read_moodle,
                      lambda part: tuple(html_of(c.text) for c in part.choices if c.correct)),
    "qti12": _Format("-qti12.zip", qti12.write_qti12, qti12.read_qti12,
                     lambda part: tuple(c.letter for c in part.choices if c.correct)),
    "qti21": _Format("-qti21.zip", qti21.write_qti21, qti21.read_qti21,
                     lambda part: tuple(f"C{k}" for k, c in enumerate(part.choices) if c.correct)),
}


@dataclass(frozen=True, slots=True)
class ExportOptions:
    """What `python -m generator export` was asked to do."""

    format: str
    seed: int = 42
    bank: Path = Path("question_bank")
    out: Path | None = None
    variants: int | None = None
    worksheets: tuple[str, ...] = ()
    exams: tuple[str, ...] = ()
    templates: Path | None = None
    jobs: int | None = None

    @property
    def build_folder(self) -> Path:
        return Path("build") / f"seed-{self.seed}"

    @property
    def destination(self) -> Path:
        return self.out if self.out is not None else self.build_folder / "export" / self.format


@dataclass(frozen=True, slots=True)
class ExportResult:
    """The files written (paths), and the parts left out or changed, each named."""

    files: tuple[Path, ...]
    notes: tuple[str, ...]


def export(options: ExportOptions) -> ExportResult:
    """Draw as the build does, write one file per document, read each back and compare it with the key."""
    if options.format not in FORMATS:
        raise ExportError(f"unknown export format {options.format!r}; choose from {', '.join(FORMATS)}")
    from generator.outputs.cache import environment, load_previous
    from generator.progress import progress
    from generator.questions import solve_questions
    from generator.render.templating import PROJECT_TEMPLATES
    from generator.spec.assemble import assemble
    from generator.spec.model import load_bank

    bank = load_bank(options.bank)
    plan = assemble(bank, seed=options.seed, variants=options.variants, worksheets=options.worksheets,
                    exams=options.exams)
    code = environment((PROJECT_TEMPLATES, options.templates))
    with progress() as shown:
        solved = solve_questions(bank, plan, seed=options.seed, templates=options.templates, code=code,
                                 previous=load_previous(options.build_folder), workers=_workers(options.jobs),
                                 shown=shown)
    fmt = FORMATS[options.format]
    notes: list[str] = []
    files = []
    options.destination.mkdir(parents=True, exist_ok=True)
    for document in export_documents(plan, solved.results, options.seed):
        data = fmt.write(document, notes)
        check_export(document, fmt.read(data), options.format)
        path = options.destination / f"{document.id}{fmt.suffix}"
        path.write_bytes(data)
        files.append(path)
    return ExportResult(tuple(files), tuple(dict.fromkeys(notes)))


def export_documents(plan: Plan, results: dict[tuple[int, str], Solved], seed: int) -> list[ExportDocument]:
    """Every document of the plan as export data: per slot, one `ExportVariant` per variant."""
    labels = sorted({(s.variant_index, s.variant) for s in plan.seats})
    documents = []
    for document in plan.documents:
        numbers = [slot.number for slot in document.slots[labels[0][0]]]
        slots = []
        for position, number in enumerate(numbers):
            variants = []
            for v, label in labels:
                slot = document.slots[v][position]
                variants.append(_variant(results[(v, slot.question)], label, slot.points))
            slots.append(ExportSlot(number, tuple(variants)))
        documents.append(ExportDocument(document.id, document.spec.title, seed, tuple(slots)))
    return documents


def _variant(solved: Solved, label: str, points: float | None) -> ExportVariant:
    rendered = solved.rendered
    entries = solved.manifest["parts"]
    total = points if points is not None else sum(p.points or 0 for p in rendered.parts) or len(rendered.parts)
    weights = [p.points if p.points is not None else 1 for p in rendered.parts]
    scale = total / sum(weights)  # the slot's points shared as the parts' points are (an exam may set other points)
    parts = tuple(make_part(entry, part.prompt, w * scale) for entry, part, w in zip(entries, rendered.parts, weights,
                                                                                      strict=True))
    pieces = [rendered.solution, *(f"({p.id}) {p.answer}" for p in rendered.parts)]
    return ExportVariant(label, rendered.id, rendered.title, float(total), rendered.stem,
                         "\n\n".join(piece for piece in pieces if piece.strip()), parts)


def check_export(document: ExportDocument, found: Answers, fmt: str) -> None:
    """Every blank of the document read back from the file, equal to the key, with its tolerance,
    and every choice part's right options (QTI 1.2: the sheet's letters, as manifest.json's `letters`).

    Raises:
        ExportError: a blank or choice part missing, extra, or with another value, tolerance or right options.
    """
    expected = {}
    choices = {}
    for slot in document.slots:
        for variant in slot.variants:
            for part in variant.parts:
                if part.kind == "choice":
                    choices[(slot.number, variant.variant, part.id)] = FORMATS[fmt].right(part)
                for target in part.targets:
                    expected[(slot.number, variant.variant, part.id, target.index)] = (target.value, target.tolerance)
    problems = []
    for key, (value, tolerance) in expected.items():
        if key not in found.numeric:  # (every format writes every numeric part)
            problems.append(f"{key}: missing")
            continue
        got_value, got_tolerance = found.numeric[key]
        if got_value != value or type(got_value) is not type(value) or not math.isclose(
                got_tolerance, tolerance, rel_tol=1e-9, abs_tol=1e-15 * max(1.0, abs(value))):
            problems.append(f"{key}: reads back as {got_value} +- {got_tolerance}, key {value} +- {tolerance}")
    problems += [f"{key}: not in the key" for key in found.numeric if key not in expected]
    for part_key, right in choices.items():
        if found.choices.get(part_key) != right:
            problems.append(f"{part_key}: right options read back as {found.choices.get(part_key)}, key {right}")
    problems += [f"{part_key}: not a choice part of the key" for part_key in found.choices if part_key not in choices]
    if problems:
        raise ExportError(
            f"{document.id}: the {fmt} export does not read back as the key:\n" + "\n".join(problems[:20]))


def _workers(jobs: int | None) -> int:
    """As the build: `--jobs`, else one process per core."""
    import os

    if jobs is not None:
        return max(1, jobs)
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)

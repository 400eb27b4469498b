"""The pipeline, top to bottom: load -> assemble -> sample -> solve -> verify -> render -> write -> compile -> combine.

Each stage lives in the module of the same name; this file only wires them together. All the
documents of a copy (sheet, key, solutions) come from one draw and one rendering of each
question: they differ only in which parts of the rendered questions the document template shows.
Rendering finishes before compiling starts, so the compile stage sees the whole list of `.tex`
files at once. Output layout: `generator.layout` and docs/output.md.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping

from jinja2.sandbox import SandboxedEnvironment

from generator.assemble import Plan, Seat, assemble
from generator.batch import Copy, Job, compile_jobs
from generator.compile import INSTALL_HINT, tex_available
from generator.keytable import make_key_table
from generator.layout import KEY_TABLE, MANIFEST, combined_file, copy_file
from generator.manifest import class_set_entries, dump_manifest, make_manifest
from generator.output import staging
from generator.render import DOCUMENT_KINDS, RenderedQuestion, make_environment, render_document, render_question, with_points
from generator.roster import load_roster
from generator.sampling import Instance, sample, sample_variants
from generator.solve import Solution, solve
from generator.spec import Bank, load_bank
from generator.verify import verify

__all__ = ["BuildOptions", "BuildResult", "build", "DOCUMENT_KINDS"]


@dataclass(frozen=True, slots=True)
class BuildOptions:
    """What `python -m generator build` was asked to do."""

    seed: int = 42
    bank: Path = Path("question_bank")
    out: Path | None = None
    pdf: bool = True
    variants: int | None = None
    worksheets: tuple[str, ...] = ()
    exams: tuple[str, ...] = ()
    roster: Path | None = None
    two_sided: bool = True
    templates: Path | None = None
    jobs: int | None = None  # TeX runs at the same time; None: one per core

    @property
    def destination(self) -> Path:
        return self.out if self.out is not None else Path("build") / f"seed-{self.seed}"


@dataclass(frozen=True, slots=True)
class BuildResult:
    """What a build wrote, and anything the user should know."""

    destination: Path
    files: tuple[str, ...]
    notes: tuple[str, ...] = field(default_factory=tuple)
    plan: Plan | None = None


def solve_all(bank: Bank, question_ids: list[str], seed: int, variant_index: int) -> list[Solution]:
    """Sample, solve and verify the given questions for one variant (no distinctness check)."""
    solutions = []
    for qid in question_ids:
        solution = solve(sample(bank.questions[qid], seed, variant_index))
        verify(solution)
        solutions.append(solution)
    return solutions


def build(options: BuildOptions) -> BuildResult:
    """Run the whole pipeline; on any error the previous output is left untouched."""
    bank = load_bank(options.bank)
    roster = load_roster(options.roster) if options.roster is not None else None
    plan = assemble(bank, seed=options.seed, variants=options.variants, roster=roster,
                    worksheets=options.worksheets, exams=options.exams)
    instances, sampling_notes = _sample_all(bank, plan, options.seed)
    solutions = {key: solve(instance) for key, instance in instances.items()}
    for solution in solutions.values():
        verify(solution)
    env = make_environment(options.templates)
    rendered = {key: render_question(env, solution) for key, solution in solutions.items()}
    documents = _render_documents(env, plan, rendered, options.seed)

    notes = [*plan.notes, *sampling_notes]
    variants = [(variant_label, [solutions[(v, q)] for q in plan.questions_of(v)])
                for v, variant_label in sorted({(s.variant_index, s.variant) for s in plan.seats})]
    manifest = make_manifest(options.seed, variants, class_set_entries(plan, DOCUMENT_KINDS, roster, notes))
    key_table = make_key_table(plan, solutions)

    compile_pdfs = options.pdf and tex_available()
    if options.pdf and not compile_pdfs:
        notes.append(INSTALL_HINT)
    files = [*documents, MANIFEST, KEY_TABLE]
    with staging(options.destination) as temp:
        _write(temp, {**documents, MANIFEST: dump_manifest(manifest), KEY_TABLE: key_table})
        if compile_pdfs:
            compiled = compile_jobs(temp, _jobs(plan, documents), two_sided=options.two_sided, workers=_workers(options))
            files += [name for job in compiled for name in job.files]
            notes += [note for job in compiled for note in job.notes]
    return BuildResult(options.destination, tuple(sorted(files)), tuple(notes), plan)


def _sample_all(bank: Bank, plan: Plan, seed: int) -> tuple[dict[tuple[int, str], Instance], list[str]]:
    """Draw every question for every variant that uses it, keeping variants distinct."""
    users: dict[str, list[int]] = {}
    for v in plan.variant_indices:
        for qid in plan.questions_of(v):
            users.setdefault(qid, []).append(v)
    instances: dict[tuple[int, str], Instance] = {}
    notes = []
    for qid, variant_indices in users.items():
        drawn, note = sample_variants(bank.questions[qid], seed, variant_indices)
        instances.update({(v, qid): instance for v, instance in drawn.items()})
        if note:
            notes.append(note)
    return instances, notes


def _render_documents(
    env: SandboxedEnvironment, plan: Plan, rendered: Mapping[tuple[int, str], RenderedQuestion], seed: int
) -> dict[str, str]:
    """Every kind of every document for every copy, as `.tex` text by output path."""
    documents: dict[str, str] = {}
    for document in plan.documents:
        template_prefix = "exam-" if document.type == "exam" else ""
        for seat in plan.seats:
            questions = [with_points(rendered[(seat.variant_index, s.question)], s.points)
                         for s in document.slots[seat.variant_index]]
            for kind in DOCUMENT_KINDS:
                documents[copy_file(document.id, seat.folder, kind, ".tex")] = render_document(
                    env, kind, document.spec, questions, seed=seed, variant=seat.variant,
                    student=seat.student, template=f"{template_prefix}{kind}.tex.j2",
                )
    return documents


def _write(folder: Path, texts: Mapping[str, str]) -> None:
    for name, text in texts.items():
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")


def _jobs(plan: Plan, documents: Mapping[str, str]) -> list[Job]:
    """One TeX job per (document, kind): every copy, in seat order, for one combined print file."""
    jobs = []
    for document in plan.documents:
        for kind in DOCUMENT_KINDS:
            copies = []
            for seat in plan.seats:
                name = copy_file(document.id, seat.folder, kind, ".tex")
                copies.append(Copy(name, documents[name], _bookmark(seat)))
            jobs.append(Job(combined_file(document.id, kind), tuple(copies)))
    return jobs


def _workers(options: BuildOptions) -> int:
    if options.jobs is not None:
        return max(1, options.jobs)
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def _bookmark(seat: Seat) -> str:
    if seat.student is None:
        return f"Variant {seat.variant}"
    return f"{seat.student.name} ({seat.student.id}), variant {seat.variant}"

"""The pipeline, top to bottom: load -> assemble -> sample -> solve -> verify -> render -> write -> compile.

Each stage lives in the module of the same name; this file only wires them together. All the
documents of a copy (sheet, key, solutions) come from one draw and one rendering of each
question: they differ only in which parts of the rendered questions the document template shows.
Solving (in worker processes: `generator.questions`) finishes before a document is rendered, so
the compile stage sees every copy of a document at once and compiles them in one TeX run
(`generator.typeset.batch`), which also makes the combined print files; each kind of each
document goes to TeX as soon as its copies are rendered, and the files, manifest, key table and
cache are written while TeX works. Output layout: `generator.outputs.layout` and docs/output.md.

Before any of that, the build asks the cache (`generator.outputs.cache`) whether the output folder
already holds what these inputs make; if so it is done. The stage modules are imported only after
that check: SymPy, Jinja and pypdf take longer to import than a build with unchanged inputs takes.
"""

from __future__ import annotations

import gc
import hashlib
import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from generator.outputs.cache import (
    environment,
    fingerprint,
    job_salt,
    load_previous,
    store_solved,
    tex_identity,
    write_index,
)
from generator.outputs.layout import KEY_TABLE, MANIFEST, combined_file, copy_file
from generator.progress import Progress, progress
from generator.render.templating import PROJECT_TEMPLATES, PrintSettings
from generator.typeset.batch import Typesetter, tex_ready
from generator.typeset.compile import INSTALL_HINT, tex_available

if TYPE_CHECKING:
    from jinja2.sandbox import SandboxedEnvironment

    from generator.render.documents import RenderedQuestion
    from generator.spec.assemble import DocumentPlan, Plan, Seat
    from generator.typeset.batch import Job, JobResult

__all__ = ["DOCUMENT_KINDS", "BuildOptions", "BuildResult", "build"]

DOCUMENT_KINDS = ("sheet", "key", "solutions")  # as generator.render.documents.DOCUMENT_KINDS (checked in tests)


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
    jobs: int | None = None  # TeX runs at the same time; None: one per core (not an input: same bytes)
    kinds: tuple[str, ...] = DOCUMENT_KINDS  # which documents each copy gets, in DOCUMENT_KINDS order
    paper: str = "a4"  # a4 or letter
    font_size: int | None = None  # points (10, 11, 12, 14, 17, 20); None: 11, or 14 in large print
    large_print: bool = False  # 14 pt at least, and a quarter more space between lines
    scan_marks: bool = False  # page x of y and a QR code on worksheet pages too (exams always)

    @property
    def printing(self) -> PrintSettings:
        """Paper and print size of every document."""
        return PrintSettings(self.paper, self.font_size, self.large_print, self.scan_marks)

    @property
    def destination(self) -> Path:
        return self.out if self.out is not None else Path("build") / f"seed-{self.seed}"


@dataclass(frozen=True, slots=True)
class BuildResult:
    """What a build wrote, and anything the user should know.

    `reused` is True when the inputs were unchanged and the previous output was kept as it was;
    `compiled` and `cached` count the TeX jobs (one per document kind) run and taken from the cache.
    """

    destination: Path
    files: tuple[str, ...]
    notes: tuple[str, ...] = field(default_factory=tuple)
    plan: Plan | None = None
    reused: bool = False
    compiled: int = 0
    cached: int = 0


def build(options: BuildOptions) -> BuildResult:
    """Run the whole pipeline; on any error the previous output is left untouched."""
    tex = tex_identity() if options.pdf and tex_available() else ""  # "": no PDFs
    code = environment((PROJECT_TEMPLATES, options.templates))
    inputs = _fingerprint(options, code, tex)
    previous = load_previous(options.destination)
    if previous.unchanged(inputs):
        return BuildResult(options.destination, tuple(sorted(previous.files)), tuple(previous.notes), reused=True)
    # TeX is made ready in the background from here on (two primed runs per TeX worker), while
    # this process imports the stages and loads the bank on one core.
    with _collector_resumed(), progress() as shown, \
            tex_ready(bool(tex), options.templates, two_sided=options.two_sided, runs=2 * _workers(options),
                      printing=options.printing) as ready:
        with _collector_paused():
            # The stages, imported only now that there is work to do (see the module docstring).
            from generator.outputs.keytable import make_key_table
            from generator.outputs.manifest import class_set_entries, dump_manifest, make_manifest
            from generator.outputs.output import staging
            from generator.questions import solve_questions
            from generator.render.documents import make_environment
            from generator.spec.assemble import assemble
            from generator.spec.model import load_bank
            from generator.spec.roster import load_roster

            bank = load_bank(options.bank)
            roster = load_roster(options.roster) if options.roster is not None else None
            plan = assemble(bank, seed=options.seed, variants=options.variants, roster=roster,
                            worksheets=options.worksheets, exams=options.exams)
        ready.primer.limit(len(plan.documents) * len(options.kinds))  # at most one batch each with that head
        questions = solve_questions(bank, plan, seed=options.seed, templates=options.templates, code=code,
                                    previous=previous, workers=_workers(options), shown=shown)
        rendered = {key: s.rendered for key, s in questions.results.items()}
        env = make_environment(options.templates)
        notes = [*plan.notes, *questions.notes]
        with staging(options.destination) as temp, Typesetter(
            temp, two_sided=options.two_sided, workers=_workers(options), salt=job_salt(tex),
            reuse=lambda key, outputs: previous.reuse_job(key, outputs, temp), fmt=ready.fmt, primer=ready.primer,
        ) as typesetter:
            # Each kind of each document goes to TeX as soon as its copies are rendered; the .tex
            # files, the cache, the manifest and the key table are written while TeX works.
            digests: dict[str, str] = {}  # of the files written, for the index
            sources = _render_documents(env, plan, rendered, options, temp, typesetter if tex else None, digests)
            kept = questions.to_keep()
            variants = [(label, [questions.results[(v, q)].manifest for q in plan.questions_of(v)])
                        for v, label in sorted({(s.variant_index, s.variant) for s in plan.seats})]
            manifest = make_manifest(options.seed, variants, class_set_entries(plan, options.kinds, roster, notes))
            answers = {key: s.answers for key, s in questions.results.items()}
            _write(temp, {MANIFEST: dump_manifest(manifest), KEY_TABLE: make_key_table(plan, answers)}, digests)
            for key, data in kept.items():
                store_solved(temp, key, data)
            if options.pdf and not tex:
                notes.append(INSTALL_HINT)
            compiled = _typeset(typesetter, shown, plan, options.kinds) if tex else []
            files = [*sources, MANIFEST, KEY_TABLE, *(name for job in compiled for name in job.files)]
            notes += [note for job in compiled for note in job.notes]
            digests.update(digest for job in compiled for digest in job.digests)
            write_index(temp, inputs, files, notes, {job.key: list(job.files) for job in compiled}, solved=kept,
                        digests=digests)
    ran = sum(job.compiled for job in compiled)
    # (the bank's warnings are told, not recorded: the manifest describes what was built)
    return BuildResult(options.destination, tuple(sorted(files)), (*bank.warnings, *notes), plan,
                       compiled=ran, cached=len(compiled) - ran)


def _render_documents(env: SandboxedEnvironment, plan: Plan, rendered: Mapping[tuple[int, str], RenderedQuestion],
                      options: BuildOptions, folder: Path, typesetter: Typesetter | None, digests: dict[str, str],
                      ) -> list[str]:
    """Every kind of every document, each copy's `.tex` file written into `folder` (its SHA-256 noted
    in `digests`), each kind handed to `typesetter` (if any) as soon as its copies are rendered.

    The longest first, as its TeX runs longest: documents by length, then solutions, key, sheet.
    Returns the files' names in the order of the plan's documents and `options.kinds`.
    """
    names: dict[tuple[str, str], list[str]] = {}  # the .tex files of each (document, kind)
    for document in sorted(plan.documents, key=lambda d: -_length(plan, d, rendered)):
        for kind in reversed(options.kinds):
            texts = _render_kind(env, plan, document, rendered, options.seed, kind, options.printing)
            if typesetter is not None:  # (TeX reads the batch made from these texts, not the files written next)
                typesetter.submit(_jobs(plan, document, texts, (kind,)))
            _write(folder, texts, digests)
            names[(document.id, kind)] = list(texts)
    return [name for document in plan.documents for kind in options.kinds for name in names[(document.id, kind)]]


def _typeset(typesetter: Typesetter, shown: Progress, plan: Plan, kinds: tuple[str, ...]) -> list[JobResult]:
    """Wait for TeX to finish every job submitted, showing the copies typeset."""
    shown.stage("typesetting", len(plan.documents) * len(plan.seats) * len(kinds))
    return typesetter.finish(shown.advance)


# Measured 2026-12-02 (callgrind, 50 variants without TeX, all processes): without it 1.4% more instructions,
# on the main process that everything waits for (docs/performance.md, "Devices re-measured").
@contextmanager
def _collector_paused() -> Iterator[None]:
    """Python's cyclic garbage collector off for a while: importing SymPy makes several hundred
    thousand objects, none of them garbage, and the collector walked them again and again (about
    a sixth of the imports' time, on the one core everything else waits for).

    Turned back on afterwards with what was made meanwhile frozen (`gc.freeze` moves it out of the
    generations the collector walks, without walking it): turned on plainly, the collector walked
    it all once as young objects and once more as middle-aged ones, 0.04 s and 0.08 s of the main
    process at 50 variants, the first just before the workers start. `_collector_resumed` unfreezes
    it when the build ends."""
    enabled, unfrozen = gc.isenabled(), gc.get_freeze_count() == 0
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            if unfrozen:  # (objects someone else froze are left to them: see _collector_resumed)
                gc.freeze()
            gc.enable()


@contextmanager
def _collector_resumed() -> Iterator[None]:
    """Around a build: what `_collector_paused` froze goes back to the collector's oldest generation
    at the end (`gc.unfreeze`, again without a walk), as if collected as it aged. A process may run
    many builds (the tests), and frozen objects would stay for good, garbage or not."""
    unfrozen = gc.get_freeze_count() == 0
    try:
        yield
    finally:
        if unfrozen:  # gc.unfreeze releases every frozen object: only what this build froze
            gc.unfreeze()


def _fingerprint(options: BuildOptions, code: str, tex: str) -> str:
    """The cache key of a whole build: its options and every file it reads (generator.outputs.cache)."""
    settings: dict[str, Any] = {k: v for k, v in asdict(options).items() if k not in ("out", "jobs")}
    settings["pdf"] = bool(tex)
    return fingerprint(settings, bank=options.bank, environment=code, roster=options.roster, tex=tex)


def _length(plan: Plan, document: DocumentPlan, rendered: Mapping[tuple[int, str], RenderedQuestion]) -> int:
    """About how much LaTeX a document's copies hold: its rendered questions' text, every copy."""
    total = 0
    for seat in plan.seats:
        for slot in document.slots[seat.variant_index]:
            question = rendered[(seat.variant_index, slot.question)]
            total += len(question.stem) + len(question.solution) + sum(
                len(part.prompt) + len(part.answer) + len(part.index_form) + len(part.vectorized)
                for part in question.parts)
    return total


def _render_kind(
    env: SandboxedEnvironment, plan: Plan, document: DocumentPlan, rendered: Mapping[tuple[int, str], RenderedQuestion],
    seed: int, kind: str, printing: PrintSettings,
) -> dict[str, str]:
    """One kind of one document for every copy, as `.tex` text by output path."""
    from generator.render.documents import render_document, with_points

    texts: dict[str, str] = {}
    template_prefix = "exam-" if document.type == "exam" else ""
    for seat in plan.seats:
        questions = [with_points(rendered[(seat.variant_index, s.question)], s.points)
                     for s in document.slots[seat.variant_index]]
        texts[copy_file(document.id, seat.folder, kind, ".tex")] = render_document(
            env, kind, document.spec, questions, seed=seed, variant=seat.variant,
            student=seat.student, template=f"{template_prefix}{kind}.tex.j2", printing=printing,
        )
    return texts


def _write(folder: Path, texts: Mapping[str, str], digests: dict[str, str]) -> None:
    """Write each text as UTF-8, and note its SHA-256 for the index (taken while the bytes are at hand)."""
    for name, text in texts.items():
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        data = text.encode("utf-8")
        path.write_bytes(data)
        digests[name] = hashlib.sha256(data).hexdigest()


def _jobs(plan: Plan, document: DocumentPlan, texts: Mapping[str, str], kinds: tuple[str, ...]) -> list[Job]:
    """One TeX job per kind of the document: every copy, in seat order, for one combined print file."""
    from generator.typeset.batch import Copy, Job

    jobs = []
    for kind in kinds:
        copies = []
        for seat in plan.seats:
            name = copy_file(document.id, seat.folder, kind, ".tex")
            copies.append(Copy(name, texts[name], _bookmark(seat)))
        jobs.append(Job(combined_file(document.id, kind), tuple(copies), spec=document.spec.path))
    return jobs


def _workers(options: BuildOptions) -> int:
    if options.jobs is not None:
        return max(1, options.jobs)
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def _bookmark(seat: Seat) -> str:
    if seat.student is None:
        return f"Variant {seat.variant}"
    return f"{seat.student.name} ({seat.student.id}), variant {seat.variant}"

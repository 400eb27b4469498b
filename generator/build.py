"""The pipeline, top to bottom: load -> assemble -> sample -> solve -> verify -> render -> write -> compile.

Each stage lives in the module of the same name; this file only wires them together. All the
documents of a copy (sheet, key, solutions) come from one draw and one rendering of each
question: they differ only in which parts of the rendered questions the document template shows.
Solving finishes before a document is rendered, so the compile stage sees every copy of a document
at once and compiles them in one TeX run (`generator.typeset.batch`), which also makes the combined print
files; each kind of each document goes to TeX as soon as its copies are rendered, and the
files, manifest, key table and cache are written while TeX works. Output layout: `generator.outputs.layout` and docs/output.md.

Before any of that, the build asks the cache (`generator.outputs.cache`) whether the output folder already
holds what these inputs make; if so it is done. The stage modules are imported only after that
check: SymPy, Jinja and pypdf take longer to import than a build with unchanged inputs takes.
"""

from __future__ import annotations

import gc
import hashlib
import math
import multiprocessing
import os
import signal
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

from generator.outputs.cache import (
    Previous,
    environment,
    fingerprint,
    job_salt,
    load_previous,
    question_key,
    store_solved,
    tex_identity,
    write_index,
)
from generator.outputs.layout import KEY_TABLE, MANIFEST, combined_file, copy_file
from generator.progress import Progress, progress
from generator.render.templating import PROJECT_TEMPLATES, project_preamble
from generator.typeset.compile import (
    INSTALL_HINT,
    format_file,
    tex_available,
)
from generator.typeset.formats import Primer, UnpackedFormat

if TYPE_CHECKING:
    from jinja2.sandbox import SandboxedEnvironment

    from generator.answers.sampling import Instance
    from generator.render.documents import RenderedQuestion
    from generator.spec.assemble import DocumentPlan, Plan, Seat
    from generator.spec.model import Bank, QuestionSpec
    from generator.typeset.batch import Job

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
    compile_pdfs = options.pdf and tex_available()
    tex = tex_identity() if compile_pdfs else ""
    code = environment((PROJECT_TEMPLATES, options.templates))
    inputs = _fingerprint(options, code, tex)
    previous = load_previous(options.destination)
    if previous.unchanged(inputs):
        return BuildResult(options.destination, tuple(sorted(previous.files)), tuple(previous.notes), reused=True)
    # TeX's formats are made ready in the background from here on (unpacked, the batches' preamble
    # preloaded: kept from an earlier build, or made), and pdflatex runs are started on the
    # batches' head, while this process imports the stages and loads the bank on one core
    # (generator.typeset.formats.UnpackedFormat, Primer).
    prefix, head = _batch_start(options) if tex else (None, None)
    with _collector_resumed(), progress() as shown, UnpackedFormat(format_file() if tex else None, preamble=prefix) as fmt, \
            Primer(head, fmt, limit=2 * _workers(options)) as primer:
        return _build(options, inputs, code, previous, tex, shown, fmt, primer)


def _batch_start(options: BuildOptions) -> tuple[str | None, str | None]:
    """How the batches of documents without CJK names will start, if it can be told already:
    up to the end of their preamble (what a format can hold preloaded), and up to \\begin{document}."""
    from generator.typeset.batch import batch_head, batch_prefix

    preamble = project_preamble(options.templates)
    if preamble is None:
        return None, None
    return batch_prefix(preamble), batch_head(preamble, two_sided=options.two_sided)


def _build(options: BuildOptions, inputs: str, code: str, previous: Previous, tex: str, shown: Progress,
           fmt: UnpackedFormat, primer: Primer) -> BuildResult:
    with _collector_paused():
        # The stages, imported only now that there is work to do (see the module docstring).
        from generator.outputs.keytable import make_key_table
        from generator.outputs.manifest import (
            class_set_entries,
            dump_manifest,
            make_manifest,
        )
        from generator.outputs.output import staging
        from generator.render.documents import make_environment
        from generator.spec.assemble import assemble
        from generator.spec.model import load_bank
        from generator.spec.roster import load_roster
        from generator.typeset.batch import Typesetter

        bank = load_bank(options.bank)
        roster = load_roster(options.roster) if options.roster is not None else None
        plan = assemble(bank, seed=options.seed, variants=options.variants, roster=roster,
                        worksheets=options.worksheets, exams=options.exams)
    primer.limit(len(plan.documents) * len(options.kinds))  # at most one batch each with that head
    solved, sampling_notes, kept, keep_fresh = _solve_questions(bank, plan, options, code, previous, shown)
    env = make_environment(options.templates)
    rendered = {key: s.rendered for key, s in solved.items()}
    notes = [*plan.notes, *sampling_notes]
    compile_pdfs = bool(tex)
    compiled = []
    with staging(options.destination) as temp, Typesetter(
        temp, two_sided=options.two_sided, workers=_workers(options), salt=job_salt(tex),
        reuse=lambda key, outputs: previous.reuse_job(key, outputs, temp), fmt=fmt, primer=primer,
    ) as typesetter:
        # Each kind of each document goes to TeX as soon as its copies are rendered, the longest
        # first (its TeX runs longest: documents by length, then solutions, key, sheet); its .tex
        # files, the cache, the manifest and the key table are written while TeX works.
        texts: dict[tuple[str, str], dict[str, str]] = {}
        digests: dict[str, str] = {}  # of the files written, for the index
        for document in sorted(plan.documents, key=lambda d: -_length(plan, d, rendered)):
            for kind in reversed(options.kinds):
                texts[(document.id, kind)] = made = _render_kind(env, plan, document, rendered, options.seed, kind)
                if compile_pdfs:  # (TeX reads the batch made from these texts, not the files written next)
                    typesetter.submit(_jobs(plan, document, made, (kind,)))
                _write(temp, made, digests)
        documents = {name: text for document in plan.documents for kind in options.kinds
                     for name, text in texts[(document.id, kind)].items()}
        kept.update(keep_fresh())
        variants = [(variant_label, [solved[(v, q)].manifest for q in plan.questions_of(v)])
                    for v, variant_label in sorted({(s.variant_index, s.variant) for s in plan.seats})]
        manifest = make_manifest(options.seed, variants, class_set_entries(plan, options.kinds, roster, notes))
        _write(temp, {MANIFEST: dump_manifest(manifest),
                      KEY_TABLE: make_key_table(plan, {key: s.answers for key, s in solved.items()})}, digests)
        for key, data in kept.items():
            store_solved(temp, key, data)
        if options.pdf and not compile_pdfs:
            notes.append(INSTALL_HINT)
        files = [*documents, MANIFEST, KEY_TABLE]
        jobs: dict[str, list[str]] = {}
        if compile_pdfs:
            shown.stage("typesetting", len(plan.documents) * len(plan.seats) * len(options.kinds))
            compiled = typesetter.finish(shown.advance)
            files += [name for job in compiled for name in job.files]
            notes += [note for job in compiled for note in job.notes]
            jobs = {job.key: list(job.files) for job in compiled}
            digests.update(digest for job in compiled for digest in job.digests)
        write_index(temp, inputs, files, notes, jobs, solved=kept, digests=digests)
    ran = sum(job.compiled for job in compiled)
    return BuildResult(options.destination, tuple(sorted(files)), tuple(notes), plan,
                       compiled=ran, cached=len(compiled) - ran)


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


@dataclass(frozen=True, slots=True)
class Solved:
    """One (variant, question), solved, verified and rendered; plain data, so it crosses processes."""

    rendered: RenderedQuestion
    manifest: dict[str, Any]  # generator.outputs.manifest.manifest_entry
    answers: tuple[tuple[str, str, str, str], ...]  # generator.outputs.keytable.answer_rows


def solve_all(
    questions: Sequence[tuple[QuestionSpec, Sequence[int]]], seed: int, templates: Path | None, *, workers: int = 1,
    advance: Callable[[int], None] | None = None,
) -> tuple[dict[tuple[int, str], Solved], dict[str, str | None]]:
    """Draw each question for its variants, then solve, verify and render every (variant, question).

    The work is shared out by question, in `workers` forked processes: a task draws a question's
    variants (the draws of one question depend on the earlier ones, which keeps variants distinct)
    and solves a run of them, so that a question's symbolic work (its index forms, its Jacobians
    per dimensions) and the drawing are done by the processes that need them, in parallel,
    rather than in the main process first. Large questions are cut into runs so that the cores
    finish together; tasks start largest first.

    Returns the results by (variant index, question id) and each question's sampling note. Results
    and errors do not depend on `workers`: a question that cannot be drawn is reported first (the
    first such in question order, as when drawing came before solving), then the first other
    error in (question, variant) order.
    """
    units = sum(len(variants) for _, variants in questions)
    processes = min(workers, units // _MIN_UNITS_PER_PROCESS)
    tasks = _tasks(questions, processes)
    processes = min(processes, len(tasks))
    _start_worker(templates, questions, seed)  # read by forked children too
    outcomes: dict[tuple[int, int, int], _Outcome] = {}
    if processes < 2 or "fork" not in multiprocessing.get_all_start_methods():
        for task in tasks:
            outcomes[task] = _run_task(task)
            if advance is not None:
                advance(task[2] - task[1])
    else:
        context = multiprocessing.get_context("fork")  # the children share the parent's loaded bank
        pool = context.Pool(processes, initializer=_quiet_worker)
        try:
            for task, outcome in zip(tasks, pool.imap(_run_task, tasks), strict=True):
                outcomes[task] = outcome
                if advance is not None:
                    advance(task[2] - task[1])
            pool.close()
        except BaseException:
            pool.terminate()
            raise
        finally:
            pool.join()
    ordered = sorted(outcomes.items())  # (question, first variant): the order of `questions`
    for _, outcome in ordered:
        if outcome.sampling_error is not None:
            _raise(outcome.sampling_error)
    solved: dict[tuple[int, str], Solved] = {}
    notes: dict[str, str | None] = {}
    for (q, first, end), outcome in ordered:
        spec, variants = questions[q]
        for v, result in zip(variants[first:end], outcome.results, strict=True):
            if isinstance(result, tuple):
                _raise(result)
            solved[(v, spec.id)] = result
        if end == len(variants):  # the task that drew every variant knows the question's note
            notes[spec.id] = outcome.note
    return solved, notes


@dataclass(frozen=True, slots=True)
class _Outcome:
    """What a task sends back: its results in variant order, or why the question could not be drawn."""

    results: tuple[Solved | tuple[str, str], ...]  # (error class name, message) for an error
    note: str | None = None
    sampling_error: tuple[str, str] | None = None


_MIN_UNITS_PER_PROCESS = 8  # below this, starting a process costs more than it saves
_RUNS_PER_PROCESS = 4  # a question larger than 1/(4 x processes) of the work is cut into runs
_worker_state: dict[str, Any] = {}


def _tasks(questions: Sequence[tuple[QuestionSpec, Sequence[int]]], workers: int) -> list[tuple[int, int, int]]:
    """(question, first, end) runs of variants, the likely longest first.

    A question's cost is estimated from its spec (parts x parameter entries at the largest
    dimensions: mlp2 comes first, a scalar question last); it only decides the order.
    """
    total = sum(len(variants) for _, variants in questions)
    # A run draws every variant before its own again, so cut only when processes share the work.
    size = max(_MIN_UNITS_PER_PROCESS, -(-total // (workers * _RUNS_PER_PROCESS))) if workers > 1 else max(1, total)
    tasks = [(q, first, min(first + size, len(variants)))
             for q, (_, variants) in enumerate(questions) for first in range(0, len(variants), size)]
    return sorted(tasks, key=lambda t: -(t[2] - t[1]) * _weight(questions[t[0]][0]))


def _weight(question: QuestionSpec) -> int:
    largest = {name: high for name, _, high in question.dimensions}
    entries = sum(math.prod(largest[s] if isinstance(s, str) else s for s in p.shape) for p in question.parameters)
    return len(question.parts) * (1 + entries)


def _start_worker(templates: Path | None, questions: Sequence[tuple[QuestionSpec, Sequence[int]]], seed: int) -> None:
    from generator.render.documents import make_environment

    _worker_state.update(questions=questions, seed=seed, env=make_environment(templates))


def _quiet_worker() -> None:
    """In a child: Ctrl-C and kill are the parent's to handle (it ends the pool), no tracebacks."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    # What the child inherited (SymPy's modules and caches, the bank: most of its objects) stays
    # for its whole life; frozen, the collector no longer walks it at every full collection, and
    # leaves the pages shared with the parent alone. About 1.5% fewer instructions in a worker
    # (valgrind); not done in the parent, which may run many builds (tests) and would keep garbage.
    gc.freeze()


def _run_task(task: tuple[int, int, int]) -> _Outcome:
    """Draw a question's variants up to `end`, and solve, verify and render those from `first`."""
    from generator.answers.sampling import sample_variants
    from generator.errors import SamplingError

    q, first, end = task
    spec, variants = _worker_state["questions"][q]
    try:
        drawn, note = sample_variants(spec, _worker_state["seed"], variants[:end])
    except SamplingError as e:
        return _Outcome((), sampling_error=(type(e).__name__, str(e)))
    return _Outcome(tuple(_solve_unit(drawn[v]) for v in variants[first:end]), note)


def _solve_unit(instance: Instance) -> Solved | tuple[str, str]:
    """Solve, verify and render one (variant, question); an error comes back as (class name, message)."""
    from generator.answers.solve import solve
    from generator.answers.verify import verify
    from generator.errors import GeneratorError
    from generator.outputs.keytable import answer_rows
    from generator.outputs.manifest import manifest_entry
    from generator.render.documents import render_question
    from generator.render.latex import latex_answer

    try:
        solution = solve(instance)
        verify(solution)
        latex = [latex_answer(answer) for answer in solution.parts]  # the key, manifest.json and answers.csv show it
        return Solved(render_question(_worker_state["env"], solution, latex=latex), manifest_entry(solution, latex),
                      answer_rows(solution, latex))
    except GeneratorError as e:
        return (type(e).__name__, str(e))


def _raise(error: tuple[str, str]) -> NoReturn:
    from generator import errors

    raise getattr(errors, error[0])(error[1])


def _solve_questions(
    bank: Bank, plan: Plan, options: BuildOptions, code: str, previous: Previous, shown: Progress,
) -> tuple[dict[tuple[int, str], Solved], list[str], dict[str, Any], Callable[[], dict[str, Any]]]:
    """Every question for every variant that uses it: sampled (variants kept distinct), solved,
    verified and rendered; or, when the previous build recorded the same question for the same
    seed and variants with the same code, taken from it (generator.outputs.cache).

    Returns the results by (variant index, question), the sampling notes in question order, what
    to keep for the next build (question key -> JSON-able results) of the questions taken from
    the cache, and a function that gives the same for the questions solved now.
    """
    users: dict[str, list[int]] = {}
    for v in plan.variant_indices:
        for qid in plan.questions_of(v):
            users.setdefault(qid, []).append(v)
    solved: dict[tuple[int, str], Solved] = {}
    kept: dict[str, Any] = {}
    notes: dict[str, str | None] = {}
    fresh: dict[str, str] = {}  # question id -> key, for those solved now
    for qid, variant_indices in users.items():
        spec = bank.questions[qid]
        key = question_key(code, spec.sha256, spec.path, qid, options.seed, variant_indices)
        data = previous.solved_question(key)
        restored = _restore(data, qid, variant_indices) if data is not None else None
        if restored is not None:
            solved.update(restored)
            notes[qid] = data["note"]  # type: ignore[index]
            kept[key] = data
            continue
        notes[qid] = None  # filled in below; kept here for the order of the notes
        fresh[qid] = key
    asked = [(bank.questions[qid], users[qid]) for qid in fresh]
    shown.stage("solving", sum(len(variants) for _, variants in asked))
    new, drawn_notes = solve_all(asked, options.seed, options.templates, workers=_workers(options), advance=shown.advance)
    solved.update(new)
    notes.update(drawn_notes)

    def keep_fresh() -> dict[str, Any]:
        # Called once the first documents are with TeX: the build waits for nothing meanwhile.
        return {key: {"note": notes[qid], "variants": {str(v): _dump(new[(v, qid)]) for v in users[qid]}}
                for qid, key in fresh.items()}

    return solved, [note for note in notes.values() if note], kept, keep_fresh


def _dump(solved: Solved) -> dict[str, Any]:
    rendered = solved.rendered
    # Field by field: dataclasses.asdict deep-copies every string it meets (0.04 s of the main
    # process at 50 variants, while TeX works); the same JSON.
    return {"rendered": {**_fields(rendered), "parts": [_fields(part) for part in rendered.parts]},
            "manifest": solved.manifest, "answers": [list(a) for a in solved.answers]}


def _fields(item: Any) -> dict[str, Any]:
    return {f.name: getattr(item, f.name) for f in fields(item)}


def _restore(data: Any, qid: str, variant_indices: list[int]) -> dict[tuple[int, str], Solved] | None:
    """Solved results from a kept JSON file, or None if it does not hold what is needed."""
    from generator.render.documents import RenderedPart, RenderedQuestion

    try:
        out = {}
        for v in variant_indices:
            item = data["variants"][str(v)]
            rendered = dict(item["rendered"])
            rendered["parts"] = tuple(RenderedPart(**part) for part in rendered["parts"])
            out[(v, qid)] = Solved(RenderedQuestion(**rendered), item["manifest"], tuple(tuple(a) for a in item["answers"]))
        if not isinstance(data["note"], (str, type(None))):
            return None
        return out
    except (KeyError, TypeError, ValueError):
        return None


def _length(plan: Plan, document: DocumentPlan, rendered: Mapping[tuple[int, str], RenderedQuestion]) -> int:
    """About how much LaTeX a document's copies hold: its rendered questions' text, every copy."""
    total = 0
    for seat in plan.seats:
        for slot in document.slots[seat.variant_index]:
            question = rendered[(seat.variant_index, slot.question)]
            total += len(question.stem) + len(question.solution) + sum(
                len(part.prompt) + len(part.answer) + len(part.index_form) + len(part.vectorized) for part in question.parts)
    return total


def _render_kind(
    env: SandboxedEnvironment, plan: Plan, document: DocumentPlan, rendered: Mapping[tuple[int, str], RenderedQuestion],
    seed: int, kind: str,
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
            student=seat.student, template=f"{template_prefix}{kind}.tex.j2",
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

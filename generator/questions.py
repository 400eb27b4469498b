"""Every question for every variant that uses it: sampled, solved, verified and rendered, in
worker processes; or taken from what the previous build kept (`generator.outputs.cache`).

The build's sample -> solve -> verify -> render steps, for the questions, run here together:
a worker draws a question's variants and takes each through `generator.answers.solve`,
`generator.answers.verify` and `generator.render.documents.render_question`, so that the main
process receives plain rendered results. It sits beside `generator.build` (which alone imports
it) rather than in a stage folder, since it calls stages from `answers` up to `outputs`.
"""

from __future__ import annotations

import hashlib
import math
import multiprocessing
import signal
from collections.abc import Callable, Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

from generator.outputs.cache import Previous, question_key
from generator.progress import Progress

if TYPE_CHECKING:
    from generator.answers.sampling import Instance
    from generator.render.documents import RenderedQuestion
    from generator.spec.assemble import Plan
    from generator.spec.model import Bank, QuestionSpec

__all__ = ["Solved", "SolvedQuestions", "solve_all", "solve_questions"]


@dataclass(frozen=True, slots=True)
class Solved:
    """One (variant, question), solved, verified and rendered; plain data, so it crosses processes."""

    rendered: RenderedQuestion
    manifest: dict[str, Any]  # generator.outputs.manifest.manifest_entry
    answers: tuple[tuple[str, ...], ...]  # generator.outputs.keytable.answer_rows


@dataclass(frozen=True, slots=True)
class SolvedQuestions:
    """What `solve_questions` gives the build: every result, the sampling notes, and what to keep.

    `results` are by (variant index, question id); `notes` are the sampling notes in question
    order. `reused` holds what is kept for the next build (question key -> JSON-able results) of
    the questions taken from the cache; `fresh` (question key -> question id, its variants, its
    note) says which questions were solved now, for `to_keep`.
    """

    results: dict[tuple[int, str], Solved]
    notes: tuple[str, ...]
    reused: dict[str, Any]
    fresh: dict[str, tuple[str, list[int], str | None]]

    def to_keep(self) -> dict[str, Any]:
        """What to keep for the next build: the questions taken from the cache, then those solved now.

        The build calls it once the first documents are with TeX: it waits for nothing meanwhile."""
        kept = dict(self.reused)
        kept.update({key: {"note": note, "variants": {str(v): _dump(self.results[(v, qid)]) for v in variants}}
                     for key, (qid, variants, note) in self.fresh.items()})
        return kept


def solve_questions(
    bank: Bank, plan: Plan, *, seed: int, templates: Path | None, code: str, previous: Previous, workers: int,
    shown: Progress,
) -> SolvedQuestions:
    """Every question for every variant that uses it: sampled (variants kept distinct), solved,
    verified and rendered (`solve_all`, in `workers` processes); or, when the previous build
    recorded the same question for the same seed and variants with the same code, taken from it
    (generator.outputs.cache).
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
        key = question_key(code + _macros_digest(spec.path), spec.sha256, spec.path, qid, seed, variant_indices)
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
    new, drawn_notes = solve_all(asked, seed, templates, workers=workers, advance=shown.advance)
    solved.update(new)
    notes.update(drawn_notes)
    return SolvedQuestions(solved, tuple(note for note in notes.values() if note), kept,
                           {key: (qid, users[qid], notes[qid]) for qid, key in fresh.items()})


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
    outcomes = _run_tasks(tasks, processes, advance)
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


def _run_tasks(tasks: list[tuple[int, int, int]], processes: int,
               advance: Callable[[int], None] | None) -> dict[tuple[int, int, int], _Outcome]:
    """Each task's outcome: in this process, or shared out among `processes` forked ones."""
    outcomes: dict[tuple[int, int, int], _Outcome] = {}
    if processes < 2 or "fork" not in multiprocessing.get_all_start_methods():
        for task in tasks:
            outcomes[task] = _run_task(task)
            if advance is not None:
                advance(task[2] - task[1])
        return outcomes
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
    return outcomes


def _start_worker(templates: Path | None, questions: Sequence[tuple[QuestionSpec, Sequence[int]]], seed: int) -> None:
    from generator.render.documents import make_environment

    _worker_state.update(questions=questions, seed=seed, env=make_environment(templates))


def _quiet_worker() -> None:
    """In a child: Ctrl-C and kill are the parent's to handle (it ends the pool), no tracebacks."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)


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


def _macros_digest(question_path: str) -> str:
    """The SHA-256 of the bank's macro file a question's templates can call ("" without one): a
    changed macro changes the question's rendering, which the cache keeps per question."""
    from generator.render.documents import macros_path

    file = macros_path(question_path)
    return "" if file is None else " macros " + hashlib.sha256(file.read_bytes()).hexdigest()


# Measured 2026-12-02 (callgrind, 50 variants without TeX, all processes): asdict instead costs 3.2% more.
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
            out[(v, qid)] = Solved(RenderedQuestion(**rendered), item["manifest"],
                                   tuple(tuple(a) for a in item["answers"]))
        if not isinstance(data["note"], (str, type(None))):
            return None
        return out
    except (KeyError, TypeError, ValueError):
        return None

"""Stage 1b, assemble: decide who gets which document with which questions, before any drawing.

A build makes a set of documents for each *seat*: one seat per variant (A, B, ...), or one per
student when a roster is given. Each student is given a variant: with `--variants N`, student k
(in roster order, from 0) gets variant k mod N; without it every student gets a variant of their own.

For each document (worksheet or exam) and each variant, the questions are fixed here:
worksheets list them; exams list ids and tag entries ("2 from tag activations"), whose questions
are drawn per variant, and may shuffle the order per variant. Both draws use a generator seeded
by (build seed, variant, exam id), separate from the question streams, so a question's numbers
do not depend on which exam picked it, and `shuffle` does not change which questions are picked.
"""

from __future__ import annotations

import difflib
import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from generator.errors import SpecError
from generator.spec.model import Bank, ExamEntry, ExamSpec, QuestionSpec, WorksheetSpec
from generator.spec.roster import Roster, Student

__all__ = ["Seat", "Slot", "DocumentPlan", "Plan", "assemble", "variant_label"]


def variant_label(index: int) -> str:
    """0 -> A, 25 -> Z, 26 -> AA, 27 -> AB, ... (spreadsheet column names)."""
    label = ""
    index += 1
    while index:
        index, rest = divmod(index - 1, 26)
        label = chr(ord("A") + rest) + label
    return label


@dataclass(frozen=True, slots=True)
class Seat:
    """One recipient of a set of documents: a variant, or a student who is given a variant."""

    index: int
    variant_index: int
    variant: str
    student: Student | None
    folder: str


@dataclass(frozen=True, slots=True)
class Slot:
    """One question of one document variant: its number there, its id and its points."""

    number: int
    question: str
    points: float | None


@dataclass(frozen=True, slots=True)
class DocumentPlan:
    """A worksheet or an exam, with its question slots for every variant used."""

    id: str
    type: str
    spec: WorksheetSpec | ExamSpec
    slots: dict[int, tuple[Slot, ...]]


@dataclass(frozen=True, slots=True)
class Plan:
    """Everything the later stages need to know about what to build."""

    seats: tuple[Seat, ...]
    variant_indices: tuple[int, ...]
    documents: tuple[DocumentPlan, ...]
    notes: tuple[str, ...]

    def questions_of(self, variant_index: int) -> list[str]:
        """The question ids used by a variant, in order of first appearance in the documents."""
        ids = (s.question for d in self.documents for s in d.slots[variant_index])
        return list(dict.fromkeys(ids))


def assemble(
    bank: Bank,
    *,
    seed: int,
    variants: int | None = None,
    roster: Roster | None = None,
    worksheets: Iterable[str] = (),
    exams: Iterable[str] = (),
) -> Plan:
    """Plan the build: seats, and the questions of each document for each variant.

    With neither `worksheets` nor `exams` named, every worksheet and every exam of the bank is
    built; an exam that cannot be assembled from the bank (e.g. too few questions with a tag)
    is then skipped with a note. Named ones must assemble.

    Raises:
        SpecError: an unknown worksheet or exam, or an exam that cannot be assembled.
    """
    seats = _seats(variants, roster)
    used = tuple(sorted({s.variant_index for s in seats}))
    sheet_ids, exam_ids = list(worksheets), list(exams)
    everything = not sheet_ids and not exam_ids
    if everything:
        sheet_ids, exam_ids = sorted(bank.worksheets), sorted(bank.exams)
    _check_names(bank, sheet_ids, exam_ids)
    documents: list[DocumentPlan] = []
    notes: list[str] = []
    for sheet_id in sheet_ids:
        sheet = bank.worksheets[sheet_id]
        fixed = tuple(Slot(n, q, bank.questions[q].points) for n, q in enumerate(sheet.questions, 1))
        documents.append(DocumentPlan(sheet_id, "worksheet", sheet, {v: fixed for v in used}))
    for exam_id in exam_ids:
        exam = bank.exams[exam_id]
        try:
            slots = {v: _exam_slots(bank, exam, seed, v) for v in used}
        except SpecError as e:
            if not everything:
                raise
            notes.append(f"exam '{exam_id}' skipped: {e} (name it with --exam {exam_id} to make this an error)")
            continue
        totals = sorted({_total(s) for s in slots.values()})
        if len(totals) > 1:
            notes.append(
                f"exam '{exam_id}': the total differs between variants "
                f"({_number(totals[0])} to {_number(totals[-1])} points); "
                "give 'points' on its tag entries to make them equal"
            )
        documents.append(DocumentPlan(exam_id, "exam", exam, slots))
    if not documents:
        raise SpecError(f"{bank.root}: nothing to build: no worksheets or exams (or every exam was skipped)")
    return Plan(tuple(seats), used, tuple(documents), tuple(notes))


def _seats(variants: int | None, roster: Roster | None) -> list[Seat]:
    if roster is None:
        count = variants or 1
        return [Seat(i, i, variant_label(i), None, variant_label(i)) for i in range(count)]
    students = roster.students
    per = variants or len(students)
    width = max(3, len(str(len(students))))
    return [
        Seat(i, i % per, variant_label(i % per), student, f"{i + 1:0{width}d}-{_slug(student.id)}")
        for i, student in enumerate(students)
    ]


def _slug(text: str) -> str:
    """A file-name-safe form of a student id (the seat number in front keeps folders unique)."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("._")[:40] or "student"


def _check_names(bank: Bank, sheet_ids: list[str], exam_ids: list[str]) -> None:
    problems = []
    for kind, wanted, have in (("worksheet", sheet_ids, bank.worksheets), ("exam", exam_ids, bank.exams)):
        for name in wanted:
            if name not in have:
                close = difflib.get_close_matches(name, list(have), n=1)
                hint = f"; did you mean '{close[0]}'?" if close else f" (have: {', '.join(sorted(have)) or 'none'})"
                problems.append(f"no {kind} named '{name}' in {bank.root}{hint}")
    if problems:
        raise SpecError(problems)


def _exam_rng(seed: int, variant_index: int, exam_id: str) -> tuple[np.random.Generator, np.random.Generator]:
    """Two independent generators for one exam variant: tag picks, and question order."""
    digest = hashlib.sha256(f"exam:{exam_id}".encode()).digest()
    words = [int.from_bytes(digest[i : i + 4], "little") for i in range(0, 16, 4)]
    picks, order = np.random.SeedSequence([seed, variant_index, *words]).spawn(2)
    return np.random.default_rng(picks), np.random.default_rng(order)


def _exam_slots(bank: Bank, exam: ExamSpec, seed: int, variant_index: int) -> tuple[Slot, ...]:
    """The questions of one exam variant: ids in place, tag entries drawn, then maybe shuffled."""
    pick_rng, order_rng = _exam_rng(seed, variant_index, exam.id)
    taken = {e.id for e in exam.entries if e.id is not None}
    chosen: list[tuple[str, ExamEntry]] = []
    for i, entry in enumerate(exam.entries):
        if entry.id is not None:
            chosen.append((entry.id, entry))
            continue
        assert entry.tag is not None
        candidates = sorted(q for q, spec in bank.questions.items() if entry.tag in spec.tags and q not in taken)
        if len(candidates) < entry.count:
            raise SpecError(f"{entry.where}: questions[{i}]: {_shortage(bank, entry, len(candidates))}")
        picked = sorted(candidates[int(k)] for k in pick_rng.choice(len(candidates), size=entry.count, replace=False))
        taken.update(picked)
        chosen.extend((q, entry) for q in picked)
    if exam.shuffle:
        chosen = [chosen[int(k)] for k in order_rng.permutation(len(chosen))]
    slots = tuple(Slot(n, q, _points(bank.questions[q], entry)) for n, (q, entry) in enumerate(chosen, 1))
    if exam.total is not None and _total(slots) != exam.total:
        raise SpecError(
            f"{exam.where_total}: total: the questions add up to {_number(_total(slots))} points, "
            f"but total says {_number(exam.total)} (variant {variant_label(variant_index)})"
        )
    return slots


def _shortage(bank: Bank, entry: ExamEntry, available: int) -> str:
    tagged = sum(entry.tag in q.tags for q in bank.questions.values())
    message = f"tag '{entry.tag}' has {available} question{'s' if available != 1 else ''}"
    if available != tagged:
        message += f" not already in the exam ({tagged} in all)"
    message += f", {entry.count} asked"
    if not tagged:
        tags = sorted({t for q in bank.questions.values() for t in q.tags})
        close = difflib.get_close_matches(str(entry.tag), tags, n=1)
        message += f"; did you mean '{close[0]}'?" if close else f" (tags in the bank: {', '.join(tags) or 'none'})"
    return message


def _points(question: QuestionSpec, entry: ExamEntry) -> float:
    """The exam entry's points, else the question's, else the sum of its parts' points."""
    if entry.points is not None:
        return entry.points
    if question.points is not None:
        return question.points
    if question.parts and all(p.points is not None for p in question.parts):
        return sum(p.points for p in question.parts if p.points is not None)
    raise SpecError(f"{entry.where}: question '{question.id}' has no points; give 'points' here or in {question.path}")


def _total(slots: Iterable[Slot]) -> float:
    return sum(s.points or 0 for s in slots)


def _number(value: float) -> str:
    return f"{value:g}"

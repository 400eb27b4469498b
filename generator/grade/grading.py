"""`python -m generator grade RESPONSES.csv --manifest manifest.json`: scores and a per-part summary.

The response file has one row per answered entry: `student` (a roster student's id, or a copy's
variant label without a roster), `question` (id, or its number in the copy), `part` (id),
`entry` (1-based indices such as `1,2`; empty for a scalar) and `response`; an optional
`document` column names the worksheet or exam. Each part is graded by its rule
(`generator.outputs.rules`: exact, or rounded within a tolerance), entry by entry with partial
credit unless the part says `credit: all`. A part's points are its manifest `points` when given,
else the question's points (from the copy) shared equally among its parts. Missing entries
score nothing. A choice part (`kind: choice`) is answered in one row with an empty entry and
its letters (`B`, `A,C`; case and spaces ignored), graded against the manifest's `letters`, all or
nothing unless it says `credit: entries`; a wrong letter whose option is a misconception (the
option's `source`: sign, transposed, inner_dropped) is named in the summary.

Rows that name no known student, question, part or entry, or repeat one, stop the grading with
every such row listed by line; an unreadable response (or letters that are no option) scores
nothing and is noted by line.
Nothing is written over an existing output without `force`.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections import Counter
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

from generator.errors import GradeError, display_path
from generator.grade.responses import ResponseError, parse_response
from generator.outputs.rules import PartRule, accepts, part_credit, part_kind, part_rule
from generator.outputs.spreadsheet import spreadsheet_safe

__all__ = ["GradeOptions", "GradeResult", "grade", "grade_rows"]

COLUMNS = ("student", "question", "part", "entry", "response")
_ENTRY = re.compile(r"\s*[\(\[]?\s*(\d+(?:\s*[, ]\s*\d+)*)?\s*[\)\]]?\s*")
_TOP_WRONG = 3


@dataclass(frozen=True, slots=True)
class GradeOptions:
    """What `python -m generator grade` was asked to do."""

    responses: Path
    manifest: Path
    document: str | None = None
    scores: Path | None = None
    summary: Path | None = None
    force: bool = False


@dataclass(frozen=True, slots=True)
class GradeResult:
    """What was graded and written; `notes` name unreadable responses by line."""

    document: str
    rows: int
    students: int
    mean: float
    maximum: float
    scores: Path
    summary: Path
    notes: tuple[str, ...] = ()


_Value = Fraction | float | frozenset[str] | None  # a number, a choice part's letters, or unreadable (None)
# The manifest's names of a choice option's source (generator.spec.model.MISCONCEPTIONS) as the
# summary names them; the same words as for a numeric answer that matches one.
_MISCONCEPTION_NAMES = {"sign": "sign flip", "transposed": "transposed Jacobian",
                        "inner_dropped": "inner derivative dropped"}


@dataclass(frozen=True, slots=True)
class _Part:
    """A part of one copy's question: what grading it needs."""

    id: str
    rule: PartRule
    credit: str
    points: float
    entries: dict[tuple[int, ...], int | float]
    shape: tuple[int, ...]
    misconceptions: tuple[tuple[str, dict[tuple[int, ...], int | float]], ...]
    letters: frozenset[str] = frozenset()  # a choice part: its right letters ...
    options: tuple[tuple[str, str], ...] = ()  # ... and every option's (letter, source), as shown

    @property
    def choice(self) -> bool:
        """Whether the part is a choice part (answered by letters, as one entry `()`)."""
        return bool(self.options)


@dataclass(slots=True)
class _Copy:
    key: str
    variant: str
    name: str
    questions: dict[str, dict[str, _Part]]  # question id -> part id -> part
    numbers: dict[str, str]  # question number (text) -> id
    # (question, part, entry) -> (line, value or None when unreadable, text)
    responses: dict[tuple[str, str, tuple[int, ...]], tuple[int, _Value, str]] = field(default_factory=dict)


def grade(options: GradeOptions) -> GradeResult:
    """Read, grade, and write the score and summary CSVs (see the module docstring)."""
    scores_path = options.scores or options.responses.with_name(options.responses.stem + "-scores.csv")
    summary_path = options.summary or options.responses.with_name(options.responses.stem + "-summary.csv")
    existing = [display_path(p) for p in (scores_path, summary_path) if p.exists()]
    if existing and not options.force:
        raise GradeError(f"{', '.join(existing)}: exists already; give --force to overwrite")
    try:
        manifest = json.loads(options.manifest.read_text(encoding="utf-8"))
        text = options.responses.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError, ValueError) as e:
        raise GradeError(f"cannot read {e}") from None
    document, copies = _copies(manifest, options.document)
    notes = grade_rows(copies, text, display_path(options.responses))
    graded = [c for c in copies.values() if c.responses]
    scores, summary, mean, maximum = _reports(graded)
    scores_path.write_text(scores, encoding="utf-8")
    summary_path.write_text(summary, encoding="utf-8")
    rows = sum(len(c.responses) for c in graded)
    return GradeResult(document, rows, len(graded), mean, maximum, scores_path, summary_path, tuple(notes))


def _copies(manifest: dict[str, Any], wanted: str | None) -> tuple[str, dict[str, _Copy]]:
    """The copies of the document answered, by the key a response row names them with."""
    documents = {d["id"]: d for d in manifest.get("documents", [])}
    if wanted is None and len(documents) != 1:
        raise GradeError(f"the build has several documents ({', '.join(documents)}); give --document ID")
    document_id = wanted if wanted is not None else next(iter(documents))
    if document_id not in documents:
        raise GradeError(f"no document '{document_id}' in the manifest; it has {', '.join(documents)}")
    variants = {v["id"]: {q["id"]: q for q in v["questions"]} for v in manifest["variants"]}
    names = {s["id"]: s.get("name", "") for s in manifest.get("students", [])}
    copies: dict[str, _Copy] = {}
    for copy in documents[document_id]["copies"]:
        key = str(copy.get("student", copy["variant"]))
        entries = variants[copy["variant"]]
        questions = {q["id"]: _parts(entries[q["id"]], q.get("points")) for q in copy["questions"]}
        copies[key] = _Copy(key, copy["variant"], names.get(key, ""), questions,
                            {str(q["number"]): q["id"] for q in copy["questions"]})
    return document_id, copies


def _parts(question: dict[str, Any], points: float | None) -> dict[str, _Part]:
    parts = question["parts"]
    share = (points if points is not None else len(parts)) / max(1, len(parts))
    out = {}
    for entry in parts:
        try:
            rule = part_rule(entry)
            # (a choice part is all or nothing unless it says `credit: entries`)
            credit = part_credit({"credit": "all", **entry}) if part_kind(entry) == "choice" else part_credit(entry)
        except ValueError as e:
            raise GradeError(f"manifest: question '{question['id']}': {e}") from None
        if part_kind(entry) == "choice":
            options = tuple((str(c["letter"]).upper(), str(c.get("source", ""))) for c in entry.get("choices", ()))
            letters = frozenset(str(x).upper() for x in entry.get("letters", ()))
            out[entry["id"]] = _Part(entry["id"], rule, credit, float(entry.get("points", share)), {(): 0}, (), (),
                                     letters, options)
            continue
        values = dict(_flat(entry["value"]))
        known = tuple((str(m["name"]), dict(_flat(m["value"]))) for m in entry.get("misconceptions", ()))
        out[entry["id"]] = _Part(entry["id"], rule, credit, float(entry.get("points", share)), values,
                                 tuple(entry.get("shape", ())), known)
    return out


def _flat(value: Any, index: tuple[int, ...] = ()) -> list[tuple[tuple[int, ...], Any]]:
    if not isinstance(value, list):
        return [(index, value)]
    return [pair for k, item in enumerate(value, 1) for pair in _flat(item, index + (k,))]


def grade_rows(copies: dict[str, _Copy], text: str, file: str) -> list[str]:
    """Read the response rows into `copies`; returns the notes on unreadable responses.

    Raises:
        GradeError: a missing column, or rows naming no known student, question, part or entry, or
            repeating one: every such row, by line.
    """
    reader = csv.reader(io.StringIO(text))
    header = [cell.strip().lower() for cell in next(reader, [])]
    missing = [c for c in COLUMNS if c not in header]
    if missing:
        raise GradeError(f"{file}:1: missing column(s) {', '.join(missing)}; expected {', '.join(COLUMNS)}")
    at = {name: header.index(name) for name in (*COLUMNS, *(["document"] if "document" in header else []))}
    problems: list[str] = []
    notes: list[str] = []
    for row in reader:
        line = reader.line_num
        if not any(cell.strip() for cell in row):
            continue
        if len(row) < len(header):
            problems.append(f"{file}:{line}: expected {len(header)} cells, got {len(row)}")
            continue
        cell = {name: row[k].strip() for name, k in at.items()}
        copy = copies.get(cell["student"])
        if copy is None:
            problems.append(f"{file}:{line}: unknown student or copy {cell['student']!r}")
            continue
        qid = copy.numbers.get(cell["question"], cell["question"])
        if qid not in copy.questions:
            problems.append(f"{file}:{line}: question {cell['question']!r} is not in {cell['student']}'s copy")
            continue
        part = copy.questions[qid].get(cell["part"])
        if part is None:
            problems.append(f"{file}:{line}: question {qid} has no part {cell['part']!r}")
            continue
        match = _ENTRY.fullmatch(cell["entry"])
        index = tuple(int(k) for k in re.findall(r"\d+", match.group(1) or "")) if match else None
        if index is None or index not in part.entries:
            shape = "x".join(map(str, part.shape)) or "scalar"
            problems.append(f"{file}:{line}: part {qid}/{part.id} ({shape}) has no entry {cell['entry']!r}")
            continue
        key = (qid, part.id, index)
        if key in copy.responses:
            problems.append(f"{file}:{line}: repeats line {copy.responses[key][0]} "
                            f"({cell['student']}, {qid}, {part.id}, entry {cell['entry'] or '-'})")
            continue
        try:
            value: _Value = (parse_letters(cell["response"], part) if part.choice
                             else parse_response(cell["response"]))
        except ResponseError as e:
            notes.append(f"{file}:{line}: response {cell['response'][:40]!r} not read ({e}); scored 0")
            value = None
        copy.responses[key] = (line, value, cell["response"])
    if problems:
        raise GradeError(problems)
    return notes


_LETTERS = re.compile(r"[A-Za-z](?:\s*[,;\s]\s*[A-Za-z])*")


def parse_letters(text: str, part: _Part) -> frozenset[str]:
    """A choice part's response: a letter or several (`B`, `A,C`, `a c`; case and spaces ignored).

    Raises:
        ResponseError: no letters, anything else than letters and separators, or a letter that is
            not one of the part's options.
    """
    source = text.strip()
    shown = [letter for letter, _ in part.options]
    if not _LETTERS.fullmatch(source):
        raise ResponseError(f"expected letters of the options ({', '.join(shown)}), such as 'B' or 'A,C'")
    letters = frozenset(source.upper().replace(",", " ").replace(";", " ").split())
    unknown = sorted(letters - set(shown))
    if unknown:
        raise ResponseError(f"no option {', '.join(unknown)} (the options are {', '.join(shown)})")
    return letters


@dataclass(frozen=True, slots=True)
class _Marked:
    points: float
    full: bool
    wrong: tuple[tuple[tuple[int, ...], str], ...]
    misconception: str | None


def _mark(copy: _Copy, qid: str, part: _Part) -> _Marked:
    if part.choice:
        return _mark_choice(copy.responses.get((qid, part.id, ())), part)
    given = {index: copy.responses[(qid, part.id, index)]
             for index in part.entries if (qid, part.id, index) in copy.responses}
    right = 0
    wrong = []
    for index, key in part.entries.items():
        response = given.get(index)
        if response is not None and isinstance(response[1], (Fraction, float)) and accepts(part.rule, key, response[1]):
            right += 1
        elif response is not None:
            wrong.append((index, response[2]))
    total = len(part.entries)
    fraction = right / total if part.credit == "entries" else float(right == total)
    misconception = _misconception(part, given) if right < total and given else None
    return _Marked(part.points * fraction, right == total, tuple(wrong), misconception)


def _mark_choice(response: tuple[int, _Value, str] | None, part: _Part) -> _Marked:
    """All or nothing: exactly the right letters. With `credit: entries`, each right letter ticked
    earns its share and each wrong one takes a share away (never below 0). A wrong letter whose
    option is a misconception (its `source`) names it."""
    if response is None:
        return _Marked(0.0, False, (), None)
    letters = response[1] if isinstance(response[1], frozenset) else None
    if letters == part.letters:
        return _Marked(part.points, True, (), None)
    fraction = 0.0
    named = None
    if letters is not None:
        if part.credit == "entries" and part.letters:
            fraction = max(0.0, (len(letters & part.letters) - len(letters - part.letters)) / len(part.letters))
        sources = dict(part.options)
        names = [_MISCONCEPTION_NAMES[sources[x]] for x in sorted(letters - part.letters)
                 if sources.get(x) in _MISCONCEPTION_NAMES]
        named = ", ".join(dict.fromkeys(names)) or None
    return _Marked(part.points * fraction, False, (((), response[2].strip()),), named)


def _misconception(part: _Part, given: dict[tuple[int, ...], tuple[int, _Value, str]]) -> str | None:
    """The known mistake the given entries all match (and the key does not): manifest-listed ones
    first (e.g. a dropped inner derivative), then a sign flip and a transposed Jacobian."""
    candidates = list(part.misconceptions)
    candidates.append(("sign flip", {i: -v for i, v in part.entries.items()}))
    rank = len(part.shape)
    if rank and rank % 2 == 0 and part.shape[: rank // 2] == part.shape[rank // 2:]:
        half = rank // 2
        candidates.append(("transposed Jacobian", {i: part.entries[i[half:] + i[:half]] for i in part.entries}))
    for name, values in candidates:
        if all(values.get(i) == part.entries.get(i) for i in given):
            continue  # indistinguishable from the key where the student answered
        if all(isinstance(r[1], (Fraction, float)) and i in values and accepts(part.rule, values[i], r[1])
               for i, r in given.items()):
            return name
    return None


def _reports(copies: list[_Copy]) -> tuple[str, str, float, float]:
    """The score CSV, the summary CSV, the mean total and the largest possible total."""
    questions = list(dict.fromkeys(q for c in copies for q in c.questions))
    scores = io.StringIO()
    writer = csv.writer(scores, lineterminator="\n")
    writer.writerow(["student", "name", "variant", *questions, "total", "max"])
    summary: dict[tuple[str, str], dict[str, Any]] = {}
    totals = []
    maximum = 0.0
    for copy in copies:
        cells = []
        total = 0.0
        for qid in questions:
            if qid not in copy.questions:
                cells.append("")
                continue
            score = 0.0
            for part in copy.questions[qid].values():
                marked = _mark(copy, qid, part)
                score += marked.points
                item = summary.setdefault((qid, part.id), {"answered": 0, "full": 0, "points": 0.0, "max": 0.0,
                                                           "wrong": Counter(), "misconceptions": Counter()})
                item["answered"] += 1
                item["full"] += marked.full
                item["points"] += marked.points
                item["max"] += part.points
                item["wrong"].update(f"{copy.variant}{list(i) if i else ''}: {text}" for i, text in marked.wrong)
                if marked.misconception:
                    item["misconceptions"][marked.misconception] += 1
            cells.append(_points(score))
            total += score
        possible = sum(p.points for q in copy.questions.values() for p in q.values())
        maximum = max(maximum, possible)
        totals.append(total)
        writer.writerow([spreadsheet_safe(c) for c in (copy.key, copy.name, copy.variant, *cells, _points(total),
                                                         _points(possible))])
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["question", "part", "answered", "full_marks", "mean_points", "max_points", "common_wrong",
                     "misconceptions"])
    for (qid, part_id), item in summary.items():
        wrong = "; ".join(f"{value} (x{n})" for value, n in item["wrong"].most_common(_TOP_WRONG))
        named = "; ".join(f"{name} (x{n})" for name, n in item["misconceptions"].most_common())
        mean = item["points"] / item["answered"] if item["answered"] else 0.0
        part_max = _points(item["max"] / max(1, item["answered"]))
        writer.writerow([spreadsheet_safe(c) for c in (qid, part_id, item["answered"], item["full"], _points(mean),
                                                         part_max, wrong, named)])
    return scores.getvalue(), out.getvalue(), sum(totals) / max(1, len(totals)), maximum


def _points(value: float) -> str:
    """Points as text: `2`, `1.5`, `0.333` (three decimals at most)."""
    text = f"{value:.3f}".rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text

"""`list`: the bank at a glance: every question and the worksheets and exams that use it."""

from __future__ import annotations

from collections.abc import Sequence

from generator.spec.model import Bank, ExamEntry, QuestionSpec

__all__ = ["list_bank"]


def list_bank(bank: Bank) -> str:
    """A plain-text overview: a table of questions, then worksheets and exams with their questions."""
    users: dict[str, list[str]] = {q: [] for q in bank.questions}
    for sheet in bank.worksheets.values():
        for qid in dict.fromkeys(sheet.questions):
            users[qid].append(f"worksheet {sheet.id}")
    for exam in bank.exams.values():
        for entry in exam.entries:
            if entry.id is not None:
                users[entry.id].append(f"exam {exam.id}")
            else:
                for qid, question in bank.questions.items():
                    if entry.tag in question.tags:
                        users[qid].append(f"exam {exam.id} (tag {entry.tag})")
    rows = [("ID", "TITLE", "POINTS", "PARTS", "TAGS", "USED BY")]
    for qid in sorted(bank.questions):
        q = bank.questions[qid]
        parts = f"{len(q.parts)}: " + " ".join(p.id for p in q.parts)
        rows.append((qid, q.title, _points(q), parts, ", ".join(q.tags) or "-", "; ".join(users[qid]) or "-"))
    lines = [f"Questions ({len(bank.questions)}) in {bank.root}:", *_table(rows)]
    lines += ["", f"Worksheets ({len(bank.worksheets)}):"]
    for sheet in sorted(bank.worksheets.values(), key=lambda s: s.id):
        lines.append(f"  {sheet.id}  {sheet.title!r}  ({sheet.path})")
        lines.append(f"      {len(sheet.questions)} question{_s(len(sheet.questions))}: {', '.join(sheet.questions)}")
    lines += ["", f"Exams ({len(bank.exams)}):"]
    for exam in sorted(bank.exams.values(), key=lambda e: e.id):
        lines.append(f"  {exam.id}  {exam.title!r}  ({exam.path})")
        entries = [_entry(bank, e) for e in exam.entries]
        extras = ["order shuffled per variant" if exam.shuffle else "order as listed"]
        if exam.total is not None:
            extras.append(f"total {exam.total:g} points")
        lines.append(f"      {'; '.join(entries)}; {', '.join(extras)}")
    return "\n".join(lines) + "\n"


def _entry(bank: Bank, entry: ExamEntry) -> str:
    points = f" ({entry.points:g} points)" if entry.points is not None else ""
    if entry.id is not None:
        return f"{entry.id}{points}"
    have = sum(entry.tag in q.tags for q in bank.questions.values())
    short = "" if have >= entry.count else ", too few"
    return f"{entry.count} from tag {entry.tag} ({have} in the bank{short}){points}"


def _points(question: QuestionSpec) -> str:
    if question.points is not None:
        return f"{question.points:g}"
    if question.parts and all(p.points is not None for p in question.parts):
        return f"{sum(p.points or 0 for p in question.parts):g}"
    return "-"


def _s(n: int) -> str:
    return "" if n == 1 else "s"


def _table(rows: Sequence[Sequence[str]]) -> list[str]:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return ["  " + "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip() for row in rows]

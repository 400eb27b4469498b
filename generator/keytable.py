"""The grader's key table: one CSV row per answer part of every copy of every document.

Columns: document, variant, student_id, student_name (empty without a roster), number (the
question's position in that copy, after any shuffling), question (id), part (id), latex (the
exact form printed in the key), exact (plain text: nested lists of SymPy expressions such as
`1/2` or `exp(2)/(1 + exp(2))`), decimal (the same shape, 10 significant digits).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping, Sequence
from functools import lru_cache
from typing import Any

import numpy as np
import sympy

from generator.assemble import Plan
from generator.latex import latex_value
from generator.solve import Solution, plain_number

__all__ = ["COLUMNS", "answer_rows", "make_key_table"]

COLUMNS = ("document", "variant", "student_id", "student_name", "number", "question", "part", "latex", "exact", "decimal")


def _nested(array: np.ndarray, entry: Any) -> str:
    array = np.asarray(array, dtype=object)
    if array.ndim == 0:
        return str(entry(array[()]))
    return "[" + ", ".join(_nested(sub, entry) for sub in array) + "]"


def _exact(value: Any) -> str:
    return _exact_text(sympy.sympify(value))


def _decimal(value: Any) -> str:
    return _decimal_text(sympy.sympify(value))


# Cached: with a roster every student's rows repeat the entries of their variant.
@lru_cache(maxsize=1 << 16)
def _exact_text(value: sympy.Expr) -> str:
    return sympy.sstr(value)


@lru_cache(maxsize=1 << 16)
def _decimal_text(value: sympy.Expr) -> str:
    return f"{float(plain_number(value)):.10g}"  # the number manifest.json holds, to 10 digits


def answer_rows(solution: Solution) -> tuple[tuple[str, str, str, str], ...]:
    """Each part of a solved question as key-table cells: (part, latex, exact, decimal)."""
    return tuple(
        (answer.spec.id, latex_value(answer.value), _nested(answer.value, _exact), _nested(answer.value, _decimal))
        for answer in solution.parts
    )


def make_key_table(plan: Plan, answers: Mapping[tuple[int, str], Sequence[tuple[str, str, str, str]]]) -> str:
    """The CSV text (UTF-8, `\\n` line ends, a header row), copies in seat order.

    `answers` maps (variant index, question id) to that question's `answer_rows`.
    """
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(COLUMNS)
    for document in plan.documents:
        for seat in plan.seats:
            student_id, student_name = (seat.student.id, seat.student.name) if seat.student else ("", "")
            for slot in document.slots[seat.variant_index]:
                for part, latex, exact, decimal in answers[(seat.variant_index, slot.question)]:
                    writer.writerow((
                        document.id, seat.variant, student_id, student_name, slot.number, slot.question, part,
                        latex, exact, decimal,
                    ))
    return out.getvalue()

"""The grader's key table: one CSV row per answer part of every copy of every document.

Columns: document, variant, student_id, student_name (empty without a roster), number (the
question's position in that copy, after any shuffling), question (id), part (id), latex (the
exact form printed in the key), exact (plain text: nested lists of SymPy expressions such as
`1/2` or `exp(2)/(1 + exp(2))`), decimal (the same shape, 10 significant digits).

When some part of the build is answered rounded (`decimals: N` or `sigfigs: N`), three columns
follow: rule (`exact`, `decimals 2`, `sigfigs 3`), rounded (the rounded answer, as the key shows
it; empty for an exact part) and tolerance (`abs 0.01`, `rel 0.001`, both joined by `; `; empty
for an exact part). A grader accepts x when |x - exact| <= abs + rel * |exact|. Builds with only
exact parts leave the three columns out.
Why some cells start with `'`: a spreadsheet reads a cell that starts with `=`, `+`, `-`, `@`,
a tab or a carriage return as a formula, and a roster name such as `=HYPERLINK(...)` or
`+cmd|' /C calc'!A0` would then run on the grader's machine (CSV injection). As OWASP advises,
such a text cell is written with a single quote in front (`'=HYPERLINK(...)`), which the
spreadsheet shows as text. The answer cells are made by the tool's printers from numbers, never
from text anyone wrote, and a negative answer starts with `-` (`-1/2`, `-\frac{1}{2}`): they are
left as they are when they hold only characters those printers use (no quotes, `|`, `!`, `:`,
`;`, `@`, `"` or `=`...), and quoted like text otherwise. manifest.json keeps every text exactly.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping, Sequence
from functools import lru_cache
from typing import Any

import numpy as np
import sympy

from generator.answers.rounding import rounded_text, rule_label, tolerance_label
from generator.answers.solve import (
    FactoredForm,
    Solution,
    factored_form,
    plain_number,
    sympified,
)
from generator.outputs.spreadsheet import FORMULA_STARTS, spreadsheet_safe
from generator.render.latex import latex_answer, polynomial_in_e
from generator.spec.assemble import Plan

__all__ = ["CHOICE_COLUMNS", "COLUMNS", "RULE_COLUMNS", "answer_rows", "make_key_table", "spreadsheet_text"]

COLUMNS = (
    "document", "variant", "student_id", "student_name", "number", "question", "part", "latex", "exact", "decimal",
)
RULE_COLUMNS = ("rule", "rounded", "tolerance")
CHOICE_COLUMNS = ("letters", "options")  # only in a build with a choice part


_FORMULA_START = FORMULA_STARTS
# What SymPy's and our printers write into the latex, exact and decimal cells.
_PRINTED = frozenset("0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ +-*/^().,[]{}\\&_\n")


def spreadsheet_text(text: str) -> str:
    """A CSV cell a spreadsheet shows as text: `'` before a leading `=`, `+`, `-`, `@`, tab or CR
    (`generator.outputs.spreadsheet`, which the grader's CSVs use too)."""
    return spreadsheet_safe(text)


def _answer_cell(text: str) -> str:
    """An answer cell as printed, unless it could be read as a formula other than arithmetic."""
    if not text.startswith(_FORMULA_START) or (text[0] == "-" and _PRINTED.issuperset(text)):
        return text
    return spreadsheet_text(text)


def _nested(array: np.ndarray, entry: Any) -> str:
    array = np.asarray(array, dtype=object)
    if array.ndim == 0:
        return str(entry(array[()]))
    return _nested_list(array.tolist(), entry)  # (nested lists: cheaper to walk than numpy's views)


def _nested_list(items: list[Any], entry: Any) -> str:
    return "[" + ", ".join(
        _nested_list(item, entry) if isinstance(item, list) else str(entry(item)) for item in items
    ) + "]"


def _exact(value: Any) -> str:
    return _exact_text(sympified(value))


def _decimal(value: Any) -> str:
    return _decimal_text(sympified(value))


# Cached: with a roster every student's rows repeat the entries of their variant.
@lru_cache(maxsize=1 << 16)
def _exact_text(value: sympy.Expr) -> str:
    """SymPy's plain text of an exact value; a closed form in e is written from its factors, in
    descending powers of e as the latex column has it (sympify reads it back to the same value)."""
    form = factored_form(value)
    text = _factored_text(form) if form is not None else None
    return text if text is not None else sympy.sstr(value)


@lru_cache(maxsize=1 << 16)
def _decimal_text(value: sympy.Expr) -> str:
    number = plain_number(value)
    if isinstance(number, str):  # a formula: its text, as manifest.json holds it
        return number
    return f"{float(number):.10g}"  # the number manifest.json holds, to 10 digits


# SymPy's str printer orders terms by its sort keys and costs about a millisecond per closed form;
# writing the factors directly is exact and much cheaper (tests/test_keytable.py reads every
# such entry of the bank back with sympify).


def _factored_text(form: FactoredForm) -> str | None:
    """`-(2*E + 3)/(2*(E + 1)**2)`: sign, numerator, denominator; None for a negative coefficient
    inside (not a shape the solve stage makes)."""
    top, bottom = _product_text(*form.numerator), _product_text(*form.denominator)
    if top is None or bottom is None:
        return None
    if not _atomic(form.numerator, numerator=True):
        top = f"({top})"
    if not _atomic(form.denominator, numerator=False):
        bottom = f"({bottom})"
    return ("-" if form.sign < 0 else "") + f"{top}/{bottom}"


def _product_text(coefficient: int, factors: Sequence[tuple[tuple[int, ...], int]]) -> str | None:
    """`2*E**2*(E + 1)**3`: the coefficient (unless 1), then each factor."""
    if coefficient < 1:
        return None
    pieces = [str(coefficient)] if coefficient != 1 or not factors else []
    for coefficients, m in factors:
        if tuple(coefficients) == (1, 0) and m > 1:
            pieces.append(f"exp({m})")  # e^m, as SymPy writes it
            continue
        polynomial = _polynomial_text(coefficients)
        several = len(factors) > 1 or coefficient != 1
        if _terms(coefficients) > 1 and (m > 1 or several):
            polynomial = f"({polynomial})"
        pieces.append(polynomial if m == 1 else f"{polynomial}**{m}")
    return "*".join(pieces)


def _polynomial_text(coefficients: Sequence[int]) -> str:
    """`exp(2) - 4*E + 1`: highest power of e first; e^k is exp(k), as SymPy writes it."""
    return polynomial_in_e(coefficients, lambda k: "E" if k == 1 else f"exp({k})", "*")


def _terms(coefficients: Sequence[int]) -> int:
    return sum(1 for c in coefficients if c)


def _atomic(product: tuple[int, tuple[tuple[tuple[int, ...], int], ...]], *, numerator: bool) -> bool:
    """Whether a numerator (before `/`) or a denominator (after it) needs no parentheses: a
    product is fine before `/` but not after it; a lone sum is fine in neither place."""
    coefficient, factors = product
    if not factors:
        return True
    lone = coefficient == 1 and len(factors) == 1
    if lone and factors[0][1] == 1 and _terms(factors[0][0]) > 1:
        return False  # a sum
    return numerator or (lone and (factors[0][1] > 1 or _terms(factors[0][0]) == 1))


def answer_rows(solution: Solution, latex: Sequence[str] | None = None) -> tuple[tuple[str, ...], ...]:
    """Each part of a solved question as key-table cells: (part, latex, exact, decimal, rule, rounded, tolerance).

    The latex cell is the part's `latex_answer`, as the key prints it (`latex`: each part's, when
    the caller has them already)."""
    latex = latex if latex is not None else [latex_answer(answer) for answer in solution.parts]
    rows = []
    for answer, text in zip(solution.parts, latex, strict=True):
        rule = answer.spec.rule
        if answer.choice is not None:
            rows.append(_choice_row(answer, text))
            continue
        shown = _nested(answer.value, lambda v, r=rule: rounded_text(v, r.kind, r.digits)) if rule.rounded else ""
        rows.append((answer.spec.id, text, _nested(answer.value, _exact), _nested(answer.value, _decimal),
                     rule_label(rule), shown, tolerance_label(rule)))
    return tuple(rows)


def _choice_row(answer: Any, text: str) -> tuple[str, ...]:
    """A choice part's cells: latex holds the letters as the key prints them, exact and decimal
    the answer of its `of` (empty without one), then the letters (`B;D`) and every option as
    shown (`(A) 3; (B) -3; (C) none of these`)."""
    value = answer.value
    exact, decimal = (_nested(value, _exact), _nested(value, _decimal)) if value.size else ("", "")
    options = "; ".join(
        f"({o.letter}) {o.text if o.value is None else _nested(o.value, _exact)}" for o in answer.choice.options
    )
    return (answer.spec.id, text, exact, decimal, "exact", "", "", ";".join(answer.choice.letters), options)


def make_key_table(plan: Plan, answers: Mapping[tuple[int, str], Sequence[tuple[str, ...]]]) -> str:
    """The CSV text (UTF-8, `\\n` line ends, a header row), copies in seat order.

    `answers` maps (variant index, question id) to that question's `answer_rows`.
    """
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    rules = any(len(row) > 4 and row[4] != "exact" for rows in answers.values() for row in rows)
    choices = any(len(row) > 7 for rows in answers.values() for row in rows)
    writer.writerow(COLUMNS + (RULE_COLUMNS if rules else ()) + (CHOICE_COLUMNS if choices else ()))
    for document in plan.documents:
        for seat in plan.seats:
            student_id, student_name = (seat.student.id, seat.student.name) if seat.student else ("", "")
            for slot in document.slots[seat.variant_index]:
                for row in answers[(seat.variant_index, slot.question)]:
                    part, latex, exact, decimal = row[:4]
                    writer.writerow((
                        *map(spreadsheet_text, (document.id, seat.variant, student_id, student_name)), slot.number,
                        spreadsheet_text(slot.question), spreadsheet_text(part),
                        _answer_cell(latex), _answer_cell(exact), _answer_cell(decimal),
                        *(map(_answer_cell, row[4:7]) if rules else ()),
                        *(map(spreadsheet_text, row[7:9] if len(row) > 7 else ("", "")) if choices else ()),
                    ))
    return out.getvalue()

"""The one place where values and text become LaTeX.

Values (exact SymPy numbers in numpy object arrays) go through `sympy.latex`; plain text
(titles, course names, student names) goes through `escape_text`. Templates reach both only
through the filters registered in `generator.render.documents`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import lru_cache
from typing import Any

import numpy as np
import sympy

from generator.answers.floats import exact_float
from generator.answers.rounding import rounded_text
from generator.spec.printable import CJK_FONT, escape_text, unprintable_characters

__all__ = [
    "CJK_FONT",
    "DEFAULT_INDEX_NAMES",
    "choice_option_latex",
    "escape_text",
    "latex_answer",
    "latex_approx",
    "latex_decimals",
    "latex_formula",
    "latex_matrix",
    "latex_scalar",
    "latex_sigfigs",
    "latex_tensor",
    "latex_term",
    "latex_value",
    "polynomial_in_e",
    "unprintable_characters",
]

DEFAULT_INDEX_NAMES = ("i", "j", "k", "l")

_E = sympy.Symbol("e", positive=True)


def latex_scalar(value: Any) -> str:
    """An exact scalar as LaTeX, e.g. `\\frac{1}{2}` or `\\frac{e^{2}}{e^{2} + 1}`.

    Powers of e are printed as powers of a symbol e, so that polynomials in e come out in
    descending powers (e^{4} - e^{3} + 1) instead of SymPy's order for numbers.
    """
    # A string must never reach sympify, which would eval it (templates can pass any text here).
    if isinstance(value, str):
        raise TypeError(f"expected a number, got text {value!r} (use the tex filter for text)")
    return _latex_of(value if isinstance(value, sympy.Basic) else sympy.sympify(value, strict=True))


@lru_cache(maxsize=1 << 16)
def _latex_of(value: sympy.Expr) -> str:
    """Cached: a class set prints the same numbers (0, 1, e/(1 + e)^2, ...) thousands of times."""
    from generator.answers.solve import (
        factored_form,  # here: rosters and documents use this module without SymPy work
    )

    form = factored_form(value)
    fast = _latex_factored(form) if form is not None else None
    return fast if fast is not None else _latex_by_sympy(value)


def _latex_by_sympy(value: sympy.Expr) -> str:
    if value.has(sympy.exp, sympy.E):
        powers = value.atoms(sympy.exp)
        if all(p.args[0].is_Number for p in powers):  # the usual case; xreplace is much faster than replace
            value = value.xreplace({**{p: _E ** p.args[0] for p in powers}, sympy.E: _E})
        else:
            value = value.replace(sympy.exp, lambda a: _E**a).xreplace({sympy.E: _E})
    return sympy.latex(value)


# Closed forms in the solve stage's canonical shape (a fraction of square-free products of
# polynomials in e, `solve.factored_form`) print from their factors, without SymPy's general
# printer (most of the time a key's Python side spent printing). The
# output is SymPy's, character for character: tests/test_latex_fast.py compares the two on every
# such value of the bank and on random ones. Shapes whose factor order SymPy decides by its sort
# keys (two sums multiplied) are left to SymPy.


def _latex_factored(form: Any) -> str | None:
    top, bottom = _latex_product(*form.numerator), _latex_product(*form.denominator)
    if top is None or bottom is None:
        return None
    text = rf"\frac{{{top}}}{{{bottom}}}"
    return "- " + text if form.sign < 0 else text


def _latex_product(coefficient: int, factors: Sequence[tuple[tuple[int, ...], int]]) -> str | None:
    r"""`2 e^{2} \left(e + 1\right)^{3}`: the coefficient, then e's power, then the sum."""
    if not factors:
        return str(coefficient)
    monomials = [m for coefficients, m in factors if coefficients == (1, 0)]
    sums = [(coefficients, m) for coefficients, m in factors if coefficients != (1, 0)]
    if len(sums) > 1 or coefficient < 1 or any(coefficients[0] < 1 for coefficients, _ in sums):
        return None  # SymPy decides these (they do not come out of the solve stage's square-free factors)
    pieces = [f"e^{{{m}}}" if m > 1 else "e" for m in monomials]
    for coefficients, m in sums:
        polynomial = _latex_polynomial(coefficients)
        alone = not monomials and coefficient == 1 and m == 1
        pieces.append(polynomial if alone else rf"\left({polynomial}\right)" + (f"^{{{m}}}" if m > 1 else ""))
    if coefficient != 1:
        pieces.insert(0, str(coefficient))
    return " ".join(pieces)


def _latex_polynomial(coefficients: Sequence[int]) -> str:
    """`e^{2} - 3 e + 1`: highest power first, as SymPy prints a polynomial in the symbol e."""
    return polynomial_in_e(coefficients, lambda k: "e" if k == 1 else f"e^{{{k}}}", " ")


def polynomial_in_e(coefficients: Sequence[int], power: Callable[[int], str], times: str) -> str:
    """A polynomial in e from its integer coefficients, highest power first: `power(k)` writes
    e^k (k >= 1) and `times` joins a coefficient to it (`e^{2} - 3 e + 1` in LaTeX, `exp(2) -
    3*E + 1` as answers.csv writes it)."""
    degree = len(coefficients) - 1
    text = ""
    for k, c in enumerate(coefficients):
        if not c:
            continue
        body = power(degree - k) if degree - k else ""
        term = str(abs(c)) if not body else body if abs(c) == 1 else f"{abs(c)}{times}{body}"
        if not text:
            text = f"-{term}" if c < 0 else term
        else:
            text += f" - {term}" if c < 0 else f" + {term}"
    return text


def latex_matrix(array: np.ndarray, env: str = "bmatrix") -> str:
    """A vector (as a column) or a matrix, in a LaTeX matrix environment."""
    array = np.asarray(array, dtype=object)
    if array.ndim == 1:
        array = array.reshape(-1, 1)
    cells = [[latex_scalar(v) for v in row] for row in array]
    separator = r" \\ "
    if any(r"\frac" in cell for row in cells for cell in row):
        # Closed forms such as e^2/(e^2 + 1)^3 are unreadable at script size inside a matrix.
        cells = [[cell.replace(r"\frac", r"\dfrac") for cell in row] for row in cells]
        separator = r" \\[1ex] "
    rows = [" & ".join(row) for row in cells]
    return f"\\begin{{{env}}}" + separator.join(rows) + f"\\end{{{env}}}"


def latex_tensor(array: np.ndarray, names: Sequence[str] = DEFAULT_INDEX_NAMES, per_row: int | None = None) -> str:
    """An order-3 or order-4 tensor as labelled matrix blocks (math mode).

    Order 3, shape (p, q, r): p blocks, block a is the q x r matrix T[a, :, :], labelled `i = a+1`.
    Order 4, shape (p, q, r, s): p*q blocks, block (a, b) is T[a, b, :, :], labelled `i = a+1, j = b+1`;
    each row of the layout holds the blocks of one a. Indices in labels count from 1, as in the sheet.
    """
    array = np.asarray(array, dtype=object)
    lead = array.ndim - 2
    blocks = []
    for index in np.ndindex(array.shape[:lead]):
        label = ",\\ ".join(f"{names[n]}={i + 1}" for n, i in enumerate(index))
        blocks.append((index, f"\\underset{{{label}}}{{{latex_matrix(array[index])}}}"))
    if per_row is None:
        per_row = array.shape[1] if lead == 2 else max(1, min(len(blocks), 24 // (array.shape[-1] * 2 + 2) or 1))
    rows = [blocks[i : i + per_row] for i in range(0, len(blocks), per_row)]
    body = r" \\[1ex] ".join(r" \quad ".join(text for _, text in row) for row in rows)
    return r"\begin{array}{c}" + body + r"\end{array}"


def latex_approx(value: Any, digits: int = 4) -> str:
    """Decimal approximations (`digits` significant digits) of an exact scalar, vector or matrix.

    For reading exact closed forms such as e^2/(1 + e^2) at a glance; never a substitute for them.
    """
    def number(v: Any) -> str:
        x = exact_float(v)  # 13 digits or more; 4 are shown
        text = f"{x:.{digits}g}"
        if "e" in text:
            mantissa, exponent = text.split("e")
            text = rf"{mantissa} \cdot 10^{{{int(exponent)}}}"
        return "0" if text in ("-0", "0") else text

    return _entrywise(value, number, "approx")


def _entrywise(value: Any, number: Callable[[Any], str], what: str) -> str:
    """A scalar, or a vector (as a column) or matrix of `number(entry)` in a bmatrix."""
    array = np.asarray(value, dtype=object)
    if array.ndim == 0:
        return number(array[()])
    if array.ndim == 1:
        array = array.reshape(-1, 1)
    if array.ndim != 2:
        raise ValueError(f"{what} shows scalars, vectors and matrices, got order {array.ndim}")
    rows = [" & ".join(number(v) for v in row) for row in array]
    return r"\begin{bmatrix}" + r" \\ ".join(rows) + r"\end{bmatrix}"


def latex_decimals(value: Any, places: int = 2) -> str:
    """An exact value rounded to `places` decimal places, zeros kept: `0.50`, `-1.25` (halves away from zero)."""
    return _entrywise(value, lambda v: rounded_text(v, "decimals", places), "decimals")


def latex_sigfigs(value: Any, digits: int = 3) -> str:
    """An exact value rounded to `digits` significant digits, zeros kept: `0.500`, `1.23`, `1200`.

    (`approx` also gives significant digits, 4 by default, but drops trailing zeros: 0.5.)"""
    def number(v: Any) -> str:
        text = rounded_text(v, "sigfigs", digits)
        return text
    return _entrywise(value, number, "sigfigs")


_ORDERS = {"descending": None, "ascending": "rev-lex", "none": "none"}


def latex_formula(value: Any, order: str = "descending") -> str:
    """A formula (or any exact value) as SymPy prints it, sign-correct (`- 3 x_{1} x_{2}`), its terms
    in `order`: `descending` powers (the default, as `latex` prints), `ascending`, or `none` (SymPy's own)."""
    if order not in _ORDERS:
        raise ValueError(f"formula order must be one of {', '.join(_ORDERS)}, got {order!r}")
    if order == "descending":
        return latex_value(value)

    def one(v: Any) -> str:
        expr = v if isinstance(v, sympy.Basic) else sympy.sympify(v, strict=True)
        return sympy.latex(expr, order=_ORDERS[order])
    return _entrywise(value, one, "formula")


def latex_term(value: Any, tex: str = "", first: bool = False) -> str:
    """A coefficient as a signed term of a formula written by hand: `+ 3 x`, `- x`, `+ \frac{1}{2} x`,
    nothing for 0; `first` leaves out a leading `+`. For `x^2 << b | term("x") >> << c | term >>`."""
    array = np.asarray(value, dtype=object)
    if array.ndim != 0:
        raise ValueError("term needs a single number")
    number = array[()]
    number = number if isinstance(number, sympy.Basic) else sympy.sympify(number, strict=True)
    if number == 0:
        return ""
    negative = bool(number.could_extract_minus_sign())
    size = -number if negative else number
    body = latex_scalar(size)
    if tex:
        body = tex if size == 1 else f"{body} {tex}"
    if negative:
        return f"- {body}" if not first else f"-{body}"
    return body if first else f"+ {body}"


def latex_value(value: Any, names: Sequence[str] = DEFAULT_INDEX_NAMES) -> str:
    """Any exact value by its order: scalar, column vector, matrix, or labelled blocks (order 3-4)."""
    array = np.asarray(value, dtype=object)
    if array.ndim == 0:
        return latex_scalar(array[()])
    if array.ndim <= 2:
        return latex_matrix(array)
    if array.ndim <= 4:
        return latex_tensor(array, names)
    raise ValueError(f"cannot lay out a tensor of order {array.ndim} (at most 4)")


def choice_option_latex(option: Any) -> str:
    """One option of a choice part (a `solve.ChoiceOptionAnswer`) as the sheet shows it: its value
    in math mode, or its text as written. manifest.json holds this text too."""
    return option.text or "" if option.value is None else f"${latex_value(option.value)}$"


def latex_answer(answer: Any) -> str:
    """A part's exact answer (a `solve.PartAnswer`) as the key prints it: tensor blocks labelled
    with the names of the part's index form. manifest.json and answers.csv hold this text too.
    A choice part's answer is its correct letters, `(B), (D)`."""
    if getattr(answer, "choice", None) is not None:
        return ", ".join(f"({letter})" for letter in answer.choice.letters)
    return latex_value(answer.value, answer.index_form.index_names if answer.index_form else DEFAULT_INDEX_NAMES)

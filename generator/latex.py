"""The one place where values and text become LaTeX.

Values (exact SymPy numbers in numpy object arrays) go through `sympy.latex`; plain text
(titles, course names, student names) goes through `escape_text`. Templates reach both only
through the filters registered in `generator.render`.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import sympy

__all__ = ["escape_text", "latex_value", "latex_scalar", "latex_matrix", "latex_tensor", "DEFAULT_INDEX_NAMES"]

_TEXT_SPECIALS = {
    "\\": r"\textbackslash{}",
    "&": r"\&",
    "%": r"\%",
    "$": r"\$",
    "#": r"\#",
    "_": r"\_",
    "{": r"\{",
    "}": r"\}",
    "~": r"\textasciitilde{}",
    "^": r"\textasciicircum{}",
    # Straight quotes and dashes would otherwise be turned into typographic ligatures.
    "'": r"\textquotesingle{}",
    "`": r"\textasciigrave{}",
    "<": r"\textless{}",
    ">": r"\textgreater{}",
    "|": r"\textbar{}",
    "-": "-{}",
    "\n": " ",
    "\r": " ",
    "\t": " ",
}

DEFAULT_INDEX_NAMES = ("i", "j", "k", "l")


def escape_text(text: Any) -> str:
    """Make arbitrary text print literally in LaTeX text mode (non-ASCII passes through as UTF-8)."""
    return "".join(_TEXT_SPECIALS.get(ch, ch) for ch in str(text))


def latex_scalar(value: Any) -> str:
    """An exact scalar as LaTeX, e.g. `\\frac{1}{2}` or `\\frac{e^{2}}{1 + e^{2}}`."""
    # A string must never reach sympify, which would eval it (templates can pass any text here).
    if isinstance(value, str):
        raise TypeError(f"expected a number, got text {value!r} (use the tex filter for text)")
    return sympy.latex(sympy.sympify(value, strict=True))


def latex_matrix(array: np.ndarray, env: str = "bmatrix") -> str:
    """A vector (as a column) or a matrix, in a LaTeX matrix environment."""
    array = np.asarray(array, dtype=object)
    if array.ndim == 1:
        array = array.reshape(-1, 1)
    rows = [" & ".join(latex_scalar(v) for v in row) for row in array]
    return f"\\begin{{{env}}}" + r" \\ ".join(rows) + f"\\end{{{env}}}"


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

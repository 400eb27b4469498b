"""CSV cells that a spreadsheet shows as text, never runs as a formula.

Excel, LibreOffice and Google Sheets read a cell that starts with `=`, `+`, `-` or `@` as a
formula (and a leading tab or carriage return can hide such a start); a student name or a
response such as `=HYPERLINK(...)` in a CSV we write would then run when a teacher opens it
(CSV injection). Such a cell gets a leading apostrophe, which the spreadsheets hide and which
keeps the rest as typed.
"""

from __future__ import annotations

__all__ = ["FORMULA_STARTS", "spreadsheet_safe"]

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def spreadsheet_safe(cell: object) -> str:
    """The cell as text, with a leading `'` when it would start a formula.

    Numbers are written as they are (a negative number is left to the caller: our score files hold
    none); text such as `-0.5` or `=1+1` becomes `'-0.5`, `'=1+1`.
    """
    if isinstance(cell, bool):
        return str(cell)
    if isinstance(cell, (int, float)):
        return repr(cell) if isinstance(cell, float) else str(cell)
    text = "" if cell is None else str(cell)
    return "'" + text if text.startswith(FORMULA_STARTS) else text

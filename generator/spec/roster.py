"""Rosters: a CSV list of students, each of whom gets personalized documents.

The file is UTF-8 (a byte-order mark, as Excel writes it, is allowed) with a header row naming
the columns `name` and `id` (any case; other columns are ignored). Rows are numbered as a
spreadsheet shows them: the header is row 1, the first student row 2. Names and ids keep every
character as written (only surrounding spaces go); they are printed literally through
`printable.escape_text`. Every bad row is reported, each with its row number, before the build stops.
"""

from __future__ import annotations

import csv
import hashlib
import io
from dataclasses import dataclass
from pathlib import Path

from generator.errors import RosterError, display_path
from generator.spec.printable import unprintable_characters
from generator.spec.yamlload import read_regular_file

MAX_ROSTER_BYTES = 16 << 20  # about 100,000 students

__all__ = ["Student", "Roster", "load_roster", "REQUIRED_COLUMNS"]

REQUIRED_COLUMNS = ("name", "id")


@dataclass(frozen=True, slots=True)
class Student:
    """One roster row: the name and id exactly as written, and its spreadsheet row number."""

    name: str
    id: str
    row: int


@dataclass(frozen=True, slots=True)
class Roster:
    """A validated roster, students in file order."""

    file: str
    students: tuple[Student, ...]
    sha256: str


def load_roster(path: str | Path) -> Roster:
    """Read and validate a roster CSV file.

    Raises:
        RosterError: the file cannot be read or decoded, a column is missing, or rows are bad
            (missing id, duplicate id, empty name, characters TeX cannot print); one line per
            problem, each `file: row N: what`.
    """
    shown = display_path(path)
    try:
        data = read_regular_file(path, MAX_ROSTER_BYTES, "roster")
    except OSError as e:
        raise RosterError(str(e)) from None
    text = _decode(data, shown)
    rows = _rows(text, shown)
    if not rows:
        raise RosterError(f"{shown}: empty file; expected a header row with columns name and id")
    columns = _columns(rows[0][1], shown)
    problems: list[str] = []
    students: list[Student] = []
    first_row: dict[str, int] = {}
    for number, cells in rows[1:]:
        if not any(cell.strip() for cell in cells):
            continue  # spreadsheets export trailing blank rows as ",,"
        name, sid = (cells[columns[c]].strip() if columns[c] < len(cells) else "" for c in REQUIRED_COLUMNS)
        where = f"{shown}: row {number}"
        if not sid:
            problems.append(f"{where}: missing id" + (f" for {name!r}" if name else ""))
        elif sid in first_row:
            problems.append(f"{where}: duplicate id {sid!r} (also in row {first_row[sid]})")
        else:
            first_row[sid] = number
        if not name:
            problems.append(f"{where}: empty name" + (f" (id {sid!r})" if sid else ""))
        for column, value in (("name", name), ("id", sid)):
            bad = unprintable_characters(value)
            if bad:
                listed = ", ".join(f"{ch!r} (U+{ord(ch):04X})" for ch in bad)
                problems.append(f"{where}: {column} {value!r} has characters the LaTeX fonts cannot print: {listed}")
        students.append(Student(name, sid, number))
    if problems:
        raise RosterError("\n".join(problems))
    if not students:
        raise RosterError(f"{shown}: no students (the file has a header row only)")
    return Roster(shown, tuple(students), hashlib.sha256(data).hexdigest())


def _decode(data: bytes, shown: str) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        good = data[: e.start].decode("utf-8-sig")
        row = len(_rows(good, shown)) if good and not good.endswith("\n") else len(_rows(good, shown)) + 1
        raise RosterError(
            f"{shown}: row {row}: not UTF-8 text (byte 0x{data[e.start]:02X} at offset {e.start}); "
            "save the roster as UTF-8 (in a spreadsheet: CSV UTF-8)"
        ) from None


def _rows(text: str, shown: str) -> list[tuple[int, list[str]]]:
    """Each CSV record with the spreadsheet row number it starts on."""
    reader = csv.reader(io.StringIO(text, newline=""))
    rows = []
    number = 0
    try:
        for cells in reader:
            number += 1
            rows.append((number, cells))
    except csv.Error as e:
        raise RosterError(f"{shown}: row {number + 1}: not valid CSV ({e})") from None
    return rows


def _columns(header: list[str], shown: str) -> dict[str, int]:
    names = [cell.strip().lower() for cell in header]
    found: dict[str, int] = {}
    problems = []
    for column in REQUIRED_COLUMNS:
        positions = [i for i, n in enumerate(names) if n == column]
        if len(positions) > 1:
            problems.append(f"{shown}: row 1: column '{column}' appears {len(positions)} times")
        elif not positions:
            have = ", ".join(repr(h) for h in header) or "none"
            hint = "; the columns must be separated by commas" if len(header) == 1 and ";" in header[0] else ""
            problems.append(f"{shown}: row 1: missing column '{column}' (columns found: {have}){hint}")
        else:
            found[column] = positions[0]
    if problems:
        raise RosterError("\n".join(problems))
    return found

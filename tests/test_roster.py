"""Roster CSV parsing: good files, and every bad row reported with its row number."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from generator.errors import RosterError
from generator.spec.roster import Student, load_roster


def roster(tmp_path: Path, content: str | bytes) -> Path:
    path = tmp_path / "roster.csv"
    path.write_bytes(content.encode("utf-8") if isinstance(content, str) else content)
    return path


def test_roster_keeps_names_and_ids_exactly_with_spreadsheet_row_numbers(tmp_path):
    path = roster(tmp_path, "Name,ID,email\nZoë Müller,s-001,z@example.org\n\nO'Brien & Søn,#3 {x}_~^\\,\n")
    assert load_roster(path).students == (
        Student("Zoë Müller", "s-001", 2),
        Student("O'Brien & Søn", "#3 {x}_~^\\", 4),
    )


def test_roster_accepts_a_byte_order_mark_and_skips_blank_rows(tmp_path):
    path = roster(tmp_path, "\ufeffid,name\n1,Ada\n,,\n2,Bob\n")
    assert [(s.id, s.name, s.row) for s in load_roster(path).students] == [("1", "Ada", 2), ("2", "Bob", 4)]


def test_roster_fields_may_hold_commas_and_line_breaks_when_quoted(tmp_path):
    path = roster(tmp_path, 'name,id\n"Smith, Jane",1\n"Multi\nLine",2\nBob,3\n')
    assert [(s.name, s.row) for s in load_roster(path).students] == [("Smith, Jane", 2), ("Multi\nLine", 3), ("Bob", 4)]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("name,id\nAda,\n", "row 2: missing id for 'Ada'"),
        ("name,id\nAda,1\nBob,2\nCy,1\n", "row 4: duplicate id '1' (also in row 2)"),
        ("name,id\n ,7\n", "row 2: empty name (id '7')"),
        ("name,id\nAda\n", "row 2: missing id for 'Ada'"),
        ("name,email\nAda,a@b\n", "row 1: missing column 'id' (columns found: 'name', 'email')"),
        ("name,id\n", "no students (the file has a header row only)"),
        ("", "empty file; expected a header row with columns name and id"),
        ("name,id,Name\nAda,1,Ada\n", "row 1: column 'name' appears 2 times"),
        (b"name,id\nAda,1\nZo\xeb,2\n",
         "row 3: not UTF-8 text (byte 0xEB at offset 16); save the roster as UTF-8 (in a spreadsheet: CSV UTF-8)"),
    ],
)
def test_bad_roster_gives_file_and_row(tmp_path, content, message):
    path = roster(tmp_path, content)
    with pytest.raises(RosterError) as error:
        load_roster(path)
    assert str(error.value) == f"{path}: {message}"


def test_every_bad_row_is_reported_at_once(tmp_path):
    path = roster(tmp_path, "name,id\nAda,1\n,2\nBob,\nCy,1\n")
    with pytest.raises(RosterError) as error:
        load_roster(path)
    assert str(error.value).splitlines() == [
        f"{path}: row 3: empty name (id '2')",
        f"{path}: row 4: missing id for 'Bob'",
        f"{path}: row 5: duplicate id '1' (also in row 2)",
    ]


def test_semicolon_separated_roster_gets_a_hint(tmp_path):
    path = roster(tmp_path, "name;id\nAda;1\n")
    with pytest.raises(RosterError) as error:
        load_roster(path)
    assert str(error.value).splitlines()[1] == (
        f"{path}: row 1: missing column 'id' (columns found: 'name;id'); the columns must be separated by commas"
    )


def test_missing_roster_file(tmp_path):
    with pytest.raises(RosterError) as error:
        load_roster(tmp_path / "nope.csv")
    assert str(error.value) == f"{tmp_path / 'nope.csv'}: no such file"


@pytest.mark.skipif(shutil.which("kpsewhich") is None, reason="needs TeX (kpsewhich) to know which characters it can print")
def test_characters_the_fonts_cannot_print_are_reported_before_compiling(tmp_path):
    path = roster(tmp_path, "name,id\nДмитрий,1\n")
    with pytest.raises(RosterError) as error:
        load_roster(path)
    assert str(error.value) == (
        f"{path}: row 2: name 'Дмитрий' has characters the LaTeX fonts cannot print: "
        "'Д' (U+0414), 'м' (U+043C), 'и' (U+0438), 'т' (U+0442), 'р' (U+0440), 'й' (U+0439)"
    )

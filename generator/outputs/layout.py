"""Where a build puts each file (documented in docs/output.md); one place, so readers agree.

    <out>/manifest.json
    <out>/answers.csv
    <out>/<document>/<copy>/<kind>.tex and .pdf      copy: A, B, ... or 001-<student id>, ...
    <out>/<document>/combined-<kind>.pdf             every copy in order, for printing
"""

from __future__ import annotations

__all__ = ["MANIFEST", "KEY_TABLE", "copy_file", "combined_file"]

MANIFEST = "manifest.json"
KEY_TABLE = "answers.csv"


def copy_file(document: str, folder: str, kind: str, suffix: str) -> str:
    """`nn-derivatives/A/sheet.tex`: one document kind of one copy (variant or student)."""
    return f"{document}/{folder}/{kind}{suffix}"


def combined_file(document: str, kind: str) -> str:
    """`nn-derivatives/combined-sheet.pdf`: every copy of one document kind, in order."""
    return f"{document}/combined-{kind}.pdf"

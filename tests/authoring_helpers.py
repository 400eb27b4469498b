"""Helpers for the authoring tests (check, preview, errors, security): a small valid question
and a bank built from YAML snippets. Not a test module."""

from __future__ import annotations

import textwrap
from pathlib import Path

from conftest import write

__all__ = ["QUESTION", "WORKSHEET", "write", "make_bank", "question"]

# A small valid question. Line numbers matter to tests that edit it: keep its layout.
QUESTION = """\
id: q
title: Q
dimensions:
  d: [2, 3]
parameters:
  x: {shape: [d], entries: [-3, 3], exclude: [0]}
  W: {shape: [2, d], entries: [-2, 2]}
constraints:
  - nonzero_rows(W)
define:
  u: W @ x
parts:
  - id: du_dx
    of: u
    wrt: x
    prompt: |
      $\\dfrac{\\partial u}{\\partial x}$
stem: |
  Let $u = W x$ with
  \\[ W = << W | latex >>,\\quad x = << x | latex >>. \\]
"""

WORKSHEET = """\
id: sheet
title: Sheet
questions: [{ids}]
"""


def make_bank(root: Path, questions: dict[str, str], sheet: bool = True) -> Path:
    """A bank at `root` with `questions` (file stem -> YAML) and one worksheet listing them all."""
    for stem, text in questions.items():
        write(root / "questions" / f"{stem}.yaml", text)
    (root / "worksheets").mkdir(parents=True, exist_ok=True)
    if sheet:
        ids = ", ".join(_id_of(text) for text in questions.values())
        write(root / "worksheets" / "sheet.yaml", WORKSHEET.format(ids=ids))
    return root


def _id_of(text: str) -> str:
    for line in textwrap.dedent(text).splitlines():
        if line.startswith("id:"):
            return line.split(":", 1)[1].strip()
    raise ValueError("question text without an id line")


def question(**replace: str) -> str:
    """`QUESTION` with whole lines replaced: `question(**{"title: Q": "titel: Q"})`."""
    text = QUESTION
    for old, new in replace.items():
        assert old in text, old
        text = text.replace(old, new)
    return text

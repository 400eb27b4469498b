"""The bank's worksheets as documents: golden .tex at a fixed seed, and real PDFs read back.

Golden files live in tests/golden/ and are compared byte for byte (the repository's path written <ROOT>,
conftest.root_relative). After an intended change to the bank, the templates or the LaTeX output,
regenerate them and review the diff:

    UPDATE_GOLDEN=1 python -m pytest tests/test_bank_documents.py
    git diff tests/golden/
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from conftest import BANK, needs_tex, root_relative

from generator.build import BuildOptions, build

GOLDEN = Path(__file__).resolve().parent / "golden"
SEED = 42
SHEETS = ("nn-derivatives", "nn-backprop")
DOCUMENTS = [f"{sheet}-{kind}.tex" for sheet in SHEETS for kind in ("sheet", "key", "solutions")]


def document(folder: Path, sheet: str, kind: str, suffix: str = "tex") -> Path:
    """Where a build puts variant A's document of one kind (see docs/output.md)."""
    return folder / sheet / "A" / f"{kind}.{suffix}"


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("golden") / f"seed-{SEED}"
    build(BuildOptions(seed=SEED, bank=BANK, out=out, pdf=False))
    return out


@pytest.mark.parametrize("name", DOCUMENTS)
def test_document_matches_golden(built: Path, name: str) -> None:
    sheet, kind = name[: -len(".tex")].rsplit("-", 1)
    text = root_relative(document(built, sheet, kind).read_text(encoding="utf-8"))
    golden = GOLDEN / name
    if os.environ.get("UPDATE_GOLDEN") == "1":
        golden.parent.mkdir(exist_ok=True)
        golden.write_text(text, encoding="utf-8")
    assert golden.exists(), f"no golden file {golden}; run UPDATE_GOLDEN=1 python -m pytest {__file__}"
    assert text == golden.read_text(encoding="utf-8"), f"{name} differs from {golden} (UPDATE_GOLDEN=1 to accept)"


def test_sheets_show_no_answers(built: Path) -> None:
    for sheet in ("nn-derivatives", "nn-backprop"):
        text = document(built, sheet, "sheet").read_text(encoding="utf-8")
        assert "Index form" not in text and "Vectorized:" not in text and "Answer:" not in text and "Worked steps" not in text


def test_nn_derivatives_follows_the_sheet(built: Path) -> None:
    text = document(built, "nn-derivatives", "sheet").read_text(encoding="utf-8")
    order = ["Scalar case", "Vectorized case", "Batched vectorized case", "Mean squared error", "Sigmoid", "Softmax",
             "Sigmoid and squared error", "A sigmoid layer with squared error"]
    positions = [text.index(rf"\quad {title}") for title in order]
    assert positions == sorted(positions)
    assert [text.index(rf"\section*{{Question {n}}}") for n in (1, 2, 3)] == sorted(text.index(rf"\section*{{Question {n}}}") for n in (1, 2, 3))
    assert r"s_j = e^{u_j} \left(\sum_k e^{u_k}\right)^{-1}" in text  # the corrected definition
    assert r"\footnotetext{Corrected: the original sheet defines the softmax" in text


@needs_tex
def test_key_pdf_reads_back(tmp_path: Path) -> None:
    build(BuildOptions(seed=SEED, bank=BANK, out=tmp_path, pdf=True))

    def read(sheet: str, kind: str) -> str:
        pdf = document(tmp_path, sheet, kind, "pdf")
        return subprocess.run(["pdftotext", "-layout", str(pdf), "-"], check=True, capture_output=True, text=True).stdout

    text = read("nn-derivatives", "key")
    for phrase in ("answer key", "Question 3", "Batched vectorized case", "Index form:", "Vectorized:", "Answer:",
                   "Corrected: the original sheet defines the softmax", "block per"):
        assert phrase in text, phrase
    assert "Worked steps for this variant" in read("nn-derivatives", "solutions")
    backprop = read("nn-backprop", "solutions")
    for phrase in ("A two-layer network", "Softmax with cross-entropy", "Index form:", "Worked steps for this variant"):
        assert phrase in backprop, phrase

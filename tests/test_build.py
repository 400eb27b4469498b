"""The whole pipeline on the fixture bank: golden .tex, manifest contract, reproducibility."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
from conftest import BANK, FIXTURES, needs_tex, root_relative

from generator.build import BuildOptions, build

GOLDEN = Path(__file__).resolve().parent / "golden"
FIXTURE_BANK = FIXTURES / "bank"


def run(tmp_path: Path, name: str = "out", **options) -> Path:
    out = tmp_path / name
    build(BuildOptions(bank=FIXTURE_BANK, out=out, **{"seed": 7, "pdf": False, **options}))
    return out


@pytest.mark.parametrize("kind", ["sheet", "key", "solutions"])
def test_golden_tex(tmp_path, kind):
    """Rendered LaTeX at seed 7 is exactly the reviewed file (UPDATE_GOLDEN=1 rewrites it)."""
    produced = root_relative((run(tmp_path) / "demo" / "A" / f"{kind}.tex").read_text(encoding="utf-8"))
    golden = GOLDEN / f"demo-{kind}.tex"
    if os.environ.get("UPDATE_GOLDEN"):
        golden.write_text(produced, encoding="utf-8")
    assert produced == golden.read_text(encoding="utf-8")


def test_sheet_hides_answers_and_key_shows_them(tmp_path):
    out = run(tmp_path)
    sheet, key = ((out / "demo" / "A" / f"{k}.tex").read_text() for k in ("sheet", "key"))
    assert "Answer:" not in sheet and "Answer:" in key
    assert sheet.count(r"\item") == key.count(r"\item") == 3


def test_manifest_contract(tmp_path):
    manifest = json.loads((run(tmp_path) / "manifest.json").read_text())
    assert manifest["seed"] == 7
    (variant,) = manifest["variants"]
    assert variant["id"] == "A"
    affine = next(q for q in variant["questions"] if q["id"] == "affine")
    W, x, b = (np.array(affine["params"][n]) for n in ("W", "x", "b"))
    parts = {p["id"]: p for p in affine["parts"]}
    # Independent of SymPy: recompute from the recorded parameters with numpy.
    assert parts["u_value"]["value"] == (W @ x + b).tolist()
    d, k = W.shape
    expected = np.einsum("ji,l->jil", np.eye(d, dtype=int), x)
    assert np.array(parts["du_dW"]["value"]).shape == (d, d, k)
    assert parts["du_dW"]["value"] == expected.tolist()
    assert parts["du_dW"]["latex"].startswith(r"\begin{array}{c}\underset{i=1}")
    logistic = next(q for q in variant["questions"] if q["id"] == "logistic")
    u = logistic["params"]["u"]
    s = 1 / (1 + np.exp(-u))
    assert logistic["parts"][0]["value"] == pytest.approx(s * (1 - s), rel=1e-12)
    assert isinstance(logistic["parts"][0]["value"], float)


def test_same_command_twice_gives_identical_bytes(tmp_path):
    first, second = run(tmp_path, "a"), run(tmp_path, "b")
    names = sorted(str(p.relative_to(first)) for p in first.rglob("*") if p.is_file())
    kept = [n for n in names if n.startswith(".generator-solved/")]  # one per question, for the next build
    assert len(kept) == 2  # the demo worksheet has two questions
    assert [n for n in names if n not in kept] == [
        ".generator-cache.json", ".generator-output", "answers.csv", "demo/A/key.tex", "demo/A/sheet.tex", "demo/A/solutions.tex", "manifest.json"]
    for name in names:
        assert (first / name).read_bytes() == (second / name).read_bytes(), name


def test_different_seeds_give_different_numbers(tmp_path):
    a = json.loads((run(tmp_path, "a", seed=1) / "manifest.json").read_text())
    b = json.loads((run(tmp_path, "b", seed=2) / "manifest.json").read_text())
    assert a["variants"][0]["questions"] != b["variants"][0]["questions"]


def test_without_tex_writes_tex_and_manifest_and_says_how_to_install(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    out = tmp_path / "out"
    result = build(BuildOptions(bank=FIXTURE_BANK, out=out, seed=7, pdf=True))
    assert sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file() and p.parent.name != ".generator-solved") == [
        ".generator-cache.json", ".generator-output", "answers.csv", "demo/A/key.tex", "demo/A/sheet.tex", "demo/A/solutions.tex", "manifest.json",
    ]
    (note,) = result.notes
    assert note.startswith("no TeX engine (pdflatex) on PATH") and "apt-get install texlive-latex-base" in note


@needs_tex
def test_real_pdfs_are_compiled_and_read_back(tmp_path):
    out = run(tmp_path, pdf=True)
    assert sorted(str(p.relative_to(out)) for p in out.rglob("*.pdf")) == [
        "demo/A/key.pdf", "demo/A/sheet.pdf", "demo/A/solutions.pdf",
        "demo/combined-key.pdf", "demo/combined-sheet.pdf", "demo/combined-solutions.pdf",
    ]
    import subprocess

    key = subprocess.run(["pdftotext", "-layout", str(out / "demo" / "A" / "key.pdf"), "-"], capture_output=True, text=True, check=True).stdout
    sheet = subprocess.run(["pdftotext", "-layout", str(out / "demo" / "A" / "sheet.pdf"), "-"], capture_output=True, text=True, check=True).stdout
    assert "Demo sheet: 100% & more: answer key" in key
    assert "ML_101 & friends" in sheet and "Answer:" not in sheet
    assert "Logistic function & friends" in key and "Answer:" in key
    manifest = json.loads((out / "manifest.json").read_text())
    affine = manifest["variants"][0]["questions"][0]
    first_row = affine["params"]["W"][0]
    # The stem's matrix W is in the sheet: its first row's numbers appear in order.
    assert " ".join(str(v).replace("-", "−") for v in first_row) in sheet.replace("  ", " ")


@needs_tex
def test_pdfs_are_byte_reproducible(tmp_path):
    first, second = run(tmp_path, "a", pdf=True), run(tmp_path, "b", pdf=True)
    for name in ("demo/A/key.pdf", "demo/combined-sheet.pdf"):
        assert (first / name).read_bytes() == (second / name).read_bytes(), name


def test_one_process_and_two_solve_alike(tmp_path):
    """The Python stages shared out among processes (questions cut into runs of variants, drawn in
    the workers) give the same results and notes as one process."""
    from generator import questions as module
    from generator.spec.model import load_bank

    bank = load_bank(BANK)
    asked = [(bank.questions[qid], list(range(12))) for qid in ("sigmoid", "affine-vector", "softmax")]
    alone = module.solve_all(asked, 5, None, workers=1)
    shared = module.solve_all(asked, 5, None, workers=2)
    assert len(module._tasks(asked, 2)) > len(asked)  # some question was cut into runs
    assert sorted(module._tasks(asked, 1)) == [(0, 0, 12), (1, 0, 12), (2, 0, 12)]  # one process: no cuts
    assert list(alone[0]) == list(shared[0]) and alone == shared
    assert shared[1]["sigmoid"] == "sigmoid: only 6 distinct variants exist, 12 asked"


def test_a_question_that_cannot_be_drawn_is_reported_before_errors_of_earlier_questions(tmp_path, monkeypatch):
    """As when every question was drawn before any was solved: the sampling error comes first."""
    import generator.answers.sampling as sampling
    from generator import questions as module
    from generator.errors import SamplingError
    from generator.spec.model import load_bank

    bank = load_bank(BANK)

    real = sampling.sample_variants

    def fails_for_softmax(question, seed, variants):
        if question.id == "softmax":
            raise SamplingError("softmax.yaml:9: constraints[0]: could not be met")
        return real(question, seed, variants)

    monkeypatch.setattr(sampling, "sample_variants", fails_for_softmax)
    monkeypatch.setattr(module, "_solve_unit", lambda instance: ("SolveError", f"{instance.question.id} failed"))
    asked = [(bank.questions[qid], list(range(10))) for qid in ("sigmoid", "softmax")]
    for workers in (1, 2):
        with pytest.raises(SamplingError, match="softmax.yaml:9"):
            module.solve_all(asked, 5, None, workers=workers)


def test_the_build_knows_the_document_kinds_the_renderer_makes():
    # build.py keeps its own copy so that a no-op build need not import the renderer (Jinja, SymPy).
    import generator.build
    import generator.render.documents

    assert generator.build.DOCUMENT_KINDS == generator.render.documents.DOCUMENT_KINDS


def test_the_collector_is_paused_for_the_imports_and_restored_after() -> None:
    import gc

    from generator.build import _collector_paused, _collector_resumed

    assert gc.isenabled() and gc.get_freeze_count() == 0
    with pytest.raises(KeyError), _collector_resumed():
        with _collector_paused():
            assert not gc.isenabled()
            made = [[] for _ in range(1000)]  # what the imports make: frozen once it is over
            raise KeyError("a failing stage")
    assert gc.isenabled() and gc.get_freeze_count() == 0  # unfrozen when the build ends, error or not
    with _collector_resumed():
        with _collector_paused():
            made = [[] for _ in range(1000)]
        assert gc.isenabled() and gc.get_freeze_count() >= len(made)
        young = {id(x) for generation in range(3) for x in gc.get_objects(generation=generation)}
        assert not any(id(x) in young for x in made)  # frozen: in no generation the collector walks
    assert gc.get_freeze_count() == 0
    gc.disable()
    try:
        with _collector_paused():
            assert not gc.isenabled()
        assert not gc.isenabled() and gc.get_freeze_count() == 0  # (was off: stays off, nothing frozen)
    finally:
        gc.enable()
    gc.freeze()  # someone else's frozen objects are left frozen
    try:
        before = gc.get_freeze_count()
        with _collector_resumed(), _collector_paused():
            pass
        assert gc.get_freeze_count() == before
    finally:
        gc.unfreeze()


def test_a_build_leaves_nothing_frozen(tmp_path: Path) -> None:
    import gc

    build(BuildOptions(bank=BANK, out=tmp_path, pdf=False, variants=2))
    assert gc.get_freeze_count() == 0 and gc.isenabled()

"""Incremental builds (generator.outputs.cache): unchanged inputs do nothing, a change recompiles only what contains it."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from conftest import FIXTURES, ROOT, needs_tex

from generator.build import BuildOptions, build
from generator.errors import CompileError
from generator.outputs.cache import INDEX
from generator.typeset import batch

CLASSBANK = FIXTURES / "classbank"


def digests(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture
def tex_runs(monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    """Every batch the build stage ran TeX for (in a primed run or not), recorded as the path of
    its .tex in the scratch folder (document/combined-<kind>-<batch>/batch.tex)."""
    runs: list[Path] = []
    real = batch._compile_batch

    def counting(scratch: Path, job_batch: Any, *args: Any) -> None:
        combined = Path(job_batch.job.combined)
        runs.append(combined.parent / f"{combined.stem}-{job_batch.index}" / "batch.tex")
        return real(scratch, job_batch, *args)

    monkeypatch.setattr(batch, "_compile_batch", counting)
    return runs


@pytest.fixture
def bank(tmp_path: Path) -> Path:
    return Path(shutil.copytree(CLASSBANK, tmp_path / "bank"))


def options(bank: Path, out: Path, **extra: object) -> BuildOptions:
    return BuildOptions(bank=bank, out=out, variants=2, **extra)  # type: ignore[arg-type]


@needs_tex
def test_unchanged_inputs_rebuild_nothing(bank: Path, tmp_path: Path, tex_runs: list[Path], monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "out"
    first = build(options(bank, out))
    assert first.compiled == 6 and len(tex_runs) == 6  # drill and quiz, three kinds each
    before = digests(out)
    tex_runs.clear()
    import generator.answers.solve

    monkeypatch.setattr(generator.answers.solve, "solve", lambda *a: pytest.fail("solved again"))
    again = build(options(bank, out, jobs=1))  # --jobs does not change what is built
    assert again.reused and tex_runs == []
    assert again.files == first.files and again.notes == first.notes
    assert digests(out) == before


@needs_tex
def test_a_changed_question_recompiles_only_the_documents_that_contain_it(bank: Path, tmp_path: Path, tex_runs: list[Path]) -> None:
    out = tmp_path / "out"
    build(options(bank, out))
    before = digests(out)
    spec = bank / "questions" / "sig.yaml"  # in the exam quiz (both variants), not in the worksheet drill
    spec.write_text(spec.read_text(encoding="utf-8").replace('title: "Sigmoid"', 'title: "The sigmoid"'), encoding="utf-8")
    tex_runs.clear()
    result = build(options(bank, out))
    assert not result.reused and (result.compiled, result.cached) == (3, 3)
    assert {run.parent.parent.name for run in tex_runs} == {"quiz"}
    after = digests(out)
    assert all(after[name] == digest for name, digest in before.items() if name.startswith("drill/"))
    assert after["quiz/A/sheet.pdf"] != before["quiz/A/sheet.pdf"]
    fresh = tmp_path / "fresh"
    build(options(bank, fresh))
    assert digests(fresh) == after  # the same bytes as a build from scratch


@needs_tex
def test_a_corrupted_pdf_is_rebuilt(bank: Path, tmp_path: Path, tex_runs: list[Path]) -> None:
    out = tmp_path / "out"
    build(options(bank, out))
    before = digests(out)
    (out / "quiz" / "B" / "key.pdf").write_bytes(b"%PDF-1.5 garbage")
    tex_runs.clear()
    result = build(options(bank, out))
    assert not result.reused and (result.compiled, result.cached) == (1, 5)
    assert [run.parent.name for run in tex_runs] == ["combined-key-0"]
    assert digests(out) == before


@needs_tex
@pytest.mark.parametrize("damage", ["missing", "garbage"])
def test_a_missing_or_unreadable_index_means_a_full_build(bank: Path, tmp_path: Path, tex_runs: list[Path], damage: str) -> None:
    out = tmp_path / "out"
    build(options(bank, out))
    before = digests(out)
    if damage == "missing":
        (out / INDEX).unlink()
    else:
        (out / INDEX).write_text("{not json", encoding="utf-8")
    tex_runs.clear()
    result = build(options(bank, out))
    assert not result.reused and result.compiled == 6 and len(tex_runs) == 6
    assert digests(out) == before


@needs_tex
def test_an_option_change_is_a_change(bank: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    build(options(bank, out))
    one_sided = build(options(bank, out, two_sided=False))
    assert not one_sided.reused and one_sided.compiled == 6  # the print files differ
    assert build(options(bank, out, two_sided=False)).reused


@needs_tex
def test_a_failed_build_keeps_the_previous_build_and_its_cache(bank: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    build(options(bank, out))
    before = digests(out)
    spec = bank / "questions" / "lin.yaml"
    good = spec.read_text(encoding="utf-8")
    spec.write_text(good.replace('title: "Inner product"', 'title: "Inner product"\nstem: "\\\\undefinedmacro"', 1)
                    if "stem:" not in good else good.replace("stem: ", "stem: \\undefinedmacro ", 1), encoding="utf-8")
    with pytest.raises(CompileError):
        build(options(bank, out))
    assert digests(out) == before
    spec.write_text(good, encoding="utf-8")
    assert build(options(bank, out)).reused


def test_without_pdfs_the_index_is_written_and_used(bank: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    first = build(options(bank, out, pdf=False))
    index = json.loads((out / INDEX).read_text(encoding="utf-8"))
    assert sorted(index["files"]) == sorted(first.files) and index["jobs"] == {}
    assert build(options(bank, out, pdf=False)).reused
    (out / "manifest.json").write_text("{}", encoding="utf-8")
    assert not build(options(bank, out, pdf=False)).reused


def test_a_noop_rebuild_imports_no_sympy_jinja_or_pypdf(bank: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    command = ["build", "--no-pdf", "--bank", str(bank), "--out", str(out), "--variants", "2"]
    script = ("import sys\nfrom generator.cli import main\ncode = main(sys.argv[1:])\n"
              "print(sorted(m for m in ('sympy', 'jinja2', 'pypdf', 'numpy') if m in sys.modules))\nsys.exit(code)\n")
    first = subprocess.run([sys.executable, "-c", script, *command], cwd=ROOT, capture_output=True, text=True, check=False)
    assert first.returncode == 0, first.stderr
    second = subprocess.run([sys.executable, "-c", script, *command], cwd=ROOT, capture_output=True, text=True, check=False)
    assert second.returncode == 0, second.stderr
    assert second.stdout.startswith("up to date: ") and second.stdout.endswith("[]\n")
    assert second.stderr == first.stderr  # the same notes


@pytest.fixture
def solves(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The question id of every (variant, question) solved, recorded (builds run with jobs=1)."""
    import generator.answers.solve

    seen: list[str] = []
    real = generator.answers.solve.solve

    def counting(instance):  # type: ignore[no-untyped-def]
        seen.append(instance.question.id)
        return real(instance)

    monkeypatch.setattr(generator.answers.solve, "solve", counting)
    return seen


def test_a_changed_question_is_the_only_one_solved_again(bank: Path, tmp_path: Path, solves: list[str]) -> None:
    out = tmp_path / "out"
    build(options(bank, out, pdf=False, jobs=1))
    assert sorted(set(solves)) == ["lin", "sig", "square"]
    spec = bank / "questions" / "sig.yaml"
    spec.write_text(spec.read_text(encoding="utf-8").replace('title: "Sigmoid"', 'title: "The sigmoid"'), encoding="utf-8")
    solves.clear()
    build(options(bank, out, pdf=False, jobs=1))
    assert solves == ["sig", "sig"]  # two variants, of the changed question only
    fresh = tmp_path / "fresh"
    build(options(bank, fresh, pdf=False, jobs=1))
    assert digests(fresh) == digests(out)  # the same bytes as a build from scratch, kept results included


def test_another_seed_or_variant_count_solves_afresh(bank: Path, tmp_path: Path, solves: list[str]) -> None:
    out = tmp_path / "out"
    build(options(bank, out, pdf=False, jobs=1))
    solves.clear()
    build(BuildOptions(bank=bank, out=out, variants=3, pdf=False, jobs=1))
    assert {"lin", "sig", "square"} <= set(solves)  # which variants are drawn depends on how many


def test_a_corrupted_kept_result_is_solved_again(bank: Path, tmp_path: Path, solves: list[str]) -> None:
    from generator.outputs.cache import SOLVED

    out = tmp_path / "out"
    build(options(bank, out, pdf=False, jobs=1))
    before = digests(out)
    kept = sorted((out / SOLVED).iterdir())
    assert len(kept) == 3
    damaged = kept[0]
    damaged.write_text(damaged.read_text(encoding="utf-8").replace("\\\\", "\\\\relax"), encoding="utf-8")
    (out / "manifest.json").write_text("{}", encoding="utf-8")  # so that the build runs at all
    solves.clear()
    build(options(bank, out, pdf=False, jobs=1))
    assert len(set(solves)) == 1 and len(solves) == 2
    assert digests(out) == before


def test_installed_versions_are_what_importlib_metadata_says(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from importlib.metadata import version

    from generator.outputs.cache import _LIBRARIES, installed_versions

    assert installed_versions(_LIBRARIES) == {package: version(package) for package in _LIBRARIES}
    assert installed_versions(["no-such-package-here"]) == {}
    # From the folders' names, the first on the path winning (as imports do), any spelling of the name.
    for folder, names in {"first": ["PyYAML-9.1.dist-info"], "second": ["pyyaml-1.0.dist-info", "other-2.0.egg-info"],
                          "third": ["Other_Thing-3.0-py3.11.egg-info"]}.items():
        for name in names:
            (tmp_path / folder / name).mkdir(parents=True)
    monkeypatch.setattr("sys.path", [str(tmp_path / f) for f in ("missing", "first", "second", "third")])
    assert installed_versions(["pyyaml", "other", "other-thing"]) == {"pyyaml": "9.1", "other": "2.0", "other-thing": "3.0"}


def test_a_kept_result_is_the_json_of_its_fields_and_restores_as_it_was() -> None:
    from dataclasses import asdict

    from generator.questions import Solved, _dump, _restore
    from generator.render.documents import RenderedPart, RenderedQuestion

    parts = (RenderedPart("a", 2.0, "$x$", "$1$", r"\delta_{ij}", ""), RenderedPart("b", None, "p", "a", "", "W"))
    solved = Solved(RenderedQuestion("q", "Title", 3.0, "questions/q.yaml", "B", "stem", parts, "sol"),
                    {"question": "q", "parts": [{"id": "a", "answer": [[1, 2]]}]}, (("B", "q", "a", "1"),))
    dumped = _dump(solved)
    expected = {"rendered": asdict(solved.rendered), "manifest": solved.manifest, "answers": [list(a) for a in solved.answers]}
    assert json.dumps(dumped) == json.dumps(expected)  # the same text, key order and all
    assert _restore(json.loads(json.dumps({"note": None, "variants": {"1": dumped}})), "q", [1]) == {(1, "q"): solved}

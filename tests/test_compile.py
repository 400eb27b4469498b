"""pdflatex runs (generator.typeset.compile): the format file unpacked once per machine, runs primed on a head."""

from __future__ import annotations

import gzip
import os
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from conftest import FIXTURES, needs_tex

from generator.build import BuildOptions, build
from generator.typeset import batch, compile
from generator.typeset import formats as formats_module
from generator.typeset.compile import compile_pdf, format_file, run_pdflatex
from generator.typeset.formats import PrimedRun, Primer, UnpackedFormat, cache_folder

DOCUMENT = ("\\documentclass{article}\n\\usepackage{amsmath}\n\\pdftrailerid{}\n\\pdfinfoomitdate=1\n"
            "\\begin{document}\n$x = \\dfrac{1}{2}$, $\\begin{bmatrix}1 & 2\\end{bmatrix}$\n\\end{document}\n")


@needs_tex
def test_the_unpacked_format_is_what_tex_loads_and_gives_the_same_pdf(tmp_path: Path) -> None:
    source = format_file()
    assert source is not None
    pdfs = {}
    with UnpackedFormat(source, tmp_path / "cache") as fmt:
        unpacked = fmt.path()
        assert unpacked is not None and unpacked.parent == tmp_path / "cache"
        assert unpacked.read_bytes() == gzip.decompress(source.read_bytes())
        for name, loaded in (("own", None), ("unpacked", unpacked)):
            (tmp_path / name).mkdir()
            tex = tmp_path / name / "doc.tex"
            tex.write_text(DOCUMENT)
            pdfs[name] = compile_pdf(tex, fmt=loaded).read_bytes()
        assert f"preloaded format={unpacked})" in (tmp_path / "unpacked" / "doc.terminal").read_text()  # (the log names the format by its ident)
    assert pdfs["own"] == pdfs["unpacked"]
    assert sorted(p.name for p in (tmp_path / "cache").iterdir()) == [unpacked.name]  # kept, nothing else


def test_without_a_compressed_format_tex_keeps_its_own(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    plain = tmp_path / "plain.fmt"
    plain.write_bytes(b"not compressed " * 100)
    cut = tmp_path / "cut.fmt"
    cut.write_bytes(gzip.compress(b"format " * 10000)[:-30])
    for source in (None, tmp_path / "missing.fmt", plain, cut):
        with UnpackedFormat(source, cache) as fmt:
            assert fmt.path() is None, source
    assert not cache.exists() or list(cache.iterdir()) == []  # no half-unpacked copy kept
    whole = tmp_path / "whole.fmt"
    whole.write_bytes(gzip.compress(b"format " * 10000))
    with UnpackedFormat(whole, cache) as fmt:
        unpacked = fmt.path()
        assert unpacked is not None and unpacked.read_bytes() == b"format " * 10000
    assert unpacked.exists()  # kept for the next build


def test_the_unpacked_format_is_kept_until_the_format_changes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cache = tmp_path / "cache"
    source = tmp_path / "pdflatex.fmt"
    source.write_bytes(gzip.compress(b"old " * 10000))
    with UnpackedFormat(source, cache) as fmt:
        old = fmt.path()
    assert old is not None and old.parent == cache and old.name.startswith("pdflatex-") and old.suffix == ".fmt"
    runs: list[Any] = []
    real = formats_module._run_child
    monkeypatch.setattr(formats_module, "_run_child", lambda *a, **k: runs.append(a) or real(*a, **k))
    with UnpackedFormat(source, cache) as fmt:
        assert fmt.path() == old  # taken as it is
    assert runs == []
    # A new TeX (its format rewritten): unpacked again under a new name; the old copy goes once
    # it is an hour old (a build started before may still be loading it), and so do leftovers.
    source.write_bytes(gzip.compress(b"new " * 10000))
    leftover = cache / f".{old.name}.123.456.tmp"
    leftover.write_bytes(b"half")
    with UnpackedFormat(source, cache) as fmt:
        new = fmt.path()
    assert new is not None and new != old and new.read_bytes() == b"new " * 10000 and len(runs) == 1
    assert old.exists() and leftover.exists()
    hours_ago = time.time() - 7200
    for path in (old, leftover):
        os.utime(path, (hours_ago, hours_ago))
    source.write_bytes(gzip.compress(b"newer " * 10000))
    with UnpackedFormat(source, cache) as fmt:
        newest = fmt.path()
    assert newest is not None and sorted(p.name for p in cache.iterdir()) == sorted([new.name, newest.name])



def test_a_build_that_stops_does_not_wait_for_a_format_being_made(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Ctrl-C (or an error) while the preloaded format is being made: its TeX run is ended at
    once, none starts after, and nothing is left in the cache but the unpacked format."""
    fake = tmp_path / "bin" / "pdflatex"  # a TeX that takes a minute to make the format
    fake.parent.mkdir()
    fake.write_text("#!/bin/sh\nexec sleep 60\n", encoding="utf-8")
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{fake.parent}{os.pathsep}{os.environ['PATH']}")
    source = tmp_path / "pdflatex.fmt"
    source.write_bytes(gzip.compress(b"format " * 10000))
    cache = tmp_path / "cache"
    start = time.monotonic()
    with pytest.raises(KeyboardInterrupt), UnpackedFormat(source, cache, preamble="\\relax\n") as fmt:
        deadline = time.monotonic() + 30
        def tex_running() -> bool:
            return any(child.args[0] == "pdflatex" for children in list(formats_module._children.values())
                       for child in list(children))

        while not tex_running() and time.monotonic() < deadline:  # until TeX makes the preloaded format
            time.sleep(0.01)
        assert tex_running()
        try:
            raise KeyboardInterrupt
        except KeyboardInterrupt:
            fmt.abandon()
            raise
    assert time.monotonic() - start < 20
    assert formats_module._children == {} and formats_module._stopped == set()
    assert [p.name for p in cache.iterdir()] == [fmt.path().name]  # type: ignore[union-attr]

def test_without_a_writable_cache_the_format_is_unpacked_for_the_build_alone(tmp_path: Path) -> None:
    blocked = tmp_path / "file"
    blocked.write_text("a file, not a folder")
    source = tmp_path / "pdflatex.fmt"
    source.write_bytes(gzip.compress(b"format " * 10000))
    with UnpackedFormat(source, blocked / "cache") as fmt:
        unpacked = fmt.path()
        assert unpacked is not None and unpacked.read_bytes() == b"format " * 10000
        assert unpacked.parent.name.startswith("generator-format-")
    assert not unpacked.parent.exists()  # removed when the build ends


def test_the_cache_folder_follows_xdg(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache_folder() == tmp_path / "xdg" / "generator"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert cache_folder() == tmp_path / "home" / ".cache" / "generator"


@needs_tex
@pytest.mark.parametrize("preloaded", [True, False])
def test_a_build_compiles_every_batch_with_its_preamble_preloaded_and_the_same_pdfs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, preloaded: bool,
) -> None:
    formats: list[Path | None] = []
    real = batch.run_pdflatex

    def recording(tex_file: Path, **kwargs: Any) -> tuple[int | None, str]:
        formats.append(kwargs.get("fmt"))
        return real(tex_file, **kwargs)

    def primed(self: PrimedRun, folder: Path, head: str, fmt: Path | None, *args: Any) -> None:
        formats.append(fmt)
        real_primed(self, folder, head, fmt, *args)

    real_primed = PrimedRun.__init__
    monkeypatch.setattr(batch, "run_pdflatex", recording)
    monkeypatch.setattr(PrimedRun, "__init__", primed)
    if not preloaded:  # the unpacked format only: every batch reads the preamble
        monkeypatch.setattr(formats_module, "_preloaded", lambda base, preamble: None)
    build(BuildOptions(bank=FIXTURES / "classbank", out=tmp_path / "out", variants=2))
    assert len(formats) >= 6  # (runs primed and not taken count too)
    kept = cache_folder()
    assert kept is not None
    assert all(f is not None and f.parent == kept and f.name.startswith("pdflatex-") for f in formats), formats
    assert len(set(formats)) == 1 and formats[0].exists()  # one format for all, kept for the next build
    assert ("-preamble-" in formats[0].name) == preloaded
    if not preloaded:  # PDFs, print files and all: the same bytes as with the preamble preloaded
        monkeypatch.undo()
        build(BuildOptions(bank=FIXTURES / "classbank", out=tmp_path / "preloaded", variants=2))
        made = sorted(p.relative_to(tmp_path / "out") for p in (tmp_path / "out").rglob("*") if p.is_file())
        assert any(p.suffix == ".pdf" for p in made)
        assert made == sorted(p.relative_to(tmp_path / "preloaded") for p in (tmp_path / "preloaded").rglob("*") if p.is_file())
        for name in made:
            if name.parts[0] != ".generator-cache.json":
                assert (tmp_path / "out" / name).read_bytes() == (tmp_path / "preloaded" / name).read_bytes(), name


PREAMBLE = "\\pdfcompresslevel=6\n\\documentclass{article}\n\\usepackage{amsmath}\n\\pdftrailerid{}\n\\pdfinfoomitdate=1\n"


@needs_tex
def test_a_preloaded_preamble_is_read_as_blank_lines_and_gives_the_same_pdf(tmp_path: Path) -> None:
    source = format_file()
    assert source is not None
    document = PREAMBLE + "\\begin{document}\n$x = \\dfrac{1}{2}$\n\\end{document}\n"
    with UnpackedFormat(source, tmp_path / "cache", preamble=PREAMBLE) as fmt:
        read, loaded = fmt.reading(document)
        assert loaded is not None and loaded.parent == tmp_path / "cache" and "-preamble-" in loaded.name
        assert read == "\\pdftrailerid{}" + "\n" * 5 + "\\begin{document}\n$x = \\dfrac{1}{2}$\n\\end{document}\n"
        assert fmt.reading("\\documentclass{book}\n") == ("\\documentclass{book}\n", fmt.path())  # another preamble
        pdfs = []
        for name, text, used in (("read", document, fmt.path()), ("preloaded", read, loaded)):
            (tmp_path / name).mkdir()
            (tmp_path / name / "doc.tex").write_text(text)
            pdfs.append(compile_pdf(tmp_path / name / "doc.tex", fmt=used).read_bytes())
    assert pdfs[0] == pdfs[1]
    assert sorted(p.name for p in (tmp_path / "cache").iterdir()) == sorted(
        [fmt.path().name, loaded.name, loaded.name + ".inputs"])  # type: ignore[union-attr]


@needs_tex
def test_a_preloaded_format_is_made_again_when_what_it_read_changes(tmp_path: Path) -> None:
    import json

    source = format_file()
    assert source is not None
    with UnpackedFormat(source, tmp_path / "cache", preamble=PREAMBLE) as fmt:
        loaded = fmt.reading(PREAMBLE)[1]
    assert loaded is not None
    inputs = loaded.with_name(loaded.name + ".inputs")
    record = json.loads(inputs.read_text())
    assert any(name == "amsmath.sty" for name, *_ in record["searched"])
    made = loaded.stat().st_mtime_ns
    with UnpackedFormat(source, tmp_path / "cache", preamble=PREAMBLE) as fmt:
        assert fmt.reading(PREAMBLE)[1] == loaded and loaded.stat().st_mtime_ns == made  # as it was: kept
    # a package updated, found elsewhere on TeX's search path, or gone; the list itself lost
    for change in ("size", "path", "gone", "list"):
        changed = json.loads(inputs.read_text())
        entry = next(e for e in changed["searched"] if e[0] == "amsmath.sty")
        if change == "size":
            entry[2] += 1
        elif change == "path":
            entry[1] = "/elsewhere/amsmath.sty"
        elif change == "gone":
            changed["fixed"].append([str(tmp_path / "removed.cnf"), 1, 1])
        inputs.write_text(json.dumps(changed))
        if change == "list":
            inputs.unlink()
        time.sleep(0.01)
        with UnpackedFormat(source, tmp_path / "cache", preamble=PREAMBLE) as fmt:
            assert fmt.reading(PREAMBLE)[1] == loaded
        assert loaded.stat().st_mtime_ns != made and json.loads(inputs.read_text()) == record  # made again
        made = loaded.stat().st_mtime_ns


@needs_tex
def test_a_preamble_that_cannot_be_preloaded_is_read_as_before(tmp_path: Path) -> None:
    source = format_file()
    assert source is not None
    broken = "\\documentclass{article}\n\\undefinedcommand\n"
    with UnpackedFormat(source, tmp_path / "cache", preamble=broken) as fmt:
        assert fmt.reading(broken + "\\begin{document}x\\end{document}\n") == (
            broken + "\\begin{document}x\\end{document}\n", fmt.path())
    assert [p.name for p in (tmp_path / "cache").iterdir()] == [fmt.path().name]  # type: ignore[union-attr]


HEAD, _, BODY = DOCUMENT.partition("\\begin{document}\n")
HEAD += "\\begin{document}\n"
LINUX = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="tells a waiting run by /proc")


def primed_run(folder: Path, head: str = HEAD) -> PrimedRun:
    run = PrimedRun(folder, head, None)
    formats_module._wait_until_waiting(run)
    return run


@needs_tex
@LINUX
def test_a_primed_run_gives_the_pdf_and_log_of_a_run_on_the_file(tmp_path: Path) -> None:
    run = primed_run(tmp_path / "primed")
    assert run.waiting() is True and run.process.poll() is None  # read the head, waits for the body
    assert not (tmp_path / "primed" / "batch.pdf").exists()
    code, log = run.finish(DOCUMENT, 60)
    assert code == 0 and "Output written on batch.pdf (1 page" in log
    assert run.source.is_file() and run.source.read_text() == DOCUMENT  # for another pass
    (tmp_path / "file").mkdir()
    (tmp_path / "file" / "batch.tex").write_text(DOCUMENT)
    assert run_pdflatex(tmp_path / "file" / "batch.tex") == (0, (tmp_path / "file" / "batch.log").read_text(encoding="latin-1"))
    assert (tmp_path / "primed" / "batch.pdf").read_bytes() == (tmp_path / "file" / "batch.pdf").read_bytes()
    with pytest.raises(ValueError):
        primed_run(tmp_path / "other").finish("\\documentclass{book}\n" + DOCUMENT, 60)


@needs_tex
@LINUX
def test_a_primed_run_reports_errors_and_timeouts_as_a_run_on_the_file_does(tmp_path: Path) -> None:
    broken = HEAD + "line one\n\\undefinedmacro\n\\end{document}\n"
    line = broken.splitlines().index("\\undefinedmacro") + 1
    run = primed_run(tmp_path / "broken")
    code, log = run.finish(broken, 60)
    assert code == 1 and f"./batch.tex:{line}: Undefined control sequence." in log
    assert compile.error_line(run.source, log) == line
    (tmp_path / "file").mkdir()
    (tmp_path / "file" / "batch.tex").write_text(broken)
    code, log = run_pdflatex(tmp_path / "file" / "batch.tex")
    assert code == 1 and f"./batch.tex:{line}: Undefined control sequence." in log
    # A body that never ends: the run is killed when its time is up, even while the body is sent.
    endless = HEAD + "\\def\\x{\\x}\\x\n" + "filler line\n" * 20000 + "\\end{document}\n"
    run = primed_run(tmp_path / "endless")
    start = time.monotonic()
    with pytest.raises(compile.TeXLimitError, match=r"batch.tex: TeX did not finish within 3 s"):
        run.finish(endless, 3)
    assert time.monotonic() - start < 20 and run.process.poll() is not None


@needs_tex
@LINUX
def test_a_primer_hands_out_runs_for_documents_with_its_head_up_to_its_limit(tmp_path: Path) -> None:
    with UnpackedFormat(None) as fmt:
        with Primer(HEAD, fmt, limit=3) as primer:
            primer.limit(5)  # only ever lowered
            primer._thread.join()
            assert primer.take("\\documentclass{book}\n" + BODY) is None  # another head
            taken = primer.take(DOCUMENT)
            assert taken is not None and taken.waiting() is True
            assert taken.finish(DOCUMENT, 60)[0] == 0
            left = [primer.take(DOCUMENT), primer.take(DOCUMENT)]
            assert all(run is not None for run in left) and primer.take(DOCUMENT) is None
            primer._runs.extend(left)  # (not taken after all)
            folder = taken.source.parent.parent
        assert all(run.process.poll() is not None for run in left)  # ended by close()
        assert not folder.exists()
        with Primer(HEAD, fmt, limit=3) as lowered:
            lowered.limit(1)
            lowered._thread.join()
            assert lowered.take(DOCUMENT) is not None and lowered.take(DOCUMENT) is None
        assert Primer(None, fmt, limit=3).take(DOCUMENT) is None  # no head: nothing started


@needs_tex
def test_a_build_types_its_first_batches_in_primed_runs_with_the_same_outcome(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import generator.typeset.batch

    fed: list[str] = []
    real = PrimedRun.finish

    def feeding(self: PrimedRun, text: str, timeout: float, max_pages: int | None = None) -> tuple[int | None, str]:
        fed.append(text)
        return real(self, text, timeout, max_pages)

    def taking_once_primed(self: Primer, text: str) -> PrimedRun | None:
        if self._thread.ident is not None:  # (a build this small may reach TeX before its runs are primed)
            self._thread.join()
        return real_take(self, text)

    real_take = Primer.take
    monkeypatch.setattr(PrimedRun, "finish", feeding)
    monkeypatch.setattr(Primer, "take", taking_once_primed)
    options = BuildOptions(bank=FIXTURES / "classbank", out=tmp_path / "primed", variants=2, jobs=2)
    primed = build(options)
    if sys.platform.startswith("linux"):
        assert len(fed) == 4  # two runs per TeX worker, for the 4 of 6 batches that start first
    monkeypatch.setattr(generator.typeset.batch, "_batch_start", lambda templates, two_sided, printing: (None, None))
    fed.clear()
    cold = build(BuildOptions(bank=FIXTURES / "classbank", out=tmp_path / "cold", variants=2, jobs=2))
    assert fed == [] and primed.files == cold.files and primed.compiled == cold.compiled == 6
    for name in primed.files:
        assert (tmp_path / "primed" / name).read_bytes() == (tmp_path / "cold" / name).read_bytes(), name

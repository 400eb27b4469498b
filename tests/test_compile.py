"""pdflatex runs (generator.compile): the format file unpacked once per build."""

from __future__ import annotations

import gzip
from pathlib import Path
from typing import Any

import pytest
from conftest import FIXTURES, needs_tex

from generator import batch
from generator.build import BuildOptions, build
from generator.compile import UnpackedFormat, compile_pdf, format_file

DOCUMENT = ("\\documentclass{article}\n\\usepackage{amsmath}\n\\pdftrailerid{}\n\\pdfinfoomitdate=1\n"
            "\\begin{document}\n$x = \\dfrac{1}{2}$, $\\begin{bmatrix}1 & 2\\end{bmatrix}$\n\\end{document}\n")


@needs_tex
def test_the_unpacked_format_is_what_tex_loads_and_gives_the_same_pdf(tmp_path: Path) -> None:
    source = format_file()
    assert source is not None
    pdfs = {}
    with UnpackedFormat(source) as fmt:
        unpacked = fmt.path()
        assert unpacked is not None
        assert unpacked.read_bytes() == gzip.decompress(source.read_bytes())
        for name, loaded in (("own", None), ("unpacked", unpacked)):
            (tmp_path / name).mkdir()
            tex = tmp_path / name / "doc.tex"
            tex.write_text(DOCUMENT)
            pdfs[name] = compile_pdf(tex, fmt=loaded).read_bytes()
        assert f"preloaded format={unpacked})" in (tmp_path / "unpacked" / "doc.terminal").read_text()  # (the log names the format by its ident)
    assert pdfs["own"] == pdfs["unpacked"]
    assert not unpacked.parent.exists()  # removed when done


def test_without_a_compressed_format_tex_keeps_its_own(tmp_path: Path) -> None:
    plain = tmp_path / "plain.fmt"
    plain.write_bytes(b"not compressed " * 100)
    cut = tmp_path / "cut.fmt"
    cut.write_bytes(gzip.compress(b"format " * 10000)[:-30])
    for source in (None, tmp_path / "missing.fmt", plain, cut):
        with UnpackedFormat(source) as fmt:
            assert fmt.path() is None, source
    whole = tmp_path / "whole.fmt"
    whole.write_bytes(gzip.compress(b"format " * 10000))
    with UnpackedFormat(whole) as fmt:
        unpacked = fmt.path()
        assert unpacked is not None and unpacked.read_bytes() == b"format " * 10000
    assert not unpacked.exists()


@needs_tex
def test_a_build_compiles_every_batch_with_the_unpacked_format(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    formats: list[Path | None] = []
    real = batch.run_pdflatex

    def recording(tex_file: Path, **kwargs: Any) -> tuple[int | None, str]:
        formats.append(kwargs.get("fmt"))
        return real(tex_file, **kwargs)

    monkeypatch.setattr(batch, "run_pdflatex", recording)
    build(BuildOptions(bank=FIXTURES / "classbank", out=tmp_path / "out", variants=2))
    assert formats
    assert all(f is not None and f.name == "pdflatex.fmt" for f in formats), formats
    assert not any(f.exists() for f in formats if f is not None)  # the build's copy is gone

"""Batched compilation: many copies per TeX run, split into per-copy PDFs (generator.typeset.batch)."""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
from pathlib import Path

import pytest
from authoring_helpers import QUESTION, make_bank, question
from conftest import FIXTURES, needs_tex
from test_build_classsets import AWKWARD, write_roster

from generator.build import BuildOptions, build
from generator.errors import CompileError
from generator.typeset import batch
from generator.typeset.batch import (
    PREAMBLE_END,
    Copy,
    Job,
    batch_text,
    compile_jobs,
    split_copy,
)

CLASSBANK = FIXTURES / "classbank"


def pdftotext(path: Path) -> str:
    """The text in content-stream order (-layout guesses columns, and its guesses vary with font subsets)."""
    return subprocess.run(["pdftotext", "-raw", "-enc", "UTF-8", str(path), "-"],
                          capture_output=True, check=True, text=True).stdout


def pictures(path: Path, folder: Path) -> list[bytes]:
    """Every page rendered to PNG at low resolution, for comparing what a reader sees."""
    folder.mkdir(parents=True, exist_ok=True)
    subprocess.run(["pdftoppm", "-r", "20", "-png", str(path), str(folder / "page")], check=True)
    return [p.read_bytes() for p in sorted(folder.glob("page*.png"))]


def pages(path: Path) -> int:
    from pypdf import PdfReader

    return len(PdfReader(path).pages)


def digests(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file() and not p.name.startswith(".")}


def standalone(tex: Path, scratch: Path) -> Path:
    """pdflatex on a copy's .tex as a user would run it, in a folder of its own: twice, for the
    sheets' page totals, with the QR codes the first pass asks for made in between (as the build
    makes them: generator.typeset.qr)."""
    from generator.typeset.qr import write_qr_codes

    scratch.mkdir(parents=True)
    (scratch / tex.name).write_bytes(tex.read_bytes())
    env = {**os.environ, "SOURCE_DATE_EPOCH": "0", "FORCE_SOURCE_DATE": "1"}
    for _ in range(2):
        subprocess.run(["pdflatex", "-interaction=nonstopmode", "-halt-on-error", tex.name], cwd=scratch, env=env,
                       capture_output=True, check=True)
        write_qr_codes(scratch / tex.name)
    return scratch / tex.with_suffix(".pdf").name


def document(body: str, header: str = "Variant A") -> str:
    return (f"\\documentclass{{article}}\n\\pdftrailerid{{}}\n\\pdfinfoomitdate=1\n{PREAMBLE_END}\n"
            f"\\markright{{{header}}}\n\\begin{{document}}\n{body}\n\\end{{document}}\n")


def test_a_copy_is_cut_at_the_preamble_marker_and_the_document_environment() -> None:
    assert split_copy(document("Hello", "B")) == (
        f"\\documentclass{{article}}\n\\pdftrailerid{{}}\n\\pdfinfoomitdate=1\n{PREAMBLE_END}\n", "\\markright{B}\n", "Hello\n")
    assert split_copy("\\documentclass{article}\n\\begin{document}\nx\n\\end{document}\n") is None


def test_batch_lines_of_each_part_are_known() -> None:
    job = Job("w/combined-sheet.pdf", tuple(Copy(f"w/{c}/sheet.tex", document(f"Text {c}\n\nmore", c), c) for c in "AB"))
    text, spans = batch_text(job, [0, 1], split_copy(job.copies[0].text)[0], two_sided=True)  # type: ignore[index]
    lines = text.splitlines()
    for (first, last), name in zip(spans, "AB", strict=True):
        part = lines[first - 1 : last]
        assert part[0].startswith("\\message{[generator: copy ") and "\\makeatletter\\generator@start{" in part[0]
        assert f"Text {name}" in part and part[-1].startswith("\\makeatletter\\generator@end{")


@needs_tex
def test_batched_copies_match_standalone_compiles_page_for_page(tmp_path: Path) -> None:
    roster = write_roster(tmp_path / "roster.csv", AWKWARD)
    out = tmp_path / "out"
    build(BuildOptions(bank=CLASSBANK, out=out, roster=roster, variants=3))
    copies = sorted(out.glob("*/*/*.tex"))
    assert len(copies) >= 15
    for n, tex in enumerate(copies):
        alone = standalone(tex, tmp_path / "alone" / str(n))
        batched = tex.with_suffix(".pdf")
        assert pages(batched) == pages(alone), tex
        assert pdftotext(batched) == pdftotext(alone), tex
        assert pictures(batched, tmp_path / "png" / f"{n}b") == pictures(alone, tmp_path / "png" / f"{n}a"), tex


@needs_tex
def test_combined_file_holds_every_copy_with_bookmarks(tmp_path: Path) -> None:
    roster = write_roster(tmp_path / "roster.csv", AWKWARD)
    out = tmp_path / "out"
    build(BuildOptions(bank=CLASSBANK, out=out, roster=roster, variants=2, worksheets=("drill",)))
    from pypdf import PdfReader

    combined = PdfReader(out / "drill" / "combined-key.pdf")
    titles = [o.title for o in combined.outline]
    assert titles[0] == "Zoë Müller (s-001), variant A"
    assert titles[3] == "Łukasz Straße-Wałęsa ({5}~^\\$), variant B"
    folders = sorted(p.name for p in (out / "drill").iterdir() if p.is_dir())
    expected = sum(-(-pages(out / "drill" / f / "key.pdf") // 2) * 2 for f in folders)
    assert len(combined.pages) == expected
    text = pdftotext(out / "drill" / "combined-key.pdf")
    assert text.count("Answer key") >= len(folders)


@needs_tex
def test_one_and_two_workers_give_identical_bytes(tmp_path: Path) -> None:
    for jobs in (1, 2):
        build(BuildOptions(bank=CLASSBANK, out=tmp_path / str(jobs), variants=3, jobs=jobs))
    assert digests(tmp_path / "1") == digests(tmp_path / "2")


@needs_tex
def test_split_pdfs_carry_no_date_or_random_id(tmp_path: Path) -> None:
    from pypdf import PdfReader

    build(BuildOptions(bank=CLASSBANK, out=tmp_path / "out", variants=2, worksheets=("drill",)))
    for pdf in (tmp_path / "out" / "drill").rglob("*.pdf"):
        reader = PdfReader(pdf)
        assert "/ID" not in reader.trailer, pdf
        info = reader.metadata or {}
        assert not any(key in info for key in ("/CreationDate", "/ModDate")), pdf


@needs_tex
def test_batches_compress_their_streams_at_zlibs_default_level(tmp_path: Path) -> None:
    """Every stream of a copy and of the print file (pages and fonts) is deflated at level 6:
    zlib's header says which (0x78 0x9C; pdfTeX's own level 9 writes 0x78 0xDA)."""
    import zlib

    build(BuildOptions(bank=CLASSBANK, out=tmp_path / "out", variants=2, worksheets=("drill",), kinds=("sheet",)))
    pdfs = sorted((tmp_path / "out" / "drill").rglob("*.pdf"))
    assert len(pdfs) == 3
    for pdf in pdfs:
        data = pdf.read_bytes()
        streams = [m.end() for m in re.finditer(rb"/FlateDecode.*?>>\s*stream\r?\n", data, re.DOTALL)]
        assert len(streams) > 5, pdf
        for start in streams:
            assert data[start : start + 2] == b"x\x9c", (pdf, start)
            inflate = zlib.decompressobj()
            inflate.decompress(data[start:])  # a whole deflate stream: it stops at its end
            assert inflate.eof, (pdf, start)


@needs_tex
def test_an_error_in_one_copy_names_that_copy(tmp_path: Path) -> None:
    text = question(**{"  Let $u = W x$ with": "  Let $u = W x$ <% if variant == 'C' %>\\badmacro<% endif %> with"})
    bank = make_bank(tmp_path / "bank", {"q": text})
    with pytest.raises(CompileError) as info:
        build(BuildOptions(bank=bank, out=tmp_path / "out", variants=4))
    message = str(info.value)
    assert re.match(rf"{re.escape(str(bank))}/questions/q\.yaml:19: stem: LaTeX error in question 'q', stem \((sheet|key|solutions)\.tex:\d+\)", message)
    assert "Undefined control sequence" in message


@needs_tex
def test_a_copy_that_ends_the_document_early_is_compiled_alone(tmp_path: Path) -> None:
    # (Question text may not say \\end{document} any more, tests/test_hostile.py; a copy's .tex still can.)
    copies = tuple(Copy(f"w/{c}/sheet.tex", document(("Early.\n\\end{document}\n" if c == "A" else "") + f"Text {c}\n", c), c)
                   for c in "ABC")
    [result] = compile_jobs(tmp_path / "out", [Job("w/combined-sheet.pdf", copies)])
    assert any("compiled the 3 copies one by one" in note for note in result.notes)
    for copy in "ABC":
        assert pages(tmp_path / "out" / "w" / copy / "sheet.pdf") >= 1
    assert "Text B" in pdftotext(tmp_path / "out" / "w" / "B" / "sheet.pdf")


@needs_tex
def test_copies_with_different_preambles_go_to_separate_batches(tmp_path: Path) -> None:
    body = "\\section*{Part}\nSome text.\n"
    plain = document(body, "A")
    other = plain.replace("\\documentclass{article}", "\\documentclass{article}\n\\usepackage{amssymb}")
    job = Job("w/combined-sheet.pdf", (Copy("w/A/sheet.tex", plain, "A"), Copy("w/B/sheet.tex", other, "B"),
                                        Copy("w/C/sheet.tex", plain.replace("{A}", "{C}"), "C")))
    (tmp_path / "out").mkdir()
    [result] = compile_jobs(tmp_path / "out", [job], two_sided=False)
    assert result.compiled and result.files == ("w/A/sheet.pdf", "w/B/sheet.pdf", "w/C/sheet.pdf", "w/combined-sheet.pdf")
    assert pages(tmp_path / "out" / "w" / "combined-sheet.pdf") == 3
    assert not (tmp_path / "out" / ".tex").exists()


MATRIX_PREAMBLE = "\\documentclass{article}\n\\usepackage{amsmath}\n\\usepackage{array}"
# A header taller than \headheight: fancyhdr's check (off in batches) would warn on every page.
TALL_HEADER = "\\usepackage{fancyhdr}\n\\pagestyle{fancy}\n\\fancyhead[L]{\\Large Tall\\\\header}"


@needs_tex
def test_what_batches_do_for_speed_gives_the_same_pdfs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Batches keep each matrix width's column template (batch._MATRICES) and skip fancyhdr's
    header height check. Copies that widen the counter, use arrays, build a row by a macro or
    stretch rows, under a header too tall, come out byte for byte as from batches without either."""
    bodies = {
        "A": "$\\begin{bmatrix}1 & 2 \\\\ 3 & 4\\end{bmatrix}$ and $\\begin{pmatrix}1 & 2 & 3\\end{pmatrix}$",
        "B": "\\setcounter{MaxMatrixCols}{12}$\\begin{bmatrix}" + " & ".join("123456789012") + "\\end{bmatrix}$",
        "C": "\\newcommand\\row{1 & 2 & 3}$\\begin{bmatrix}\\row \\\\[2ex] 4\\end{bmatrix}$ "
             "$\\begin{array}{c|r}x & y\\end{array}$",
        "D": "\\renewcommand{\\arraystretch}{1.7}$\\begin{vmatrix}1 & 2 \\\\ 3 & 4\\end{vmatrix}$ "
             "$\\begin{bmatrix}1 & 2\\end{bmatrix}$",
        "E": "\\newcolumntype{c}{>{\\scriptstyle}r}$\\begin{bmatrix}1 & 22 \\\\ 333 & 4\\end{bmatrix}$",
        "F": "$\\begin{bmatrix}1 & 22 \\\\ 333 & 4\\end{bmatrix}$",
    }
    preamble = f"{MATRIX_PREAMBLE}\n{TALL_HEADER}"
    job = Job("w/combined-sheet.pdf", tuple(Copy(f"w/{v}/sheet.tex", document(body, v).replace("\\documentclass{article}", preamble), v)
                                            for v, body in bodies.items()))
    for folder in ("kept", "anew"):
        if folder == "anew":
            plain = batch._MACROS.replace(batch._MATRICES, "").replace(batch._QUIET_FANCYHDR, "")
            assert plain != batch._MACROS.replace(batch._MATRICES, "")
            monkeypatch.setattr(batch, "_MACROS", plain)
        (tmp_path / folder).mkdir()
        [result] = compile_jobs(tmp_path / folder, [job], two_sided=False)
        assert result.compiled and not result.notes
    assert digests(tmp_path / "kept") == digests(tmp_path / "anew")
    assert "1 2 3" in pdftotext(tmp_path / "kept" / "w" / "C" / "sheet.pdf")
    assert "1 2 3 4 5 6 7 8 9 0 1 2" in pdftotext(tmp_path / "kept" / "w" / "B" / "sheet.pdf")


@needs_tex
def test_batch_macros_take_effect_with_the_installed_packages(tmp_path: Path) -> None:
    """_MATRICES takes over only where amsmath and array.sty define their macros as it expects:
    with this machine's TeX it must (or the batches lose a fifth of their speed unnoticed), and
    without array.sty it must leave matrices alone. fancyhdr's header check is off in a batch
    (a copy compiled on its own still warns)."""
    kept = "".join(f"\\ifcsname generator@matrix@{n}\\detokenize\\expandafter{{\\the\\NC@list}}\\endcsname\\space {n}\\fi" for n in (10, 3))
    probe = f"\\makeatletter\\typeout{{kept widths:\\ifdefined\\NC@list{kept}\\fi}}\\makeatother"
    body = f"$\\begin{{bmatrix}}1 & 2\\end{{bmatrix}}$ $\\begin{{bmatrix}}1\\end{{bmatrix}}${probe}"
    for name, preamble in (("with", f"{MATRIX_PREAMBLE}\n{TALL_HEADER}"), ("without", "\\documentclass{article}\n\\usepackage{amsmath}")):
        copy = document(body).replace("\\documentclass{article}", preamble)
        text, _ = batch_text(Job("x.pdf", (Copy("x/A/sheet.tex", copy, "A"),)), [0], preamble + "\n", two_sided=False)
        for source, tex in (("batch", text), ("alone", copy)):
            (tmp_path / name / source).mkdir(parents=True)
            (tmp_path / name / source / "doc.tex").write_text(tex)
            subprocess.run(["pdflatex", "-interaction=nonstopmode", "-halt-on-error", "doc.tex"], cwd=tmp_path / name / source,
                           capture_output=True, check=True)
        logs = {source: (tmp_path / name / source / "doc.log").read_text(encoding="latin-1") for source in ("batch", "alone")}
        kept = re.search(r"kept widths:(.*)", logs["batch"]).group(1).split()
        assert kept == (["10"] if name == "with" else []), name
        if name == "with":
            assert "headheight is too small" in logs["alone"] and "headheight is too small" not in logs["batch"]


@needs_tex
def test_jobs_handed_over_in_steps_come_back_in_order_as_if_compiled_at_once(tmp_path: Path) -> None:
    """The build hands each document to TeX as it is written (Typesetter.submit), then writes
    its manifest while TeX works: results in submission order, the same bytes as compile_jobs."""
    jobs = [Job(f"{name}/combined-sheet.pdf", tuple(Copy(f"{name}/{v}/sheet.tex", document(f"{name} {v} text.", v), v)
                                                    for v in "AB")) for name in ("small", "large", "mid")]
    for folder in ("steps", "once"):
        (tmp_path / folder).mkdir()
    with batch.Typesetter(tmp_path / "steps", workers=2) as typesetter:
        typesetter.submit(jobs[:1])
        typesetter.submit(jobs[1:])
        results = typesetter.finish()
    assert [r.files[-1] for r in results] == [job.combined for job in jobs]
    assert all(r.compiled for r in results)
    assert [r.key for r in results] == [r.key for r in compile_jobs(tmp_path / "once", jobs, workers=1)]
    assert digests(tmp_path / "steps") == digests(tmp_path / "once")
    assert not (tmp_path / "steps" / ".tex").exists()


def test_leaving_a_typesetter_early_stops_its_threads(tmp_path: Path) -> None:
    """An error before `finish` (a template failing in the next document, Ctrl-C) ends every thread."""
    import threading

    before = threading.active_count()
    job = Job("w/combined-sheet.pdf", (Copy("w/A/sheet.tex", document("text"), "A"),))
    with pytest.raises(KeyboardInterrupt), batch.Typesetter(tmp_path, workers=2) as typesetter:
        typesetter.submit([job])
        raise KeyboardInterrupt
    assert threading.active_count() == before
    assert not (tmp_path / ".tex").exists()


def test_no_batch_without_copies(tmp_path: Path) -> None:
    assert compile_jobs(tmp_path, []) == []


def test_question_helper_still_matches_its_template() -> None:
    # The tests above edit this line of the helper question; fail loudly if it moves.
    assert "  Let $u = W x$ with" in QUESTION


@needs_tex
def test_the_fast_splitter_and_pypdf_give_the_same_pages(tmp_path: Path) -> None:
    """generator.typeset.split copies objects byte for byte; pypdf rebuilds them: a reader sees the same."""
    from pypdf import PdfReader, PdfWriter

    from generator.typeset.split import split_pdf

    body = "\n".join(f"\\section*{{Copy {c}}} Text $x^{i}$.\\newpage More.\\newpage" for i, c in enumerate("ABC"))
    source = tmp_path / "batch.tex"
    source.write_text(f"\\pdfobjcompresslevel=0\n{document(body)}", encoding="utf-8")
    standalone(source, tmp_path / "tex")
    pdf = tmp_path / "tex" / "batch.pdf"
    ranges = [(0, 2), (2, 4), (4, 6)]
    fast = [tmp_path / f"fast{i}.pdf" for i in range(3)]
    split_pdf(pdf, ranges, fast)
    reader = PdfReader(pdf)
    for i, (first, end) in enumerate(ranges):
        writer = PdfWriter()
        for n in range(first, end):
            writer.add_page(reader.pages[n])
        slow = tmp_path / f"slow{i}.pdf"
        writer.write(slow)
        assert len(PdfReader(fast[i], strict=True).pages) == 2
        assert pdftotext(fast[i]) == pdftotext(slow)
        assert pictures(fast[i], tmp_path / f"f{i}") == pictures(slow, tmp_path / f"s{i}")
    assert PdfReader(fast[0]).metadata.producer.startswith("pdfTeX")  # pdfTeX's /Info is kept


@needs_tex
def test_a_pdf_with_object_streams_is_refused_by_the_fast_splitter(tmp_path: Path) -> None:
    from generator.typeset.split import SplitError, split_pdf

    source = tmp_path / "doc.tex"
    source.write_text(document("One.\\newpage Two."), encoding="utf-8")
    pdf = standalone(source, tmp_path / "tex")  # pdfTeX's default: object streams
    with pytest.raises(SplitError):
        split_pdf(pdf, [(0, 1), (1, 2)], [tmp_path / "a.pdf", tmp_path / "b.pdf"])
    assert not (tmp_path / "a.pdf").exists()
    batch._split(pdf, [(0, 1), (1, 2)], [tmp_path / "a.pdf", tmp_path / "b.pdf"])  # falls back to pypdf
    assert "Two." in pdftotext(tmp_path / "b.pdf") and "One." not in pdftotext(tmp_path / "b.pdf")


@needs_tex
@pytest.mark.skipif(not subprocess.run(["kpsewhich", "CJKutf8.sty"], capture_output=True, text=True, check=False).stdout.strip(),
                    reason="needs the CJK package (apt-get install latex-cjk-common latex-cjk-chinese-arphic-gbsn00lp)")
def test_a_roster_mixing_scripts_is_one_print_file_in_roster_order(tmp_path: Path) -> None:
    """Copies that load the CJK package form a batch of their own; the print file interleaves them."""
    from pypdf import PdfReader

    from generator.typeset.combine import combine_pdfs

    rows = [AWKWARD[0], ("张伟", "7"), AWKWARD[1], ("山田 はなこ", "8_jp"), AWKWARD[2]]
    roster = write_roster(tmp_path / "roster.csv", rows)
    out = tmp_path / "out"
    build(BuildOptions(bank=CLASSBANK, out=out, roster=roster, worksheets=("drill",)))
    combined = out / "drill" / "combined-sheet.pdf"
    reader = PdfReader(combined, strict=True)
    assert [o.title.split(" (")[0] for o in reader.outline] == [name for name, _ in rows]
    copies = sorted(p for p in (out / "drill").iterdir() if p.is_dir())
    reference = tmp_path / "reference.pdf"
    combine_pdfs([(c / "sheet.pdf", "x") for c in copies], reference, two_sided=True)  # pypdf, as before
    assert len(reader.pages) == len(PdfReader(reference).pages)
    assert pdftotext(combined) == pdftotext(reference)


@needs_tex
def test_a_batch_in_a_primed_run_gets_its_second_pass_from_the_file(tmp_path: Path) -> None:
    """A reference needs a second pass: the first reads the batch through the primed run's pipe,
    the second the file it then becomes; the PDFs are those of a batch compiled without one."""
    import sys

    from generator.typeset.batch import Typesetter, batch_head
    from generator.typeset.formats import Primer, UnpackedFormat

    copies = tuple(Copy(f"w/{v}/sheet.tex", document(f"\\section{{Start}}\\label{{s}}See section~\\ref{{s}} in {v}.", v), v)
                   for v in "AB")
    job = Job("w/combined-sheet.pdf", copies)
    head = batch_head(split_copy(copies[0].text)[0], two_sided=False)  # type: ignore[index]
    with UnpackedFormat(None) as fmt, Primer(head, fmt, limit=1) as primer:
        primer._thread.join()
        for folder, given in (("primed", primer), ("plain", None)):
            (tmp_path / folder).mkdir()
            with Typesetter(tmp_path / folder, two_sided=False, primer=given) as typesetter:
                typesetter.submit([job])
                [result] = typesetter.finish()
            assert result.compiled and not result.notes
        if sys.platform.startswith("linux"):
            assert primer._runs == []  # the batch took the run
    assert "See section 1 in B." in pdftotext(tmp_path / "primed" / "w" / "B" / "sheet.pdf")
    assert digests(tmp_path / "primed") == digests(tmp_path / "plain")

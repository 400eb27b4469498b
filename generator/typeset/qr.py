"""Stage 6, compile: the QR code on each page of a sheet, made between two pdflatex passes.

Why not TeX Live's `qrcode` package: it computes each code in TeX macros, about 0.16 s a code
(20 codes: 3.2 s of pdflatex), and a class set of 50 sheets has some 250 pages, each with its
own code (document, copy, page). So a page whose code is not known yet asks for it: TeX writes
`<copy key> <page>` to `<job>.qrq` (templates/preamble.tex.j2, `\\generatorqr`); after the pass
this module makes the codes with segno (pure Python, about a millisecond each) and writes them
to `<job>.qrc`, which the next pass reads at \\begin{document}. The copy key is the hex of
"document|copy" (UTF-8), so no name or id of a student has to pass through TeX's \\write.

A code is drawn as filled rectangles in one `\\pdfliteral` (one per run of dark modules in a
row), 0.5 mm a module, with a quiet zone of two modules. The pass that makes a sheet's page
totals ("page 2 of 5") already asks for a second pass, so the codes add no pass of their own.
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["MODULE_BP", "qr_content", "qr_literal", "write_qr_codes"]

MODULE_BP = 1.4173  # 0.5 mm in PostScript points, as \generator@qrbox sizes the box
QUIET = 2  # modules of white around the code


def qr_content(key: str, page: int) -> str:
    """What the code of page `page` of the copy `key` (hex of "document|copy") encodes."""
    return f"{bytes.fromhex(key).decode('utf-8')}|{page}"


def qr_literal(content: str) -> tuple[int, str]:
    """(size in modules, quiet zone included; PDF drawing operators) of the QR code of `content`."""
    import segno  # only builds that make PDFs need it

    matrix = segno.make_qr(content, error="m").matrix
    n = len(matrix)
    ops = [f"q 0 g {MODULE_BP} 0 0 {MODULE_BP} {QUIET * MODULE_BP:.4f} {QUIET * MODULE_BP:.4f} cm"]
    for r, row in enumerate(matrix):
        y = n - 1 - r  # PDF's y grows upwards; the first row is the top one
        c = 0
        while c < n:
            if row[c]:
                start = c
                while c < n and row[c]:
                    c += 1
                ops.append(f"{start} {y} {c - start} 1 re")
            else:
                c += 1
    ops.append("f Q")
    return n + 2 * QUIET, " ".join(ops)


def write_qr_codes(tex_file: Path) -> bool:
    """Make the QR codes the last pass over `tex_file` asked for; True when it asked for any
    (another pass then draws them). The request file is removed, so a pass asks only once."""
    requests = tex_file.with_suffix(".qrq")
    try:
        lines = requests.read_text(encoding="ascii").split("\n")
    except (OSError, UnicodeDecodeError):
        return False
    requests.unlink()
    codes = tex_file.with_suffix(".qrc")
    asked = []
    for line in lines:
        key, _, page = line.strip().partition(" ")
        if key and page.isdigit() and (key, page) not in asked:
            asked.append((key, page))
    if not asked:
        return False
    text = ["\\makeatletter"]
    for key, page in asked:
        try:
            size, literal = qr_literal(qr_content(key, int(page)))
        except ValueError:  # (not a copy key the templates wrote: nothing to draw)
            continue
        text.append(f"\\generator@qrdef{{{key}@{page}}}{{\\generator@qrbox{{{size}}}{{{literal}}}}}")
    text.append("\\makeatother\n")
    with open(codes, "a", encoding="ascii") as f:
        f.write("\n".join(text))
    return True

"""Which characters this machine's TeX can print, and text escaped so that it prints literally.

The spec stage asks it of roster names (a name TeX cannot print is refused when the roster is
read, with its row); the render stage escapes every plain text through `escape_text`
(re-exported by `generator.render.latex`, the one place values and text become LaTeX).
"""

from __future__ import annotations

import re
import shutil
import subprocess
from functools import cache
from pathlib import Path
from typing import Any

__all__ = ["CJK_FONT", "escape_text", "unprintable_characters"]

_TEXT_SPECIALS = {
    "\\": r"\textbackslash{}",
    "&": r"\&",
    "%": r"\%",
    "$": r"\$",
    "#": r"\#",
    "_": r"\_",
    "{": r"\{",
    "}": r"\}",
    "~": r"\textasciitilde{}",
    "^": r"\textasciicircum{}",
    # Straight quotes and dashes would otherwise be turned into typographic ligatures.
    "'": r"\textquotesingle{}",
    "`": r"\textasciigrave{}",
    "<": r"\textless{}",
    ">": r"\textgreater{}",
    "|": r"\textbar{}",
    "-": "-{}",
    "\n": " ",
    "\r": " ",
    "\t": " ",
}

# Chinese and Japanese text (hanzi/kanji, kana, full-width forms; Hangul is matched so that it can
# be reported) is typeset by the CJK package with the Arphic font below: pdflatex's T1 fonts have
# no such glyphs. A document containing `\begin{CJK}` loads CJKutf8 (see templates/preamble.tex.j2).
CJK_FONT = "gbsn"
_CJK_RUN = re.compile("[\u2e80-\u9fff\uac00-\ud7af\uf900-\ufaff\uff00-\uffef]+")


def escape_text(text: Any) -> str:
    """Make arbitrary text print literally in LaTeX text mode.

    Non-ASCII letters pass through as UTF-8 (T1 fonts cover Latin scripts); runs of CJK
    characters are wrapped in a CJK environment.
    """
    escaped = "".join(_TEXT_SPECIALS.get(ch, ch) for ch in str(text))
    return _CJK_RUN.sub(lambda m: f"\\begin{{CJK}}{{UTF8}}{{{CJK_FONT}}}{m.group(0)}\\end{{CJK}}", escaped)


def unprintable_characters(text: str) -> list[str]:
    """The characters of `text` that `escape_text` output cannot print with this machine's TeX.

    Covered are ASCII, what the T1 and TS1 font encodings declare for UTF-8 input (Latin
    letters with accents, ß, ł, ...), and CJK characters whose plane the CJK font has.
    Returns [] when no TeX installation can be found (nothing can be checked then).
    """
    covered, planes = _tex_coverage()
    if covered is None:
        return []
    bad = []
    for ch in dict.fromkeys(text):
        code = ord(ch)
        if 0x20 <= code < 0x7F or ch in "\n\r\t" or ch in covered:
            continue
        if _CJK_RUN.fullmatch(ch) and f"{code >> 8:02x}" in planes:
            continue
        bad.append(ch)
    return bad


@cache
def _tex_coverage() -> tuple[frozenset[str] | None, frozenset[str]]:
    """Characters declared in t1enc.dfu/ts1enc.dfu, and the CJK font's Unicode planes present."""
    if shutil.which("kpsewhich") is None:
        return None, frozenset()
    try:
        found = subprocess.run(
            ["kpsewhich", "t1enc.dfu", "ts1enc.dfu", f"{CJK_FONT}u4e.tfm", "CJKutf8.sty"],
            capture_output=True, text=True, timeout=30, check=False,
        ).stdout.split()
    except (OSError, subprocess.SubprocessError):
        return None, frozenset()
    covered: set[str] = set()
    planes: set[str] = set()
    for path in found:
        if path.endswith(".dfu"):
            with open(path, encoding="latin-1") as f:
                for code in re.findall(r"\\DeclareUnicodeCharacter\{([0-9A-Fa-f]+)\}", f.read()):
                    covered.add(chr(int(code, 16)))
    tfm = next((p for p in found if p.endswith(".tfm")), None)
    if tfm is not None and any(p.endswith("CJKutf8.sty") for p in found):
        prefix = f"{CJK_FONT}u"
        planes = {f.stem[len(prefix):] for f in Path(tfm).parent.glob(f"{prefix}*.tfm")}
    if not covered:
        return None, frozenset()
    return frozenset(covered), frozenset(planes)

"""Where document templates are found, the Jinja syntax they are written in, and the preamble.

Light on imports (Jinja only), unlike `generator.render.documents`: the build renders the shared preamble
before it imports SymPy, to start TeX on it early (`generator.typeset.formats.Primer`).

Delimiters are `<< var >>`, `<% block %>` and `<# comment #>`, because `{{`, `{%` and `{#` occur in
ordinary LaTeX.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["PAPERS", "PROJECT_TEMPLATES", "SYNTAX", "FONT_SIZES", "PrintSettings", "project_preamble", "template_paths"]

PAPERS = ("a4", "letter")
# article takes 10-12 pt; extarticle (extsizes, in texlive-latex-extra) the larger print sizes.
FONT_SIZES = (10, 11, 12, 14, 17, 20)
LARGE_PRINT = 14


@dataclass(frozen=True, slots=True)
class PrintSettings:
    """Paper and print size of every document of a build (`--paper`, `--font-size`, `--large-print`).

    Large print is 14 pt (or the font size asked, if larger) with a quarter more space between
    lines; answer spaces are measured in lines, so they grow with it.
    """

    paper: str = "a4"
    font_size: int | None = None
    large_print: bool = False
    # "Page x of y" and a QR code on every page of worksheet sheets too (exam sheets always have
    # them). Off by default: the totals need a second pdflatex pass over every sheet batch, which
    # with the codes made 50 variants of the worksheets about 1.5 times the CPU (2026-12-02).
    scan_marks: bool = False

    @property
    def size(self) -> int:
        """The font size in points."""
        if self.large_print:
            return max(LARGE_PRINT, self.font_size or 0)
        return self.font_size or 11

    def context(self) -> dict[str, Any]:
        """What the preamble template reads: `paper`, `font_size`, `document_class`, `line_spread`."""
        return {"paper": self.paper, "font_size": self.size,
                "document_class": "article" if self.size <= 12 else "extarticle",
                "line_spread": "1.25" if self.large_print else "", "scan_marks": self.scan_marks}

PROJECT_TEMPLATES = Path(__file__).resolve().parents[2] / "templates"
PREAMBLE = "preamble.tex.j2"
SYNTAX: dict[str, Any] = {
    "block_start_string": "<%",
    "block_end_string": "%>",
    "variable_start_string": "<<",
    "variable_end_string": ">>",
    "comment_start_string": "<#",
    "comment_end_string": "#>",
    "keep_trailing_newline": True,
    "trim_blocks": True,
    "lstrip_blocks": True,
}


def template_paths(user_templates: str | Path | None) -> list[str]:
    """The folders templates are looked up in: the user's first, then the project's."""
    return [*([str(user_templates)] if user_templates else []), str(PROJECT_TEMPLATES)]


def project_preamble(user_templates: str | Path | None, printing: PrintSettings | None = None) -> str | None:
    """The shared preamble a document without CJK names starts with, as the project's
    `preamble.tex.j2` renders it; None when the user's folder has its own preamble (its text is
    known only once the documents are rendered, in the sandbox) or it cannot be rendered."""
    if user_templates and (Path(user_templates) / PREAMBLE).exists():
        return None
    import jinja2

    try:
        environment = jinja2.Environment(loader=jinja2.FileSystemLoader(str(PROJECT_TEMPLATES)),
                                         undefined=jinja2.StrictUndefined, autoescape=False, **SYNTAX)
        return environment.get_template(PREAMBLE).render(cjk=False, **(printing or PrintSettings()).context())
    except (OSError, jinja2.TemplateError):
        return None

"""Where document templates are found, the Jinja syntax they are written in, and the preamble.

Light on imports (Jinja only), unlike `generator.render.documents`: the build renders the shared preamble
before it imports SymPy, to start TeX on it early (`generator.typeset.formats.Primer`).

Delimiters are `<< var >>`, `<% block %>` and `<# comment #>`, because `{{`, `{%` and `{#` occur in
ordinary LaTeX.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

__all__ = ["PROJECT_TEMPLATES", "SYNTAX", "project_preamble", "template_paths"]

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


def project_preamble(user_templates: str | Path | None) -> str | None:
    """The shared preamble a document without CJK names starts with, as the project's
    `preamble.tex.j2` renders it; None when the user's folder has its own preamble (its text is
    known only once the documents are rendered, in the sandbox) or it cannot be rendered."""
    if user_templates and (Path(user_templates) / PREAMBLE).exists():
        return None
    import jinja2

    try:
        environment = jinja2.Environment(loader=jinja2.FileSystemLoader(str(PROJECT_TEMPLATES)),
                                         undefined=jinja2.StrictUndefined, autoescape=False, **SYNTAX)
        return environment.get_template(PREAMBLE).render(cjk=False)
    except (OSError, jinja2.TemplateError):
        return None

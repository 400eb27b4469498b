"""Find the spec line whose template produced a given line of a generated `.tex` file.

The render stage writes `%% generator: question <id> from <spec path>` and one marker per piece
(`stem`, `part <id>`, `solution`) into every document, so a TeX error's line number tells which
question and which piece it is in. This module goes one step further for the author: it reads the
spec again (with positions), takes the templates that feed that piece (for a part: its prompt,
vectorized form and answer display), and picks the template line whose literal text (everything
outside `<< >>`, `<% %>`, `<# #>`) occurs, in order, in the `.tex` line TeX complained about. Ties
and lines that are nothing but a `<< value >>` are settled by position within the piece.

This is a best effort used only for messages: it returns None rather than guess wildly.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from generator.errors import GeneratorError, Location
from generator.spec.model import format_path
from generator.spec.yamlload import KeyPath, load_yaml

__all__ = ["TemplateLine", "field_origin", "piece_location", "template_origin"]

_JINJA = re.compile(r"<<.*?>>|<%.*?%>|<#.*?#>")


@dataclass(frozen=True, slots=True)
class TemplateLine:
    """One line of a spec template: where it is, which key it belongs to, and its text."""

    where: Location
    key: str
    text: str


def _candidates(data: dict[str, Any], piece: str) -> list[KeyPath]:
    if piece in ("stem", "solution"):
        return [(piece,)]
    if piece.startswith("part "):
        part_id = piece[5:].strip()
        parts = data.get("parts")
        for i, part in enumerate(parts if isinstance(parts, list) else []):
            if isinstance(part, dict) and part.get("id") == part_id:
                return [("parts", i, "prompt"), ("parts", i, "vectorized", "latex"), ("parts", i, "answer")]
    return []


def _value(data: Any, path: KeyPath) -> Any:
    for key in path:
        if isinstance(data, dict) and isinstance(key, str):
            data = data.get(key)
        elif isinstance(data, list) and isinstance(key, int) and key < len(data):
            data = data[key]
        else:
            return None
    return data


def _literals(line: str) -> list[str]:
    return [chunk.strip() for chunk in _JINJA.split(line) if chunk.strip()]


def _found_in_order(chunks: list[str], text: str) -> bool:
    start = 0
    for chunk in chunks:
        index = text.find(chunk, start)
        if index < 0:
            return False
        start = index + len(chunk)
    return True


def template_origin(spec_path: str, question_id: str, piece: str, rendered: list[str]) -> TemplateLine | None:
    """The template line in `spec_path` that most likely produced `rendered[-1]`.

    Args:
        spec_path: the question file (as written in the `from` marker).
        question_id: the question the marker names; the file must still define it.
        piece: `stem`, `solution` or `part <id>`, as in the marker.
        rendered: the `.tex` lines after the piece's marker, up to and including the line
            TeX reported.
    """
    if not rendered:
        return None
    try:
        data, positions = load_yaml(spec_path)
    except GeneratorError:
        return None
    if not isinstance(data, dict) or data.get("id") != question_id:
        return None
    target = rendered[-1]
    estimate = len(rendered) - 1
    best: tuple[tuple[int, int], TemplateLine] | None = None
    offset = 0
    for path in _candidates(data, piece):
        source = _value(data, path)
        if not isinstance(source, str):
            continue
        start = positions.text_start(path)
        lines = source.splitlines()
        for j, line in enumerate(lines):
            chunks = _literals(line)
            if not chunks and "<<" not in line:
                continue  # blank, a comment, or a block tag that renders to nothing
            if chunks and not _found_in_order(chunks, target):
                continue
            score = sum(len(chunk) for chunk in chunks)
            distance = abs(offset + j - estimate)
            where = Location(start.file, (start.line or 1) + j, start.col if j == 0 else None)
            candidate = ((score, -distance), TemplateLine(where, format_path(path), line.strip()))
            if best is None or candidate[0] > best[0]:
                best = candidate
        offset += len(lines)
    return best[1] if best else None


def piece_location(spec_path: str, question_id: str, piece: str) -> Location | None:
    """Where the template of a marker's piece (`stem`, `solution`, `part <id>`) starts in `spec_path`."""
    try:
        data, positions = load_yaml(spec_path)
    except GeneratorError:
        return None
    if not isinstance(data, dict) or data.get("id") != question_id:
        return None
    for path in _candidates(data, piece):
        if isinstance(_value(data, path), str):
            return positions.text_start(path)
    return None


def _fields(data: dict[str, Any]) -> list[KeyPath]:
    """The raw-LaTeX fields of a worksheet or exam file that documents print as written."""
    paths: list[KeyPath] = [("instructions",)]
    footnotes = data.get("footnotes")
    paths += [("footnotes", i) for i in range(len(footnotes) if isinstance(footnotes, list) else 0)]
    questions = data.get("questions")
    for i, entry in enumerate(questions if isinstance(questions, list) else []):
        if isinstance(entry, dict):
            paths += [("questions", i, key) for key in ("heading", "footnote") if key in entry]
    return paths


def field_origin(spec_path: str, rendered: str) -> TemplateLine | None:
    """The line of a worksheet or exam field (instructions, footnotes, headings, question
    footnotes) whose text best matches `rendered`, the `.tex` line TeX complained about."""
    if not rendered.strip():
        return None
    try:
        data, positions = load_yaml(spec_path)
    except GeneratorError:
        return None
    if not isinstance(data, dict):
        return None
    best: tuple[int, TemplateLine] | None = None
    for path in _fields(data):
        source = _value(data, path)
        if not isinstance(source, str):
            continue
        start = positions.text_start(path)
        for j, line in enumerate(source.splitlines()):
            chunk = line.strip()
            if not chunk or chunk not in rendered:
                continue
            where = Location(start.file, (start.line or 1) + j, start.col if j == 0 else None)
            if best is None or len(chunk) > best[0]:
                best = (len(chunk), TemplateLine(where, format_path(path), chunk))
    return best[1] if best else None

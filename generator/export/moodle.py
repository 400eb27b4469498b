"""Moodle XML: one category per question slot, one question per variant (docs/export.md).

A question with one scalar numeric part becomes `numerical` (with its tolerance), one with a
single choice part `multichoice`, anything else `cloze` (Moodle's "embedded answers"): each
numeric entry a `{w:NUMERICAL:=value:tolerance}` blank, each choice part a `MULTICHOICE` blank.
The worked solution is the general feedback. Math is `\\( \\)` and `\\[ \\]` (MathJax), HTML in
CDATA. Each blank sits in a `<span title="part[i,j]">` so that the file reads back without
knowing the draw (`read_moodle`), as the export's self-check does.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from fractions import Fraction
from functools import reduce

from lxml import etree

from generator.export.common import (
    Answers,
    ExportDocument,
    ExportPart,
    ExportSlot,
    ExportVariant,
    Target,
    html_of,
    number_text,
)
from generator.export.layout import entry_label, part_html

__all__ = ["CLOZE_BLANK", "cloze_escape", "read_moodle", "write_moodle"]

# Characters with a meaning inside a cloze blank, escaped with a backslash in answers and feedback.
_CLOZE_SPECIALS = re.compile(r'([}#~/"\\])')
# `{` starting what Moodle would take for a blank, in text outside the blanks: `{1:` or `{:`.
_BLANK_START = re.compile(r"\{(?=\d*:)")
CLOZE_BLANK = re.compile(r"\{(\d*):(NUMERICAL|NM|MULTICHOICE|MC|SHORTANSWER|SA):((?:\\.|[^\\}])*)\}")


def cloze_escape(text: str) -> str:
    """Text for inside a cloze blank: `} # ~ / " \\` escaped with a backslash."""
    return _CLOZE_SPECIALS.sub(r"\\\1", text)


def _defuse(text: str) -> str:
    """Text outside the blanks that Moodle must not read as a blank: `{1:` becomes `{ 1:` (TeX reads both alike)."""
    return _BLANK_START.sub("{ ", text)


def write_moodle(document: ExportDocument, notes: list[str]) -> bytes:
    """The Moodle XML quiz file of a document (UTF-8)."""
    quiz = etree.Element("quiz")
    for slot in document.slots:
        category = etree.SubElement(quiz, "question", type="category")
        path = "/".join(name.replace("/", "//") for name in ("$course$", "top", document.title, slot.title))
        _text(etree.SubElement(category, "category"), path)
        for variant in slot.variants:
            quiz.append(_question(document, slot, variant, notes))
    return etree.tostring(quiz, xml_declaration=True, encoding="UTF-8", pretty_print=True)


def _question(document: ExportDocument, slot: ExportSlot, variant: ExportVariant, notes: list[str]) -> etree._Element:
    parts = [p for p in variant.parts if _supported(document, slot, variant, p, notes)]
    scalar = len(parts) == 1 and parts[0].kind == "numeric" and not parts[0].shape
    single_choice = len(parts) == 1 and parts[0].kind == "choice"
    kind = "numerical" if scalar else "multichoice" if single_choice else "cloze"
    question = etree.Element("question", type=kind)
    _text(etree.SubElement(question, "name"), f"{slot.title} ({variant.variant})")
    stem = html_of(variant.stem)
    if kind == "cloze":
        weights = _weights(parts)
        body = "".join(part_html(p, _cloze_blank(p, weights[p.id])) if p.kind == "numeric"
                       else _cloze_choice(p, weights[p.id]) for p in parts)
        text = _defuse(stem) + body
    elif kind == "numerical":
        text = stem + f'<span title="{parts[0].id}">' + part_html(parts[0], lambda t: "") + "</span>"
    else:
        text = stem + f'<span title="{parts[0].id}">' + html_of(parts[0].prompt) + "</span>"
    _html(question, "questiontext", text)
    _html(question, "generalfeedback", html_of(variant.solution))
    etree.SubElement(question, "defaultgrade").text = number_text(variant.points)
    etree.SubElement(question, "penalty").text = "0"
    etree.SubElement(question, "hidden").text = "0"
    etree.SubElement(question, "idnumber").text = f"{document.id}-Q{slot.number}-{variant.variant}"
    if kind == "numerical":
        target = parts[0].targets[0]
        answer = etree.SubElement(question, "answer", fraction="100", format="moodle_auto_format")
        etree.SubElement(answer, "text").text = number_text(target.value)
        etree.SubElement(answer, "tolerance").text = number_text(target.tolerance)
        _html(answer, "feedback", "")
        for name, value in (("unitgradingtype", "0"), ("unitpenalty", "0"), ("showunits", "3"), ("unitsleft", "0")):
            etree.SubElement(question, name).text = value
    elif kind == "multichoice":
        _multichoice(question, parts[0])
    return question


def _supported(document: ExportDocument, slot: ExportSlot, variant: ExportVariant, part: ExportPart,
               notes: list[str]) -> bool:
    if part.kind in ("numeric", "choice"):
        return True
    notes.append(f"moodle: {document.id} Q{slot.number} {variant.question} part {part.id} ({part.kind}) left out: "
                 "Moodle has no question type for it without plugins (e.g. STACK)")
    return False


def _weights(parts: list[ExportPart]) -> dict[str, list[int]]:
    """Integer cloze weights per blank, in proportion to each part's points shared over its entries."""
    shares = {p.id: Fraction(p.points).limit_denominator(1000) / max(1, len(p.targets) or 1) for p in parts}
    scale = reduce(math.lcm, (s.denominator for s in shares.values()), 1)
    return {p.id: [int(shares[p.id] * scale)] for p in parts}


def _cloze_blank(part: ExportPart, weight: list[int]) -> Callable[[Target], str]:
    def blank(target: Target) -> str:
        code = f"{{{weight[0]}:NUMERICAL:={number_text(target.value)}:{number_text(target.tolerance)}}}"
        return f'<span title="{entry_label(part.id, target.index)}">{code}</span>'
    return blank


def _cloze_choice(part: ExportPart, weight: list[int]) -> str:
    options = "~".join(("=" if c.correct else "") + cloze_escape(html_of(c.text)) for c in part.choices)
    return (f'<div class="part">({part.id}) {_defuse(html_of(part.prompt))} '
            f'<span title="{part.id}">{{{weight[0]}:MULTICHOICE:{options}}}</span></div>')


def _multichoice(question: etree._Element, part: ExportPart) -> None:
    right = sum(c.correct for c in part.choices)
    etree.SubElement(question, "single").text = "true" if right == 1 else "false"
    etree.SubElement(question, "shuffleanswers").text = "true"
    etree.SubElement(question, "answernumbering").text = "abc"
    for choice in part.choices:
        fraction = number_text(round(100 / right, 5)) if choice.correct and right else "0"
        answer = etree.SubElement(question, "answer", fraction=fraction, format="html")
        etree.SubElement(answer, "text").text = etree.CDATA(html_of(choice.text))


def _text(parent: etree._Element, text: str) -> None:
    etree.SubElement(parent, "text").text = text


def _html(parent: etree._Element, name: str, text: str) -> None:
    element = etree.SubElement(parent, name, format="html")
    etree.SubElement(element, "text").text = etree.CDATA(text)


# --- reading back -----------------------------------------------------------------------------------

_SPAN = re.compile(r'<span title="([^"]+)">(.*?)</span>', re.DOTALL)
_IDNUMBER = re.compile(r"^(.*)-Q(\d+)-([A-Z]+)$")


def read_moodle(data: bytes) -> Answers:
    """The numeric answers (value, tolerance) and right choices a Moodle XML file holds."""
    answers = Answers()
    root = etree.fromstring(data)
    for question in root.iterfind("question"):
        kind = question.get("type")
        if kind == "category":
            continue
        match = _IDNUMBER.match(question.findtext("idnumber") or "")
        if match is None:
            raise ValueError(f"question without a generator idnumber: {question.findtext('name/text')!r}")
        number, variant = int(match.group(2)), match.group(3)
        text = question.findtext("questiontext/text") or ""
        if kind == "numerical":
            part = _SPAN.search(text)
            answer = question.find("answer")
            assert part is not None and answer is not None
            answers.numeric[(number, variant, part.group(1), ())] = (
                _number(answer.findtext("text")), float(answer.findtext("tolerance") or "nan"))
        elif kind == "multichoice":
            part = _SPAN.search(text)
            assert part is not None
            answers.choices[(number, variant, part.group(1))] = tuple(
                a.findtext("text") or "" for a in question.iterfind("answer") if float(a.get("fraction", "0")) > 0)
        else:
            for label, inner in _SPAN.findall(text):
                blank = CLOZE_BLANK.fullmatch(inner)
                if blank is None:
                    continue
                part_id, index = _label(label)
                if blank.group(2) in ("NUMERICAL", "NM"):
                    value, tolerance = _first_right(blank.group(3))
                    answers.numeric[(number, variant, part_id, index)] = (value, tolerance)
                else:
                    options = re.split(r"(?<!\\)~", blank.group(3))
                    answers.choices[(number, variant, part_id)] = tuple(
                        re.sub(r"\\(.)", r"\1", o[1:]) for o in options if o.startswith("="))
    return answers


def _label(label: str) -> tuple[str, tuple[int, ...]]:
    if "[" not in label:
        return label, ()
    part_id, _, rest = label.partition("[")
    return part_id, tuple(int(k) for k in rest.rstrip("]").split(","))


def _first_right(body: str) -> tuple[int | float, float]:
    for with_feedback in re.split(r"(?<!\\)~", body):
        option = with_feedback.split("#", 1)[0]
        if option.startswith(("=", "%100%")):
            value, _, tolerance = option.removeprefix("=").removeprefix("%100%").partition(":")
            return _number(value), float(tolerance or 0)
    raise ValueError(f"cloze blank without a right answer: {body!r}")


def _number(text: str | None) -> int | float:
    text = (text or "").strip()
    return int(text) if re.fullmatch(r"-?\d+", text) else float(text)

"""QTI 1.2 for Canvas (Classic Quizzes): a zip with one assessment per document (docs/export.md).

Each question slot is a question group (a `section` with `selection_number` 1: Canvas picks one
variant per student); each variant an `item` with a numeric fill-in blank per entry, answered
exactly (`varequal`) or within a range (`vargte`/`varlte`). Canvas keeps four decimal places of
numbers: a part with a value or tolerance below 1e-4 is asked for multiplied by a power of ten
(the prompt says so), and the file holds the scaled numbers. Canvas's own question type for a
numeric blank (`numerical_question`) holds one answer: an item with several entries is written as
standard QTI 1.2 (several `response_str`), which Canvas may import as a different type (see
docs/export.md). A choice part (issue 17) is a `response_lid` with one option per letter of the
sheet, scored all or nothing: alone in its item, Canvas's `multiple_choice_question` (one right
option) or `multiple_answers_question` (several).
"""

from __future__ import annotations

import io
import math
import zipfile
from collections.abc import Callable
from decimal import Decimal

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

__all__ = ["CANVAS_PLACES", "canvas_scale", "read_qti12", "write_qti12"]

CANVAS_PLACES = 4  # decimal places Canvas keeps of a numeric answer
_ZIP_TIME = (2000, 1, 1, 0, 0, 0)  # fixed, so the same draw makes the same bytes
_FEEDBACK = "general_fb"


def canvas_scale(part: ExportPart) -> int:
    """The power of ten a part's values are multiplied by so that Canvas's rounding keeps them (0: none).

    An entry answered exactly needs each digit of its value within `CANVAS_PLACES` places; one
    with a tolerance needs the tolerance to be at least a unit in the last place kept."""
    needed = 0
    for target in part.targets:
        if target.tolerance:
            needed = max(needed, math.ceil(math.log10(10.0 ** -CANVAS_PLACES / target.tolerance)))
        elif target.value:
            exponent = _decimal(target.value).normalize().as_tuple().exponent
            needed = max(needed, -CANVAS_PLACES - int(exponent))
    return needed


def write_qti12(document: ExportDocument, notes: list[str]) -> bytes:
    """The zip: `<document>.xml` (questestinterop) and an `imsmanifest.xml` naming it."""
    root = etree.Element("questestinterop")
    assessment = etree.SubElement(root, "assessment", ident=document.id, title=document.title)
    top = etree.SubElement(assessment, "section", ident="root_section")
    for slot in document.slots:
        group = etree.SubElement(top, "section", ident=f"{document.id}-Q{slot.number}", title=slot.title)
        selection = etree.SubElement(etree.SubElement(group, "selection_ordering"), "selection")
        etree.SubElement(selection, "selection_number").text = "1"
        extension = etree.SubElement(selection, "selection_extension")
        etree.SubElement(extension, "points_per_item").text = number_text(slot.variants[0].points)
        for variant in slot.variants:
            group.append(_item(document, slot, variant, notes))
    quiz = etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True)
    return _zip({f"{document.id}.xml": quiz, "imsmanifest.xml": _manifest(document)})


def _item(document: ExportDocument, slot: ExportSlot, variant: ExportVariant, notes: list[str]) -> etree._Element:
    ident = f"{document.id}-Q{slot.number}-{variant.variant}"
    item = etree.Element("item", ident=ident, title=f"{slot.title} ({variant.variant})")
    parts = []
    for part in variant.parts:
        if part.kind in ("numeric", "choice"):
            parts.append(part)
        else:
            notes.append(f"qti12: {document.id} Q{slot.number} {variant.question} part {part.id} ({part.kind}) "
                         "left out: QTI 1.2 (Canvas) has no question type that checks a formula against the key")
    blanks = [(p, t) for p in parts for t in p.targets]
    choices = [p for p in parts if p.kind == "choice"]
    fields = {"question_type": _question_type(blanks, choices), "points_possible": number_text(variant.points),
              "generator_item": ident}
    metadata = etree.SubElement(etree.SubElement(item, "itemmetadata"), "qtimetadata")
    for label, entry in fields.items():
        field = etree.SubElement(metadata, "qtimetadatafield")
        etree.SubElement(field, "fieldlabel").text = label
        etree.SubElement(field, "fieldentry").text = entry
    presentation = etree.SubElement(item, "presentation")
    scales = {p.id: canvas_scale(p) for p in parts}
    numeric = [p for p in parts if p.kind == "numeric"]
    text = html_of(variant.stem) + "".join(part_html(p, _placeholder(p), scales[p.id]) for p in numeric)
    _mattext(presentation, text)
    for part, target in blanks:
        response = etree.SubElement(presentation, "response_str", ident=_ident(part, target), rcardinality="Single")
        _mattext(response, entry_label(part.id, target.index))
        fib = etree.SubElement(response, "render_fib", fibtype="Decimal")
        etree.SubElement(fib, "response_label", ident=f"{_ident(part, target)}-answer")
    for part in choices:
        _choice_response(presentation, part)
    processing = etree.SubElement(item, "resprocessing")
    etree.SubElement(etree.SubElement(processing, "outcomes"), "decvar", maxvalue="100", minvalue="0", varname="SCORE",
                     vartype="Decimal")
    for part, target in blanks:
        share = 100 * part.points / variant.points / len(part.targets) if variant.points else 0
        condition = etree.SubElement(processing, "respcondition", {"continue": "Yes"})
        _condition(etree.SubElement(condition, "conditionvar"), _ident(part, target), target, scales[part.id])
        etree.SubElement(condition, "setvar", action="Add", varname="SCORE").text = number_text(round(share, 6))
    for part in choices:
        share = 100 * part.points / variant.points if variant.points else 0
        condition = etree.SubElement(processing, "respcondition", {"continue": "Yes"})
        _choice_condition(etree.SubElement(condition, "conditionvar"), part)
        etree.SubElement(condition, "setvar", action="Add", varname="SCORE").text = number_text(round(share, 6))
    general = etree.SubElement(processing, "respcondition", {"continue": "Yes"})
    etree.SubElement(etree.SubElement(general, "conditionvar"), "other")
    etree.SubElement(general, "displayfeedback", feedbacktype="Response", linkrefid=_FEEDBACK)
    feedback = etree.SubElement(item, "itemfeedback", ident=_FEEDBACK)
    _mattext(etree.SubElement(feedback, "flow_mat"), html_of(variant.solution))
    return item


def _question_type(blanks: list[tuple[ExportPart, Target]], choices: list[ExportPart]) -> str:
    """Canvas's type: its own for a lone choice part or a lone blank; else standard QTI 1.2 items."""
    if choices and not blanks and len(choices) == 1:
        right = sum(c.correct for c in choices[0].choices)
        return "multiple_choice_question" if right == 1 else "multiple_answers_question"
    return "numerical_question" if len(blanks) == 1 and not choices else "fill_in_multiple_blanks_question"


def _choice_response(presentation: etree._Element, part: ExportPart) -> None:
    """A `response_lid` with one `response_label` per option, identified by its letter on the sheet.

    Single cardinality (radio buttons) when one option is right, Multiple (check boxes) otherwise,
    as Canvas's multiple_choice / multiple_answers questions have it; the options keep the sheet's
    order, so that a letter means the same option online and on paper."""
    right = sum(c.correct for c in part.choices)
    response = etree.SubElement(presentation, "response_lid", ident=_choice_ident(part),
                                rcardinality="Single" if right == 1 else "Multiple")
    _mattext(response, f"({part.id}) {html_of(part.prompt)}")
    render = etree.SubElement(response, "render_choice", shuffle="No")
    for choice, letter in zip(part.choices, _letters(part), strict=True):
        label = etree.SubElement(render, "response_label", ident=letter)
        _mattext(label, html_of(choice.text))


def _choice_condition(parent: etree._Element, part: ExportPart) -> None:
    """All or nothing: every right option ticked and, with check boxes, no wrong one (Canvas's own
    multiple_answers processing has the same shape)."""
    ident = _choice_ident(part)
    options = list(zip(part.choices, _letters(part), strict=True))
    right = [letter for choice, letter in options if choice.correct]
    if len(right) == 1:
        etree.SubElement(parent, "varequal", respident=ident).text = right[0]
        return
    both = etree.SubElement(parent, "and")
    for choice, letter in options:
        into = both if choice.correct else etree.SubElement(both, "not")
        etree.SubElement(into, "varequal", respident=ident).text = letter


def _choice_ident(part: ExportPart) -> str:
    return f"{part.id}_choice"


def _letters(part: ExportPart) -> list[str]:
    """The options' letters as in manifest.json (A, B, ... in the order shown, when it names none)."""
    return [choice.letter or chr(ord("A") + k) for k, choice in enumerate(part.choices)]


def _placeholder(part: ExportPart) -> Callable[[Target], str]:
    return lambda target: f"[{_ident(part, target)}]"  # Canvas shows the blank named in brackets


def _ident(part: ExportPart, target: Target) -> str:
    return part.id + "".join(f"_{k}" for k in target.index)


def _condition(parent: etree._Element, ident: str, target: Target, scale: int) -> None:
    value, tolerance = _decimal(target.value).scaleb(scale), _decimal(target.tolerance).scaleb(scale)
    if tolerance == 0:
        etree.SubElement(parent, "varequal", respident=ident).text = _text(value)
        return
    either = etree.SubElement(parent, "or")
    etree.SubElement(either, "varequal", respident=ident).text = _text(value)
    both = etree.SubElement(either, "and")
    etree.SubElement(both, "vargte", respident=ident).text = _text(value - tolerance)
    etree.SubElement(both, "varlte", respident=ident).text = _text(value + tolerance)


# Scaling and the range ends in decimal arithmetic, exactly: the file's numbers read back (shifted
# back by the same power of ten) as the very doubles of the key.
def _decimal(value: float) -> Decimal:
    return Decimal(value) if isinstance(value, int) else Decimal(repr(value))


def _text(value: Decimal) -> str:
    text = format(value, "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def _mattext(parent: etree._Element, text: str) -> None:
    material = etree.SubElement(parent, "material")
    etree.SubElement(material, "mattext", texttype="text/html").text = text


def _manifest(document: ExportDocument) -> bytes:
    ns = "http://www.imsglobal.org/xsd/imscp_v1p1"
    root = etree.Element(f"{{{ns}}}manifest", nsmap={None: ns}, identifier=f"{document.id}-manifest")
    etree.SubElement(root, f"{{{ns}}}organizations")
    resources = etree.SubElement(root, f"{{{ns}}}resources")
    resource = etree.SubElement(resources, f"{{{ns}}}resource", identifier=document.id, type="imsqti_xmlv1p2",
                                href=f"{document.id}.xml")
    etree.SubElement(resource, f"{{{ns}}}file", href=f"{document.id}.xml")
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True)


def _zip(files: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in files.items():
            archive.writestr(zipfile.ZipInfo(name, _ZIP_TIME), data, zipfile.ZIP_DEFLATED)
    return out.getvalue()


# --- reading back -----------------------------------------------------------------------------------

def read_qti12(data: bytes) -> Answers:
    """The numeric answers of the package, unscaled: (slot, variant, part, index) -> (value, tolerance)."""
    answers = Answers()
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        names = [n for n in archive.namelist() if n != "imsmanifest.xml"]
        root = etree.fromstring(archive.read(names[0]))
    for item in root.iter("item"):
        number_text_, variant = item.get("ident", "").rsplit("-Q", 1)[1].split("-")
        number = int(number_text_)
        text = item.findtext("presentation/material/mattext") or ""
        lids = {lid.get("ident", "") for lid in item.iterfind("presentation/response_lid")}
        for condition in item.iterfind("resprocessing/respcondition"):
            if _read_choice(condition, lids, number, variant, answers):
                continue
            exact = condition.find("conditionvar/varequal")
            if exact is None:
                exact = condition.find("conditionvar/or/varequal")
            if exact is None:
                continue
            ident = exact.get("respident", "")
            part_id, *index = ident.split("_")
            while index and not index[0].isdigit():  # part ids may hold underscores
                part_id += "_" + index.pop(0)
            scale = _scale_in(text, part_id)
            value = _unscaled(Decimal(exact.text or "0"), scale)
            low = condition.find("conditionvar/or/and/vargte")
            tolerance = 0.0 if low is None else float(
                (Decimal(exact.text or "0") - Decimal(low.text or "0")).scaleb(-scale))
            answers.numeric[(number, variant, part_id, tuple(int(k) for k in index))] = (value, tolerance)
    return answers


def _read_choice(condition: etree._Element, lids: set[str], number: int, variant: str, answers: Answers) -> bool:
    """A choice part's condition: its right letters (those ticked, not under a `not`) into `answers`."""
    tests = condition.findall("conditionvar/varequal") + condition.findall("conditionvar/and/varequal")
    idents = {test.get("respident", "") for test in tests}
    if not tests or not idents <= lids:
        return False
    ident = idents.pop()
    answers.choices[(number, variant, ident.removesuffix("_choice"))] = tuple(test.text or "" for test in tests)
    return True


def _scale_in(text: str, part_id: str) -> int:
    head = text.split(f"({part_id})", 1)[1].split('<div class="part">', 1)[0] if f"({part_id})" in text else ""
    marker = "multiplied by \\(10^{"
    return int(head.split(marker, 1)[1].split("}", 1)[0]) if marker in head else 0


def _unscaled(number: Decimal, scale: int) -> int | float:
    """The key's number: the manifest holds an integral value as an int, any other as a float."""
    value = number.scaleb(-scale)
    return int(value) if value == value.to_integral_value() else float(value)

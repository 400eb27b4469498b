"""QTI 2.1 content package (OpenOlat, Inspera, ONYX, Blackboard): a zip per document (docs/export.md).

Each variant of a question is an `assessmentItem` with a `textEntryInteraction` (base type float)
per numeric entry and a `choiceInteraction` per choice part; its response processing adds the
entry's share of the points to SCORE when the response equals the key (`equal`, tolerance mode
exact or absolute). The `assessmentTest` has one section per question slot that selects one of
its variants (`selection select="1"`). The worked solution is modal feedback shown on completion.
"""

from __future__ import annotations

import io
import re
import zipfile
from collections.abc import Callable

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
from generator.export.layout import part_html

__all__ = ["QTI", "read_qti21", "write_qti21"]

QTI = "http://www.imsglobal.org/xsd/imsqti_v2p1"
_CP = "http://www.imsglobal.org/xsd/imscp_v1p1"
_XSI = "http://www.w3.org/2001/XMLSchema-instance"
_SCHEMA = f"{QTI} http://www.imsglobal.org/xsd/qti/qtiv2p1/imsqti_v2p1p2.xsd"
_ZIP_TIME = (2000, 1, 1, 0, 0, 0)


def _q(name: str) -> str:
    return f"{{{QTI}}}{name}"


def write_qti21(document: ExportDocument, notes: list[str]) -> bytes:
    """The content package: `imsmanifest.xml`, `<document>-test.xml` and `items/<item>.xml`."""
    files: dict[str, bytes] = {}
    test = etree.Element(_q("assessmentTest"), nsmap={None: QTI, "xsi": _XSI}, identifier=_id(document.id),
                         title=document.title)
    test.set(f"{{{_XSI}}}schemaLocation", _SCHEMA)
    part = etree.SubElement(test, _q("testPart"), identifier="P1", navigationMode="nonlinear",
                            submissionMode="simultaneous")
    top = etree.SubElement(part, _q("assessmentSection"), identifier="S0", title=document.title, visible="true")
    for slot in document.slots:
        section = etree.SubElement(top, _q("assessmentSection"), identifier=_id(f"{document.id}-Q{slot.number}"),
                                   title=slot.title, visible="true")
        etree.SubElement(section, _q("selection"), select="1")
        for variant in slot.variants:
            ident = _id(f"{document.id}-Q{slot.number}-{variant.variant}")
            href = f"items/{ident}.xml"
            etree.SubElement(section, _q("assessmentItemRef"), identifier=ident, href=href)
            files[href] = _xml(_item(ident, document, slot, variant, notes))
    test_file = f"{document.id}-test.xml"
    files = {"imsmanifest.xml": _xml(_manifest(document, test_file, list(files))), test_file: _xml(test), **files}
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in files.items():
            archive.writestr(zipfile.ZipInfo(name, _ZIP_TIME), data, zipfile.ZIP_DEFLATED)
    return out.getvalue()


def _item(ident: str, document: ExportDocument, slot: ExportSlot, variant: ExportVariant,
          notes: list[str]) -> etree._Element:
    item = etree.Element(_q("assessmentItem"), nsmap={None: QTI, "xsi": _XSI}, identifier=ident,
                         title=f"{slot.title} ({variant.variant})", adaptive="false", timeDependent="false")
    item.set(f"{{{_XSI}}}schemaLocation", _SCHEMA)
    parts = [p for p in variant.parts if p.kind in _INTERACTIONS or _left_out(document, slot, variant, p, notes)]
    for part in parts:
        _declare(item, part)
    for name, value in (("SCORE", "0"), ("MAXSCORE", number_text(variant.points))):
        outcome = etree.SubElement(item, _q("outcomeDeclaration"), identifier=name, cardinality="single",
                                   baseType="float")
        etree.SubElement(etree.SubElement(outcome, _q("defaultValue")), _q("value")).text = value
    etree.SubElement(item, _q("outcomeDeclaration"), identifier="FEEDBACK", cardinality="single", baseType="identifier")
    body = "<div>" + html_of(variant.stem) + "</div>" + "".join(_INTERACTIONS[p.kind](p) for p in parts)
    item.append(_body(body))
    processing = etree.SubElement(item, _q("responseProcessing"))
    for part in parts:
        _score(processing, part)
    feedback = etree.SubElement(processing, _q("setOutcomeValue"), identifier="FEEDBACK")
    etree.SubElement(feedback, _q("baseValue"), baseType="identifier").text = "SOLUTION"
    modal = etree.SubElement(item, _q("modalFeedback"), outcomeIdentifier="FEEDBACK", identifier="SOLUTION",
                             showHide="show", title="Solution")
    for child in _body(f"<div>{html_of(variant.solution)}</div>"):
        modal.append(child)
    return item


def _left_out(document: ExportDocument, slot: ExportSlot, variant: ExportVariant, part: ExportPart,
              notes: list[str]) -> bool:
    notes.append(f"qti21: {document.id} Q{slot.number} {variant.question} part {part.id} ({part.kind}) left out: "
                 "no QTI 2.1 interaction for it")
    return False


def _response_id(part: ExportPart, target: Target | None = None) -> str:
    return _id("R_" + part.id + ("".join(f"_{k}" for k in target.index) if target is not None else ""))


def _declare(item: etree._Element, part: ExportPart) -> None:
    if part.kind == "choice":
        declaration = etree.SubElement(item, _q("responseDeclaration"), identifier=_response_id(part),
                                       cardinality="multiple", baseType="identifier")
        correct = etree.SubElement(declaration, _q("correctResponse"))
        for k, choice in enumerate(part.choices):
            if choice.correct:
                etree.SubElement(correct, _q("value")).text = f"C{k}"
        return
    for target in part.targets:
        declaration = etree.SubElement(item, _q("responseDeclaration"), identifier=_response_id(part, target),
                                       cardinality="single", baseType="float")
        correct = etree.SubElement(declaration, _q("correctResponse"))
        etree.SubElement(correct, _q("value")).text = number_text(target.value)


def _numeric_html(part: ExportPart) -> str:
    def blank(target: Target) -> str:
        return f'<textEntryInteraction responseIdentifier="{_response_id(part, target)}" expectedLength="12"/>'
    return part_html(part, blank)


def _choice_html(part: ExportPart) -> str:
    options = "".join(f'<simpleChoice identifier="C{k}">{html_of(c.text)}</simpleChoice>'
                      for k, c in enumerate(part.choices))
    return (f'<choiceInteraction responseIdentifier="{_response_id(part)}" shuffle="true" maxChoices="0">'
            f"<prompt>({part.id}) {html_of(part.prompt)}</prompt>{options}</choiceInteraction>")


_INTERACTIONS: dict[str, Callable[[ExportPart], str]] = {"numeric": _numeric_html, "choice": _choice_html}


def _score(processing: etree._Element, part: ExportPart) -> None:
    """SCORE += the entry's share when its response equals the key (within the tolerance)."""
    if part.kind == "choice":
        ident = _response_id(part)
        _add_if(processing, part.points, "match", [("variable", ident), ("correct", ident)], {})
        return
    share = part.points / len(part.targets)
    for target in part.targets:
        ident = _response_id(part, target)
        tolerance = number_text(target.tolerance)
        mode = {"toleranceMode": "exact"} if target.tolerance == 0 else {
            "toleranceMode": "absolute", "tolerance": f"{tolerance} {tolerance}"}
        _add_if(processing, share, "equal", [("variable", ident), ("correct", ident)], mode)


def _add_if(processing: etree._Element, points: float, test: str, operands: list[tuple[str, str]],
            attributes: dict[str, str]) -> None:
    condition = etree.SubElement(etree.SubElement(processing, _q("responseCondition")), _q("responseIf"))
    operator = etree.SubElement(condition, _q(test), attributes)
    for kind, ident in operands:
        etree.SubElement(operator, _q(kind), identifier=ident)
    total = etree.SubElement(etree.SubElement(condition, _q("setOutcomeValue"), identifier="SCORE"), _q("sum"))
    etree.SubElement(total, _q("variable"), identifier="SCORE")
    etree.SubElement(total, _q("baseValue"), baseType="float").text = number_text(round(points, 9))


def _body(fragment: str) -> etree._Element:
    """An `itemBody` from an XHTML fragment, its elements in the QTI namespace."""
    body = etree.fromstring(f'<itemBody xmlns="{QTI}">{fragment}</itemBody>')
    for element in body.iter():  # QTI's XHTML has no style or title attributes; a class keeps the intent
        if element.attrib.pop("style", None) is not None and element.tag == _q("div"):
            element.set("class", "center")
        element.attrib.pop("title", None)
    return body


def _manifest(document: ExportDocument, test_file: str, items: list[str]) -> etree._Element:
    root = etree.Element(f"{{{_CP}}}manifest", nsmap={None: _CP}, identifier=_id(f"{document.id}-manifest"))
    etree.SubElement(root, f"{{{_CP}}}organizations")
    resources = etree.SubElement(root, f"{{{_CP}}}resources")
    test = etree.SubElement(resources, f"{{{_CP}}}resource", identifier=_id(f"{document.id}-test"),
                            type="imsqti_test_xmlv2p1", href=test_file)
    etree.SubElement(test, f"{{{_CP}}}file", href=test_file)
    for href in items:
        ident = _id(href.removeprefix("items/").removesuffix(".xml"))
        etree.SubElement(test, f"{{{_CP}}}dependency", identifierref=f"res-{ident}")
    for href in items:
        ident = _id(href.removeprefix("items/").removesuffix(".xml"))
        resource = etree.SubElement(resources, f"{{{_CP}}}resource", identifier=f"res-{ident}",
                                    type="imsqti_item_xmlv2p1", href=href)
        etree.SubElement(resource, f"{{{_CP}}}file", href=href)
    return root


def _id(text: str) -> str:
    """A QTI identifier (an XML NCName): letters, digits, `_ - .`, not starting with a digit."""
    ident = re.sub(r"[^A-Za-z0-9_.-]", "_", text)
    return ident if re.match(r"[A-Za-z_]", ident) else "_" + ident


def _xml(element: etree._Element) -> bytes:
    return etree.tostring(element, xml_declaration=True, encoding="UTF-8", pretty_print=True)


# --- reading back -----------------------------------------------------------------------------------

def read_qti21(data: bytes) -> Answers:
    """The numeric answers and right choices of a package: (slot, variant, part, index) -> (value, tolerance).

    Follows the manifest to the test, the test's sections to their items; each item's tolerance
    is read from its response processing."""
    answers = Answers()
    ns = {"q": QTI, "cp": _CP}
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        manifest = etree.fromstring(archive.read("imsmanifest.xml"))
        test_href = manifest.xpath("//cp:resource[@type='imsqti_test_xmlv2p1']/@href", namespaces=ns)[0]
        test = etree.fromstring(archive.read(test_href))
        for section in test.xpath("//q:assessmentSection[q:selection]", namespaces=ns):
            number = int(section.get("identifier").rsplit("-Q", 1)[1])
            for ref in section.xpath("q:assessmentItemRef", namespaces=ns):
                variant = ref.get("identifier").rsplit("-", 1)[1]
                item = etree.fromstring(archive.read(ref.get("href")))
                _read_item(item, number, variant, answers, ns)
    return answers


def _read_item(item: etree._Element, number: int, variant: str, answers: Answers, ns: dict[str, str]) -> None:
    tolerances = {}
    for equal in item.xpath("q:responseProcessing//q:equal", namespaces=ns):
        ident = equal.xpath("q:variable/@identifier", namespaces=ns)[0]
        tolerances[ident] = float(equal.get("tolerance", "0").split()[0])
    for declaration in item.xpath("q:responseDeclaration", namespaces=ns):
        ident = declaration.get("identifier")
        values = declaration.xpath("q:correctResponse/q:value/text()", namespaces=ns)
        if declaration.get("baseType") == "float":
            part_id, index = _split(ident)
            text = values[0]
            answers.numeric[(number, variant, part_id, index)] = (
                int(text) if re.fullmatch(r"-?\d+", text) else float(text), tolerances[ident])
        else:
            answers.choices[(number, variant, ident.removeprefix("R_"))] = tuple(values)


def _split(ident: str) -> tuple[str, tuple[int, ...]]:
    pieces = ident.removeprefix("R_").split("_")
    index: list[int] = []
    while pieces and pieces[-1].isdigit():
        index.insert(0, int(pieces.pop()))
    return "_".join(pieces), tuple(index)

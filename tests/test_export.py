"""Online exports: each format read back equal to manifest.json, cloze syntax, QTI structure."""

from __future__ import annotations

import io
import json
import re
import zipfile
from pathlib import Path

import pytest
from lxml import etree

from generator.build import BuildOptions, build
from generator.export import moodle, qti12, qti21
from generator.export.common import ExportDocument, ExportSlot, ExportVariant, html_of, make_part, online_tolerance
from generator.export.exporter import FORMATS, ExportOptions, check_export, export
from generator.outputs.rules import EXACT, PartRule
from tests.conftest import BANK

SEED, VARIANTS = 5, 3


@pytest.fixture(scope="module")
def drawn(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict, dict[str, Path]]:
    """manifest.json of a build, and each format's export of the same draw (files by name)."""
    root = tmp_path_factory.mktemp("export")
    build(BuildOptions(seed=SEED, bank=BANK, out=root / "build", pdf=False, variants=VARIANTS))
    manifest = json.loads((root / "build" / "manifest.json").read_text(encoding="utf-8"))
    files = {}
    for fmt in FORMATS:
        result = export(ExportOptions(fmt, seed=SEED, bank=BANK, out=root / fmt, variants=VARIANTS, jobs=1))
        files.update({path.name: path for path in result.files})
    return manifest, files


def _manifest_values(manifest: dict, document: str) -> dict[tuple[int, str, str, tuple[int, ...]], int | float]:
    """(slot number, variant, part, 1-based index) -> value, from manifest.json alone."""
    copies = next(d for d in manifest["documents"] if d["id"] == document)["copies"]
    questions = {v["id"]: {q["id"]: q for q in v["questions"]} for v in manifest["variants"]}
    out = {}
    for copy in copies:
        for slot in copy["questions"]:
            for part in questions[copy["variant"]][slot["id"]]["parts"]:
                for index, value in _flat(part["value"]):
                    out[(slot["number"], copy["variant"], part["id"], index)] = value
    return out


def _flat(value, index=()):
    if not isinstance(value, list):
        return [(index, value)]
    return [pair for k, item in enumerate(value, 1) for pair in _flat(item, index + (k,))]


@pytest.mark.parametrize("fmt", list(FORMATS))
@pytest.mark.parametrize("document", ["nn-derivatives", "nn-backprop", "midterm"])
def test_every_export_reads_back_as_the_manifest(drawn, fmt, document):
    manifest, files = drawn
    found = FORMATS[fmt].read(files[f"{document}{FORMATS[fmt].suffix}"].read_bytes())
    values = {key: value for key, (value, _) in found.numeric.items()}
    expected = _manifest_values(manifest, document)
    assert values == expected
    assert all(type(values[k]) is type(expected[k]) for k in expected)  # ints stay ints


# --- Moodle cloze: a parser of Moodle's syntax, stricter than the exporter's reader ---------------

_NUMBER = r"-?\d+(?:\.\d+)?"
_CLOZE_NUMERICAL = re.compile(rf"\{{(\d+):NUMERICAL:=({_NUMBER}):({_NUMBER})\}}")


def _cloze_blanks(text: str) -> list[tuple[int, float, float]]:
    """Every `{...}` that Moodle reads as a blank, checked against its grammar: `{weight:TYPE:answers}`."""
    blanks = []
    for match in re.finditer(r"\{\d*:[A-Z_]+:", text):
        end = text.index("}", match.start())
        code = text[match.start():end + 1]
        strict = _CLOZE_NUMERICAL.fullmatch(code)
        assert strict is not None, f"not a valid NUMERICAL blank: {code}"
        weight, value, tolerance = int(strict.group(1)), float(strict.group(2)), float(strict.group(3))
        assert weight >= 1 and tolerance >= 0
        blanks.append((weight, value, tolerance))
    return blanks


def _moodle_questions(path: Path) -> list[etree._Element]:
    return [q for q in etree.parse(str(path)).getroot() if q.get("type") != "category"]


def test_every_cloze_string_follows_moodle_syntax(drawn):
    _, files = drawn
    count = 0
    for name in ("nn-derivatives.xml", "nn-backprop.xml", "midterm.xml"):
        for question in _moodle_questions(files[name]):
            text = question.findtext("questiontext/text")
            blanks = _cloze_blanks(text)
            if question.get("type") == "cloze":
                assert blanks and len(blanks) == text.count('<span title="')
                count += len(blanks)
            else:
                assert blanks == []
    assert count > 100


def test_moodle_math_uses_mathjax_delimiters_never_dollars(drawn):
    _, files = drawn
    raw = files["nn-derivatives.xml"].read_text(encoding="utf-8")
    for question in _moodle_questions(files["nn-derivatives.xml"]):
        for path in ("questiontext/text", "generalfeedback/text"):
            text = question.findtext(path)
            assert "$" not in text
            opened = len(re.findall(r"(?<!\\)\\\[", text))  # (not the `\\[1ex]` of a matrix row)
            assert text.count("\\(") == text.count("\\)") and opened == text.count("\\]")
    assert "<![CDATA[" in raw and raw.startswith('<?xml version=\'1.0\' encoding=\'UTF-8\'?>')


def test_moodle_types_one_category_per_slot_one_question_per_variant(drawn):
    _, files = drawn
    root = etree.parse(str(files["nn-derivatives.xml"])).getroot()
    kinds = [q.get("type") for q in root]
    assert kinds.count("category") == 8  # the worksheet's eight questions
    assert len(kinds) == 8 * (1 + VARIANTS)
    scalar = [q for q in root if q.findtext("idnumber", "").startswith("nn-derivatives-Q5-")]  # sigmoid: one scalar part
    assert {q.get("type") for q in scalar} == {"numerical"}


def test_cloze_text_cannot_open_a_blank_by_accident():
    assert moodle._defuse(r"\frac{1:2}") == r"\frac{ 1:2}"
    assert moodle.cloze_escape('a}b#c~d/e"f\\g') == 'a\\}b\\#c\\~d\\/e\\"f\\\\g'


# --- QTI ---------------------------------------------------------------------------------------------

_NCNAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]*")
_QTI21_BODY = {"itemBody", "div", "p", "span", "em", "strong", "code", "br", "table", "tbody", "tr", "td", "ol", "li",
               "textEntryInteraction", "choiceInteraction", "simpleChoice", "prompt"}


def test_qti21_package_is_well_formed_and_consistent(drawn):
    _, files = drawn
    with zipfile.ZipFile(files["nn-backprop-qti21.zip"]) as archive:
        names = set(archive.namelist())
        manifest = etree.fromstring(archive.read("imsmanifest.xml"))
        hrefs = {f.get("href") for f in manifest.iter("{*}file")}
        assert hrefs == names - {"imsmanifest.xml"}
        test = etree.fromstring(archive.read("nn-backprop-test.xml"))
        sections = [s for s in test.iter("{*}assessmentSection") if s.find("{*}selection") is not None]
        assert len(sections) == 4 and all(s.find("{*}selection").get("select") == "1" for s in sections)
        for section in sections:
            refs = section.findall("{*}assessmentItemRef")
            assert len(refs) == VARIANTS
            for ref in refs:
                item = etree.fromstring(archive.read(ref.get("href")))
                assert item.get("identifier") == ref.get("identifier") and _NCNAME.fullmatch(item.get("identifier"))
                declared = {d.get("identifier") for d in item.iter("{*}responseDeclaration")}
                entries = {t.get("responseIdentifier") for t in item.iter("{*}textEntryInteraction")}
                assert declared == entries and all(_NCNAME.fullmatch(d) for d in declared)
                scored = {e.find("{*}variable").get("identifier") for e in item.iter("{*}equal")}
                assert scored == declared
                body = item.find("{*}itemBody")
                tags = {etree.QName(e).localname for e in body.iter()}
                assert tags <= _QTI21_BODY
                assert not any(e.get("style") or e.get("title") for e in body.iter())
                assert "$" not in "".join(body.itertext())


def test_qti12_groups_pick_one_variant_each(drawn):
    _, files = drawn
    with zipfile.ZipFile(files["nn-backprop-qti12.zip"]) as archive:
        root = etree.fromstring(archive.read("nn-backprop.xml"))
    groups = root.findall("assessment/section/section")
    assert len(groups) == 4
    for group in groups:
        assert group.findtext("selection_ordering/selection/selection_number") == "1"
        assert len(group.findall("item")) == VARIANTS
    for item in root.iter("item"):
        blanks = {r.get("ident") for r in (*item.iter("response_str"), *item.iter("response_lid"))}
        conditions = {v.get("respident") for v in item.iter("varequal")}
        assert blanks == conditions


def _manifest_choices(manifest: dict, document: str) -> dict[tuple[int, str, str], list[dict]]:
    """(slot number, variant, part) -> the part's `choices`, from manifest.json alone."""
    copies = next(d for d in manifest["documents"] if d["id"] == document)["copies"]
    questions = {v["id"]: {q["id"]: q for q in v["questions"]} for v in manifest["variants"]}
    return {(slot["number"], copy["variant"], part["id"]): part["choices"]
            for copy in copies for slot in copy["questions"]
            for part in questions[copy["variant"]][slot["id"]]["parts"] if part.get("kind") == "choice"}


_RIGHT_AS_READ = {  # what each format's reader gives for a choice part's right options, from the manifest
    "qti12": lambda choices: tuple(c["letter"] for c in choices if c["correct"]),  # the sheet's letters
    "qti21": lambda choices: tuple(f"C{k}" for k, c in enumerate(choices) if c["correct"]),
    "moodle": lambda choices: tuple(html_of(c["text"]) for c in choices if c["correct"]),
}


@pytest.mark.parametrize("fmt", list(FORMATS))
@pytest.mark.parametrize("document", ["calculus", "linear-algebra"])
def test_choice_parts_read_back_as_the_manifest_letters(drawn, fmt, document):
    manifest, files = drawn
    found = FORMATS[fmt].read(files[f"{document}{FORMATS[fmt].suffix}"].read_bytes())
    expected = {key: _RIGHT_AS_READ[fmt](choices) for key, choices in _manifest_choices(manifest, document).items()}
    assert expected and found.choices == expected



def test_exports_are_reproducible(drawn, tmp_path):
    _, files = drawn
    again = export(ExportOptions("qti21", seed=SEED, bank=BANK, out=tmp_path, variants=VARIANTS, worksheets=("nn-backprop",),
                                 jobs=1))
    assert again.files[0].read_bytes() == files["nn-backprop-qti21.zip"].read_bytes()


# --- small documents made by hand -------------------------------------------------------------------

def _document(*parts) -> ExportDocument:
    variant = ExportVariant("A", "q", "A question", float(sum(p.points for p in parts)), "Stem $x = 1$.", "", parts)
    return ExportDocument("doc", "Doc", 1, (ExportSlot(1, (variant,)),))


def test_canvas_values_below_1e_4_are_scaled_and_read_back():
    part = make_part({"id": "p", "shape": [2], "value": [3.2e-05, 1]}, "$p =$", 2)
    assert qti12.canvas_scale(part) == 2  # 0.0032 keeps both digits within four places
    document = _document(part)
    data = qti12.write_qti12(document, [])
    found = qti12.read_qti12(data)
    assert found.numeric[(1, "A", "p", (1,))] == (3.2e-05, part.targets[0].tolerance)
    assert found.numeric[(1, "A", "p", (2,))] == (1, 0.0)
    text = zipfile.ZipFile(io.BytesIO(data)).read("doc.xml").decode()
    assert "multiplied by \\(10^{2}\\)" in text
    check_export(document, found, "qti12")
    assert qti12.canvas_scale(make_part({"id": "p", "shape": [], "value": 0.12345}, "", 1)) == 1
    assert qti12.canvas_scale(make_part({"id": "p", "shape": [], "value": 0.8807970779778824}, "", 1)) == 0


def test_a_rounded_rule_gives_its_tolerance_online():
    rule = PartRule("decimals", 2, abs_tol=None, rel_tol=None)
    assert online_tolerance(rule, 0.5) == 0.0
    from fractions import Fraction

    assert online_tolerance(PartRule("decimals", 2, Fraction(1, 100), None), 0.123) == 0.01
    assert online_tolerance(EXACT, 7) == 0.0 and online_tolerance(EXACT, 0.25) == 0.0
    assert online_tolerance(EXACT, 0.8807970779778824) == pytest.approx(1e-4)


def test_choice_parts_plug_in_by_kind():
    choice = make_part({"id": "c", "kind": "choice", "choices": [{"text": "$J$", "correct": True},
                                                                 {"text": "$J^T$", "correct": False}]}, "Which?", 1)
    number = make_part({"id": "n", "shape": [], "value": 2}, "$n =$", 1)
    assert moodle.read_moodle(moodle.write_moodle(_document(choice), [])).choices == {(1, "A", "c"): ("\\(J\\)",)}
    mixed = moodle.read_moodle(moodle.write_moodle(_document(choice, number), []))
    assert mixed.choices == {(1, "A", "c"): ("\\(J\\)",)} and mixed.numeric == {(1, "A", "n", ()): (2, 0.0)}
    assert qti21.read_qti21(qti21.write_qti21(_document(choice, number), [])).choices == {(1, "A", "c"): ("C0",)}
    notes: list[str] = []
    canvas = qti12.read_qti12(qti12.write_qti12(_document(choice, number), notes))
    assert notes == [] and canvas.choices == {(1, "A", "c"): ("A",)} and canvas.numeric == {(1, "A", "n", ()): (2, 0.0)}


def _canvas_item(data: bytes) -> etree._Element:
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        return next(etree.fromstring(archive.read("doc.xml")).iter("item"))


def _choice(letters: str, right: str):
    return make_part({"id": "c", "kind": "choice", "choices": [
        {"letter": x, "text": f"${x.lower()}$", "correct": x in right} for x in letters]}, "Which?", 2)


@pytest.mark.parametrize(("right", "canvas_type", "cardinality"), [
    ("B", "multiple_choice_question", "Single"),
    ("AC", "multiple_answers_question", "Multiple"),
])
def test_a_lone_choice_part_is_a_canvas_choice_question(right, canvas_type, cardinality):
    document = _document(_choice("ABCD", right))
    data = qti12.write_qti12(document, [])
    item = _canvas_item(data)
    fields = {f.findtext("fieldlabel"): f.findtext("fieldentry") for f in item.iter("qtimetadatafield")}
    assert fields["question_type"] == canvas_type
    lid = item.find("presentation/response_lid")
    assert lid.get("rcardinality") == cardinality
    assert [label.get("ident") for label in lid.iter("response_label")] == list("ABCD")  # the sheet's order
    found = qti12.read_qti12(data)
    assert found.choices == {(1, "A", "c"): tuple(right)}
    check_export(document, found, "qti12")


def test_canvas_choice_processing_scores_only_the_right_set():
    """Evaluate the item's respconditions as Canvas would, for each set of ticked letters."""
    item = _canvas_item(qti12.write_qti12(_document(_choice("ABCD", "AC")), []))

    def holds(node, ticked):
        tag = node.tag
        if tag == "varequal":
            return node.text in ticked
        if tag == "not":
            return not holds(node[0], ticked)
        if tag in ("and", "conditionvar"):
            return all(holds(child, ticked) for child in node)
        return tag == "other"

    def score(ticked):
        return sum(float(c.findtext("setvar") or 0) for c in item.iter("respcondition")
                   if c.find("setvar") is not None and holds(c.find("conditionvar"), ticked))

    assert score({"A", "C"}) == 100
    assert score({"A"}) == score({"A", "B", "C"}) == score({"B", "D"}) == score(set()) == 0


def test_a_wrong_right_letter_fails_the_read_back_check():
    document = _document(_choice("ABC", "B"))
    found = qti12.read_qti12(qti12.write_qti12(document, []))
    found.choices[(1, "A", "c")] = ("C",)
    with pytest.raises(Exception, match=r"right options read back as \('C',\), key \('B',\)"):
        check_export(document, found, "qti12")


def test_a_part_kind_no_format_knows_is_left_out_with_a_note():
    odd = make_part({"id": "f", "kind": "formula", "shape": [], "value": 0}, "$f =$", 1)
    notes: list[str] = []
    moodle.write_moodle(_document(odd, make_part({"id": "n", "shape": [], "value": 2}, "$n =$", 1)), notes)
    assert notes == ["moodle: doc Q1 q part f (formula) left out: Moodle has no question type for it without plugins "
                     "(e.g. STACK)"]


def test_a_changed_value_fails_the_read_back_check():
    document = _document(make_part({"id": "n", "shape": [], "value": 2}, "$n =$", 1))
    found = moodle.read_moodle(moodle.write_moodle(document, []))
    found.numeric[(1, "A", "n", ())] = (3, 0.0)
    with pytest.raises(Exception, match="reads back as 3"):
        check_export(document, found, "moodle")


@pytest.mark.parametrize(("latex", "html"), [
    ("a $x$ b", "a \\(x\\) b"),
    ("\\[ y < 1 \\]", "\\[y &lt; 1\\]"),
    ("$$z$$", "\\[z\\]"),
    ("\\begin{center}\\shrinktowidth{$\\displaystyle A$}\\end{center}", '<div style="text-align:center">\\(\\displaystyle A\\)</div>'),
    ("\\begin{enumerate}[label=\\arabic*.]\n\\item one\n\\item two\n\\end{enumerate}", "<ol><li>one</li><li>two</li></ol>"),
    ("(a)--(d), \\emph{not} 5\\%", "(a)\u2013(d), <em>not</em> 5%"),
    ("costs \\$5", "costs $5"),
])
def test_html_of(latex, html):
    assert html_of(latex) == html


def test_the_manifest_rule_sets_the_online_tolerance():
    part = make_part({"id": "p", "shape": [], "value": 0.123456789,
                      "rule": {"kind": "sigfigs", "digits": 3, "tolerance": {"abs": 0.001, "rel": 0.01}}}, "", 1)
    assert part.targets[0].tolerance == pytest.approx(0.001 + 0.01 * 0.123456789)
    assert "to 3 significant digits" in moodle.write_moodle(_document(part), []).decode()


def test_a_formula_answer_is_left_out_with_a_note():
    formula = make_part({"id": "f", "shape": [], "value": "3*x1**2"}, "$f =$", 1)
    notes: list[str] = []
    data = moodle.write_moodle(_document(formula, make_part({"id": "n", "shape": [], "value": 2}, "$n =$", 1)), notes)
    assert formula.kind == "formula" and notes[0].startswith("moodle: doc Q1 q part f (formula) left out")
    assert moodle.read_moodle(data).numeric == {(1, "A", "n", ()): (2, 0.0)}

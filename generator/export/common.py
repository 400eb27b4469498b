"""What the exporters share: the questions of a document as plain data, LaTeX made into HTML with
MathJax math, numbers as text, and the tolerance an online answer gets.

The data here is made from the build's own draw (`generator.export.exporter`), so a variant has
the same numbers online as on paper; each format module turns an `ExportDocument` into its file
and reads the file back into `Answers` for the check that it holds the key.
"""

from __future__ import annotations

import html
import math
import re
from dataclasses import dataclass, field
from decimal import Decimal
from fractions import Fraction
from typing import Any

from lxml import etree

from generator.outputs.rules import PartRule, part_kind, part_rule

__all__ = [
    "ONLINE_DIGITS",
    "Answers",
    "Choice",
    "ExportDocument",
    "ExportPart",
    "ExportSlot",
    "ExportVariant",
    "Target",
    "html_of",
    "make_part",
    "number_text",
    "online_tolerance",
]

ONLINE_DIGITS = 4  # an exact answer that is no short decimal is asked for to this many significant digits online


@dataclass(frozen=True, slots=True)
class Target:
    """One numeric blank: its entry (1-based indices, () for a scalar), the key and the tolerance."""

    index: tuple[int, ...]
    value: int | float  # manifest.json's value
    tolerance: float


@dataclass(frozen=True, slots=True)
class Choice:
    """One option of a multiple-choice part (issue 17): its LaTeX text and whether it is right."""

    text: str
    correct: bool
    letter: str = ""  # as on the sheet and in manifest.json (`letters`)


@dataclass(frozen=True, slots=True)
class ExportPart:
    """One part of one variant: its prompt, kind (`numeric`, `choice`), points and blanks."""

    id: str
    kind: str
    prompt: str  # LaTeX, as on the sheet
    points: float
    shape: tuple[int, ...]
    rule: PartRule
    targets: tuple[Target, ...] = ()
    choices: tuple[Choice, ...] = ()

    @property
    def rounded_online(self) -> bool:
        """Whether the online form asks for `ONLINE_DIGITS` significant digits of an exact answer."""
        return self.rule.exact and any(t.tolerance > 0 for t in self.targets)


@dataclass(frozen=True, slots=True)
class ExportVariant:
    """One variant of one question: stem, parts and the worked solution (LaTeX)."""

    variant: str
    question: str
    title: str
    points: float
    stem: str
    solution: str
    parts: tuple[ExportPart, ...]


@dataclass(frozen=True, slots=True)
class ExportSlot:
    """A question's place in a document, with every variant of it (one is picked online)."""

    number: int
    variants: tuple[ExportVariant, ...]

    @property
    def title(self) -> str:
        ids = {v.question for v in self.variants}
        first = self.variants[0]
        return f"Q{self.number} {first.question}: {first.title}" if len(ids) == 1 else f"Q{self.number}"


@dataclass(frozen=True, slots=True)
class ExportDocument:
    """A worksheet or exam, its slots in order, and the seed it was drawn with."""

    id: str
    title: str
    seed: int
    slots: tuple[ExportSlot, ...]


@dataclass(slots=True)
class Answers:
    """What an export file holds, read back: (slot, variant, part, index) -> (value, tolerance)."""

    numeric: dict[tuple[int, str, str, tuple[int, ...]], tuple[float, float]] = field(default_factory=dict)
    choices: dict[tuple[int, str, str], tuple[str, ...]] = field(default_factory=dict)  # the right options


def make_part(entry: dict[str, Any], prompt: str, points: float) -> ExportPart:
    """A part from its manifest entry (value, shape, rule, kind) and rendered prompt."""
    rule = part_rule(entry)
    kind = part_kind(entry)
    shape = tuple(entry.get("shape", ()))
    if kind == "choice":
        choices = tuple(Choice(str(c["text"]), bool(c["correct"]), str(c.get("letter", "")))
                        for c in entry.get("choices", ()))
        return ExportPart(entry["id"], kind, prompt, points, shape, rule, choices=choices)
    entries = entries_of(entry["value"])
    if any(isinstance(value, bool) or not isinstance(value, (int, float)) for _, value in entries):
        # (a formula answer, or anything else that is no number: the formats leave it out with a note)
        return ExportPart(entry["id"], "formula", prompt, points, shape, rule)
    targets = tuple(Target(index, value, online_tolerance(rule, value)) for index, value in entries)
    return ExportPart(entry["id"], kind, prompt, points, shape, rule, targets=targets)


def entries_of(value: Any, index: tuple[int, ...] = ()) -> list[tuple[tuple[int, ...], int | float]]:
    """Nested lists -> [(1-based index, number)] in row-major order; a scalar has index ()."""
    if not isinstance(value, list):
        return [(index, value)]
    out: list[tuple[tuple[int, ...], int | float]] = []
    for k, item in enumerate(value, 1):
        out += entries_of(item, index + (k,))
    return out


def online_tolerance(rule: PartRule, value: float) -> float:
    """The tolerance an online quiz uses for an entry.

    A rounded rule: its own (abs + rel x |value|). An exact rule: none for an integer or a short
    decimal (0.25), which can be typed exactly; else one unit in the `ONLINE_DIGITS`-th significant
    digit, since an online numeric field takes no fraction or closed form.
    """
    if not rule.exact:
        exact = Fraction(value) if isinstance(value, int) else Fraction(repr(value))
        return float((rule.abs_tol or 0) + (rule.rel_tol or 0) * abs(exact))
    if isinstance(value, int) or value == 0 or len(Decimal(repr(value)).normalize().as_tuple().digits) <= 6:
        return 0.0
    return 10.0 ** (math.floor(math.log10(abs(value))) - (ONLINE_DIGITS - 1))


def number_text(value: float) -> str:
    """A number as positional decimal text, the shortest that reads back as the same double (no exponent)."""
    if isinstance(value, int):
        return str(value)
    text = format(Decimal(repr(value)), "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


# --- LaTeX -> HTML with MathJax delimiters ---------------------------------------------------------

_MATH = re.compile(r"(?<!\\)\\\[(.*?)\\\]|\$\$(.*?)\$\$|\\\((.*?)\\\)|(?<!\\)\$(.*?)(?<!\\)\$", re.DOTALL)
_SHRINK = re.compile(r"\\shrinktowidth\{(\$.*?\$)\}", re.DOTALL)
_SIMPLE = [  # text-mode LaTeX -> HTML; applied to already escaped text, in this order
    (re.compile(r"\\begin\{center\}"), '<div style="text-align:center">'),
    (re.compile(r"\\end\{center\}"), "</div>"),
    (re.compile(r"\\begin\{(?:enumerate|itemize)\}(?:\[[^\]]*\])?\s*\\item\s*"), "<ol><li>"),
    (re.compile(r"\s*\\item\s*"), "</li><li>"),
    (re.compile(r"\s*\\end\{(?:enumerate|itemize)\}"), "</li></ol>"),
    (re.compile(r"\\(?:emph|textit)\{([^{}]*)\}"), r"<em>\1</em>"),
    (re.compile(r"\\textbf\{([^{}]*)\}"), r"<strong>\1</strong>"),
    (re.compile(r"\\texttt\{([^{}]*)\}"), r"<code>\1</code>"),
    (re.compile(r"\n[ \t]*\n\s*"), "<br/><br/>"),
    (re.compile(r"\\\\(?:\[[^\]]*\])?"), "<br/>"),
    (re.compile(r"---"), "\u2014"),
    (re.compile(r"--"), "\u2013"),
    (re.compile(r"``|''"), '"'),
    (re.compile(r"(?<!\\)~"), "\u00a0"),
    (re.compile(r"\\[,;:]"), "\u2009"),
    (re.compile(r"\\(?:quad|qquad|\s)"), " "),
    (re.compile(r"\\(?:ldots|dots)\b"), "\u2026"),
    (re.compile(r"\\([%&_#$])"), r"\1"),
]


def html_of(latex: str) -> str:
    """An XHTML fragment for LaTeX text: inline math as `\\( \\)`, display math as `\\[ \\]`, never `$`.

    Text-mode LaTeX that the sheets use (center, enumerate, emphasis, dashes, line breaks) becomes
    HTML; everything is escaped for XML, so the fragment is well formed (checked with lxml).
    """
    latex = _SHRINK.sub(r"\1", latex.strip())
    pieces: list[str] = []
    last = 0
    for match in _MATH.finditer(latex):
        pieces.append(_text_html(latex[last:match.start()]))
        display, double, paren, inline = match.groups()
        if display is not None or double is not None:
            shown = display if display is not None else double
            pieces.append("\\[" + html.escape(shown.strip(), quote=False) + "\\]")
        else:
            pieces.append("\\(" + html.escape((paren if paren is not None else inline).strip(), quote=False) + "\\)")
        last = match.end()
    pieces.append(_text_html(latex[last:]))
    fragment = "".join(pieces).strip()
    try:
        etree.fromstring(f"<div>{fragment}</div>")
    except etree.XMLSyntaxError:  # unbalanced environments: plain escaped text, still readable
        return html.escape(latex, quote=False).replace("\n\n", "<br/><br/>")
    return fragment


def _text_html(text: str) -> str:
    out = html.escape(text, quote=False)
    for pattern, replacement in _SIMPLE:
        out = pattern.sub(replacement, out)
    return out.replace("\n", " ")

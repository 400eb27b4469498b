"""Stage 1, load: question and worksheet YAML -> validated, frozen spec objects.

Validation has two layers, and both report every problem with file:line:col before stopping:
the JSON Schema shipped in `generator/schema/` (shape of the document: keys, types; editors use
the same file), then the checks a schema cannot express (names defined before use, expressions
within the whitelist, dimensions that exist).
"""

from __future__ import annotations

import difflib
import hashlib
import json
import math
import re
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema

from generator.errors import Location, SpecError, display_path
from generator.expr import FUNCTIONS, Expr, parse_expression
from generator.yamlload import KeyPath, Positions, load_yaml

__all__ = [
    "TemplateText",
    "ParameterSpec",
    "IndexFormSpec",
    "VectorizedSpec",
    "PartSpec",
    "QuestionSpec",
    "WorksheetSpec",
    "Bank",
    "load_question",
    "load_worksheet",
    "load_bank",
    "format_path",
]

RESERVED_NAMES = frozenset({"answer", "part", "question", "variant", "e", "pi", *FUNCTIONS})
# Sizes and value sets beyond these are never meant for hand computation, and would make
# sampling and SymPy slow enough to look like a hang.
MAX_SIZE = 20
MAX_VALUES = 10_000


@dataclass(frozen=True, slots=True)
class TemplateText:
    """Jinja LaTeX from a spec, with the spec location of its first line (for error messages)."""

    source: str
    where: Location
    key: str


@dataclass(frozen=True, slots=True)
class ParameterSpec:
    """A random parameter: scalar, vector or matrix (shape names dimensions)."""

    name: str
    shape: tuple[str | int, ...]
    low: int
    high: int
    denominators: tuple[int, ...]
    exclude: tuple[float, ...]
    onehot: bool
    where: Location


@dataclass(frozen=True, slots=True)
class IndexFormSpec:
    """The general index form asked for in a part, e.g. d u[j] / d W[i, l]."""

    of: str
    wrt: str
    expected: str | None
    where: Location


@dataclass(frozen=True, slots=True)
class VectorizedSpec:
    """A vectorized (matrix) form of an answer, checked against the definition."""

    expr: Expr
    latex: TemplateText


@dataclass(frozen=True, slots=True)
class PartSpec:
    """One thing the student computes: a value of a definition, or its Jacobian wrt a parameter."""

    id: str
    of: str
    wrt: str | None
    points: float | None
    prompt: TemplateText
    answer: TemplateText | None
    index_form: IndexFormSpec | None
    vectorized: VectorizedSpec | None
    where: Location


@dataclass(frozen=True, slots=True)
class QuestionSpec:
    """A validated question file."""

    id: str
    title: str
    points: float | None
    tags: tuple[str, ...]
    dimensions: tuple[tuple[str, int, int], ...]
    parameters: tuple[ParameterSpec, ...]
    constraints: tuple[Expr, ...]
    derived: tuple[tuple[str, Expr], ...]
    define: tuple[tuple[str, Expr], ...]
    index_ranges: tuple[tuple[str, str | int], ...]
    index_define: tuple[tuple[str, str, Location], ...]
    parts: tuple[PartSpec, ...]
    stem: TemplateText
    solution: TemplateText | None
    path: str
    sha256: str

    @property
    def parameter_names(self) -> tuple[str, ...]:
        return tuple(p.name for p in self.parameters)


@dataclass(frozen=True, slots=True)
class WorksheetSpec:
    """A worksheet: a titled list of questions from the bank."""

    id: str
    title: str
    course: str
    instructions: str
    footnotes: tuple[str, ...]
    questions: tuple[str, ...]
    path: str


@dataclass(frozen=True, slots=True)
class Bank:
    """Every question and worksheet found under a bank folder."""

    root: str
    questions: dict[str, QuestionSpec]
    worksheets: dict[str, WorksheetSpec]


# --- schema layer -----------------------------------------------------------------------------


@cache
def _validator(kind: str) -> jsonschema.protocols.Validator:
    text = resources.files("generator").joinpath("schema", f"{kind}.schema.json").read_text(encoding="utf-8")
    schema = json.loads(text)
    cls = jsonschema.validators.validator_for(schema)
    # JSON Schema counts 2.0 as an integer; a size or range written 2.0 would then reach range()
    # and numpy as a float. Here an integer is what YAML reads as one.
    integers = cls.TYPE_CHECKER.redefine("integer", lambda _, value: isinstance(value, int) and not isinstance(value, bool))
    return jsonschema.validators.extend(cls, type_checker=integers)(schema)


_PLAIN_KEY = re.compile(r"^[A-Za-z0-9_-]+$")


def format_path(path: KeyPath) -> str:
    """`("parts", 2, "id")` -> `parts[2].id`, as messages show a key path."""
    out = ""
    for item in path:
        if isinstance(item, int):
            out += f"[{item}]"
        elif not _PLAIN_KEY.fullmatch(item):
            out += f"[{item!r}]"  # spaces, dots, line breaks: quoted, so a message stays one line
        else:
            out += f".{item}" if out else item
    return out or "(document)"


def _describe(value: Any) -> str:
    if value is None:
        return "nothing (null)"
    if isinstance(value, bool):
        return f"boolean {str(value).lower()}"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return f"a list of {len(value)}"
    if isinstance(value, str):
        return f"text {value!r}"
    return f"number {value!r}"


_TYPE_WORDS = {
    "object": "a mapping",
    "array": "a list",
    "string": "text",
    "integer": "an integer",
    "number": "a number",
    "boolean": "true or false",
}


def _schema_problems(data: Any, positions: Positions, kind: str) -> list[str]:
    problems: list[tuple[tuple[int, int], str]] = []
    for error in _validator(kind).iter_errors(data):
        path = tuple(error.absolute_path)
        for where, message in _explain(error, path, positions):
            problems.append(((where.line or 0, where.col or 0), f"{where}: {message}"))
    problems.sort()
    return list(dict.fromkeys(message for _, message in problems))


def _explain(error: jsonschema.ValidationError, path: KeyPath, positions: Positions) -> list[tuple[Location, str]]:
    name = format_path(path)
    v, expected, instance = error.validator, error.validator_value, error.instance
    where = positions.at(path)
    if v == "additionalProperties" and isinstance(instance, dict):
        known = list(error.schema.get("properties", {}))
        out = []
        for key in instance:
            if key not in known:
                close = difflib.get_close_matches(key, known, n=1)
                hint = f"; did you mean '{close[0]}'?" if close else f" (allowed: {', '.join(known)})"
                out.append((positions.at(path + (key,), key=True), f"{format_path(path + (key,))}: unknown key {key!r}{hint}"))
        return out
    if v == "required":
        missing = [key for key in expected if key not in instance]
        return [(where, f"{name}: missing required key '{key}'") for key in missing]
    if v == "type":
        types = expected if isinstance(expected, list) else [expected]
        words = " or ".join(_TYPE_WORDS.get(t, t) for t in types)
        return [(where, f"{name}: expected {words}, got {_describe(instance)}")]
    if v == "pattern":
        if error.schema is not None and "propertyNames" in str(error.relative_schema_path):
            where = positions.at(path + (instance,), key=True)
            name = format_path(path + (instance,))
        return [(where, f"{name}: expected a name of letters, digits and '_'/'-' (pattern {expected}), got {instance!r}")]
    if v in ("minItems", "maxItems") and isinstance(instance, list):
        if error.schema.get("minItems") == error.schema.get("maxItems"):
            return [(where, f"{name}: expected exactly {expected} items, got {len(instance)}")]
        word = "at least" if v == "minItems" else "at most"
        return [(where, f"{name}: expected {word} {expected} items, got {len(instance)}")]
    if v == "minProperties":
        return [(where, f"{name}: expected at least {expected} entries, got {len(instance)}")]
    if v in ("minimum", "exclusiveMinimum"):
        return [(where, f"{name}: expected a number >= {expected}, got {instance!r}")]
    if v == "minLength":
        return [(where, f"{name}: expected non-empty text, got {instance!r}")]
    if v == "uniqueItems":
        return [(where, f"{name}: expected distinct items, got duplicates")]
    return [(where, f"{name}: {error.message}")]


# --- semantic layer ---------------------------------------------------------------------------


class _Problems:
    """Collects every problem of one file, so the author sees them all at once."""

    def __init__(self, positions: Positions):
        self.positions = positions
        self.items: list[tuple[tuple[int, int], str]] = []

    def add(self, path: KeyPath, message: str, *, key: bool = False) -> None:
        where = self.positions.at(path, key=key)
        self.items.append(((where.line or 0, where.col or 0), f"{where}: {format_path(path)}: {message}"))

    def add_raw(self, where: Location, message: str) -> None:
        self.items.append(((where.line or 0, where.col or 0), message))

    def raise_if_any(self) -> None:
        if self.items:
            self.items.sort()
            raise SpecError(list(dict.fromkeys(message for _, message in self.items)))


def _template(data: dict[str, Any], positions: Positions, path: KeyPath) -> TemplateText:
    return TemplateText(source=data, where=positions.text_start(path), key=format_path(path))  # type: ignore[arg-type]


def load_question(path: str | Path) -> QuestionSpec:
    """Load and validate one question file.

    Raises:
        SpecError: listing every problem found, each as `file:line:col: key.path: message`.
    """
    data, positions = load_yaml(path)
    raw = Path(path).read_bytes()
    if not isinstance(data, dict):
        raise SpecError(f"{positions.file}:1:1: expected a mapping of question keys, got {_describe(data)}")
    problems = _schema_problems(data, positions, "question")
    if problems:
        raise SpecError(problems)
    return _build_question(data, positions, hashlib.sha256(raw).hexdigest())


def _expression(
    problems: _Problems, value: Any, positions: Positions, path: KeyPath, allowed: set[str], later: dict[str, str] | None = None
) -> Expr | None:
    try:
        pending = {name: where for name, where in (later or {}).items() if name not in allowed}
        if path[-1] in pending:
            pending[str(path[-1])] = "a definition cannot use itself"
        return parse_expression(value, positions.at(path), allowed, format_path(path), pending)
    except SpecError as e:
        problems.add_raw(positions.at(path), str(e))
        return None


def _build_question(data: dict[str, Any], positions: Positions, sha256: str) -> QuestionSpec:
    p = _Problems(positions)
    taken: dict[str, str] = {}

    def claim(name: str, section: str, path: KeyPath) -> None:
        if name in RESERVED_NAMES:
            p.add(path, f"'{name}' is reserved (a function or template name); choose another name", key=True)
        elif name in taken:
            p.add(path, f"'{name}' is already defined in {taken[name]}", key=True)
        else:
            taken[name] = section

    dimensions = []
    for name, (low, high) in data.get("dimensions", {}).items():
        claim(name, "dimensions", ("dimensions", name))
        if not 1 <= low <= high:
            p.add(("dimensions", name), f"expected [low, high] with 1 <= low <= high, got [{low}, {high}]")
        elif high > MAX_SIZE:
            p.add(("dimensions", name), f"expected sizes of at most {MAX_SIZE}, got [{low}, {high}]")
        dimensions.append((name, low, high))
    dim_names = {name for name, _, _ in dimensions}

    parameters = []
    for name, raw in data["parameters"].items():
        path: KeyPath = ("parameters", name)
        claim(name, "parameters", path)
        shape = tuple(raw.get("shape", []))
        for i, size in enumerate(shape):
            if isinstance(size, str) and size not in dim_names:
                hint = difflib.get_close_matches(size, sorted(dim_names), n=1)
                extra = f"; did you mean '{hint[0]}'?" if hint else f" (dimensions: {', '.join(sorted(dim_names)) or 'none'})"
                p.add(path + ("shape", i), f"unknown dimension {size!r}{extra}")
            elif isinstance(size, int) and not 1 <= size <= MAX_SIZE:
                p.add(path + ("shape", i), f"expected a size from 1 to {MAX_SIZE}, got {size}")
        onehot = bool(raw.get("onehot", False))
        if onehot:
            if len(shape) != 1:
                p.add(path + ("onehot",), f"a one-hot parameter must be a vector (shape of length 1), got shape {list(shape)}")
            if "entries" in raw:
                p.add(path + ("entries",), "a one-hot parameter has no entries range")
            low, high = 0, 1
        elif "entries" not in raw:
            p.add(path, "missing required key 'entries' (or set onehot: true)")
            low, high = 0, 0
        else:
            low, high = raw["entries"]
            if low > high:
                p.add(path + ("entries",), f"expected [low, high] with low <= high, got [{low}, {high}]")
        denominators = tuple(raw.get("denominators", [1]))
        exclude = tuple(raw.get("exclude", []))
        for i, value in enumerate(exclude):
            if not math.isfinite(value):
                p.add(path + ("exclude", i), f"expected a finite number, got {value}")
        exclude = tuple(x for x in exclude if math.isfinite(x))
        if not onehot and low <= high:
            count = sum((high - low) * q + 1 for q in set(denominators))
            if count > MAX_VALUES:
                p.add(path + ("entries",), f"expected at most {MAX_VALUES} values to draw from, got about {count} "
                                           f"(entries [{low}, {high}], denominators {list(denominators)})")
            elif _count_values(low, high, denominators, exclude) == 0:
                p.add(path + ("exclude",), f"excludes every value in [{low}, {high}]")
        parameters.append(ParameterSpec(name, shape, low, high, denominators, exclude, onehot, positions.at(path)))

    values = dim_names | {param.name for param in parameters}
    # Names defined further down, for a precise message when one is used too early. Order of
    # evaluation: derived, then constraints (at every draw), then define.
    lines = {
        (section, name): positions.at((section, name), key=True).line
        for section in ("derived", "define")
        for name in data.get(section, {})
    }
    later = {name: f"derived.{name} is at line {line}; move it above this one"
             for (section, name), line in lines.items() if section == "derived"}
    later.update({name: f"define.{name} is at line {line}, and define is evaluated after derived and constraints, "
                  f"so move it to derived" for (section, name), line in lines.items() if section == "define"})
    derived = []
    for name, text in data.get("derived", {}).items():
        claim(name, "derived", ("derived", name))
        expr = _expression(p, text, positions, ("derived", name), values, later)
        values.add(name)
        if expr:
            derived.append((name, expr))

    constraints = []
    for i, text in enumerate(data.get("constraints", [])):
        expr = _expression(p, text, positions, ("constraints", i), values, later)
        if expr:
            constraints.append(expr)

    later_define = {name: f"define.{name} is at line {line}; move it above this one"
                    for (section, name), line in lines.items() if section == "define"}
    define = []
    for name, text in data["define"].items():
        claim(name, "define", ("define", name))
        expr = _expression(p, text, positions, ("define", name), values, later_define)
        values.add(name)
        if expr:
            define.append((name, expr))
    defined = [name for name, _ in define] + [name for name in data["define"] if name not in dict(define)]

    index = data.get("index", {})
    index_ranges = tuple(index.get("ranges", {}).items())
    for name, size in index_ranges:
        if isinstance(size, str) and size not in dim_names:
            p.add(("index", "ranges", name), f"unknown dimension {size!r}")
    index_define = tuple(
        (name, str(text), positions.at(("index", "define", name))) for name, text in index.get("define", {}).items()
    )

    parts = []
    seen_parts: set[str] = set()
    param_names = [param.name for param in parameters]
    for i, raw in enumerate(data["parts"]):
        path = ("parts", i)
        if raw["id"] in seen_parts:
            p.add(path + ("id",), f"duplicate part id '{raw['id']}'")
        seen_parts.add(raw["id"])
        if raw["of"] not in defined:
            hint = difflib.get_close_matches(raw["of"], defined, n=1)
            extra = f"; did you mean '{hint[0]}'?" if hint else f" (defined: {', '.join(defined)})"
            p.add(path + ("of",), f"{raw['of']!r} is not in define{extra}")
        wrt = raw.get("wrt")
        if wrt is not None and wrt not in param_names:
            hint = difflib.get_close_matches(wrt, param_names, n=1)
            extra = f"; did you mean '{hint[0]}'?" if hint else f" (parameters: {', '.join(param_names)})"
            p.add(path + ("wrt",), f"{wrt!r} is not a parameter{extra}")
        index_form = None
        if "index_form" in raw:
            f = raw["index_form"]
            index_form = IndexFormSpec(f["of"], f["wrt"], None if f.get("expected") is None else str(f["expected"]),
                                       positions.at(path + ("index_form",)))
            if not index_define:
                p.add(path + ("index_form",), "needs an `index: define:` section in the question")
        vectorized = None
        if "vectorized" in raw:
            vexpr = _expression(p, raw["vectorized"]["expr"], positions, path + ("vectorized", "expr"), values)
            if vexpr:
                vectorized = VectorizedSpec(vexpr, _template(raw["vectorized"]["latex"], positions, path + ("vectorized", "latex")))
        parts.append(
            PartSpec(
                id=raw["id"],
                of=raw["of"],
                wrt=wrt,
                points=raw.get("points"),
                prompt=_template(raw["prompt"], positions, path + ("prompt",)),
                answer=_template(raw["answer"], positions, path + ("answer",)) if "answer" in raw else None,
                index_form=index_form,
                vectorized=vectorized,
                where=positions.at(path),
            )
        )
    p.raise_if_any()
    return QuestionSpec(
        id=data["id"],
        title=data["title"],
        points=data.get("points"),
        tags=tuple(data.get("tags", [])),
        dimensions=tuple(dimensions),
        parameters=tuple(parameters),
        constraints=tuple(constraints),
        derived=tuple(derived),
        define=tuple(define),
        index_ranges=index_ranges,
        index_define=index_define,
        parts=tuple(parts),
        stem=_template(data["stem"], positions, ("stem",)),
        solution=_template(data["solution"], positions, ("solution",)) if "solution" in data else None,
        path=positions.file,
        sha256=sha256,
    )


def _count_values(low: int, high: int, denominators: tuple[int, ...], exclude: tuple[float, ...]) -> int:
    from fractions import Fraction

    values = {Fraction(n, q) for q in denominators for n in range(low * q, high * q + 1)}
    return len(values - {Fraction(str(x)) for x in exclude})


def load_worksheet(path: str | Path) -> WorksheetSpec:
    """Load and validate one worksheet file (question ids are checked against the bank later)."""
    data, positions = load_yaml(path)
    if not isinstance(data, dict):
        raise SpecError(f"{positions.file}:1:1: expected a mapping of worksheet keys, got {_describe(data)}")
    problems = _schema_problems(data, positions, "worksheet")
    if problems:
        raise SpecError(problems)
    return WorksheetSpec(
        id=data["id"],
        title=data["title"],
        course=data.get("course", ""),
        instructions=data.get("instructions", ""),
        footnotes=tuple(data.get("footnotes", [])),
        questions=tuple(data["questions"]),
        path=positions.file,
    )


def load_bank(root: str | Path) -> Bank:
    """Load every `questions/*.yaml` and `worksheets/*.yaml` under `root`, reporting all problems.

    Raises:
        SpecError: every problem of every file, and worksheet entries that name no question.
    """
    root = Path(root)
    if not root.is_dir():
        raise SpecError(f"{display_path(root)}: bank folder not found")
    problems: list[str] = []
    questions: dict[str, QuestionSpec] = {}
    worksheets: dict[str, WorksheetSpec] = {}
    for file in sorted((root / "questions").glob("*.y*ml")):
        try:
            question = load_question(file)
        except SpecError as e:
            problems.extend(e.problems)
            continue
        if question.id in questions:
            problems.append(f"{question.path}: id '{question.id}' is also used by {questions[question.id].path}")
        questions[question.id] = question
    for file in sorted((root / "worksheets").glob("*.y*ml")):
        try:
            sheet = load_worksheet(file)
        except SpecError as e:
            problems.extend(e.problems)
            continue
        _, positions = load_yaml(file)
        for i, qid in enumerate(sheet.questions):
            if qid not in questions and not any(qid == p.split(":")[0] for p in problems):
                hint = difflib.get_close_matches(qid, list(questions), n=1)
                extra = f"; did you mean '{hint[0]}'?" if hint else ""
                problems.append(f"{positions.at(('questions', i))}: questions[{i}]: no question with id {qid!r} in the bank{extra}")
        worksheets[sheet.id] = sheet
    if problems:
        raise SpecError(problems)
    return Bank(str(root), questions, worksheets)



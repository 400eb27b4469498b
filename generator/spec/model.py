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
from collections.abc import Iterable
from dataclasses import dataclass, field
from fractions import Fraction
from functools import cache, lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema

from generator.errors import Location, SpecError, display_path
from generator.spec.expr import (
    FUNCTIONS,
    MAX_DEPTH,
    RESERVED_WORDS,
    Expr,
    formula_symbols,
    nesting_depths,
    parse_expression,
    reserved_message,
)
from generator.spec.indexnotation import (
    IndexExpr,
    IndexRef,
    IndexScope,
    parse_index_expression,
    parse_index_ref,
)
from generator.spec.texcheck import forbidden_commands, refusal
from generator.spec.yamlload import KeyPath, Positions, load_yaml, read_regular_file

__all__ = [
    "EXACT_RULE",
    "AnswerRule",
    "MISCONCEPTIONS",
    "Bank",
    "ChoiceOption",
    "ChoiceSpec",
    "ExamEntry",
    "ExamSpec",
    "IndexDefinition",
    "IndexFormSpec",
    "ParameterSpec",
    "AnswerSpace",
    "PartSpec",
    "QuestionSpec",
    "TemplateText",
    "VectorizedSpec",
    "WrtSpec",
    "WorksheetSpec",
    "entry_values",
    "format_path",
    "load_bank",
    "load_exam",
    "load_question",
    "load_worksheet",
    "stray_files",
    "unknown_question",
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
    """A random parameter: scalar, vector or matrix (shape names dimensions).

    Its entries are drawn from `low` to `high`: fractions p/q with q in `denominators`, or, with a
    `step`, low, low + step, ..., high (decimals kept exact: 0.01 is 1/100, never a float)."""

    name: str
    shape: tuple[str | int, ...]
    low: int | Fraction
    high: int | Fraction
    denominators: tuple[int, ...]
    exclude: tuple[float, ...]
    onehot: bool
    where: Location
    step: Fraction | None = None


@lru_cache(maxsize=1024)  # the same list for every draw of every variant
def entry_values(param: ParameterSpec) -> tuple[Fraction, ...]:
    """The values one entry of a parameter can take, in increasing order (exact)."""
    if param.step is not None:
        count = int((Fraction(param.high) - Fraction(param.low)) / param.step)
        values = {Fraction(param.low) + k * param.step for k in range(count + 1)}
    else:
        low, high = int(param.low), int(param.high)
        values = {Fraction(n, q) for q in param.denominators for n in range(low * q, high * q + 1)}
    excluded = {Fraction(str(x)) for x in param.exclude}
    return tuple(sorted(values - excluded))


@dataclass(frozen=True, slots=True)
class AnswerRule:
    """How a part is answered: `exact` (the default), or rounded to `digits` decimal places
    (`decimals`) or significant digits (`sigfigs`), accepted within `abs_tol` + `rel_tol` x |value|.

    `show_exact`: whether the key also shows the exact form (None: where it is readable)."""

    kind: str = "exact"
    digits: int | None = None
    abs_tol: Fraction | None = None
    rel_tol: Fraction | None = None
    show_exact: bool | None = None

    @property
    def rounded(self) -> bool:
        return self.kind != "exact"


EXACT_RULE = AnswerRule()


@dataclass(frozen=True, slots=True)
class IndexDefinition:
    """One index-notation definition, e.g. `u[j]: sum(W[j, k] * x[k], k) + b[j]`."""

    ref: IndexRef
    expr: IndexExpr


@dataclass(frozen=True, slots=True)
class IndexFormSpec:
    """The general index form asked for in a part, e.g. d u[j] / d W[i, l], and its textbook form."""

    of: IndexRef
    wrt: IndexRef
    expected: IndexExpr | None
    where: Location


@dataclass(frozen=True, slots=True)
class VectorizedSpec:
    """A vectorized (matrix) form of an answer, checked against the definition."""

    expr: Expr
    latex: TemplateText


# The ready-made wrong answers of a derivative choice (what each is: generator.answers.solve.misconception).
MISCONCEPTIONS = ("transposed", "sign", "inner_dropped")
MAX_OPTIONS = 26  # lettered (A) to (Z)


@dataclass(frozen=True, slots=True)
class ChoiceOption:
    """One option an author writes for a choice part: an expression (`value`, a number, array or
    formula) or LaTeX `text`; `correct` is True, False, or a condition decided per variant."""

    value: Expr | None
    text: str | None
    correct: bool | Expr
    where: Location


@dataclass(frozen=True, slots=True)
class ChoiceSpec:
    """A multiple-choice (or true/false) part's options: the author's, then the ready-made
    `misconceptions` of the part's derivative; with an `of`, the part's own answer is an option
    too (the correct one). `shuffle`: the options are put in a random order per variant."""

    options: tuple[ChoiceOption, ...]
    misconceptions: tuple[str, ...]
    shuffle: bool
    where: Location


@dataclass(frozen=True, slots=True)
class AnswerSpace:
    """A part's answer space on the student sheet, as its `space:` key gives it.

    `kind` is "blank" (a length of empty space), "box", "grid" or "lines"; `size` is a length
    such as "4cm" (blank, box, grid), a number of lines (lines), or None: sized to the answer's
    shape (generator.render.documents), the same for every variant of the question.
    """

    kind: str
    size: str | int | None


@dataclass(frozen=True, slots=True)
class WrtSpec:
    """One variable of a derivative: a whole parameter, one entry of it (`x[1]`), or a symbol."""

    text: str  # as written, for the manifest
    name: str
    index: tuple[int, ...] | None = None
    symbol: bool = False


@dataclass(frozen=True, slots=True)
class PartSpec:
    """One thing the student computes: a value of a definition, or its Jacobian wrt a parameter.

    `kind` says which, and picks the solver and the check (one function per kind in
    `generator.answers.solve` and `generator.answers.verify`): `value`, `jacobian` (one whole
    parameter, `wrt`), `derivative` (the variables in `derivative`: a higher or mixed derivative,
    one entry, or a symbol, whose answer is then a formula), `linalg` (`find:` a matrix's
    determinant, inverse, rank, eigenvalues or eigenvectors), `roots` (the real roots of a formula
    in one symbol), `system` (the solution of `of` x = `rhs`) and `integral` (an antiderivative, or
    with `limits` a definite integral)."""

    id: str
    of: str
    wrt: str | None
    points: float | None
    prompt: TemplateText
    answer: TemplateText | None
    index_form: IndexFormSpec | None
    vectorized: VectorizedSpec | None
    where: Location
    rule: AnswerRule = EXACT_RULE
    choice: ChoiceSpec | None = None  # a multiple-choice part; `of` is then "" when it has none
    space: AnswerSpace | None = None  # None: the default for the answer's shape
    derivative: tuple[WrtSpec, ...] = ()
    form: str | None = None  # a formula answer's form: expand, factor or simplify (None: as SymPy writes it)
    find: str | None = None  # determinant, inverse, rank, eigenvalues, eigenvectors, roots or solution
    rhs: str | None = None  # with find: solution, the b of A x = b
    integrate: str | None = None  # the symbol of an integral (indefinite without limits)
    limits: tuple[Expr, ...] = ()  # a definite integral's lower and upper limit

    @property
    def kind(self) -> str:
        """`choice`, `value`, `jacobian`, `derivative`, `linalg`, `roots`, `system` or `integral` (see the class
        docstring)."""
        if self.choice is not None:
            return "choice"
        if self.integrate is not None:
            return "integral"
        if self.find is not None:
            return {"roots": "roots", "solution": "system"}.get(self.find, "linalg")
        if self.derivative:
            return "derivative"
        return "jacobian" if self.wrt is not None else "value"

    @property
    def hessian(self) -> bool:
        """Whether the part asks for a second derivative twice by one vector parameter (a Hessian)."""
        return len(self.derivative) == 2 and self.derivative[0] == self.derivative[1] \
            and not self.derivative[0].symbol and self.derivative[0].index is None

    @property
    def wrt_written(self) -> str | list[str] | None:
        """`wrt` as the manifest records it: the name, an entry (`x[1]`) or the list of variables."""
        if len(self.derivative) > 1:
            return [w.text for w in self.derivative]
        return self.derivative[0].text if self.derivative else self.wrt


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
    index_latex: tuple[tuple[str, str], ...]
    index_define: tuple[IndexDefinition, ...]
    parts: tuple[PartSpec, ...]
    stem: TemplateText
    solution: TemplateText | None
    path: str
    sha256: str
    symbols: tuple[str, ...] = ()  # free symbols: a definition that holds one is a formula

    @property
    def parameter_names(self) -> tuple[str, ...]:
        return tuple(p.name for p in self.parameters)

    def __hash__(self) -> int:
        # A question keys many caches (per dimensions, per part), looked up for every variant;
        # the generated hash walks every field (15 us for mlp2). Equal specs have equal files.
        return hash((self.id, self.path, self.sha256))


@dataclass(frozen=True, slots=True)
class WorksheetSpec:
    """A worksheet: a titled list of questions from the bank.

    `headings` (question id -> raw LaTeX) group questions: a heading starts a numbered question
    and the questions up to the next heading are its sub-questions (1.1, 1.2, ...), as on a
    course sheet. `notes` (question id -> raw LaTeX) are footnotes on question titles.
    """

    id: str
    title: str
    course: str
    instructions: str
    footnotes: tuple[str, ...]
    questions: tuple[str, ...]
    path: str
    headings: tuple[tuple[str, str], ...] = ()
    notes: tuple[tuple[str, str], ...] = ()
    where: tuple[Location, ...] = ()  # where each entry of `questions` stands in the file


@dataclass(frozen=True, slots=True)
class ExamEntry:
    """One line of an exam's question list: a question by id, or `count` questions drawn from a tag."""

    id: str | None
    tag: str | None
    count: int
    points: float | None
    where: Location


@dataclass(frozen=True, slots=True)
class ExamSpec:
    """An exam: a cover page (title, date, duration, name/ID fields, points) and questions from the bank."""

    id: str
    title: str
    course: str
    date: str
    duration: str
    instructions: str
    footnotes: tuple[str, ...]
    shuffle: bool
    total: float | None
    entries: tuple[ExamEntry, ...]
    path: str
    sha256: str
    where_total: Location


@dataclass(frozen=True, slots=True)
class Bank:
    """Every question, worksheet and exam found under a bank folder."""

    root: str
    questions: dict[str, QuestionSpec]
    worksheets: dict[str, WorksheetSpec]
    exams: dict[str, ExamSpec] = field(default_factory=dict)
    warnings: tuple[str, ...] = ()  # e.g. YAML files outside questions/, worksheets/ and exams/, which are not read


# --- schema layer -----------------------------------------------------------------------------


@cache
def _validator(kind: str) -> jsonschema.protocols.Validator:
    text = resources.files("generator").joinpath("schema", f"{kind}.schema.json").read_text(encoding="utf-8")
    schema = json.loads(text)
    cls = jsonschema.validators.validator_for(schema)
    # JSON Schema counts 2.0 as an integer; a size or range written 2.0 would then reach range()
    # and numpy as a float. Here an integer is what YAML reads as one.
    integers = cls.TYPE_CHECKER.redefine(
        "integer", lambda _, value: isinstance(value, int) and not isinstance(value, bool))
    extended = jsonschema.validators.extend(cls, type_checker=integers)  # type: ignore[no-untyped-call]
    return extended(schema)


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
    # jsonschema types these as possibly unset; an error from iter_errors has every one of them.
    v: Any = error.validator
    expected: Any = error.validator_value
    instance: Any = error.instance
    schema: Any = error.schema
    where = positions.at(path)
    if v == "additionalProperties" and isinstance(instance, dict):
        known = list(schema.get("properties", {}))
        out = []
        for key in instance:
            if key not in known:
                close = difflib.get_close_matches(key, known, n=1)
                hint = f"; did you mean '{close[0]}'?" if close else f" (allowed: {', '.join(known)})"
                out.append((positions.at(path + (key,), key=True),
                            f"{format_path(path + (key,))}: unknown key {key!r}{hint}"))
        return out
    if v == "required":
        missing = [key for key in expected if key not in instance]
        return [(where, f"{name}: missing required key '{key}'") for key in missing]
    if v == "type":
        types: list[str] = expected if isinstance(expected, list) else [expected]
        words = " or ".join(_TYPE_WORDS.get(t, t) for t in types)
        return [(where, f"{name}: expected {words}, got {_describe(instance)}")]
    if v == "pattern":
        if schema is not None and "propertyNames" in str(error.relative_schema_path):
            where = positions.at(path + (instance,), key=True)
            name = format_path(path + (instance,))
        return [(where,
                 f"{name}: expected a name of letters, digits and '_'/'-' (pattern {expected}), got {instance!r}")]
    if v in ("minItems", "maxItems") and isinstance(instance, list):
        if schema.get("minItems") == schema.get("maxItems"):
            return [(where, f"{name}: expected exactly {expected} items, got {len(instance)}")]
        word = "at least" if v == "minItems" else "at most"
        return [(where, f"{name}: expected {word} {expected} items, got {len(instance)}")]
    if v == "oneOf" and path and path[-1] == "space":
        return [(where, f"{name}: expected a length (e.g. 4cm), box, grid, lines, {{lines: N}}, {{box: LENGTH}} "
                        f"or {{grid: LENGTH}}, got {_describe(instance)}")]
    if v == "minProperties":
        return [(where, f"{name}: expected at least {expected} entries, got {len(instance)}")]
    if v == "minimum":
        return [(where, f"{name}: expected a number >= {expected}, got {instance!r}")]
    if v == "exclusiveMinimum":
        return [(where, f"{name}: expected a number > {expected}, got {instance!r}")]
    if v == "maximum":
        return [(where, f"{name}: expected a number <= {expected}, got {instance!r}")]
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


def _load_document(path: str | Path, kind: str) -> tuple[dict[str, Any], Positions, str]:
    """Read a YAML file and check it against the `kind` schema; returns data, positions, sha256.

    Raises:
        SpecError: YAML errors, a document that is not a mapping, or every schema problem.
    """
    data, positions = load_yaml(path)
    if not isinstance(data, dict):
        raise SpecError(f"{positions.file}:1:1: expected a mapping of {kind} keys, got {_describe(data)}")
    problems = _schema_problems(data, positions, kind)
    if problems:
        raise SpecError(problems)
    try:
        content = read_regular_file(path)
    except OSError as e:
        raise SpecError(str(e)) from None
    return data, positions, hashlib.sha256(content).hexdigest()


def load_question(path: str | Path) -> QuestionSpec:
    """Load and validate one question file.

    Raises:
        SpecError: listing every problem found, each as `file:line:col: key.path: message`.
    """
    data, positions, sha256 = _load_document(path, "question")
    return _build_question(data, positions, sha256)


def _expression(
    problems: _Problems, value: Any, positions: Positions, path: KeyPath, allowed: set[str],
    later: dict[str, str] | None = None,
    symbols: frozenset[str] = frozenset(),
) -> Expr | None:
    try:
        pending = {name: where for name, where in (later or {}).items() if name not in allowed}
        if path[-1] in pending:
            pending[str(path[-1])] = "a definition cannot use itself"
        return parse_expression(value, positions.at(path), allowed, format_path(path), pending, symbols)
    except SpecError as e:
        problems.add_raw(positions.at(path), str(e))
        return None


def _build_question(data: dict[str, Any], positions: Positions, sha256: str) -> QuestionSpec:
    """A question's validated spec, its sections checked in the order they are defined and used:
    dimensions, parameters, derived and constraints and define, the index section, then the parts.

    Raises:
        SpecError: every problem found in the file.
    """
    p = _Problems(positions)
    names = _Names(p)
    symbols = tuple(data.get("symbols", []))
    for i, name in enumerate(symbols):
        names.claim(name, "symbols", ("symbols", i))
    dimensions = _dimensions(p, names, data.get("dimensions", {}))
    dim_names = {name for name, _, _ in dimensions}
    parameters = [_parameter(p, names, name, raw, positions, dim_names) for name, raw in data["parameters"].items()]
    formulas: dict[str, frozenset[str]] = {}  # definition -> the symbols its value holds
    derived, constraints, define, values = _definitions(p, names, data, positions,
                                                        dim_names | {param.name for param in parameters},
                                                        frozenset(symbols), formulas)
    defined = [name for name, _ in define] + [name for name in data["define"] if name not in dict(define)]
    _check_nesting(p, derived, define)
    index = data.get("index", {})
    index_ranges, index_latex, index_define, scope = _index_section(p, index, positions, parameters, dim_names)
    parts = _parts(p, data["parts"], positions, defined=defined, parameters=[param.name for param in parameters],
                   values=values, scope=scope if "define" in index else None, formulas=formulas,
                   symbols=frozenset(symbols), shapes={param.name: param.shape for param in parameters})
    _check_commands(p, data, positions, parts)
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
        index_latex=index_latex,
        index_define=index_define,
        parts=tuple(parts),
        stem=_template(data["stem"], positions, ("stem",)),
        solution=_template(data["solution"], positions, ("solution",)) if "solution" in data else None,
        path=positions.file,
        sha256=sha256,
        symbols=symbols,
    )


class _Names:
    """The names a question defines in its dimensions, parameters, derived and define: each once, none reserved."""

    def __init__(self, problems: _Problems) -> None:
        self._problems = problems
        self._taken: dict[str, str] = {}  # name -> the section that defines it

    def claim(self, name: str, section: str, path: KeyPath) -> None:
        """Take `name` for `section`, or report why it cannot be taken."""
        if name in RESERVED_WORDS:
            self._problems.add(path, reserved_message(name), key=True)
        elif name in RESERVED_NAMES:
            self._problems.add(path, f"'{name}' is reserved (a function or template name); choose another name",
                               key=True)
        elif name in self._taken:
            self._problems.add(path, f"'{name}' is already defined in {self._taken[name]}", key=True)
        else:
            self._taken[name] = section


def _dimensions(p: _Problems, names: _Names, section: dict[str, Any]) -> list[tuple[str, int, int]]:
    """The `dimensions:` section: each name with its [low, high] sizes."""
    dimensions = []
    for name, (low, high) in section.items():
        names.claim(name, "dimensions", ("dimensions", name))
        if not 1 <= low <= high:
            p.add(("dimensions", name), f"expected [low, high] with 1 <= low <= high, got [{low}, {high}]")
        elif high > MAX_SIZE:
            p.add(("dimensions", name), f"expected sizes of at most {MAX_SIZE}, got [{low}, {high}]")
        dimensions.append((name, low, high))
    return dimensions


def _parameter(p: _Problems, names: _Names, name: str, raw: dict[str, Any], positions: Positions,
               dim_names: set[str]) -> ParameterSpec:
    """One entry of `parameters:`: its shape, the range its entries are drawn from, and what is excluded."""
    path: KeyPath = ("parameters", name)
    names.claim(name, "parameters", path)
    shape = tuple(raw.get("shape", []))
    for i, size in enumerate(shape):
        if isinstance(size, str) and size not in dim_names:
            hint = difflib.get_close_matches(size, sorted(dim_names), n=1)
            extra = (f"; did you mean '{hint[0]}'?" if hint
                     else f" (dimensions: {', '.join(sorted(dim_names)) or 'none'})")
            p.add(path + ("shape", i), f"unknown dimension {size!r}{extra}")
        elif isinstance(size, int) and not 1 <= size <= MAX_SIZE:
            p.add(path + ("shape", i), f"expected a size from 1 to {MAX_SIZE}, got {size}")
    onehot = bool(raw.get("onehot", False))
    low, high = _entry_range(p, path, raw, shape, onehot)
    denominators = tuple(raw.get("denominators", [1]))
    low, high, step = _decimal_step(p, path, raw, low, high, onehot)
    exclude = tuple(raw.get("exclude", []))
    for i, value in enumerate(exclude):
        if not math.isfinite(value):
            p.add(path + ("exclude", i), f"expected a finite number, got {value}")
    exclude = tuple(x for x in exclude if math.isfinite(x))
    if step is not None:
        param = ParameterSpec(name, shape, low, high, denominators, exclude, onehot, positions.at(path), step)
        if not entry_values(param):
            p.add(path + ("exclude",), f"excludes every value in [{raw['entries'][0]}, {raw['entries'][1]}]")
        return param
    if not onehot and low <= high:
        count = sum((high - low) * q + 1 for q in set(denominators))
        if count > MAX_VALUES:
            p.add(path + ("entries",), f"expected at most {MAX_VALUES} values to draw from, got about {count} "
                                       f"(entries [{low}, {high}], denominators {list(denominators)})")
        elif _count_values(low, high, denominators, exclude) == 0:
            p.add(path + ("exclude",), f"excludes every value in [{low}, {high}]")
    return ParameterSpec(name, shape, low, high, denominators, exclude, onehot, positions.at(path))


def _decimal_step(p: _Problems, path: KeyPath, raw: dict[str, Any], low: Any, high: Any,
                  onehot: bool) -> tuple[Any, Any, Fraction | None]:
    """A parameter's `step` (decimals): its range as exact numbers and the step; else the integer range and None."""
    if onehot:
        return low, high, None
    if "step" in raw and "denominators" in raw:
        p.add(path + ("step",), "give either step (decimals: 0.5, 0.51, ...) or denominators (fractions), not both",
              key=True)
        return 0, 0, None
    if "step" not in raw:
        if any(not isinstance(v, int) for v in (low, high)):
            p.add(path + ("entries",), f"expected whole numbers, got [{low}, {high}]; for decimals give a step as "
                                       f"well, e.g. step: 0.01 (or denominators for fractions)")
            return 0, 0, None
        return low, high, None
    step = _exact_decimal(raw["step"])
    first, last = _exact_decimal(low), _exact_decimal(high)
    steps = (last - first) / step
    if last < first:
        return 0, 0, None  # (reported by _entry_range)
    if steps.denominator != 1:
        p.add(path + ("step",), f"[{low}, {high}] is not a whole number of steps of {raw['step']}")
        return 0, 0, None
    if steps + 1 > MAX_VALUES:
        p.add(path + ("step",), f"expected at most {MAX_VALUES} values to draw from, got {steps + 1}")
        return 0, 0, None
    return (int(first) if first.denominator == 1 else first), (int(last) if last.denominator == 1 else last), step


def _exact_decimal(value: float) -> Fraction:
    """A number as written in YAML, exactly: 0.01 is 1/100 (from its shortest text, not the binary float)."""
    return Fraction(value) if isinstance(value, int) else Fraction(repr(value))


def _entry_range(p: _Problems, path: KeyPath, raw: dict[str, Any], shape: tuple[str | int, ...],
                 onehot: bool) -> tuple[Any, Any]:
    """A parameter's `entries: [low, high]`; [0, 1] for a one-hot vector, which has none."""
    if onehot:
        if len(shape) != 1:
            p.add(path + ("onehot",),
                  f"a one-hot parameter must be a vector (shape of length 1), got shape {list(shape)}")
        if "entries" in raw:
            p.add(path + ("entries",), "a one-hot parameter has no entries range")
        return 0, 1
    if "entries" not in raw:
        p.add(path, "missing required key 'entries' (or set onehot: true)")
        return 0, 0
    low, high = raw["entries"]
    if low > high:
        p.add(path + ("entries",), f"expected [low, high] with low <= high, got [{low}, {high}]")
    return low, high


def _check_commands(p: _Problems, data: dict[str, Any], positions: Positions, parts: list[PartSpec]) -> None:
    """Question text may not end or escape the document (generator.spec.texcheck)."""
    texts = [_template(data["stem"], positions, ("stem",))]
    texts += [_template(data["solution"], positions, ("solution",))] if "solution" in data else []
    for part in parts:
        texts += [part.prompt, *([part.answer] if part.answer else [])]
        texts += [part.vectorized.latex] if part.vectorized else []
    for text in texts:
        for where, command in forbidden_commands(text.source, text.where):
            p.add_raw(where, f"{where}: {text.key}: {refusal(command)}")


def _check_nesting(p: _Problems, derived: list[tuple[str, Expr]], define: list[tuple[str, Expr]]) -> None:
    """A deep expression makes a derivative SymPy takes minutes over: refused before any is taken."""
    sections = {name: "derived" for name, _ in derived} | {name: "define" for name, _ in define}
    for name, depth in nesting_depths((*derived, *define)).items():
        if depth > MAX_DEPTH:
            p.add((sections[name], name), f"nests {depth} operations and calls deep, counting the definitions it uses "
                                          f"(at most {MAX_DEPTH}); simplify it")


def _definitions(
    p: _Problems, names: _Names, data: dict[str, Any], positions: Positions, values: set[str],
    symbols: frozenset[str] = frozenset(), formulas: dict[str, frozenset[str]] | None = None,
) -> tuple[list[tuple[str, Expr]], list[Expr], list[tuple[str, Expr]], set[str]]:
    """The `derived:`, `constraints:` and `define:` sections, in their order of evaluation: derived,
    then constraints (at every draw), then define. Each expression may use `values` (dimensions
    and parameters) and the names defined above it.

    Returns derived, constraints and define (without the expressions that have problems), and
    every name an expression of the question may use. `formulas` receives the symbols each
    definition's value holds (a formula's free symbols).
    """
    values = set(values) | symbols
    formulas = {} if formulas is None else formulas
    # Names defined further down, for a precise message when one is used too early.
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
        names.claim(name, "derived", ("derived", name))
        expr = _expression(p, text, positions, ("derived", name), values, later, symbols)
        values.add(name)
        if expr:
            derived.append((name, expr))
            formulas[name] = formula_symbols(expr, symbols, formulas)

    constraints = []
    for i, text in enumerate(data.get("constraints", [])):
        expr = _expression(p, text, positions, ("constraints", i), values, later, symbols)
        if expr and (free := formula_symbols(expr, symbols, formulas)):
            p.add(("constraints", i), f"uses the symbol(s) {', '.join(sorted(free))}, which have no value: a "
                                      "constraint tests the drawn numbers (substitute a value with subs(f, x, value))")
        elif expr:
            constraints.append(expr)

    later_define = {name: f"define.{name} is at line {line}; move it above this one"
                    for (section, name), line in lines.items() if section == "define"}
    define = []
    for name, text in data["define"].items():
        names.claim(name, "define", ("define", name))
        expr = _expression(p, text, positions, ("define", name), values, later_define, symbols)
        values.add(name)
        if expr:
            define.append((name, expr))
            formulas[name] = formula_symbols(expr, symbols, formulas)
    return derived, constraints, define, values


def _parts(p: _Problems, raws: list[dict[str, Any]], positions: Positions, *, defined: list[str],
           parameters: list[str], values: set[str], scope: IndexScope | None,
           formulas: dict[str, frozenset[str]] | None = None, symbols: frozenset[str] = frozenset(),
           shapes: dict[str, tuple[str | int, ...]] | None = None) -> list[PartSpec]:
    """The `parts:` section: each part's id unique, its `of` in define and its `wrt` a parameter.

    `scope` is that of the question's index definitions; None when it has none (no `index: define:`).
    `formulas` holds the symbols each definition holds: a part cannot ask for a formula yet.
    """
    formulas = formulas or {}
    parts = []
    seen: set[str] = set()
    for i, raw in enumerate(raws):
        path: KeyPath = ("parts", i)
        if raw["id"] in seen:
            p.add(path + ("id",), f"duplicate part id '{raw['id']}'")
        seen.add(raw["id"])
        if "of" not in raw and "choice" not in raw:
            p.add(path, "missing required key 'of'")
            continue
        if "of" in raw and raw["of"] not in defined:
            hint = difflib.get_close_matches(raw["of"], defined, n=1)
            extra = f"; did you mean '{hint[0]}'?" if hint else f" (defined: {', '.join(defined)})"
            p.add(path + ("of",), f"{raw['of']!r} is not in define{extra}")
        of_name = raw.get("of", "")  # ("" in a choice part without one)
        wrt, derivative = _derivative_variables(p, raw, path, parameters, symbols, shapes or {})
        formula = bool(formulas.get(of_name)) or any(w.symbol for w in derivative)
        find = raw.get("find")
        if find is not None and (derivative or wrt is not None or "form" in raw):
            p.add(path + ("find",), "find goes without wrt, gradient, hessian and form", key=True)
        if find == "roots" and len(formulas.get(of_name, ())) != 1:
            p.add(path + ("find",), f"the roots need a formula in one symbol; '{of_name}' holds "
                                    f"{', '.join(sorted(formulas.get(of_name, ()))) or 'none'}", key=True)
        elif find is not None and find != "roots" and formula:
            p.add(path + ("find",), f"'{of_name}' is a formula; find: {find} needs a matrix of numbers", key=True)
        if (find == "solution") != ("rhs" in raw):
            p.add(path + ("rhs" if "rhs" in raw else "find",), "find: solution goes with rhs: b (A x = b), "
                                                               "and rhs with find: solution", key=True)
        elif "rhs" in raw and raw["rhs"] not in values:
            p.add(path + ("rhs",), f"{raw['rhs']!r} is not a parameter or definition")
        formula = formula and find is None
        integral, limits = _integral(p, raw, path, positions, symbols, formulas, values)
        formula = formula and (integral is None or not limits)
        if formula and (raw.get("decimals") is not None or raw.get("sigfigs") is not None):
            p.add(path + ("decimals" if "decimals" in raw else "sigfigs",),
                  f"'{of_name}' is a formula, which is answered exactly; round its value at a point instead "
                  f"(subs({of_name}, x, x0))", key=True)
        if "form" in raw and not formula:
            p.add(path + ("form",), f"form goes with a formula answer; '{of_name}' has no symbols", key=True)
        index_form = None
        if "index_form" in raw and "choice" not in raw:
            if scope is None:
                p.add(path + ("index_form",), "needs an `index: define:` section in the question")
            else:
                index_form = _index_form(p, raw, positions, path, scope)
        choice = _choice(p, raw, positions, path, values, symbols) if "choice" in raw else None
        parts.append(PartSpec(
            id=raw["id"],
            of=raw.get("of", ""),
            wrt=wrt,
            points=raw.get("points"),
            prompt=_template(raw["prompt"], positions, path + ("prompt",)),
            answer=_template(raw["answer"], positions, path + ("answer",)) if "answer" in raw else None,
            index_form=index_form,
            vectorized=(_vectorized(p, raw["vectorized"], positions, path, values)
                        if "vectorized" in raw and "choice" not in raw else None),
            where=positions.at(path),
            rule=_answer_rule(p, raw, path),
            choice=choice,
            space=_answer_space(raw["space"]) if "space" in raw else None,
            derivative=derivative,
            form=raw.get("form"),
            find=find,
            rhs=raw.get("rhs"),
            integrate=integral,
            limits=limits,
        ))
    return parts


def _choice(p: _Problems, raw: dict[str, Any], positions: Positions, path: KeyPath, values: set[str],
            symbols: frozenset[str]) -> ChoiceSpec:
    """A part's `choice:` section: each option an expression or text, correct or not (or a
    condition), and the misconceptions of the part's derivative."""
    base = path + ("choice",)
    section = raw["choice"]
    for key in ("decimals", "sigfigs", "tolerance", "show_exact", "index_form", "vectorized", "answer"):
        if key in raw:
            p.add(path + (key,), f"a choice part is answered by its letters; {key} does not apply", key=True)
    options = []
    for i, item in enumerate(section.get("options", [])):
        where: KeyPath = base + ("options", i)
        if ("value" in item) == ("text" in item):
            p.add(where, "give either value (an expression) or text (LaTeX), not both or neither")
            continue
        written: bool | str = item.get("correct", False)
        correct: bool | Expr | None = written if isinstance(written, bool) else \
            _expression(p, written, positions, where + ("correct",), values, symbols=symbols)
        if correct and "value" in item and "of" in raw:
            p.add(where + ("correct",), f"the part's answer ({raw['of']}) is the correct value; another value marked "
                                        "correct would equal it (leave out `of` to mark values yourself)")
        value = _expression(p, item["value"], positions, where + ("value",), values, symbols=symbols) \
            if "value" in item else None
        if correct is None or ("value" in item and value is None):
            continue
        options.append(ChoiceOption(value, item.get("text"), correct, positions.at(where)))
    misconceptions = tuple(section.get("misconceptions", []))
    for i, name in enumerate(misconceptions):
        if name not in MISCONCEPTIONS:
            p.add(base + ("misconceptions", i), f"unknown misconception {name!r} (known: {', '.join(MISCONCEPTIONS)})")
    if misconceptions and ("of" not in raw or "wrt" not in raw):
        p.add(base + ("misconceptions",), "misconceptions are wrong derivatives: the part needs `of` and `wrt`",
              key=True)
    if "of" not in raw and section.get("options") and all(o.get("correct", False) is False
                                                          for o in section["options"]):
        p.add(base + ("options",), "no option is correct: mark one with correct: true, give a condition "
                                   "(correct: \"det(M) > 0\"), or give the part an `of` (its answer is then an option)",
              key=True)
    count = len(section.get("options", [])) + len(misconceptions) + ("of" in raw)
    if count < 2:
        p.add(base, f"expected at least 2 options, got {count}", key=True)
    elif count > MAX_OPTIONS:
        p.add(base, f"expected at most {MAX_OPTIONS} options (lettered A to Z), got {count}", key=True)
    return ChoiceSpec(tuple(options), misconceptions, bool(section.get("shuffle", True)), positions.at(base))


def _integral(p: _Problems, raw: dict[str, Any], path: KeyPath, positions: Positions, symbols: frozenset[str],
              formulas: dict[str, frozenset[str]], values: set[str]) -> tuple[str | None, tuple[Expr, ...]]:
    """A part's `integrate: x` and its limits `from`, `to` (both or neither)."""
    if "integrate" not in raw:
        for key in ("from", "to"):
            if key in raw:
                p.add(path + (key,), f"{key} goes with integrate: x (a definite integral)", key=True)
        return None, ()
    x = raw["integrate"]
    if x not in symbols:
        p.add(path + ("integrate",),
              f"{x!r} is not a symbol of the question (symbols: {', '.join(sorted(symbols)) or 'none'})")
        return None, ()
    if x not in formulas.get(raw.get("of", ""), ()):
        p.add(path + ("integrate",), f"'{raw.get('of', '')}' does not hold the symbol {x}")
    if any(key in raw for key in ("wrt", "gradient", "hessian", "find")):
        p.add(path + ("integrate",), "integrate goes without wrt, gradient, hessian and find", key=True)
    if ("from" in raw) != ("to" in raw):
        p.add(path + ("from" if "from" in raw else "to",), "a definite integral needs both from and to", key=True)
        return x, ()
    if "from" not in raw:
        return x, ()
    limits = tuple(_expression(p, raw[key], positions, path + (key,), values - symbols) for key in ("from", "to"))
    return x, tuple(limit for limit in limits if limit is not None)


_VARIABLE = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_]*)\s*(?:\[\s*(\d+(?:\s*,\s*\d+)*)\s*\])?\s*$")


def _derivative_variables(
    p: _Problems, raw: dict[str, Any], path: KeyPath, parameters: list[str], symbols: frozenset[str],
    shapes: dict[str, tuple[str | int, ...]],
) -> tuple[str | None, tuple[WrtSpec, ...]]:
    """A part's `wrt` (or `gradient` / `hessian`): the parameter of a Jacobian (and no variables), or
    the variables of a `derivative` part (and the first one's name, so that the part reads as a
    derivative wherever only that matters)."""
    keys = [key for key in ("wrt", "gradient", "hessian") if key in raw]
    if len(keys) > 1:
        p.add(path + (keys[1],), f"give one of wrt, gradient and hessian, not {' and '.join(keys)}", key=True)
        return None, ()
    if not keys:
        return None, ()
    key = keys[0]
    written = raw[key]
    if key == "hessian":
        written = [written, written]
    if isinstance(written, str) and written in parameters:
        return written, ()  # the Jacobian with respect to a whole parameter, as always
    items = [written] if isinstance(written, str) else list(written)
    variables = []
    for i, text in enumerate(items):
        where = path + (key,) if isinstance(raw[key], str) else path + (key, i)
        match = _VARIABLE.match(text)
        if match is None:
            p.add(where, f"expected a parameter, an entry of one (x[1]) or a symbol, got {text!r}")
            continue
        name, indices = match.group(1), match.group(2)
        index = tuple(int(k) for k in indices.split(",")) if indices else None
        if name in symbols:
            if index is not None:
                p.add(where, f"'{name}' is a symbol, which has no entries; write {name}")
                continue
            variables.append(WrtSpec(text.strip(), name, None, True))
        elif name in parameters:
            rank = len(shapes.get(name, ()))
            if index is not None and len(index) != rank:
                p.add(where, f"'{name}' has {rank} ind{'ex' if rank == 1 else 'ices'}, got {len(index)} in {text!r}")
                continue
            variables.append(WrtSpec(text.strip(), name, index, False))
        else:
            options = parameters + sorted(symbols)
            hint = difflib.get_close_matches(name, options, n=1)
            extra = f"; did you mean '{hint[0]}'?" if hint else f" (parameters: {', '.join(parameters)})"
            p.add(where, f"{name!r} is not a parameter{' or symbol' if symbols else ''}{extra}")
    if len({w.symbol for w in variables}) > 1:
        p.add(path + (key,), "a derivative is either with respect to symbols (a formula) or to parameters "
                             "(numbers), not both")
    if len(variables) != len(items) or len({w.symbol for w in variables}) > 1:
        return None, ()
    return variables[0].name, tuple(variables)


def _answer_rule(p: _Problems, raw: dict[str, Any], path: KeyPath) -> AnswerRule:
    """A part's `decimals` / `sigfigs`, `tolerance` and `show_exact` (the default: exact)."""
    if "decimals" in raw and "sigfigs" in raw:
        p.add(path + ("sigfigs",),
              "give either decimals (places after the point) or sigfigs (significant digits), not both", key=True)
        return EXACT_RULE
    kind = "decimals" if "decimals" in raw else "sigfigs" if "sigfigs" in raw else "exact"
    if kind == "exact":
        for key in ("tolerance", "show_exact"):
            if key in raw:
                p.add(path + (key,), f"{key} goes with decimals: N or sigfigs: N; an exact answer is given exactly",
                      key=True)
        return EXACT_RULE
    digits = int(raw[kind])
    tolerance = raw.get("tolerance", {})
    abs_tol = _exact_decimal(tolerance["abs"]) if "abs" in tolerance else None
    rel_tol = _exact_decimal(tolerance["rel"]) if "rel" in tolerance else None
    if abs_tol is None and rel_tol is None:  # one unit of the last digit given
        if kind == "decimals":
            abs_tol = Fraction(1, 10**digits)
        else:
            rel_tol = Fraction(1, 10 ** (digits - 1))
    return AnswerRule(kind, digits, abs_tol, rel_tol, raw.get("show_exact"))


def _answer_space(raw: str | dict[str, Any]) -> AnswerSpace:
    """A part's `space:` (the schema has checked its form): `4cm`, `box`, `{lines: 6}`, ..."""
    if isinstance(raw, dict):
        ((kind, size),) = raw.items()
        return AnswerSpace(kind, size)
    if raw in ("box", "grid", "lines"):
        return AnswerSpace(raw, None)
    return AnswerSpace("blank", raw)


def _vectorized(p: _Problems, raw: dict[str, Any], positions: Positions, path: KeyPath,
                values: set[str]) -> VectorizedSpec | None:
    """A part's `vectorized:` form: its expression (None if it has problems) and its LaTeX."""
    expr = _expression(p, raw["expr"], positions, path + ("vectorized", "expr"), values)
    if not expr:
        return None
    return VectorizedSpec(expr, _template(raw["latex"], positions, path + ("vectorized", "latex")))


def _index_section(
    p: _Problems, index: dict[str, Any], positions: Positions, parameters: list[ParameterSpec], dim_names: set[str]
) -> tuple[tuple[tuple[str, str | int], ...], tuple[tuple[str, str], ...], tuple[IndexDefinition, ...], IndexScope]:
    """The `index:` section: index ranges, entry letters and index-notation definitions."""
    params = {param.name: param.shape for param in parameters}
    ranges = tuple(index.get("ranges", {}).items())
    for name, size in ranges:
        path: KeyPath = ("index", "ranges", name)
        if isinstance(size, str) and size not in dim_names:
            p.add(path, f"unknown dimension '{size}'")
        elif isinstance(size, int) and size < 1:
            p.add(path, f"expected a size >= 1, got {size}")
        if name in params:
            p.add(path, f"index '{name}' has the name of a parameter; choose another letter", key=True)
    shapes: dict[str, tuple[str | int, ...]] = dict(params)
    scope = IndexScope(dict(ranges), shapes)
    definitions = []
    for key, text in index.get("define", {}).items():
        path = ("index", "define", key)
        what = format_path(path)
        try:
            ref = parse_index_ref(key, positions.at(path, key=True), scope, what, new=True)
            if ref.name in shapes:
                kind = "a parameter" if ref.name in params else "already defined"
                p.add(path, f"'{ref.name}' is {kind}; an index definition needs a new name", key=True)
                continue
            expr = parse_index_expression(text, positions.at(path), scope, what, free=frozenset(ref.indices))
        except SpecError as e:
            p.add_raw(positions.at(path), str(e))
            continue
        shapes[ref.name] = tuple(scope.ranges[i] for i in ref.indices)
        definitions.append(IndexDefinition(ref, expr))
    letters = tuple((name, str(tex)) for name, tex in index.get("latex", {}).items())
    for name, _ in letters:
        if name not in shapes:
            p.add(("index", "latex", name), f"'{name}' is neither a parameter nor an index definition", key=True)
    return ranges, letters, tuple(definitions), scope


def _index_form(
    p: _Problems, raw: dict[str, Any], positions: Positions, path: KeyPath, scope: IndexScope
) -> IndexFormSpec | None:
    """A part's `index_form:` (of, wrt, expected), checked against the part's `of` and `wrt`."""
    f = raw["index_form"]
    base = path + ("index_form",)
    try:
        of = parse_index_ref(f["of"], positions.at(base + ("of",)), scope, format_path(base + ("of",)))
        wrt = parse_index_ref(f["wrt"], positions.at(base + ("wrt",)), scope, format_path(base + ("wrt",)))
    except SpecError as e:
        p.add_raw(positions.at(base), str(e))
        return None
    problems = len(p.items)
    if of.name != raw["of"]:
        p.add(base + ("of",), f"expected an entry of '{raw['of']}' (the part's `of`), got '{of.name}'")
    if "wrt" not in raw:
        p.add(base + ("wrt",), "the part has no `wrt`: an index form is the derivative of `of` with respect to `wrt`")
    elif wrt.name != raw["wrt"]:
        p.add(base + ("wrt",), f"expected an entry of '{raw['wrt']}' (the part's `wrt`), got '{wrt.name}'")
    shared = set(of.indices) & set(wrt.indices)
    if shared:
        p.add(base, f"{of} and {wrt} share the index {', '.join(sorted(shared))}; use different letters")
    expected = None
    if f.get("expected") is not None:
        try:
            expected = parse_index_expression(
                f["expected"], positions.at(base + ("expected",)), scope, format_path(base + ("expected",)),
                free=frozenset(of.indices + wrt.indices), within=True,
            )
        except SpecError as e:
            p.add_raw(positions.at(base + ("expected",)), str(e))
    if len(p.items) != problems:
        return None
    return IndexFormSpec(of, wrt, expected, positions.at(base))


def _count_values(low: Any, high: Any, denominators: tuple[int, ...], exclude: tuple[float, ...]) -> int:
    low, high = int(low), int(high)
    values = {Fraction(n, q) for q in denominators for n in range(low * q, high * q + 1)}
    return len(values - {Fraction(str(x)) for x in exclude})


def load_worksheet(path: str | Path) -> WorksheetSpec:
    """Load and validate one worksheet file (question ids are checked against the bank later)."""
    data, positions, _ = _load_document(path, "worksheet")
    _refuse_commands(data, positions)
    entries = [item if isinstance(item, dict) else {"id": item} for item in data["questions"]]
    headings = tuple((e["id"], e["heading"]) for e in entries if "heading" in e)
    if headings and "heading" not in entries[0]:
        raise SpecError(f"{positions.at(('questions', 0))}: questions[0]: "
                        "the first question needs a heading when others have one")
    return WorksheetSpec(
        id=data["id"],
        title=data["title"],
        course=data.get("course", ""),
        instructions=data.get("instructions", ""),
        footnotes=tuple(data.get("footnotes", [])),
        questions=tuple(e["id"] for e in entries),
        path=positions.file,
        headings=headings,
        notes=tuple((e["id"], e["footnote"]) for e in entries if "footnote" in e),
        where=tuple(positions.at(("questions", i)) for i in range(len(entries))),
    )


def _refuse_commands(data: dict[str, Any], positions: Positions) -> None:
    """A worksheet's or exam's raw-LaTeX fields may not end or escape the document (see texcheck)."""
    fields: list[KeyPath] = [("instructions",)] + [("footnotes", i) for i in range(len(data.get("footnotes", [])))]
    for i, entry in enumerate(data["questions"]):
        if isinstance(entry, dict):
            fields += [("questions", i, key) for key in ("heading", "footnote") if key in entry]
    problems = []
    for path in fields:
        value: Any = data
        for key in path:
            if isinstance(value, dict):
                value = value.get(key)
            else:
                value = value[key] if isinstance(value, list) and isinstance(key, int) else None
        if isinstance(value, str):
            problems += [f"{where}: {format_path(path)}: {refusal(command)}"
                         for where, command in forbidden_commands(value, positions.text_start(path))]
    if problems:
        raise SpecError(problems)


def _declared_id(file: Path) -> str:
    """The `id` a broken question file declares, if it can be read at all (else its file stem)."""
    try:
        data, _ = load_yaml(file)
    except SpecError:
        return file.stem
    return data["id"] if isinstance(data, dict) and isinstance(data.get("id"), str) else file.stem


def load_exam(path: str | Path) -> ExamSpec:
    """Load and validate one exam file (question ids and tags are checked against the bank later).

    Raises:
        SpecError: listing every problem found, each as `file:line:col: key.path: message`.
    """
    data, positions, sha256 = _load_document(path, "exam")
    _refuse_commands(data, positions)
    p = _Problems(positions)
    entries = []
    seen: dict[str, int] = {}
    for i, written in enumerate(data["questions"]):
        key: KeyPath = ("questions", i)
        item: dict[str, Any] = {"id": written} if isinstance(written, str) else written
        if ("id" in item) == ("tag" in item):
            p.add(key, "give either 'id' (one question) or 'tag' (questions drawn from a tag), not both or neither")
            continue
        if "id" in item and "count" in item:
            p.add(key + ("count",), "'count' goes with 'tag'; an 'id' entry is one question", key=True)
        if "id" in item:
            if item["id"] in seen:
                p.add(key + ("id",), f"question '{item['id']}' is already listed as questions[{seen[item['id']]}]")
            seen.setdefault(item["id"], i)
        entries.append(ExamEntry(item.get("id"), item.get("tag"), item.get("count", 1), item.get("points"),
                                 positions.at(key)))
    p.raise_if_any()
    duration = data.get("duration", "")
    return ExamSpec(
        id=data["id"],
        title=data["title"],
        course=data.get("course", ""),
        date=data.get("date", ""),
        duration=f"{duration} minutes" if isinstance(duration, int) else duration,
        instructions=data.get("instructions", ""),
        footnotes=tuple(data.get("footnotes", [])),
        shuffle=bool(data.get("shuffle", False)),
        total=data.get("total"),
        entries=tuple(entries),
        path=positions.file,
        sha256=sha256,
        where_total=positions.at(("total",)),
    )


def unknown_question(where: Location | str, index: int, qid: str, known: Iterable[str]) -> str:
    """A worksheet or exam entry naming no question of the bank, with the closest of the `known` ids
    (a file with errors is not counted: its own problems are reported already)."""
    hint = difflib.get_close_matches(qid, list(known), n=1)
    extra = f"; did you mean '{hint[0]}'?" if hint else ""
    return f"{where}: questions[{index}]: no question with id {qid!r} in the bank{extra}"


def load_bank(root: str | Path) -> Bank:
    """Load every `questions/*.yaml`, `worksheets/*.yaml` and `exams/*.yaml` under `root`, reporting all problems.

    Raises:
        SpecError: every problem of every file, and worksheet or exam entries that name no question.
    """
    root = Path(root)
    if not root.is_dir():
        raise SpecError(f"{display_path(root)}: bank folder not found")
    problems: list[str] = []
    questions: dict[str, QuestionSpec] = {}
    worksheets: dict[str, WorksheetSpec] = {}
    broken: set[str] = set()  # ids of question files with errors: already reported once
    for file in sorted((root / "questions").glob("*.y*ml")):
        try:
            question = load_question(file)
        except SpecError as e:
            problems.extend(e.problems)
            broken.add(_declared_id(file))
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
        for i, (qid, where) in enumerate(zip(sheet.questions, sheet.where, strict=True)):
            if qid not in questions and qid not in broken:
                problems.append(unknown_question(where, i, qid, questions))
        worksheets[sheet.id] = sheet
    exams: dict[str, ExamSpec] = {}
    for file in sorted((root / "exams").glob("*.y*ml")):
        try:
            exam = load_exam(file)
        except SpecError as e:
            problems.extend(e.problems)
            continue
        for i, entry in enumerate(exam.entries):
            if entry.id is not None and entry.id not in questions and entry.id not in broken:
                problems.append(unknown_question(entry.where, i, entry.id, questions))
        other = worksheets.get(exam.id) or exams.get(exam.id)
        if other is not None:
            problems.append(f"{exam.path}: id '{exam.id}' is also used by {other.path} (ids name the output folders)")
        exams[exam.id] = exam
    if problems:
        raise SpecError(problems)
    return Bank(str(root), questions, worksheets, exams, stray_files(root))


BANK_FOLDERS = ("questions", "worksheets", "exams")


def stray_files(root: Path) -> tuple[str, ...]:
    """A warning for each YAML file the bank does not read: outside its three folders, or below them."""
    warnings = []
    for file in sorted(root.rglob("*.y*ml")):
        relative = file.relative_to(root)
        if any(part.startswith(".") for part in relative.parts):
            continue
        if len(relative.parts) == 2 and relative.parts[0] in BANK_FOLDERS:
            continue
        read = ", ".join(f + "/*.yaml" for f in BANK_FOLDERS)
        warnings.append(f"{display_path(file)}: not read (the bank reads only {read})")
    return tuple(warnings)



"""Stage 5, render: Jinja LaTeX for each solved question, then the sheet and key documents.

Delimiters are `<< var >>`, `<% block %>` and `<# comment #>` (`generator.render.templating`), because `{{`,
`{%` and `{#` occur in ordinary LaTeX. Undefined names are errors (StrictUndefined), never silently empty. Every
template runs in Jinja's sandbox: question text comes from files a colleague may have shared, and the
sandbox refuses attribute tricks such as `''.__class__.__mro__`. Document templates are looked up
in the user's folder first, then in the project's `templates/`.
"""

from __future__ import annotations

import functools
import math
import sys
import weakref
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from types import TracebackType
from typing import Any

import jinja2
import jinja2.meta
import numpy as np
import sympy
from jinja2.sandbox import SandboxedEnvironment

from generator.answers.indexform import latex_index_form, layout_sentence
from generator.answers.rounding import readable, rule_tex
from generator.answers.solve import PartAnswer, Solution, sympified, tidy_array
from generator.errors import RenderError
from generator.render.latex import (
    DEFAULT_INDEX_NAMES,
    choice_option_latex,
    escape_text,
    latex_answer,
    latex_approx,
    latex_decimals,
    latex_formula,
    latex_matrix,
    latex_scalar,
    latex_sigfigs,
    latex_term,
    latex_value,
)
from generator.render.sandbox import SpecSandbox
from generator.render.templating import PROJECT_TEMPLATES, SYNTAX, PrintSettings, template_paths
from generator.spec.expr import NUMERIC, evaluate
from generator.spec.model import ExamSpec, PartSpec, QuestionSpec, TemplateText, WorksheetSpec
from generator.spec.roster import Student
from generator.spec.texcheck import forbidden_commands, refusal

__all__ = [
    "DOCUMENT_KINDS",
    "MACROS_FILE",
    "PROJECT_TEMPLATES",
    "RenderedPart",
    "CopyMark",
    "RenderedQuestion",
    "answer_space",
    "copy_mark",
    "make_environment",
    "render_document",
    "render_question",
    "with_points",
]

# sheet: questions and answer space; key: the answers only (for graders); solutions: the answers
# with index forms, vectorized forms and each question's worked solution (for students, after).
DOCUMENT_KINDS = ("sheet", "key", "solutions")
SHAPE_CONVENTION = (
    r"The derivative of an output of shape $A$ with respect to an input of shape $B$ has shape $A + B$: "
    r"entry $[a, b]$ is $\partial\,\mathrm{out}_a / \partial\,\mathrm{in}_b$. "
    r"Order-3 and order-4 tensors are shown as labelled blocks of matrices over their first indices; "
    r"indices count from 1."
)
# A bank's shared Jinja macros (question_bank/macros.tex.j2): callable by name in every question's templates.
MACROS_FILE = "macros.tex.j2"
# How each part's answer was checked (RenderedPart.check), as the key's opening paragraph says it.
FINITE_DIFFERENCES = "finite differences"
VALUE_CHECK = "value"
# How the other kinds of parts are checked, as the key's opening paragraph says it.
KIND_CHECKS = {
    "formula": "each formula at random points against its definition evaluated there in floating point",
    "linalg": r"each matrix property with numpy.linalg ($\det$, $A A^{-1} = I$, the rank, $A v = \lambda v$)",
    "roots": "each root by substituting it back, and a polynomial's roots counted against numpy.roots",
    "system": "each solution of a linear system by substituting it back",
    "integral": "each integral by numeric quadrature (mpmath), each antiderivative by differentiating it numerically",
}


@dataclass(frozen=True, slots=True)
class RenderedPart:
    """One part as LaTeX: the prompt the student sees and everything the key adds."""

    id: str
    points: float | None
    prompt: str
    answer: str
    index_form: str
    vectorized: str
    check: str = FINITE_DIFFERENCES  # how the answer was checked: FINITE_DIFFERENCES (a Jacobian) or VALUE_CHECK
    rounded: bool = False  # answered to some decimals or significant digits
    options: str = ""  # a choice part: its lettered options with boxes to tick (the sheet)
    marked: str = ""  # a choice part: the same options, the correct ones' boxes ticked (the key)
    space: str = ""  # the answer space on the student sheet, as LaTeX (`answer_space`)


@dataclass(frozen=True, slots=True)
class RenderedQuestion:
    """One question as LaTeX, shared by the sheet and the key (rendered once)."""

    id: str
    title: str
    points: float | None
    path: str
    variant: str
    stem: str
    parts: tuple[RenderedPart, ...]
    solution: str


def _display(value: Any, names: Sequence[str] = DEFAULT_INDEX_NAMES) -> str:
    """A value as a display block that shrinks to the line width when it is too wide."""
    return _display_math(latex_value(value, names))


def _display_math(tex: str) -> str:
    return "\\begin{center}\\shrinktowidth{$\\displaystyle " + tex + "$}\\end{center}"


def _inline_math(tex: str) -> str:
    # Inline, so TeX may break a long index form after one of its = signs.
    return "$\\displaystyle " + tex + "$"


def _answer_block(answer: PartAnswer, exact: str) -> str:
    """The default answer: a sentence on the layout (matrices, tensors), then the exact value.

    Tensor blocks are labelled with the index names of the part's index form (one d x k block
    per (n, j) for d u_nj / d w_il), so the numbers read like the general form above them.
    Closed forms (anything not rational) are followed by decimals, for reading at a glance.
    `exact` is the part's `latex_answer`.
    """
    value, form = answer.value, answer.index_form
    # (a formula has no decimals: it is shown as it is)
    closed = any(not sympified(v).is_Rational and not sympified(v).free_symbols for v in value.flat)
    if value.ndim == 0:
        return _inline_math(exact + (rf" \approx {latex_approx(value)}" if closed else ""))
    sentence = layout_sentence(form, value.shape) + "\n" if form and value.ndim >= 2 else ""
    if not closed or value.ndim > 2:
        return sentence + _display_math(exact)
    if value.ndim == 1:
        return sentence + _display_math(rf"{exact} \approx {latex_approx(value)}")
    return sentence + _display_math(exact) + _display_math(rf"\approx {latex_approx(value)}")


def _rounded_block(answer: PartAnswer, exact: str) -> str:
    """The answer of a part answered in decimals or significant digits: the rounded value, what
    is accepted, and the exact form where it is readable (or where the part asks for it)."""
    rule, value, form = answer.spec.rule, answer.value, answer.index_form
    assert rule.digits is not None
    shown = (latex_decimals if rule.kind == "decimals" else latex_sigfigs)(value, rule.digits)
    with_exact = rule.show_exact if rule.show_exact is not None else readable(value)
    if value.ndim == 0:
        text = f"{_inline_math(shown)} ({rule_tex(rule)})"
        return text + (f"; exactly {_inline_math(exact)}" if with_exact else "")
    sentence = layout_sentence(form, value.shape) + "\n" if form and value.ndim >= 2 else ""
    text = sentence + _display_math(shown) + f"Each entry {rule_tex(rule)}."
    return text + ("\nExactly:\n" + _display_math(exact) if with_exact else "")


def _number(value: Any) -> str:
    """Points and other plain numbers without a trailing `.0`: 6.0 -> 6, 2.5 -> 2.5."""
    return f"{value:g}"


def make_environment(user_templates: str | Path | None = None) -> SandboxedEnvironment:
    """The sandboxed Jinja environment with LaTeX-friendly delimiters and our filters."""
    env = SpecSandbox(
        loader=jinja2.FileSystemLoader(template_paths(user_templates)),
        undefined=jinja2.StrictUndefined,
        autoescape=False,
        **SYNTAX,
    )
    env.filters.update(
        latex=latex_value,
        scalar=latex_scalar,
        matrix=latex_matrix,
        display=_display,
        approx=latex_approx,
        decimals=latex_decimals,
        sigfigs=latex_sigfigs,
        formula=latex_formula,
        term=latex_term,
        tex=escape_text,
        num=_number,
    )
    return env


def _locate(tb: TracebackType | None, filename: str) -> int | None:
    line = None
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == filename:
            line = tb.tb_lineno
        tb = tb.tb_next
    return line


_templates: weakref.WeakKeyDictionary[SandboxedEnvironment, dict[tuple[str, str], jinja2.Template]] = (
    weakref.WeakKeyDictionary()
)


def _compiled(env: SandboxedEnvironment, source: str, filename: str) -> jinja2.Template:
    """A spec template compiled once per environment (a class set renders it for every variant)."""
    cache = _templates.setdefault(env, {})
    key = (source, filename)
    if key not in cache:
        code = env.compile(source, name=filename, filename=filename)
        cache[key] = env.template_class.from_code(env, code, env.make_globals(None), None)
    return cache[key]


def render_text(env: SandboxedEnvironment, text: TemplateText, context: dict[str, Any], owner: str) -> str:
    """Render one template from a spec; errors name the spec file, the line and the problem."""
    filename = f"<{owner}:{text.key}>"

    def where(line: int | None) -> str:
        if line is None or text.where.line is None:
            return str(text.where)
        return f"{text.where.file}:{text.where.line + line - 1}"

    try:
        rendered = _compiled(env, text.source, filename).render(context)
    except jinja2.TemplateSyntaxError as e:
        raise RenderError(f"{where(e.lineno)}: {text.key}: template syntax: {e.message}") from None
    except jinja2.UndefinedError as e:
        line = _locate(sys.exc_info()[2], filename)
        lines = text.source.splitlines()
        line_text = lines[line - 1] if line is not None and 0 < line <= len(lines) else ""
        message = _undefined_message(e.message or "", line_text, context)
        raise RenderError(f"{where(line)}: {text.key}: undefined template variable: {message}") from None
    except jinja2.exceptions.SecurityError as e:
        line = getattr(e, "template_line", None) or _locate(sys.exc_info()[2], filename)
        raise RenderError(f"{where(line)}: {text.key}: not allowed in a template: {e}") from None
    except MemoryError:
        # (the sandbox's limits should refuse first; this is the last line of defence)
        line = _locate(sys.exc_info()[2], filename)
        raise RenderError(f"{where(line)}: {text.key}: the template needs more memory than there is") from None
    except ValueError as e:
        line = _locate(sys.exc_info()[2], filename)
        if "truth value of an array" in str(e):
            raise RenderError(f"{where(line)}: {text.key}: a vector or matrix is not true or false as a whole; "
                              "test one entry (x[0] > 0) or every entry with a define such as all(x > 0)") from None
        raise RenderError(f"{where(line)}: {text.key}: ValueError: {e}") from None
    except (TypeError, ArithmeticError, RecursionError, jinja2.TemplateError) as e:
        line = _locate(sys.exc_info()[2], filename)
        raise RenderError(f"{where(line)}: {text.key}: {type(e).__name__}: {e}") from None
    # A command the spec could not be refused for, because the template puts it together.
    for _, command in forbidden_commands(rendered, text.where):
        raise RenderError(f"{text.where}: {text.key}: as rendered, {refusal(command)}")
    return rendered


def question_context(solution: Solution, used: frozenset[str] | None = None) -> dict[str, Any]:
    """What a question's templates can use: dimensions, parameters, derived and defined values.

    `used`, when given, holds the names the question's templates mention: derived and defined
    values are put in their exact display shape (which costs SymPy time) only if one of the
    templates shows them; the others would never be read.
    """
    instance = solution.instance

    # (read only what is shown: values are lazy)
    def shown(values: Mapping[str, Any], tidy: Callable[[Any], Any]) -> dict[str, Any]:
        return {name: plain_value(tidy(values[name])) for name in values if used is None or name in used}

    return {
        **instance.dims,
        **{name: plain_value(value) for name, value in instance.params.items()},
        # Derived and defined values in the same exact shape as answers (they appear in worked steps);
        # solve makes the derived ones in that shape.
        **shown(solution.derived, lambda value: value),
        **shown(solution.values, tidy_array),
        "variant": instance.variant,
        "question": {"id": instance.question.id, "title": instance.question.title},
    }


def plain_value(value: Any) -> Any:
    """What a template sees of a value: a scalar as a plain number (an int where integer, else the
    SymPy number), so that it indexes lists and compares as a number; arrays as they are."""
    if isinstance(value, np.ndarray) and value.ndim == 0:
        value = value[()]
        return int(value) if isinstance(value, sympy.Integer) else value
    return value


def describe_value(value: Any) -> str:
    """What a template value is, in words: a scalar, a vector of 3, a 3x4 matrix, a list of 2, text."""
    if isinstance(value, np.ndarray):
        shape = value.shape
        if not shape:
            return "a scalar"
        if len(shape) == 1:
            return f"a vector of {shape[0]}"
        return f"a {'x'.join(map(str, shape))} {'matrix' if len(shape) == 2 else 'array'}"
    if isinstance(value, (int, float, sympy.Basic)) and not isinstance(value, bool):
        return "a scalar"
    if isinstance(value, str):
        return "text"
    if isinstance(value, (list, tuple)):
        return f"a list of {len(value)}"
    if isinstance(value, dict):
        return "a mapping of " + ", ".join(map(str, value)) if value else "an empty mapping"
    return "a " + type(value).__name__


_NUMPY_WORDS = ((r"numpy\.ndarray object", "an array"), (r"sympy\.core\.[a-z.]+\.\w+ object", "a number"),
                (r"\b(int|float) object", "a number"), (r"array\((-?[\w/.]+), dtype=\w+\)", r"\1"))


def _undefined_message(message: str, line_text: str, context: Mapping[str, Any]) -> str:
    """Jinja's message for a missing name, element or attribute, with the variable named and what it
    holds (`W is a 3x4 matrix: it has no attribute 'foo'`) instead of Python's and numpy's type names."""
    import re

    match = re.search(r"has no (element|attribute) (.+)$", message)
    if match:
        what = match.group(2).strip("'")
        for name in re.findall(r"[A-Za-z_][A-Za-z0-9_]*", line_text):
            if name in context and re.search(rf"\b{re.escape(name)}\s*(\.\s*{re.escape(what)}|\[)", line_text):
                kind = "element" if match.group(1) == "element" else "attribute"
                return f"{name} is {describe_value(context[name])}: it has no {kind} {what}"
    for pattern, words in _NUMPY_WORDS:
        message = re.sub(pattern, words, message)
    return message


_names: weakref.WeakKeyDictionary[SandboxedEnvironment, dict[QuestionSpec, frozenset[str] | None]] = (
    weakref.WeakKeyDictionary()
)


def template_names(env: SandboxedEnvironment, question: QuestionSpec) -> frozenset[str] | None:
    """Every name the question's templates read (None if one does not parse: rendering says why).

    Jinja resolves names statically, so a name not found here is never looked up.
    """
    cache = _names.setdefault(env, {})
    if question not in cache:
        texts = [question.stem, question.solution]
        for part in question.parts:
            texts += [part.prompt, part.answer, part.vectorized.latex if part.vectorized else None]
        try:
            names = set().union(*(jinja2.meta.find_undeclared_variables(env.parse(t.source)) for t in texts if t))
            cache[question] = frozenset(names)
        except jinja2.TemplateSyntaxError:
            cache[question] = None
    return cache[question]


def _render_part(
    env: SandboxedEnvironment, question: QuestionSpec, answer: PartAnswer, exact: str, context: dict[str, Any],
    owner: str,
) -> RenderedPart:
    part = answer.spec
    if answer.choice is not None:
        return _render_choice(env, answer, exact, context, owner)
    block = _rounded_block(answer, exact) if part.rule.rounded else _answer_block(answer, exact)
    local = {**context, "answer": plain_value(answer.value), "answer_block": block, "part": {"id": part.id}}
    prompt = render_text(env, part.prompt, local, owner)
    shown = render_text(env, part.answer, local, owner) if part.answer else block
    vectorized = render_text(env, part.vectorized.latex, local, owner) if part.vectorized else ""
    form = answer.index_form
    index_form = _inline_math(latex_index_form(form)) if form else ""
    check = _check_kind(answer)
    return RenderedPart(part.id, part.points, prompt, shown, index_form, vectorized, check, part.rule.rounded,
                        space=answer_space(question, part))


# Default answer spaces, in lines of text (\baselineskip, so that large print makes them larger):
# a row of a matrix takes 1.6 lines; two more lines are for the general index form.
_ROW_LINES = 1.6
_FORM_LINES = 2
_MAX_LINES = 16  # a box taller than this would not fit on a page beside its question's stem
_NO_SHAPE_LINES = 8  # when the answer's largest shape cannot be worked out


def answer_space(question: QuestionSpec, part: PartSpec) -> str:
    """The LaTeX of a part's answer space on the student sheet (templates/preamble.tex.j2).

    As the part's `space:` asks, else sized to the answer's shape: a scalar gets a ruled line
    (and one for the index form, if the part asks for one), a vector, matrix or tensor a box
    that fits it. The size comes from the question's largest dimensions, not from a variant's,
    so that every variant of the question leaves the same space and page breaks do not move
    between copies.
    """
    space = part.space
    if space is not None and space.size is not None:
        if space.kind == "lines":
            return f"\\answerlines{{{space.size}}}"
        return f"\\answer{space.kind}{{{space.size}}}"
    shape = _largest_shape(question, part.id)
    if space is None and shape == ():  # a scalar a line (a formula two), and one for an index form
        count = 1 + _is_formula(question, part.id) + (part.index_form is not None)
        return f"\\answerlines{{{count}}}"
    lines = _lines_for(shape)
    kind = space.kind if space is not None else "box"
    if kind == "lines":
        return f"\\answerlines{{{max(1, round(lines / 1.8))}}}"
    return f"\\answer{kind}{{{_number(lines)}\\baselineskip}}"


def _lines_for(shape: tuple[int, ...] | None) -> float:
    """Lines of text an answer of this shape takes written out (as `latex_value` lays it out)."""
    if shape is None:
        return _NO_SHAPE_LINES
    if len(shape) == 0:
        rows = 1
    elif len(shape) <= 2:
        rows = shape[0]
    elif len(shape) == 3:  # blocks of matrices side by side, as latex_tensor puts them
        per_row = max(1, min(shape[0], 24 // (shape[-1] * 2 + 2) or 1))
        rows = math.ceil(shape[0] / per_row) * (shape[1] + 1)
    else:  # a row of blocks for each first index
        rows = shape[0] * (shape[2] + 1)
    return min(_MAX_LINES, round(rows * _ROW_LINES + _FORM_LINES + 1))


@functools.lru_cache(maxsize=256)
def _largest_shape(question: QuestionSpec, part_id: str) -> tuple[int, ...] | None:
    """The shape of a part's answer at the question's largest dimensions (None if it cannot be told).

    The definitions are evaluated in floats at placeholder parameter and symbol values: only the
    shapes matter, and an answer's shape grows with its dimensions. A determinant, a rank, a
    definite integral and the roots take a line; an inverse, eigenvalues and eigenvectors, and a
    system's solution the shape they have.
    """
    part = next(p for p in question.parts if p.id == part_id)
    try:
        env, shapes = _placeholders(question, 0.4375)
        kind = part.kind
        if kind in {"roots", "integral"}:
            return ()
        of = tuple(np.shape(env[part.of]))
        if kind == "linalg":
            return {"determinant": (), "rank": (), "eigenvalues": of[:1]}.get(part.find or "", of)
        if kind == "system":
            return tuple(np.shape(env[part.rhs])) if part.rhs in env else of[:1]
        if part.wrt is None or part.wrt in question.symbols:  # f'(x) has f's shape
            return of
        return of + shapes[part.wrt]
    except Exception:  # noqa: BLE001 (a placeholder value a definition rejects, a wrt that is no parameter: the default)
        return None


@functools.lru_cache(maxsize=256)
def _is_formula(question: QuestionSpec, part_id: str) -> bool:
    """Whether a part's answer is a formula in the question's symbols, told from the spec alone (so
    the same for every variant): an antiderivative, a derivative by a symbol, or an answer whose
    value moves when the symbols do."""
    part = next(p for p in question.parts if p.id == part_id)
    if not question.symbols or part.kind in ("choice", "roots", "linalg", "system"):
        return False
    if part.kind == "integral":
        return not part.limits
    if any(w.text in question.symbols for w in part.derivative) or part.wrt in question.symbols:
        return True
    if part.kind != "value":  # a derivative by a parameter is a value
        return False
    try:
        low, high = (_placeholders(question, at)[0][part.of] for at in (0.4375, 0.8125))
        return bool(np.any(np.asarray(low) != np.asarray(high)))
    except Exception:  # noqa: BLE001 (cannot be told: not a formula, the answer's shape decides)
        return False


def _placeholders(question: QuestionSpec, symbol: float) -> tuple[dict[str, Any], dict[str, tuple[int, ...]]]:
    """The question's definitions evaluated in floats at its largest dimensions, every symbol at
    `symbol` and every parameter at seeded random values (a constant matrix would be singular,
    and inv, solve or det of it would fail); and each parameter's shape."""
    dims = {name: high for name, _, high in question.dimensions}
    env: dict[str, Any] = {name: np.asarray(float(size)) for name, size in dims.items()}
    env.update({name: np.asarray(symbol) for name in question.symbols})
    shapes = {p.name: tuple(dims[d] if isinstance(d, str) else d for d in p.shape) for p in question.parameters}
    rng = np.random.default_rng(0)
    env.update({name: 0.25 + rng.random(shape) for name, shape in shapes.items()})
    with np.errstate(all="ignore"):  # only shapes matter: a placeholder's overflow or 0/0 is no error
        for name, expr in (*question.derived, *question.define):
            env[name] = evaluate(expr, env, NUMERIC)
    return env, shapes


def _choice_list(answer: PartAnswer, marked: bool) -> str:
    """The lettered options, one a line, each with a box (ticked in the key where it is correct)."""
    assert answer.choice is not None
    lines = []
    for option in answer.choice.options:
        box = r"$\boxtimes$" if marked and option.correct else r"$\square$"
        lines.append(rf"\par\noindent\hspace*{{1em}}{box}~({option.letter})~{choice_option_latex(option)}")
    return "\n".join(lines)


def _render_choice(
    env: SandboxedEnvironment, answer: PartAnswer, letters: str, context: dict[str, Any], owner: str
) -> RenderedPart:
    """A choice part: the prompt, the options to tick (sheet) and the same with the correct ones
    ticked (key); its answer is the correct letters (`letters`, its `latex_answer`)."""
    part = answer.spec
    local = {**context, "part": {"id": part.id}}
    prompt = render_text(env, part.prompt, local, owner)
    check = FINITE_DIFFERENCES if part.wrt is not None else VALUE_CHECK
    return RenderedPart(part.id, part.points, prompt, letters, "", "", check, False,
                        options=_choice_list(answer, False), marked=_choice_list(answer, True))


def _check_kind(answer: PartAnswer) -> str:
    """Which of the key's check sentences covers this part."""
    kind = answer.spec.kind
    if kind in ("jacobian", "derivative"):
        return FINITE_DIFFERENCES
    if kind in KIND_CHECKS:
        return kind
    if any(sympified(v).free_symbols for v in answer.value.flat):
        return "formula"
    return VALUE_CHECK


def render_question(
    env: SandboxedEnvironment, solution: Solution, extras: dict[str, Any] | None = None,
    latex: Sequence[str] | None = None,
) -> RenderedQuestion:
    """Render a solved question's stem, parts and solution (once, for sheet and key alike).

    `latex` holds each part's `latex_answer` when the caller has it already (a build puts the
    same text in manifest.json and answers.csv)."""
    question: QuestionSpec = solution.instance.question
    latex = latex if latex is not None else [latex_answer(answer) for answer in solution.parts]
    context = {**bank_macros(env, question.path), **question_context(solution, template_names(env, question))}
    if extras:
        context.update(extras)
    owner = question.id
    parts = tuple(
        _render_part(env, question, answer, exact, context, owner)
        for answer, exact in zip(solution.parts, latex, strict=True)
    )
    return RenderedQuestion(
        id=question.id,
        title=question.title,
        points=question.points,
        path=question.path,
        variant=solution.instance.variant,
        stem=render_text(env, question.stem, context, owner),
        parts=parts,
        solution=render_text(env, question.solution, context, owner) if question.solution else "",
    )


_macros: weakref.WeakKeyDictionary[SandboxedEnvironment, dict[str, dict[str, Any]]] = weakref.WeakKeyDictionary()


def macros_path(question_path: str | Path) -> Path | None:
    """The bank's macro file for a question file in a bank's `questions/` folder, if there is one."""
    path = Path(question_path)
    if path.parent.name != "questions":
        return None
    file = path.parent.parent / MACROS_FILE
    return file if file.is_file() else None


def bank_macros(env: SandboxedEnvironment, question_path: str | Path) -> dict[str, Any]:
    """The macros of the question's bank (`macros.tex.j2` beside `questions/`), by name; none without the file.

    Raises:
        RenderError: the macro file does not parse or fails (its file and line).
    """
    file = macros_path(question_path)
    if file is None:
        return {}
    cache = _macros.setdefault(env, {})
    key = str(file)
    if key not in cache:
        shown = str(file)
        try:
            template = _compiled(env, file.read_text(encoding="utf-8"), shown)
            module = template.make_module({})
        except jinja2.TemplateSyntaxError as e:
            raise RenderError(f"{shown}:{e.lineno}: template syntax: {e.message}") from None
        except (jinja2.TemplateError, TypeError, ValueError) as e:
            raise RenderError(f"{shown}: {type(e).__name__}: {e}") from None
        cache[key] = {name: value for name, value in vars(module).items() if not name.startswith("_")}
    return cache[key]


def with_points(question: RenderedQuestion, points: float | None) -> RenderedQuestion:
    """The same rendered question with the points an exam gives it.

    Its parts' points are scaled to add up to the new total when they stay in quarter points
    (5 points over parts of 2 and 2: 2.5 each); otherwise the parts show no points of their own.
    """
    if points == question.points:
        return question
    old = sum(part.points or 0 for part in question.parts)
    scaled = [None if points is None or not old or part.points is None else part.points * points / old
              for part in question.parts]
    if any(p is not None and (p * 4) % 1 > 1e-9 for p in scaled):
        scaled = [None] * len(scaled)
    parts = tuple(replace(part, points=p) for part, p in zip(question.parts, scaled, strict=True))
    return replace(question, points=points, parts=parts)


@dataclass(frozen=True, slots=True)
class CopyMark:
    """How the pages of a copy name it: `label` (the student's id, else the variant letter) and
    `key`, the hex of "document|label" (UTF-8) that each page's QR code encodes with "|page" added
    (generator.typeset.qr)."""

    label: str
    key: str


def copy_mark(document: str, variant: str, student: Student | None) -> CopyMark:
    """The copy id and QR key of one copy of a document."""
    label = student.id if student is not None else variant
    return CopyMark(label, f"{document}|{label}".encode().hex())


def render_document(
    env: SandboxedEnvironment,
    kind: str,
    worksheet: WorksheetSpec | ExamSpec,
    questions: Iterable[RenderedQuestion],
    *,
    seed: int,
    variant: str,
    student: Student | None = None,
    template: str | None = None,
    extra: dict[str, Any] | None = None,
    printing: PrintSettings | None = None,
) -> str:
    """Render one document of one variant: `templates/<kind>.tex.j2` unless `template` names another.

    `kind` is one of `DOCUMENT_KINDS`; exams use `exam-<kind>.tex.j2`. `student` (name, id) is
    printed in the header when given. Templates see `worksheet` (the worksheet or exam spec),
    `questions`, `total` (their points added up), `seed`, `variant`, `student`, `kind`, and `cjk`
    (true when the text needs the CJK package; see `latex.escape_text`), `copy` (`CopyMark`: the
    copy id and QR key), and `paper`, `font_size`, `document_class`, `line_spread` from `printing`
    (`PrintSettings`; default A4, 11 pt). `extra` adds names to the context (e.g. the seeds of a
    preview document).
    """
    name = template or f"{kind}.tex.j2"
    questions = list(questions)
    context = dict(
        **(extra or {}),
        worksheet=worksheet,
        questions=questions,
        total=sum(q.points or 0 for q in questions),
        seed=seed,
        variant=variant,
        student=student,
        kind=kind,
        shape_convention=SHAPE_CONVENTION,
        cjk=False,
        **key_facts(questions),
        copy=copy_mark(worksheet.id, variant, student),
        **(printing or PrintSettings()).context(),
    )
    try:
        document = env.get_template(name)
        text = document.render(context)
        if "\\begin{CJK}" in text:
            text = document.render({**context, "cjk": True})
        return text
    except jinja2.TemplateNotFound:
        raise RenderError(f"document template '{name}' not found in {env.loader.searchpath}") from None  # type: ignore[union-attr]
    except jinja2.TemplateSyntaxError as e:
        raise RenderError(f"{e.filename or name}:{e.lineno}: template syntax: {e.message}") from None
    except jinja2.UndefinedError as e:
        file, line = _document_line(sys.exc_info()[2], name)
        raise RenderError(f"{file}:{line}: undefined template variable: {e.message}") from None
    except jinja2.exceptions.SecurityError as e:
        file, line = _document_line(sys.exc_info()[2], name)
        line = getattr(e, "template_line", None) or line
        raise RenderError(f"{file}:{line}: not allowed in a template: {e}") from None
    except MemoryError:
        file, line = _document_line(sys.exc_info()[2], name)
        raise RenderError(f"{file}:{line}: the template needs more memory than there is") from None
    except (TypeError, ValueError, ArithmeticError, RecursionError, jinja2.TemplateError) as e:
        file, line = _document_line(sys.exc_info()[2], name)
        raise RenderError(f"{file}:{line}: {type(e).__name__}: {e}") from None


def key_facts(questions: Sequence[RenderedQuestion]) -> dict[str, Any]:
    """What a key's opening paragraph may say of these questions, and only that: `jacobians` (some
    part asks for a derivative: the shape convention applies), `index_forms` (some part shows one),
    and `checks`, the sentence on how the answers were checked."""
    parts = [part for question in questions for part in question.parts]
    kinds = {part.check for part in parts}
    if kinds <= {FINITE_DIFFERENCES}:
        checks = "Every answer below was computed exactly with SymPy and checked against central finite differences."
    elif kinds == {VALUE_CHECK}:
        checks = ("Every answer below was computed exactly with SymPy and checked by evaluating its definition again "
                  "in floating point with numpy.")
    elif kinds <= {FINITE_DIFFERENCES, VALUE_CHECK}:
        checks = ("Every answer below was computed exactly with SymPy; each derivative was checked against central "
                  "finite differences, each value by evaluating its definition again in floating point with numpy.")
    else:
        said = {FINITE_DIFFERENCES: "each derivative against central finite differences",
                VALUE_CHECK: "each value by evaluating its definition again in floating point with numpy",
                **KIND_CHECKS}
        order = [FINITE_DIFFERENCES, VALUE_CHECK, *KIND_CHECKS]
        checks = ("Every answer below was computed exactly with SymPy and checked independently: "
                  + "; ".join(said[kind] for kind in order if kind in kinds) + ".")
    if any(part.rounded for part in parts):
        checks += " Rounded answers are rounded from the exact value, halves away from zero."
    if any(part.options for part in parts):
        checks += (" Each multiple-choice option was evaluated again in floating point with numpy, and the correct "
                   "letters worked out again from those numbers.")
    return {"jacobians": FINITE_DIFFERENCES in kinds, "index_forms": any(part.index_form for part in parts),
            "checks": checks}


def _document_line(tb: TracebackType | None, name: str) -> tuple[str, int | None]:
    """The innermost document-template frame of a traceback: (file, line)."""
    line, file = None, name
    while tb is not None:
        if tb.tb_frame.f_code.co_filename.endswith(".tex.j2"):
            line, file = tb.tb_lineno, tb.tb_frame.f_code.co_filename
        tb = tb.tb_next
    return file, line

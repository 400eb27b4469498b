"""`check`: everything a question author needs to know about a spec, in one run, short of a build.

For each question file: validate it (JSON Schema, then names and expressions), then draw
`seeds` variants (seeds 0 .. K-1, variant A) and sample, solve, verify and render each one.
Across the draws it then looks for problems that no single draw shows:

- constraints that cannot be met, or that reject so many draws that some build will fail;
- answers that fail verification, and templates that fail to render (with the seeds affected);
- variants that repeat: two seeds drawing the same numbers although the ranges allow many more
  draws (likely because constraints leave few choices); a parameter space that simply has fewer
  draws than seeds is expected to repeat and only gets a note;
- degenerate variants: a part whose answer is 0 in every entry;
- numbers too large to work with by hand (see `LARGE_NUMBER`);

and finally compiles each question on its own (every draw, as on the sheet and in the key) when
TeX is installed. Worksheets are validated and their question ids looked up.

Every problem is one line starting with `file:line[:col]: `; the report lists them all.
"""

from __future__ import annotations

import math
import os
import re
import tempfile
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from itertools import product
from pathlib import Path
from typing import Any

import numpy as np
import sympy

from generator.answers.rounding import READABLE_NUMBER
from generator.answers.sampling import MAX_TRIES, Instance, sample
from generator.answers.solve import Solution, solve
from generator.answers.verify import verify
from generator.commands.preview import looks_like_worksheet, render_preview_document
from generator.errors import (
    CompileError,
    GeneratorError,
    Location,
    SamplingError,
    SpecError,
    display_path,
)
from generator.render.documents import (
    RenderedQuestion,
    make_environment,
    render_question,
)
from generator.spec.assemble import variant_label
from generator.spec.expr import inputs_of
from generator.spec.model import (
    ExamSpec,
    ParameterSpec,
    QuestionSpec,
    WorksheetSpec,
    entry_values,
    load_exam,
    load_question,
    load_worksheet,
    stray_files,
    unknown_question,
)
from generator.spec.yamlload import load_yaml
from generator.typeset.compile import INSTALL_COMMAND, announced, compile_pdf, tex_available

__all__ = ["CheckOptions", "CheckReport", "check", "summary", "LARGE_NUMBER", "DEFAULT_SEEDS"]

DEFAULT_SEEDS = 20
# A student works with exact fractions by hand; a numerator or denominator beyond this, anywhere
# in a parameter, derived or defined value or answer (also inside closed forms such as
# e^{x} / (1 + e^{x})), makes the exercise about arithmetic instead of derivatives. Parts answered
# in decimals, and values drawn in decimal steps, are worked in decimals and not held to it
# (`_by_hand`). The key shows an exact form beside a rounded answer under the same bound.
LARGE_NUMBER = READABLE_NUMBER
# Constraints that need more draws than this on average make a failed build (after MAX_TRIES
# draws) a real possibility for some seed.
MANY_DRAWS = MAX_TRIES // 10
# A choice part whose options coincide (and the variant is drawn again) in more than this share
# of the draws, and in 3 draws at least (fewer say little), is reported: its distractors are often
# the answer in disguise.
OFTEN_REDRAWN = 0.2
# A repeat is reported when the ranges alone make it this unlikely (a Poisson estimate of the
# chance that K uniform draws over the parameter space collide that often).
REPEAT_P_VALUE = 1e-3
_MAX_DIMENSION_COMBINATIONS = 10_000


@dataclass(frozen=True, slots=True)
class CheckOptions:
    """What `python -m generator check` was asked to do."""

    paths: tuple[Path, ...] = ()
    bank: Path = Path("question_bank")
    seeds: int = DEFAULT_SEEDS
    compile: bool = True
    templates: Path | None = None


@dataclass(frozen=True, slots=True)
class CheckReport:
    """Every problem found (one line each, `file:line[:col]: ...`), and notes that are not problems."""

    problems: tuple[str, ...]
    notes: tuple[str, ...]
    questions: int
    worksheets: int
    compiled: int
    exams: int = 0

    @property
    def ok(self) -> bool:
        return not self.problems


@dataclass(frozen=True, slots=True)
class _Draw:
    seed: int
    instance: Instance
    solution: Solution
    rendered: RenderedQuestion


@dataclass(slots=True)
class _Findings:
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def check(options: CheckOptions) -> CheckReport:
    """Check question and worksheet files (default: the whole bank); see the module docstring.

    Raises:
        SpecError: the bank folder (when no paths are given) does not exist.
    """
    if options.seeds < 1:
        raise GeneratorError(f"--seeds: expected a number >= 1, got {options.seeds}")
    found = _Findings()
    files = _collect(options, found)
    env = make_environment(options.templates)

    questions: dict[str, QuestionSpec] = {}
    to_compile: list[tuple[QuestionSpec, list[_Draw]]] = []
    worksheet_files: list[Path] = []
    exam_files: list[Path] = []
    for path, kind in files:
        if kind in ("worksheet", "exam"):
            (worksheet_files if kind == "worksheet" else exam_files).append(path)
            continue
        try:
            question = load_question(path)
        except SpecError as e:
            found.problems.extend(e.problems)
            continue
        if question.id in questions:
            where = _key_location(path, ("id",))
            found.problems.append(f"{where}: id: '{question.id}' is also the id of {questions[question.id].path}")
        questions[question.id] = question
        draws = _check_draws(question, options.seeds, env, found)
        if draws:
            to_compile.append((question, draws))

    worksheets = [w for w in (_check_worksheet(path, questions, found) for path in worksheet_files) if w]
    exams = [x for x in (_check_exam(path, questions, found) for path in exam_files) if x]

    compiled = 0
    if options.compile and to_compile:
        if tex_available():
            compiled = _compile_all(env, to_compile, found)
        else:
            found.notes.append(
                f"no TeX engine (pdflatex) on PATH, so questions were not compiled. Install TeX with: {INSTALL_COMMAND}"
            )
    return CheckReport(tuple(found.problems), tuple(found.notes), len(questions), len(worksheets), compiled, len(exams))


# --- which files ------------------------------------------------------------------------------


def _collect(options: CheckOptions, found: _Findings) -> list[tuple[Path, str]]:
    if not options.paths:
        bank = options.bank
        if not bank.is_dir():
            raise SpecError(f"{display_path(bank)}: bank folder not found (give --bank or the files to check)")
        found.notes.extend(stray_files(bank))
        files = [(p, "question") for p in sorted((bank / "questions").glob("*.y*ml"))]
        files += [(p, "worksheet") for p in sorted((bank / "worksheets").glob("*.y*ml"))]
        return files + [(p, "exam") for p in sorted((bank / "exams").glob("*.y*ml"))]
    files = []
    for path in options.paths:
        if path.is_dir():
            files.extend((p, _kind(p)) for p in sorted(path.rglob("*.y*ml")) if not _hidden(p.relative_to(path)))
        elif path.is_file():
            files.append((path, _kind(path)))
        else:
            found.problems.append(f"{display_path(path)}: no such file or folder")
    return list(dict.fromkeys(files))


def _hidden(relative: Path) -> bool:
    return any(part.startswith(".") for part in relative.parts)


def _kind(path: Path) -> str:
    """`question`, `worksheet` or `exam`: by folder name in a bank, else by content."""
    if path.parent.name in ("questions", "worksheets", "exams"):
        return path.parent.name[:-1]
    try:
        data, _ = load_yaml(path)
    except GeneratorError:
        return "question"  # loading it as a question reports the problem
    if not looks_like_worksheet(data):
        return "question"
    return "exam" if _looks_like_exam(data) else "worksheet"


def _looks_like_exam(data: dict[str, Any]) -> bool:
    """An exam's own keys (a cover page, points, questions drawn by tag), none of which a worksheet has."""
    listed = data.get("questions")
    entries = listed if isinstance(listed, list) else []
    return bool({"date", "duration", "shuffle", "total"} & set(data)) or any(
        isinstance(e, dict) and ({"tag", "points", "count"} & set(e)) for e in entries)


def _key_location(path: Path, key: tuple[str | int, ...]) -> Location:
    try:
        _, positions = load_yaml(path)
    except GeneratorError:
        return Location(display_path(path), 1, 1)
    return positions.at(key)


# --- one question, many draws ------------------------------------------------------------------


def _check_draws(question: QuestionSpec, seeds: int, env: Any, found: _Findings) -> list[_Draw]:
    failures: dict[str, tuple[str, list[int]]] = {}
    draws: list[_Draw] = []
    for seed in range(seeds):
        try:
            instance = sample(question, seed, 0)
        except GeneratorError as e:
            _record(failures, e, seed)
            if isinstance(e, SamplingError):
                break  # constraints that cannot be met fail every seed the same way, 1000 draws each
            continue
        try:
            # Overflow in the float check (e.g. exp(700)) is judged by verify, not printed by numpy.
            with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
                solution = solve(instance)
                verify(solution)
                for name in instance.derived:  # every derived value, as a template could show it
                    solution.derived[name]
            rendered = render_question(env, solution)
        except GeneratorError as e:
            _record(failures, e, seed)
            continue
        draws.append(_Draw(seed, instance, solution, rendered))
    for message, failed in failures.values():
        said = len(failed) == 1 and f"seed {failed[0]}" in message
        found.problems.append(message + ("" if said else _seeds_suffix(failed, seeds) or f" [seed {failed[0]}]"))
    if draws:
        _check_tries(question, draws, found)
        _check_repeats(question, draws, found)
        _check_degenerate(question, draws, found)
        _check_large(question, draws, found)
        _check_choice_redraws(question, draws, found)
    return draws


def _record(failures: dict[str, tuple[str, list[int]]], error: GeneratorError, seed: int) -> None:
    # The same mistake shows up with different numbers at each seed; group by the words.
    key = type(error).__name__ + re.sub(r"-?\d+(\.\d+)?(e[-+]?\d+)?", "#", str(error))
    failures.setdefault(key, (str(error), []))[1].append(seed)


def _seeds_suffix(failed: list[int], total: int) -> str:
    if len(failed) == 1:
        return "" if total == 1 else f" [seed {failed[0]}]"
    shown = ", ".join(map(str, failed[:8])) + (", ..." if len(failed) > 8 else "")
    return f" [seeds {shown}: {len(failed)} of {total}]"


def _check_tries(question: QuestionSpec, draws: list[_Draw], found: _Findings) -> None:
    mean = sum(d.instance.tries for d in draws) / len(draws)
    if mean > MANY_DRAWS:
        where = question.constraints[0].where if question.constraints else Location(question.path, 1, 1)
        found.problems.append(
            f"{where}: constraints: reject most draws (on average {mean:.0f} draws per variant; a build gives up "
            f"after {MAX_TRIES}), so some seeds will fail; widen the entry ranges or relax the constraints"
        )


def _check_repeats(question: QuestionSpec, draws: list[_Draw], found: _Findings) -> None:
    groups: dict[Any, list[int]] = defaultdict(list)
    for d in draws:
        key = (tuple(sorted(d.instance.dims.items())),
               tuple((name, value.shape, tuple(str(v) for v in value.flat))
                     for name, value in d.instance.params.items()))
        groups[key].append(d.seed)
    distinct, k = len(groups), len(draws)
    if distinct == k:
        return
    size, collision = _space(question)
    forced = max(0, k - size) if size is not None else 0
    repeats = k - distinct
    if size is not None and size < k:
        found.notes.append(f"{question.path}: question '{question.id}' has only {size} different draws of its "
                           f"parameters, so variants repeat")
    if repeats <= forced or _poisson_tail(collision * k * (k - 1) / 2, repeats - forced) >= REPEAT_P_VALUE:
        return
    first = next(seeds_ for seeds_ in groups.values() if len(seeds_) > 1)
    allowed = "more than 10^12" if size is None or size > 10**12 else f"{size}"
    where = question.parameters[0].where
    found.problems.append(
        f"{where}: parameters: seeds {first[0]} and {first[1]} draw the same numbers ({distinct} different draws in "
        f"{k} seeds, although the ranges allow {allowed}); the constraints leave few choices, so students would "
        f"share variants: widen the ranges or relax the constraints"
    )


def _values(param: ParameterSpec) -> int:
    """How many values one entry can take (the same set `sampling` draws from)."""
    return len(entry_values(param))


def _space(question: QuestionSpec) -> tuple[int | None, float]:
    """(number of possible draws ignoring constraints, chance that two draws are equal).

    Dimensions are drawn uniformly, then every entry uniformly, so the collision chance is
    sum over dimension choices of P(dims)^2 / (draws with those dims). None: too many to count.
    """
    ranges = [range(low, high + 1) for _, low, high in question.dimensions]
    combinations = math.prod(len(r) for r in ranges)
    if combinations > _MAX_DIMENSION_COMBINATIONS:
        return None, 0.0
    names = [name for name, _, _ in question.dimensions]
    counts = {p.name: _values(p) for p in question.parameters}
    total, collision = 0, 0.0
    for choice in product(*ranges):
        dims = dict(zip(names, choice, strict=True))
        draws = 1
        for p in question.parameters:
            shape = [dims[s] if isinstance(s, str) else s for s in p.shape]
            draws *= shape[0] if p.onehot else counts[p.name] ** math.prod(shape)
        total += draws
        collision += 1.0 / (combinations * combinations * draws) if draws else 0.0
    return total, collision


def _poisson_tail(mean: float, at_least: int) -> float:
    """P(X >= at_least) for X ~ Poisson(mean)."""
    if at_least <= 0:
        return 1.0
    if mean <= 0:
        return 0.0
    below = sum(math.exp(-mean + i * math.log(mean) - math.lgamma(i + 1)) for i in range(at_least))
    return max(0.0, 1.0 - below) if at_least > 1 else -math.expm1(-mean)


def _check_degenerate(question: QuestionSpec, draws: list[_Draw], found: _Findings) -> None:
    for index, part in enumerate(question.parts):
        zero = [d.seed for d in draws if _all_zero(d.solution.parts[index].value)]
        if zero:
            found.problems.append(
                f"{part.where}: parts[{index}] ({part.id}): every entry of the answer is 0"
                f"{_seeds_suffix(zero, len(draws)) or f' [seed {zero[0]}]'}; a constraint should rule this out"
            )


def _check_choice_redraws(question: QuestionSpec, draws: list[_Draw], found: _Findings) -> None:
    """Report a choice part whose options were equal (so the variant was drawn again) in many draws."""
    for index, part in enumerate(question.parts):
        choice = draws[0].solution.parts[index].choice
        if choice is None:
            continue
        redrawn = [d.seed for d in draws if (c := d.solution.parts[index].choice) is not None and c.redraws]
        if len(redrawn) > OFTEN_REDRAWN * len(draws) and len(redrawn) >= 3:
            found.problems.append(
                f"{part.where}: parts[{index}] ({part.id}): two options were equal, and the variant drawn again, in "
                f"{len(redrawn)} of {len(draws)} draws [seeds {', '.join(map(str, redrawn[:8]))}"
                f"{', ...' if len(redrawn) > 8 else ''}]; choose distractors that differ from the answer more often"
            )


def _all_zero(value: np.ndarray) -> bool:
    return value.size > 0 and all(sympy.sympify(v).is_zero is True for v in value.flat)


def _by_hand(question: QuestionSpec) -> tuple[set[str], set[str]]:
    """(parameters, definitions) a student computes with in exact fractions: not those drawn in
    decimal steps or computed from them (a student works those in decimals), nor definitions that
    only parts answered in decimals or significant digits need."""
    definitions = (*question.derived, *question.define)
    decimal = {p.name for p in question.parameters if p.step is not None and p.step.denominator != 1}
    exact_parts = [part for part in question.parts if not part.rule.rounded]
    rounded_parts = [part for part in question.parts if part.rule.rounded]
    exact_needs = inputs_of(definitions, [n for part in exact_parts for n in (part.of, part.wrt) if n])
    rounded_needs = inputs_of(definitions, [n for part in rounded_parts for n in (part.of, part.wrt) if n])
    names = set()
    for name, _ in definitions:
        if inputs_of(definitions, [name]) & decimal:
            continue
        if name in rounded_needs and name not in exact_needs:
            continue
        names.add(name)
    return {p.name for p in question.parameters} - decimal, names


def _check_large(question: QuestionSpec, draws: list[_Draw], found: _Findings) -> None:
    parameters, definitions = _by_hand(question)
    named: list[tuple[str, Location, Any]] = []
    for p in question.parameters:
        if p.name in parameters:
            named.append((f"parameters.{p.name}", p.where, lambda d, n=p.name: d.instance.params[n]))
    for name, expr in question.derived:
        if name in definitions:
            named.append((f"derived.{name}", expr.where, lambda d, n=name: d.instance.derived[n]))
    for name, expr in question.define:
        if name in definitions:
            named.append((f"define.{name}", expr.where, lambda d, n=name: d.solution.values[n]))
    for i, part in enumerate(question.parts):
        if not part.rule.rounded:  # a rounded answer is worked in decimals, not fractions
            named.append((f"parts[{i}] ({part.id})", part.where, lambda d, i=i: d.solution.parts[i].value))
    for label, where, get in named:
        hits = [(d.seed, hit) for d in draws if (hit := _large_entry(get(d))) is not None]
        if hits:
            seed, (index, number, entry) = hits[0]
            at = f" at {list(index)}" if index else ""
            shown = sympy.sstr(entry)
            shown = shown if len(shown) <= 60 else shown[:57] + "..."
            found.problems.append(
                f"{where}: {label}: a student would compute with {number} (entry{at} = {shown})"
                f"{_seeds_suffix([s for s, _ in hits], len(draws)) or f' [seed {seed}]'}; keep numerators and "
                f"denominators within {LARGE_NUMBER}: narrow the entry ranges or the dimensions"
            )


def _large_entry(value: Any) -> tuple[tuple[int, ...], sympy.Rational, Any] | None:
    array = np.asarray(value, dtype=object)
    for index in np.ndindex(array.shape):
        entry = sympy.sympify(array[index])
        numbers = [entry] if entry.is_Rational else sorted(entry.atoms(sympy.Rational), key=abs, reverse=True)
        for number in numbers:
            if abs(number.p) > LARGE_NUMBER or number.q > LARGE_NUMBER:
                return tuple(int(i) for i in index), number, entry
    return None


# --- worksheets ---------------------------------------------------------------------------------


def _check_worksheet(path: Path, questions: dict[str, QuestionSpec], found: _Findings) -> WorksheetSpec | None:
    try:
        sheet = load_worksheet(path)
    except SpecError as e:
        found.problems.extend(e.problems)
        return None
    known = set(questions) | _ids_in(path.parent.parent / "questions" if path.parent.name == "worksheets" else None)
    _, positions = load_yaml(path)
    for i, qid in enumerate(sheet.questions):
        if qid not in known:
            found.problems.append(unknown_question(positions.at(("questions", i)), i, qid, sorted(known)))
    return sheet


def _check_exam(path: Path, questions: dict[str, QuestionSpec], found: _Findings) -> ExamSpec | None:
    try:
        exam = load_exam(path)
    except SpecError as e:
        found.problems.extend(e.problems)
        return None
    known = set(questions) | _ids_in(path.parent.parent / "questions" if path.parent.name == "exams" else None)
    for i, entry in enumerate(exam.entries):
        if entry.id is not None and entry.id not in known:
            found.problems.append(unknown_question(entry.where, i, entry.id, sorted(known)))
    return exam


def _ids_in(folder: Path | None) -> set[str]:
    """Ids of the question files in a bank folder, read without validating them."""
    ids: set[str] = set()
    for file in sorted(folder.glob("*.y*ml")) if folder and folder.is_dir() else []:
        try:
            data, _ = load_yaml(file)
        except GeneratorError:
            continue
        if isinstance(data, dict) and isinstance(data.get("id"), str):
            ids.add(data["id"])
    return ids


# --- compiling ----------------------------------------------------------------------------------


def _compile_all(env: Any, items: list[tuple[QuestionSpec, list[_Draw]]], found: _Findings) -> int:
    def one(item: tuple[QuestionSpec, list[_Draw]]) -> str | None:
        question, draws = item
        try:
            text = render_preview_document(
                env, question, [d.rendered for d in draws], [d.seed for d in draws], variant_label(0)
            )
        except GeneratorError as e:
            return str(e)
        with tempfile.TemporaryDirectory(prefix="generator-check-") as folder:
            tex = Path(folder) / f"{question.id}.tex"
            tex.write_text(announced(text), encoding="utf-8")
            try:
                compile_pdf(tex)
            except CompileError as e:
                seed = _seed_at(text, e.tex_line)
                hint = "" if seed is None else (
                    f"\n    (seed {seed}; see it with: python -m generator preview {question.path} --seed {seed})")
                return str(e) + hint
        return None

    workers = max(1, min(4, os.cpu_count() or 1, len(items)))
    with ThreadPoolExecutor(max_workers=workers) as pool:
        results = list(pool.map(one, items))
    found.problems.extend(r for r in results if r)
    return sum(1 for r in results if r is None)


def _seed_at(text: str, line: int | None) -> int | None:
    """The seed whose part of a preview document holds `line` (from `%% generator: seed` markers)."""
    if line is None:
        return None
    seed = None
    for current in text.splitlines()[:line]:
        m = re.match(r"^%% generator: seed (\d+)$", current)
        if m:
            seed = int(m.group(1))
    return seed


def summary(report: CheckReport, seeds: int) -> str:
    """One line for the end of the output."""
    exams = f", {report.exams} exam(s)" if report.exams else ""
    what = f"{report.questions} question(s), {report.worksheets} worksheet(s){exams}, {seeds} seed(s) each"
    compiled = f", {report.compiled} compiled" if report.compiled else ""
    if report.ok:
        return f"ok: {what}{compiled}"
    return f"{len(report.problems)} problem(s) in {what}{compiled}"

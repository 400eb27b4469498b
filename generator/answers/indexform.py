"""General index forms: d u_j / d w_il = delta_ij x_l, derived by SymPy from the `index:` section.

Derivation (solve stage). The part's `of` definition is differentiated by SymPy with respect to
an entry of `wrt` (`IndexedBase` entries differentiate to `KroneckerDelta`s). Names defined
earlier in `index.define` stay names in the result: the multivariate chain rule is applied
through them, dE/dw_il = dE/dw_il|direct + sum_q dE/du_q du_q/dw_il, so the key reads
(sigma(u_i) - y_i) sigma(u_i) (1 - sigma(u_i)) x_l rather than one inlined expression. Sums over
deltas are done by SymPy (`Sum.doit`), which guards each result with a Piecewise "index within
range" condition; indices always are within range, so exactly those conditions are replaced by
True (anything else is an error). Simplification stays cheap: constant factors move out of
sums, then the shortest of a few canonical forms is kept. The derivation depends on the spec
alone (sizes are symbols), so it runs once per question and part.

Checks (verify stage). Where SymPy does not reach the textbook form, the spec states it
(`expected`). The build evaluates both, with definitions inlined, at every index of the
instances of a few fixed check seeds (drawn through the spec's own sampling, so constraints such
as a one-hot y hold) and stops on a mismatch. Every variant's derived form is also evaluated at
every index of its Jacobian and compared with SymPy's concrete answer, so the index form, the
concrete definition and the numbers cannot drift apart.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np
import sympy
from sympy.core.relational import Relational

from generator.answers.floats import float_array
from generator.errors import SolveError, VerifyError
from generator.spec.expr import subgradient_zero
from generator.spec.indexnotation import (
    IndexRef,
    entry_symbol,
    index_grid_evaluator,
    index_symbol,
    latex_index,
    size_symbol,
)
from generator.spec.model import QuestionSpec

__all__ = [
    "CHECK_SEEDS",
    "IndexForm",
    "check_expected",
    "check_index_form",
    "derive_index_form",
    "latex_index_form",
    "layout_sentence",
]

CHECK_SEEDS = (1, 2, 3)
RTOL = 1e-9
ATOL = 1e-12
_POOL = "pqrstabcdefgh"


@dataclass(frozen=True, slots=True)
class IndexForm:
    """A part's general index form: d of / d wrt = derived (= expected, the textbook form)."""

    part_id: str
    of: IndexRef
    wrt: IndexRef
    derived: sympy.Expr
    expected: sympy.Expr | None
    letters: tuple[tuple[str, str], ...]
    expected_text: str = ""
    where: str = ""
    expected_where: str = ""

    @property
    def index_names(self) -> tuple[str, ...]:
        """The names of the Jacobian's axes: of's indices, then wrt's (e.g. j, i, l)."""
        return self.of.indices + self.wrt.indices


# --- derivation -------------------------------------------------------------------------------


class _Deriver:
    """The chain rule through index definitions, for one question."""

    def __init__(self, question: QuestionSpec):
        self.question = question
        self.definitions = {
            d.ref.name: (tuple(index_symbol(i) for i in d.ref.indices), d.expr.value) for d in question.index_define
        }
        self.ranges: dict[sympy.Symbol, sympy.Expr] = {
            index_symbol(n): size_symbol(s) for n, s in question.index_ranges
        }
        self.hints: dict[sympy.Dummy, str] = {}
        self.through: list[str] = []
        # A question's parts go through the same definitions (mlp2's four parts all differentiate
        # E by z, z by h, h by a): the instances, the summation indices the chain rule sums over
        # and the derivatives by them are made once per question, not once per part.
        self._instances: dict[tuple[str, tuple[sympy.Symbol, ...]], sympy.Expr] = {}
        self._summed: dict[tuple[sympy.Expr, str], tuple[sympy.Dummy, ...]] = {}
        self._derivatives: dict[tuple[sympy.Expr, sympy.Expr], sympy.Expr] = {}

    def dummy(self, like: sympy.Symbol) -> sympy.Dummy:
        """A fresh summation index over the same range as `like` (renamed nicely at the end)."""
        fresh = sympy.Dummy(like.name, integer=True, positive=True)
        self.ranges[fresh] = self.ranges[like]
        self.hints[fresh] = self.hints.get(like, like.name)
        return fresh

    def fresh_bound(self, expr: sympy.Expr) -> sympy.Expr:
        """Give every summation index its own dummy, so no bound index can meet a free one."""

        def rename(s: sympy.Sum) -> sympy.Sum:
            mapping = {limit[0]: self.dummy(limit[0]) for limit in s.limits}
            body = self.fresh_bound(s.function).xreplace(mapping)
            return sympy.Sum(body, *[(mapping[v], lo, hi) for v, lo, hi in s.limits])

        return expr.replace(lambda a: isinstance(a, sympy.Sum), rename)

    def instance(self, name: str, indices: tuple[sympy.Symbol, ...]) -> sympy.Expr:
        """The definition of `name` at the given indices, with fresh summation indices."""
        key = (name, indices)
        if key not in self._instances:
            symbols, body = self.definitions[name]
            self._instances[key] = self.fresh_bound(body).xreplace(dict(zip(symbols, indices, strict=True)))
        return self._instances[key]

    def derivative(self, expr: sympy.Expr, by: sympy.Expr) -> sympy.Expr:
        """d expr / d by, sums over deltas done (`settle`), without the chain rule."""
        key = (expr, by)
        if key not in self._derivatives:
            self._derivatives[key] = self.settle(sympy.diff(expr, by))
        return self._derivatives[key]

    def total(self, expr: sympy.Expr, wrt: sympy.Expr) -> sympy.Expr:
        """d expr / d wrt, through every definition expr uses (the multivariate chain rule)."""
        result = self.derivative(expr, wrt)
        for name in self.used(expr):
            if name not in self.through:
                self.through.append(name)
            if (expr, name) not in self._summed:
                self._summed[(expr, name)] = tuple(self.dummy(s) for s in self.definitions[name][0])
            through = self._summed[(expr, name)]
            entry = entry_symbol(name, len(through))
            target = entry[through] if through else entry
            outer = self.derivative(expr, target)
            if outer == 0:
                continue
            inner = self.total(self.instance(name, through), wrt)
            if inner == 0:
                continue
            term = outer * inner
            if through:
                term = sympy.Sum(term, *[(t, 1, self.ranges[t]) for t in through])
            result += self.settle(term)
        return result

    def fold(self, expr: sympy.Expr) -> sympy.Expr:
        """Write definitions the chain rule went through by their names again: sigma(a_i) -> h_i.

        Only definitions without sums are folded (their pattern matches structurally).
        """
        for name in reversed(self.through):
            symbols, body = self.definitions[name]
            if body.has(sympy.Sum) or body.is_Atom or isinstance(body, sympy.Indexed):
                continue
            wilds = {s: sympy.Wild(f"w_{s.name}") for s in symbols}
            entry = entry_symbol(name, len(symbols))
            target = entry[tuple(wilds[s] for s in symbols)] if symbols else entry
            expr = expr.replace(body.xreplace(wilds), target)
        return expr

    def used(self, expr: sympy.Expr) -> list[str]:
        names = {str(a.base.label) for a in expr.atoms(sympy.Indexed)} | {a.name for a in expr.atoms(sympy.Symbol)}
        return [name for name in self.definitions if name in names]

    def settle(self, expr: sympy.Expr) -> sympy.Expr:
        """Do the sums over deltas, drop the 'index within range' conditions, tidy sums."""
        expr = sympy.factor_terms(self.within_range(_sum_deltas(expr)))
        return expr.replace(lambda a: isinstance(a, sympy.Sum), _pull_constants)

    def within_range(self, expr: sympy.Expr) -> sympy.Expr:
        truths = {}
        for rel in expr.atoms(Relational):
            if self.holds(rel):
                truths[rel] = sympy.true
        expr = expr.xreplace(truths)
        if expr.has(sympy.Piecewise):
            piece = next(iter(expr.atoms(sympy.Piecewise)))
            raise SolveError(
                f"{self.question.path}: question '{self.question.id}': the index form keeps a condition "
                f"SymPy could not resolve ({piece.args[0][1]}); check that every index in index.define runs over "
                "the right dimension"
            )
        return expr

    def holds(self, rel: Relational) -> bool:
        """True for `index >= 1` and `index <= size of its range` (in any spelling SymPy chose)."""
        if isinstance(rel, (sympy.GreaterThan, sympy.StrictGreaterThan)):
            big, small = rel.lhs, rel.rhs
        elif isinstance(rel, (sympy.LessThan, sympy.StrictLessThan)):
            big, small = rel.rhs, rel.lhs
        else:
            return False
        strict = isinstance(rel, (sympy.StrictGreaterThan, sympy.StrictLessThan))
        if big in self.ranges and small.is_Integer:
            return bool(small < 1) if strict else bool(small <= 1)
        if small in self.ranges and not strict:
            return bool(big == self.ranges[small])
        return False


def _sum_deltas(expr: sympy.Expr) -> sympy.Expr:
    """Evaluate the sums that contain a Kronecker delta of their index; leave the others alone.

    `Sum.doit` would also try closed forms for sums without deltas (sum_m w_mi (z_m - y_m)),
    which cannot succeed for indexed terms and costs most of the derivation time. Terms are
    expanded only where a delta sits inside a bracket, so the result keeps its factored shape.
    """

    def collapse(s: sympy.Sum) -> sympy.Expr:
        body = _sum_deltas(s.function)
        for limit in reversed(s.limits):  # the innermost limit first
            body = sympy.Add(*(_sum_term(term, limit) for term in sympy.Add.make_args(body)))
        return body

    return expr.replace(lambda a: isinstance(a, sympy.Sum), collapse)


def _sum_term(term: sympy.Expr, limit: tuple[Any, Any, Any]) -> sympy.Expr:
    var = limit[0]
    if not any(var in d.free_symbols for d in term.atoms(sympy.KroneckerDelta)):
        return sympy.Sum(term, limit)
    if any(isinstance(f, sympy.KroneckerDelta) and var in f.free_symbols for f in sympy.Mul.make_args(term)):
        return sympy.Sum(term, limit).doit()
    expanded = sympy.expand(term)
    if expanded == term:
        return sympy.Sum(term, limit).doit()
    return sympy.Add(*(_sum_term(t, limit) for t in sympy.Add.make_args(expanded)))


def _pull_constants(s: sympy.Sum) -> sympy.Expr:
    """sum_q a b_q -> a sum_q b_q for factors a that do not depend on q."""
    variables = {limit[0] for limit in s.limits}
    factors = sympy.Mul.make_args(s.function)
    outside = [f for f in factors if not f.free_symbols & variables]
    inside = [f for f in factors if f.free_symbols & variables]
    if not outside or not inside:
        return s
    return sympy.Mul(*outside) * sympy.Sum(sympy.Mul(*inside), *s.limits)


def _nice_names(expr: sympy.Expr, hints: Mapping[sympy.Dummy, str]) -> sympy.Expr:
    """Rename the remaining summation dummies to index letters not otherwise in the result."""
    taken = {s.name for s in expr.free_symbols}
    mapping = {}
    for dummy in sorted(expr.atoms(sympy.Dummy), key=lambda d: (hints.get(d, d.name), d.dummy_index)):
        for name in (hints.get(dummy, dummy.name), *_POOL):
            if name not in taken:
                break
        else:
            name = f"q{len(taken)}"
        taken.add(name)
        mapping[dummy] = index_symbol(name)
    return expr.xreplace(mapping)


def _simplest(expr: sympy.Expr) -> sympy.Expr:
    """The shortest of a few cheap canonical forms (fewest operations, then shortest text)."""
    candidates = [expr, sympy.factor_terms(expr)]
    if not expr.has(sympy.Sum):
        candidates.append(sympy.factor(expr))
        candidates.append(sympy.cancel(expr))
    return min(candidates, key=lambda e: (sympy.count_ops(e), len(str(e))))


@lru_cache(maxsize=256)
def _deriver(question: QuestionSpec) -> _Deriver:
    return _Deriver(question)


@lru_cache(maxsize=512)
def derive_index_form(question: QuestionSpec, part_id: str) -> IndexForm | None:
    """The index form of a part (None if the part asks for none), derived once per question.

    Raises:
        SolveError: SymPy left a condition that is not an index-range condition.
    """
    part = next(p for p in question.parts if p.id == part_id)
    spec = part.index_form
    if spec is None:
        return None
    deriver = _deriver(question)
    deriver.through = []
    root = deriver.instance(spec.of.name, tuple(index_symbol(i) for i in spec.of.indices))
    derived = subgradient_zero(deriver.total(root, spec.wrt.symbol()))
    derived = _simplest(deriver.fold(_nice_names(derived, deriver.hints)))
    expected = spec.expected.value if spec.expected is not None else None
    text, at = (spec.expected.text, str(spec.expected.where)) if spec.expected is not None else ("", "")
    return IndexForm(part.id, spec.of, spec.wrt, derived, expected, question.index_latex, text, str(spec.where), at)


# --- checks -----------------------------------------------------------------------------------


def _definitions(question: QuestionSpec) -> dict[str, tuple[tuple[sympy.Symbol, ...], sympy.Expr]]:
    return {d.ref.name: (tuple(index_symbol(i) for i in d.ref.indices), d.expr.value) for d in question.index_define}


def _sizes(question: QuestionSpec, dims: Mapping[str, int]) -> dict[sympy.Symbol, int]:
    return {size_symbol(name): int(value) for name, value in dims.items()}


def _floats(params: Mapping[str, np.ndarray]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, value in params.items():
        array = float_array(value)
        out[name] = array if array.ndim else float(array)
    return out


def _axes(question: QuestionSpec, form: IndexForm, dims: Mapping[str, int]) -> list[tuple[sympy.Symbol, int]]:
    """The Jacobian's axes as (index symbol, size): of's indices, then wrt's."""
    ranges = dict(question.index_ranges)
    axes = []
    for name in form.index_names:
        dimension = ranges[name]
        axes.append((index_symbol(name), int(dims[dimension] if isinstance(dimension, str) else dimension)))
    return axes


def _first_mismatch(a: np.ndarray, b: np.ndarray) -> int | None:
    """The first flat index (C order, as `itertools.product` runs) where a and b are not close."""
    bad = ~(np.abs(a - b) <= ATOL + RTOL * np.maximum(1.0, np.maximum(np.abs(a), np.abs(b))))
    return int(np.argmax(bad)) if bad.any() else None


@lru_cache(maxsize=256)
def _check_instances(question: QuestionSpec) -> list[tuple[int, dict[str, int], dict[str, Any]]]:
    """(seed, dimensions, float parameters) of the instances the stated forms are checked on."""
    from generator.answers.sampling import (
        sample,  # a stage further down the pipeline; imported where used
    )

    out = []
    for seed in CHECK_SEEDS:
        instance = sample(question, seed, 0)
        out.append((seed, dict(instance.dims), _floats(instance.params)))
    return out


@lru_cache(maxsize=512)
def check_expected(question: QuestionSpec, form: IndexForm) -> None:
    """Check the stated textbook form against SymPy's derivation (once per question and part).

    Both are evaluated at every index of the instances drawn for `CHECK_SEEDS` (variant A).

    Raises:
        VerifyError: naming the question, the part, the seed, the indices and both values.
    """
    if form.expected is None:
        return
    definitions = _definitions(question)
    for seed, dims, values in _check_instances(question):
        axes = _axes(question, form, dims)
        grid = index_grid_evaluator(values, _sizes(question, dims), definitions)
        derived, expected = grid(form.derived, axes), grid(form.expected, axes)
        flat = _first_mismatch(derived, expected)
        if flat is not None:
            index = np.unravel_index(flat, derived.shape)
            at = ", ".join(f"{n}={int(v) + 1}" for n, v in zip(form.index_names, index, strict=True))
            raise VerifyError(
                f"{form.expected_where}: question '{question.id}', part '{form.part_id}': the stated index form "
                f"'{form.expected_text}' disagrees with SymPy's derivation '{form.derived}' at {at} "
                f"(check seed {seed}): stated {float(expected[index]):.10g}, derived {float(derived[index]):.10g}"
            )


def check_index_form(
    question: QuestionSpec, form: IndexForm, dims: Mapping[str, int], params: Mapping[str, np.ndarray],
    jacobian: np.ndarray, label: str,
) -> None:
    """Check a variant's Jacobian (floats) entry by entry against the index form(s).

    Raises:
        VerifyError: naming the question, the part, `label` (variant and seed) and the entry.
    """
    check_expected(question, form)
    axes = _axes(question, form, dims)
    count = math.prod(size for _, size in axes)
    if count != jacobian.size:
        raise VerifyError(
            f"{form.where}: question '{question.id}', part '{form.part_id}': the index form "
            f"d{form.of}/d{form.wrt} has {count} entries but the answer has shape {list(jacobian.shape)}; "
            "check index.ranges"
        )
    grid = index_grid_evaluator(_floats(params), _sizes(question, dims), _definitions(question))
    # The grid runs over the index names in order, as the Jacobian's entries are laid out (C order).
    exact = np.asarray(jacobian, dtype=float).reshape(tuple(size for _, size in axes))
    forms = [("derived", form.derived, form.where)]
    if form.expected is not None:
        forms.append(("stated", form.expected, form.expected_where))
    found = []  # (first bad flat index, order of the form): the entry reported first, derived before stated
    for order, (what, expr, where) in enumerate(forms):
        values = grid(expr, axes)
        flat = _first_mismatch(values, exact)
        if flat is not None:
            found.append((flat, order, what, expr, where, values))
    if found:
        flat, _, what, expr, where, values = min(found, key=lambda f: f[:2])
        # Printed only now: str() of a derived form costs more than checking it.
        text = str(expr) if what == "derived" else form.expected_text
        position = [int(i) for i in np.unravel_index(flat, jacobian.shape)] if jacobian.ndim else []
        raise VerifyError(
            f"{where}: question '{question.id}', part '{form.part_id}', {label}: the {what} index form "
            f"'{text}' disagrees with the answer at index {position}: index form {float(values.flat[flat]):.10g}, "
            f"answer {float(exact.flat[flat]):.10g}"
        )


# --- LaTeX ------------------------------------------------------------------------------------


@lru_cache(maxsize=1024)
def _lhs(form: IndexForm) -> str:
    letters = dict(form.letters)
    of = latex_index(form.of.symbol(), letters)
    wrt = latex_index(form.wrt.symbol(), letters)
    return rf"\frac{{\partial {of}}}{{\partial {wrt}}}"


@lru_cache(maxsize=1024)
def latex_index_form(form: IndexForm) -> str:
    """`\\frac{\\partial u_{j}}{\\partial w_{il}} = \\delta_{ij} x_{l}`, then `= textbook form` if one is stated."""
    letters = dict(form.letters)
    tex = rf"{_lhs(form)} = {latex_index(form.derived, letters)}"
    if form.expected is not None and form.expected != form.derived:
        tex += rf" = {latex_index(form.expected, letters)}"
    return tex


@lru_cache(maxsize=4096)  # the same part and shape in many variants
def layout_sentence(form: IndexForm, shape: tuple[int, ...]) -> str:
    """One sentence saying how a matrix or tensor answer is laid out, in the form's index names."""
    names = form.index_names
    if len(shape) < 2:
        return ""
    entry = _lhs(form).replace(r"\frac", r"\tfrac")
    size = r"\times".join(str(n) for n in shape)
    split = len(form.of.indices)
    out_shape = r"\times".join(str(n) for n in shape[:split])
    in_shape = r"\times".join(str(n) for n in shape[split:])
    # A scalar has the empty shape (A + B = B): said in words, not as a "1" that reads like a size.
    if not out_shape:
        convention = rf"A scalar with respect to a ${in_shape}$ input: ${size}$; "
    elif not in_shape:
        convention = rf"Shape ${out_shape}$ (output) with respect to a scalar input: ${size}$; "
    else:
        convention = rf"Shape ${out_shape}$ (output) $+$ ${in_shape}$ (input) $= {size}$; "
    if len(shape) == 2:
        return convention + rf"row ${names[0]}$, column ${names[1]}$ holds ${entry}$."
    lead = names[: len(shape) - 2]
    label = ", ".join(lead)
    block = rf"{shape[-2]}\times{shape[-1]}"
    which = f"${label}$" if len(lead) == 1 else f"$({label})$"
    return (
        convention
        + rf"one ${block}$ block per {which}, labelled below it; in block {which}, "
        + rf"row ${names[-2]}$, column ${names[-1]}$ holds ${entry}$."
    )

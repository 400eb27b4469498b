"""Stage 3, solve: every part's exact answer with SymPy, from the question's definitions.

Shape convention (stated in docs/spec.md and printed in every key): the Jacobian of an output
of shape A with respect to an input of shape B has shape A + B, entry
J[a..., b...] = d out[a...] / d in[b...]. A scalar output gives the gradient, shaped like the
input; a scalar input gives the output's shape.

The derivative is taken symbolically: every parameter becomes an array of SymPy symbols, the
definitions are evaluated over those symbols, each output entry is differentiated by every input
entry (by reverse accumulation over the expression graph, with SymPy's derivative of each node),
and only then are this variant's exact numbers substituted. The symbolic Jacobian depends on the
dimensions alone, so it is cached per (question, dimensions) and reused across variants.

Substituting and tidying are where a class set spends its time, so the common case - an entry
that is a rational function of e once the numbers are in - is computed on integer coefficient
lists (SymPy's dense polynomial functions) and turned into a SymPy expression once per distinct
value; everything else goes through SymPy's general path. Both give the same expressions.
"""

from __future__ import annotations

import collections
import functools
import math
import operator
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, cast

import numpy as np
import sympy
from sympy import ZZ
from sympy.core.mul import _keep_coeff
from sympy.polys.densearith import dup_add, dup_mul, dup_neg, dup_pow
from sympy.polys.euclidtools import dup_cancel
from sympy.polys.sqfreetools import dup_sqf_list

from generator.answers.floats import float_in_e
from generator.answers.indexform import IndexForm, derive_index_form
from generator.answers.sampling import Definitions, Instance, question_rng, sample
from generator.errors import ExpressionError, SolveError
from generator.spec.expr import EXACT, MAX_EXP_ARGUMENT, evaluate, subgradient_zero, symbol_values
from generator.spec.model import ChoiceOption, PartSpec, QuestionSpec, WrtSpec

__all__ = [
    "FORMS", "SOLVERS", "ChoiceAnswer", "ChoiceOptionAnswer", "FactoredForm", "PartAnswer", "Solution",
    "factored_form", "misconception", "plain_number", "solve", "solve_choice", "symbol_arrays", "sympified",
    "tidy_array", "to_plain", "variable_array",
]

MAX_ORDER = 4  # tensors up to order 4 can be laid out in the key (see generator.render.latex)
# Entries of one part's answer: the bank's largest has 192; beyond this a key is unreadable and
# the symbolic Jacobian (one derivative per entry) takes minutes. Refused before it is derived.
MAX_ANSWER_ENTRIES = 2000
_UNDEFINED = (sympy.zoo, sympy.nan, sympy.oo, sympy.S.NegativeInfinity)
# A variant whose choice options are not all different is drawn again, up to this many times;
# the redraws are numbered from CHOICE_REDRAW_BASE on, away from sample_variants' 1, 2, ...
MAX_CHOICE_REDRAWS = 50
CHOICE_REDRAW_BASE = 1000


@dataclass(frozen=True, slots=True)
class ChoiceOptionAnswer:
    """One option of a choice part as shown: its letter, where it came from (`answer`, `options[i]`
    or a misconception's name), its exact value (None for a text option) or text, and whether it is correct."""

    letter: str
    source: str
    value: np.ndarray | None
    text: str | None
    correct: bool


@dataclass(frozen=True, slots=True)
class ChoiceAnswer:
    """A choice part's options in the order shown (shuffled per variant), and how many draws of
    the variant were refused because two options were equal."""

    options: tuple[ChoiceOptionAnswer, ...]
    redraws: int = 0

    @property
    def letters(self) -> tuple[str, ...]:
        """The letters of the correct options, in order."""
        return tuple(option.letter for option in self.options if option.correct)


@dataclass(frozen=True, slots=True)
class PartAnswer:
    """A part's exact answer: an object array of SymPy numbers (0-d for a scalar).

    `index_form` is the general index form (d u_j / d w_il = ...) when the part asks for one.
    """

    spec: PartSpec
    value: np.ndarray
    out_shape: tuple[int, ...]
    in_shape: tuple[int, ...]
    index_form: IndexForm | None = None
    choice: ChoiceAnswer | None = None  # a choice part (`value` is then its `of`'s answer, or empty)


@dataclass(frozen=True, slots=True)
class Solution:
    """A solved variant: its instance, the defined values and every part's answer.

    `values` holds the defined values, exact (`Definitions`: evaluated when read); `derived` the
    derived values in the canonical shape of answers, for display (`DerivedValues`)."""

    instance: Instance
    values: Mapping[str, np.ndarray]
    parts: tuple[PartAnswer, ...]
    derived: Mapping[str, np.ndarray]


class DerivedValues(Mapping[str, np.ndarray]):
    """A variant's derived values as a key shows them, each made the first time it is read.

    Made like the answers: the derived expressions over symbols (once per dimensions) with the
    numbers put in on coefficient lists, sharing what the parts' Jacobians already computed
    (sigmoid(a_j) is in both), instead of exact SymPy arithmetic and then the canonical shape;
    the same expressions over the whole bank (tests/test_solve.py). Where the definitions cannot
    be evaluated over symbols, the exact value is put in canonical shape instead.
    """

    def __init__(self, instance: Instance, dims: tuple[tuple[str, int], ...], substitution: dict[sympy.Symbol, Any],
                 memo: dict[Any, Any]):
        self._instance, self._dims, self._substitution, self._memo = instance, dims, substitution, memo
        self._shown: dict[str, np.ndarray] = {}

    def __getitem__(self, name: str) -> np.ndarray:
        if name not in self._shown:
            instance = self._instance
            if name not in instance.derived:
                raise KeyError(name)
            symbolic = _symbolic_values(instance.question, self._dims)
            try:
                if symbolic is None:
                    shown = tidy_array(instance.derived[name])
                else:
                    shown = _substitute(np.asarray(symbolic[name], dtype=object), self._substitution, self._memo)
            except _TooLarge as e:
                where = dict(instance.question.derived)[name].where
                raise SolveError(f"{where}: derived.{name}: {e} (question '{instance.question.id}', "
                                 f"variant {instance.variant}, seed {instance.seed}; "
                                 f"values: {instance.described()})") from e
            except ExpressionError as e:
                raise SolveError(f"{e} (question '{instance.question.id}', variant {instance.variant}, "
                                 f"seed {instance.seed}; values: {instance.described()})") from e
            for entry in shown.flat:
                problem = _not_real(entry)
                if problem:
                    where = dict(instance.question.derived)[name].where
                    raise SolveError(
                        f"{where}: derived.{name}: the value is {problem} for variant {instance.variant} of question "
                        f"'{instance.question.id}' (seed {instance.seed}; values: {instance.described()}); "
                        "add a constraint")
            self._shown[name] = shown
        return self._shown[name]

    def __contains__(self, name: object) -> bool:
        return name in self._instance.derived

    def __iter__(self) -> Iterator[str]:
        return iter(self._instance.derived)

    def __len__(self) -> int:
        return len(self._instance.derived)


def symbol_arrays(question: QuestionSpec, dims: tuple[tuple[str, int], ...]) -> dict[str, np.ndarray]:
    """One real SymPy symbol per parameter entry, named like `W[0,1]`."""
    sizes = dict(dims)
    out = {}
    for param in question.parameters:
        shape = tuple(sizes[s] if isinstance(s, str) else s for s in param.shape)
        array = np.empty(shape, dtype=object)
        for index in np.ndindex(shape):
            label = f"{param.name}[{','.join(map(str, index))}]" if index else param.name
            array[index] = sympy.Symbol(label, real=True)
        out[param.name] = array
    return out


@lru_cache(maxsize=256)
def _symbolic(
    question: QuestionSpec, dims: tuple[tuple[str, int], ...]
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    symbols = symbol_arrays(question, dims)
    env: dict[str, Any] = {k: np.asarray(sympy.Integer(v), dtype=object) for k, v in dims}
    env.update(symbol_values(question.symbols, EXACT))
    env.update(symbols)
    for name, expr in (*question.derived, *question.define):
        env[name] = evaluate(expr, env, EXACT)
    return symbols, env


@lru_cache(maxsize=256)
def _symbolic_values(question: QuestionSpec, dims: tuple[tuple[str, int], ...]) -> dict[str, np.ndarray] | None:
    """`_symbolic`'s values, or None where the definitions cannot be evaluated over symbols
    (remembered: `_symbolic` itself is not cached when it fails, and every variant would try again)."""
    try:
        return _symbolic(question, dims)[1]
    except ExpressionError:
        return None


@lru_cache(maxsize=1024)
def _jacobian(question: QuestionSpec, dims: tuple[tuple[str, int], ...], of: str, wrt: str) -> np.ndarray:
    symbols, env = _symbolic(question, dims)
    inputs = symbols[wrt]
    try:
        gradients = _gradients(question, dims, of)
    except _NotReversible:
        return _jacobian_by_diff(np.asarray(env[of], dtype=object), inputs)
    jac = np.empty(gradients.shape + inputs.shape, dtype=object)
    for a in np.ndindex(gradients.shape):
        gradient = cast(dict[sympy.Symbol, Any], gradients[a])  # (an object array of dicts)
        for b in np.ndindex(inputs.shape):
            jac[a + b] = gradient.get(inputs[b], sympy.Integer(0))
    return jac


@lru_cache(maxsize=256)
def _gradients(question: QuestionSpec, dims: tuple[tuple[str, int], ...], of: str) -> np.ndarray:
    """For each entry of `of`, its derivative by every parameter symbol it depends on (a dict).

    Reverse accumulation over the expression graph: one pass per output entry gives the
    derivatives by all the inputs at once, where `sympy.diff` would walk the whole expression
    again for each input (a loss such as mlp2's E has 40 of them). Each node's local
    derivatives are SymPy's own (`fdiff` of a function is what `diff` uses in the chain rule),
    so the derivatives are the same functions; tests/test_solve.py compares the answers with
    `sympy.diff`'s over the whole bank.
    """
    _, env = _symbolic(question, dims)
    out = np.asarray(env[of], dtype=object)
    gradients = np.empty(out.shape, dtype=object)
    live: dict[sympy.Basic, bool] = {}  # shared: the entries have most of their subexpressions in common
    for a in np.ndindex(out.shape):
        gradients[a] = reverse_gradient(sympy.sympify(out[a]), live)
    return gradients


def _live(node: sympy.Basic, memo: dict[sympy.Basic, bool]) -> bool:
    """Whether `node` holds a symbol: `bool(node.free_symbols)` for the nodes `generator.spec.expr`
    makes, remembered per node (SymPy works `free_symbols` out anew, through the whole subtree,
    at every call, which was a third of the Jacobians' time). A node that binds symbols (a Sum)
    may count as live here; `_local_derivatives` refuses it, and `sympy.diff` takes over."""
    known = memo.get(node)
    if known is None:
        known = memo[node] = node.is_Symbol or any(_live(arg, memo) for arg in node.args)
    return known


def reverse_gradient(expr: sympy.Expr, live: dict[sympy.Basic, bool] | None = None) -> dict[sympy.Symbol, sympy.Expr]:
    """{symbol: d expr / d symbol} for every symbol in `expr`, by reverse accumulation.

    `live` remembers which subexpressions hold symbols (`_live`); pass one dict for many calls."""
    live = {} if live is None else live
    order: list[sympy.Basic] = []  # every distinct subexpression, children before parents
    seen: set[sympy.Basic] = set()
    stack: list[tuple[sympy.Basic, bool]] = [(expr, False)]
    while stack:
        node, expanded = stack.pop()
        if expanded:
            order.append(node)
            continue
        if node in seen:
            continue
        seen.add(node)
        stack.append((node, True))
        stack.extend((arg, False) for arg in node.args if _live(arg, live))
    adjoint: dict[sympy.Basic, sympy.Expr] = {expr: sympy.Integer(1)}
    gradient: dict[sympy.Symbol, sympy.Expr] = {}
    for node in reversed(order):  # a node's parents all come before it
        bar = adjoint.pop(node, None)
        if bar is None:
            continue
        if node.is_Symbol:
            gradient[node] = bar
            continue
        for child, local in _local_derivatives(node, live):
            adjoint[child] = adjoint[child] + bar * local if child in adjoint else bar * local
    return gradient


def _local_derivatives(node: sympy.Basic, memo: dict[sympy.Basic, bool]) -> list[tuple[sympy.Basic, sympy.Expr]]:
    """(argument, d node / d argument) for each argument of `node` that holds a symbol."""
    args = node.args
    live = [i for i, arg in enumerate(args) if _live(arg, memo)]
    if node.is_Add:
        return [(args[i], sympy.Integer(1)) for i in live]
    if node.is_Mul:
        return [(args[i], sympy.Mul(*args[:i], *args[i + 1:])) for i in live]
    if node.is_Pow:
        base, exponent = args
        out = []
        if 0 in live:
            out.append((base, exponent * base ** (exponent - 1)))
        if 1 in live:
            out.append((exponent, node * sympy.log(base)))
        return out
    if isinstance(node, sympy.Piecewise):
        raise _NotReversible("Piecewise")  # (its arguments are (value, condition) pairs: sympy.diff knows them)
    if isinstance(node, (sympy.Function, sympy.Max, sympy.Min)):  # Max, Min are not Functions but have fdiff
        try:
            return [(args[i], subgradient_zero(node.fdiff(i + 1))) for i in live]
        except (sympy.ArgumentIndexError, NotImplementedError, TypeError):
            raise _NotReversible(type(node).__name__) from None
    # Anything else (none is made by generator.spec.expr today): let SymPy differentiate it.
    raise _NotReversible(type(node).__name__)


class _NotReversible(Exception):
    pass


def _jacobian_by_diff(out: np.ndarray, inputs: np.ndarray) -> np.ndarray:
    """The Jacobian entry by entry with `sympy.diff` (for expressions `reverse_gradient` does not know)."""
    jac = np.empty(out.shape + inputs.shape, dtype=object)
    for a in np.ndindex(out.shape):
        entry = sympy.sympify(out[a])
        for b in np.ndindex(inputs.shape):
            jac[a + b] = subgradient_zero(sympy.diff(entry, inputs[b]))
    return jac


def sympified(value: Any) -> sympy.Basic:
    """A SymPy value as it is (`sympify` would check and return it, at a cost a class set pays
    tens of thousands of times), anything else (a plain int) through `sympify`."""
    return value if isinstance(value, sympy.Basic) else sympy.sympify(value)


def _substitute(array: np.ndarray, values: dict[sympy.Symbol, Any], memo: dict[Any, Any] | None = None) -> np.ndarray:
    """Put the numbers in and give every entry its canonical shape.

    Entries that are rational functions of e once the numbers are in (nearly all: sums, products,
    integer powers and exp of integers) are computed straight on integer coefficient lists,
    sharing the subexpressions the entries have in common through `memo` (a sigmoid of a
    hidden unit appears in every entry of a layer's Jacobian); only the rest are substituted
    into the SymPy expression and tidied. Both give the same result (tests/test_solve.py).
    """
    memo = {} if memo is None else memo
    out = np.empty(array.shape, dtype=object)
    for index in np.ndindex(array.shape):
        entry = sympified(array[index])
        pair = _as_fraction(entry, values, memo)
        value = _settled(tuple(pair[0]), tuple(pair[1])) if pair is not None else None
        out[index] = value if value is not None else _tidy(_bounded_exponents(entry.xreplace(values)))
    return out


class _TooLarge(SolveError):
    """An exact value too large to put in canonical shape (the caller adds where it is)."""


def _bounded_exponents(entry: sympy.Expr) -> sympy.Expr:
    """`entry` if every exp in it has an argument within ±MAX_EXP_ARGUMENT (e^(e^(e^3)) has
    about 10^8 digits, and tidying exp(20000) takes minutes); else `_TooLarge`."""
    for power in entry.atoms(sympy.exp):
        argument = power.args[0]
        if argument.free_symbols:
            continue
        try:
            size = abs(float(sympy.N(argument, 15)))
        except (OverflowError, TypeError, ValueError):
            size = math.inf
        if not size <= MAX_EXP_ARGUMENT:
            about = sympy.N(argument, 3) if math.isfinite(size) else "a huge number"
            raise _TooLarge(f"an exponential of about {about} is too large for a key "
                            f"(arguments of exp within ±{MAX_EXP_ARGUMENT})")
    return entry


# Cached: the entries of a key repeat across parts and variants (0, 1, sigma'(1) = e/(e + 1)^2, ...),
# and reducing a pair (a gcd) costs more than finding it again.
@lru_cache(maxsize=1 << 16)
def _settled(numerator: tuple[int, ...], denominator: tuple[int, ...]) -> sympy.Expr | None:
    """The canonical expression of an unreduced pair, or None when `_tidy` must make it."""
    return _from_fraction(*_reduced((list(numerator), list(denominator))))


def _reduced(pair: _Fraction) -> _Fraction:
    """The reduced pair (as dup_cancel gives it), with the common cases of a number and of a
    polynomial over 1 short-cut: most entries of a key are plain numbers."""
    numerator, denominator = pair
    if denominator == [1]:
        return numerator, denominator
    if len(numerator) <= 1 and len(denominator) == 1:
        number = sympy.Rational(numerator[0] if numerator else 0, denominator[0])
        return ([int(number.p)] if number.p else []), [int(number.q)]
    return dup_cancel(numerator, denominator, ZZ)


def _from_fraction(numerator: list[int], denominator: list[int]) -> sympy.Expr | None:
    """The canonical expression of a reduced pair, or None when `_tidy` must make it."""
    if len(denominator) > 1:
        return _canonical(tuple(numerator), tuple(denominator))[0]
    if len(numerator) <= 1:
        return sympy.Rational(numerator[0] if numerator else 0, denominator[0])
    return None  # a polynomial in e over an integer: SymPy's path gives its shape (e/2 + 1/2)


@lru_cache(maxsize=1 << 16)
def _tidy(value: sympy.Expr) -> sympy.Expr:
    """Evaluate what SymPy leaves unevaluated after substitution (Heaviside(2) -> 1, ...).

    Cached: the same entry (a zero, a parameter, sigma'(1) = e/(1 + e)^2) comes up in many parts
    and variants, and simplifying it is the most expensive step of a build's Python side.
    """
    value = value.doit() if value.has(sympy.Heaviside, sympy.Max) else value
    if value.is_Rational:
        return value
    if value.free_symbols:  # a formula in the question's symbols: as SymPy writes it (3 x1**2 - x1 x2), not refactored
        return value
    # Keep closed forms exact but in one canonical shape: one fraction of polynomials in e, each
    # split into square-free factors, e.g. -e^2/(e^2 + 1)^3 rather than -e^2/(e^6 + 3e^4 + 3e^2 + 1).
    # (sqf, not factor: factor would split e^3 + 1 into (e + 1)(e^2 - e + 1).)
    pair = _as_fraction(value)  # integer powers of e only; None otherwise
    quick = _settled(tuple(pair[0]), tuple(pair[1])) if pair is not None else None
    if quick is not None:
        return quick
    if value.count_ops() >= 400:  # SymPy's cancel and sqf would take long; leave it as it is
        return value
    # Fractional powers (e^{3/2} and e^3 from u = -3/2) are written over one base t = e^{1/L} first,
    # so that SymPy sees one polynomial in t (e^3 = t^2 for L = 2) and can find its square factors.
    base, back = _common_e_base(value)
    value = value.xreplace(base) if base else value
    # The common case, a rational function of e (or of t = e^{1/L}), goes the fast way; the same
    # canonical form either way (checked over whole builds in tests/test_solve.py).
    generator = _T if base else sympy.E
    fast = _cancel_in(value, generator)
    numerator, denominator = sympy.fraction(fast if fast is not None else sympy.cancel(value))
    sign = 1
    if _leading_negative(numerator):  # -(e + 2)/(e + 1), not (-e - 2)/(e + 1)
        sign, numerator = -1, -numerator
    try:
        if fast is not None:
            result = sign * (_sqf_in(numerator, generator) / _sqf_in(denominator, generator))
        else:
            result = sign * (sympy.sqf(numerator) / sympy.sqf(denominator))
    except sympy.PolynomialError:
        result = sympy.powsimp(sign * numerator / denominator)
    return result.xreplace(back) if base else result


# --- the quickest path: integer coefficient lists -----------------------------------------------
# Most closed forms in a key are rational functions of e with integer powers (sigmoid, softmax and
# tanh at integer points). For those, the reduced pair (numerator, denominator) is computed on
# plain lists of integer coefficients (highest power first) with SymPy's low-level dense
# polynomial functions, without building SymPy expressions on the way; this is many times
# faster than reading the expression into a field, and gives the same pair, the same signs and
# the same square-free factors (tests/test_solve.py compares every answer of the bank with the
# reference form). Anything else (e^{1/2}, log, a constant denominator) takes the paths below.
# (Compiling a question's Jacobians once per dimensions into a list of steps on coefficient
# lists, to save walking the expressions for each variant, was measured: no faster. The time is
# in the polynomial arithmetic and the reductions, not in the walk.)

_Fraction = tuple[list[int], list[int]]


def _as_fraction(value: sympy.Expr, values: Mapping[sympy.Symbol, Any] | None = None,
                 memo: dict[Any, Any] | None = None) -> _Fraction | None:
    """(numerator, denominator) lists, not yet reduced, of a rational function of e; else None.

    Symbols take their numbers from `values`; `memo` keeps what shared subexpressions gave.
    """
    if memo is not None and value in memo:
        return memo[value]
    result = _fraction_of(value, values, memo)
    if memo is not None:
        memo[value] = result
    return result


def _fraction_of(
    value: sympy.Expr, values: Mapping[sympy.Symbol, Any] | None, memo: dict[Any, Any] | None
) -> _Fraction | None:
    if value.is_Symbol:
        number = values.get(value) if values is not None else None
        return _as_fraction(number) if number is not None and number.is_Rational else None
    if value.is_Rational:
        return [int(value.p)] if value.p else [], [int(value.q)]
    if value is sympy.E:
        return [1, 0], [1]
    if isinstance(value, sympy.exp):
        power = _as_fraction(value.args[0], values, memo)
        if power is None or len(power[1]) != 1 or len(power[0]) > 1 or (power[0] and power[0][0] % power[1][0]):
            return None  # not an integer power of e
        k = power[0][0] // power[1][0] if power[0] else 0
        if abs(k) > MAX_POWER:
            return None
        monomial = [1] + [0] * abs(k)
        return (monomial, [1]) if k >= 0 else ([1], monomial)
    if value.is_Add or value.is_Mul:
        parts = [_as_fraction(arg, values, memo) for arg in value.args]
        if any(part is None for part in parts):
            return None
        numerator, denominator = parts[0]  # type: ignore[misc]
        for top, bottom in parts[1:]:  # type: ignore[misc]
            if value.is_Mul:
                numerator, denominator = _mul(numerator, top), _mul(denominator, bottom)
            elif bottom == denominator:  # the common case in a sum: no need to multiply out
                numerator = dup_add(numerator, top, ZZ)
            else:
                numerator = dup_add(_mul(numerator, bottom), _mul(top, denominator), ZZ)
                denominator = _mul(denominator, bottom)
        return numerator, denominator
    if value.is_Pow and value.exp.is_Integer and abs(value.exp) <= MAX_POWER:
        part = _as_fraction(value.base, values, memo)
        if part is None or (value.exp < 0 and not part[0]):
            return None
        top, bottom = part if value.exp >= 0 else (part[1], part[0])
        n = abs(int(value.exp))
        return dup_pow(top, n, ZZ), dup_pow(bottom, n, ZZ)
    return None


# Measured 2026-12-02 (callgrind, 50 variants without TeX, all processes): dup_mul alone costs 2.0% more.
def _mul(f: list[int], g: list[int]) -> list[int]:
    """dup_mul(f, g, ZZ), with a number times a polynomial done in one pass: four products in five
    have a number on one side (a coefficient, 1/(e + 1) by 2, ...), and dup_mul's general loop
    cost several times as much. A non-empty list starts with a nonzero coefficient, so the
    result needs no stripping."""
    if len(f) == 1:
        return [f[0] * c for c in g]
    if len(g) == 1:
        return [c * g[0] for c in f]
    return dup_mul(f, g, ZZ)


MAX_POWER = 64  # larger integer powers are left to SymPy (no key has them; keeps lists small)


@lru_cache(maxsize=1 << 16)
def _canonical(numerator: tuple[int, ...], denominator: tuple[int, ...]) -> tuple[sympy.Expr, FactoredForm]:
    """The canonical shape (as `_tidy` makes it) of numerator/denominator, reduced coefficients
    in e with a denominator of degree 1 or more; and its factors, for printing (`factored_form`)."""
    sign = 1
    if numerator[0] < 0:  # -(e + 2)/(e + 1), not (-e - 2)/(e + 1)
        sign, numerator = -1, tuple(dup_neg(list(numerator), ZZ))
    (top, top_factors), (bottom, bottom_factors) = _square_free(numerator), _square_free(denominator)
    canonical, form = sign * (top / bottom), FactoredForm(sign, top_factors, bottom_factors)
    if len(_FACTORS) >= _FACTORS_KEPT:
        _FACTORS.clear()
    _FACTORS[canonical] = form
    return canonical, form


# The factors of each closed form `_canonical` made, by the expression: the key's printer and
# answers.csv ask `factored_form` for them, which otherwise walks the expression back into
# coefficient lists and reduces them again (a gcd), as `_canonical`'s caller has just done.
# Measured 2026-12-02 (callgrind, 50 variants without TeX, all processes): without the kept factors 2.3% more.
_FACTORS: dict[sympy.Expr, FactoredForm] = {}
_FACTORS_KEPT = 1 << 16


@dataclass(frozen=True, slots=True)
class FactoredForm:
    """sign * numerator / denominator, each (integer coefficient, ((coefficients in e, power), ...))."""

    sign: int
    numerator: tuple[int, tuple[tuple[tuple[int, ...], int], ...]]
    denominator: tuple[int, tuple[tuple[tuple[int, ...], int], ...]]


@lru_cache(maxsize=1 << 16)  # asked by the LaTeX printer and by answers.csv for the same values
def factored_form(value: Any) -> FactoredForm | None:
    """The factors of a closed form in the canonical shape of a rational function of e; None for
    anything else (a number, e/2 + 1/2, a logarithm, or an expression not in canonical shape)."""
    known = _FACTORS.get(value) if isinstance(value, sympy.Basic) else None
    if known is not None:
        return known
    return _factors_of(value)


def _factors_of(value: Any) -> FactoredForm | None:
    """`factored_form` worked out from the expression itself."""
    pair = _as_fraction(value) if isinstance(value, sympy.Basic) else None
    if pair is None:
        return None
    numerator, denominator = _reduced(pair)
    if len(denominator) <= 1:
        return None
    canonical, form = _canonical(tuple(numerator), tuple(denominator))
    return form if canonical == value else None


# Measured 2026-12-02 (callgrind, 50 variants without TeX, all processes): without this cache 2.7% more.
@lru_cache(maxsize=1 << 16)  # a key's closed forms have few denominators: (e + 1)^2, e^2 + 1, ...
def _square_free(
    coefficients: tuple[int, ...]
) -> tuple[sympy.Expr, tuple[int, tuple[tuple[tuple[int, ...], int], ...]]]:
    """As `_sqf_in` for a polynomial in e given by its integer coefficients; and its factors."""
    if len(coefficients) <= 1:
        number = coefficients[0] if coefficients else 0
        return sympy.Integer(number), (number, ())
    coefficient, factors = dup_sqf_list(list(coefficients), ZZ)
    joined = [(functools.reduce(functools.partial(dup_mul, K=ZZ), (f for f, k in factors if k == m)), m)
              for m in sorted({k for _, k in factors})]
    product = sympy.Mul(*[_polynomial_expr(f) ** m for f, m in joined])
    return _keep_coeff(sympy.Integer(coefficient), product), (int(coefficient), tuple((tuple(f), m) for f, m in joined))


def _polynomial_expr(coefficients: list[int]) -> sympy.Expr:
    degree = len(coefficients) - 1
    return sympy.Add(*[c * sympy.E**(degree - k) for k, c in enumerate(coefficients) if c])


@lru_cache(maxsize=4)
def _fraction_field(generator: sympy.Expr) -> Any:
    from sympy.polys.fields import field

    return field([generator], sympy.ZZ)[0]


def _cancel_in(value: sympy.Expr, generator: sympy.Expr) -> sympy.Expr | None:
    """`sympy.cancel(value)` computed in the field Q(generator), or None if value is not in it.

    sympy.cancel reduces the expression tree with generic rewriting before it finds the gcd;
    building the reduced fraction directly in the rational function field is several times
    faster and gives the same pair (numerator, denominator): both are the unique reduced pair
    with integer coefficients and a positive leading coefficient below.
    """
    try:
        reduced = _fraction_field(generator).from_expr(value)
    except (ValueError, TypeError, sympy.PolynomialError, sympy.polys.polyerrors.CoercionFailed):
        return None
    return reduced.numer.as_expr() / reduced.denom.as_expr()


def _sqf_in(polynomial: sympy.Expr, generator: sympy.Expr) -> sympy.Expr:
    """`sympy.sqf(polynomial)` for a polynomial in `generator` with integer coefficients.

    sympy.sqf first runs `together` over the expression (most of its time, and a no-op for a
    polynomial); this takes the square-free factors straight from the polynomial and joins
    them as sympy.sqf does (factors of equal multiplicity multiplied together).
    """
    if polynomial.is_Number:
        return polynomial
    try:
        coefficient, factors = sympy.Poly(polynomial, generator, domain=sympy.ZZ).sqf_list()
    except (sympy.PolynomialError, sympy.polys.polyerrors.CoercionFailed):
        # Not integer coefficients: (e + 1)/2 comes out of sympy.fraction as e/2 + 1/2.
        return sympy.sqf(polynomial)
    # As sympy.sqf: the factors of one multiplicity multiplied out into one polynomial.
    joined = [(functools.reduce(operator.mul, (f for f, k in factors if k == m)), m) for m in {k for _, k in factors}]
    product = sympy.Mul(*[f.as_expr() ** m for f, m in joined])
    return _keep_coeff(sympy.sympify(coefficient), product)


_T = sympy.Symbol("t_e", positive=True)


def _common_e_base(value: sympy.Expr) -> tuple[dict[Any, Any], dict[Any, Any]]:
    """Substitutions exp(p/q) -> t^(pL/q) and back (t -> e^{1/L}), when some exponent is a fraction."""
    powers = [p for p in value.atoms(sympy.exp) if p.args[0].is_Rational]
    denominators = [int(p.args[0].q) for p in powers]
    if not powers or max(denominators) == 1 or len(powers) != len(value.atoms(sympy.exp)):
        return {}, {}
    lcm = math.lcm(*denominators)
    forward = {p: _T ** int(p.args[0] * lcm) for p in powers}
    return forward, {_T: sympy.exp(sympy.Rational(1, lcm))}


_E = sympy.Symbol("e", positive=True)


def _leading_negative(value: sympy.Expr) -> bool:
    """Whether a polynomial in e starts (highest power first, as printed) with a minus sign."""
    as_e = value.replace(sympy.exp, lambda a: _E**a).xreplace({sympy.E: _E})
    try:
        return bool(sympy.Poly(as_e, _E).LC() < 0)
    except (sympy.PolynomialError, TypeError):
        return bool(value.could_extract_minus_sign())


def tidy_array(array: np.ndarray) -> np.ndarray:
    """An exact array with every entry in the canonical shape used for answers (for display)."""
    return _substitute(np.asarray(array, dtype=object), {})


def solve(instance: Instance) -> Solution:
    """Compute every part's exact answer for one drawn instance.

    Raises:
        SolveError: a definition fails to evaluate (shapes that do not fit, division by zero).
    """
    question = instance.question
    redraws: dict[str, int] = {}
    if any(part.choice is not None for part in question.parts):
        instance, redraws = _distinct_choices(instance)
    dims = tuple(sorted(instance.dims.items()))

    def failed(e: ExpressionError) -> SolveError:
        return SolveError(f"{e} (question '{question.id}', variant {instance.variant}, seed {instance.seed}; "
                          f"values: {instance.described()})")

    values = Definitions(question.define, instance.env(), failed=failed)
    shared: dict[Any, Any] = {}  # subexpressions the parts' Jacobians (and the derived values shown) have in common
    try:
        substitution = _substitution(question, dims, instance)
        context = _Context(instance, dims, values, substitution, shared, redraws)
        parts = [_in_form(SOLVERS[part.kind](context, part)) for part in question.parts]
    except ExpressionError as e:
        raise failed(e) from e
    for answer in parts:
        for entry in answer.value.flat:
            problem = _not_real(entry)
            if problem:
                raise SolveError(
                    f"{answer.spec.where}: question '{question.id}' part '{answer.spec.id}' "
                    f"variant {instance.variant}: the answer is {problem} for these values "
                    f"(values: {instance.described()}); "
                    "add a constraint"
                )
    return Solution(instance, values, tuple(parts), DerivedValues(instance, dims, substitution, shared))


def _not_real(entry: Any) -> str | None:
    """Why an exact entry cannot be a key's answer (None if it can)."""
    entry = sympified(entry)
    if entry.has(*_UNDEFINED):
        return "undefined (division by zero?)"
    if entry.has(sympy.I):
        return "not a real number (a square root or logarithm of a negative number?)"
    return None


@dataclass(frozen=True, slots=True)
class _Context:
    """What every part of one variant is solved from."""

    instance: Instance
    dims: tuple[tuple[str, int], ...]
    values: Definitions
    substitution: dict[sympy.Symbol, Any]
    shared: dict[Any, Any]
    redraws: dict[str, int]  # per choice part, the draws redrawn for options that were not all different


def _order_guard(context: _Context, part: PartSpec, shape: tuple[int, ...]) -> None:
    """Refuse an answer a key cannot show: of order above `MAX_ORDER`, or too many entries."""
    question, instance = context.instance.question, context.instance
    if len(shape) > MAX_ORDER:
        raise SolveError(
            f"{part.where}: question '{question.id}' part '{part.id}': "
            f"the answer would have order {len(shape)} (shape {list(shape)}); "
            f"a key can show at most order {MAX_ORDER}"
        )
    if math.prod(shape) > MAX_ANSWER_ENTRIES:
        raise SolveError(
            f"{part.where}: question '{question.id}' part '{part.id}': the answer would have "
            f"{math.prod(shape)} entries (shape {list(shape)}, variant {instance.variant}); "
            f"a key shows at most {MAX_ANSWER_ENTRIES}: lower the dimensions"
        )


def _substituted(context: _Context, part: PartSpec, array: np.ndarray) -> np.ndarray:
    """The numbers put into a derivative over symbols (a value too large to write stops the build)."""
    instance = context.instance
    try:
        return _substitute(array, context.substitution, context.shared)
    except _TooLarge as e:
        raise SolveError(f"{part.where}: question '{instance.question.id}' part '{part.id}': {e} "
                         f"(variant {instance.variant}, seed {instance.seed}; "
                         f"values: {instance.described()})") from e


def _solve_value(context: _Context, part: PartSpec) -> PartAnswer:
    """A definition's exact value (a formula where it holds symbols)."""
    out_shape = context.values[part.of].shape
    _order_guard(context, part, out_shape)
    return PartAnswer(part, _substitute(context.values[part.of], {}), out_shape, ())


def _solve_jacobian(context: _Context, part: PartSpec) -> PartAnswer:
    """The Jacobian with respect to one whole parameter, by reverse accumulation over symbols."""
    assert part.wrt is not None
    question, dims, instance = context.instance.question, context.dims, context.instance
    # A derivative's shape comes from the symbolic definitions (cached per dimensions):
    # the exact value is not needed for it.
    out_shape = np.shape(_symbolic(question, dims)[1][part.of])
    _order_guard(context, part, out_shape + instance.params[part.wrt].shape)
    jac = _jacobian(question, dims, part.of, part.wrt)
    form = derive_index_form(question, part.id)
    return PartAnswer(part, _substituted(context, part, jac), out_shape, instance.params[part.wrt].shape, form)


def _solve_derivative(context: _Context, part: PartSpec) -> PartAnswer:
    """A derivative with respect to a list of variables (second and mixed derivatives, Hessians, one
    entry of a parameter, a symbol): `sympy.diff` once per variable, over symbols, then the numbers.

    Its shape is the output's, then each variable's in turn (an entry or a symbol adds none)."""
    question, dims = context.instance.question, context.dims
    out_shape = np.shape(_symbolic(question, dims)[1][part.of])
    derivative = _derivative(question, dims, part.of, part.derivative, part.where)
    _order_guard(context, part, derivative.shape)
    return PartAnswer(part, _substituted(context, part, derivative), out_shape, derivative.shape[len(out_shape):])


# The form a formula answer is shown in. (The check never trusts these: it compares the formula
# with the definitions at random points in floats.)
FORMS = {"expand": sympy.expand, "factor": sympy.factor, "simplify": sympy.simplify}


def _in_form(answer: PartAnswer) -> PartAnswer:
    """The answer in the form its part asks for (`form:`), entry by entry."""
    if answer.spec.form is None:
        return answer
    rewrite = FORMS[answer.spec.form]
    value = np.empty(answer.value.shape, dtype=object)
    for index in np.ndindex(value.shape):
        value[index] = rewrite(sympified(answer.value[index]))
    return PartAnswer(answer.spec, value, answer.out_shape, answer.in_shape, answer.index_form)


def _named(context: _Context, name: str) -> np.ndarray:
    """A definition's or a parameter's exact value."""
    if name in dict(context.instance.question.define):
        return np.asarray(context.values[name], dtype=object)
    return np.asarray(context.instance.env()[name], dtype=object)


def _square_matrix(context: _Context, part: PartSpec) -> sympy.Matrix:
    value = _named(context, part.of)
    if value.ndim != 2 or value.shape[0] != value.shape[1]:
        raise SolveError(f"{part.where}: question '{context.instance.question.id}' part '{part.id}': find: "
                         f"{part.find} needs a square matrix, but '{part.of}' has shape {list(value.shape)}")
    return sympy.Matrix(value.tolist())


def _failed(context: _Context, part: PartSpec, why: str) -> SolveError:
    instance = context.instance
    return SolveError(f"{part.where}: question '{instance.question.id}' part '{part.id}' variant {instance.variant}: "
                      f"{why}")


def _real_sorted(values: list[sympy.Expr]) -> list[sympy.Expr]:
    return sorted(values, key=lambda v: float(sympy.N(v, 30)))


def _eigen(context: _Context, part: PartSpec, matrix: sympy.Matrix) -> list[tuple[sympy.Expr, sympy.Matrix]]:
    """(eigenvalue, eigenvector) pairs, ascending, each vector with exact entries; refused where
    an eigenvalue is not real or a repeated one lacks a full set of eigenvectors."""
    pairs: list[tuple[sympy.Expr, sympy.Matrix]] = []
    for value, multiplicity, vectors in matrix.eigenvects():
        if not value.is_real:
            raise _failed(context, part, f"'{part.of}' has the eigenvalue {value}, which is not real; a symmetric "
                                         "matrix has real eigenvalues")
        if len(vectors) != multiplicity:
            raise _failed(context, part, f"'{part.of}' is not diagonalisable (eigenvalue {value})")
        pairs.extend((value, v) for v in vectors)
    return sorted(pairs, key=lambda pair: float(sympy.N(pair[0], 30)))


def _solve_linalg(context: _Context, part: PartSpec) -> PartAnswer:
    """A square matrix's determinant, inverse, rank, eigenvalues (real, ascending) or eigenvectors
    (the columns, in the eigenvalues' order, each scaled so that its last nonzero entry is 1)."""
    matrix = _square_matrix(context, part)
    if part.find == "determinant":
        value = np.asarray(matrix.det(), dtype=object)
    elif part.find == "rank":
        value = np.asarray(sympy.Integer(matrix.rank()), dtype=object)
    elif part.find == "inverse":
        if matrix.det() == 0:
            raise _failed(context, part, f"'{part.of}' is singular (determinant 0); add the constraint "
                                         f"det({part.of}) != 0")
        value = np.array(matrix.inv().tolist(), dtype=object)
    else:
        pairs = _eigen(context, part, matrix)
        if part.find == "eigenvalues":
            value = np.array([v for v, _ in pairs], dtype=object)
        else:
            columns = [v / next(e for e in reversed(list(v)) if e != 0) for _, v in pairs]
            value = np.array(sympy.Matrix.hstack(*columns).tolist(), dtype=object)
    value = _substitute(value, {})
    return PartAnswer(part, value, value.shape, ())


def _solve_roots(context: _Context, part: PartSpec) -> PartAnswer:
    """The real roots of a formula in one symbol, ascending, each once (a vector)."""
    formula = sympified(_named(context, part.of)[()])
    (x,) = formula.free_symbols
    try:
        if formula.is_polynomial(x):
            roots = list(dict.fromkeys(sympy.real_roots(sympy.Poly(formula, x))))
        else:
            roots = [r for r in sympy.solve(formula, x) if r.is_real]
    except (NotImplementedError, sympy.PolynomialError) as e:
        raise _failed(context, part, f"SymPy cannot find the roots of {formula} exactly ({e})") from None
    if not roots:
        raise _failed(context, part, f"{formula} has no real roots; add a constraint")
    value = _substitute(np.array(_real_sorted(roots), dtype=object), {})
    return PartAnswer(part, value, value.shape, ())


def _solve_system(context: _Context, part: PartSpec) -> PartAnswer:
    """The solution x of `of` x = `rhs` (a square, nonsingular matrix)."""
    assert part.rhs is not None
    matrix = _square_matrix(context, part)
    right = _named(context, part.rhs)
    if right.ndim != 1 or right.shape[0] != matrix.rows:
        raise _failed(context, part, f"rhs '{part.rhs}' must be a vector of {matrix.rows}, got shape "
                                     f"{list(right.shape)}")
    if matrix.det() == 0:
        raise _failed(context, part, f"'{part.of}' is singular; add the constraint det({part.of}) != 0")
    solution = matrix.LUsolve(sympy.Matrix(right.tolist()))
    value = _substitute(np.array(list(solution), dtype=object), {})
    return PartAnswer(part, value, value.shape, ())


def _solve_integral(context: _Context, part: PartSpec) -> PartAnswer:
    """An antiderivative (no constant added), or with limits a definite integral, by SymPy's
    `integrate`; refused where SymPy finds no closed form (an unevaluated Integral remains)."""
    assert part.integrate is not None
    formula = _named(context, part.of)
    if formula.ndim != 0:
        raise _failed(context, part, f"an integral needs a scalar formula; '{part.of}' has shape {list(formula.shape)}")
    x = sympy.Symbol(part.integrate, real=True)
    integrand = sympified(formula[()])
    if part.limits:
        env = collections.ChainMap(dict(context.values.items()), context.instance.env())
        low, high = (sympified(evaluate(limit, env, EXACT)[()]) for limit in part.limits)
        result = sympy.integrate(integrand, (x, low, high))
    else:
        result = sympy.integrate(integrand, x)
    if result.has(sympy.Integral):
        raise _failed(context, part, f"SymPy cannot integrate {integrand} in closed form; choose an integrand with "
                                     "an elementary antiderivative")
    value = _substitute(np.asarray(result, dtype=object), {})
    return PartAnswer(part, value, (), ())


def _solve_choice(context: _Context, part: PartSpec) -> PartAnswer:
    """A multiple-choice part (`solve_choice`)."""
    return solve_choice(context.instance, part, context.redraws.get(part.id, 0))


SOLVERS = {
    "choice": _solve_choice,
    "value": _solve_value, "jacobian": _solve_jacobian, "derivative": _solve_derivative, "linalg": _solve_linalg,
    "roots": _solve_roots, "system": _solve_system, "integral": _solve_integral,
}


def variable_array(question: QuestionSpec, dims: tuple[tuple[str, int], ...], variable: WrtSpec,
                   where: object = None) -> np.ndarray:
    """The SymPy symbols a derivative is taken by: a parameter's (all, or one entry), or the symbol."""
    if variable.symbol:
        return np.asarray(sympy.Symbol(variable.name, real=True), dtype=object)
    array = symbol_arrays(question, dims)[variable.name]
    if variable.index is None:
        return array
    if any(not 0 <= i < n for i, n in zip(variable.index, array.shape, strict=True)):
        raise SolveError(f"{where}: question '{question.id}': {variable.text} is outside '{variable.name}', "
                         f"which has shape {list(array.shape)} (indices count from 0)")
    return np.asarray(array[variable.index], dtype=object)


@lru_cache(maxsize=256)
def _derivative(question: QuestionSpec, dims: tuple[tuple[str, int], ...], of: str,
                variables: tuple[WrtSpec, ...], where: object) -> np.ndarray:
    _, env = _symbolic(question, dims)
    out = np.asarray(env[of], dtype=object)
    for variable in variables:
        inputs = variable_array(question, dims, variable, where)
        out = _jacobian_by_diff(out, inputs)
    return out


def _substitution(
    question: QuestionSpec, dims: tuple[tuple[str, int], ...], instance: Instance
) -> dict[sympy.Symbol, Any]:
    out: dict[sympy.Symbol, Any] = {}
    for name, symbols in _flat_symbols(question, dims):
        out.update(zip(symbols, instance.params[name].flat, strict=True))
    return out


@lru_cache(maxsize=256)
def _flat_symbols(
    question: QuestionSpec, dims: tuple[tuple[str, int], ...]
) -> tuple[tuple[str, tuple[sympy.Symbol, ...]], ...]:
    """Each parameter's symbols in C order, as `.flat` gives its values (once per dimensions).

    (The same symbols as `_symbolic`'s, which SymPy makes equal by name and assumptions, without
    evaluating the definitions over them: a question that asks for values only never needs that.)"""
    return tuple((name, tuple(array.flat)) for name, array in symbol_arrays(question, dims).items())


def to_plain(array: np.ndarray) -> Any:
    """Exact array -> nested lists of JSON numbers: ints where integer, floats otherwise."""
    array = np.asarray(array, dtype=object)
    if array.ndim == 0:
        return _plain(array[()])
    return _plain_list(array.tolist())  # (nested lists: cheaper to walk than numpy's views)


def _plain_list(items: list[Any]) -> list[Any]:
    return [_plain_list(item) if isinstance(item, list) else _plain(item) for item in items]


def _plain(value: Any) -> int | float | str:
    return plain_number(sympified(value))


@lru_cache(maxsize=1 << 16)
def plain_number(value: sympy.Expr) -> int | float | str:
    """An exact number for JSON and CSV: an int if integer, else the float of its 30-digit value.

    Cached, and shared by manifest.json and answers.csv (the same entries, evaluated once).
    A formula (free symbols) is its SymPy text, e.g. `2*x*cos(x) + sin(x)`, which sympify reads back."""
    if value.free_symbols:
        return sympy.sstr(value)
    if value.is_Integer:
        return int(value)
    if value.is_Rational:
        return int(value.p) / int(value.q)  # correctly rounded, as the 30-digit value's float
    form = factored_form(value)
    if form is not None and (number := float_in_e(form.sign, form.numerator, form.denominator)) is not None:
        return number
    return float(sympy.N(value, 30))


# --- choice parts -----------------------------------------------------------------------------


def _variant_index(label: str) -> int:
    """A -> 0, Z -> 25, AA -> 26 (the inverse of `variant_label`)."""
    index = 0
    for letter in label:
        index = index * 26 + ord(letter) - ord("A") + 1
    return index - 1


class _Clash(Exception):
    """Two options of a choice part are equal in this draw."""

    def __init__(self, part: str, message: str) -> None:
        super().__init__(message)
        self.part, self.message = part, message


def _distinct_choices(instance: Instance) -> tuple[Instance, dict[str, int]]:
    """The instance, or a redraw of its variant, in which every choice part's options differ and
    one at least is correct, and for each part that refused draws, how many.

    Raises:
        SolveError: no draw in `MAX_CHOICE_REDRAWS` has distinct options (names the two that were equal).
    """
    question = instance.question
    index = _variant_index(instance.variant)
    refused: dict[str, int] = {}
    for redraw in range(MAX_CHOICE_REDRAWS + 1):
        try:
            for part in question.parts:
                if part.choice is not None:
                    _choice_options(instance, part)
            return instance, refused
        except _Clash as clash:
            last = clash.message
            refused[clash.part] = refused.get(clash.part, 0) + 1
        except ExpressionError as e:
            raise SolveError(f"{e} (question '{question.id}', variant {instance.variant}, seed {instance.seed})") from e
        instance = sample(question, instance.seed, index, CHOICE_REDRAW_BASE + redraw)
    raise SolveError(f"question '{question.id}', variant {instance.variant} (seed {instance.seed}): {last} in each of "
                     f"{MAX_CHOICE_REDRAWS + 1} draws; make the options differ (another distractor, a constraint)")


def solve_choice(instance: Instance, part: PartSpec, redraws: int = 0) -> PartAnswer:
    """A choice part's options, lettered in this variant's order (shuffled from the question's own
    random stream, per variant and part), with the exact answer of its `of` when it has one.

    Raises:
        SolveError: two options are equal (`solve` redraws the variant before it gets here).
    """
    try:
        reference, out_shape, in_shape, options = _choice_options(instance, part)
    except _Clash as clash:
        raise SolveError(f"question '{instance.question.id}', variant {instance.variant}: {clash.message}") from None
    assert part.choice is not None
    order = list(range(len(options)))
    if part.choice.shuffle:
        rng = question_rng(instance.seed, _variant_index(instance.variant), f"{instance.question.id}#{part.id}")
        order = [int(i) for i in rng.permutation(len(options))]
    shown = tuple(
        ChoiceOptionAnswer(chr(ord("A") + k), *options[i]) for k, i in enumerate(order)
    )
    value = reference if reference is not None else np.empty((0,), dtype=object)
    return PartAnswer(part, value, out_shape, in_shape, None, ChoiceAnswer(shown, redraws))


_Option = tuple[str, np.ndarray | None, str | None, bool]  # source, value, text, correct


_Options = tuple[np.ndarray | None, tuple[int, ...], tuple[int, ...], list[_Option]]


def _choice_options(instance: Instance, part: PartSpec) -> _Options:
    """The part's reference answer (None without `of`), its output and input shapes, and its
    options in the written order: the answer, the author's options, then the misconceptions.

    Raises:
        _Clash: two options are equal, or none is correct.
    """
    assert part.choice is not None
    question = instance.question
    dims = tuple(sorted(instance.dims.items()))
    env = instance.env()
    options: list[_Option] = []
    reference, out_shape, in_shape = None, (), ()
    if part.of:
        values = Definitions(question.define, env)
        if part.wrt:
            out_shape = np.shape(_symbolic(question, dims)[1][part.of])
            in_shape = instance.params[part.wrt].shape
            jacobian = _jacobian(question, dims, part.of, part.wrt)
            reference = _substitute(jacobian, _substitution(question, dims, instance))
        else:
            reference = _substitute(values[part.of], {})
            out_shape = reference.shape
        options.append(("answer", reference, None, True))
    for i, option in enumerate(part.choice.options):
        options.append((f"options[{i}]", _option_value(option, env), option.text, _option_correct(option, env)))
    for name in part.choice.misconceptions:
        assert reference is not None and part.wrt is not None
        options.append((name, misconception(name, instance, part, reference, out_shape, in_shape), None, False))
    if not any(option[3] for option in options):
        raise _Clash(part.id, f"part '{part.id}': no option is correct")
    for a in range(len(options)):
        for b in range(a):
            if _same_option(options[a], options[b]):
                raise _Clash(part.id, f"part '{part.id}': option {options[a][0]} equals option {options[b][0]}")
    return reference, out_shape, in_shape, options


def _option_value(option: ChoiceOption, env: Mapping[str, Any]) -> np.ndarray | None:
    return None if option.value is None else tidy_array(evaluate(option.value, env, EXACT))


def _option_correct(option: ChoiceOption, env: Mapping[str, Any]) -> bool:
    if isinstance(option.correct, bool):
        return option.correct
    return bool(np.all(evaluate(option.correct, env, EXACT)))


def _same_option(a: _Option, b: _Option) -> bool:
    """Whether two options would look alike to a student: equal texts, or equal values exactly."""
    if a[1] is None or b[1] is None:
        return a[1] is None and b[1] is None and a[2] == b[2]
    if a[1].shape != b[1].shape:
        return False
    pairs = zip(a[1].flat, b[1].flat, strict=True)
    return all(x == y or sympy.simplify(sympified(x) - sympified(y)) == 0 for x, y in pairs)


def misconception(name: str, instance: Instance, part: PartSpec, answer: np.ndarray, out_shape: tuple[int, ...],
                  in_shape: tuple[int, ...]) -> np.ndarray:
    """A ready-made wrong derivative, exact, for a part asking for J = d of / d wrt (shape A + B):

    - `transposed`: J with its axes reordered B + A, entry [b..., a...] = J[a..., b...] (the
      Jacobian's transpose for a vector function of a vector); refused when A or B is empty,
      where it would be J itself.
    - `sign`: -J.
    - `inner_dropped`: every entry differentiated by the chain rule without its inner derivative:
      a function of an argument u that depends on the input, g(u), gives g'(u) instead of
      g'(u) du/dx, and a power u^n gives n u^(n-1) (sums and products by their usual rules);
      taken on the symbolic definition over the parameters' symbols, the numbers put in after.

    Raises:
        SolveError: `transposed` for a scalar output or input.
    """
    if name == "sign":
        return tidy_array(np.vectorize(lambda v: -sympified(v), otypes=[object])(answer))
    if name == "transposed":
        if not out_shape or not in_shape:
            raise SolveError(f"{part.where}: question '{instance.question.id}' part '{part.id}': misconception "
                             f"'transposed' needs a non-scalar output and input (shapes {list(out_shape)} and "
                             f"{list(in_shape)}): it would be the answer itself")
        axes = tuple(range(len(out_shape), len(out_shape) + len(in_shape))) + tuple(range(len(out_shape)))
        return np.transpose(answer, axes).copy()
    assert name == "inner_dropped" and part.wrt is not None
    question = instance.question
    dims = tuple(sorted(instance.dims.items()))
    symbols, env = _symbolic(question, dims)
    out = np.asarray(env[part.of], dtype=object)
    inputs = symbols[part.wrt]
    dropped = np.empty(out.shape + inputs.shape, dtype=object)
    for a in np.ndindex(out.shape):
        for b in np.ndindex(inputs.shape):
            dropped[a + b] = _derivative_without_inner(sympified(out[a]), inputs[b])
    return _substitute(dropped, _substitution(question, dims, instance))


def _derivative_without_inner(e: sympy.Expr, x: sympy.Symbol) -> sympy.Expr:
    """d e / d x by the chain rule with every inner derivative left out (see `misconception`)."""
    if x not in e.free_symbols:
        return sympy.Integer(0)
    if e == x:
        return sympy.Integer(1)
    if isinstance(e, sympy.Add):
        return sympy.Add(*(_derivative_without_inner(arg, x) for arg in e.args))
    if isinstance(e, sympy.Mul):
        args = e.args
        return sympy.Add(*(
            _derivative_without_inner(args[i], x) * sympy.Mul(*(args[:i] + args[i + 1:])) for i in range(len(args))
        ))
    if isinstance(e, sympy.Pow) and x not in e.exp.free_symbols:
        return e.exp * e.base ** (e.exp - 1)
    if isinstance(e, sympy.Pow) and x not in e.base.free_symbols:
        return e * sympy.log(e.base)
    if isinstance(e, sympy.Function) and len(e.args) == 1:
        return e.fdiff(1)
    return sympy.diff(e, x)  # (anything else: its derivative, inner derivatives and all)

"""Stage 2, sample: draw each question's dimensions and parameters for one variant.

Every draw goes through its own `numpy.random.Generator`, seeded by
`SeedSequence([build_seed, variant_index, *question_key])` where `question_key` is the first
16 bytes of SHA-256 of the question id as four 32-bit words. A question's numbers therefore
depend only on (seed, variant, id): adding, removing or reordering other questions, or
listing the question in another worksheet, never changes them. No global seeding anywhere.

Distinct variants: `sample_variants` draws a question for many variants and redraws a variant
whose dimensions and parameters repeat an earlier variant's, with `redraw` = 1, 2, ... appended
to the seed sequence. Variant k therefore depends only on the variants before it, and variant A
is the same whatever the number of variants. When the parameter space is smaller than the
number of variants asked for, variants repeat and a one-line note says so.
"""

from __future__ import annotations

import hashlib
import itertools
from collections import ChainMap
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from fractions import Fraction
from functools import lru_cache
from typing import Any

import numpy as np
import sympy

from generator.errors import ExpressionError, SamplingError
from generator.spec.assemble import variant_label
from generator.spec.expr import EXACT, Expr, evaluate, inputs_of, symbol_values
from generator.spec.model import ParameterSpec, QuestionSpec, entry_values

__all__ = [
    "ENUMERATE_LIMIT",
    "MAX_REDRAWS",
    "MAX_TRIES",
    "Definitions",
    "Instance",
    "count_variants",
    "describe_values",
    "question_rng",
    "sample",
    "sample_variants",
]

MAX_TRIES = 1000
MAX_REDRAWS = 100
ENUMERATE_LIMIT = 2000


@dataclass(frozen=True, slots=True)
class Instance:
    """One drawn variant of a question: exact parameter values (object arrays of SymPy numbers).

    `derived` holds the exact derived values (`Definitions`: those the constraints use are
    computed while drawing, the others when first read)."""

    question: QuestionSpec
    seed: int
    variant: str
    dims: dict[str, int]
    params: dict[str, np.ndarray]
    derived: Mapping[str, np.ndarray]
    tries: int

    def described(self) -> str:
        """The variant's numbers for a message (`describe_values`)."""
        return describe_values(self.dims, self.params)

    def env(self) -> ChainMap[str, Any]:
        """Every named value (dimensions, parameters, derived) for expression evaluation; a
        derived value is evaluated only if an expression reads it."""
        # ChainMap writes to its first map only; typeshed asks for every map to be mutable.
        return ChainMap({}, self.derived, self.params, _dimension_values(self.dims),  # type: ignore[arg-type]
                        _symbols(self.question))


MAX_DESCRIPTION = 240


def describe_values(dims: Mapping[str, int], params: Mapping[str, np.ndarray]) -> str:
    """A variant's numbers for a message: `d = 2, x = [1, -2], W = [[1, 0], [2, 1]]` (shortened)."""
    pieces = [f"{name} = {value}" for name, value in dims.items()]
    for name, value in params.items():
        array = np.asarray(value, dtype=object)
        shown = str(array[()]) if array.ndim == 0 else str(array.tolist()).replace("'", "")
        pieces.append(f"{name} = {shown}")
    text = ", ".join(pieces)
    return text if len(text) <= MAX_DESCRIPTION else text[: MAX_DESCRIPTION - 3] + "..."


def _dimension_values(dims: Mapping[str, int]) -> dict[str, np.ndarray]:
    return {k: np.asarray(sympy.Integer(v), dtype=object) for k, v in dims.items()}


@lru_cache(maxsize=256)
def _symbols(question: QuestionSpec) -> dict[str, np.ndarray]:
    """The question's free symbols as SymPy symbols (a definition that holds one is a formula)."""
    return symbol_values(question.symbols, EXACT)


class Definitions(Mapping[str, np.ndarray]):
    """Named definitions (a question's `derived` or `define`), each evaluated exactly the first
    time it is read, in order up to it (a definition may use the earlier ones).

    Exact values cost SymPy time (a sigmoid of every hidden unit, a loss that is a sum of squared
    fractions in e), and many are never read: a key shows derivatives, which come from the
    symbolic Jacobian, and the derived values it shows are made the same way (generator.answers.solve).
    `failed` turns an evaluation error into the error to raise (it says which variant).
    """

    def __init__(self, definitions: tuple[tuple[str, Expr], ...], base: Mapping[str, Any],
                 known: Mapping[str, np.ndarray] | None = None,
                 failed: Callable[[ExpressionError], Exception] | None = None):
        self._definitions = definitions
        self._names = [name for name, _ in definitions]
        self._values: dict[str, np.ndarray] = {}
        self._env = ChainMap(self._values, base)  # type: ignore[arg-type]  # (only the first map is written)
        self._known = dict(known or {})
        self._failed = failed

    def __getitem__(self, name: str) -> np.ndarray:
        if name not in self._values:
            if name not in self._names:
                raise KeyError(name)
            for other, expr in self._definitions[len(self._values): self._names.index(name) + 1]:
                if other in self._known:
                    self._values[other] = self._known[other]
                    continue
                try:
                    self._values[other] = evaluate(expr, self._env, EXACT)
                except ExpressionError as e:
                    raise (self._failed(e) if self._failed is not None else e) from e
        return self._values[name]

    def __contains__(self, name: object) -> bool:  # (Mapping's would evaluate the definition)
        return name in self._names

    def __iter__(self) -> Iterator[str]:
        return iter(self._names)

    def __len__(self) -> int:
        return len(self._names)


def question_rng(seed: int, variant_index: int, question_id: str, redraw: int = 0) -> np.random.Generator:
    """The generator for one (build seed, variant, question[, redraw]); see the module docstring."""
    digest = hashlib.sha256(question_id.encode("utf-8")).digest()
    words = [int.from_bytes(digest[i : i + 4], "little") for i in range(0, 16, 4)]
    extra = [redraw] if redraw else []
    return np.random.default_rng(np.random.SeedSequence([seed, variant_index, *words, *extra]))


def _choices(param: ParameterSpec) -> tuple[Fraction, ...]:
    return entry_values(param)  # (exact decimals and fractions; cached there)


@lru_cache(maxsize=1024)
def _sympy_choices(param: ParameterSpec) -> np.ndarray:
    """The values an entry can take, as a 1-d object array (a draw indexes it with its picks)."""
    choices = np.empty(len(_choices(param)), dtype=object)
    choices[:] = [_to_sympy(v) for v in _choices(param)]
    return choices


def _to_sympy(value: Fraction) -> sympy.Rational:
    return sympy.Rational(value.numerator, value.denominator)


def _draw(param: ParameterSpec, dims: dict[str, int], rng: np.random.Generator) -> np.ndarray:
    shape = tuple(dims[s] if isinstance(s, str) else s for s in param.shape)
    if param.onehot:
        out = np.empty(shape, dtype=object)
        out[...] = sympy.Integer(0)
        out[int(rng.integers(shape[0]))] = sympy.Integer(1)
        return out
    choices = _sympy_choices(param)
    picks = rng.integers(len(choices), size=shape)
    return np.asarray(choices[picks], dtype=object)  # (indexed in C; a scalar comes out 0-d)


def _check(
    question: QuestionSpec, dims: dict[str, int], params: dict[str, np.ndarray]
) -> tuple[Definitions, list[int]]:
    """The derived values of a draw, and the indices of the constraints it fails.

    Only the derived values the constraints use are computed to check them: most draws of a
    constrained question are rejected, and the other derived values (a sigmoid of every hidden
    unit, say) cost more in exact arithmetic than the check itself. The others are left to be
    evaluated when read (`Definitions`).
    """
    dimensions = _dimension_values(dims)
    if question.symbols:
        dimensions.update(_symbols(question))
    env: dict[str, Any] = {**dimensions, **params}
    derived = {}
    needed = _constraint_inputs(question)
    for name, expr in question.derived:
        if name in needed:
            derived[name] = env[name] = evaluate(expr, env, EXACT)
    failed = [i for i, c in enumerate(question.constraints) if not bool(np.all(evaluate(c, env, EXACT)))]

    def located(e: ExpressionError) -> Exception:  # (a derived value read later, e.g. by a template)
        return type(e)(f"{e} (question '{question.id}'; values: {describe_values(dims, params)})")

    return Definitions(question.derived, ChainMap(params, dimensions), derived, failed=located), failed


@lru_cache(maxsize=256)
def _constraint_inputs(question: QuestionSpec) -> frozenset[str]:
    """The derived names the constraints use, directly or through other derived values."""
    return inputs_of(question.derived, (name for c in question.constraints for name in c.names))


def sample(question: QuestionSpec, seed: int, variant_index: int, redraw: int = 0) -> Instance:
    """Draw one variant, redrawing everything until all constraints hold.

    `redraw` > 0 gives another, equally deterministic draw for the same variant (used by
    `sample_variants` to avoid repeating an earlier variant).

    Raises:
        SamplingError: no draw in `MAX_TRIES` met the constraints; names the one failing most.
    """
    rng = question_rng(seed, variant_index, question.id, redraw)
    failures = [0] * len(question.constraints)
    for attempt in range(1, MAX_TRIES + 1):
        dims = {name: int(rng.integers(low, high + 1)) for name, low, high in question.dimensions}
        params = {p.name: _draw(p, dims, rng) for p in question.parameters}
        try:
            derived, failed = _check(question, dims, params)
        except ExpressionError as e:  # (a derived value or constraint outside its domain for these numbers)
            values = describe_values(dims, params)
            raise type(e)(f"{e} (question '{question.id}', seed {seed}; values: {values})") from e
        if not failed:
            return Instance(question, seed, variant_label(variant_index), dims, params, derived, attempt)
        for i in failed:
            failures[i] += 1
    worst = max(range(len(failures)), key=failures.__getitem__)
    constraint = question.constraints[worst]
    raise SamplingError(
        f"{constraint.where}: constraints[{worst}]: '{constraint.text}' could not be met in {MAX_TRIES} draws "
        f"(question '{question.id}', seed {seed}); widen the entry ranges or relax the constraint"
    )


def _shape(param: ParameterSpec, dims: dict[str, int]) -> tuple[int, ...]:
    return tuple(dims[s] if isinstance(s, str) else s for s in param.shape)


def _entry_choices(param: ParameterSpec, shape: tuple[int, ...]) -> int:
    """How many distinct values the parameter can take for this shape (ignoring constraints)."""
    if param.onehot:
        return shape[0]
    return len(_choices(param)) ** int(np.prod(shape, dtype=object))


def _dimension_choices(question: QuestionSpec) -> list[dict[str, int]]:
    return [dict(zip([n for n, _, _ in question.dimensions], combo, strict=True)) for combo in
            itertools.product(*(range(low, high + 1) for _, low, high in question.dimensions))]


@lru_cache(maxsize=256)
def count_variants(question: QuestionSpec) -> tuple[int, bool]:
    """The number of distinct draws of a question, and whether that number is exact.

    Without constraints the count is exact: for each choice of dimensions, the product of each
    parameter's value choices. With constraints, spaces of at most `ENUMERATE_LIMIT` draws are
    enumerated and checked (exact); larger ones report the unconstrained count, an upper bound.
    """
    total = 0
    for dims in _dimension_choices(question):
        size = 1
        for param in question.parameters:
            size *= _entry_choices(param, _shape(param, dims))
        total += size
    if not question.constraints:
        return total, True
    if total > ENUMERATE_LIMIT:
        return total, False
    admissible = 0
    for dims in _dimension_choices(question):
        for params in itertools.product(*(_every_value(p, _shape(p, dims)) for p in question.parameters)):
            _, failed = _check(question, dims, dict(zip(question.parameter_names, params, strict=True)))
            admissible += not failed
    return admissible, True


def _every_value(param: ParameterSpec, shape: tuple[int, ...]) -> list[np.ndarray]:
    """Every value a parameter can take (only called for small spaces)."""
    out = []
    if param.onehot:
        for hot in range(shape[0]):
            array = np.full(shape, sympy.Integer(0), dtype=object)
            array[hot] = sympy.Integer(1)
            out.append(array)
        return out
    choices = [_to_sympy(v) for v in _choices(param)]
    for combo in itertools.product(choices, repeat=int(np.prod(shape, dtype=object))):
        out.append(np.array(combo, dtype=object).reshape(shape))
    return out


def _fingerprint(instance: Instance) -> tuple[Any, ...]:
    """What makes two draws the same variant: dimensions and every parameter entry."""
    return (
        tuple(sorted(instance.dims.items())),
        tuple((name, value.shape, tuple(value.flat)) for name, value in instance.params.items()),
    )


def sample_variants(
    question: QuestionSpec, seed: int, variant_indices: Sequence[int]
) -> tuple[dict[int, Instance], str | None]:
    """Draw the question for each variant index (in increasing order), avoiding repeats.

    Returns the instances by variant index, and a one-line note when the parameter space is too
    small for every variant to differ (later variants then repeat earlier ones).

    Raises:
        SamplingError: a draw cannot meet the question's constraints.
    """
    seen: set[tuple[Any, ...]] = set()
    out: dict[int, Instance] = {}
    exhausted = False
    for index in sorted(variant_indices):
        first = instance = sample(question, seed, index)
        redraw = 0
        while _fingerprint(instance) in seen and not exhausted:
            redraw += 1
            count, exact = count_variants(question)  # only once a draw repeats: counting can take long
            if (exact and len(seen) >= count) or redraw > MAX_REDRAWS:
                exhausted = True
                instance = first
                break
            instance = sample(question, seed, index, redraw)
        seen.add(_fingerprint(instance))
        out[index] = instance
    asked = len(out)
    if len(seen) >= asked:
        return out, None
    count, exact = count_variants(question)
    if exact:
        return out, f"{question.id}: only {count} distinct variants exist, {asked} asked"
    return out, (
        f"{question.id}: found only {len(seen)} distinct variants ({MAX_REDRAWS} redraws found no new one), "
        f"{asked} asked"
    )

"""Stage 2, sample: draw each question's dimensions and parameters for one variant.

Every draw goes through its own `numpy.random.Generator`, seeded by
`SeedSequence([build_seed, variant_index, *question_key])` where `question_key` is the first
16 bytes of SHA-256 of the question id as four 32-bit words. A question's numbers therefore
depend only on (seed, variant, id): adding, removing or reordering other questions, or
listing the question in another worksheet, never changes them. No global seeding anywhere.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

import numpy as np
import sympy

from generator.errors import SamplingError
from generator.expr import EXACT, evaluate
from generator.spec import ParameterSpec, QuestionSpec

__all__ = ["Instance", "MAX_TRIES", "sample", "variant_label", "question_rng"]

MAX_TRIES = 1000


@dataclass(frozen=True, slots=True)
class Instance:
    """One drawn variant of a question: exact parameter values (object arrays of SymPy numbers)."""

    question: QuestionSpec
    seed: int
    variant: str
    dims: dict[str, int]
    params: dict[str, np.ndarray]
    derived: dict[str, np.ndarray]
    tries: int

    def env(self) -> dict[str, Any]:
        """Every named value (dimensions, parameters, derived) for expression evaluation."""
        return {**{k: np.asarray(sympy.Integer(v), dtype=object) for k, v in self.dims.items()}, **self.params, **self.derived}


def variant_label(index: int) -> str:
    """0 -> A, 25 -> Z, 26 -> AA, 27 -> AB, ... (spreadsheet column names)."""
    label = ""
    index += 1
    while index:
        index, rest = divmod(index - 1, 26)
        label = chr(ord("A") + rest) + label
    return label


def question_rng(seed: int, variant_index: int, question_id: str) -> np.random.Generator:
    """The generator for one (build seed, variant, question); see the module docstring."""
    digest = hashlib.sha256(question_id.encode("utf-8")).digest()
    words = [int.from_bytes(digest[i : i + 4], "little") for i in range(0, 16, 4)]
    return np.random.default_rng(np.random.SeedSequence([seed, variant_index, *words]))


def _choices(param: ParameterSpec) -> list[Fraction]:
    values = {Fraction(n, q) for q in param.denominators for n in range(param.low * q, param.high * q + 1)}
    excluded = {Fraction(str(x)) for x in param.exclude}
    return sorted(values - excluded)


def _to_sympy(value: Fraction) -> sympy.Rational:
    return sympy.Rational(value.numerator, value.denominator)


def _draw(param: ParameterSpec, dims: dict[str, int], rng: np.random.Generator) -> np.ndarray:
    shape = tuple(dims[s] if isinstance(s, str) else s for s in param.shape)
    out = np.empty(shape, dtype=object)
    if param.onehot:
        out[...] = sympy.Integer(0)
        out[int(rng.integers(shape[0]))] = sympy.Integer(1)
        return out
    choices = [_to_sympy(v) for v in _choices(param)]
    picks = rng.integers(len(choices), size=shape)
    for index in np.ndindex(shape):
        out[index] = choices[int(picks[index])]
    return out


def sample(question: QuestionSpec, seed: int, variant_index: int) -> Instance:
    """Draw one variant, redrawing everything until all constraints hold.

    Raises:
        SamplingError: no draw in `MAX_TRIES` met the constraints; names the one failing most.
    """
    rng = question_rng(seed, variant_index, question.id)
    failures = [0] * len(question.constraints)
    for attempt in range(1, MAX_TRIES + 1):
        dims = {name: int(rng.integers(low, high + 1)) for name, low, high in question.dimensions}
        params = {p.name: _draw(p, dims, rng) for p in question.parameters}
        env: dict[str, Any] = {**{k: np.asarray(sympy.Integer(v), dtype=object) for k, v in dims.items()}, **params}
        derived = {}
        for name, expr in question.derived:
            derived[name] = env[name] = evaluate(expr, env, EXACT)
        failed = [i for i, c in enumerate(question.constraints) if not bool(np.all(evaluate(c, env, EXACT)))]
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

"""Stage 4, verify: check every exact answer by an independent numeric path.

The exact key comes from SymPy's symbolic derivative. Here the same definitions are evaluated
in floating point by numpy (no SymPy at all), and each Jacobian entry is estimated by central
finite differences, (f(x + h e_b) - f(x - h e_b)) / 2h. If a derivative rule, a substitution or
a shape convention were wrong, the two paths would disagree; a disagreement stops the build and
names the question, the part and the entry.

A part's vectorized form is evaluated (in floats, like the definitions) and compared entry by
entry with the answer, and so is its general index form (`generator.answers.indexform`): evaluated at
every index of the Jacobian, it must give this variant's numbers, which ties the index notation
to the concrete definition.
"""

from __future__ import annotations

import dataclasses
import hashlib
import itertools
import math
from collections.abc import Callable, Sequence
from functools import lru_cache
from typing import Any

import mpmath  # type: ignore[import-untyped]
import numpy as np
import sympy

from generator.answers.floats import NotAFloatError, float_array
from generator.answers.indexform import check_index_form
from generator.answers.solve import PartAnswer, Solution
from generator.errors import VerifyError
from generator.spec.expr import DEFINITIONS, NUMERIC, Expr, evaluate, inputs_of, symbol_values
from generator.spec.model import QuestionSpec, WrtSpec

__all__ = ["ATOL", "CHECKS", "DIFFERENCES", "POINTS", "RTOL", "STEP", "formula_points", "nested_differences", "verify"]

STEP = 1e-5
RTOL = 1e-6
ATOL = 1e-7
# (step, relative, absolute tolerance) of nested central differences by the derivative's order:
# a larger step for higher orders, where rounding (eps / h^n) outgrows truncation (h^2).
DIFFERENCES = {1: (STEP, RTOL, ATOL), 2: (1e-4, 1e-5, 1e-6), 3: (1e-3, 1e-4, 1e-4)}
POINTS = 5  # random points a formula answer is checked at
QUAD_RTOL, QUAD_ATOL = 1e-8, 1e-9  # mpmath.quad is good to far more digits than this for smooth integrands


def _numeric_env(solution: Solution, point: dict[str, float] | None = None) -> dict[str, Any]:
    """Dimensions, parameters and every definition (derived, then define), in floats; the symbols
    at `point` where given (else at fixed stand-in values)."""
    instance = solution.instance
    env: dict[str, Any] = {k: np.asarray(float(v)) for k, v in instance.dims.items()}
    env.update({k: float_array(v) for k, v in instance.params.items()})
    question = instance.question
    if question.symbols:  # formulas: stand-in values, and the definitions, for subs to evaluate again
        env.update(symbol_values(question.symbols, NUMERIC))
        env.update({name: np.asarray(value) for name, value in (point or {}).items()})
        env[DEFINITIONS] = (*question.derived, *question.define)
    for name, expr in (*question.derived, *question.define):
        env[name] = evaluate(expr, env, NUMERIC)
    return env


@lru_cache(maxsize=1024)
def _downstream(question: QuestionSpec, of: str, wrt: str | tuple[str, ...]) -> tuple[tuple[str, Expr], ...]:
    """The definitions, in order, that lead from `wrt` to `of`: all a step in `wrt` can change.

    The others keep their values at the unperturbed point, so each finite-difference step
    evaluates only these instead of every definition.
    """
    definitions = (*question.derived, *question.define)
    names = [name for name, _ in definitions]
    upto = definitions[: names.index(of) + 1]
    moved = {wrt} if isinstance(wrt, str) else set(wrt)
    for name, expr in upto:
        if expr.names & moved:
            moved.add(name)
    needed = inputs_of(upto, {of})
    return tuple((name, expr) for name, expr in upto if name in moved and name in needed)


# Finite differences straddle relu's kink when its argument is exactly 0 at the drawn point, and
# would see the slope 1/2 there; the convention (subgradient 0 at 0, docs/bank.md) is that the
# derivative is 0. So the stepped evaluations treat an argument within KINK of 0 as at the kink:
# drawn numbers are exact fractions, so an argument is either exactly 0 or much further than the
# steps (1e-5 to 1e-3, times a coefficient) from it; the unstepped values use relu itself.
KINK = 1e-3
_STEPPED = dataclasses.replace(NUMERIC, unary={
    **NUMERIC.unary,
    "relu": lambda x: np.where(x > KINK, x, 0.0),
    "step": lambda x: np.where(x > KINK, 1.0, 0.0),
})


def _define(env: dict[str, Any], steps: tuple[tuple[str, Expr], ...], of: str) -> np.ndarray:
    env = dict(env)
    for name, expr in steps:
        env[name] = evaluate(expr, env, _STEPPED)
    return np.asarray(env[of], dtype=float)


def _mismatch(
    solution: Solution, part_id: str, what: str, index: tuple[int, ...], exact: float, numeric: float, where: object
) -> VerifyError:
    instance = solution.instance
    if not np.isfinite(numeric):
        return VerifyError(
            f"{where}: question '{instance.question.id}', part '{part_id}', variant {instance.variant} "
            f"(seed {instance.seed}): {what} is {numeric} at index {list(index)}, not a number: a logarithm or "
            f"square root of a negative number, a division by zero or an overflow in the definitions for these values "
            f"({instance.described()}); add a constraint")
    return VerifyError(
        f"{where}: question '{instance.question.id}', part '{part_id}', variant {instance.variant} "
        f"(seed {instance.seed}): {what} disagrees at index {list(index)}: exact {exact:.10g}, numeric {numeric:.10g}"
    )


def _first_bad(close: np.ndarray) -> tuple[int, ...] | None:
    """The first index where `close` is false, or None. (np.argwhere of a 0-d array is empty
    whether or not it holds True: a scalar answer must be tested on its own.)"""
    if close.all():
        return None
    return tuple(int(i) for i in np.argwhere(~close)[0]) if close.ndim else ()


def _close(exact: np.ndarray, numeric: np.ndarray, atol: float = ATOL, rtol: float = RTOL) -> np.ndarray:
    return np.abs(exact - numeric) <= atol + rtol * np.maximum(1.0, np.abs(exact))


def verify(solution: Solution) -> None:
    """Raise `VerifyError` if any part of `solution` disagrees with its numeric check (or an
    exact answer has no float: too large, or not real).

    Each kind of part has its own check (`CHECKS`), sharing no code with the solver of that kind."""
    instance = solution.instance
    try:
        _verify(solution)
    except NotAFloatError as e:
        where = getattr(e, "where", None)
        raise VerifyError(f"{where}: question '{instance.question.id}', variant {instance.variant} "
                          f"(seed {instance.seed}): {e} (values: {instance.described()}); "
                          "narrow the entry ranges or add a constraint") from None


def _verify(solution: Solution) -> None:
    base = _numeric_env(solution)
    question = solution.instance.question
    for answer in solution.parts:
        part = answer.spec
        if answer.choice is not None:
            verify_choice(solution, answer, base)
            continue
        if part_is_formula(answer):
            _check_formula(solution, answer)
            continue
        try:
            exact = float_array(answer.value)
        except NotAFloatError as e:
            e.where = f"{part.where}: part '{part.id}'"  # type: ignore[attr-defined]
            raise
        CHECKS[part.kind](solution, answer, base, exact)
        if part.vectorized is not None:
            # In floats, like the definitions: it is compared with the exact answer, not with them.
            form = np.asarray(evaluate(part.vectorized.expr, base, NUMERIC), dtype=float)
            if form.shape != exact.shape:
                raise VerifyError(
                    f"{part.vectorized.expr.where}: question '{question.id}', part '{part.id}': "
                    f"vectorized form has shape {list(form.shape)} but the answer has shape {list(exact.shape)}"
                )
            index = _first_bad(_close(exact, form))
            if index is not None:
                raise _mismatch(solution, part.id, "the vectorized form", index, float(exact[index]),
                                float(form[index]), part.vectorized.expr.where)
        if answer.index_form is not None:
            instance = solution.instance
            label = f"variant {instance.variant} (seed {instance.seed})"
            check_index_form(question, answer.index_form, instance.dims, instance.params, exact, label)


# --- choice parts -----------------------------------------------------------------------------


def verify_choice(solution: Solution, answer: PartAnswer, base: dict[str, Any]) -> None:
    """Check a choice part: every option evaluated again in floats with numpy, the correct letters
    worked out again from those floats, and the options told apart in floats.

    The part's own answer (its `of`) is its definition in floats, or its derivative by central
    finite differences; an author's option is its expression in floats; `sign` and `transposed`
    are made from the numeric answer; `inner_dropped`, a mistake with no numeric twin, is its
    exact value as a float. With an `of`, an option is correct when its float equals the numeric
    answer (within the check's tolerance); otherwise, and for text, when its `correct` (true,
    false, or a condition evaluated with numpy) says so.

    Raises:
        VerifyError: an option's exact value and its float disagree, the correct letters differ,
            or two options are equal in floats (naming question, part, variant and the values).
    """
    assert answer.choice is not None
    part, instance = answer.spec, solution.instance
    question = instance.question
    assert part.choice is not None
    label = f"question '{question.id}', part '{part.id}', variant {instance.variant} (seed {instance.seed})"
    reference = _numeric_reference(solution, answer, base) if part.of else None
    floats: dict[str, np.ndarray | None] = {}
    correct: dict[str, bool] = {}
    for option in answer.choice.options:
        numeric = _numeric_option(option.source, part.choice.options, reference, option.value, base,
                                  len(answer.out_shape))
        floats[option.letter] = numeric
        if option.value is not None and option.source != "inner_dropped":
            exact = _exact_floats(option.value, question)
            assert numeric is not None  # (a value option has a float value)
            if exact.shape != numeric.shape or not np.all(_close(exact, numeric)):
                raise VerifyError(f"{part.where}: {label}: option ({option.letter}) ({option.source}) is "
                                  f"{_listed(exact)} exactly but {_listed(numeric)} in floats")
        if reference is not None and numeric is not None:
            correct[option.letter] = numeric.shape == reference.shape and bool(np.all(_close(numeric, reference)))
        else:
            correct[option.letter] = _numeric_correct(option.source, part.choice.options, base)
    numeric_letters = [letter for letter, ok in correct.items() if ok]
    if list(answer.choice.letters) != numeric_letters:
        values = "; ".join(f"({o.letter}) {_listed(floats[o.letter]) if o.value is not None else o.text}"
                           for o in answer.choice.options)
        raise VerifyError(f"{part.where}: {label}: the key marks {_letters(answer.choice.letters)} but the options "
                          f"evaluated again with numpy make {_letters(numeric_letters)} correct ({values})")
    letters = [o.letter for o in answer.choice.options if floats[o.letter] is not None]
    for i, a in enumerate(letters):
        for b in letters[:i]:
            x, y = floats[a], floats[b]
            assert x is not None and y is not None
            if x.shape == y.shape and np.all(_close(x, y)):
                raise VerifyError(f"{part.where}: {label}: options ({b}) and ({a}) are equal in floats "
                                  f"({_listed(y)} and {_listed(x)}); a student could not tell them apart")


def _numeric_reference(solution: Solution, answer: PartAnswer, base: dict[str, Any]) -> np.ndarray:
    """The part's answer in floats: its definition, or its derivative by central finite differences."""
    part = answer.spec
    if part.wrt is None:
        return np.asarray(base[part.of], dtype=float)
    numeric = np.empty(answer.out_shape + answer.in_shape)
    steps = _downstream(solution.instance.question, part.of, part.wrt)
    point = base[part.wrt]
    for b in np.ndindex(answer.in_shape):
        plus, minus = point.copy(), point.copy()
        plus[b] += STEP
        minus[b] -= STEP
        numeric[(..., *b)] = (_define({**base, part.wrt: plus}, steps, part.of)
                              - _define({**base, part.wrt: minus}, steps, part.of)) / (2 * STEP)
    return numeric


def _numeric_option(source: str, written: Any, reference: np.ndarray | None, exact: np.ndarray | None,
                    base: dict[str, Any], out_axes: int) -> np.ndarray | None:
    """One option's value in floats (None for text), made without the exact value where there is a way."""
    if source == "answer":
        return reference
    if source == "sign":
        assert reference is not None
        return -reference
    if source == "transposed":  # entry [b..., a...] = answer[a..., b...]: the output's axes moved last
        assert reference is not None
        return np.moveaxis(reference, tuple(range(out_axes)), tuple(range(reference.ndim - out_axes, reference.ndim)))
    if source == "inner_dropped":
        assert exact is not None
        return float_array(exact)  # (no symbols: a derivative with respect to a parameter is a number)
    option = written[int(source.removeprefix("options[").removesuffix("]"))]
    return None if option.value is None else np.asarray(evaluate(option.value, base, NUMERIC), dtype=float)


def _numeric_correct(source: str, written: Any, base: dict[str, Any]) -> bool:
    """Whether an option without a numeric answer to compare with is correct: its `correct`, a
    condition evaluated with numpy."""
    if not source.startswith("options["):
        return False  # (a misconception is wrong by construction)
    option = written[int(source.removeprefix("options[").removesuffix("]"))]
    if isinstance(option.correct, bool):
        return option.correct
    return bool(np.all(evaluate(option.correct, base, NUMERIC)))


def _exact_floats(value: np.ndarray, question: QuestionSpec) -> np.ndarray:
    """An exact option in floats; a formula at the symbols' numeric stand-ins (those `NUMERIC` evaluates it at)."""
    if question.symbols and any(sympy.sympify(v).free_symbols for v in value.flat):
        probes = symbol_values(question.symbols, NUMERIC)
        at = {sympy.Symbol(name, real=True): sympy.Float(float(probes[name])) for name in question.symbols}
        value = np.vectorize(lambda v: sympy.sympify(v).xreplace(at), otypes=[object])(value)
    return float_array(value)


def _letters(letters: Any) -> str:
    return ", ".join(f"({letter})" for letter in letters) or "no option"


def _listed(value: np.ndarray | None) -> str:
    if value is None:
        return "text"
    array = np.asarray(value, dtype=float)
    return f"{float(array):.10g}" if array.ndim == 0 else np.array2string(array, precision=10, separator=", ")


def _compare(solution: Solution, answer: PartAnswer, exact: np.ndarray, numeric: np.ndarray, what: str,
             tolerance: tuple[float, float] = (ATOL, RTOL), at: str = "") -> None:
    """Stop the build at the first entry where `exact` and `numeric` disagree."""
    part, question = answer.spec, solution.instance.question
    if numeric.shape != exact.shape:
        raise VerifyError(
            f"{part.where}: question '{question.id}', part '{part.id}': shape {exact.shape} vs {numeric.shape}"
        )
    index = _first_bad(_close(exact, numeric, *tolerance))
    if index is not None:
        raise _mismatch(solution, part.id, what + at, index, float(exact[index]), float(numeric[index]), part.where)


def _check_value(solution: Solution, answer: PartAnswer, base: dict[str, Any], exact: np.ndarray) -> None:
    """A value: the definition evaluated again in floats."""
    _compare(solution, answer, exact, np.asarray(base[answer.spec.of], dtype=float), "the value")


def _check_jacobian(solution: Solution, answer: PartAnswer, base: dict[str, Any], exact: np.ndarray) -> None:
    """A Jacobian: central finite differences of the float definitions, one input entry at a time."""
    assert answer.spec.wrt is not None
    _compare(solution, answer, exact, _numeric_reference(solution, answer, base), "the derivative (finite differences)")


def _check_derivative(solution: Solution, answer: PartAnswer, base: dict[str, Any], exact: np.ndarray) -> None:
    """A derivative by parameters (entries, second and mixed derivatives, Hessians): nested central
    differences, with the step and tolerances of its order (`DIFFERENCES`)."""
    part = answer.spec
    order = len(part.derivative)
    step, rtol, atol = DIFFERENCES[order]
    numeric = nested_differences(solution.instance.question, part.of, part.derivative, base, step)
    if part.hessian and exact.ndim >= 2 and not np.array_equal(exact, np.swapaxes(exact, -1, -2)):
        raise VerifyError(f"{part.where}: question '{solution.instance.question.id}', part '{part.id}', variant "
                          f"{solution.instance.variant}: the Hessian is not symmetric")
    _compare(solution, answer, exact, numeric, f"the derivative (nested finite differences, h = {step:g})",
             (atol, rtol))


def _check_linalg(solution: Solution, answer: PartAnswer, base: dict[str, Any], exact: np.ndarray) -> None:
    """With numpy.linalg on the float matrix: det; A X = I for an inverse; matrix_rank; eigvals
    (real, ascending); A V = V diag(eigvals) for eigenvectors, and V nonsingular."""
    part = answer.spec
    a = np.asarray(base[part.of], dtype=float)
    if part.find == "determinant":
        _compare(solution, answer, exact, np.asarray(np.linalg.det(a)), "the determinant (numpy.linalg.det)")
    elif part.find == "inverse":
        _compare(solution, answer, a @ exact, np.eye(len(a)), "A times the inverse (against I)")
    elif part.find == "rank":
        _compare(solution, answer, exact, np.asarray(float(np.linalg.matrix_rank(a))), "the rank (matrix_rank)")
    else:
        eigenvalues = np.linalg.eigvals(a)
        if np.abs(eigenvalues.imag).max() > ATOL:
            raise VerifyError(f"{part.where}: question '{solution.instance.question.id}', part '{part.id}': numpy "
                              f"finds complex eigenvalues {eigenvalues}")
        eigenvalues = np.sort(eigenvalues.real)
        if part.find == "eigenvalues":
            _compare(solution, answer, exact, eigenvalues, "the eigenvalues (numpy.linalg.eigvals)")
            return
        _compare(solution, answer, a @ exact, exact * eigenvalues, "A v against lambda v (numpy.linalg.eigvals)")
        if abs(np.linalg.det(exact)) < ATOL:
            raise VerifyError(f"{part.where}: question '{solution.instance.question.id}', part '{part.id}': the "
                              "eigenvectors are not independent")


def _check_roots(solution: Solution, answer: PartAnswer, base: dict[str, Any], exact: np.ndarray) -> None:
    """Each root substituted back into the float definitions (residual within tolerance); for a
    polynomial, its real roots found by numpy.roots from coefficients fitted to the float
    definitions: as many as the key has, and the same ones."""
    part = answer.spec
    question = solution.instance.question
    (x,) = [name for name in question.symbols if name in inputs_of((*question.derived, *question.define), {part.of})]

    def at(value: float) -> float:
        env = _numeric_env(solution, {**{name: 0.5 for name in question.symbols}, x: value})
        return float(env[part.of])

    residuals = np.array([at(root) for root in exact])
    _compare(solution, answer, residuals, np.zeros_like(residuals), "f(root) (substituted back)")
    formula = sympy.sympify(answer_formula(solution, part.of))
    if formula.is_polynomial():
        degree = int(sympy.degree(formula))
        points = np.linspace(-1.0, 1.0, degree + 2)
        coefficients, *_ = np.linalg.lstsq(np.vander(points, degree + 1), [at(t) for t in points], rcond=None)
        roots = np.roots(coefficients)
        real = np.unique(np.round(np.sort(roots[np.abs(roots.imag) < 1e-6].real), 6))
        if real.shape != exact.shape:
            instance = solution.instance
            raise VerifyError(f"{part.where}: question '{question.id}', part '{part.id}', variant {instance.variant} "
                              f"(seed {instance.seed}): the key has {len(exact)} real roots {exact.tolist()}, "
                              f"numpy.roots finds {len(real)}: {real.tolist()}")
        _compare(solution, answer, exact, real, "the real roots (numpy.roots)")


def answer_formula(solution: Solution, name: str) -> Any:
    """A formula definition's exact value (its degree tells the roots check how many points to fit)."""
    return solution.values[name][()]


def _check_system(solution: Solution, answer: PartAnswer, base: dict[str, Any], exact: np.ndarray) -> None:
    """The solution substituted back: A x - b in floats, against zero."""
    part = answer.spec
    assert part.rhs is not None
    a, b = np.asarray(base[part.of], dtype=float), np.asarray(base[part.rhs], dtype=float)
    _compare(solution, answer, a @ exact - b, np.zeros_like(b), "the residual A x - b")


def _check_integral(solution: Solution, answer: PartAnswer, base: dict[str, Any], exact: np.ndarray) -> None:
    """A definite integral: numeric quadrature (mpmath.quad) of the float definitions, never SymPy's
    integrate. (An antiderivative is a formula: `_check_antiderivative`, at random points.)"""
    part = answer.spec
    assert part.integrate is not None
    x = part.integrate
    low, high = (float(evaluate(limit, base, NUMERIC)) for limit in part.limits)

    def integrand(t: Any) -> float:
        return float(_numeric_env(solution, {**_stand_ins(solution), x: float(t)})[part.of])

    numeric = float(mpmath.quad(integrand, [low, high]))
    _compare(solution, answer, exact, np.asarray(numeric), "the integral (mpmath.quad)", (QUAD_ATOL, QUAD_RTOL))


def _stand_ins(solution: Solution) -> dict[str, float]:
    return {name: float(value) for name, value in symbol_values(solution.instance.question.symbols, NUMERIC).items()}


def _check_antiderivative(solution: Solution, answer: PartAnswer, point: dict[str, float], exact_at: Any,
                          at: str) -> None:
    """F'(x) by central differences of the key's antiderivative, against the float integrand at x."""
    part = answer.spec
    assert part.integrate is not None
    x = part.integrate
    slope = (exact_at({**point, x: point[x] + STEP}) - exact_at({**point, x: point[x] - STEP})) / (2 * STEP)
    integrand = np.asarray(_numeric_env(solution, point)[part.of], dtype=float)
    _compare(solution, answer, slope, integrand, "the antiderivative's derivative (central differences)",
             (DIFFERENCES[1][2], DIFFERENCES[1][1]), at)


CHECKS: dict[str, Callable[[Solution, PartAnswer, dict[str, Any], np.ndarray], None]] = {
    "value": _check_value, "jacobian": _check_jacobian, "derivative": _check_derivative, "linalg": _check_linalg,
    "roots": _check_roots, "system": _check_system, "integral": _check_integral,
}


def nested_differences(question: QuestionSpec, of: str, variables: Sequence[WrtSpec], base: dict[str, Any],
                       step: float) -> np.ndarray:
    """d^n of / d v1 ... d vn by nested central differences of the float definitions in `base`:
    the sum over the 2^n corners (v1 +- h, ..., vn +- h) of sign x of(corner), over (2h)^n.

    The result has the shape of `of`, then of each variable (an entry or a symbol: none)."""
    names = tuple(dict.fromkeys(v.name for v in variables))
    steps = _downstream(question, of, names)
    shapes = [() if v.index is not None else np.shape(base[v.name]) for v in variables]
    out_shape = np.shape(base[of])
    numeric = np.empty(out_shape + tuple(n for shape in shapes for n in shape))
    for combo in itertools.product(*(list(np.ndindex(shape)) for shape in shapes)):
        total = np.zeros(out_shape)
        for signs in itertools.product((1.0, -1.0), repeat=len(variables)):
            moved = {name: np.array(base[name], dtype=float) for name in names}
            for variable, index, sign in zip(variables, combo, signs, strict=True):
                entry = variable.index if variable.index is not None else index
                moved[variable.name][entry] += sign * step
            total = total + math.prod(signs) * _define({**base, **moved}, steps, of)
        numeric[(..., *(i for index in combo for i in index))] = total / (2 * step) ** len(variables)
    return numeric


def part_is_formula(answer: PartAnswer) -> bool:
    """Whether the answer is a formula (checked at random points)."""
    if answer.spec.kind == "roots":
        return False
    return any(getattr(entry, "free_symbols", None) for entry in answer.value.flat)


def formula_points(solution: Solution) -> list[dict[str, float]]:
    """Where a formula answer is checked: `POINTS` random points, each symbol in [0.25, 1.75]
    (positive, so that log and sqrt are defined), from the variant's own stream."""
    instance = solution.instance
    digest = hashlib.sha256(f"{instance.seed}:{instance.variant}:{instance.question.id}".encode()).digest()
    rng = np.random.default_rng(int.from_bytes(digest[:8], "little"))
    symbols = instance.question.symbols
    return [{name: float(rng.uniform(0.25, 1.75)) for name in symbols} for _ in range(POINTS)]


def _check_formula(solution: Solution, answer: PartAnswer) -> None:
    """A formula answer (a derivative by a symbol, or a formula value): at several random points the
    formula is evaluated and compared with the definitions evaluated there in floats (and, for a
    derivative, differentiated there by nested central differences)."""
    part = answer.spec
    question = solution.instance.question
    def exact_at(point: dict[str, float]) -> np.ndarray:
        mapping = {sympy.Symbol(name, real=True): sympy.Float(value, 30) for name, value in point.items()}
        return np.array([float(sympy.N(sympy.sympify(entry).xreplace(mapping), 20)) for entry in answer.value.flat]
                        ).reshape(answer.value.shape)

    for point in formula_points(solution):
        base = _numeric_env(solution, point)
        exact = exact_at(point)
        at = " at " + ", ".join(f"{name} = {value:.6g}" for name, value in point.items())
        if part.kind == "integral":
            _check_antiderivative(solution, answer, point, exact_at, at)
        elif part.kind == "derivative":
            step, rtol, atol = DIFFERENCES[len(part.derivative)]
            numeric = nested_differences(question, part.of, part.derivative, base, step)
            _compare(solution, answer, exact, numeric, "the formula (nested finite differences)", (atol, rtol), at)
        else:  # a formula value: the definition evaluated in floats at the point
            _compare(solution, answer, exact, np.asarray(base[part.of], dtype=float), "the formula", at=at)

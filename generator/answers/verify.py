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

from functools import lru_cache
from typing import Any

import numpy as np
import sympy

from generator.answers.floats import NotAFloatError, float_array
from generator.answers.indexform import check_index_form
from generator.answers.solve import PartAnswer, Solution
from generator.errors import VerifyError
from generator.spec.expr import DEFINITIONS, NUMERIC, Expr, evaluate, inputs_of, symbol_values
from generator.spec.model import QuestionSpec

__all__ = ["ATOL", "RTOL", "STEP", "verify"]

STEP = 1e-5
RTOL = 1e-6
ATOL = 1e-7


def _numeric_env(solution: Solution) -> dict[str, Any]:
    """Dimensions, parameters and every definition (derived, then define), in floats."""
    instance = solution.instance
    env: dict[str, Any] = {k: np.asarray(float(v)) for k, v in instance.dims.items()}
    env.update({k: float_array(v) for k, v in instance.params.items()})
    question = instance.question
    if question.symbols:  # formulas: stand-in values, and the definitions, for subs to evaluate again
        env.update(symbol_values(question.symbols, NUMERIC))
        env[DEFINITIONS] = (*question.derived, *question.define)
    for name, expr in (*question.derived, *question.define):
        env[name] = evaluate(expr, env, NUMERIC)
    return env


@lru_cache(maxsize=1024)
def _downstream(question: QuestionSpec, of: str, wrt: str) -> tuple[tuple[str, Expr], ...]:
    """The definitions, in order, that lead from `wrt` to `of`: all a step in `wrt` can change.

    The others keep their values at the unperturbed point, so each finite-difference step
    evaluates only these instead of every definition.
    """
    definitions = (*question.derived, *question.define)
    names = [name for name, _ in definitions]
    upto = definitions[: names.index(of) + 1]
    moved = {wrt}
    for name, expr in upto:
        if expr.names & moved:
            moved.add(name)
    needed = inputs_of(upto, {of})
    return tuple((name, expr) for name, expr in upto if name in moved and name in needed)


def _define(env: dict[str, Any], steps: tuple[tuple[str, Expr], ...], of: str) -> np.ndarray:
    env = dict(env)
    for name, expr in steps:
        env[name] = evaluate(expr, env, NUMERIC)
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


def _close(exact: np.ndarray, numeric: np.ndarray) -> np.ndarray:
    return np.abs(exact - numeric) <= ATOL + RTOL * np.maximum(1.0, np.abs(exact))


def verify(solution: Solution) -> None:
    """Raise `VerifyError` if any part of `solution` disagrees with its numeric check (or an
    exact answer has no float: too large, or not real)."""
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
        try:
            exact = float_array(answer.value)
        except NotAFloatError as e:
            e.where = f"{part.where}: part '{part.id}'"  # type: ignore[attr-defined]
            raise
        if part.wrt is None:
            numeric = np.asarray(base[part.of], dtype=float)
            what = "the value"
        else:
            numeric = np.empty(answer.out_shape + answer.in_shape)
            steps = _downstream(question, part.of, part.wrt)
            point = base[part.wrt]
            for b in np.ndindex(answer.in_shape):
                plus, minus = point.copy(), point.copy()
                plus[b] += STEP
                minus[b] -= STEP
                f_plus = _define({**base, part.wrt: plus}, steps, part.of)
                f_minus = _define({**base, part.wrt: minus}, steps, part.of)
                numeric[(..., *b)] = (f_plus - f_minus) / (2 * STEP)
            what = "the derivative (finite differences)"
        if numeric.shape != exact.shape:
            raise VerifyError(
                f"{part.where}: question '{question.id}', part '{part.id}': shape {exact.shape} vs {numeric.shape}"
            )
        bad = np.argwhere(~_close(exact, numeric))
        if bad.size:
            index = tuple(int(i) for i in bad[0])
            raise _mismatch(solution, part.id, what, index, float(exact[index]), float(numeric[index]), part.where)
        if part.vectorized is not None:
            # In floats, like the definitions: it is compared with the exact answer, not with them.
            form = np.asarray(evaluate(part.vectorized.expr, base, NUMERIC), dtype=float)
            if form.shape != exact.shape:
                raise VerifyError(
                    f"{part.vectorized.expr.where}: question '{question.id}', part '{part.id}': "
                    f"vectorized form has shape {list(form.shape)} but the answer has shape {list(exact.shape)}"
                )
            bad = np.argwhere(~_close(exact, form))
            if bad.size:
                index = tuple(int(i) for i in bad[0])
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

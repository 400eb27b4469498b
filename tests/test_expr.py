"""The whitelist expression parser and its two evaluation backends."""

from __future__ import annotations

import numpy as np
import pytest
import sympy

from generator.errors import ExpressionError, Location
from generator.spec.expr import EXACT, NUMERIC, evaluate, parse_expression

WHERE = Location("q.yaml", 3, 5)


def exact(values):
    return np.vectorize(sympy.Integer, otypes=[object])(np.array(values))


def parse(text, names=("W", "x", "b", "u", "n")):
    return parse_expression(text, WHERE, set(names), "define.u")


@pytest.mark.parametrize(
    "text, message",
    [
        ("__import__('os')", "unknown function '__import__'"),
        ("__import__('os').system('true')", "only calls of the listed functions are allowed, e.g. exp(x)"),
        ("x.__class__", "attribute '.__class__' is not allowed (only .T, the transpose)"),
        ("(lambda: 1)()", "only calls of the listed functions are allowed, e.g. exp(x)"),
        ("[c for c in x]", "ListComp syntax is not allowed in expressions"),
        ("sigmod(x)", "unknown function 'sigmod'; did you mean 'sigmoid'?"),
        ("y + 1", "unknown name 'y'"),
        ("'text'", "only numbers are allowed as constants, got 'text'"),
        ("exp(x, 2)", "exp() takes 1 argument(s), got 2"),
        ("x[b]", "indices must be integer literals, e.g. x[0] or W[1, 2]"),
        ("sum(x, axis=0)", "sum() takes no keyword arguments"),
        ("exp", "'exp' is a function; call it as exp(...)"),
    ],
)
def test_rejects_everything_outside_the_whitelist(text, message):
    with pytest.raises(ExpressionError) as info:
        parse(text)
    assert str(info.value).startswith(f"q.yaml:3:5: define.u: {message}")


def test_syntax_error_names_the_column():
    with pytest.raises(ExpressionError, match=r"q.yaml:3:5: define.u: syntax error at column \d+ of 'W @ @ x'"):
        parse("W @ @ x")


def test_records_the_free_names():
    assert parse("W @ x + b").names == {"W", "x", "b"}


def test_exact_affine_map():
    env = {"W": exact([[1, 2], [3, 4]]), "x": exact([1, -1]), "b": exact([5, 6])}
    result = evaluate(parse("W @ x + b"), env, EXACT)
    assert list(result) == [4, 5]


def test_exact_keeps_fractions_and_e():
    env = {"u": exact(0)}
    assert evaluate(parse("sigmoid(u) / 2"), env, EXACT)[()] == sympy.Rational(1, 4)
    assert evaluate(parse("0.1 * 3"), {}, EXACT)[()] == sympy.Rational(3, 10)
    assert evaluate(parse("exp(u + 1)"), env, EXACT)[()] == sympy.E


def test_softmax_exact_sums_to_one():
    s = evaluate(parse("softmax(x)"), {"x": exact([1, 2, 3])}, EXACT)
    assert sympy.simplify(sum(s) - 1) == 0
    assert s[0] == sympy.exp(1) / (sympy.exp(1) + sympy.exp(2) + sympy.exp(3))


def test_numeric_backend_matches_exact():
    env = {"W": exact([[1, -2], [0, 3]]), "x": exact([2, 1]), "b": exact([1, -1])}
    text = "sum((sigmoid(W @ x + b) - tanh(x))**2) / 2 + dot(x, b) + sum(outer(x, b)) + max(relu(x))"
    exact_value = evaluate(parse(text), env, EXACT)[()]
    numeric_value = evaluate(parse(text), {k: v.astype(float) for k, v in env.items()}, NUMERIC)
    assert float(numeric_value) == pytest.approx(float(exact_value), rel=1e-12)


@pytest.mark.parametrize(
    "text, expected",
    [
        ("nonzero_rows(W)", False),
        ("nonzero_cols(W)", True),
        ("distinct(x)", True),
        ("nonzero(x) and all(x > 0)", False),
        ("any(x > 1) or not distinct(x)", True),
        ("min(x) >= -1", True),
    ],
)
def test_constraint_helpers(text, expected):
    env = {"W": exact([[1, 2], [0, 0]]), "x": exact([2, -1])}
    assert bool(np.all(evaluate(parse(text), env, EXACT))) is expected


def test_shape_mismatch_is_a_clean_error():
    env = {"W": exact([[1, 2], [3, 4]]), "b": exact([1, 2, 3])}
    with pytest.raises(ExpressionError, match=r"^q.yaml:3:5: cannot evaluate 'W @ b': "):
        evaluate(parse("W @ b"), env, EXACT)


def test_ones_and_transpose():
    env = {"W": exact([[1, 2, 3], [4, 5, 6]]), "n": exact(2), "b": exact([1, 2])}
    result = evaluate(parse("W.T @ ones(n) + transpose(W) @ b"), env, EXACT)
    assert list(result) == [5 + 9, 7 + 12, 9 + 15]


def test_an_expression_made_once_into_functions_gives_each_environment_its_own_value():
    """evaluate() turns the syntax tree into functions the first time and reuses them: every
    evaluation still reads its own environment, exact or numeric, and fails with its own values."""
    expr = parse("sum(W @ x + b) * 2")
    values = []
    for k in (1, 2, 3):
        env = {"W": np.array([[k, 0], [0, k]], dtype=object), "x": np.array([1, 2], dtype=object),
               "b": np.array([k, -k], dtype=object)}
        values.append(evaluate(expr, {name: np.asarray(v, dtype=object) for name, v in env.items()}, EXACT)[()])
    assert values == [2 * (1 + 2), 2 * (2 + 4), 2 * (3 + 6)]
    code = expr.tree.body._generator_code
    numeric = evaluate(expr, {"W": np.eye(2), "x": np.array([1.0, 2.0]), "b": np.zeros(2)}, NUMERIC)
    assert float(numeric) == 6.0 and expr.tree.body._generator_code is code
    with pytest.raises(ExpressionError, match="cannot evaluate"):
        evaluate(expr, {"W": np.eye(3), "x": np.array([1.0, 2.0]), "b": np.zeros(2)}, NUMERIC)
    chained = parse("0 < x < b")
    assert evaluate(chained, {"x": np.array([1, 5]), "b": np.array([2, 4])}, NUMERIC).tolist() == [True, False]

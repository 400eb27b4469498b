"""Every function of the expression language: the exact (SymPy) value against its numpy twin at random points.

The numeric backend is the independent check of every key, so each function's two implementations
must agree wherever the function is defined; hypothesis draws the points (exact rationals, turned
into the floats the numeric side gets).
"""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest
import sympy
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from generator.errors import ExpressionError, Location
from generator.spec.expr import EXACT, NUMERIC, evaluate, parse_expression, symbol_values

WHERE = Location("q.yaml", 3, 5)
settings.register_profile("functions", max_examples=60, deadline=None)
settings.load_profile("functions")


def rationals(low: float, high: float) -> st.SearchStrategy[Fraction]:
    return st.fractions(min_value=Fraction(str(low)), max_value=Fraction(str(high)), max_denominator=50)


def exact_array(values: object) -> np.ndarray:
    array = np.asarray(values, dtype=object)
    out = np.empty(array.shape, dtype=object)
    for index in np.ndindex(array.shape):
        v = Fraction(array[index])
        out[index] = sympy.Rational(v.numerator, v.denominator)
    return out


def agree(text: str, symbols: tuple[str, ...] = (), **values: object) -> None:
    """The expression's exact value, as floats, equals its numeric value (to 1e-9 relative)."""
    expr = parse_expression(text, WHERE, set(values) | set(symbols), "define.f", symbols=frozenset(symbols))
    exact_env = {name: exact_array(value) for name, value in values.items()} | symbol_values(symbols, EXACT)
    numeric_env = {name: np.asarray(exact_array(value), dtype=float) for name, value in values.items()}
    numeric_env |= symbol_values(symbols, NUMERIC)
    exact = evaluate(expr, exact_env, EXACT)
    numeric = evaluate(expr, numeric_env, NUMERIC)
    as_floats = np.vectorize(lambda v: float(sympy.N(v, 30)), otypes=[float])(exact) if exact.size else exact
    assert np.shape(as_floats) == np.shape(numeric)
    np.testing.assert_allclose(as_floats, numeric, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("name, low, high", [
    ("sin", -10, 10), ("cos", -10, 10), ("tan", -1.5, 1.5), ("asin", -1, 1), ("acos", -1, 1), ("atan", -20, 20),
    ("sinh", -5, 5), ("cosh", -5, 5), ("floor", -20, 20), ("ceil", -20, 20),
])
def test_elementwise_functions_agree(name, low, high):
    @given(st.lists(rationals(low, high), min_size=1, max_size=4))
    def check(xs):
        agree(f"{name}(x)", x=xs)
    check()


@given(st.lists(st.integers(0, 20), min_size=1, max_size=4))
def test_factorial_agrees(ns):
    agree("factorial(n)", n=ns)


@given(st.integers(0, 30), st.integers(0, 30))
def test_binomial_agrees(n, k):
    agree("binomial(n, k)", n=n, k=k)


@given(rationals(0.02, 100), rationals(0.1, 20))
def test_log_to_a_base_agrees(x, b):
    assume(b != 1)
    agree("log(x, b)", x=x, b=b)


@given(st.lists(st.tuples(rationals(-5, 5), rationals(-5, 5), rationals(-5, 5)), min_size=1, max_size=4))
def test_where_agrees(rows):
    c, a, b = (list(column) for column in zip(*rows, strict=True))
    agree("where(c > 0, a, b)", c=c, a=a, b=b)


@pytest.mark.parametrize("name", ["min", "max"])
def test_two_argument_min_and_max_agree(name):
    @given(st.lists(st.tuples(rationals(-9, 9), rationals(-9, 9)), min_size=1, max_size=4))
    def check(pairs):
        a, b = (list(column) for column in zip(*pairs, strict=True))
        agree(f"{name}(a, b)", a=a, b=b)
    check()


def square_matrices(low: int = -5, high: int = 5) -> st.SearchStrategy[list[list[int]]]:
    return st.integers(1, 4).flatmap(lambda n: st.lists(st.lists(st.integers(low, high), min_size=n, max_size=n),
                                                          min_size=n, max_size=n))


def nonsingular(matrix: list[list[int]]) -> bool:
    return sympy.Matrix(matrix).det() != 0


@pytest.mark.parametrize("name", ["det", "trace", "rank", "norm"])
def test_matrix_functions_agree(name):
    @given(square_matrices())
    def check(a):
        agree(f"{name}(A)", A=a)
    check()


@given(square_matrices())
def test_inverse_agrees(a):
    assume(nonsingular(a))
    agree("inv(A)", A=a)


@given(square_matrices().flatmap(lambda a: st.tuples(st.just(a), st.lists(st.integers(-9, 9), min_size=len(a), max_size=len(a)))))
def test_linear_solve_agrees(pair):
    a, b = pair
    assume(nonsingular(a))
    agree("solve(A, b)", A=a, b=b)


@given(st.lists(rationals(-9, 9), min_size=1, max_size=5))
def test_vector_norm_agrees(v):
    agree("norm(v)", v=v)


@given(rationals(-5, 5), rationals(-5, 5), rationals(-5, 5), rationals(-5, 5))
def test_matrix_literals_agree(a, b, c, d):
    agree("[[a, b], [c, d]] @ [a, d]", a=a, b=b, c=c, d=d)


@given(rationals(-3, 3), rationals(-3, 3), rationals(-3, 3))
def test_subs_agrees(a, x1, x2):
    agree("subs(a * x**2 - 3 * x * y + sin(y), x, x1, y, x2)", ("x", "y"), a=a, x1=x1, x2=x2)


def test_subs_of_a_defined_formula_reevaluates_it_numerically():
    """A float holds no formula: the numeric side evaluates the definitions again at the point."""
    where = Location("q.yaml", 1, 1)
    f = parse_expression("a * x ** 2", where, {"a", "x"}, "define.f", symbols={"x"})
    g = parse_expression("subs(f, x, 3)", where, {"a", "x", "f"}, "define.g", symbols={"x"})
    env = {"a": np.asarray(2.0), **symbol_values(["x"], NUMERIC)}
    env["f"] = evaluate(f, env, NUMERIC)
    env["\0definitions"] = (("f", f), ("g", g))
    assert float(evaluate(g, env, NUMERIC)) == 18.0
    exact_env = {"a": np.asarray(sympy.Integer(2), dtype=object), **symbol_values(["x"], EXACT)}
    exact_env["f"] = evaluate(f, exact_env, EXACT)
    assert evaluate(g, exact_env, EXACT)[()] == 18


@pytest.mark.parametrize("text, message", [
    ("inv(A)", "inv: the matrix is singular (determinant 0); add the constraint det(A) != 0"),
    ("solve(A, [1, 2])", "solve: the matrix is singular (determinant 0); add the constraint det(A) != 0"),
    ("det([1, 2])", "det needs a square matrix, got a vector of 2"),
    ("solve(A, [1, 2, 3])", "solve(A, b) needs b with 2 rows for a 2x2 matrix, got a vector of 3"),
    ("[1, [2, 3]]", "the items of a vector or matrix literal must have one shape, got a scalar, a vector of 2"),
])
def test_evaluation_errors_say_what_to_do(text, message):
    expr = parse_expression(text, WHERE, {"A"}, "define.f")
    with pytest.raises(ExpressionError) as info:
        evaluate(expr, {"A": exact_array([[1, 2], [2, 4]])}, EXACT)
    assert str(info.value) == f"q.yaml:3:5: cannot evaluate '{text}': {message}"


def test_rank_over_symbols_is_refused():
    expr = parse_expression("rank(A)", WHERE, {"A"}, "define.f")
    a = np.array([[sympy.Symbol("a", real=True), 1], [1, 1]], dtype=object)
    with pytest.raises(ExpressionError, match="rank needs numbers, not symbols"):
        evaluate(expr, {"A": a}, EXACT)


def test_a_condition_on_a_symbol_is_a_piecewise_value():
    expr = parse_expression("where(x > 0, x ** 2, -x)", WHERE, {"x"}, "define.f", symbols={"x"})
    value = evaluate(expr, symbol_values(["x"], EXACT), EXACT)[()]
    x = sympy.Symbol("x", real=True)
    assert value == sympy.Piecewise((x**2, x > 0), (-x, True))
    assert value.xreplace({x: sympy.Integer(-3)}) == 3

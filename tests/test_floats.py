"""Exact answers as floats: the fast path agrees with sympy.N, and cancellation falls back to it."""

from __future__ import annotations

import numpy as np
import pytest
import sympy
from sympy import E, Rational, exp, log

from generator.floats import TRUSTED, _bounded, exact_float, float_array

VALUES = [
    sympy.Integer(0),
    sympy.Integer(-3),
    Rational(-7, 3),
    E,
    sympy.pi,
    exp(2) / (1 + exp(2)) ** 3,
    -(3 + 2 * E) / (2 * (1 + E)),
    -log(exp(2) / (1 + exp(2))),
    sympy.sqrt(2) / (1 + exp(Rational(1, 2))),
    (-2 * exp(7) - 6 * exp(5) - 9 * exp(3) - 3 * E + exp(2) + 4 * exp(4) + 6 * exp(6) + exp(8)) / (1 + E + exp(2) + exp(3)) ** 3,
    sympy.Max(0, Rational(1, 3)),  # a node the fast path leaves to sympy.N
    sympy.Heaviside(0, Rational(1, 2)),
]


@pytest.mark.parametrize("value", VALUES, ids=str)
def test_exact_float_agrees_with_sympy(value: sympy.Expr) -> None:
    reference = float(sympy.N(value, 30))
    assert abs(exact_float(value) - reference) <= TRUSTED * abs(reference)


def test_cancellation_is_left_to_sympy() -> None:
    # Exactly 1, as a difference of two numbers near 2.4e11: double precision keeps ~5 digits.
    value = (1 + E) ** 20 - sympy.expand((1 + E) ** 20) + 1
    assert value.is_Add and len(value.args) > 3  # SymPy did not cancel it while building
    fast, error = _bounded(value)
    assert error > TRUSTED * abs(fast)  # the bound sees the lost digits ...
    assert exact_float(value) == 1.0  # ... so the value comes from sympy.N


def test_float_array_keeps_the_shape() -> None:
    array = np.array([[Rational(1, 2), E], [0, exp(-1)]], dtype=object)
    np.testing.assert_allclose(float_array(array), np.array([[0.5, np.e], [0.0, np.exp(-1)]]), rtol=1e-15)
    assert float_array(np.empty((0, 3), dtype=object)).shape == (0, 3)
    assert float_array(np.array(Rational(3, 4), dtype=object)) == np.array(0.75)

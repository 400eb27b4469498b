"""Exact answers as floats: the fast path agrees with sympy.N, and cancellation falls back to it."""

from __future__ import annotations

import numpy as np
import pytest
import sympy
from closed_form_helpers import reduced_fractions
from hypothesis import given, settings
from hypothesis import strategies as st
from sympy import E, Rational, exp, log

from generator.answers.floats import (
    TRUSTED,
    _bounded,
    exact_float,
    float_array,
    float_in_e,
)

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


def _thirty_digits(value: sympy.Expr) -> float:
    return float(sympy.N(value, 30))


def test_closed_forms_in_e_are_the_floats_of_their_30_digit_values():
    """manifest.json's numbers: the fixed-point path gives what sympy.N at 30 digits gives."""
    from closed_form_helpers import bank_entries

    from generator.answers.solve import factored_form, plain_number

    fast = 0
    for value in bank_entries():
        form = factored_form(value)
        if form is None:
            continue
        number = float_in_e(form.sign, form.numerator, form.denominator)
        assert number == _thirty_digits(value), value
        assert plain_number(value) == number
        fast += 1
    assert fast > 100


@settings(max_examples=300, deadline=None, derandomize=True)
@given(reduced_fractions(), st.sampled_from([1, -1]))
def test_random_fractions_in_e_are_the_floats_of_their_30_digit_values(fraction, sign):
    from generator.answers.solve import _from_fraction, factored_form

    numerator, denominator = fraction
    value = _from_fraction(numerator, denominator)
    form = factored_form(value) if value is not None else None
    if form is None:
        return  # not a closed form the solve stage makes on lists
    number = float_in_e(sign * form.sign, form.numerator, form.denominator)
    assert number == sign * _thirty_digits(value), value


def _convergent_of_e(digits: int) -> tuple[int, int]:
    """p, q with p/q a continued-fraction convergent of e and q > 10**digits: q e - p is about 1/q."""
    terms = [2] + [t for k in range(1, 200) for t in (1, 2 * k, 1)]
    p, q, p0, q0 = terms[0], 1, 1, 0
    for a in terms[1:]:
        p, q, p0, q0 = a * p + p0, a * q + q0, p, q
        if q > 10**digits:
            return p, q
    raise AssertionError


def test_terms_that_cancel_below_the_error_bound_are_not_trusted():
    p, q = _convergent_of_e(12)  # q e - p cancels 24 digits: still far inside 256 bits
    value = (q * E - p) / (E + 1)
    form = (1, (((q, -p), 1),)), (1, (((1, 1), 1),))
    assert float_in_e(1, *form) == _thirty_digits(value)
    p, q = _convergent_of_e(30)  # 60 digits cancel: beyond what the bound vouches for
    assert float_in_e(1, (1, (((q, -p), 1),)), (1, (((1, 1), 1),))) is None
    from generator.answers.solve import plain_number

    assert plain_number((q * E - p) / (E + 1)) == _thirty_digits((q * E - p) / (E + 1))  # sympy.N's answer

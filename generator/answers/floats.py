"""Exact answers as floats for the verify stage: fast, and as accurate as the checks need.

`sympy.N` evaluates a closed form such as e^2/(1 + e^2)^3 with mpmath at 20 digits, about half
a millisecond each; a build verifies thousands of distinct entries. Here the SymPy tree is
evaluated in double precision instead, together with a bound on the rounding error (first-order
forward error analysis, doubled for safety: relative errors add under products and powers,
absolute errors add under sums, exp turns the absolute error of its argument into a relative
one). A result is used only if that bound is at most `TRUSTED` of its size, i.e. it has at least
13 correct digits, against the 6 to 9 the checks compare; cancellation (a polynomial in e whose
terms nearly cancel), a node not handled here or an overflow sends the value to `sympy.N` at 20
digits, as before.
"""

from __future__ import annotations

import math
from functools import lru_cache
from typing import Any

import numpy as np
import sympy

__all__ = ["TRUSTED", "NotAFloatError", "exact_float", "float_array", "float_in_e"]

TRUSTED = 1e-13
_U = 2.0**-53  # the unit roundoff of double precision


class _Untrusted(Exception):
    """The fast path cannot vouch for this value; use sympy.N."""


@lru_cache(maxsize=1 << 16)
def exact_float(value: Any) -> float:
    """The float nearest to an exact SymPy number (to within `TRUSTED` relative); cached."""
    value = sympy.sympify(value)
    try:
        result, error = _bounded(value)
        if error <= TRUSTED * abs(result) and math.isfinite(result):
            return result
    except (_Untrusted, OverflowError, ZeroDivisionError, ValueError):
        pass
    try:
        number = complex(sympy.N(value, 20))
    except (OverflowError, TypeError, ValueError):  # (mpmath's precision overflows for e^(e^(e^(e^3))))
        raise NotAFloatError(f"{_short(value)} is too large for a float") from None
    if number.imag:
        raise NotAFloatError(f"{_short(value)} is not a real number")
    if not math.isfinite(number.real):
        raise NotAFloatError(f"{_short(value)} is too large for a float")
    return number.real


class NotAFloatError(ArithmeticError):
    """An exact value that has no float (too large, or not real); the caller says where."""


def _short(value: Any) -> str:
    text = sympy.sstr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def float_array(array: np.ndarray) -> np.ndarray:
    """An array of exact numbers as a float array of the same shape."""
    array = np.asarray(array)
    return np.fromiter(map(exact_float, array.flat), dtype=float, count=array.size).reshape(array.shape)


def _bounded(e: sympy.Expr) -> tuple[float, float]:
    """(value, bound on its absolute error) in double precision; raises `_Untrusted` if unsure."""
    if e.is_Integer or e.is_Rational:
        value = int(e.p) / int(e.q)  # correctly rounded
        return value, _U * abs(value)
    if e is sympy.E:
        return math.e, _U * math.e
    if e is sympy.pi:
        return math.pi, _U * math.pi
    if isinstance(e, sympy.Add):
        terms = [_bounded(a) for a in e.args]
        value = math.fsum(v for v, _ in terms)  # correctly rounded sum of the computed terms
        return value, sum(err for _, err in terms) + _U * abs(value)
    if isinstance(e, sympy.Mul):
        factors = [_bounded(a) for a in e.args]
        value, relative = 1.0, 0.0
        for v, err in factors:
            value *= v
            relative += _relative(v, err)
        return value, 2 * (relative + len(factors) * _U) * abs(value)
    if isinstance(e, sympy.Pow) and e.exp.is_Rational:
        base, err = _bounded(e.base)
        exponent = float(e.exp)
        if base <= 0 and not e.exp.is_Integer:
            raise _Untrusted
        value = base**exponent
        # pow() is within an ulp or two; a fractional exponent adds its own rounding times log(base).
        relative = abs(exponent) * _relative(base, err) + 2 * _U
        if not e.exp.is_Integer:
            relative += abs(exponent) * _U * abs(math.log(base))
        return value, 2 * relative * abs(value)
    if isinstance(e, sympy.exp):
        argument, err = _bounded(e.args[0])
        value = math.exp(argument)
        return value, 2 * (err + 2 * _U) * value
    if isinstance(e, sympy.log):
        argument, err = _bounded(e.args[0])
        if argument <= 0:
            raise _Untrusted
        value = math.log(argument)
        return value, 2 * (_relative(argument, err) + 2 * _U * abs(value))
    raise _Untrusted


def _relative(value: float, error: float) -> float:
    if value == 0:
        if error == 0:
            return 0.0
        raise _Untrusted
    return error / abs(value)


# e to 256 bits (floor(e * 2**256)), for `float_in_e`: from mpmath, once.
_BITS = 256
_E_FIXED = int(sympy.E.evalf(90) * sympy.Integer(2) ** _BITS)
_MARGIN = 120  # a polynomial's value is trusted when its error bound is below 2**-120 of it


def float_in_e(sign: int, numerator: Any, denominator: Any) -> float | None:
    """The correctly rounded float of sign * N(e) / D(e), or None when it cannot vouch for it.

    N and D are (integer coefficient, ((coefficients in e, highest power first), multiplicity),
    ...), as `generator.answers.solve.FactoredForm` holds them. Each polynomial is evaluated on integers
    in fixed point (e to 256 bits, an error bound carried along; a polynomial whose terms cancel
    so far that the bound exceeds 2**-120 of its value is not trusted), the products are taken
    exactly and one integer division rounds the quotient (Python's int / int is correctly
    rounded). The quotient is within about 2**-110 of the true value, relative, so its float is
    the one `sympy.N` at 30 digits gives (manifest.json's numbers) unless the value lies within
    10**-30 of halfway between two floats; and it takes a few microseconds, not half a millisecond.
    """
    top, top_shift = _product(numerator)
    bottom, bottom_shift = _product(denominator)
    if top is None or bottom is None or bottom == 0:
        return None
    shift = bottom_shift - top_shift  # value = top / bottom * 2**shift
    try:
        result = (top << shift) / bottom if shift >= 0 else top / (bottom << -shift)
    except OverflowError:
        return None
    return sign * result


def _product(factors: Any) -> tuple[int | None, int]:
    """coefficient * prod(polynomial(e) ** multiplicity) as (integer, shift): the value is about
    integer / 2**shift; (None, 0) if a polynomial is not trusted."""
    coefficient, polynomials = factors
    value, shift = int(coefficient), 0
    for coefficients, multiplicity in polynomials:
        fixed = _polynomial(coefficients)
        if fixed is None:
            return None, 0
        value *= fixed**multiplicity
        shift += _BITS * multiplicity
    return value, shift


def _polynomial(coefficients: tuple[int, ...]) -> int | None:
    """p(e) * 2**256 by Horner's rule, to within a bound; None when the bound is not small beside it."""
    value = int(coefficients[0]) << _BITS
    error = 0  # in units of 2**-256
    for c in coefficients[1:]:
        # value * e: the error so far grows by e < 3; e's last bit and the shift add |value| + 1.
        error = error * 3 + (abs(value) >> _BITS) + 2
        value = ((value * _E_FIXED) >> _BITS) + (int(c) << _BITS)
    if abs(value) < error << _MARGIN:
        return None
    return value

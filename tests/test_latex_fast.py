"""Closed forms printed from their factors (generator.render.latex) are SymPy's LaTeX, character for character."""

from __future__ import annotations

import sympy
from closed_form_helpers import bank_entries, reduced_fractions
from hypothesis import given, settings

from generator.answers import solve
from generator.render.latex import _latex_by_sympy, _latex_factored, latex_scalar


def _both(value: sympy.Expr) -> tuple[str | None, str]:
    form = solve.factored_form(value)
    assert form is not None, value
    return _latex_factored(form), _latex_by_sympy(value)


def test_every_closed_form_of_the_bank_prints_as_sympy_prints_it():
    values = [value for value in bank_entries() if solve.factored_form(value) is not None]
    fast = 0
    for value in values:
        got, want = _both(value)
        if got is not None:
            assert got == want, value
            fast += 1
    assert fast > 100 and fast >= 0.9 * len(values)


def test_only_canonical_closed_forms_have_factors():
    """Numbers, e/2 + 1/2 (SymPy's shape) and an uncanonical spelling of a closed form print by SymPy."""
    e = sympy.E
    assert solve.factored_form(sympy.Rational(1, 2)) is None
    assert solve.factored_form(e / 2 + sympy.Rational(1, 2)) is None
    assert solve.factored_form(sympy.log(1 + e)) is None
    assert solve.factored_form((e**2 + e) / (e + 1) ** 3) is None  # canonical: e/(e + 1)^2
    canonical = solve._tidy(e / (1 + e) ** 2 + 0 * e)
    assert solve.factored_form(canonical) is not None


@settings(max_examples=300, deadline=None, derandomize=True)
@given(reduced_fractions())
def test_random_fractions_print_as_sympy_prints_them(fraction):
    numerator, denominator = fraction
    if len(denominator) <= 1:
        return  # not a closed form the solve stage makes on lists
    value = solve._from_fraction(numerator, denominator)
    got, want = _both(value)
    if got is not None:
        assert got == want, value
    assert latex_scalar(value) == want


def test_factors_kept_by_the_solve_stage_are_the_factors_of_the_expression():
    """`factored_form` answers from what `_canonical` kept; worked out from the expression itself
    (as for a value the solve stage did not make), every bank entry has the same factors."""
    kept = 0
    for value in bank_entries():
        if not isinstance(value, sympy.Basic):
            continue
        known = solve._FACTORS.get(value)
        assert solve.factored_form(value) == solve._factors_of(value), value
        kept += known is not None
    assert kept > 100

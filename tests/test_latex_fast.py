"""Closed forms printed from their factors (generator.latex) are SymPy's LaTeX, character for character."""

from __future__ import annotations

from pathlib import Path

import sympy
from hypothesis import given, settings
from hypothesis import strategies as st

from generator import solve
from generator.latex import _latex_by_sympy, _latex_factored, latex_scalar


def _both(value: sympy.Expr) -> tuple[str | None, str]:
    form = solve.factored_form(value)
    assert form is not None, value
    return _latex_factored(form), _latex_by_sympy(value)


def test_every_closed_form_of_the_bank_prints_as_sympy_prints_it():
    from generator.sampling import sample_variants
    from generator.spec import load_bank

    bank = load_bank(Path(__file__).resolve().parent.parent / "question_bank")
    for question in bank.questions.values():
        drawn, _ = sample_variants(question, 11, range(6))
        for inst in drawn.values():
            solve.solve(inst)
    values = list(solve._FACTORED)
    fast = 0
    for value in values:
        got, want = _both(value)
        if got is not None:
            assert got == want, value
            fast += 1
    assert fast > 100 and fast >= 0.9 * len(values)


polynomial = st.lists(st.integers(-9, 9), min_size=1, max_size=6).filter(lambda c: c[0] != 0)


@settings(max_examples=300, deadline=None, derandomize=True)
@given(polynomial, polynomial, st.integers(0, 3), st.integers(0, 2))
def test_random_fractions_print_as_sympy_prints_them(top, bottom, shift_top, power):
    """Fractions of polynomials in e (powers of sums, factors of e, contents, signs) chosen at random."""
    from sympy.polys.densearith import dup_mul, dup_pow
    from sympy.polys.euclidtools import dup_cancel

    numerator = dup_mul(top + [0] * shift_top, [1, 1], sympy.ZZ) if power else top + [0] * shift_top
    denominator = dup_pow(bottom, power + 1, sympy.ZZ)
    numerator, denominator = dup_cancel(numerator, denominator, sympy.ZZ)
    if len(denominator) <= 1:
        return  # not a closed form the solve stage makes on lists
    value = solve._canonical_from_polynomials(numerator, denominator)
    got, want = _both(value)
    if got is not None:
        assert got == want, value
    assert latex_scalar(value) == want

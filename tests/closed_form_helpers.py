"""Closed forms in e for the printer tests (tests/test_latex_fast.py, tests/test_keytable.py):
every exact answer entry of the project's bank, and random fractions of polynomials in e."""

from __future__ import annotations

from functools import lru_cache

import sympy
from conftest import BANK
from hypothesis import strategies as st

from generator.answers import solve


@lru_cache(maxsize=1)
def bank_entries() -> frozenset[sympy.Expr]:
    """Every entry of every answer of the bank's questions, seed 11, six variants each."""
    from generator.answers.sampling import sample_variants
    from generator.spec.model import load_bank

    bank = load_bank(BANK)
    entries = set()
    for question in bank.questions.values():
        drawn, _ = sample_variants(question, 11, range(6))
        for inst in drawn.values():
            for answer in solve.solve(inst).parts:
                entries.update(answer.value.flat)
    return frozenset(entries)


_polynomial = st.lists(st.integers(-9, 9), min_size=1, max_size=6).filter(lambda c: c[0] != 0)


@st.composite
def reduced_fractions(draw: st.DrawFn) -> tuple[list[int], list[int]]:
    """A reduced (numerator, denominator) pair of coefficient lists in e, chosen at random: powers
    of sums, factors of e, contents and signs."""
    from sympy.polys.densearith import dup_mul, dup_pow
    from sympy.polys.euclidtools import dup_cancel

    top, bottom = draw(_polynomial), draw(_polynomial)
    shift_top, power = draw(st.integers(0, 3)), draw(st.integers(0, 2))
    numerator = dup_mul(top + [0] * shift_top, [1, 1], sympy.ZZ) if power else top + [0] * shift_top
    denominator = dup_pow(bottom, power + 1, sympy.ZZ)
    return dup_cancel(numerator, denominator, sympy.ZZ)

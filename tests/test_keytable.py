"""The exact column of answers.csv (generator.outputs.keytable): SymPy's plain text, read back to the same value."""

from __future__ import annotations

import sympy
from closed_form_helpers import bank_entries, reduced_fractions
from conftest import BANK
from hypothesis import given, settings

from generator.answers import solve
from generator.outputs.keytable import _exact_text, _factored_text


def _same(text: str, value: sympy.Expr) -> bool:
    """`text` read back by sympify is `value` (sympify multiplies numbers into sums: compare as fractions)."""
    # (a formula's symbols are real, as the question declares them)
    symbols = {s.name: s for s in getattr(value, "free_symbols", ())}
    return sympy.cancel(sympy.sympify(text, locals=symbols) - value) == 0


def test_every_exact_entry_of_the_bank_reads_back_to_itself():
    factored = 0
    for value in bank_entries():
        text = _exact_text(value)
        assert _same(text, value), (text, value)
        form = solve.factored_form(value)
        if form is not None:
            assert text == _factored_text(form)
            factored += 1
        else:
            assert text == sympy.sstr(value)
    assert factored > 100


def test_closed_forms_read_in_descending_powers_of_e_like_the_latex_column():
    e = sympy.E
    cases = {
        e**2 / (1 + e**2): "exp(2)/(exp(2) + 1)",
        -(3 + 2 * e) / (2 * (1 + e)): "-(2*E + 3)/(2*(E + 1))",
        4 * e**4 / (1 + e**4) ** 2: "4*exp(4)/(exp(4) + 1)**2",
        -(e**2 - 4 * e) / (1 + e) ** 3: "-(exp(2) - 4*E)/(E + 1)**3",
        e / (e + 1) ** 2: "E/(E + 1)**2",
        1 / (e + 1): "1/(E + 1)",
        2 / e: "2/E",
        (e + 1) ** 2 / (2 * e**3): "(E + 1)**2/(2*exp(3))",
    }
    for value, text in cases.items():
        canonical = solve._tidy(value)
        assert _exact_text(canonical) == text, canonical
        assert _same(text, canonical)


def test_numbers_and_other_shapes_are_sympys_text():
    e = sympy.E
    for value in (sympy.Rational(-1, 2), sympy.Integer(3), e / 2 + sympy.Rational(1, 2), sympy.log(1 + e)):
        assert _exact_text(value) == sympy.sstr(value)


@settings(max_examples=300, deadline=None, derandomize=True)
@given(reduced_fractions())
def test_random_fractions_read_back_to_themselves(fraction):
    numerator, denominator = fraction
    value = solve._from_fraction(numerator, denominator)
    if value is None:
        return  # a polynomial over an integer: not a closed form the solve stage makes on lists
    assert _same(_exact_text(value), value)


def test_the_latex_column_is_the_keys_text_tensors_included(tmp_path):
    """Tensor blocks are labelled with the index form's names in the key, manifest.json and answers.csv alike."""
    import csv
    import io
    import json

    from generator.build import BuildOptions, build

    build(BuildOptions(bank=BANK, out=tmp_path, pdf=False, variants=2, worksheets=("nn-derivatives",)))
    manifest = json.loads((tmp_path / "manifest.json").read_text(encoding="utf-8"))
    latex = {(v["id"], q["id"], p["id"]): p["latex"] for v in manifest["variants"] for q in v["questions"] for p in q["parts"]}
    rows = list(csv.DictReader(io.StringIO((tmp_path / "answers.csv").read_text(encoding="utf-8"))))
    tensors = [row for row in rows if r"\underset" in row["latex"]]
    assert tensors, "the bank has tensor answers"
    key = (tmp_path / "nn-derivatives" / "A" / "key.tex").read_text(encoding="utf-8")
    for row in rows:
        assert row["latex"] == latex[(row["variant"], row["question"], row["part"])]
    for row in tensors:
        if row["variant"] == "A":
            assert row["latex"] in key

"""What the question bank needs from the shared stages: expression functions, exact forms in e,
LaTeX of closed forms, and worksheet headings and footnotes.

(Kept apart from the per-module test files of the pipeline so that both merge cleanly; each test
names the public function it exercises.)
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import sympy
from conftest import write

from generator.answers.solve import tidy_array
from generator.errors import ExpressionError, Location, SpecError
from generator.render.latex import latex_approx, latex_matrix, latex_scalar
from generator.spec.expr import EXACT, NUMERIC, evaluate, parse_expression
from generator.spec.model import load_worksheet

E = sympy.E
HERE = Location("q.yaml", 1, 1)


def run(text: str, env: dict[str, object], backend=EXACT):  # type: ignore[no-untyped-def]
    return evaluate(parse_expression(text, HERE, set(env), "define.t"), env, backend)


def ints(*values: int) -> np.ndarray:
    return np.array([sympy.Integer(v) for v in values], dtype=object)


def test_step_is_the_unit_step() -> None:
    u = ints(-2, 3, -1)
    assert list(run("step(u)", {"u": u})) == [0, 1, 0]
    assert list(run("step(u)", {"u": u.astype(float)}, NUMERIC)) == [0.0, 1.0, 0.0]


def test_transpose_reorders_axes() -> None:
    X = np.arange(6).reshape(2, 3).astype(object)
    out = run("transpose(outer(X, eye(2)), 0, 2, 3, 1)", {"X": X})
    assert out.shape == (2, 2, 2, 3)
    assert out[1, 0, 0, 2] == X[1, 2] and out[1, 0, 1, 2] == 0
    assert run("transpose(X)", {"X": X}).shape == (3, 2)


def test_transpose_needs_a_reordering_of_all_axes() -> None:
    with pytest.raises(ExpressionError) as info:
        run("transpose(X, 0, 0)", {"X": np.zeros((2, 2), dtype=object)})
    assert str(info.value) == (
        "q.yaml:1:1: cannot evaluate 'transpose(X, 0, 0)': transpose of an order-2 array needs a reordering of 0..1, got [0, 0]"
    )


def test_exact_tanh_is_written_in_terms_of_e() -> None:
    (value,) = run("tanh(u)", {"u": ints(2)})
    assert abs(sympy.N(value - sympy.tanh(2), 60)) < 1e-50
    assert not value.has(sympy.tanh) and value.has(sympy.exp)


@pytest.mark.parametrize(
    ("value", "tex"),
    [
        (
            1 / (1 + sympy.exp(-2)) * (1 - 1 / (1 + sympy.exp(-2))) * (1 / (1 + sympy.exp(-2)) - 1),
            r"- \frac{e^{2}}{\left(e^{2} + 1\right)^{3}}",
        ),
        (1 - 1 / (1 + E**3), r"\frac{e^{3}}{e^{3} + 1}"),
        ((-E - 2) / (E + 1), r"- \frac{e + 2}{e + 1}"),
        (sympy.Rational(3, 4), r"\frac{3}{4}"),
        (sympy.Heaviside(2), "1"),
    ],
)
def test_tidy_gives_one_fraction_with_square_free_factors(value: sympy.Expr, tex: str) -> None:
    (tidy,) = tidy_array(np.array([value], dtype=object))
    assert latex_scalar(tidy) == tex
    assert sympy.simplify(tidy - value) == 0


@pytest.mark.parametrize(
    ("value", "tex"),
    [
        (E**2 / (E**2 + 1), r"\frac{e^{2}}{e^{2} + 1}"),
        (E**3 / (E**3 + E**2 + E + 1), r"\frac{e^{3}}{e^{3} + e^{2} + e + 1}"),
        (sympy.exp(-1), r"\frac{1}{e}"),
        (sympy.Rational(-1, 2), r"- \frac{1}{2}"),
    ],
)
def test_latex_scalar_orders_powers_of_e(value: sympy.Expr, tex: str) -> None:
    assert latex_scalar(value) == tex


def test_latex_matrix_uses_display_fractions_for_closed_forms() -> None:
    assert latex_matrix(np.array([E / (E + 1), sympy.Integer(2)], dtype=object)) == (
        r"\begin{bmatrix}\dfrac{e}{e + 1} \\[1ex] 2\end{bmatrix}"
    )
    assert latex_matrix(np.array([[1, 2]], dtype=object)) == r"\begin{bmatrix}1 & 2\end{bmatrix}"


def test_latex_approx() -> None:
    assert latex_approx(np.array(E / (E + 1), dtype=object)) == "0.7311"
    assert latex_approx(np.array([sympy.Integer(0), -sympy.Rational(1, 3), sympy.exp(-12)], dtype=object)) == (
        r"\begin{bmatrix}0 \\ -0.3333 \\ 6.144 \cdot 10^{-6}\end{bmatrix}"
    )


def test_worksheet_headings_and_footnotes(tmp_path: Path) -> None:
    path = write(
        tmp_path / "w.yaml",
        """
        id: w
        title: W
        questions:
          - {id: a, heading: "Linear maps."}
          - b
          - {id: c, heading: "Losses.", footnote: "Corrected."}
        """,
    )
    sheet = load_worksheet(path)
    assert sheet.questions == ("a", "b", "c")
    assert sheet.headings == (("a", "Linear maps."), ("c", "Losses."))
    assert sheet.notes == (("c", "Corrected."),)


def test_worksheet_headings_start_with_the_first_question(tmp_path: Path) -> None:
    path = write(tmp_path / "w.yaml", "id: w\ntitle: W\nquestions: [a, {id: b, heading: H}]\n")
    with pytest.raises(SpecError) as info:
        load_worksheet(path)
    assert str(info.value).endswith("w.yaml:3:13: questions[0]: the first question needs a heading when others have one")


def test_worksheet_entries_reject_unknown_keys(tmp_path: Path) -> None:
    path = write(tmp_path / "w.yaml", "id: w\ntitle: W\nquestions: [{id: a, headline: H}]\n")
    with pytest.raises(SpecError) as info:
        load_worksheet(path)
    assert str(info.value).endswith("w.yaml:3:21: questions[0].headline: unknown key 'headline'; did you mean 'heading'?")

"""The new kinds of parts: each is solved exactly and checked by its own numeric method, and a
planted wrong key of each kind stops the build."""

from __future__ import annotations

import dataclasses
import textwrap

import numpy as np
import pytest
import sympy
from conftest import write

from generator.answers.sampling import sample
from generator.answers.solve import Solution, solve
from generator.answers.verify import verify
from generator.errors import VerifyError
from generator.outputs.manifest import manifest_entry
from generator.spec.model import load_question

DERIVATIVES = """
id: derivatives
title: D
symbols: [x]
parameters:
  a: {entries: [1, 3]}
  b: {entries: [-2, 2], exclude: [0]}
  p: {shape: [2], entries: [-2, 2]}
  x0: {entries: [0.50, 0.80], step: 0.01}
define:
  f: a * x**3 + sin(b * x)
  f_at: subs(f, x, x0)
  q: a * p[0]**2 * p[1] + b * p[0] * p[1]**2 + exp(p[1])
parts:
  - {id: df, of: f, wrt: x, prompt: "f'"}
  - {id: d2f, of: f, wrt: [x, x], prompt: "f''"}
  - {id: d2f_at, of: f_at, wrt: [x0, x0], prompt: "f''(x0)"}
  - {id: grad, of: q, gradient: p, prompt: g}
  - {id: hess, of: q, hessian: p, prompt: H}
  - {id: entry, of: q, wrt: "p[1]", prompt: e}
  - {id: mixed, of: q, wrt: ["p[0]", "p[1]"], prompt: m}
stem: s
"""


def solved(tmp_path, text: str, seed: int = 1) -> Solution:
    question = load_question(write(tmp_path / "q.yaml", textwrap.dedent(text)))
    return solve(sample(question, seed, 0))


def answer(solution: Solution, part_id: str) -> np.ndarray:
    return next(a.value for a in solution.parts if a.spec.id == part_id)


def planted(solution: Solution, part_id: str, value: np.ndarray) -> Solution:
    """The solution with one part's exact answer replaced (a solver that went wrong)."""
    parts = tuple(dataclasses.replace(a, value=value) if a.spec.id == part_id else a for a in solution.parts)
    return dataclasses.replace(solution, parts=parts)


def test_derivatives_have_their_exact_values_and_shapes(tmp_path):
    solution = solved(tmp_path, DERIVATIVES)
    params = solution.instance.params
    a, b, (p0, p1), x0 = params["a"][()], params["b"][()], params["p"], params["x0"][()]
    x = sympy.Symbol("x", real=True)
    assert sympy.expand(answer(solution, "df")[()] - (3 * a * x**2 + b * sympy.cos(b * x))) == 0
    assert sympy.expand(answer(solution, "d2f")[()] - (6 * a * x - b**2 * sympy.sin(b * x))) == 0
    assert sympy.expand(answer(solution, "d2f_at")[()] - (6 * a * x0 - b**2 * sympy.sin(b * x0))) == 0
    hess = answer(solution, "hess")
    assert hess.shape == (2, 2) and hess[0, 1] == hess[1, 0] == 2 * a * p0 + 2 * b * p1
    assert hess[1, 1] == 2 * b * p0 + sympy.exp(p1)
    assert answer(solution, "grad").shape == (2,)
    assert answer(solution, "entry").shape == () and answer(solution, "entry")[()] == answer(solution, "grad")[1]
    assert answer(solution, "mixed")[()] == hess[0, 1]


def test_every_derivative_passes_its_check_for_many_seeds(tmp_path):
    question = load_question(write(tmp_path / "q.yaml", DERIVATIVES))
    for seed in range(8):
        verify(solve(sample(question, seed, 0)))


def test_the_manifest_holds_what_was_asked(tmp_path):
    entry = manifest_entry(solved(tmp_path, DERIVATIVES))
    parts = {p["id"]: p for p in entry["parts"]}
    assert parts["entry"]["wrt"] == "p[1]" and parts["entry"]["shape"] == []
    assert isinstance(parts["entry"]["value"], (int, float))
    assert parts["mixed"]["wrt"] == ["p[0]", "p[1]"] and parts["hess"]["wrt"] == ["p", "p"]
    assert parts["hess"]["shape"] == [2, 2]
    x = sympy.Symbol("x", real=True)
    assert sympy.sympify(parts["df"]["value"], locals={"x": x}) == answer(solved(tmp_path, DERIVATIVES), "df")[()]


@pytest.mark.parametrize("part_id, message", [
    ("df", "the formula (nested finite differences) at x = "),
    ("d2f", "the formula (nested finite differences) at x = "),
    ("d2f_at", "the derivative (nested finite differences, h = 0.0001)"),
    ("hess", "the derivative (nested finite differences, h = 0.0001)"),
    ("entry", "the derivative (nested finite differences, h = 1e-05)"),
    ("mixed", "the derivative (nested finite differences, h = 0.0001)"),
])
def test_a_planted_wrong_derivative_is_caught(tmp_path, part_id, message):
    solution = solved(tmp_path, DERIVATIVES)
    wrong = answer(solution, part_id).copy()
    wrong[(0,) * wrong.ndim] = wrong[(0,) * wrong.ndim] + sympy.Rational(1, 100)
    with pytest.raises(VerifyError) as info:
        verify(planted(solution, part_id, wrong))
    assert f"question 'derivatives', part '{part_id}', variant A (seed 1): {message}" in str(info.value)


def test_a_hessian_that_is_not_symmetric_is_caught(tmp_path):
    solution = solved(tmp_path, DERIVATIVES)
    wrong = answer(solution, "hess").copy()
    wrong[0, 1] = wrong[0, 1] + 1
    with pytest.raises(VerifyError, match="part 'hess', variant A: the Hessian is not symmetric"):
        verify(planted(solution, "hess", wrong))


def test_an_entry_outside_the_parameter_is_refused(tmp_path):
    text = DERIVATIVES.replace('wrt: "p[1]"', 'wrt: "p[2]"')
    with pytest.raises(Exception, match=r"p\[2\] is outside 'p', which has shape \[2\] \(indices count from 0\)"):
        solved(tmp_path, text)


FORMULAS = """
id: formulas
title: F
symbols: [x]
parameters:
  r: {entries: [-3, 3], exclude: [0]}
  s: {entries: [1, 4]}
define:
  product: (x - r) * (x + s)
  expanded: x**2 + (s - r) * x - r * s
  ratio: (x**2 - r**2) / (x - r)
parts:
  - {id: expand, of: product, form: expand, prompt: e}
  - {id: factor, of: expanded, form: factor, prompt: f}
  - {id: simplify, of: ratio, form: simplify, prompt: s}
  - {id: df, of: product, wrt: x, form: factor, prompt: d}
stem: s
"""


def test_formula_answers_are_in_the_form_asked_for(tmp_path):
    solution = solved(tmp_path, FORMULAS)
    r, s = solution.instance.params["r"][()], solution.instance.params["s"][()]
    x = sympy.Symbol("x", real=True)
    assert answer(solution, "expand")[()] == x**2 + (s - r) * x - r * s
    assert answer(solution, "factor")[()] == sympy.factor((x - r) * (x + s))
    assert answer(solution, "factor")[()].is_Mul
    assert answer(solution, "simplify")[()] == x + r
    for seed in range(6):
        verify(solved(tmp_path, FORMULAS, seed))


@pytest.mark.parametrize("form, part_id", [("expand", "expand"), ("factor", "factor"), ("simplify", "simplify")])
def test_a_wrong_formula_is_caught_at_random_points(tmp_path, monkeypatch, form, part_id):
    from generator.answers import solve as solve_module

    right = solve_module.FORMS[form]
    monkeypatch.setitem(solve_module.FORMS, form, lambda f: right(f) + sympy.Symbol("x", real=True) / 1000)
    with pytest.raises(VerifyError) as info:
        verify(solved(tmp_path, FORMULAS))
    assert f"part '{part_id}', variant A (seed 1): the formula at x = " in str(info.value)


LINEAR = """
id: linear
title: L
parameters:
  l1: {entries: [-4, 4]}
  l2: {entries: [-4, 4]}
  c: {entries: [1, 2]}
  M: {shape: [3, 3], entries: [-3, 3]}
  r: {shape: [3], entries: [-3, 3]}
constraints:
  - l1 < l2
  - det(M) != 0
derived:
  t: (l2 - l1) / 2
define:
  S: "[[(l1 + l2) / 2, t], [t, (l1 + l2) / 2]]"   # eigenvalues l1 and l2, eigenvectors (1, 1) and (-1, 1)
  P: "[[1, 2, c], [2, 4, 2 * c], [0, 1, 1]]"
  A: M
parts:
  - {id: det, of: A, find: determinant, prompt: d}
  - {id: inv, of: A, find: inverse, prompt: i}
  - {id: rank, of: P, find: rank, prompt: r}
  - {id: eigenvalues, of: S, find: eigenvalues, prompt: e}
  - {id: eigenvectors, of: S, find: eigenvectors, prompt: v}
  - {id: solution, of: A, find: solution, rhs: r, prompt: s}
stem: s
"""


def test_linear_algebra_answers_are_exact(tmp_path):
    solution = solved(tmp_path, LINEAR)
    params = solution.instance.params
    l1, l2 = params["l1"][()], params["l2"][()]
    m = sympy.Matrix(params["M"].tolist())
    assert answer(solution, "det")[()] == m.det()
    assert sympy.Matrix(answer(solution, "inv").tolist()) == m.inv()
    assert answer(solution, "rank")[()] == 2
    assert list(answer(solution, "eigenvalues")) == [l1, l2]
    assert answer(solution, "eigenvectors").tolist() == [[-1, 1], [1, 1]]
    assert list(answer(solution, "solution")) == list(m.LUsolve(sympy.Matrix(params["r"].tolist())))
    for seed in range(6):
        verify(solved(tmp_path, LINEAR, seed))


@pytest.mark.parametrize("part_id, message", [
    ("det", "the determinant (numpy.linalg.det) disagrees"),
    ("inv", "A times the inverse (against I) disagrees"),
    ("rank", "the rank (matrix_rank) disagrees"),
    ("eigenvalues", "the eigenvalues (numpy.linalg.eigvals) disagrees"),
    ("eigenvectors", "A v against lambda v (numpy.linalg.eigvals) disagrees"),
    ("solution", "the residual A x - b disagrees"),
])
def test_a_wrong_linear_algebra_answer_is_caught(tmp_path, monkeypatch, part_id, message):
    from generator.answers import solve as solve_module

    kind = "system" if part_id == "solution" else "linalg"
    right = solve_module.SOLVERS[kind]

    def wrong(context, part):
        result = right(context, part)
        if part.id != part_id:
            return result
        value = result.value.copy()
        value[(0,) * value.ndim] += 1
        return dataclasses.replace(result, value=value)

    monkeypatch.setitem(solve_module.SOLVERS, kind, wrong)
    with pytest.raises(VerifyError) as info:
        verify(solved(tmp_path, LINEAR))
    assert f"part '{part_id}', variant A (seed 1): {message}" in str(info.value)


ROOTS = """
id: roots
title: R
symbols: [x]
parameters:
  r1: {entries: [-3, 0]}
  r2: {entries: [1, 3]}
  k: {entries: [1, 3]}
define:
  p: (x - r1) * (x - r2) * (x**2 + k)
  g: exp(x) - k - 1
parts:
  - {id: roots, of: p, find: roots, prompt: r}
  - {id: log, of: g, find: roots, prompt: l}
stem: s
"""


def test_real_roots_are_sorted_and_checked(tmp_path):
    solution = solved(tmp_path, ROOTS)
    params = solution.instance.params
    assert list(answer(solution, "roots")) == [params["r1"][()], params["r2"][()]]
    assert list(answer(solution, "log")) == [sympy.log(params["k"][()] + 1)]
    for seed in range(6):
        verify(solved(tmp_path, ROOTS, seed))


@pytest.mark.parametrize("change, message", [
    (lambda v: v + 1, "f(root) (substituted back) disagrees"),
    (lambda v: v[:1], "the key has 1 real roots [-2.0], numpy.roots finds 2: [-2.0, 2.0]"),  # one left out: only counting sees it
])
def test_a_wrong_root_is_caught(tmp_path, monkeypatch, change, message):
    from generator.answers import solve as solve_module

    right = solve_module.SOLVERS["roots"]

    def wrong(context, part):
        result = right(context, part)
        return dataclasses.replace(result, value=change(result.value)) if part.id == "roots" else result

    monkeypatch.setitem(solve_module.SOLVERS, "roots", wrong)
    with pytest.raises(VerifyError) as info:
        verify(solved(tmp_path, ROOTS))
    assert f"part 'roots', variant A (seed 1): {message}" in str(info.value)


INTEGRALS = """
id: integrals
title: I
symbols: [x]
parameters:
  a: {entries: [1, 3]}
  b: {entries: [1, 2]}
define:
  f: a * x * exp(b * x)
  g: 3 * a * x**2 + cos(x)
parts:
  - {id: F, of: f, integrate: x, prompt: F}
  - {id: I, of: g, integrate: x, from: 0, to: b, prompt: I}
stem: s
"""


def test_integrals_are_exact_and_checked(tmp_path):
    solution = solved(tmp_path, INTEGRALS)
    a, b = solution.instance.params["a"][()], solution.instance.params["b"][()]
    x = sympy.Symbol("x", real=True)
    assert sympy.simplify(sympy.diff(answer(solution, "F")[()], x) - a * x * sympy.exp(b * x)) == 0
    assert sympy.simplify(answer(solution, "I")[()] - (a * b**3 + sympy.sin(b))) == 0
    for seed in range(6):
        verify(solved(tmp_path, INTEGRALS, seed))


@pytest.mark.parametrize("part_id, message", [
    ("F", "the antiderivative's derivative (central differences) at x = "),
    ("I", "the integral (mpmath.quad) disagrees"),
])
def test_a_wrong_integral_is_caught(tmp_path, monkeypatch, part_id, message):
    from generator.answers import solve as solve_module

    right = solve_module.SOLVERS["integral"]
    x = sympy.Symbol("x", real=True)

    def wrong(context, part):
        result = right(context, part)
        change = x**2 / 100 if part.id == "F" else sympy.Rational(1, 100)
        return dataclasses.replace(result, value=np.asarray(result.value[()] + change, dtype=object)) \
            if part.id == part_id else result

    monkeypatch.setitem(solve_module.SOLVERS, "integral", wrong)
    with pytest.raises(VerifyError) as info:
        verify(solved(tmp_path, INTEGRALS))
    assert f"part '{part_id}', variant A (seed 1): {message}" in str(info.value)


def test_an_integral_without_a_closed_form_is_refused_at_check(tmp_path):
    from generator.commands.check import CheckOptions, check

    root = tmp_path / "bank"
    write(root / "questions" / "q.yaml", INTEGRALS.replace("a * x * exp(b * x)", "a * x**x"))
    write(root / "worksheets" / "w.yaml", "id: w\ntitle: W\nquestions: [integrals]\n")
    report = check(CheckOptions(bank=root, seeds=2, compile=False))
    assert any("part 'F' variant A: SymPy cannot integrate" in problem and "in closed form; choose an integrand with "
               "an elementary antiderivative" in problem for problem in report.problems), report.problems


def test_a_planted_wrong_key_stops_the_build_naming_question_part_variant_and_values(tmp_path, monkeypatch):
    from generator.answers import solve as solve_module
    from generator.build import BuildOptions, build
    from generator.errors import GeneratorError

    root = tmp_path / "bank"
    write(root / "questions" / "linear.yaml", LINEAR)
    write(root / "worksheets" / "w.yaml", "id: w\ntitle: W\nquestions: [linear]\n")
    right = solve_module.SOLVERS["linalg"]

    def wrong(context, part):
        result = right(context, part)
        if part.id != "det" or context.instance.variant != "B":
            return result
        return dataclasses.replace(result, value=np.asarray(result.value[()] + 1, dtype=object))

    monkeypatch.setitem(solve_module.SOLVERS, "linalg", wrong)
    with pytest.raises(GeneratorError) as info:
        build(BuildOptions(bank=root, out=tmp_path / "out", pdf=False, variants=3, seed=5))
    message = str(info.value)
    assert "question 'linear', part 'det', variant B (seed 5): the determinant (numpy.linalg.det) disagrees at index []: " \
           "exact " in message and ", numeric " in message


RELU = """
id: relu
title: R
parameters:
  u: {shape: [3], entries: [-1, 1]}
  W: {shape: [2, 3], entries: [-1, 1]}
constraints:
  - any(u == 0)
define:
  z: relu(u)
  E: sum(relu(W @ u))
index:
  ranges: {j: 3, i: 3}
  define:
    "z[j]": relu(u[j])
parts:
  - id: dz_du
    of: z
    wrt: u
    prompt: p
    index_form: {of: "z[j]", wrt: "u[i]"}
  - {id: dE_du, of: E, wrt: u, prompt: q}
stem: s
"""


def test_relu_has_the_subgradient_0_at_0_in_key_index_form_and_check(tmp_path):
    # A variant that draws u_j = 0: the key says 0 there (not Heaviside(0) = 1/2), the index form
    # 1[u_j > 0] evaluates to it, and the finite-difference check agrees.
    for seed in range(4):
        solution = solved(tmp_path, RELU, seed)
        u = solution.instance.params["u"]
        jac = answer(solution, "dz_du")
        for j in range(3):
            assert jac[j, j] == (1 if u[j] > 0 else 0)
        verify(solution)
    from generator.render.latex import latex_answer

    assert "frac{1}{2}" not in latex_answer(solution.parts[0])



def test_a_scalar_output_is_said_to_have_the_empty_shape():
    from conftest import ROOT

    key = (ROOT / "tests" / "golden" / "nn-derivatives-key.tex").read_text(encoding="utf-8")
    assert r"A scalar with respect to a $2\times2$ input: $2\times2$; row $m$, column $l$ holds" in key
    assert "Shape $1$ (output)" not in key

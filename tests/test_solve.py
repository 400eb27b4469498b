"""SymPy answers against small hand-checked cases, exact, with the A + B shape convention."""

from __future__ import annotations

import numpy as np
import pytest

from generator.errors import SolveError
import sympy
from conftest import BANK, write

from generator.answers.sampling import Instance
from generator.answers.solve import solve, to_plain
from generator.spec.model import load_question

E = sympy.E


def question(tmp_path, params: str, define: str, parts: str, dims: str = ""):
    text = f"id: t\ntitle: T\n{dims}parameters:\n{params}define:\n{define}parts:\n{parts}stem: s\n"
    return load_question(write(tmp_path / "q.yaml", text))


def instance(q, dims, **values):
    params = {}
    for name, value in values.items():
        array = np.asarray(value, dtype=object)
        params[name] = np.vectorize(sympy.nsimplify, otypes=[object])(array) if array.size else array
    return Instance(q, 0, "A", dims, params, {}, 1)


def answers(q, dims=None, **values):
    solution = solve(instance(q, dims or {}, **values))
    return {a.spec.id: a.value for a in solution.parts}


def test_scalar_affine(tmp_path):
    q = question(
        tmp_path,
        "  w: {entries: [-3, 3]}\n  x: {entries: [-3, 3]}\n  b: {entries: [-3, 3]}\n",
        "  u: w * x + b\n",
        "  - {id: du_db, of: u, wrt: b, prompt: p}\n  - {id: du_dw, of: u, wrt: w, prompt: p}\n"
        "  - {id: du_dx, of: u, wrt: x, prompt: p}\n  - {id: u, of: u, prompt: p}\n",
    )
    got = answers(q, w=2, x=-3, b=1)
    assert {k: to_plain(v) for k, v in got.items()} == {"du_db": 1, "du_dw": -3, "du_dx": 2, "u": -5}


def test_vector_affine_jacobian_shapes_follow_output_plus_input(tmp_path):
    q = question(
        tmp_path,
        "  W: {shape: [d, k], entries: [-3, 3]}\n  x: {shape: [k], entries: [-3, 3]}\n  b: {shape: [d], entries: [-3, 3]}\n",
        "  u: W @ x + b\n",
        "  - {id: du_db, of: u, wrt: b, prompt: p}\n  - {id: du_dW, of: u, wrt: W, prompt: p}\n"
        "  - {id: du_dx, of: u, wrt: x, prompt: p}\n",
        dims="dimensions:\n  d: [2, 2]\n  k: [3, 3]\n",
    )
    W = [[1, -2, 0], [3, 1, 4]]
    got = answers(q, {"d": 2, "k": 3}, W=W, x=[1, 2, -1], b=[0, 1])
    assert to_plain(got["du_db"]) == [[1, 0], [0, 1]]
    # The example: du_dW[j, i, l] = delta_ij x_l, shape (d, d, k).
    assert to_plain(got["du_dW"]) == [[[1, 2, -1], [0, 0, 0]], [[0, 0, 0], [1, 2, -1]]]
    assert to_plain(got["du_dx"]) == W


def test_sigmoid_derivative_is_exact_in_e(tmp_path):
    q = question(tmp_path, "  u: {entries: [-3, 3]}\n", "  z: sigmoid(u)\n", "  - {id: dz_du, of: z, wrt: u, prompt: p}\n")
    value = answers(q, u=2)["dz_du"][()]
    assert sympy.simplify(value - E**-2 / (1 + E**-2) ** 2) == 0
    assert value.is_number and not value.is_Float


def test_mse_gradient_is_z_minus_y(tmp_path):
    q = question(
        tmp_path,
        "  Z: {shape: [2, 2], entries: [-3, 3]}\n  Y: {shape: [2, 2], entries: [-3, 3]}\n",
        "  E: sum((Z - Y)**2) / 2\n",
        "  - {id: dE_dZ, of: E, wrt: Z, prompt: p}\n",
    )
    got = answers(q, Z=[[1, 2], [3, 4]], Y=[[0, 2], [5, -1]])
    assert to_plain(got["dE_dZ"]) == [[1, 0], [-2, 5]]


def test_softmax_jacobian_is_diag_s_minus_s_sT(tmp_path):
    q = question(tmp_path, "  u: {shape: [2], entries: [-3, 3]}\n", "  s: softmax(u)\n", "  - {id: ds_du, of: s, wrt: u, prompt: p}\n")
    J = answers(q, u=[0, 1])["ds_du"]
    s0, s1 = 1 / (1 + E), E / (1 + E)
    expected = [[s0 * (1 - s0), -s0 * s1], [-s1 * s0, s1 * (1 - s1)]]
    for i in range(2):
        for j in range(2):
            assert sympy.simplify(J[i, j] - expected[i][j]) == 0


def test_fractions_stay_exact(tmp_path):
    q = question(tmp_path, "  a: {entries: [-3, 3]}\n", "  f: a**3 / 6\n", "  - {id: df, of: f, wrt: a, prompt: p}\n  - {id: f, of: f, prompt: p}\n")
    got = answers(q, a=sympy.Rational(1, 2))
    assert got["df"][()] == sympy.Rational(1, 8)
    assert got["f"][()] == sympy.Rational(1, 48)
    assert to_plain(got["f"]) == pytest.approx(1 / 48)


def _tidy_reference(value: sympy.Expr) -> sympy.Expr:
    """The canonical form as first written: sympy.cancel, then sympy.sqf of both sides."""
    from generator.answers import solve as module

    value = value.doit() if value.has(sympy.Heaviside, sympy.Max) else value
    if value.is_Rational or value.count_ops() >= 400:
        return value
    base, back = module._common_e_base(value)
    numerator, denominator = sympy.fraction(sympy.cancel(value.xreplace(base) if base else value))
    sign = 1
    if module._leading_negative(numerator):
        sign, numerator = -1, -numerator
    try:
        result = sign * (sympy.sqf(numerator) / sympy.sqf(denominator))
    except sympy.PolynomialError:
        result = sympy.powsimp(sign * numerator / denominator)
    return result.xreplace(back) if base else result


def _bank_jacobians(seed, variants):
    """(question, part, dims, substitution, memo) for every part with `wrt` of every bank question,
    drawn for `seed` and `variants`; dims and substitution are what generator.answers.solve uses, and memo
    is one dict per variant (shared by its parts, as in solve)."""

    from generator.answers import solve as module
    from generator.answers.sampling import sample_variants
    from generator.spec.model import load_bank

    bank = load_bank(BANK)
    for question in bank.questions.values():
        drawn, _ = sample_variants(question, seed, variants)
        for inst in drawn.values():
            dims = tuple(sorted(inst.dims.items()))
            substitution = module._substitution(question, dims, inst)
            memo: dict = {}
            for part in question.parts:
                if part.kind == "jacobian":  # (a whole parameter: the reverse-accumulation path)
                    yield question, part, dims, substitution, memo


def test_fast_canonical_form_equals_the_reference_on_every_bank_answer():
    """Every entry of every bank answer, computed on coefficient lists (or tidied), is the very same
    expression (srepr) as substituting the numbers into the symbolic Jacobian, then sympy.cancel/sqf."""
    from generator.answers import solve as module

    closed = 0
    for question, part, dims, substitution, memo in _bank_jacobians(3, range(4)):
        jac = module._jacobian(question, dims, part.of, part.wrt)
        got = module._substitute(jac, substitution, memo)
        for entry, value in zip(jac.flat, got.flat):
            want = _tidy_reference(sympy.sympify(entry).xreplace(substitution))
            assert sympy.srepr(value) == sympy.srepr(want), (question.id, part.id, value, want)
            closed += not want.is_Rational
    assert closed > 100


def test_substitution_on_lists_falls_back_to_sympy_where_it_must():
    """exp of a fraction, log, an integer denominator with e, a division by zero: SymPy's path."""
    from generator.answers.solve import _substitute

    x, y = sympy.symbols("x y", real=True)
    cases = [sympy.exp(x / 2), sympy.log(1 + x), (sympy.E + x) / 2, 1 / (x - y), sympy.exp(-x) / (1 + sympy.exp(-x)) ** 2]
    values = {x: sympy.Integer(1), y: sympy.Integer(1)}
    got = _substitute(np.array(cases, dtype=object), values)
    assert sympy.srepr(got[0]) == sympy.srepr(sympy.exp(sympy.Rational(1, 2)))
    assert got[1] == sympy.log(2)
    assert sympy.srepr(got[2]) == sympy.srepr(_tidy_reference((sympy.E + 1) / 2))
    assert got[3] is sympy.zoo
    assert sympy.srepr(got[4]) == sympy.srepr(_tidy_reference(sympy.exp(-1) / (1 + sympy.exp(-1)) ** 2))


@pytest.mark.parametrize("value", [
    1 / (1 + sympy.exp(-2)),
    sympy.exp(sympy.Rational(3, 2)) / (1 + sympy.exp(sympy.Rational(1, 2))) ** 2,
    -(2 * E + 2) / (E**2 + 2 * E + 1),
    sympy.log(1 + E),
    sympy.Rational(3, 4) * sympy.exp(-1) - sympy.Rational(1, 3),
    (E + 1) / 2,  # a constant denominator: sympy.fraction leaves e/2 + 1/2, not integer coefficients
    -(E**2 + 3) / 4,
    sympy.exp(sympy.Rational(1, 2)) / 2 + sympy.Rational(1, 3),
    (E + 1) / (2 * E + 6),
])
def test_fast_canonical_form_table(value):
    from generator.answers.solve import _tidy

    assert sympy.srepr(_tidy.__wrapped__(value)) == sympy.srepr(_tidy_reference(value))


def test_fast_canonical_form_on_random_closed_forms():
    """Sums and quotients of small rationals times powers of e (halves too): fast path == reference."""
    from hypothesis import given, settings
    from hypothesis import strategies as st

    from generator.answers.solve import _tidy

    power = st.builds(lambda k, half: sympy.exp(sympy.Rational(k, 2 if half else 1)), st.integers(-3, 3), st.booleans())
    rational = st.builds(sympy.Rational, st.integers(-4, 4), st.integers(1, 3))
    term = st.builds(lambda c, p: c * p, rational, power)
    sums = st.lists(term, min_size=1, max_size=3).map(lambda terms: sympy.Add(*terms))

    @settings(max_examples=150, deadline=None, derandomize=True)
    @given(sums, sums)
    def check(top, bottom):
        if bottom == 0:
            return
        value = top / bottom
        assert sympy.srepr(_tidy.__wrapped__(value)) == sympy.srepr(_tidy_reference(value)), value

    check()


def test_reverse_accumulation_gives_sympy_diffs_answers_on_every_bank_part():
    """Every Jacobian of the bank, by reverse accumulation and by sympy.diff entry by entry, gives
    the same exact answer (same canonical expression) once this variant's numbers are put in."""
    from generator.answers import solve as module

    compared = 0
    for question, part, dims, substitution, _ in _bank_jacobians(5, range(3)):
        symbols, env = module._symbolic(question, dims)
        reverse = module._substitute(module._jacobian(question, dims, part.of, part.wrt), substitution)
        by_diff = module._jacobian_by_diff(np.asarray(env[part.of], dtype=object), symbols[part.wrt])
        reference = module._substitute(by_diff, substitution)
        assert reverse.shape == reference.shape
        for got, want in zip(reverse.flat, reference.flat):
            assert sympy.srepr(got) == sympy.srepr(want), (question.id, part.id, got, want)
            compared += 1
    assert compared > 500


def test_reverse_gradient_of_functions_at_their_kinks_and_powers():
    """Local derivatives: products, powers (symbolic exponents too), relu's Max and abs, like sympy.diff."""
    from generator.answers.solve import reverse_gradient
    from generator.spec.expr import subgradient_zero

    x, y = sympy.symbols("x y", real=True)
    for expr in [x * y**2 * sympy.exp(-x), (x + y) ** -3, x**y, sympy.Max(0, x * y), sympy.Abs(x - y),
                 1 / (1 + sympy.exp(-(2 * x + y))), sympy.log(1 + x**2) * sympy.sqrt(y**2 + 1)]:
        gradient = reverse_gradient(expr)
        for symbol in (x, y):
            # (relu's derivative at 0 is 0 by the convention: SymPy's Heaviside(0) would be 1/2)
            want = subgradient_zero(sympy.diff(expr, symbol))
            assert sympy.simplify(gradient.get(symbol, 0) - want) == 0, (expr, symbol)


def test_live_subexpressions_are_those_with_free_symbols_over_the_bank():
    """`_live` (remembered per node) says what `bool(free_symbols)` says, for every subexpression
    of every definition of the bank evaluated over symbols; and a gradient shares it across calls."""
    from generator.answers import solve as module

    checked = 0
    seen = set()
    for question, _, dims, _, _ in _bank_jacobians(5, range(2)):
        if (question.id, dims) in seen:
            continue
        seen.add((question.id, dims))
        memo: dict = {}
        for value in module._symbolic(question, dims)[1].values():
            for entry in np.asarray(value, dtype=object).flat:
                for node in sympy.preorder_traversal(sympy.sympify(entry)):
                    assert module._live(node, memo) == bool(node.free_symbols), node
                    checked += 1
    assert checked > 1000
    x, y = sympy.symbols("x y", real=True)
    live: dict = {}
    assert module.reverse_gradient(x * y + sympy.exp(x), live) == {x: y + sympy.exp(x), y: x}
    assert live[sympy.exp(x)] is True and live[x * y] is True


def test_defined_values_are_exact_and_evaluated_only_when_read(tmp_path, monkeypatch):
    q = question(
        tmp_path,
        "  w: {entries: [-3, 3]}\n  x: {entries: [-3, 3]}\n",
        "  u: w * x\n  v: u ** 2 + 1\n  r: 1 / (v - 37)\n",
        "  - {id: dv_dw, of: v, wrt: w, prompt: p}\n",
    )
    import generator.answers.sampling as module  # (where definitions are evaluated)

    evaluated = []
    real = module.evaluate

    def counted(expr, env, backend):  # with this variant's numbers (not the symbols of the Jacobian)
        if not isinstance(env["w"][()], sympy.Symbol):
            evaluated.append(expr.text)
        return real(expr, env, backend)

    monkeypatch.setattr(module, "evaluate", counted)
    solution = solve(instance(q, {}, w=2, x=-3))
    assert to_plain(solution.parts[0].value) == 2 * (2 * -3) * -3  # dv/dw = 2 u x
    assert evaluated == []  # a derivative needs no exact value
    assert list(solution.values) == ["u", "v", "r"]
    assert to_plain(solution.values["v"]) == 37
    assert evaluated == ["w * x", "u ** 2 + 1"]  # in order, up to the one read
    with pytest.raises(KeyError):
        solution.values["w"]
    # 1/0 (v is 37 in this variant) would be complex infinity in exact arithmetic, printed as
    # \\tilde{\\infty}: an error, raised only now that it is read.
    with pytest.raises(SolveError, match=r"cannot evaluate '1 / \(v - 37\)': division by zero \(question 't', variant A, seed 0; "
                                         r"values: w = 2, x = -3\)"):
        solution.values["r"]
    assert evaluated == ["w * x", "u ** 2 + 1", "1 / (v - 37)"]


def test_derived_values_shown_are_the_exact_values_in_canonical_shape_over_the_bank():
    """A key shows derived values made like the answers (symbols, then the numbers on coefficient
    lists); they are the very same expressions as the exact values put in canonical shape."""

    from generator.answers import solve as module
    from generator.answers.sampling import sample_variants
    from generator.spec.model import load_bank

    bank = load_bank(BANK)
    compared = 0
    for question in bank.questions.values():
        drawn, _ = sample_variants(question, 5, range(12))
        for inst in drawn.values():
            solution = module.solve(inst)
            for name in inst.derived:
                shown, exact = solution.derived[name], module.tidy_array(inst.derived[name])
                assert shown.shape == exact.shape
                assert [sympy.srepr(v) for v in shown.flat] == [sympy.srepr(v) for v in exact.flat], (question.id, name)
                compared += 1
    assert compared > 200


def test_derived_values_the_constraints_do_not_use_are_evaluated_when_read(tmp_path, monkeypatch):
    import generator.answers.sampling as module

    q = load_question(write(tmp_path / "q.yaml", (
        "id: t\ntitle: T\nparameters:\n  x: {entries: [-3, 3]}\nderived:\n  a: x + 1\n  h: sigmoid(a)\n"
        "constraints:\n  - a != 0\ndefine:\n  y: h * 2\nparts:\n  - {id: dy_dx, of: y, wrt: x, prompt: p}\nstem: s\n"
    )))
    evaluated = []
    real = module.evaluate
    monkeypatch.setattr(module, "evaluate", lambda expr, env, backend: evaluated.append(expr.text) or real(expr, env, backend))
    inst = module.sample(q, 3, 0)
    assert "x + 1" in evaluated and "sigmoid(a)" not in evaluated  # drawn: only what the constraint uses
    assert inst.derived["h"][()] == 1 / (1 + sympy.exp(-inst.derived["a"][()]))
    assert evaluated[-1] == "sigmoid(a)"


def test_a_derived_value_that_cannot_be_taken_over_symbols_is_shown_from_its_exact_value(tmp_path):
    """max() of symbols has no answer (a question that asks for derivatives cannot have such a
    definition: its Jacobian needs them all over symbols); in a question that asks for values
    only, the key then shows the exact value, in canonical shape."""
    import json

    from authoring_helpers import make_bank, question

    from generator.build import BuildOptions, build

    text = question(**{"constraints:": "derived:\n  top: max(x)\nconstraints:", "    wrt: x\n": "",
                       "  Let $u = W x$ with": "  Let $u = W x$ (largest entry of x: $<< top | latex >>$) with"})
    bank = make_bank(tmp_path / "bank", {"q": text})
    build(BuildOptions(bank=bank, out=tmp_path / "out", variants=2, pdf=False))
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    for variant in manifest["variants"]:
        x = variant["questions"][0]["params"]["x"]
        sheet = (tmp_path / "out" / "sheet" / variant["id"] / "sheet.tex").read_text()
        assert f"(largest entry of x: ${max(x)}$)" in sheet


def test_polynomial_products_are_dup_muls() -> None:
    # generator.answers.solve._mul short-cuts a number times a polynomial; it must be dup_mul, list for list.
    from hypothesis import given, settings
    from hypothesis import strategies as st
    from sympy import ZZ
    from sympy.polys.densearith import dup_mul

    from generator.answers.solve import _mul

    polynomial = st.lists(st.integers(-10**6, 10**6), max_size=6).map(lambda c: c if not c or c[0] else [1, *c])

    @settings(max_examples=300, deadline=None)
    @given(polynomial, polynomial)
    def same(f: list[int], g: list[int]) -> None:
        assert _mul(f, g) == dup_mul(f, g, ZZ)

    same()
    assert _mul([3], [2, 0, -1]) == [6, 0, -3] and _mul([1, 1], [-2]) == [-2, -2] and _mul([5], []) == []

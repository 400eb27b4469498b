"""Index notation: spec text -> SymPy (exact), validation messages, safety, evaluation, LaTeX."""

from __future__ import annotations

import builtins
from pathlib import Path

import numpy as np
import pytest
import sympy
from conftest import BANK, write
from sympy import Indexed, IndexedBase, KroneckerDelta, Sum

from generator.errors import ExpressionError, Location, SpecError
from generator.spec.indexnotation import (
    IndexScope,
    evaluate_index_expression,
    index_grid_evaluator,
    index_symbol,
    latex_index,
    parse_index_expression,
    parse_index_ref,
    sigmoid,
    size_symbol,
)
from generator.spec.model import load_bank, load_question

HERE = Location("q.yaml", 3, 5)
SCOPE = IndexScope(
    ranges={"j": "d", "i": "d", "k": "k", "l": "k", "n": "l"},
    shapes={"W": ("d", "k"), "x": ("k",), "b": ("d",), "X": ("l", "k"), "w": (), "u": ("d",)},
)
i, j, k, l, n = (index_symbol(c) for c in "ijkln")
W, x, b, X, u = (IndexedBase(c, real=True) for c in ("W", "x", "b", "X", "u"))
w = sympy.Symbol("w", real=True)
K, D = size_symbol("k"), size_symbol("d")


def parse(text: str) -> sympy.Expr:
    return parse_index_expression(text, HERE, SCOPE, "index.define.u[j]").value


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("sum(W[j, k] * x[k], k) + b[j]", Sum(W[j, k] * x[k], (k, 1, K)) + b[j]),
        ("sum(W[j, k] * X[n, k], k) + b[j]", Sum(W[j, k] * X[n, k], (k, 1, K)) + b[j]),
        ("exp(u[j]) / sum(exp(u[i]), i)", sympy.exp(u[j]) / Sum(sympy.exp(u[i]), (i, 1, D))),
        ("delta(i, j) * x[l]", KroneckerDelta(i, j) * x[l]),
        ("sigmoid(u[j]) * (1 - sigmoid(u[j]))", sigmoid(u[j]) * (1 - sigmoid(u[j]))),
        ("relu(u[j])", sympy.Max(0, u[j])),
        ("step(u[j])", sympy.Heaviside(u[j], 0)),
        ("tanh(u[j]) ** 2", sympy.tanh(u[j]) ** 2),
        ("sum((X[n, k] * W[j, k]) ** 2, n, k) / 2", Sum((X[n, k] * W[j, k]) ** 2, (n, 1, size_symbol("l")), (k, 1, K)) / 2),
        ("0.5 * w + e", sympy.Rational(1, 2) * w + sympy.E),
    ],
)
def test_parse_builds_the_sympy_expression(text: str, expected: sympy.Expr) -> None:
    assert parse(text) == expected


def test_parse_reports_free_indices() -> None:
    result = parse_index_expression("sum(W[j, k] * X[n, k], k)", HERE, SCOPE, "what")
    assert result.free == frozenset({"j", "n"})
    assert result.names == frozenset({"W", "X"})


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("W[j, j]", "index 'j' runs over d but axis 2 of 'W' has size k (column 1 of 'W[j, j]')"),
        ("W[j]", "'W' has 2 axes; write one index per axis, e.g. W[i, j] (column 1 of 'W[j]')"),
        ("W", "'W' has 2 axes; write one index per axis, e.g. W[i, j] (column 1 of 'W')"),
        ("w[j]", "'w' is a scalar; write w without indices (column 1 of 'w[j]')"),
        ("x[q]", "unknown index 'q' (declare it in index.ranges) (column 3 of 'x[q]')"),
        ("x[k + 1]", "indices must be index names from index.ranges, e.g. W[j, k] (column 3 of 'x[k + 1]')"),
        ("v[j]", "unknown name 'v' (column 1 of 'v[j]')"),
        ("W[j, k] + x[l]", "the terms of a sum carry different free indices, {j, k} and {l} (column 1 of 'W[j, k] + x[l]')"),
        ("b[k]", "index 'k' runs over k but axis 1 of 'b' has size d (column 1 of 'b[k]')"),
        # The inner sum is the one that sums over an index already taken.
        ("sum(sum(x[k], k), k)", "index 'k' is already summed over here (column 15 of 'sum(sum(x[k], k), k)')"),
        ("sum(x[k])", "sum() takes an expression and the indices to sum over, e.g. sum(w[j, k] * x[k], k) (column 1 of 'sum(x[k])')"),
        ("delta(i, k)", "delta(i, k) compares indices over different ranges (d and k) (column 1 of 'delta(i, k)')"),
        ("softmax(u[j])", "unknown function 'softmax' (column 1 of 'softmax(u[j])')"),
        ("x[k] ** x[k]", "an exponent cannot carry free indices (column 9 of 'x[k] ** x[k]')"),
        ("j * x[k]", "'j' is an index; use it inside brackets, e.g. x[j] (column 1 of 'j * x[k]')"),
    ],
)
def test_parse_rejects_with_a_precise_message(text: str, message: str) -> None:
    with pytest.raises(ExpressionError) as info:
        parse(text)
    assert str(info.value) == f"q.yaml:3:5: index.define.u[j]: {message}"


@pytest.mark.parametrize(
    "text",
    [
        "__import__('os').system('true')",
        "x.__class__",
        "(lambda: 1)()",
        "[c for c in ()]",
        "'text'",
        "x[k] if 1 else 0",
        "exp(u[j], base=2)",
    ],
)
def test_parse_refuses_anything_outside_the_whitelist(text: str) -> None:
    with pytest.raises(ExpressionError):
        parse(text)


def test_free_indices_must_match_the_definition() -> None:
    with pytest.raises(ExpressionError) as info:
        parse_index_expression("W[j, k] * x[k] + b[j]", HERE, SCOPE, "index.define.u[j]", free=frozenset({"j"}))
    assert str(info.value) == (
        "q.yaml:3:5: index.define.u[j]: expected the free indices {j}, got {j, k} (column 1 of 'W[j, k] * x[k] + b[j]')"
    )


def test_parse_ref_reads_names_and_indices() -> None:
    ref = parse_index_ref("X[n, l]", HERE, SCOPE, "parts[0].index_form.wrt")
    assert (ref.name, ref.indices) == ("X", ("n", "l"))
    assert ref.symbol() == X[n, l]
    assert parse_index_ref("w", HERE, SCOPE, "of").symbol() == w


def test_spec_text_never_reaches_eval_or_a_string_parser(monkeypatch: pytest.MonkeyPatch) -> None:
    """Loading the bank and deriving every index form hands no spec text to eval, exec or parse_expr.

    (SymPy itself execs code it generates, e.g. for polynomial arithmetic; that is recorded and
    allowed, as long as none of it contains an expression from a spec.)
    """
    import sympy.parsing.sympy_parser as parser

    from generator.answers.indexform import derive_index_form

    seen: list[str] = []
    real_eval, real_exec = builtins.eval, builtins.exec

    def recording(real):  # type: ignore[no-untyped-def]
        def run(source, *args, **kwargs):  # type: ignore[no-untyped-def]
            seen.append(source if isinstance(source, str) else "")
            return real(source, *args, **kwargs)

        return run

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError(f"a string reached parse_expr: {args[:1]!r}")

    monkeypatch.setattr(builtins, "eval", recording(real_eval))
    monkeypatch.setattr(builtins, "exec", recording(real_exec))
    monkeypatch.setattr(parser, "parse_expr", refuse)
    derive_index_form.cache_clear()
    bank = load_bank(BANK)
    texts = []
    for question in bank.questions.values():
        texts += [d.expr.text for d in question.index_define]
        for part in question.parts if question.index_define else ():  # (choice questions have no index forms)
            assert derive_index_form(question, part.id) is not None
    derive_index_form.cache_clear()
    assert texts and not [s for s in seen for t in texts if t in s]


def test_evaluate_sums_and_deltas_at_given_indices() -> None:
    expr = parse("sum(W[j, k] * x[k], k) + b[j]")
    values = {"W": np.array([[1.0, 2.0], [3.0, 4.0]]), "x": np.array([10.0, 100.0]), "b": np.array([0.5, -0.5])}
    sizes = {K: 2, D: 2}
    assert evaluate_index_expression(expr, {j: 2}, values, sizes, {}) == 3 * 10 + 4 * 100 - 0.5
    delta = KroneckerDelta(i, j) * x[l]
    assert evaluate_index_expression(delta, {i: 1, j: 1, l: 2}, values, sizes, {}) == 100.0
    assert evaluate_index_expression(delta, {i: 1, j: 2, l: 2}, values, sizes, {}) == 0.0


def test_evaluate_inlines_definitions() -> None:
    h = IndexedBase("h", real=True)
    definitions = {"h": ((j,), sigmoid(u[j]))}
    value = evaluate_index_expression(h[i] * (1 - h[i]), {i: 2}, {"u": np.zeros(2)}, {}, definitions)
    assert value == 0.25


def test_grid_evaluation_matches_evaluation_at_each_index() -> None:
    # Terms without the summation index (b_j, counted K times), a double sum, a delta, a definition.
    expr = (
        parse("sum(W[j, k] * x[k] + b[j], k)") * KroneckerDelta(i, j) * x[l]
        + Sum(W[n, k], (n, 1, D), (k, 1, K)) * u[j]
        + Sum(b[j], (k, 1, K))
    )
    values = {"W": np.array([[1.0, 2.0, -1.0], [3.0, 4.0, 0.5]]), "x": np.array([10.0, 100.0, 7.0]), "b": np.array([0.5, -0.5])}
    sizes = {K: 3, D: 2}
    definitions = {"u": ((j,), sigmoid(b[j]) * (x[1] + x[2] + x[3]))}
    axes = [(j, 2), (i, 2), (l, 3)]
    grid = index_grid_evaluator(values, sizes, definitions)(expr, axes)
    assert grid.shape == (2, 2, 3)
    for a, c, e in np.ndindex(grid.shape):
        at = {j: a + 1, i: c + 1, l: e + 1}
        assert grid[a, c, e] == pytest.approx(evaluate_index_expression(expr, at, values, sizes, definitions), rel=1e-15)
    u_2 = float(1 / (1 + np.exp(0.5))) * 117
    assert grid[1, 1, 2] == pytest.approx((3 * 10 + 4 * 100 + 0.5 * 7 + 3 * -0.5) * 7 + 9.5 * u_2 + 3 * -0.5)
    assert grid[1, 0, 2] == pytest.approx(9.5 * u_2 + 3 * -0.5)


def test_evaluation_of_an_unknown_node_is_a_bug() -> None:
    with pytest.raises(ValueError, match="cannot evaluate Abs in an index form"):
        evaluate_index_expression(sympy.Abs(x[j]), {j: 1}, {"x": np.ones(2)}, {}, {})


def test_sigmoid_derivative_is_the_derivative_of_its_definition() -> None:
    t = sympy.Symbol("t", real=True)
    rule = sympy.diff(sigmoid(t), t).rewrite(sympy.exp)
    assert sympy.simplify(rule - sympy.diff(1 / (1 + sympy.exp(-t)), t)) == 0


@pytest.mark.parametrize(
    ("expr", "letters", "tex"),
    [
        (KroneckerDelta(i, j) * x[l], {}, r"\delta_{ij} x_{l}"),
        (Sum(W[j, k] * x[k], (k, 1, K)) + b[j], {"W": "w"}, r"b_{j} + \sum_{k} w_{jk} x_{k}"),
        (Indexed(IndexedBase("W1", real=True), j, k), {}, r"{W_{1}}_{jk}"),
        (Indexed(IndexedBase("W1", real=True), j, k), {"W1": "w^{(1)}"}, r"w^{(1)}_{jk}"),
        (x[k] - b[j], {}, r"x_{k} - b_{j}"),
        (sigmoid(u[j]), {}, r"\sigma\left(u_{j}\right)"),
        (sympy.Heaviside(u[j]), {}, r"\mathbf{1}\left[u_{j} > 0\right]"),
        (-2 * KroneckerDelta(i, j) * (x[l] + b[i]), {}, r"-2 \delta_{ij} \left(b_{i} + x_{l}\right)"),
    ],
)
def test_latex_reads_like_a_textbook(expr: sympy.Expr, letters: dict[str, str], tex: str) -> None:
    assert latex_index(expr, letters) == tex


def _question(bank: Path, index: str, part_extra: str = "") -> Path:
    return write(
        bank / "questions" / "q.yaml",
        f"""
        id: q
        title: Q
        dimensions: {{d: [2, 3], k: [2, 3]}}
        parameters:
          W: {{shape: [d, k], entries: [-2, 2]}}
          x: {{shape: [k], entries: [-2, 2]}}
        define:
          u: W @ x
        index:
        {index}
        parts:
          - id: du_dW
            of: u
            wrt: W
            prompt: p
        {part_extra}
        stem: s
        """,
    )


def test_spec_loads_index_definitions(bank: Path) -> None:
    path = _question(
        bank,
        """  ranges: {j: d, i: d, k: k, l: k}
          define:
            u[j]: sum(W[j, k] * x[k], k)""",
        """    index_form: {of: "u[j]", wrt: "W[i, l]", expected: "delta(i, j) * x[l]"}""",
    )
    question = load_question(path)
    (definition,) = question.index_define
    assert (definition.ref.name, definition.ref.indices) == ("u", ("j",))
    assert definition.expr.value == Sum(W[j, k] * x[k], (k, 1, K))
    form = question.parts[0].index_form
    assert form is not None and form.expected is not None
    assert (str(form.of), str(form.wrt)) == ("u[j]", "W[i, l]")
    assert form.expected.value == KroneckerDelta(i, j) * x[l]


def test_spec_reports_every_index_problem_with_its_place(bank: Path) -> None:
    path = _question(
        bank,
        """  ranges: {j: d, i: d, k: k, l: k, x: k}
          latex: {V: v}
          define:
            u[j]: sum(W[j, k] * x[k], k) + x[k]""",
        """    index_form: {of: "u[j]", wrt: "W[j, l]"}""",
    )
    with pytest.raises(SpecError) as info:
        load_question(path)
    file = str(path.relative_to(Path.cwd())) if path.is_relative_to(Path.cwd()) else str(path)
    assert info.value.problems == [
        f"{file}:10:36: index.ranges.x: index 'x' has the name of a parameter; choose another letter",
        f"{file}:11:11: index.latex.V: 'V' is neither a parameter nor an index definition",
        f"{file}:13:11: index.define['u[j]']: the terms of a sum carry different free indices, {{j}} and {{k}} (column 1 of 'sum(W[j, k] * x[k], k) + x[k]')",
        # u failed to define above, so the part's index form cannot name it either.
        f"{file}:19:22: parts[0].index_form.of: unknown name 'u' (column 1 of 'u[j]')",
    ]

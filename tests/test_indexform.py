"""Index forms: SymPy's derivation for every part of the bank, the checks, and their LaTeX."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
import sympy
from conftest import BANK, write
from sympy import IndexedBase, KroneckerDelta, Sum, exp

from generator.answers.indexform import (
    check_index_form,
    derive_index_form,
    latex_index_form,
    layout_sentence,
)
from generator.answers.sampling import sample
from generator.answers.solve import solve
from generator.build import BuildOptions, build
from generator.errors import SpecError, VerifyError
from generator.spec.indexnotation import index_symbol, sigmoid, size_symbol
from generator.spec.model import load_bank, load_question

i, j, k, l, m, n = (index_symbol(c) for c in "ijklmn")


def base(name: str) -> IndexedBase:
    return IndexedBase(name, real=True)


def scalar(name: str) -> sympy.Symbol:
    return sympy.Symbol(name, real=True)


W, X, x, y, u, b, Z, Y = (base(c) for c in ("W", "X", "x", "y", "u", "b", "Z", "Y"))
W2, h, z, s = base("W2"), base("h"), base("z"), base("s")
sig_u = lambda q: sigmoid(u[q])
S_m = Sum(exp(u[k]), (k, 1, size_symbol("m")))

# Hand-derived index forms, exactly as SymPy should return them (definitions the chain rule
# passes through stay named: u_i in chain-layer, h_i and z_m in mlp2, s_j in softmax-xent).
EXPECTED = [
    ("affine-scalar", "du_db", sympy.Integer(1)),
    ("affine-scalar", "du_dw", scalar("x")),
    ("affine-scalar", "du_dx", scalar("w")),
    ("affine-vector", "du_db", KroneckerDelta(i, j)),
    ("affine-vector", "du_dW", KroneckerDelta(i, j) * x[l]),
    ("affine-vector", "du_dx", W[j, l]),
    ("affine-batched", "dU_db", KroneckerDelta(i, j)),
    ("affine-batched", "dU_dW", KroneckerDelta(i, j) * X[n, l]),
    ("affine-batched", "dU_dX", KroneckerDelta(m, n) * W[j, l]),
    ("mse", "dE_dZ", Z[m, l] - Y[m, l]),
    ("sigmoid", "dz_du", exp(scalar("u")) / (exp(scalar("u")) + 1) ** 2),
    ("softmax", "ds_du", (KroneckerDelta(i, j) - exp(u[i]) / S_m) * exp(u[j]) / S_m),
    ("chain-sigmoid-mse", "dE_du", (sig_u(l) - y[l]) * sig_u(l) * (1 - sig_u(l))),
    ("chain-layer", "dE_dW", (sig_u(i) - y[i]) * sig_u(i) * (1 - sig_u(i)) * x[l]),
    ("chain-layer", "dE_db", (sig_u(i) - y[i]) * sig_u(i) * (1 - sig_u(i))),
    ("chain-layer", "dE_dx", Sum((sig_u(j) - y[j]) * sig_u(j) * (1 - sig_u(j)) * W[j, l], (j, 1, size_symbol("d")))),
    (
        "softmax-xent",
        "dE_du",
        (Sum(exp(u[j]) * y[j] / s[j], (j, 1, size_symbol("m"))) / S_m - y[i] / s[i]) * exp(u[i]) / S_m,
    ),
    ("tanh", "dz_du", KroneckerDelta(i, j) * (1 - sympy.tanh(u[j]) ** 2)),
    ("relu", "dz_du", KroneckerDelta(i, j) * sympy.Heaviside(u[j], 0)),
    ("mlp2", "dE_dW1", h[i] * (1 - h[i]) * x[l] * Sum((z[m] - y[m]) * W2[m, i], (m, 1, size_symbol("m")))),
    ("mlp2", "dE_db1", h[i] * (1 - h[i]) * Sum((z[m] - y[m]) * W2[m, i], (m, 1, size_symbol("m")))),
    ("mlp2", "dE_dW2", (z[n] - y[n]) * h[i]),
    ("mlp2", "dE_db2", z[n] - y[n]),
]


@pytest.fixture(scope="module")
def bank_questions():  # type: ignore[no-untyped-def]
    return load_bank(BANK).questions


@pytest.mark.parametrize(("qid", "part", "expected"), EXPECTED, ids=[f"{q}-{p}" for q, p, _ in EXPECTED])
def test_derived_index_form(bank_questions, qid: str, part: str, expected: sympy.Expr) -> None:  # type: ignore[no-untyped-def]
    form = derive_index_form(bank_questions[qid], part)
    assert form is not None
    assert form.derived == expected


def test_every_part_of_the_bank_has_a_tested_index_form(bank_questions) -> None:  # type: ignore[no-untyped-def]
    # (the questions written in index notation: not the multiple-choice ones, which have none)
    parts = {(q.id, p.id) for q in bank_questions.values() if q.index_define for p in q.parts}
    assert len(parts) == len(EXPECTED)
    assert parts == {(q, p) for q, p, _ in EXPECTED}


@pytest.mark.parametrize(
    ("qid", "part", "tex"),
    [
        ("affine-vector", "du_dW", r"\frac{\partial u_{j}}{\partial w_{il}} = \delta_{ij} x_{l}"),
        ("affine-batched", "dU_dX", r"\frac{\partial u_{nj}}{\partial x_{ml}} = \delta_{mn} w_{jl}"),
        ("mse", "dE_dZ", r"\frac{\partial E}{\partial z_{ml}} = z_{ml} - y_{ml}"),
        (
            "softmax",
            "ds_du",
            (
                r"\frac{\partial s_{j}}{\partial u_{i}} = \frac{\left(\delta_{ij} - \frac{e^{u_{i}}}{\sum_{k} e^{u_{k}}}\right) "
                r"e^{u_{j}}}{\sum_{k} e^{u_{k}}} = \left(\delta_{ij} - s_{i}\right) s_{j}"
            ),
        ),
        (
            "mlp2",
            "dE_dW2",
            r"\frac{\partial E}{\partial w^{(2)}_{ni}} = \left(z_{n} - y_{n}\right) h_{i} = \delta^{(2)}_{n} h_{i}",
        ),
    ],
)
def test_latex_index_form(bank_questions, qid: str, part: str, tex: str) -> None:  # type: ignore[no-untyped-def]
    form = derive_index_form(bank_questions[qid], part)
    assert form is not None
    assert latex_index_form(form) == tex


def test_layout_sentences_name_the_blocks(bank_questions) -> None:  # type: ignore[no-untyped-def]
    matrix = derive_index_form(bank_questions["softmax"], "ds_du")
    order3 = derive_index_form(bank_questions["affine-vector"], "du_dW")
    order4 = derive_index_form(bank_questions["affine-batched"], "dU_dW")
    assert matrix is not None and order3 is not None and order4 is not None
    assert layout_sentence(matrix, (3, 3)) == (
        r"Shape $3$ (output) $+$ $3$ (input) $= 3\times3$; row $j$, column $i$ holds "
        r"$\tfrac{\partial s_{j}}{\partial u_{i}}$."
    )
    assert layout_sentence(order3, (2, 2, 3)) == (
        r"Shape $2$ (output) $+$ $2\times3$ (input) $= 2\times2\times3$; one $2\times3$ block per $j$, labelled below it; "
        r"in block $j$, row $i$, column $l$ holds $\tfrac{\partial u_{j}}{\partial w_{il}}$."
    )
    assert "one $4\\times3$ block per $(n, j)$" in layout_sentence(order4, (2, 4, 4, 3))
    assert layout_sentence(order3, (3,)) == ""


QUESTION = """
id: q
title: Q
dimensions: {{d: [2, 3], k: [2, 3]}}
parameters:
  W: {{shape: [d, k], entries: [-2, 2]}}
  x: {{shape: [k], entries: [1, 2]}}
  b: {{shape: [d], entries: [1, 2]}}
define:
  u: {define}
index:
  ranges: {{j: d, i: d, k: k, l: k}}
  define:
    u[j]: sum(W[j, k] * x[k], k) + b[j]
parts:
  - id: du_dW
    of: u
    wrt: W
    prompt: p
    index_form: {{of: "u[j]", wrt: "{wrt}"{expected}}}
stem: s
"""


def _bank(root: Path, *, define: str = "W @ x + b", wrt: str = "W[i, l]", expected: str = "") -> Path:
    write(root / "questions" / "q.yaml", QUESTION.format(define=define, wrt=wrt, expected=expected))
    write(root / "worksheets" / "w.yaml", "id: w\ntitle: W\nquestions: [q]\n")
    return root


def test_a_wrong_textbook_form_stops_the_build(bank: Path, tmp_path: Path) -> None:
    _bank(bank, expected=', expected: "2 * delta(i, j) * x[l]"')
    with pytest.raises(VerifyError) as info:
        build(BuildOptions(seed=1, bank=bank, out=tmp_path / "out", pdf=False))
    message = str(info.value)
    assert message.startswith(f"{bank / 'questions' / 'q.yaml'}:19:56: question 'q', part 'du_dW': the stated index form ")
    assert message.endswith(
        "'2 * delta(i, j) * x[l]' disagrees with SymPy's derivation 'KroneckerDelta(i, j)*x[l]' at j=1, i=1, l=1 "
        "(check seed 1): stated 2, derived 1"
    )
    assert not (tmp_path / "out").exists()


def test_a_right_textbook_form_passes(bank: Path, tmp_path: Path) -> None:
    _bank(bank, expected=', expected: "delta(j, i) * x[l]"')
    result = build(BuildOptions(seed=1, bank=bank, out=tmp_path / "out", pdf=False))
    assert "w/A/key.tex" in result.files


def test_an_index_form_that_disagrees_with_the_jacobian_stops_the_build(bank: Path, tmp_path: Path) -> None:
    _bank(bank, define="W @ x * 2 + b")  # the index notation says sum_k w_jk x_k + b_j
    with pytest.raises(VerifyError) as info:
        build(BuildOptions(seed=1, bank=bank, out=tmp_path / "out", pdf=False))
    message = str(info.value)
    assert message.startswith(f"{bank / 'questions' / 'q.yaml'}:19:17: question 'q', part 'du_dW', variant A (seed 1): the derived index form ")
    assert "disagrees with the answer at index [0, 0, 0]" in message


@pytest.mark.parametrize("what", ["derived", "stated"])
def test_an_index_form_check_names_the_first_wrong_entry(bank: Path, what: str) -> None:
    # All entries are checked at once; the message must still name the first wrong one (C order).
    question = load_question(_bank(bank, expected=', expected: "delta(j, i) * x[l]"') / "questions" / "q.yaml")
    solution = solve(sample(question, 1, 0))
    dims, params = solution.instance.dims, solution.instance.params
    answer = solution.parts[0]
    form = answer.index_form
    jacobian = np.vectorize(float, otypes=[float])(answer.value)
    assert jacobian.shape == (dims["d"], dims["d"], dims["k"])
    check_index_form(question, form, dims, params, jacobian, "variant A (seed 1)")
    if what == "derived":  # both forms disagree with this answer at [1, 0, 1] and [1, 1, 0]: derived is named
        jacobian[1, 1, 0] += 0.5
        jacobian[1, 0, 1] += 0.5
    else:  # a stated form that is off wherever j = 2 and l = 2
        form = dataclasses.replace(form, expected=form.expected + KroneckerDelta(j, 2) * KroneckerDelta(index_symbol("l"), 2))
    with pytest.raises(VerifyError) as info:
        check_index_form(question, form, dims, params, jacobian, "variant A (seed 1)")
    message = str(info.value)
    if what == "derived":
        assert message == (
            f"{form.where}: question 'q', part 'du_dW', variant A (seed 1): the derived index form 'KroneckerDelta(i, j)*x[l]' "
            "disagrees with the answer at index [1, 0, 1]: index form 0, answer 0.5"
        )
    else:  # caught before any variant, by the check of the stated form against the derivation
        assert message == (
            f"{form.expected_where}: question 'q', part 'du_dW': the stated index form 'delta(j, i) * x[l]' disagrees with "
            "SymPy's derivation 'KroneckerDelta(i, j)*x[l]' at j=2, i=1, l=2 (check seed 1): stated 1, derived 0"
        )


def test_index_form_must_name_the_parts_of_and_wrt(bank: Path) -> None:
    _bank(bank, wrt="b[i]")
    with pytest.raises(SpecError) as info:
        load_question(bank / "questions" / "q.yaml")
    assert [p.split(": ", 1)[1] for p in info.value.problems] == [
        "parts[0].index_form.wrt: expected an entry of 'W' (the part's `wrt`), got 'b'",
    ]


def test_index_form_indices_of_output_and_input_differ(bank: Path) -> None:
    _bank(bank, wrt="W[j, l]")
    with pytest.raises(SpecError) as info:
        load_question(bank / "questions" / "q.yaml")
    assert [p.split(": ", 1)[1] for p in info.value.problems] == [
        "parts[0].index_form: u[j] and W[j, l] share the index j; use different letters",
    ]


@pytest.mark.parametrize("order", ["as listed", "reversed"])
def test_parts_sharing_a_deriver_get_the_forms_each_would_get_alone(order):
    """A question's parts share its deriver's instances and derivatives (`_deriver`); whatever
    order they are derived in, each part's form is the one a deriver of its own gives."""
    from generator.answers import indexform

    questions = load_bank(BANK).questions.values()
    alone = {}
    for question in questions:
        for part in question.parts:
            indexform._deriver.cache_clear()
            derive_index_form.cache_clear()
            alone[(question.id, part.id)] = derive_index_form(question, part.id)
    indexform._deriver.cache_clear()
    derive_index_form.cache_clear()
    shared = 0
    for question in questions:
        parts = list(question.parts) if order == "as listed" else list(reversed(question.parts))
        for part in parts:
            form = derive_index_form(question, part.id)
            want = alone[(question.id, part.id)]
            assert (form is None) == (want is None)
            if form is not None:
                assert sympy.srepr(form.derived) == sympy.srepr(want.derived), (question.id, part.id)
                assert latex_index_form(form) == latex_index_form(want)
        shared += len(indexform._deriver(question)._derivatives) > 0
    assert shared >= 8


def test_each_part_of_a_variant_is_checked_and_a_wrong_entry_is_caught() -> None:
    # mlp2's parts all run through the same layers; each is checked against its index form.
    question = load_bank(BANK).questions["mlp2"]
    solution = solve(sample(question, 7, 0))
    dims, params = solution.instance.dims, solution.instance.params
    jacobians = [np.vectorize(float, otypes=[float])(answer.value) for answer in solution.parts]
    forms = [answer.index_form for answer in solution.parts]
    assert len(forms) >= 3 and all(form is not None for form in forms)
    for form, jacobian in zip(forms, jacobians, strict=True):
        check_index_form(question, form, dims, params, jacobian, "variant A (seed 7)")
    wrong = jacobians[-1].copy()
    wrong.flat[0] += 0.5
    with pytest.raises(VerifyError, match=rf"part '{forms[-1].part_id}', variant A \(seed 7\): the derived index form"):
        check_index_form(question, forms[-1], dims, params, wrong, "variant A (seed 7)")

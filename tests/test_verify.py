"""The independent numeric check stops wrong keys, naming question and part."""

from __future__ import annotations

import dataclasses
import re

import numpy as np
import pytest
import sympy
from conftest import FIXTURES, write

from generator.answers.sampling import sample
from generator.answers.solve import solve
from generator.answers.verify import verify
from generator.errors import VerifyError
from generator.spec.model import load_question

AFFINE = FIXTURES / "bank" / "questions" / "affine.yaml"


def test_correct_answers_pass_for_many_seeds():
    q = load_question(AFFINE)
    for seed in range(10):
        verify(solve(sample(q, seed, 0)))


def test_a_wrong_derivative_stops_the_build():
    q = load_question(AFFINE)
    solution = solve(sample(q, 3, 0))
    part = solution.parts[1]
    wrong = part.value.copy()
    wrong[(0,) * wrong.ndim] += sympy.Rational(1, 100)
    broken = dataclasses.replace(solution, parts=(solution.parts[0], dataclasses.replace(part, value=wrong)))
    with pytest.raises(VerifyError) as info:
        verify(broken)
    message = str(info.value)
    assert "question 'affine', part 'du_dW', variant A (seed 3)" in message
    assert "the derivative (finite differences) disagrees at index [0, 0, 0]" in message


CHAIN = """
    id: chain
    title: C
    parameters:
      u: {{shape: [3], entries: [-2, 2]}}
      y: {{shape: [3], entries: [0, 1]}}
    define:
      E: sum((sigmoid(u) - y)**2) / 2
    parts:
      - id: dE_du
        of: E
        wrt: u
        prompt: p
        vectorized:
          expr: {vectorized}
          latex: "x"
    stem: s
"""


def test_a_wrong_vectorized_form_is_caught(tmp_path):
    q = load_question(write(tmp_path / "q.yaml", CHAIN.format(vectorized="(sigmoid(u) - y) * sigmoid(u)")))
    with pytest.raises(VerifyError, match=r"question 'chain', part 'dE_du', variant A \(seed 0\): the vectorized form disagrees"):
        verify(solve(sample(q, 0, 0)))


def test_the_right_vectorized_form_passes(tmp_path):
    q = load_question(write(tmp_path / "q.yaml", CHAIN.format(vectorized="(sigmoid(u) - y) * sigmoid(u) * (1 - sigmoid(u))")))
    for seed in range(5):
        solution = solve(sample(q, seed, 0))
        verify(solution)
        assert np.asarray(solution.parts[0].value).shape == (3,)


LAYER = """
    id: layer
    title: L
    dimensions: {d: [2, 3], k: [2, 3]}
    parameters:
      W: {shape: [d, k], entries: [-2, 2]}
      x: {shape: [k], entries: [-2, 2]}
      y: {shape: [d], entries: [0, 1]}
    derived:
      a: W @ x
      target: 2 * y - 1
      h: sigmoid(a)
    define:
      u: h - target
      E: sum(u ** 2) / 2
    parts:
      - id: u
        of: u
        prompt: p
      - id: dE_dW
        of: E
        wrt: W
        prompt: p
    stem: s
"""


def _with_entry_changed(solution, part_index: int, index: tuple[int, ...]):  # type: ignore[no-untyped-def]
    part = solution.parts[part_index]
    wrong = part.value.copy()
    wrong[index] += sympy.Rational(1, 100)
    parts = list(solution.parts)
    parts[part_index] = dataclasses.replace(part, value=wrong)
    return dataclasses.replace(solution, parts=tuple(parts))


def test_a_derivative_through_derived_values_is_checked(tmp_path):
    # E depends on W only through the derived a and h; target is derived too but does not move with W.
    q = load_question(write(tmp_path / "q.yaml", LAYER))
    for seed in range(5):
        verify(solve(sample(q, seed, 0)))
    with pytest.raises(VerifyError, match=r"part 'dE_dW', variant A \(seed 2\): the derivative \(finite differences\) "
                                          r"disagrees at index \[1, 0\]"):
        verify(_with_entry_changed(solve(sample(q, 2, 0)), 1, (1, 0)))


def test_a_wrong_value_is_caught(tmp_path):
    q = load_question(write(tmp_path / "q.yaml", LAYER))
    with pytest.raises(VerifyError, match=r"part 'u', variant A \(seed 2\): the value disagrees at index \[1\]"):
        verify(_with_entry_changed(solve(sample(q, 2, 0)), 0, (1,)))


def test_a_vectorized_form_of_the_wrong_shape_is_caught(tmp_path):
    q = load_question(write(tmp_path / "q.yaml", CHAIN.format(vectorized="sum(sigmoid(u) - y)")))
    with pytest.raises(VerifyError, match=r"question 'chain', part 'dE_du': vectorized form has shape \[\] but the answer has shape \[3\]"):
        verify(solve(sample(q, 0, 0)))


def test_a_wrong_scalar_answer_stops_the_build(tmp_path):
    # np.argwhere of a 0-d comparison is empty either way: a scalar must not slip through.
    path = write(tmp_path / "q.yaml", """
        id: scalar
        title: S
        parameters:
          a: {entries: [1, 3]}
        define:
          f: a**3
        parts:
          - {id: f, of: f, prompt: p}
          - {id: df, of: f, wrt: a, prompt: p}
        stem: s
    """)
    solution = solve(sample(load_question(path), 1, 0))
    for k, label in ((0, "the value"), (1, "the derivative (finite differences)")):
        part = solution.parts[k]
        wrong = np.asarray(part.value[()] + 1, dtype=object)
        parts = tuple(dataclasses.replace(p, value=wrong) if i == k else p for i, p in enumerate(solution.parts))
        expected = f"part '{part.spec.id}', variant A (seed 1): {label} disagrees at index []"
        with pytest.raises(VerifyError, match=re.escape(expected)):
            verify(dataclasses.replace(solution, parts=parts))

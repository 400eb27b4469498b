"""The independent numeric check stops wrong keys, naming question and part."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import sympy

from conftest import FIXTURES, write
from generator.errors import VerifyError
from generator.sampling import sample
from generator.solve import solve
from generator.spec import load_question
from generator.verify import verify

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

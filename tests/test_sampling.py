"""Seeded sampling: deterministic per (seed, variant, question id), constraints honoured."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from conftest import FIXTURES, write

from generator.answers.sampling import MAX_TRIES, question_rng, sample
from generator.answers.solve import to_plain
from generator.errors import SamplingError
from generator.spec.assemble import variant_label
from generator.spec.model import load_question

AFFINE = FIXTURES / "bank" / "questions" / "affine.yaml"


def plain(instance):
    return instance.dims, {k: to_plain(v) for k, v in instance.params.items()}


def test_same_seed_same_numbers():
    q = load_question(AFFINE)
    assert plain(sample(q, 42, 0)) == plain(sample(q, 42, 0))


def test_numbers_depend_on_seed_and_variant():
    q = load_question(AFFINE)
    draws = {str(plain(sample(q, seed, variant))) for seed in (1, 2, 3) for variant in (0, 1, 2)}
    assert len(draws) == 9


def test_numbers_depend_only_on_the_question_id_not_its_file_or_neighbours(tmp_path):
    q = load_question(AFFINE)
    renamed = dataclasses.replace(q, path="elsewhere.yaml", title="Another title")
    assert plain(sample(renamed, 5, 1)) == plain(sample(q, 5, 1))
    other_id = dataclasses.replace(q, id="affine-2")
    assert plain(sample(other_id, 5, 1)) != plain(sample(q, 5, 1))


def test_generator_is_derived_from_seed_variant_and_id():
    a = question_rng(42, 0, "softmax").integers(0, 2**32, size=4)
    b = question_rng(42, 0, "softmax").integers(0, 2**32, size=4)
    c = question_rng(42, 0, "sigmoid").integers(0, 2**32, size=4)
    assert list(a) == list(b) and list(a) != list(c)


def test_entries_respect_range_exclusions_and_constraints():
    q = load_question(AFFINE)
    for seed in range(30):
        instance = sample(q, seed, 0)
        W, x = (np.array(to_plain(instance.params[n])) for n in ("W", "x"))
        d, k = instance.dims["d"], instance.dims["k"]
        assert 2 <= d <= 3 and 2 <= k <= 3 and W.shape == (d, k) and x.shape == (k,)
        assert W.min() >= -3 and W.max() <= 3 and (x != 0).all() and abs(x).max() <= 2
        assert (abs(W).sum(axis=1) > 0).all()


def test_fractions_and_onehot(tmp_path):
    q = load_question(write(tmp_path / "q.yaml", """
        id: f
        title: F
        parameters:
          a: {shape: [3], entries: [-1, 1], denominators: [2]}
          y: {shape: [4], onehot: true}
        define:
          s: sum(a)
        parts: [{id: s, of: s, prompt: s}]
        stem: s
    """))
    halves = set()
    for seed in range(20):
        instance = sample(q, seed, 0)
        halves.update(float(v) for v in instance.params["a"].flat)
        y = to_plain(instance.params["y"])
        assert sorted(y) == [0, 0, 0, 1]
    assert halves <= {-1, -0.5, 0, 0.5, 1} and len(halves) > 3


def test_constraints_that_cannot_be_met_name_the_constraint(tmp_path):
    q = load_question(write(tmp_path / "q.yaml", """
        id: impossible
        title: I
        parameters:
          u: {shape: [3], entries: [0, 1]}
        constraints:
          - distinct(u)
        define:
          s: sum(u)
        parts: [{id: s, of: s, prompt: s}]
        stem: s
    """))
    with pytest.raises(SamplingError) as info:
        sample(q, 1, 0)
    assert str(info.value) == (
        f"{q.path}:6:5: constraints[0]: 'distinct(u)' could not be met in {MAX_TRIES} draws "
        "(question 'impossible', seed 1); widen the entry ranges or relax the constraint"
    )


@pytest.mark.parametrize("index, label", [(0, "A"), (1, "B"), (25, "Z"), (26, "AA"), (27, "AB"), (51, "AZ"), (52, "BA"), (701, "ZZ"), (702, "AAA")])
def test_variant_labels(index, label):
    assert variant_label(index) == label

"""Loading and validating question and worksheet specs: exact messages with file:line:col."""

from __future__ import annotations

import pytest
from conftest import FIXTURES, write

from generator.errors import SpecError
from generator.spec.expr import FUNCTIONS
from generator.spec.model import load_bank, load_question

VALID = """
id: demo
title: Demo
points: 3
tags: [affine]
dimensions:
  d: [2, 3]
parameters:
  W: {shape: [d, 2], entries: [-2, 2], exclude: [0]}
  x: {shape: [2], entries: [-1, 1], denominators: [1, 2]}
derived:
  s: sum(x)
define:
  u: W @ x
parts:
  - {id: du_dx, of: u, wrt: x, prompt: "$\\\\partial u / \\\\partial x$", points: 2}
  - {id: u, of: u, prompt: "$u$"}
stem: "Let $u = W x$."
"""

ALL_FUNCTIONS = ", ".join(sorted(FUNCTIONS))


def problems(tmp_path, text):
    path = write(tmp_path / "q.yaml", text)
    with pytest.raises(SpecError) as info:
        load_question(path)
    return [p.replace(str(path), "q.yaml") for p in info.value.problems]


def test_valid_spec_loads_into_frozen_objects(tmp_path):
    q = load_question(write(tmp_path / "q.yaml", VALID))
    assert q.id == "demo" and q.points == 3 and q.tags == ("affine",)
    assert q.dimensions == (("d", 2, 3),)
    assert [(p.name, p.shape, p.low, p.high, p.exclude, p.denominators) for p in q.parameters] == [
        ("W", ("d", 2), -2, 2, (0,), (1,)),
        ("x", (2,), -1, 1, (), (1, 2)),
    ]
    assert [name for name, _ in q.derived] == ["s"]
    assert [(p.id, p.of, p.wrt, p.points) for p in q.parts] == [("du_dx", "u", "x", 2), ("u", "u", None, None)]
    assert q.parts[0].prompt.where.line == 15
    with pytest.raises(AttributeError):
        q.id = "other"  # type: ignore[misc]


def test_template_text_knows_its_first_line(tmp_path):
    q = load_question(write(tmp_path / "q.yaml", VALID.replace('stem: "Let $u = W x$."', "stem: |\n  line one\n  line two\n")))
    assert q.stem.source == "line one\nline two\n"
    assert q.stem.where.line == 18


@pytest.mark.parametrize(
    "change, expected",
    [
        (("points: 3", "poinst: 3"), ["q.yaml:3:1: poinst: unknown key 'poinst'; did you mean 'points'?"]),
        (("title: Demo", "title: [1, 2]"), ["q.yaml:2:8: title: expected text, got a list of 2"]),
        (("entries: [-2, 2]", "entries: [2, -2]"), ["q.yaml:8:31: parameters.W.entries: expected [low, high] with low <= high, got [2, -2]"]),
        (("entries: [-2, 2]", "entries: [-2]"), ["q.yaml:8:31: parameters.W.entries: expected exactly 2 items, got 1"]),
        (("shape: [d, 2]", "shape: [dd, 2]"), ["q.yaml:8:15: parameters.W.shape[0]: unknown dimension 'dd'; did you mean 'd'?"]),
        (("u: W @ x", "u: W @ y"), ["q.yaml:13:6: define.u: unknown name 'y' (column 5 of 'W @ y')"]),
        (("u: W @ x", "u: sigmod(W @ x)"), ["q.yaml:13:6: define.u: unknown function 'sigmod'; did you mean 'sigmoid'? (functions: " + ALL_FUNCTIONS + ") (column 1 of 'sigmod(W @ x)')"]),
        (("of: u, wrt: x", "of: u, wrt: z"), ["q.yaml:15:29: parts[0].wrt: 'z' is not a parameter (parameters: W, x)"]),
        (("{id: u, of: u,", "{id: du_dx, of: v,"), [
            "q.yaml:16:10: parts[1].id: duplicate part id 'du_dx'",
            "q.yaml:16:21: parts[1].of: 'v' is not in define (defined: u)",
        ]),
        (("stem: ", "stm: "), [
            "q.yaml:1:1: (document): missing required key 'stem'",
            "q.yaml:17:1: stm: unknown key 'stm'; did you mean 'stem'?",
        ]),
        (("d: [2, 3]", "d: [3, 2]"), ["q.yaml:6:6: dimensions.d: expected [low, high] with 1 <= low <= high, got [3, 2]"]),
        (("s: sum(x)", "exp: sum(x)"), ["q.yaml:11:3: derived.exp: 'exp' is reserved (a function or template name); choose another name"]),
    ],
)
def test_bad_specs_get_exact_messages(tmp_path, change, expected):
    old, new = change
    assert old in VALID
    assert problems(tmp_path, VALID.replace(old, new, 1)) == expected


def test_yaml_syntax_error_has_line_and_column(tmp_path):
    assert problems(tmp_path, "id: x\ntitle: [unclosed\n") == ["q.yaml:3:1: YAML syntax: expected ',' or ']', but got '<stream end>' (while parsing a flow sequence at line 2, column 8)"]


def test_unsafe_yaml_tag_is_refused(tmp_path):
    found = problems(tmp_path, "id: !!python/object/apply:os.system ['touch pwned']\n")
    assert found == ["q.yaml:1:5: YAML syntax: tag 'tag:yaml.org,2002:python/object/apply:os.system' is not allowed (only plain YAML data is)"]
    assert not (tmp_path / "pwned").exists()


def test_duplicate_keys_are_errors(tmp_path):
    assert problems(tmp_path, "id: a\nid: b\n") == ["q.yaml:2:1: YAML syntax: duplicate key 'id'"]


def test_bank_reports_worksheet_entries_that_name_no_question(tmp_path, bank):
    write(bank / "questions" / "q.yaml", VALID)
    write(bank / "worksheets" / "w.yaml", "id: w\ntitle: W\nquestions: [demo, dmeo]\n")
    with pytest.raises(SpecError) as info:
        load_bank(bank)
    assert [p.split("/")[-1] for p in info.value.problems] == [
        "w.yaml:3:19: questions[1]: no question with id 'dmeo' in the bank; did you mean 'demo'?"
    ]


def test_fixture_bank_loads():
    loaded = load_bank(FIXTURES / "bank")
    assert sorted(loaded.questions) == ["affine", "logistic"]
    assert loaded.worksheets["demo"].questions == ("affine", "logistic")

"""Property-based tests: whatever a question file holds, loading it gives a valid spec or a clean
error with a location, never another exception.

Three sources of input: arbitrary text, generated data structures dumped to YAML, and the real
specs of `question_bank/` mutated (keys dropped or renamed, values of the wrong type, corrupted
values). Mutated specs that still load are also run through `check` for one seed, which samples,
solves, verifies and renders them: that too must end in problems with locations, not a crash.
Example counts are kept small so the suite stays fast (see FUZZ_EXAMPLES).
"""

from __future__ import annotations

import math
import os
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import BANK
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from generator.commands.check import CheckOptions, check
from generator.errors import GeneratorError, SpecError
from generator.spec.model import QuestionSpec, load_question

# FUZZ_EXAMPLES=2000 python -m pytest tests/test_spec_fuzz.py for a deeper search.
SETTINGS = settings(max_examples=int(os.environ.get("FUZZ_EXAMPLES", "60")), deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])

TOP_KEYS = ["id", "title", "points", "tags", "dimensions", "parameters", "constraints", "derived", "define", "index", "parts",
            "stem", "solution"]
INNER_KEYS = ["shape", "entries", "denominators", "exclude", "onehot", "of", "wrt", "prompt", "answer", "index_form",
              "vectorized", "expr", "latex", "ranges", "expected", "d", "k", "x", "W", "b", "u"]
REAL_SPECS = sorted((BANK / "questions").glob("*.yaml"))


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("fuzz")


def assert_located(error: GeneratorError, path: Path) -> None:
    """Every line of the error is one problem that starts with `path:line[:col]: `."""
    problems = error.problems if isinstance(error, SpecError) else str(error).split("\n")
    assert problems, error
    for problem in problems:
        assert "\n" not in problem, problem
        assert re.match(re.escape(str(path)) + r":\d+(:\d+)?: ", problem), problem


def load(folder: Path, text: str) -> QuestionSpec | None:
    path = folder / "fuzz.yaml"
    path.write_text(text, encoding="utf-8")
    try:
        return load_question(path)
    except GeneratorError as e:
        assert_located(e, path)
        return None


# --- arbitrary text -------------------------------------------------------------------------

yaml_ish = st.text(alphabet=st.sampled_from(list(" \n\t-:,[]{}'\"#&*!|>%@`?.\\abcdxyzWu0123456789<>_")) , max_size=200)


@SETTINGS
@given(text=yaml_ish | st.text(max_size=100))
def test_arbitrary_text(folder: Path, text: str) -> None:
    load(folder, text)


@SETTINGS
@given(lines=st.lists(st.sampled_from(REAL_SPECS[0].read_text(encoding="utf-8").splitlines()), max_size=30) if REAL_SPECS else st.just([]))
def test_shuffled_lines_of_a_real_spec(folder: Path, lines: list[str]) -> None:
    load(folder, "\n".join(lines) + "\n")


# --- generated data structures ------------------------------------------------------------------

scalars = (
    st.none() | st.booleans() | st.integers(-(10**6), 10**6) | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=12) | st.sampled_from(["W @ x + b", "exp(x)", "d", "<< x | latex >>", "x.T", "[2, 3]"])
)
keys = st.sampled_from(TOP_KEYS + INNER_KEYS) | st.text(max_size=6)
values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(keys, inner, max_size=5), max_leaves=25)


@SETTINGS
@given(data=st.dictionaries(st.sampled_from(TOP_KEYS) | st.text(max_size=6), values, max_size=len(TOP_KEYS)))
def test_generated_documents(folder: Path, data: dict[str, Any]) -> None:
    load(folder, yaml.safe_dump(data, allow_unicode=True, sort_keys=False))


# --- mutated real specs -------------------------------------------------------------------------

def _paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix] if prefix else []
    if isinstance(node, dict):
        for key, value in node.items():
            out += _paths(value, prefix + (key,))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            out += _paths(value, prefix + (i,))
    return out


def _parent(data: Any, path: tuple[Any, ...]) -> Any:
    for key in path[:-1]:
        data = data[key]
    return data


EXPRESSIONS = st.lists(
    st.sampled_from(["x", "W", "b", "u", "d", "k", "(", ")", "+", "-", "*", "/", "**", "@", ".T", "[0]", "exp(", "sum(",
                     "softmax(", "2", "0", "1.5", ",", " ", "__class__", "'s'", "lambda", "==", "and"]),
    max_size=8,
).map("".join)
TEMPLATES = st.lists(
    st.sampled_from(["text ", "$x$", "<< ", " >>", "<% if x %>", "<% endif %>", "<% for i in x %>", "<% endfor %>", "x",
                     " | latex", "W.T", "answer", "nope", "\\frac{1}{2}", "{", "}", "\n"]),
    max_size=8,
).map("".join)
NUMBERS = st.sampled_from([0, -1, 1, 3, 2.5, 10**12, -(10**12), math.inf, -math.inf, math.nan])


def _mutate(data: Any, draw: Any) -> None:
    paths = _paths(data)
    if not paths:
        return
    path = draw(st.sampled_from(paths))
    parent, key = _parent(data, path), path[-1]
    value = parent[key]
    operation = draw(st.sampled_from(["drop", "retype", "rename", "corrupt"]))
    if operation == "drop":
        del parent[key]
    elif operation == "retype":
        parent[key] = draw(values)
    elif operation == "rename" and isinstance(parent, dict):
        new = draw(st.sampled_from([key[:-1], key + "s", key.upper(), key[::-1], "_" + key]) | keys)
        parent[new] = parent.pop(key)
    elif isinstance(value, str):
        parent[key] = draw(TEMPLATES if "\n" in value or len(value) > 30 else EXPRESSIONS)
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        parent[key] = draw(NUMBERS)
    elif isinstance(value, list) and value:
        parent[key] = value[: draw(st.integers(0, len(value) - 1))] if draw(st.booleans()) else value + value
    else:
        parent[key] = draw(scalars)


@pytest.mark.skipif(not REAL_SPECS, reason="no question specs in question_bank/questions")
@SETTINGS
@given(data=st.data())
def test_mutated_real_specs(folder: Path, data: st.DataObject) -> None:
    spec = data.draw(st.sampled_from(REAL_SPECS))
    tree = yaml.safe_load(spec.read_text(encoding="utf-8"))
    for _ in range(data.draw(st.integers(1, 3))):
        _mutate(tree, data.draw)
    path = folder / "fuzz.yaml"
    path.write_text(yaml.safe_dump(tree, allow_unicode=True, sort_keys=False), encoding="utf-8")
    try:
        load_question(path)
    except GeneratorError as e:
        assert_located(e, path)
        return
    report = check(CheckOptions(paths=(path,), seeds=1, compile=False))
    for problem in report.problems:
        assert re.match(re.escape(str(path)) + r":\d+(:\d+)?: ", problem), problem

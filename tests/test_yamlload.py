"""YAML loading (generator.spec.yamlload): libyaml's parser where it can, the same values, positions
and error messages as PyYAML's pure-Python parser."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import ROOT

from generator.errors import SpecError
from generator.spec import yamlload
from generator.spec.yamlload import load_yaml_text

EDGE_CASES = [
    'ké: "é€ x"\nb: [ä, {c: ö}]\n',
    "d: |\n  täxt\n  more\ne: >-\n  folded\n  text\nf: |+\n  kept\n\n",
    "base: &a {x: 1, y: [1, 2]}\ncopy: *a\nmerged:\n  <<: *a\n  z: 3\n",
    "a: 'single ''quoted'''\nb: \"esc\\t\\u00e9\"\nc: plain\n  continued\n# comment\nd: ~\ne: 1.5e3\nf: 0x1F\ng: yes\n",
    "- 1\n- [2, 3]\n- {k: v}\n-\n  - nested\n",
    "",
    "# only a comment\n",
    "key:    value   # trailing comment\nlist:\n- a\n-   b\n",
]

BROKEN = [
    "a: [1, 2\nb: 3\n",
    "a: b: c\n",
    "a: 1\na: 2\n",
    "a: !!python/object/apply:os.system ['true']\n",
    "a:\n\t- tab\n",
    "a: \"unclosed\n",
    "a: *nowhere\n",
    "- a\nb: c\n",
    "a: \x07bell\n",
    "[1, 2]: x\n",
]


def _reference(text: str) -> tuple[Any, yamlload.Positions]:
    return yamlload._load(yaml.SafeLoader, text, "f.yaml")


def _project_yaml() -> list[Path]:
    return sorted(p for p in ROOT.rglob("*.y*ml") if not {".git", "build"} & set(p.relative_to(ROOT).parts))


def test_the_project_has_yaml_to_compare() -> None:
    assert len(_project_yaml()) >= 20


@pytest.mark.parametrize("text", [pytest.param(p.read_text(encoding="utf-8"), id=str(p.relative_to(ROOT)))
                                  for p in _project_yaml()] + EDGE_CASES)
def test_libyaml_gives_the_same_values_and_positions(text: str) -> None:
    assert yamlload._LIBYAML is not None  # PyYAML's wheels and Debian's python3-yaml have it
    fast = yamlload._load(yamlload._LIBYAML, text, "f.yaml")
    assert fast == _reference(text)
    assert load_yaml_text(text, "f.yaml") == fast


@pytest.mark.parametrize("text", BROKEN)
def test_errors_are_worded_by_the_pure_python_parser(text: str) -> None:
    with pytest.raises(SpecError) as reference:
        _reference(text)
    with pytest.raises(SpecError) as loaded:
        load_yaml_text(text, "f.yaml")
    assert str(loaded.value) == str(reference.value)
    assert str(loaded.value).startswith("f.yaml:")


def test_a_valid_document_is_parsed_once_by_libyaml(monkeypatch: pytest.MonkeyPatch) -> None:
    class Refused(yaml.SafeLoader):
        def __init__(self, stream: str) -> None:
            raise AssertionError("the pure-Python parser was used")

    monkeypatch.setattr(yaml, "SafeLoader", Refused)
    assert load_yaml_text("a: [1, {b: c}]\n", "f.yaml")[0] == {"a": [1, {"b": "c"}]}
    with pytest.raises(AssertionError, match="pure-Python"):
        load_yaml_text("a: [1\n", "f.yaml")

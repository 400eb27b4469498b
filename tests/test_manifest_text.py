"""manifest.json's text: exactly what json.dumps(indent=1, ensure_ascii=False) writes, made faster."""

from __future__ import annotations

import json
import math

from hypothesis import given, settings
from hypothesis import strategies as st

from generator.outputs.manifest import dump_manifest

_leaves = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True, allow_infinity=True) | st.text()
_json = st.recursive(
    _leaves,
    lambda children: st.lists(children, max_size=4) | st.tuples(children, children)
    | st.dictionaries(st.text(max_size=6), children, max_size=4),
    max_leaves=30,
)


@settings(max_examples=400, deadline=None, derandomize=True)
@given(st.dictionaries(st.text(max_size=6), _json, max_size=5))
def test_the_text_is_json_dumps_with_indent_one(manifest):
    assert dump_manifest(manifest) == json.dumps(manifest, indent=1, ensure_ascii=False) + "\n"


def test_what_it_does_not_know_goes_to_the_json_module():
    class Number(float):
        pass

    odd = {"a": [Number(1.5)], "b": {1: "int key"}, "c": [math.inf, -0.0, "é\u2028\"\\"]}
    assert dump_manifest(odd) == json.dumps(odd, indent=1, ensure_ascii=False) + "\n"


def test_a_built_manifest_is_unchanged(tmp_path):
    from conftest import ROOT

    from generator.build import BuildOptions, build

    build(BuildOptions(bank=ROOT / "question_bank", out=tmp_path / "out", variants=3, pdf=False, worksheets=("nn-backprop",)))
    text = (tmp_path / "out" / "manifest.json").read_text(encoding="utf-8")
    assert text == json.dumps(json.loads(text), indent=1, ensure_ascii=False) + "\n"
    assert len(json.loads(text)["variants"]) == 3

"""The worked example in docs/spec.md is a real, valid question that builds and verifies."""

from __future__ import annotations

import re

from conftest import ROOT, write

from generator.answers.sampling import sample
from generator.answers.solve import solve
from generator.answers.verify import verify
from generator.render.documents import make_environment, render_question
from generator.spec.model import load_question


def test_spec_doc_example_is_valid_and_verifies(tmp_path):
    text = (ROOT / "docs" / "spec.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```yaml\n(.*?)```", text, re.S)
    example = next(block for block in blocks if "\nparts:" in block)
    question = load_question(write(tmp_path / "example.yaml", example))
    assert [p.id for p in question.parts] == ["dE_dW", "E"]
    env = make_environment()
    for seed in range(5):
        solution = solve(sample(question, seed, 0))
        verify(solution)
        rendered = render_question(env, solution)
        assert r"\delta \mathbf{x}^T" in rendered.parts[0].vectorized


def test_spec_doc_examples_beyond_matrix_calculus_load_and_verify(tmp_path):
    text = (ROOT / "docs" / "spec.md").read_text(encoding="utf-8")
    section = text[text.index("## Beyond matrix calculus"):text.index("## Kinds of parts")]
    blocks = [block for block in re.findall(r"```yaml\n(.*?)```", section, re.S) if "\nparts:" in block]
    assert len(blocks) == 4
    env = make_environment()
    for n, block in enumerate(blocks):
        question = load_question(write(tmp_path / f"example{n}.yaml", block))
        for seed in range(3):
            solution = solve(sample(question, seed, 0))
            verify(solution)
            assert render_question(env, solution).stem


def test_spec_doc_choice_example_loads_verifies_and_ticks_one_box(tmp_path):
    text = (ROOT / "docs" / "spec.md").read_text(encoding="utf-8")
    section = text[text.index("## Multiple choice and true/false"):text.index("## Worksheets")]
    (block,) = re.findall(r"```yaml\n(.*?)```", section, re.S)
    question = load_question(write(tmp_path / "choice.yaml", block))
    env = make_environment()
    for seed in range(3):
        solution = solve(sample(question, seed, 0))
        verify(solution)
        rule, positive = render_question(env, solution).parts
        assert rule.marked.count(r"$\boxtimes$") == 1 and rule.options.count(r"$\square$") == 5
        assert positive.marked.count(r"$\boxtimes$") == 1


def test_spec_doc_examples_of_each_kind_load_and_verify(tmp_path):
    text = (ROOT / "docs" / "spec.md").read_text(encoding="utf-8")
    section = text[text.index("## Kinds of parts"):text.index("## What a spec cannot say")]
    blocks = [block for block in re.findall(r"```yaml\n(.*?)```", section, re.S) if "\nparts:" in block]
    assert [re.search(r"^id: (\S+)", b, re.M).group(1) for b in blocks] == KIND_EXAMPLES
    env = make_environment()
    for n, block in enumerate(blocks):
        question = load_question(write(tmp_path / f"kind{n}.yaml", block))
        for seed in range(3):
            solution = solve(sample(question, seed, 0))
            verify(solution)
            assert render_question(env, solution).stem


KIND_EXAMPLES = ["derivatives-doc", "formulas-doc", "eigen-doc", "solving-doc", "integrals-doc"]

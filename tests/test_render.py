"""Jinja rendering: LaTeX delimiters, filters, escaping, strict and sandboxed templates."""

from __future__ import annotations

import re
import subprocess

import numpy as np
import pytest
import sympy
from conftest import BANK, needs_tex

from generator.errors import Location, RenderError
from generator.render.documents import make_environment, render_text
from generator.render.latex import escape_text, latex_value
from generator.spec.model import TemplateText


def ints(values):
    return np.vectorize(sympy.Integer, otypes=[object])(np.array(values))


def render(source, context=None, line=10):
    text = TemplateText(source, Location("q.yaml", line, None), "stem")
    return render_text(make_environment(), text, context or {}, "q")


def test_delimiters_leave_tex_braces_alone():
    out = render(r"\frac{a}{b}{{x}} {%no%} << n >> <% if n > 1 %>many<% endif %><# gone #>", {"n": 2})
    assert out == r"\frac{a}{b}{{x}} {%no%} 2 many"


@pytest.mark.parametrize(
    "value, latex",
    [
        (sympy.Rational(-3, 2), r"- \frac{3}{2}"),
        (sympy.exp(2) / (1 + sympy.exp(2)), r"\frac{e^{2}}{e^{2} + 1}"),
        (ints([1, -2]), r"\begin{bmatrix}1 \\ -2\end{bmatrix}"),
        (ints([[1, 0], [0, 1]]), r"\begin{bmatrix}1 & 0 \\ 0 & 1\end{bmatrix}"),
    ],
)
def test_values_become_latex_through_sympy(value, latex):
    assert latex_value(value) == latex


def test_order_three_tensor_is_labelled_blocks():
    out = latex_value(ints([[[1, 2]], [[3, 4]]]))
    assert out == (
        r"\begin{array}{c}\underset{i=1}{\begin{bmatrix}1 & 2\end{bmatrix}} \quad "
        r"\underset{i=2}{\begin{bmatrix}3 & 4\end{bmatrix}}\end{array}"
    )


def test_order_four_tensor_has_one_block_per_leading_pair():
    out = latex_value(ints(np.arange(16).reshape(2, 2, 2, 2)))
    assert out.count(r"\underset") == 4
    assert r"\underset{i=2,\ j=1}{\begin{bmatrix}8 & 9 \\ 10 & 11\end{bmatrix}}" in out


def test_text_is_escaped_literally():
    assert escape_text(r"A&B 100% $5 #1 a_b {c} ~ ^ \ Zoë") == (
        r"A\&B 100\% \$5 \#1 a\_b \{c\} \textasciitilde{} \textasciicircum{} \textbackslash{} Zoë"
    )


def test_filters_in_templates():
    out = render("<< W | latex >>; << name | tex >>", {"W": ints([[1, 2]]), "name": "O'Brien & Co"})
    assert out == r"\begin{bmatrix}1 & 2\end{bmatrix}; O\textquotesingle{}Brien \& Co"


def test_undefined_variable_names_the_spec_line():
    with pytest.raises(RenderError) as info:
        render("line one\nline two << missing >>\n", line=10)
    assert str(info.value) == "q.yaml:11: stem: undefined template variable: 'missing' is undefined"


def test_template_syntax_error_names_the_spec_line():
    with pytest.raises(RenderError) as info:
        render("ok\n<% if x %>\nno end\n", {"x": 1}, line=4)
    assert str(info.value).startswith("q.yaml:")
    assert "stem: template syntax: Unexpected end of template" in str(info.value)


def test_sandbox_refuses_python_internals():
    with pytest.raises(RenderError) as info:
        render("<< ''.__class__.__mro__[1].__subclasses__() >>")
    assert "q.yaml:10: stem: " in str(info.value)


def test_only_values_the_templates_read_are_put_in_display_shape():
    """softmax-xent's templates show S, s and r but never its loss E: E (a logarithm, slow to
    tidy) is left out of the context, and the rendered question is the same as with every value."""

    from generator.answers.sampling import sample
    from generator.answers.solve import solve
    from generator.render.documents import (
        question_context,
        render_question,
        template_names,
    )
    from generator.spec.model import load_bank

    bank = load_bank(BANK)
    env = make_environment()
    question = bank.questions["softmax-xent"]
    names = template_names(env, question)
    assert {"S", "s", "r", "u", "y"} <= names and "E" not in names
    solution = solve(sample(question, 42, 0))
    assert "E" not in question_context(solution, names) and "E" in question_context(solution)
    assert render_question(env, solution) == render_question(env, solution, extras=question_context(solution))


def test_template_names_is_none_when_a_template_does_not_parse(tmp_path):
    from dataclasses import replace

    from generator.render.documents import template_names
    from generator.spec.model import load_bank

    bank = load_bank(BANK)
    question = bank.questions["tanh"]
    broken = replace(question, stem=replace(question.stem, source="<< u "))
    assert template_names(make_environment(), broken) is None


@needs_tex
@pytest.mark.parametrize(("material", "expected"), [
    (r"\rule{2\linewidth}{1pt}", "=linewidth"),  # too wide: scaled down to the line
    (r"\rule{100pt}{1pt}", "=100.0pt"),  # fits: as it is
])
def test_displays_shrink_to_the_line_width_only_when_too_wide(tmp_path, material, expected):
    preamble = make_environment().get_template("preamble.tex.j2").render(cjk=False)
    (tmp_path / "w.tex").write_text(
        preamble + "\\begin{document}\n\\sbox0{\\shrinktowidth{" + material + "}}\n"
        "\\typeout{WIDTH=\\the\\wd0, LINE=\\the\\linewidth}\n\\end{document}\n", encoding="utf-8")
    subprocess.run(["pdflatex", "-interaction=nonstopmode", "-halt-on-error", "w.tex"], cwd=tmp_path,
                   capture_output=True, check=True)
    width, line = re.search(r"WIDTH=(\S+), LINE=(\S+)", (tmp_path / "w.log").read_text("latin-1")).groups()
    assert width == (line if expected == "=linewidth" else expected[1:])

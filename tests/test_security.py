"""Specs cannot run code: hostile expressions, YAML tags, template code and TeX.

Every hostile payload tries to create a marker file (or to read or write one it should not); each
test asserts that nothing ran (no marker) and that the outcome is a clean error with a location,
or harmless output.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from authoring_helpers import QUESTION, make_bank, question, write
from conftest import needs_tex

from generator.cli import main
from generator.errors import CompileError, SpecError
from generator.spec.model import load_question
from generator.spec.yamlload import load_yaml_text
from generator.typeset.compile import compile_pdf

# --- expressions ------------------------------------------------------------------------------

HOSTILE_EXPRESSIONS = [
    ("__import__('os').system('touch {marker}')", "only calls of the listed functions are allowed, e.g. exp(x) (column 1"),
    ("__import__('os')", "unknown function '__import__' (functions: abs, acos, "),
    ("x.__class__.__mro__[1].__subclasses__()", "only calls of the listed functions are allowed, e.g. exp(x) (column 1"),
    ("x.__class__", "attribute '.__class__' is not allowed (only .T, the transpose) (column 1"),
    ("W.T.__dict__", "attribute '.__dict__' is not allowed (only .T, the transpose) (column 1"),
    ("(lambda: 1)()", "only calls of the listed functions are allowed, e.g. exp(x) (column 1"),
    ("[c for c in x]", "ListComp syntax is not allowed in expressions (column 1"),
    ("open('{marker}', 'w')", "unknown function 'open' (functions: abs, acos, "),
    ("eval('1')", "unknown function 'eval' (functions: abs, acos, "),
    ("exp('1')", "only numbers are allowed as constants, got '1' (column 5"),
    ("x[__import__('os')]", "indices must be integer literals, e.g. x[0] or W[1, 2] (column 1"),
    ("exp(x, **{'a': 1})", "exp() takes no keyword arguments (column 1"),
    ("2 ** 10 ** 10 ** 10", None),  # parses; evaluating it is refused (see below)
]


@pytest.mark.parametrize("expression, problem", HOSTILE_EXPRESSIONS, ids=[e for e, _ in HOSTILE_EXPRESSIONS])
def test_expressions_cannot_run_code(tmp_path: Path, expression: str, problem: str | None) -> None:
    marker = tmp_path / "pwned"
    text = expression.replace("{marker}", str(marker))
    path = write(tmp_path / "q.yaml", question(**{"  u: W @ x": f"  u: {json.dumps(text)}"}))
    if problem is None:
        load_question(path)
    else:
        with pytest.raises(SpecError) as info:
            load_question(path)
        assert info.value.problems[0].startswith(f"{path}:11:6: define.u: {problem}"), info.value.problems
    assert not marker.exists()


def test_huge_powers_are_refused_not_computed(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path / "q.yaml", question(**{"  u: W @ x": "  u: W @ x * 2 ** 10 ** 10 ** 10"}))
    assert main(["check", "--no-tex", "--seeds", "1", str(path)]) == 1
    out = capsys.readouterr().out
    assert out == (
        f"{path}:11:6: cannot evaluate 'W @ x * 2 ** 10 ** 10 ** 10': exponent 10000000000 is too large "
        "(at most 100 in absolute value) (question 'q', variant A, seed 0; values: d = 2, x = [3, -3], W = [[-1, 2], [1, 2]])\n"
    )


# --- YAML -------------------------------------------------------------------------------------

HOSTILE_YAML = [
    "title: !!python/object/apply:os.system ['touch {marker}']",
    "title: !!python/object/new:os.system ['touch {marker}']",
    "title: !!python/name:os.system",
    "title: !!python/module:os",
    "title: !!python/object/apply:subprocess.check_output [['touch', '{marker}']]",
    "title: Q\ntags: [!!python/object/apply:os.system ['touch {marker}']]",
    "? !!python/object/apply:os.system ['touch {marker}']\n: x\ntitle: Q",
    "title: !!python/object/apply:os.system\n  args: ['touch {marker}']",
]


@pytest.mark.parametrize("line", HOSTILE_YAML)
def test_python_yaml_tags_are_rejected(tmp_path: Path, line: str) -> None:
    marker = tmp_path / "pwned"
    path = write(tmp_path / "q.yaml", QUESTION.replace("title: Q", line.format(marker=marker)))
    with pytest.raises(SpecError) as info:
        load_question(path)
    [problem] = info.value.problems
    assert problem.startswith(f"{path}:")
    assert ": YAML syntax: tag 'tag:yaml.org,2002:python/" in problem
    assert problem.endswith("' is not allowed (only plain YAML data is)")
    assert not marker.exists()


def test_alias_bomb_is_refused() -> None:
    lines = ["a: &a [x, x, x, x, x, x, x, x, x, x]"]
    for name, prev in zip("bcdefg", "abcdef"):
        lines.append(f"{name}: &{name} [" + ", ".join([f"*{prev}"] * 10) + "]")
    with pytest.raises(SpecError) as info:
        load_yaml_text("\n".join(lines) + "\n", "bomb.yaml")
    assert str(info.value).startswith("bomb.yaml:")
    assert "the document expands to more than 100000 values (anchors and aliases?)" in str(info.value)


# --- templates --------------------------------------------------------------------------------

HOSTILE_TEMPLATES = [
    ("<< ''.__class__.__mro__[1].__subclasses__() >>", "access to attribute '__class__' of 'str' object is unsafe."),
    ("<< cycler.__init__.__globals__.os.popen('touch {marker}') >>", "access to attribute '__init__' of 'type' object is unsafe."),
    ("<< lipsum.__globals__['os'].system('touch {marker}') >>", "access to attribute '__globals__' of 'function' object is unsafe."),
    ("<% for c in [].__class__.__base__.__subclasses__() %><< c >><% endfor %>", "access to attribute '__class__' of 'list' object is unsafe."),
    ("<< self._TemplateReference__context >>", "access to attribute '_TemplateReference__context' of 'TemplateReference' object is unsafe."),
    ("<< (x | attr('__class__')) >>", "access to attribute '__class__' of 'ndarray' object is unsafe."),
    ("<< '{{0.__class__}}'.format(x) >>", "access to attribute '__class__' of 'ndarray' object is unsafe."),
    # numpy and SymPy methods: writing files, changing the drawn numbers, sympify's eval
    ("<< x.dump('{marker}') >>", "access to attribute 'dump' of 'ndarray' object is unsafe."),
    ("<< x.tofile('{marker}') >>", "access to attribute 'tofile' of 'ndarray' object is unsafe."),
    ("<< x.fill(0) >>", "access to attribute 'fill' of 'ndarray' object is unsafe."),
    ("<< x[0].equals(\"__import__('os').system('touch {marker}')\") >>", "access to attribute 'equals' of 'Integer' object is unsafe."),
    ("<< x[0].subs(\"__import__('os').system('touch {marker}')\", 1) >>", "access to attribute 'subs' of 'Integer' object is unsafe."),
    ("<< [1].append(2) >>", "access to attribute 'append' of 'list' object is unsafe."),
    ("<< 10 ** 1000 >>", "exponent 1000 is too large (at most 100)"),
    ("<< 'x' * 10 ** 9 >>", "repeating a text or list 1000000000 times is too much (at most 100000 items)"),
]


@pytest.mark.parametrize("payload, refusal", HOSTILE_TEMPLATES, ids=[p for p, _ in HOSTILE_TEMPLATES])
def test_template_code_is_refused_by_the_sandbox(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], payload: str, refusal: str
) -> None:
    marker = tmp_path / "pwned"
    path = write(tmp_path / "q.yaml", question(**{"  Let $u = W x$ with": "  Let $u = W x$ with " + payload.format(marker=marker)}))
    assert main(["check", "--no-tex", "--seeds", "1", str(path)]) == 1
    out = capsys.readouterr().out
    assert out == f"{path}:19: stem: not allowed in a template: {refusal} [seed 0]\n"
    assert not marker.exists()


@pytest.mark.parametrize("filter_name", ["latex", "scalar", "matrix", "display"])
def test_value_filters_never_sympify_text(tmp_path: Path, capsys: pytest.CaptureFixture[str], filter_name: str) -> None:
    marker = tmp_path / "pwned"
    payload = f"__import__('os').system('touch {marker}')"
    value = f'["{payload}"]' if filter_name == "matrix" else f'"{payload}"'
    path = write(tmp_path / "q.yaml", question(**{"  Let $u = W x$ with": f"  Let << {value} | {filter_name} >>"}))
    assert main(["check", "--no-tex", "--seeds", "1", str(path)]) == 1
    out = capsys.readouterr().out
    assert out.startswith(f"{path}:19: stem: TypeError: expected a number, got text ")
    assert not marker.exists()


# --- TeX --------------------------------------------------------------------------------------


def _tex_of(tmp_path: Path, stem_line: str) -> Path:
    """Build (without PDF) a one-question sheet whose stem has `stem_line`; the key's .tex path.

    Question text that reads or writes files is refused when the spec is loaded (texcheck); what
    is tested here is TeX's own guard, so the payload goes into the built .tex."""
    bank = make_bank(tmp_path / "bank", {"q": QUESTION})
    assert main(["build", "--no-pdf", "--bank", str(bank), "--out", str(tmp_path / "out")]) == 0
    tex = tmp_path / "out" / "sheet" / "A" / "key.tex"
    text = tex.read_text(encoding="utf-8")
    assert "Let $u = W x$ with" in text
    tex.write_text(text.replace("Let $u = W x$ with", "Let $u = W x$ with " + stem_line), encoding="utf-8")
    return tex


@needs_tex
def test_write18_runs_nothing(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    tex = _tex_of(tmp_path, rf"\immediate\write18{{touch {marker}}}\write18{{touch {marker}2}}\immediate\write18{{bibtex x}} ok")
    pdf = compile_pdf(tex)
    assert pdf.exists()
    log = tex.with_suffix(".log").read_text(encoding="latin-1")
    assert "runsystem(bibtex x)...disabled." in log
    assert "executed" not in log
    assert not marker.exists() and not Path(f"{marker}2").exists()


@needs_tex
def test_tex_cannot_read_files_outside_the_job(tmp_path: Path) -> None:
    secret = write(tmp_path / "secret.txt", "TOPSECRET")
    tex = _tex_of(tmp_path, rf"\input{{{secret}}}")
    with pytest.raises(CompileError) as info:
        compile_pdf(tex)
    assert "not found" in str(info.value)
    assert not tex.with_suffix(".pdf").exists() or "TOPSECRET" not in tex.with_suffix(".pdf").read_bytes().decode("latin-1")


@needs_tex
def test_tex_cannot_write_files_outside_the_job(tmp_path: Path) -> None:
    target = tmp_path / "pwned.tex"
    tex = _tex_of(tmp_path, rf"\newwrite\f\immediate\openout\f={target}\immediate\write\f{{hi}}\immediate\closeout\f")
    with pytest.raises(CompileError) as info:
        compile_pdf(tex)
    assert f"I can't write on file `{target}'." in str(info.value)
    assert not target.exists()


def test_attribute_decisions_are_kept_per_type_not_per_name() -> None:
    """The sandbox remembers its answers per (type, attribute): a method that is safe on a dict
    (`copy`) stays refused on a drawn array in the same environment, in either order."""
    import numpy as np
    from jinja2.exceptions import SecurityError

    from generator.render.documents import make_environment

    for order in (("d", "x"), ("x", "d")):
        env = make_environment()
        context = {"d": {"a": 1}, "x": np.array([1, 2])}
        for name in order:
            template = env.from_string(f"<< {name}.copy() >>")
            if name == "d":
                assert template.render(context) == "{'a': 1}"
            else:
                with pytest.raises(SecurityError):
                    template.render(context)
        assert env.from_string("<< x.shape >>").render(context) == "(2,)"

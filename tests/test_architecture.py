"""The package's folders are the pipeline's stages, and imports flow one way: down the stages.

Every import of a generator module (at the top of a file, inside a function or under
TYPE_CHECKING) is read from the source with `ast`; a module may import its own stage and the
stages below it, never one above. docs/architecture.md draws the same map.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from conftest import ROOT

PACKAGE = ROOT / "generator"

# Lowest first. The top-level modules outside the stage folders: the error root, the version and
# the progress bar at the bottom (they import no stage); build and the command line on top.
LAYERS = {
    "generator": 0, "generator.errors": 0, "generator.progress": 0,
    "generator.spec": 1,
    "generator.answers": 2,
    "generator.render": 3,
    "generator.typeset": 4,
    "generator.outputs": 5,
    "generator.commands": 6, "generator.grade": 6,
    "generator.build": 7, "generator.questions": 7, "generator.export": 7,
    "generator.cli": 8, "generator.__main__": 9,
}


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _layer(module: str) -> int:
    while module not in LAYERS:
        if "." not in module:
            raise KeyError(module)
        module = module.rsplit(".", 1)[0]
    return LAYERS[module]


def _imports(path: Path) -> list[tuple[int, str]]:
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names if alias.name.startswith("generator")]
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("generator"):
            if node.module == "generator":  # `from generator import errors`: the names are modules
                found += [(node.lineno, f"generator.{alias.name}") for alias in node.names
                          if (PACKAGE / f"{alias.name}.py").exists() or (PACKAGE / alias.name).is_dir()]
                found.append((node.lineno, "generator"))
            else:
                found.append((node.lineno, node.module))
    return found


MODULES = sorted(PACKAGE.rglob("*.py"))


def test_every_module_belongs_to_a_stage() -> None:
    for path in MODULES:
        _layer(_module_name(path))  # raises KeyError for a module outside the map


@pytest.mark.parametrize("path", MODULES, ids=lambda p: _module_name(p))
def test_no_module_imports_a_higher_stage(path: Path) -> None:
    name = _module_name(path)
    upward = [f"{path.name}:{line}: {target}" for line, target in _imports(path) if _layer(target) > _layer(name)]
    assert upward == []


def test_the_checker_sees_an_upward_import(tmp_path: Path) -> None:
    source = tmp_path / "m.py"
    source.write_text("def f():\n    from generator.build import build\n", encoding="utf-8")
    assert _imports(source) == [(2, "generator.build")]
    assert _layer("generator.build") > _layer("generator.spec.model")


def test_the_stages_are_folders() -> None:
    folders = {p.name for p in PACKAGE.iterdir() if p.is_dir() and (p / "__init__.py").exists()}  # (schema/ is data)
    assert folders == {"spec", "answers", "render", "typeset", "outputs", "commands", "grade", "export"}

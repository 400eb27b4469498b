"""The manifest: what graders and auditors read (a contract; see docs/manifest.md).

{"seed": 42, "variants": [{"id": "A", "questions": [{"id": ..., "params": {...},
  "parts": [{"id": ..., "value": nested lists, "latex": "..."}]}]}]}

Numbers are JSON numbers in nested lists: ints where the exact value is an integer, floats
otherwise; a derivative's value has shape output + input. `latex` is the exact form printed in
the key; a Jacobian part may add `misconceptions` ([{name, value}]: its answer with the inner
derivatives dropped, for the grader to name). Extra keys (tool and library versions, spec
hashes, dimensions) help find keys that change after an upgrade; readers must ignore keys they
do not know.

Class sets add (see docs/output.md): `documents` (each worksheet or exam, its spec hash, and for
every copy its folder, variant, student and question order with points), `students` (each
roster student's id, name, row and variant), `roster` (file name and hash) and `notes`.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from generator import __version__
from generator.answers.rounding import rounded_text, tolerance_numbers
from generator.answers.sampling import Instance
from generator.answers.solve import PartAnswer, Solution, misconception, to_plain
from generator.outputs.cache import installed_versions
from generator.outputs.layout import combined_file, copy_file
from generator.render.latex import choice_option_latex, latex_answer, latex_value
from generator.spec.assemble import Plan
from generator.spec.roster import Roster

__all__ = ["class_set_entries", "dump_manifest", "make_manifest", "manifest_entry"]


def manifest_entry(solution: Solution, latex: Sequence[str] | None = None) -> dict[str, Any]:
    """One question of one variant: parameters, dimensions and every part's exact answer.

    `latex` holds each part's `latex_answer` when the caller has it already."""
    instance = solution.instance
    latex = latex if latex is not None else [latex_answer(answer) for answer in solution.parts]
    return {
        "id": instance.question.id,
        "spec_sha256": instance.question.sha256,
        "dimensions": dict(instance.dims),
        "params": {name: to_plain(value) for name, value in instance.params.items()},
        "parts": [_part_entry(answer, text, instance) for answer, text in zip(solution.parts, latex, strict=True)],
    }


def _part_entry(answer: PartAnswer, text: str, instance: Instance) -> dict[str, Any]:
    if answer.choice is not None:
        return _choice_entry(answer, text)
    entry: dict[str, Any] = {
        "id": answer.spec.id,
        "of": answer.spec.of,
        "wrt": answer.spec.wrt_written,
        "shape": list(answer.value.shape),
        "value": to_plain(answer.value),
        "latex": text,  # the exact form as printed in the key
    }
    rule = answer.spec.rule
    if rule.rounded:  # (an exact part has neither key: its answer is `value`, exactly)
        assert rule.digits is not None
        entry["rule"] = {"kind": rule.kind, "digits": rule.digits, "tolerance": tolerance_numbers(rule)}
        entry["rounded"] = to_plain_rounded(answer.value, rule.kind, rule.digits)
    dropped = _inner_dropped(answer, instance, entry["value"])
    if dropped is not None:
        entry["misconceptions"] = [{"name": "inner derivative dropped", "value": dropped}]
    return entry


def _inner_dropped(answer: PartAnswer, instance: Instance, value: Any) -> Any:
    """A Jacobian part's answer with every inner derivative dropped (`generator.answers.solve.misconception`),
    for the grader to name (docs/grading.md): the same wrong derivative a choice part offers as
    `inner_dropped`. None for other parts, and where it equals the answer (no chain rule to forget).

    Sign flip and transposed Jacobian are not written: the grader makes them from `value`."""
    if answer.spec.kind != "jacobian":
        return None
    dropped = to_plain(misconception("inner_dropped", instance, answer.spec, answer.value, answer.out_shape,
                                     answer.in_shape))
    return None if dropped == value else dropped


def _choice_entry(answer: PartAnswer, text: str) -> dict[str, Any]:
    """A choice part (`kind: choice`): its `of` and `wrt` (null where it has none), the correct
    `letters`, and `choices`, each option as shown: letter, where it came from (`answer`,
    `options[i]`, a misconception), whether it is correct, its LaTeX `text` as on the sheet, and
    for an expression its exact `value` and `latex`; `value` is the `of`'s answer."""
    assert answer.choice is not None
    choices = []
    for option in answer.choice.options:
        item: dict[str, Any] = {"letter": option.letter, "source": option.source, "correct": option.correct,
                                "text": choice_option_latex(option)}
        if option.value is not None:
            item["value"] = to_plain(option.value)
            item["latex"] = latex_value(option.value)
        choices.append(item)
    return {
        "id": answer.spec.id,
        "kind": "choice",
        "of": answer.spec.of or None,
        "wrt": answer.spec.wrt,
        "shape": list(answer.value.shape),
        "value": to_plain(answer.value),
        "latex": text,  # the correct letters, as printed in the key
        "letters": list(answer.choice.letters),
        "choices": choices,
        "redraws": answer.choice.redraws,
    }


def to_plain_rounded(value: Any, kind: str, digits: int) -> Any:
    """The rounded answer as JSON numbers (nested lists like `value`)."""
    array = np.asarray(value, dtype=object)
    if not array.size:
        return array.tolist()
    rounded = np.vectorize(lambda v: float(rounded_text(v, kind, digits)), otypes=[float])(array)
    return rounded.tolist()


def make_manifest(
    seed: int, variants: Iterable[tuple[str, list[dict[str, Any]]]], extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The whole manifest for a build: `variants` holds each variant's label and its questions'
    `manifest_entry` (made where the question was solved, possibly in another process)."""
    import jinja2
    import numpy
    import sympy

    found = installed_versions(("pyyaml", "pypdf"))  # (not importlib.metadata: 25 ms a package)
    manifest: dict[str, Any] = {
        "seed": seed,
        "tool": {"name": "generator", "version": __version__},
        "libraries": {
            "sympy": sympy.__version__, "numpy": numpy.__version__, "jinja2": jinja2.__version__,
            "pyyaml": found.get("pyyaml", "unknown"), "pypdf": found.get("pypdf", "unknown"),
        },
        "convention": "Jacobian of an output of shape A with respect to an input of shape B has shape A + B",
        "variants": [{"id": label, "questions": list(entries)} for label, entries in variants],
    }
    if extra:
        manifest.update(extra)
    return manifest


def class_set_entries(plan: Plan, kinds: Iterable[str], roster: Roster | None, notes: Iterable[str]) -> dict[str, Any]:
    """The manifest keys that describe documents, copies, students and notes of a build."""
    kinds = list(kinds)
    documents = []
    for document in plan.documents:
        copies = []
        for seat in plan.seats:
            slots = document.slots[seat.variant_index]
            copy: dict[str, Any] = {"folder": f"{document.id}/{seat.folder}", "variant": seat.variant}
            if seat.student is not None:
                copy["student"] = seat.student.id
            copy["questions"] = [{"number": s.number, "id": s.question, "points": s.points} for s in slots]
            copy["total"] = sum(s.points or 0 for s in slots)
            copy["files"] = [copy_file(document.id, seat.folder, kind, ".tex") for kind in kinds]
            copies.append(copy)
        documents.append({
            "id": document.id,
            "type": document.type,
            "title": document.spec.title,
            "spec_sha256": _file_sha256(document.spec.path),
            "combined": [combined_file(document.id, kind) for kind in kinds],
            "copies": copies,
        })
    entries: dict[str, Any] = {"documents": documents}
    if roster is not None:
        entries["roster"] = {"file": Path(roster.file).name, "sha256": roster.sha256}
        entries["students"] = [
            {"id": seat.student.id, "name": seat.student.name, "row": seat.student.row, "variant": seat.variant,
             "folder": seat.folder}
            for seat in plan.seats if seat.student is not None
        ]
    entries["notes"] = list(notes)
    return entries


def _file_sha256(path: str) -> str:
    try:
        return hashlib.sha256(Path(path).read_bytes()).hexdigest()
    except OSError:
        return "unknown"


def dump_manifest(manifest: dict[str, Any]) -> str:
    """Stable JSON text (sorted nothing: key order is the contract's; fixed indentation).

    The text `json.dumps(manifest, indent=1, ensure_ascii=False)` gives, written by a plain
    recursive function: with an indent, the json module uses its pure-Python encoder, a chain of
    generators per nesting level that took a third of a second for a 200-student roster.
    """
    pieces: list[str] = []
    try:
        _encode(manifest, "\n", pieces)
    except _Unusual:
        return json.dumps(manifest, indent=1, ensure_ascii=False) + "\n"
    pieces.append("\n")
    return "".join(pieces)


class _Unusual(Exception):
    """A value `_encode` leaves to the json module (a non-string key, a type it does not know)."""


def _encode(value: Any, newline: str, out: list[str]) -> None:
    """Append the JSON of `value`, at the depth `newline` (a newline and its indentation) gives."""
    scalar = _SCALARS.get(type(value))
    if scalar is not None:
        out.append(scalar(value))
    elif isinstance(value, dict):
        if not value:
            out.append("{}")
            return
        inner = newline + " "
        out.append("{")
        separator = inner
        for key, item in value.items():
            if type(key) is not str:
                raise _Unusual
            scalar = _SCALARS.get(type(item))
            if scalar is not None:  # (most items: written here, without a call of _encode)
                out.append(f"{separator}{_string(key)}: {scalar(item)}")
            else:
                out.append(f"{separator}{_string(key)}: ")
                _encode(item, inner, out)
            separator = "," + inner
        out.append(newline + "}")
    elif isinstance(value, (list, tuple)):
        if not value:
            out.append("[]")
            return
        inner = newline + " "
        try:  # the common case, a row of numbers (or strings): in one go
            out.append(f"[{inner}{(',' + inner).join([_SCALARS[type(item)](item) for item in value])}{newline}]")
            return
        except KeyError:
            pass
        out.append("[")
        for k, item in enumerate(value):
            out.append("," + inner if k else inner)
            _encode(item, inner, out)
        out.append(newline + "]")
    else:
        raise _Unusual


def _float(value: float) -> str:
    return float.__repr__(value) if math.isfinite(value) else json.dumps(value)  # Infinity, NaN


_string = json.encoder.encode_basestring  # (C speedup; ensure_ascii=False)
# Exact types, as the json module writes them (a subclass, such as numpy's float64, goes to it).
_SCALARS: dict[type, Any] = {
    str: _string, int: int.__repr__, float: _float, bool: lambda b: "true" if b else "false",
    type(None): lambda _: "null",
}

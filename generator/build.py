"""The pipeline, top to bottom: load -> sample -> solve -> verify -> render -> write -> compile.

Each stage lives in the module of the same name; this file only wires them together. Sheet and
key of a variant come from one draw and one rendering: they differ only in which parts of the
rendered questions the document template shows.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from pathlib import Path

from generator.compile import INSTALL_HINT, compile_pdf, tex_available
from generator.errors import GeneratorError
from generator.manifest import dump_manifest, make_manifest
from generator.output import staging
from generator.render import make_environment, render_document, render_question
from generator.sampling import sample, variant_label
from generator.solve import Solution, solve
from generator.spec import Bank, load_bank
from generator.verify import verify

__all__ = ["BuildOptions", "BuildResult", "build", "DOCUMENT_KINDS"]

DOCUMENT_KINDS = ("sheet", "key")


@dataclass(frozen=True, slots=True)
class BuildOptions:
    """What `python -m generator build` was asked to do."""

    seed: int = 42
    bank: Path = Path("question_bank")
    out: Path | None = None
    pdf: bool = True
    variants: int = 1
    worksheets: tuple[str, ...] = ()
    templates: Path | None = None

    @property
    def destination(self) -> Path:
        return self.out if self.out is not None else Path("build") / f"seed-{self.seed}"


@dataclass(frozen=True, slots=True)
class BuildResult:
    """What a build wrote, and anything the user should know."""

    destination: Path
    files: tuple[str, ...]
    notes: tuple[str, ...] = field(default_factory=tuple)


def _selected_worksheets(bank: Bank, wanted: tuple[str, ...]) -> list[str]:
    if not wanted:
        return sorted(bank.worksheets)
    missing = [w for w in wanted if w not in bank.worksheets]
    if missing:
        raise GeneratorError(f"no worksheet named {', '.join(missing)} in {bank.root} (have: {', '.join(sorted(bank.worksheets))})")
    return list(wanted)


def solve_all(bank: Bank, question_ids: list[str], seed: int, variant_index: int) -> list[Solution]:
    """Sample, solve and verify the given questions for one variant."""
    solutions = []
    for qid in question_ids:
        solution = solve(sample(bank.questions[qid], seed, variant_index))
        verify(solution)
        solutions.append(solution)
    return solutions


def build(options: BuildOptions) -> BuildResult:
    """Run the whole pipeline; on any error the previous output is left untouched."""
    bank = load_bank(options.bank)
    sheet_ids = _selected_worksheets(bank, options.worksheets)
    question_ids = list(dict.fromkeys(q for s in sheet_ids for q in bank.worksheets[s].questions))
    env = make_environment(options.templates)

    variants = []
    documents: dict[str, str] = {}
    for index in range(options.variants):
        label = variant_label(index)
        solutions = solve_all(bank, question_ids, options.seed, index)
        variants.append((label, solutions))
        rendered = {s.instance.question.id: render_question(env, s) for s in solutions}
        suffix = "" if options.variants == 1 else f"-{label}"
        for sheet_id in sheet_ids:
            sheet = bank.worksheets[sheet_id]
            chosen = [rendered[q] for q in sheet.questions]
            for kind in DOCUMENT_KINDS:
                documents[f"{sheet_id}-{kind}{suffix}.tex"] = render_document(
                    env, kind, sheet, chosen, seed=options.seed, variant=label
                )
    manifest = make_manifest(options.seed, variants)

    notes: list[str] = []
    compile_pdfs = options.pdf and tex_available()
    if options.pdf and not compile_pdfs:
        notes.append(INSTALL_HINT)
    files = sorted(documents) + ["manifest.json"]
    with staging(options.destination) as temp:
        for name, text in documents.items():
            (temp / name).write_text(text, encoding="utf-8")
        (temp / "manifest.json").write_text(dump_manifest(manifest), encoding="utf-8")
        if compile_pdfs:
            files += _compile_all(temp, sorted(documents))
    return BuildResult(options.destination, tuple(sorted(files)), tuple(notes))


def _compile_all(folder: Path, tex_names: list[str]) -> list[str]:
    scratch = folder / ".tex"
    scratch.mkdir()
    pdfs = []
    for name in tex_names:
        shutil.copyfile(folder / name, scratch / name)
        pdf = compile_pdf(scratch / name)
        shutil.copyfile(pdf, folder / pdf.name)
        pdfs.append(pdf.name)
    shutil.rmtree(scratch)
    return pdfs

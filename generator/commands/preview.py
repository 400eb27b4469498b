"""`preview`: one question, one seed, as a PDF and PNG pages, for the edit-look-edit loop.

The question is drawn exactly as a build with the same seed draws it for variant A (same
`numpy` generator, see `generator.answers.sampling`), solved, verified and rendered with the same
templates; the document (`templates/preview.tex.j2`) shows it as on the student sheet, then as in
the answer key. PNG pages come from `pdftoppm` (poppler-utils) when it is installed.

Output goes to `build/preview/<question id>/` (or `--out`), replaced as a whole only when the
preview succeeds, like a build's output.
"""

from __future__ import annotations

import difflib
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from generator.answers.sampling import sample
from generator.answers.solve import solve
from generator.answers.verify import verify
from generator.errors import CompileError, GeneratorError, SpecError, display_path
from generator.outputs.output import staging
from generator.render.documents import (
    RenderedQuestion,
    make_environment,
    render_document,
    render_question,
)
from generator.spec.assemble import variant_label
from generator.spec.model import QuestionSpec, WorksheetSpec, load_question
from generator.spec.yamlload import load_yaml
from generator.typeset.compile import INSTALL_COMMAND, announced, compile_pdf, tex_available

__all__ = [
    "PreviewOptions", "PreviewResult", "preview", "find_question", "looks_like_worksheet", "render_preview_document",
    "PNG_RESOLUTION",
]

PNG_RESOLUTION = 110  # dots per inch: an A4 page is about 910 x 1290 pixels, readable on screen


@dataclass(frozen=True, slots=True)
class PreviewOptions:
    """What `python -m generator preview` was asked to do."""

    target: str
    seed: int = 42
    bank: Path = Path("question_bank")
    out: Path | None = None
    templates: Path | None = None
    png: bool = True


@dataclass(frozen=True, slots=True)
class PreviewResult:
    """The files a preview wrote (PDF first, then PNG pages in order) and anything to know."""

    question: str
    seed: int
    variant: str
    tex: Path
    pdf: Path
    pngs: tuple[Path, ...]
    notes: tuple[str, ...] = field(default_factory=tuple)


def find_question(target: str, bank: Path) -> QuestionSpec:
    """Load the question `target` names: a file, or a question id in `bank/questions/`.

    Raises:
        SpecError: no such file or id, or the file has problems.
    """
    path = Path(target)
    if path.is_file():
        try:
            data, _ = load_yaml(path)
        except GeneratorError:
            data = None  # load_question reports it
        if looks_like_worksheet(data):
            raise SpecError(
                f"{display_path(path)}:1:1: is a worksheet; preview takes one question (its id or its file)"
            )
        return load_question(path)
    if path.suffix in (".yaml", ".yml") or "/" in target:
        raise SpecError(f"{display_path(path)}: no such file")
    folder = bank / "questions"
    if not folder.is_dir():
        raise SpecError(f"{display_path(folder)}: no such folder (give a question file, or the bank with --bank)")
    ids: dict[str, Path] = {}
    for file in sorted(folder.glob("*.y*ml")):
        try:
            data, _ = load_yaml(file)
        except GeneratorError:
            continue
        if isinstance(data, dict) and isinstance(data.get("id"), str):
            ids.setdefault(data["id"], file)
    if target in ids:
        return load_question(ids[target])
    hint = difflib.get_close_matches(target, sorted(ids), n=1)
    extra = f"; did you mean '{hint[0]}'?" if hint else ""
    raise SpecError(f"{display_path(folder)}: no question with id '{target}'{extra}")


def render_preview_document(
    env: Any, question: QuestionSpec, rendered: list[RenderedQuestion], seeds: list[int], variant: str = "A"
) -> str:
    """The standalone document of one question (`templates/preview.tex.j2`): each draw as on the
    sheet and as in the key."""
    sheet = WorksheetSpec(
        id=question.id, title=f"{question.title} ({question.id})", course="", instructions="", footnotes=(),
        questions=(question.id,), path=question.path,
    )
    return render_document(env, "preview", sheet, rendered, seed=seeds[0], variant=variant, extra={"seeds": seeds})


def looks_like_worksheet(data: Any) -> bool:
    """A YAML document with a `questions` list and none of a question's own keys."""
    return isinstance(data, dict) and "questions" in data and not {"parameters", "parts", "define"} & set(data)


def preview(options: PreviewOptions) -> PreviewResult:
    """Draw, solve, verify, render and compile one question for one seed.

    Raises:
        GeneratorError: any problem of the question (the message says where), no TeX engine,
            or an output folder that cannot be written.
    """
    question = find_question(options.target, options.bank)
    if not tex_available():
        raise CompileError(
            f"no TeX engine (pdflatex) on PATH; preview needs it to make the PDF. Install TeX with: {INSTALL_COMMAND}"
        )
    env = make_environment(options.templates)
    solution = solve(sample(question, options.seed, 0))
    verify(solution)
    variant = variant_label(0)
    text = render_preview_document(env, question, [render_question(env, solution)], [options.seed], variant)

    destination = options.out if options.out is not None else Path("build") / "preview" / question.id
    notes: list[str] = []
    name = question.id
    with staging(destination) as temp:
        (temp / f"{name}.tex").write_text(text, encoding="utf-8")
        scratch = temp / ".tex"
        scratch.mkdir()
        (scratch / f"{name}.tex").write_text(announced(text), encoding="utf-8")
        shutil.copyfile(compile_pdf(scratch / f"{name}.tex"), temp / f"{name}.pdf")
        shutil.rmtree(scratch)
        pages: list[str] = []
        if options.png:
            if shutil.which("pdftoppm") is None:
                notes.append(
                    "pdftoppm not found, so no PNG pages were made; install it with: apt-get install poppler-utils"
                )
            else:
                pages = _png_pages(temp / f"{name}.pdf", temp / name)
    pngs = tuple(destination / page for page in pages)
    return PreviewResult(
        question.id, options.seed, variant, destination / f"{name}.tex", destination / f"{name}.pdf", pngs, tuple(notes)
    )


def _png_pages(pdf: Path, prefix: Path) -> list[str]:
    """Render every page of `pdf` as `<prefix>-<n>.png`; returns the file names in page order."""
    result = subprocess.run(
        ["pdftoppm", "-png", "-r", str(PNG_RESOLUTION), pdf.name, prefix.name],
        cwd=pdf.parent, check=False, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        timeout=120,
    )
    if result.returncode != 0:
        output = result.stdout.decode("utf-8", "replace").strip()
        raise CompileError(f"{pdf.name}: pdftoppm failed: {output or f'exit code {result.returncode}'}")
    # pdftoppm pads page numbers to the width of the page count (-1, or -01 from 10 pages on).
    pages = sorted(pdf.parent.glob(f"{prefix.name}-*.png"), key=lambda p: int(p.stem.rsplit("-", 1)[1]))
    return [p.name for p in pages]

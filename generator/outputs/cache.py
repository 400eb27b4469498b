"""Incremental builds: what a build depends on, and what of the previous build can be reused.

The cache is the previous output folder itself, described by its hidden index file
`.generator-cache.json` (written with the build, so it is swapped into place with it and never
describes files that are not there). It records:

- `inputs`: a SHA-256 over everything the build reads: the tool's own source files and version,
  Python and library versions, the options (seed, variants, worksheets, exams, roster, sidedness,
  paths as given), every file of the bank, of the project's templates and of `--templates`, the
  roster file, and which TeX (pdflatex and its format file) compiles;
- `files`: every file the build wrote, with its SHA-256, and the build's notes;
- `jobs`: for each TeX job (all copies of one document kind), the content hash of its copies'
  `.tex` text (see `generator.typeset.batch.job_key`) and the PDFs it produced;
- `solved`: for each question, a key over the code side of the build (tool source, Python,
  libraries, templates), the question's spec file (content and path), the seed and the variants
  drawn, naming a file in `.generator-solved/` that holds those variants solved, verified and
  rendered (LaTeX pieces, manifest entries, key-table rows, the sampling note).

A build whose `inputs` equal the recorded ones, into a folder whose recorded files are all there
and unchanged (hashes checked), does nothing: no sampling, no SymPy, no TeX. Otherwise the build
runs; each TeX job whose key is recorded and whose PDFs are intact takes them from the previous
folder (hard links, or copies) instead of running TeX, so changing one question recompiles only
the jobs of the documents that contain it, and each question whose key is recorded (and whose
file is intact) is not sampled, solved or verified again: after a typo fix in one question only
that question is solved again. A missing, unreadable or corrupted index or file only means more
work: it is never trusted.

Nothing here imports SymPy, Jinja or pypdf, so a build with unchanged inputs starts and ends in a
fraction of a second.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shutil
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from generator import __version__
from generator.typeset.batch import file_digest
from generator.typeset.compile import format_file

__all__ = [
    "INDEX", "SOLVED", "Previous", "environment", "fingerprint", "job_salt", "load_previous",
    "question_key", "store_solved", "tex_identity", "write_index",
]

INDEX = ".generator-cache.json"
SOLVED = ".generator-solved"  # one JSON file per question: its variants solved, verified, rendered
_FORMAT = 2
_PACKAGE = Path(__file__).resolve().parent.parent  # the generator package
_LIBRARIES = ("sympy", "numpy", "jinja2", "pyyaml", "jsonschema", "pypdf")


def _add_tree(digest: Any, label: str, root: Path | None) -> None:
    """Every file under `root` (names relative to it, and contents), in a fixed order."""
    digest.update(f"\0tree {label}\0".encode())
    if root is None or not root.exists():
        return
    if root.is_file():
        with open(root, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                digest.update(chunk)
        return
    # Regular files only, read in chunks: a link, a named pipe or a device in the bank is not
    # followed or opened here (loading the bank refuses the files it would read), and a huge
    # file does not fill the memory. (Links stand for their target's name.)
    for path in sorted(p for p in root.rglob("*") if "__pycache__" not in p.parts):
        if path.is_symlink():
            target = os.readlink(path).encode("utf-8", "replace")
            digest.update(str(path.relative_to(root)).encode("utf-8") + b"\0link\0" + target)
            continue
        if not path.is_file():
            continue
        digest.update(str(path.relative_to(root)).encode("utf-8") + b"\0")
        with open(path, "rb") as f:
            digest.update(hashlib.file_digest(f, "sha256").digest())


def tex_identity() -> str:
    """Which TeX compiles: pdflatex and its format file, by path, size and time (no TeX run)."""
    pdflatex = shutil.which("pdflatex")
    if pdflatex is None:
        return "no TeX"
    parts = [pdflatex]
    candidates = [Path(os.path.realpath(pdflatex))]
    if (found := format_file()) is not None:
        candidates.append(found)
    for path in candidates:
        try:
            stat = path.stat()
        except OSError:
            continue
        parts.append(f"{path}:{stat.st_size}:{stat.st_mtime_ns}")
    return "|".join(parts)


def job_salt(tex: str) -> str:
    """What, besides its copies' text, decides a TeX job's PDFs: TeX, and the code that runs and cuts it."""
    code = hashlib.sha256()
    for path in sorted((_PACKAGE / "typeset").glob("*.py")):
        code.update(path.read_bytes())
    return f"{tex}|{code.hexdigest()}"


def environment(templates: Iterable[Path | None]) -> str:
    """The hash of what the code side of a build is: the tool's source, Python, libraries, templates."""
    digest = hashlib.sha256()
    digest.update(f"generator {__version__} cache {_FORMAT} python {sys.version}\0".encode())
    _add_tree(digest, "tool", _PACKAGE)
    versions = installed_versions(_LIBRARIES)
    for package in _LIBRARIES:
        digest.update(f"{package} {versions.get(package, 'missing')}\0".encode())
    for n, folder in enumerate(templates):
        _add_tree(digest, f"templates {n}", folder)
    return digest.hexdigest()


def installed_versions(packages: Iterable[str]) -> dict[str, str]:
    """The installed version of each package found, as importlib.metadata.version gives it.

    Read from the names of the distributions' metadata folders on sys.path
    (`sympy-1.14.0.dist-info`), the first on the path winning, as for imports: importlib.metadata
    reads the same folders, but importing it and asking takes about 25 ms, which every build pays
    (a no-op rebuild takes 0.2 s). Packages not found that way are asked the usual way."""
    wanted = {_normalized(p): p for p in packages}
    found: dict[str, str] = {}
    for entry in sys.path:
        try:
            names = os.listdir(entry or ".")
        except OSError:
            continue
        for name in names:
            stem, dot, kind = name.rpartition(".")
            if not dot or kind not in ("dist-info", "egg-info"):
                continue
            project, _, rest = stem.partition("-")
            package = wanted.get(_normalized(project))
            if package is not None and package not in found and rest:
                found[package] = rest.split("-")[0]
    missing = [p for p in packages if p not in found]
    if missing:
        from importlib.metadata import PackageNotFoundError, version

        for package in missing:
            with contextlib.suppress(PackageNotFoundError):
                found[package] = version(package)
    return found


def _normalized(project: str) -> str:
    return re.sub(r"[-_.]+", "_", project).lower()


def fingerprint(options: Mapping[str, Any], *, bank: Path, environment: str, roster: Path | None, tex: str) -> str:
    """The hash of everything a build depends on (see the module docstring)."""
    digest = hashlib.sha256()
    digest.update(f"environment {environment}\0".encode())
    digest.update(json.dumps(options, sort_keys=True, default=str).encode("utf-8"))
    _add_tree(digest, "bank", bank)
    _add_tree(digest, "roster", roster)
    digest.update(f"\0tex {tex}".encode())
    return digest.hexdigest()


def question_key(environment: str, spec_sha256: str, spec_path: str, question_id: str, seed: int,
                 variants: Iterable[int]) -> str:
    """The cache key of one question's solved variants: its spec, where it is, the seed, which variants."""
    text = json.dumps([environment, spec_sha256, spec_path, question_id, seed, list(variants)])
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


@dataclass(slots=True)
class Previous:
    """What the previous build in an output folder recorded, and the folder it is in."""

    folder: Path
    inputs: str = ""
    files: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    jobs: dict[str, dict[str, str]] = field(default_factory=dict)
    solved: dict[str, str] = field(default_factory=dict)  # question key -> SHA-256 of its file
    reused_jobs: int = 0

    def intact(self, names: Iterable[str]) -> bool:
        """Whether each named file is recorded and still has the recorded content."""
        for name in names:
            expected = self.files.get(name)
            path = self.folder / name
            if expected is None or not path.is_file():
                return False
            try:
                if file_digest(path) != expected:
                    return False
            except OSError:
                return False
        return True

    def unchanged(self, inputs: str) -> bool:
        """Whether a build with these inputs would write exactly what the folder holds."""
        return bool(self.files) and inputs == self.inputs and self.intact(self.files)

    def reuse_job(self, key: str, outputs: list[str], into: Path) -> bool:
        """Put a TeX job's PDFs from the previous build into `into`, if recorded and intact."""
        recorded = self.jobs.get(key)
        if recorded is None or sorted(recorded) != sorted(outputs):
            return False
        if any(self.files.get(name) != digest for name, digest in recorded.items()) or not self.intact(outputs):
            return False
        for name in outputs:
            target = into / name
            target.parent.mkdir(parents=True, exist_ok=True)
            try:
                os.link(self.folder / name, target)
            except OSError:
                shutil.copyfile(self.folder / name, target)
        self.reused_jobs += 1
        return True

    def solved_question(self, key: str) -> Any | None:
        """A question's solved variants as stored by `store_solved`, if recorded and intact."""
        digest = self.solved.get(key)
        path = self.folder / SOLVED / f"{key}.json"
        try:
            if digest is None or file_digest(path) != digest:
                return None
            return json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None


def store_solved(folder: Path, key: str, data: Any) -> None:
    """Keep a question's solved variants (JSON-able) in `folder` for the next build."""
    path = folder / SOLVED / f"{key}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, ensure_ascii=False, separators=(",", ":")), encoding="utf-8")


def load_previous(folder: Path) -> Previous:
    """The index of the build in `folder`; an empty one when there is none or it cannot be read."""
    previous = Previous(folder)
    try:
        data = json.loads((folder / INDEX).read_text(encoding="utf-8"))
        if data.get("format") != _FORMAT:
            return previous
        previous.inputs = str(data["inputs"])
        previous.files = {str(k): str(v) for k, v in data["files"].items()}
        previous.notes = [str(n) for n in data["notes"]]
        previous.jobs = {str(k): {str(n): str(d) for n, d in v.items()} for k, v in data["jobs"].items()}
        previous.solved = {str(k): str(v) for k, v in data["solved"].items()}
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return Previous(folder)
    return previous


def write_index(folder: Path, inputs: str, files: Iterable[str], notes: Iterable[str],
                jobs: Mapping[str, Iterable[str]], solved: Iterable[str] = (),
                digests: Mapping[str, str] | None = None) -> None:
    """Record a finished build in `folder` (before it is swapped into place).

    `digests` holds the SHA-256 of files already known (taken as they were written); the others
    are read back."""
    known = digests or {}
    hashes = {name: known[name] if name in known else file_digest(folder / name) for name in sorted(files)}
    data = {
        "format": _FORMAT,
        "inputs": inputs,
        "files": hashes,
        "notes": list(notes),
        "jobs": {key: {name: hashes[name] for name in names} for key, names in sorted(jobs.items())},
        "solved": {key: file_digest(folder / SOLVED / f"{key}.json") for key in sorted(solved)},
    }
    (folder / INDEX).write_text(json.dumps(data, indent=1) + "\n", encoding="utf-8")

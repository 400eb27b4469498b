"""Stage 6, compile: LaTeX -> PDF with pdflatex, safely and reproducibly.

pdflatex runs non-interactively with shell escape off (`-no-shell-escape`), so `\\write18` in a
question cannot run commands, and with `SOURCE_DATE_EPOCH` fixed (plus `\\pdftrailerid{}` and
`\\pdfinfoomitdate` in the preamble) so that the same `.tex` gives the same PDF bytes. A second
pass runs only when the log asks for one (labels or references changed), as latexmk would.
On failure the error shows the relevant log lines and, through the `%% generator: question ...`
markers the render stage writes, which question's text produced them.

What a build makes ready before its batches reach TeX (formats kept and preloaded, runs started
early) is in `generator.typeset.formats`.
"""

from __future__ import annotations

import functools
import os
import re
import shutil
import subprocess
import threading
from pathlib import Path
from typing import TYPE_CHECKING

from generator.errors import CompileError

if TYPE_CHECKING:
    from generator.spec.sourcemap import TemplateLine

__all__ = [
    "INSTALL_COMMAND",
    "INSTALL_HINT",
    "SOURCE_DATE_EPOCH",
    "allow_running",
    "end_pdflatex",
    "compile_pdf",
    "error_line",
    "explain_failure",
    "format_file",
    "needs_rerun",
    "run_pdflatex",
    "start_pdflatex",
    "stop_running",
    "tex_available",
    "tex_environment",
    "wait_pdflatex",
]

INSTALL_COMMAND = (
    "apt-get install texlive-latex-base texlive-latex-recommended texlive-latex-extra "
    "texlive-fonts-recommended lmodern latexmk"
)
INSTALL_HINT = f"no TeX engine (pdflatex) on PATH; wrote .tex and manifest only. Install TeX with: {INSTALL_COMMAND}"
SOURCE_DATE_EPOCH = "0"
MAX_PASSES = 3
_RERUN = re.compile(r"Rerun to get|Label\(s\) may have changed|There were undefined references")
_MARKER = re.compile(r"^%% generator: question (\S+)(?: (.*))?$")
_running: set[subprocess.Popen[bytes]] = set()
_running_lock = threading.Lock()
_stopped = threading.Event()


def tex_available() -> bool:
    """True when pdflatex is on PATH."""
    return shutil.which("pdflatex") is not None


@functools.cache
def format_file() -> Path | None:
    """pdflatex's format file, as kpsewhich finds it; None when it cannot say."""
    try:
        found = subprocess.run(["kpsewhich", "-engine=pdftex", "pdflatex.fmt"], capture_output=True, text=True,
                               timeout=30, check=False).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return Path(found) if found else None


def tex_environment() -> dict[str, str]:
    env = dict(os.environ)
    env.update(SOURCE_DATE_EPOCH=SOURCE_DATE_EPOCH, FORCE_SOURCE_DATE="1", TZ="UTC", LC_ALL="C.UTF-8")
    # Never let TeX open a terminal prompt or look for files outside the job: question text could
    # otherwise `\input{/etc/passwd}` into a PDF or `\openout` a file anywhere. "p" (paranoid)
    # allows only files in the job's folder (and TeX's own trees, found by name).
    env.update(openin_any="p", openout_any="p")
    # Unwrapped log lines: file names and messages stay whole in error excerpts.
    env.update(max_print_line="10000")
    env.pop("TEXINPUTS", None)
    return env


def compile_pdf(tex_file: Path, *, timeout: float = 120.0, fmt: Path | None = None) -> Path:
    """Compile `tex_file` in its own folder (with format file `fmt`, else TeX's own); return the PDF path.

    Raises:
        CompileError: TeX reported an error (with log excerpt and the question it came from),
            or did not finish within `timeout` seconds.
    """
    tex_file = Path(tex_file)
    for _ in range(MAX_PASSES):
        returncode, log = run_pdflatex(tex_file, timeout=timeout, fmt=fmt)
        if returncode is None:
            raise CompileError(f"{tex_file}: pdflatex did not finish within {timeout:.0f} s")
        if returncode != 0:
            raise CompileError(explain_failure(tex_file, log), tex_line=error_line(tex_file, log))
        if not needs_rerun(log):
            break
    return tex_file.with_suffix(".pdf")


def needs_rerun(log: str) -> bool:
    """Whether a pdflatex log asks for another pass (labels or references changed)."""
    return _RERUN.search(log) is not None


def run_pdflatex(tex_file: Path, *, timeout: float = 120.0, fmt: Path | None = None) -> tuple[int | None, str]:
    """One pdflatex pass over `tex_file` in its folder: (exit code, or None on timeout; the log).

    The process is registered while it runs, so that `stop_running` can end it: builds run
    several TeX jobs from threads, and Ctrl-C must not wait for them.
    """
    terminal = tex_file.with_suffix(".terminal")
    process = start_pdflatex(tex_file, fmt, terminal)
    return wait_pdflatex(process, tex_file, terminal, timeout)


def start_pdflatex(tex_file: Path, fmt: Path | None, terminal: Path) -> subprocess.Popen[bytes]:
    """Start pdflatex on `tex_file` in its folder, registered for `stop_running`."""
    command = [
        "pdflatex",
        "-interaction=nonstopmode",
        "-halt-on-error",
        "-file-line-error",
        "-no-shell-escape",
        "-no-parse-first-line",  # (a `%&format` line; reading it first would drain a PrimedRun's pipe)
        *([f"-fmt={fmt}"] if fmt is not None else []),
        tex_file.name,
    ]
    # TeX's terminal output goes to a file, not a pipe: no thread has to wake up (and take the
    # interpreter lock) for every chunk TeX writes while the main thread renders the next
    # document. It is read only when TeX wrote no log, which holds the same lines.
    with _running_lock, open(terminal, "wb") as output:
        if _stopped.is_set():
            raise CompileError(f"{tex_file}: not compiled, the build is stopping")
        process = subprocess.Popen(
            command, cwd=tex_file.parent, env=tex_environment(), stdin=subprocess.DEVNULL,
            stdout=output, stderr=subprocess.STDOUT,
        )
        _running.add(process)
    return process


def wait_pdflatex(
    process: subprocess.Popen[bytes], tex_file: Path, terminal: Path, timeout: float
) -> tuple[int | None, str]:
    """Wait for a pdflatex run (killed after `timeout` s, or on Ctrl-C): (exit code or None, its log)."""
    try:
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
            return None, ""
        except BaseException:  # Ctrl-C: TeX must not outlive the build
            process.kill()
            process.wait()
            raise
    finally:
        with _running_lock:
            _running.discard(process)
    log_path = tex_file.with_suffix(".log")
    log = (log_path if log_path.exists() else terminal).read_text(encoding="latin-1")
    return process.returncode, log


def end_pdflatex(process: subprocess.Popen[bytes]) -> None:
    """End a run that `start_pdflatex` started and nobody waits for."""
    if process.poll() is None:
        process.kill()
    process.wait()
    with _running_lock:
        _running.discard(process)


def stop_running() -> None:
    """End every pdflatex process this program started and that still runs (on Ctrl-C or error).

    Until `allow_running` is called again, no new pdflatex process starts.
    """
    with _running_lock:
        _stopped.set()
        processes = list(_running)
    for process in processes:
        if process.poll() is None:
            process.kill()


def allow_running() -> None:
    """Let pdflatex processes start again (once the threads of a stopped compile stage have ended)."""
    _stopped.clear()


def explain_failure(tex_file: Path, log: str) -> str:
    """Turn a failed pdflatex log into a short message: error lines, source line, question.

    When the failing line comes from a question's template, the message starts with the spec
    file and line of that template (found by `generator.spec.sourcemap`), since that is what the
    author edits; the `.tex` line follows in parentheses.
    """
    excerpt = _excerpt(tex_file, log)
    source_line = error_line(tex_file, log)
    text = "\n    ".join(line for line in excerpt if line.strip())
    tex_where = f"{tex_file.name}:{source_line}" if source_line else tex_file.name
    if source_line is None:
        return f"{tex_where}: LaTeX error:\n    {text}"
    origin, template = _origin(tex_file, source_line)
    if template is not None:
        return (f"{template.where}: {template.key}: LaTeX error{origin} ({tex_where}):\n    {text}\n"
                f"    template line: {template.text}")
    return f"{tex_where}: LaTeX error{origin}:\n    {text}"


def _excerpt(tex_file: Path, log: str) -> list[str]:
    lines = log.splitlines()
    own = _own_line(tex_file)
    start = next((i for i, line in enumerate(lines) if line.startswith("!") or own.match(line)), None)
    excerpt = lines[start : start + 8] if start is not None else lines[-12:]
    # TeX's closing statistics and fatal-error banner say nothing about the cause.
    stop = next(
        (i for i, line in enumerate(excerpt) if line.startswith(("Here is how much", "!  ==> Fatal error"))), None
    )
    return excerpt[:stop] if stop else excerpt


def _own_line(tex_file: Path) -> re.Pattern[str]:
    """`./name.tex:12: ...` lines about our document (not about a package file)."""
    return re.compile(r"^(?:\./)?" + re.escape(tex_file.name) + r":(\d+): ")


def error_line(tex_file: Path, log: str) -> int | None:
    """The line of `tex_file` that TeX's first error is about, if the log says."""
    own = _own_line(tex_file)
    for line in _excerpt(tex_file, log):
        m = own.match(line) or re.match(r"^l\.(\d+)", line)
        if m:
            return int(m.group(1))
    return None


def _origin(tex_file: Path, line_number: int) -> tuple[str, TemplateLine | None]:
    """Which question (and which of its templates) produced line `line_number` of the .tex."""
    try:
        lines = tex_file.read_text(encoding="utf-8").splitlines()
    except OSError:
        return "", None
    question = piece = path = None
    piece_start = 0
    for number, line in enumerate(lines[: line_number], start=1):
        m = _MARKER.match(line)
        if m:
            rest = m.group(2) or ""
            if question != m.group(1):
                piece = None
            question = m.group(1)
            if rest.startswith("from "):
                path = rest[5:]
            else:
                piece = rest
            piece_start = number
    if question is None:
        return " (in the document template, not in a question)", None
    detail = f", {piece}" if piece else ""
    source = f" ({path})" if path else ""
    template = None
    if path and piece:
        from generator.spec.sourcemap import (
            template_origin,  # reads specs again: only for messages
        )

        template = template_origin(path, question, piece, lines[piece_start:line_number])
    if template is not None:
        return f" in question '{question}'{detail}", template
    return f" in question '{question}'{detail}{source}", None

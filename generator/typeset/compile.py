"""Stage 6, compile: LaTeX -> PDF with pdflatex, safely and reproducibly.

pdflatex runs non-interactively with shell escape off (`-no-shell-escape`), so `\\write18` in a
question cannot run commands, and with `SOURCE_DATE_EPOCH` fixed (plus `\\pdftrailerid{}` and
`\\pdfinfoomitdate` in the preamble) so that the same `.tex` gives the same PDF bytes. A second
pass runs only when the log asks for one (labels or references changed), as latexmk would.
On failure the error shows the relevant log lines and, through the `%% generator: question ...`
markers the render stage writes, which question's text produced them.

Every run has limits: a time limit scaled to the document's size (`time_limit`) and a page
limit (`page_limit`), because TeX is a programming language and `\\def\\x{\\x}\\x` in a stem
never ends, while `\\loop\\null\\newpage\\repeat` fills the disk with pages. A breach kills
the run and raises `TeXLimitError`, naming the question whose text TeX was reading: the copy
compiled (never the output's `.tex`) announces each `%% generator: question` marker on TeX's
terminal (`\\message`, which TeX flushes at once), so the last announcement says where TeX was.

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
import time
from pathlib import Path
from typing import TYPE_CHECKING

from generator.errors import CompileError
from generator.typeset.qr import write_qr_codes

if TYPE_CHECKING:
    from generator.spec.sourcemap import TemplateLine

__all__ = [
    "INSTALL_COMMAND",
    "INSTALL_HINT",
    "SOURCE_DATE_EPOCH",
    "TeXLimitError",
    "allow_running",
    "announced",
    "compile_pdf",
    "end_pdflatex",
    "error_line",
    "explain_failure",
    "format_file",
    "needs_rerun",
    "page_limit",
    "run_pdflatex",
    "start_pdflatex",
    "stop_running",
    "tex_available",
    "tex_environment",
    "time_limit",
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
_MARKER = re.compile(r"^(?:\\message\{[^{}]*\})?%% generator: question (\S+)(?: (.*))?$")
# What `announced` lets TeX print: ids, piece names and paths of these characters only (a path
# with TeX's special characters is left out of the announcement, never quoted into TeX).
_PLAIN = re.compile(r"[\w./ -]+")
_ANNOUNCEMENT = re.compile(r"\[generator: question (\S+) ([^\]]*)\]")

# Limits of one pdflatex run (seconds, pages); GENERATOR_TEX_SECONDS replaces the base time
# (tests make a hanging document fail fast with it).
TIME_BASE = 30.0
CHARACTERS_PER_SECOND = 20_000  # about 25 times slower than pdflatex typesets the bank's documents
PAGE_BASE = 100
CHARACTERS_PER_PAGE = 100  # the bank's copies have about 2,000 source characters per page


def time_limit(characters: int) -> float:
    """Seconds a pdflatex run on a document of `characters` may take."""
    try:
        base = float(os.environ.get("GENERATOR_TEX_SECONDS", TIME_BASE))
    except ValueError:
        base = TIME_BASE
    return base + characters / CHARACTERS_PER_SECOND


def page_limit(characters: int) -> int:
    """Pages a pdflatex run on a document of `characters` may make."""
    return PAGE_BASE + characters // CHARACTERS_PER_PAGE


class TeXLimitError(CompileError):
    """A pdflatex run went past its time or page limit and was ended."""

    def __init__(self, tex_file: Path, what: str, origin: tuple[str, str] | None, copy: int | None):
        self.what, self.origin, self.copy = what, origin, copy
        super().__init__(located(origin, f"TeX {what}", tex_file.name))


def located(origin: tuple[str, str] | None, what: str, document: str) -> str:
    """`spec:line: key: what (question 'q', piece; document)` for an origin (where, which
    question), `document: what` without one."""
    if origin is None:
        return f"{document}: {what}"
    where, context = origin
    return f"{where}: {what} ({context}; {document})"


def announced(text: str) -> str:
    """`text` with each question marker announced on TeX's terminal (same lines, same pages)."""
    if "%% generator: question" not in text:
        return text
    lines = text.split("\n")
    for n, line in enumerate(lines):
        if line.startswith("%% generator: question ") and _PLAIN.fullmatch(line[len("%% generator: question "):]):
            lines[n] = "\\message{[" + line[len("%% "):] + "]}" + line
    return "\n".join(lines)


def _breach_origin(terminal: str) -> tuple[tuple[str, str] | None, int | None]:
    """From TeX's terminal output: where TeX was (`spec:line: key`, `question 'q', piece`), and
    the batch part it was in (`generator: copy N`)."""
    copy = None
    for m in re.finditer(r"\[generator: copy (\d+)\]", terminal):
        copy = int(m.group(1))
    start = terminal.rfind("[generator: copy ")
    paths: dict[str, str] = {}
    last: tuple[str, str] | None = None
    for m in _ANNOUNCEMENT.finditer(terminal, max(start, 0)):
        question, rest = m.group(1), m.group(2).strip()
        if rest.startswith("from "):
            paths[question] = rest[5:]
            last = (question, "")
        else:
            last = (question, rest)
    if last is None:
        return None, copy
    question, piece = last
    path = paths.get(question)
    where = None
    if path and piece:
        from generator.spec.sourcemap import piece_location  # reads the spec again: only for messages

        where = piece_location(path, question, piece)
    context = f"question '{question}'" + (f", {piece}" if piece else "")
    if where is not None:
        return (f"{where}: {_key(piece)}", context), copy
    return (path or "question", context), copy


def _key(piece: str) -> str:
    return "parts" if piece.startswith("part ") else piece
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


def compile_pdf(
    tex_file: Path, *, timeout: float | None = None, fmt: Path | None = None, document: str | None = None
) -> Path:
    """Compile `tex_file` in its own folder (with format file `fmt`, else TeX's own); return the PDF path.

    `timeout` (seconds) defaults to `time_limit` of the file's size; the pages to `page_limit`'s.
    `document`: the worksheet or exam file the text was made from (an error in one of its fields,
    such as `instructions`, is reported at that field's line).

    Raises:
        CompileError: TeX reported an error (with log excerpt and the question it came from).
        TeXLimitError: TeX went past its time or page limit (naming the question it was in).
    """
    tex_file = Path(tex_file)
    text = tex_file.read_text(encoding="utf-8")
    if timeout is None:
        timeout = time_limit(len(text))
    pages = page_limit(len(text))
    for _ in range(MAX_PASSES):
        returncode, log = run_pdflatex(tex_file, timeout=timeout, fmt=fmt, max_pages=pages)
        if returncode != 0:
            raise CompileError(explain_failure(tex_file, log, document), tex_line=error_line(tex_file, log))
        if not (write_qr_codes(tex_file) | needs_rerun(log)):
            break
    return tex_file.with_suffix(".pdf")


def needs_rerun(log: str) -> bool:
    """Whether a pdflatex log asks for another pass (labels or references changed)."""
    return _RERUN.search(log) is not None


def run_pdflatex(tex_file: Path, *, timeout: float = 120.0, fmt: Path | None = None,
                 max_pages: int | None = None) -> tuple[int | None, str]:
    """One pdflatex pass over `tex_file` in its folder: (exit code; the log).

    The process is registered while it runs, so that `stop_running` can end it: builds run
    several TeX jobs from threads, and Ctrl-C must not wait for them.

    Raises:
        TeXLimitError: the run took more than `timeout` seconds or made more than `max_pages` pages.
    """
    terminal = tex_file.with_suffix(".terminal")
    process = start_pdflatex(tex_file, fmt, terminal)
    return wait_pdflatex(process, tex_file, terminal, timeout, max_pages)


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


def wait_pdflatex(process: subprocess.Popen[bytes], tex_file: Path, terminal: Path, timeout: float,
                  max_pages: int | None = None, stated: float | None = None) -> tuple[int | None, str]:
    """Wait for a pdflatex run (killed on Ctrl-C): (exit code, its log). `stated`: the time
    limit to name in the message, when part of it was spent before the wait.

    Raises:
        TeXLimitError: killed after `timeout` s, or once TeX has made more than `max_pages` pages
            (TeX prints `[N` on its terminal for every page it ships out, and flushes it).
    """
    try:
        try:
            breach = _watch(process, terminal, timeout, max_pages, timeout if stated is None else stated)
            if breach is not None:
                process.kill()
                process.wait()
                seen = terminal.read_text(encoding="latin-1") if terminal.exists() else ""
                origin, copy = _breach_origin(seen)
                raise TeXLimitError(tex_file, breach, origin, copy)
        except TeXLimitError:
            raise
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


_PAGE = re.compile(rb"\[\d+")


def _watch(
    process: subprocess.Popen[bytes], terminal: Path, timeout: float, max_pages: int | None, stated: float
) -> str | None:
    """Wait for `process` to end; what it went past (time or pages) if it has to be stopped.

    Pages are counted in what TeX writes to its terminal since the last look (a `[N` split
    between two looks may be missed: the limit is for runaway documents, far above real ones)."""
    deadline = time.monotonic() + timeout
    pages, offset, step = 0, 0, 0.05
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return f"did not finish within {stated:.0f} s (an endless loop?)"
        try:
            process.wait(timeout=min(step, remaining))
            return None
        except subprocess.TimeoutExpired:
            step = min(step * 2, 0.5)  # (most runs end within the first short steps)
        if max_pages is None:
            continue
        try:
            with open(terminal, "rb") as f:
                f.seek(offset)
                chunk = f.read()
        except OSError:
            continue
        offset += len(chunk)
        pages += len(_PAGE.findall(chunk))
        if pages > max_pages:
            return f"made more than {max_pages} pages"


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


def explain_failure(tex_file: Path, log: str, document: str | None = None) -> str:
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
    if template is None and document:
        from generator.spec.sourcemap import field_origin  # reads the spec again: only for messages

        field = field_origin(document, _tex_line(tex_file, source_line))
        if field is not None:
            return (f"{field.where}: {field.key}: LaTeX error in {field.key} ({tex_where}):\n    {text}\n"
                    f"    line: {field.text}")
    if template is not None:
        return (f"{template.where}: {template.key}: LaTeX error{origin} ({tex_where}):\n    {text}\n"
                f"    template line: {template.text}")
    return f"{tex_where}: LaTeX error{origin}:\n    {text}"


def _tex_line(tex_file: Path, number: int) -> str:
    try:
        lines = tex_file.read_text(encoding="utf-8").splitlines()
    except OSError:
        return ""
    return lines[number - 1] if 0 < number <= len(lines) else ""


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

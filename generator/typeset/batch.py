"""Stage 6, compile a class set: all copies of one document kind in one TeX run, in parallel.

Why: a pdflatex run spends about 0.1 s starting (format, packages, fonts) and a few ms per page;
compiling each copy on its own spends most of the time starting. So every copy of one
(document, kind) - the 50 sheets of a worksheet, say - becomes one part of a *batch* document,
compiled once, and the batch PDF is cut into the per-copy PDFs (`generator.typeset.split`, pypdf as a
fallback). The batch PDF, with a bookmark per copy and (two-sided) a blank page after each copy
with an odd number of pages, is the combined print file as it stands. Independent batches run in
parallel (`workers`), each in a thread that waits for its pdflatex process, largest first.

Why not cut a big job into several batches, so that the cores finish together: each extra batch
pays the start-up again (about 0.15 s with our preamble, against 0.01-0.03 s per copy), and
largest-first already keeps both cores of a two-core machine busy, since every document has
three kinds. Measured at 50 variants of the two worksheets (sheet and key, about 3.3 s of
pdflatex), chunks of 400k-800k source characters added 0.1-0.6 s of pdflatex time and made the
two-core schedule no shorter: 1.78-1.97 s against 1.72-1.88 s (one worksheet, three kinds, 150
variants: 5.8 s as one batch per kind, 6.0-6.5 s in chunks of 1.5M-2M characters). A format with
the preamble preloaded saves about 0.045 s per batch and takes 0.3 s to make: made for each
build it did not pay; made once per machine and kept (`generator.typeset.formats.UnpackedFormat`, the
same PDF bytes) it does, for every batch and primed run. What also pays is starting pdflatex
on the shared preamble and \\begin{document} before the batches exist, and handing each batch
the rest of its document through a named pipe (`generator.typeset.formats.Primer`; the same PDF
bytes): the build starts two such runs per TeX worker, one at a time, while its
main process imports its modules and loads the bank, on the core that would otherwise idle.
At 50 variants the TeX stage is about 0.1 s shorter (six interleaved runs each: 3.20 s median
against 3.31 s), for 40 MB more memory while the runs wait. Tried before and not kept: runs
started after the bank was loaded took the cores from the processes solving the questions, and
runs started beside the imports with TeX's compressed format (0.15 s each, and the format
unpacked in a thread that waited for the interpreter lock) slowed the imports by as much as
they saved. Batches compress their streams at zlib's default level 6 instead of pdfTeX's 9 (3%
fewer instructions on a key, 1% on a sheet, PDFs 1.6% larger). Not kept: lower levels
(`\\pdfcompresslevel=1`: 4% less pdflatex time on the largest batch, 1.45 s against 1.51 s, for
PDFs 17% larger; level 0: 12%, for PDFs 4 times larger, which the split then copies),
fancyhdr's headers and footers built without the boxes of their empty slots (the same PDF
bytes, 2.5% fewer instructions on a sheet: not worth overriding fancyhdr's internals for) or a
cheaper `\\dfrac` (no change): the same batch written as DVI takes nearly as long, so the
time is in typesetting the pages. What did pay is making each matrix's
column template once per batch (`_MATRICES`): a fifth of a dense key's pdflatex instructions
(counted with valgrind, as wall times on this machine vary by 10-25% from run to run). It
replaced setting MaxMatrixCols per copy to its widest matrix, which now saves under 1% more.

How a batch is made from the copies' `.tex` files (which stay complete documents): the preamble
up to the line `%% generator: end of shared preamble` (templates/preamble.tex.j2) is shared and
must be the same for every copy in a batch (copies whose preambles differ, e.g. the ones that
load the CJK package for a Chinese name, go into a batch of their own). What follows it in a copy
(the headers naming the student or variant) and the copy's body become one part:

    \\generator@start{3}{<bookmark>}  \\lhead{...}\\rhead{...}  <body>  \\generator@end{3}

Each part starts on a new page inside a TeX group (settings made by one copy do not leak into the
next), with every LaTeX counter (page, footnote, ...) reset to its value at \\begin{document}, so
that a copy comes out as it would alone. The first and last page of every part are written to a
`.pages` file (`\\ReadonlyShipoutCounter`), which is how the batch PDF is split.

A copy that counts its own pages ("page 2 of 5": templates/preamble.tex.j2) writes its total to
the `.aux` when its part ends (`\\generator@copydone`, called by `\\generator@end`, as a copy
compiled alone calls it at `\\end{document}`), keyed by the copy; the first pass asks for a
second, and so do the QR codes on its pages (`generator.typeset.qr`).

Errors: when a batch fails, the copy whose part holds the failing line is compiled alone, so the
error message is exactly the one a single copy gives (question, spec line, document). A batch
that fails although each copy compiles alone, or whose parts did not all come out (a copy that
says `\\end{document}` early), falls back to compiling its copies one by one: batching changes the
time a build takes, never whether or what it builds.
"""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import math
import queue
import re
import shutil
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Self

from generator.errors import CompileError
from generator.render.templating import PrintSettings, project_preamble
from generator.typeset.combine import combine_pdfs
from generator.typeset.compile import (
    MAX_PASSES,
    TeXLimitError,
    allow_running,
    announced,
    compile_pdf,
    error_line,
    format_file,
    located,
    needs_rerun,
    page_limit,
    run_pdflatex,
    stop_running,
    time_limit,
)
from generator.typeset.formats import Primer, UnpackedFormat
from generator.typeset.qr import write_qr_codes
from generator.typeset.split import SplitError, join_pdfs, split_pdf

__all__ = ["PREAMBLE_END", "Copy", "Job", "JobResult", "TexStart", "Typesetter", "batch_head", "batch_prefix",
           "batch_text", "compile_jobs", "file_digest", "job_key", "split_copy", "tex_ready"]

PREAMBLE_END = "%% generator: end of shared preamble"
# Part of every job's cache key: a change to how batches are made must not reuse old PDFs.
BATCH_FORMAT = "batch-5"
_BEGIN = "\\begin{document}\n"
_END = "\\end{document}"

# amsmath makes every matrix through array.sty's \array{*N c}, and array.sty builds that column
# template anew each time (\@mkpream expanding `*N c` token by token): about a fifth of the
# pdflatex instructions of a dense key. The template depends on N and on the column types
# defined (\NC@list: a copy may \newcolumntype even `c`), so a batch makes it once per both and
# keeps it; the rest is array.sty's \@array as it stands (a bmatrix is [c]-aligned), and the PDFs
# come out byte for byte the same. Only where amsmath and array.sty define these macros
# exactly as below (TeX Live 2022: amsmath 2.17n, array 2.5g): with any other definition, say a
# newer release or a preamble without the array package, matrices are made as they were.
# array.sty's \@array in three pieces, so that the copy the guard compares with and the
# replacement below are the same text where they are the same macro.
_ARRAY_STRUT = r"""  \@tempdima \ht \strutbox
  \advance \@tempdima by\extrarowheight
  \setbox \@arstrutbox \hbox{\vrule
             \@height \arraystretch \@tempdima
             \@depth \arraystretch \dp \strutbox
             \@width \z@}%
"""
_ARRAY_TEMPLATE = r"""  \begingroup
  \@mkpream{SPEC}%
  \xdef\@preamble{\noexpand \ialign \@halignto
                  \bgroup \@arstrut \@preamble
                          \tabskip \z@ \cr}%
  \endgroup
"""
_ARRAY_BODY = r"""  \bgroup
  \let \@sharp ##\let \protect \relax
  \lineskip \z@
  \baselineskip \z@
  \m@th
  \let\\\@arraycr \let\tabularnewline\\\let\par\@empty \@preamble}
"""
_KEPT = r"\csname generator@matrix@\the\c@MaxMatrixCols\detokenize\expandafter{\the\NC@list}\endcsname"
_MATRICES = (r"""\def\generator@envmatrix{\hskip -\arraycolsep
  \let\@ifnextchar\new@ifnextchar
  \array{*\c@MaxMatrixCols c}}
\def\generator@array{\col@sep\arraycolsep
  \def\d@llarbegin{$}\let\d@llarend\d@llarbegin\def\@halignto{}%
  \@tabarray}
\def\generator@atarray[#1]#2{%
""" + _ARRAY_STRUT + _ARRAY_TEMPLATE.replace("SPEC", "#2") + r"""  \@arrayleft
  \if #1t\vtop \else \if#1b\vbox \else \vcenter \fi \fi
""" + _ARRAY_BODY + r"""\ifx\env@matrix\generator@envmatrix\ifx\array\generator@array\ifx\@array\generator@atarray
\def\env@matrix{\hskip -\arraycolsep
  \let\@ifnextchar\new@ifnextchar
  \col@sep\arraycolsep
  \def\d@llarbegin{$}\let\d@llarend\d@llarbegin\def\@halignto{}%
""" + _ARRAY_STRUT + r"""  \expandafter\ifx""" + _KEPT + r"""\relax
""" + _ARRAY_TEMPLATE.replace("SPEC", r"*\c@MaxMatrixCols c")
+ r"""  \expandafter\global\expandafter\let""" + _KEPT + r"""\@preamble
  \else
  \expandafter\global\expandafter\let\expandafter\@preamble""" + _KEPT + r"""
  \fi
  \@arrayleft
  \vcenter
""" + _ARRAY_BODY + r"""\fi\fi\fi
""")
# The macros every batch defines. \cl@@ckpt lists every LaTeX counter (it is what \include uses
# to save and restore them); their values at \begin{document} are kept and put back per part.
# fancyhdr's check that the header fits \headheight only warns (in the log nobody reads of a
# batch; a copy's own .tex still warns) and was 1.5% of a sheet's pdflatex instructions: off in
# batches, the same pages either way.
_QUIET_FANCYHDR = r"\ifdefined\f@nch@checkfalse\f@nch@checkfalse\fi" + "\n"
_MACROS = r"""\makeatletter
""" + _QUIET_FANCYHDR + r"""\newwrite\generator@pages
\immediate\openout\generator@pages=\jobname.pages\relax
\AtBeginDocument{\begingroup
  \def\@elt#1{\expandafter\xdef\csname generator@c@#1\endcsname{\the\csname c@#1\endcsname}}%
  \cl@@ckpt\endgroup}
\newcommand\generator@start[2]{\clearpage
  BLANK%
  \begingroup\def\@elt##1{\global\csname c@##1\endcsname=\csname generator@c@##1\endcsname\relax}%
  \cl@@ckpt\endgroup
  \pdfoutline goto page \numexpr\ReadonlyShipoutCounter+1\relax{/Fit} count 0 {#2}%
  \immediate\write\generator@pages{start #1 \the\ReadonlyShipoutCounter}%
  \begingroup}
\newcommand\generator@end[1]{\clearpage\ifdefined\generator@copydone\generator@copydone\fi\endgroup
  \immediate\write\generator@pages{end #1 \the\ReadonlyShipoutCounter}}
""" + _MATRICES + "\\makeatother\n"
# Two-sided printing: a copy that ended on an odd page gets a blank back page in the print file.
_BLANK = r"\ifodd\ReadonlyShipoutCounter\null\thispagestyle{empty}\clearpage\fi"


def file_digest(path: Path) -> str:
    """The SHA-256 of a file, as the index records it."""
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


@dataclass(frozen=True, slots=True)
class Copy:
    """One copy's document: its `.tex` path in the output (the PDF goes beside it) and text."""

    tex: str
    text: str
    bookmark: str


@dataclass(frozen=True, slots=True)
class Job:
    """Every copy of one document kind, and the combined print file that holds them in order."""

    combined: str
    copies: tuple[Copy, ...]
    spec: str = ""  # the worksheet or exam file (for messages about its fields; not in the cache key)

    @property
    def outputs(self) -> list[str]:
        """The PDFs this job writes (output-relative): one per copy, then the combined file."""
        return [str(Path(c.tex).with_suffix(".pdf")) for c in self.copies] + [self.combined]


@dataclass(frozen=True, slots=True)
class JobResult:
    """What a job wrote, under which cache key, and whether TeX ran for it.

    `digests` holds the SHA-256 of each file it wrote when TeX ran (taken in the worker thread
    that wrote them, while TeX still works on other jobs: the build's index needs them)."""

    key: str
    files: tuple[str, ...]
    compiled: bool
    notes: tuple[str, ...] = ()
    digests: tuple[tuple[str, str], ...] = ()


@dataclass(slots=True)
class _Batch:
    """Copies of one job that share a preamble, compiled together."""

    job: Job
    job_index: int  # position of the job in the list compiled
    index: int  # position among the job's batches (file names)
    members: list[int]  # indices into job.copies
    preamble: str | None  # None: cannot be batched (no marker); compile alone
    pdf: Path | None = None
    ranges: list[tuple[int, int]] = field(default_factory=list)
    alone: dict[int, Path] = field(default_factory=dict)  # copies compiled one by one
    note: str | None = None


def job_key(job: Job, *, two_sided: bool, salt: str) -> str:
    """The content hash that names a job's PDFs in the cache: its copies' text, and how it is made."""
    digest = hashlib.sha256()
    for piece in (BATCH_FORMAT, salt, "two-sided" if two_sided else "one-sided", job.combined):
        digest.update(piece.encode("utf-8") + b"\0")
    for copy in job.copies:
        for piece in (copy.tex, copy.bookmark, copy.text):
            digest.update(piece.encode("utf-8") + b"\0")
    return digest.hexdigest()


def compile_jobs(
    folder: Path,
    jobs: Sequence[Job],
    *,
    two_sided: bool = True,
    workers: int = 1,
    salt: str = "",
    reuse: Callable[[str, list[str]], bool] | None = None,
    progress: Callable[[int], None] | None = None,
) -> list[JobResult]:
    """Compile every job's copies into `folder` (beside their `.tex`), plus each combined file.

    Args:
        folder: the output folder being written; TeX works in its `.tex/` subfolder, removed after.
        jobs: what to compile; each job is one (document, kind).
        two_sided: blank pages in the combined files so that every copy starts on a front page.
        workers: TeX runs at the same time.
        salt: mixed into every job's cache key (TeX installation, tool version).
        reuse: called with a job's key and outputs; returns True when it has put those files in
            place from the cache, so that the job needs no TeX.
        progress: called with the number of copies each time a job's copies are done.

    Raises:
        CompileError: a copy does not compile; the message names its document and question.
    """
    with Typesetter(folder, two_sided=two_sided, workers=workers, salt=salt, reuse=reuse) as typesetter:
        typesetter.submit(jobs)
        return typesetter.finish(progress)


class Typesetter:
    """`compile_jobs` in steps: jobs are handed over as they are ready and compiled in the
    background, so that a build writes its manifest, key table and cache while TeX works.

    `submit` queues jobs and returns at once; `workers` threads take the batches of the largest
    waiting job first (so that the last batch to start is a small one and the cores finish
    together); the thread that compiled a batch cuts its copies' PDFs, and the one that completes
    a job's last batch writes its print file. `finish` waits for every job and returns the
    results in the order the jobs were submitted; a failed batch is reported there.
    Use it as a context manager: leaving the `with` block early (an error, Ctrl-C) stops every
    TeX run still going.

    Why not hand jobs over while questions are still being solved (a document's TeX starting once
    its own questions are done): measured at 50 variants and with a 200-student roster of the two
    worksheets, it made builds no faster (4.8-5.0 s against 4.7 s; 16-17 s against 15 s). Both
    stages already keep the two cores busy, so running them at once only shares the cores, and
    the largest TeX job then starts later. Measured again later (the questions of the document
    with the most TeX solved first, each document handed over once its questions were in): 50
    variants 3.5-3.7 s against 3.7-3.75 s, but the roster 10.7-11.0 s against 10.4 s. A third
    time once TeX had become a fifth cheaper (the documents ordered by estimated work before any
    question is solved, results taken as they come): 50 variants, eight runs each, interleaved,
    3.68 s median against 3.60 s; the largest key took 1.73 s of TeX beside the solving
    processes against 1.13 s after them.
    """

    def __init__(self, folder: Path, *, two_sided: bool = True, workers: int = 1, salt: str = "",
                 reuse: Callable[[str, list[str]], bool] | None = None, fmt: UnpackedFormat | None = None,
                 primer: Primer | None = None):
        self._folder, self._scratch = folder, folder / ".tex"
        self._format = fmt  # pdflatex's format, unpacked (generator.typeset.formats.UnpackedFormat), if given
        self._primer = primer  # pdflatex runs started on the batches' head (generator.typeset.formats.Primer), if given
        self._two_sided, self._workers, self._salt, self._reuse = two_sided, max(1, workers), salt, reuse
        self._jobs: list[Job] = []
        self._results: dict[int, JobResult] = {}
        self._batches: dict[int, list[_Batch]] = {}  # job index -> its batches
        self._remaining: dict[int, int] = {}  # job index -> batches not yet compiled
        self._lock = threading.Lock()
        # Plain threads and queues: each worker thread waits for its pdflatex process, and on Ctrl-C
        # (which lands in the main thread) stop_running() ends them all before the threads are joined.
        self._work: queue.PriorityQueue[tuple[float, int, _Batch | None]] = queue.PriorityQueue()
        self._finished: queue.SimpleQueue[tuple[int, BaseException | None]] = queue.SimpleQueue()
        self._sequence = itertools.count()
        self._threads: list[threading.Thread] = []
        self._waiting = 0  # jobs handed to TeX and not yet reported

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        if self._threads:
            if exc[0] is not None:
                stop_running()
                if self._format is not None:  # (threads may wait for a format being made)
                    self._format.abandon()
            for _ in self._threads:  # ahead of any batch still queued: the build is over
                self._work.put((-math.inf, next(self._sequence), None))
            for thread in self._threads:
                # Ctrl-C came as it was being started: it takes its sentinel once it runs.
                with contextlib.suppress(RuntimeError):
                    thread.join()
            self._threads = []
        allow_running()  # every thread has ended: later compiles (preview, check) may start TeX
        shutil.rmtree(self._scratch, ignore_errors=True)

    def submit(self, jobs: Sequence[Job]) -> None:
        """Queue these jobs (or take them from the cache, through `reuse`); returns at once."""
        queued = 0
        for job in jobs:
            n = len(self._jobs)
            self._jobs.append(job)
            key = job_key(job, two_sided=self._two_sided, salt=self._salt)
            compiled = not (self._reuse is not None and self._reuse(key, job.outputs))
            self._results[n] = JobResult(key, tuple(job.outputs), compiled=compiled)  # notes added when done
            if not compiled:
                continue
            batches = _batches(job, n)
            with self._lock:
                self._batches[n], self._remaining[n] = batches, len(batches)
            self._waiting += 1
            # The largest job first, and all of its batches before the next job's: a job's print
            # file is made once its last batch is done, and that should happen while TeX still
            # runs, not at the end (a roster's few CJK names make a small second batch per job).
            size = sum(len(copy.text) for copy in job.copies)
            for batch in sorted(batches, key=lambda b: -sum(len(job.copies[i].text) for i in b.members)):
                self._work.put((-size, next(self._sequence), batch))
                queued += 1
        for _ in range(min(self._workers - len(self._threads), queued)):  # started after queueing: largest first
            thread = threading.Thread(target=self._run, daemon=True)
            self._threads.append(thread)  # first: Ctrl-C can land inside start(), after the thread began
            thread.start()

    def finish(self, progress: Callable[[int], None] | None = None) -> list[JobResult]:
        """Wait for every submitted job; their results in submission order.

        `progress` is called with the number of copies of each job as it is done (at once for
        the jobs already done, and those taken from the cache).

        Raises:
            CompileError: a copy does not compile; the message names its document and question.
        """
        for _ in self._threads:  # behind every batch: the threads end once the queue is empty
            self._work.put((math.inf, next(self._sequence), None))
        if progress is not None:
            for n, result in self._results.items():
                if not result.compiled:
                    progress(len(self._jobs[n].copies))
        while self._waiting:
            n, error = _next(self._finished)
            if error is not None:
                raise error  # a CompileError ends the build here
            self._waiting -= 1
            if progress is not None:
                progress(len(self._jobs[n].copies))
        return [self._results[n] for n in range(len(self._jobs))]

    def _run(self) -> None:
        """A worker thread: compile batches until told to stop; report each job done, or an error."""
        while (batch := self._work.get()[2]) is not None:
            n = batch.job_index
            try:
                _compile_batch(self._scratch, batch, self._two_sided, self._format, self._primer)
                _cut(self._folder, batch)  # its copies' PDFs, here, off the main thread
                with self._lock:
                    self._remaining[n] -= 1
                    last = self._remaining[n] == 0
                if last:  # every batch of the job is done: its print file
                    batches = self._batches[n]
                    _combine(self._folder, batch.job, batches, two_sided=self._two_sided)
                    digests = tuple((name, file_digest(self._folder / name)) for name in batch.job.outputs)
                    self._results[n] = replace(
                        self._results[n], notes=tuple(b.note for b in batches if b.note), digests=digests
                    )
                    self._finished.put((n, None))
            except BaseException as e:  # noqa: BLE001 (reported to the main thread, which decides)
                self._finished.put((n, e))


def _next(finished: queue.SimpleQueue[tuple[int, BaseException | None]]) -> tuple[int, BaseException | None]:
    """The next finished job. Waits in short steps: a signal that arrives just as a blocking
    wait begins would otherwise not interrupt it, and Ctrl-C would hang the build."""
    while True:
        try:
            return finished.get(timeout=0.1)
        except queue.Empty:
            continue


def _batches(job: Job, job_index: int) -> list[_Batch]:
    """Group a job's copies by their shared preamble, keeping copy order within each group."""
    groups: dict[str | None, list[int]] = {}
    alone = []
    for i, copy in enumerate(job.copies):
        preamble = split_copy(copy.text)
        if preamble is None:
            alone.append(i)
        else:
            groups.setdefault(preamble[0], []).append(i)
    batches = [_Batch(job, job_index, k, members, preamble) for k, (preamble, members) in enumerate(groups.items())]
    batches.extend(_Batch(job, job_index, len(batches) + k, [i], None) for k, i in enumerate(alone))
    return batches


def split_copy(text: str) -> tuple[str, str, str] | None:
    """(shared preamble, per-copy setup, body) of a copy's document, or None if it has no marker.

    The shared preamble ends with the marker line; the setup is what follows it up to
    \\begin{document}; the body is what lies between \\begin{document} and \\end{document}.
    """
    head, marker, rest = text.partition(PREAMBLE_END + "\n")
    if not marker:
        return None
    setup, begin, body = rest.partition(_BEGIN)
    end = body.rfind(_END)
    if not begin or end < 0:
        return None
    return head + marker, setup, body[:end]


def _pdf_string(title: str) -> str:
    """A bookmark title as TeX tokens that pdfTeX writes as a PDF text string, whatever it holds.

    Every byte becomes an octal escape (`\\376`): inside \\detokenize these are control symbols
    followed by digits, so no character of a name (braces, %, #, backslashes) can reach TeX.
    """
    data = title.encode("ascii") if title.isascii() else b"\xfe\xff" + title.encode("utf-16-be")
    return "\\detokenize{" + "".join(f"\\{byte:03o}" for byte in data) + "}"


def batch_prefix(preamble: str) -> str:
    """What every batch document with this shared preamble starts with, up to the end of the
    preamble: what a format can hold preloaded (generator.typeset.formats.UnpackedFormat)."""
    # Plain objects and a classic xref table: what generator.typeset.split copies from, byte for byte.
    # Streams at zlib's default level, not pdfTeX's 9: 3% fewer pdflatex instructions on a key,
    # 1% on a sheet, for PDFs 1.6% larger (level 9 searches harder for matches it rarely finds).
    return "\\pdfobjcompresslevel=0\n\\pdfcompresslevel=6\n" + preamble


def batch_head(preamble: str, *, two_sided: bool) -> str:
    """What every batch document with this shared preamble starts with, up to \\begin{document}."""
    return "".join([batch_prefix(preamble), _MACROS.replace("BLANK", _BLANK if two_sided else ""), _BEGIN])


@dataclass(frozen=True, slots=True)
class TexStart:
    """What `tex_ready` makes ready for a build's `Typesetter` before there are documents."""

    fmt: UnpackedFormat  # pdflatex's format unpacked, and one with the batches' preamble preloaded
    primer: Primer  # pdflatex runs started on the batches' head


@contextmanager
def tex_ready(enabled: bool, templates: Path | None, *, two_sided: bool, runs: int,
              printing: PrintSettings | None = None) -> Iterator[TexStart]:
    """TeX made ready in the background while the build imports the stages and loads the bank.

    From entering on, TeX's formats are made ready (unpacked, the batches' preamble preloaded:
    kept from an earlier build, or made) and up to `runs` pdflatex runs are started on the
    batches' head, on the core the main process leaves idle (generator.typeset.formats). When
    not `enabled` (no PDFs) nothing is started. Leaving ends the runs nobody took.
    """
    prefix, head = _batch_start(templates, two_sided, printing) if enabled else (None, None)
    with UnpackedFormat(format_file() if enabled else None, preamble=prefix) as fmt, \
            Primer(head, fmt, limit=runs) as primer:
        try:
            yield TexStart(fmt, primer)
        except BaseException:
            fmt.abandon()  # a build that stops (Ctrl-C, an error) does not wait for a format being made
            raise


def _batch_start(
    templates: Path | None, two_sided: bool, printing: PrintSettings | None
) -> tuple[str | None, str | None]:
    """How the batches of documents without CJK names will start, if it can be told already:
    up to the end of their preamble (what a format can hold preloaded), and up to \\begin{document}."""
    preamble = project_preamble(templates, printing)
    if preamble is None:
        return None, None
    return batch_prefix(preamble), batch_head(preamble, two_sided=two_sided)


def batch_text(
    job: Job, members: Sequence[int], preamble: str, *, two_sided: bool
) -> tuple[str, list[tuple[int, int]]]:
    """The batch document for some copies of a job, and each part's first and last line in it."""
    lines = [batch_head(preamble, two_sided=two_sided)]
    spans = []
    line = lines[0].count("\n") + 1
    for part, i in enumerate(members, start=1):
        copy = job.copies[i]
        parts = split_copy(copy.text)
        assert parts is not None
        _, setup, body = parts
        # (\\message: which copy TeX is in, should a limit stop it; see generator.typeset.compile)
        text = (f"\\message{{[generator: copy {part}]}}"
                f"\\makeatletter\\generator@start{{{part}}}{{{_pdf_string(copy.bookmark)}}}\\makeatother\n"
                f"{setup}{announced(body)}")
        if not text.endswith("\n"):
            text += "\n"
        text += f"\\makeatletter\\generator@end{{{part}}}\\makeatother\n"
        count = text.count("\n")
        spans.append((line, line + count - 1))
        line += count
        lines.append(text)
    if two_sided:  # the last copy too ends on a back page
        lines.append(f"\\makeatletter{_BLANK}\\makeatother\n")
    lines.append(_END + "\n")
    return "".join(lines), spans


def _compile_batch(scratch: Path, batch: _Batch, two_sided: bool, formats: UnpackedFormat | None = None,
                   primer: Primer | None = None) -> None:
    """Compile one batch (in a worker thread; `formats`: the format files to load, else TeX's
    own; `primer`: pdflatex runs already started on the batch's head, if any); fill in its PDF
    and page ranges, or its copies alone."""
    job = batch.job
    fmt = formats.path() if formats is not None else None  # (for copies compiled alone)
    if batch.preamble is None:
        batch.alone = {i: _compile_alone(scratch, job.copies[i], fmt, job.spec) for i in batch.members}
        return
    text, spans = batch_text(job, batch.members, batch.preamble, two_sided=two_sided)
    # With the preamble preloaded (generator.typeset.formats.UnpackedFormat): its lines blank, the same lines.
    read, loaded = formats.reading(text) if formats is not None else (text, None)
    timeout, pages = time_limit(len(text)), page_limit(len(text))
    run = primer.take(read) if primer is not None else None
    try:
        if run is not None:  # pdflatex has read the preamble already (generator.typeset.formats.Primer)
            source = run.source
            returncode, log = run.finish(read, timeout, pages)
        else:
            work = scratch / Path(job.combined).parent / f"{Path(job.combined).stem}-{batch.index}"
            work.mkdir(parents=True, exist_ok=True)
            source = work / "batch.tex"
            source.write_text(read, encoding="utf-8")
            returncode, log = run_pdflatex(source, timeout=timeout, fmt=loaded, max_pages=pages)
        for _ in range(MAX_PASSES - 1):
            # (write_qr_codes first: it must see, and clear, what this pass asked for)
            if returncode != 0 or not (write_qr_codes(source) | needs_rerun(log)):
                break
            returncode, log = run_pdflatex(source, timeout=timeout, fmt=loaded, max_pages=pages)
    except TeXLimitError as e:
        culprit = job.copies[batch.members[min(max(e.copy or 1, 1), len(batch.members)) - 1]]
        raise CompileError(located(e.origin, f"TeX {e.what}", culprit.tex)) from None
    started, ranges = _read_pages(source.with_suffix(".pages"), len(batch.members))
    if returncode == 0 and ranges is not None:
        batch.pdf, batch.ranges = source.with_suffix(".pdf"), ranges
        return
    if returncode != 0:
        # Compile alone the copy whose part holds the error: its message is the one users know.
        line = error_line(source, log)
        part = next((k for k, (first, last) in enumerate(spans) if first <= line <= last), None) if line else None
        if part is None:
            part = max(started, 1) - 1
        _compile_alone(scratch, job.copies[batch.members[part]], fmt, job.spec)
        reason = f"the batch failed at line {line} ({_first_error(log)})"
    else:
        reason = "not every copy came out of the batch"
    # Each copy compiles alone, yet the batch did not: compile them one by one.
    batch.alone = {i: _compile_alone(scratch, job.copies[i], fmt, job.spec) for i in batch.members}
    batch.note = f"{job.combined}: compiled the {len(batch.members)} copies one by one ({reason})"


def _first_error(log: str) -> str:
    match = re.search(r"^(?:\S*:\d+: |! )(.*)$", log, re.MULTILINE)
    return match.group(1).strip() if match else "no error message"


def _read_pages(path: Path, parts: int) -> tuple[int, list[tuple[int, int]] | None]:
    """(parts started, [(first page, end page) per part] if every part came out whole)."""
    try:
        records = path.read_text(encoding="latin-1").split()
    except OSError:
        return 0, None
    starts: dict[int, int] = {}
    ends: dict[int, int] = {}
    # Not strict: a TeX run stopped part-way may leave its last record cut short, which is dropped.
    for kind, number, page in zip(records[0::3], records[1::3], records[2::3], strict=False):
        target = starts if kind == "start" else ends
        target[int(number)] = int(page)
    started = max(starts, default=0)
    expected = set(range(1, parts + 1))
    if set(starts) != expected or set(ends) != expected:
        return started, None
    ranges = [(starts[k], ends[k]) for k in range(1, parts + 1)]
    if any(end <= start for start, end in ranges):
        return started, None
    return started, ranges


def _compile_alone(scratch: Path, copy: Copy, fmt: Path | None = None, spec: str = "") -> Path:
    """Compile one copy as the standalone document it is; errors name it as in the output (and
    the line of `spec`, the worksheet or exam file, when the error is in one of its fields)."""
    source = scratch / copy.tex
    source.parent.mkdir(parents=True, exist_ok=True)
    source.write_text(announced(copy.text), encoding="utf-8")
    try:
        return compile_pdf(source, fmt=fmt, document=spec or None)
    except CompileError as e:
        # Name the document as it will appear in the output, not the vanishing scratch path.
        raise CompileError(str(e).replace(f"{scratch}/", ""), tex_line=e.tex_line) from e


def _cut(folder: Path, batch: _Batch) -> None:
    """Write the per-copy PDFs of a compiled batch, as soon as it is done: the last batch to
    finish then has only its own copies to cut (a roster's small batch of CJK names, say)."""
    outputs = batch.job.outputs
    for i in batch.members:
        (folder / outputs[i]).parent.mkdir(parents=True, exist_ok=True)
    if batch.pdf is not None:
        _split(batch.pdf, batch.ranges, [folder / outputs[i] for i in batch.members])
    for i, pdf in batch.alone.items():
        shutil.copyfile(pdf, folder / outputs[i])


def _combine(folder: Path, job: Job, batches: list[_Batch], *, two_sided: bool) -> None:
    """Write a job's combined print file once all its batches are compiled and cut."""
    outputs = job.outputs
    (folder / job.combined).parent.mkdir(parents=True, exist_ok=True)
    whole = len(batches) == 1 and batches[0].pdf is not None
    combined = folder / job.combined
    if whole:
        # The batch is the print file: copies in order, bookmarks and blank pages made by TeX.
        shutil.copyfile(batches[0].pdf, combined)  # type: ignore[arg-type]
        return
    if all(batch.pdf is not None for batch in batches):
        # Copies from several batches (different preambles): their pages interleaved in copy order.
        where = {i: (batch.pdf, *batch.ranges[k]) for batch in batches for k, i in enumerate(batch.members)}
        try:
            join_pdfs([(*where[i], copy.bookmark) for i, copy in enumerate(job.copies)], combined, two_sided=two_sided)  # type: ignore[misc]
            return
        except SplitError:
            pass
    parts = [(folder / outputs[i], copy.bookmark) for i, copy in enumerate(job.copies)]
    combine_pdfs(parts, combined, two_sided=two_sided)


def _split(pdf: Path, ranges: Sequence[tuple[int, int]], outputs: Sequence[Path]) -> None:
    """Write pages [first, end) of `pdf` to each output (0-based, as TeX counted them)."""
    try:
        split_pdf(pdf, ranges, outputs)
        return
    except SplitError:
        pass  # not laid out as expected (another TeX?): pypdf reads anything
    from pypdf import PdfReader, PdfWriter  # only builds that make PDFs need it

    reader = PdfReader(pdf)
    for (first, end), out in zip(ranges, outputs, strict=True):
        writer = PdfWriter()
        for number in range(first, end):
            writer.add_page(reader.pages[number])
        with open(out, "wb") as f:
            writer.write(f)

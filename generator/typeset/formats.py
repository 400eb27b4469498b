"""What a build makes ready for TeX while it imports and solves: pdflatex's format unpacked and
kept once per machine, a format with the batches' preamble preloaded (`UnpackedFormat`), and
pdflatex runs started early on the preamble every batch shares, fed the rest of their document
later through a named pipe (`Primer`, `PrimedRun`). Each only saves time: the PDFs are those of
plain `generator.typeset.compile.run_pdflatex` runs, byte for byte.
"""

from __future__ import annotations

import errno
import hashlib
import itertools
import json
import os
import select
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any, Self

from generator.typeset.compile import (
    end_pdflatex,
    start_pdflatex,
    tex_environment,
    wait_pdflatex,
)

__all__ = ["PrimedRun", "Primer", "UnpackedFormat", "cache_folder"]

_PRIME_TIMEOUT = 30.0  # seconds a primed run may take to open its pipe or read its head


class _Closing:
    """Used as a context manager, closed on leaving it."""

    def close(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# Measured: about 60 ms (unpacked) and 45 ms more (preloaded) of each of the counted build's four pdflatex
# runs (2026-11; 4 runs x 0.1 s is about 7% of the build's 5.7 s of CPU).
class UnpackedFormat(_Closing):
    """pdflatex's format file stored uncompressed, kept in the user's cache folder (`cache_folder`)
    once a build has unpacked it; unpacked in the background (by a child process, which a thread
    waits for) when it is not there yet.

    Why unpacked: TeX Live keeps formats gzip-compressed, and inflating pdflatex.fmt (6 MB to
    18 MB) is three quarters of the instructions of loading it, about 60 ms of every pdflatex run
    here (t0 itself is mostly this). TeX reads its formats through zlib, which reads an
    uncompressed file as it is, so `-fmt=` the unpacked copy gives the same PDFs, byte for byte.
    Why kept: unpacking took 0.08 s of CPU and wrote (and removed) 18 MB in every build, on the
    core that starts the first pdflatex runs (`Primer`) while the main process imports its
    modules. The copy is named by the format's path, size and time, so a new TeX gets a new copy
    (the old one is removed once it is an hour old: a build may still be loading it); it is
    written under a temporary name and renamed, so builds running at once never see half of it.
    When the cache folder cannot be written the copy goes to a temporary folder, removed when
    the build ends. `path()` is None (and TeX uses its own format) when there is nothing to unpack
    or it fails.

    Given the preamble every batch starts with, it also keeps a format with that preamble read
    (`_preloaded`), and `reading` says what TeX is to read with it.
    """

    def __init__(self, source: Path | None, cache: Path | None = None, preamble: str | None = None) -> None:
        self._cache = cache if cache is not None else cache_folder()
        self._folder: Path | None = None  # a temporary folder of this build's own, if it needed one
        self._path: Path | None = None
        self._preamble = preamble
        self._preloaded: Path | None = None
        self._abandoned = False
        self._thread = threading.Thread(target=self._prepare, args=(source,), daemon=True)
        self._thread.start()

    def _prepare(self, source: Path | None) -> None:
        self._unpack(source)
        if self._preamble is not None and self._path is not None and not self._abandoned:
            self._preloaded = _preloaded(self._path, self._preamble)

    def abandon(self) -> None:
        """Stop making the formats, for a build that stops early (Ctrl-C, an error): the child
        processes that make them (a TeX run of up to two minutes) are ended at once, none starts
        after, and nothing half made is kept (each is written under a temporary name first)."""
        self._abandoned = True
        ident = self._thread.ident
        with _children_lock:
            _stopped.add(ident)
        try:
            while self._thread.is_alive():
                with _children_lock:
                    for child in _children.get(ident, ()):
                        child.kill()
                self._thread.join(0.05)
        finally:
            with _children_lock:
                _stopped.discard(ident)

    def _unpack(self, source: Path | None) -> None:
        if source is None:
            return
        try:
            name = _kept_name(source)
        except OSError:
            return  # no format there: TeX looks for its own
        if self._cache is not None and (self._cache / name).is_file():
            self._path = self._cache / name
            return
        for cache in (self._cache, None):
            try:
                if cache is None:
                    folder = self._folder = Path(tempfile.mkdtemp(prefix="generator-format-"))
                else:
                    folder = cache
                    folder.mkdir(parents=True, exist_ok=True)
                if _inflate(source, folder, name):
                    self._path = folder / name
                    if folder == self._cache:  # another TeX's copies (and what was made from them), leftovers
                        _forget_stale(folder, (f"{source.stem}-*", f".{source.stem}-*.tmp"), {name})
                return  # unpacked, or not compressed (TeX loads its own)
            except OSError:
                continue  # the cache folder cannot be written: a temporary one
            except subprocess.SubprocessError:
                return  # (it took two minutes): TeX loads its own

    def path(self) -> Path | None:
        """The unpacked format (waits for it), or None."""
        self._thread.join()
        return self._path

    def reading(self, text: str) -> tuple[str, Path | None]:
        """What pdflatex is to read for the document `text`, and the format it is to load (waits
        for them): for a document that starts with the preamble given, the format with that
        preamble preloaded, and the text with the preamble's lines left blank (so that TeX's
        line numbers are the document's), the settings a format forgets restated on the first;
        for any other document, the text as it is and the unpacked format (or None)."""
        self._thread.join()
        preamble = self._preamble
        if self._preloaded is None or preamble is None or not text.startswith(preamble):
            return text, self._path
        restated = "".join(setting for setting in _FORGOTTEN if setting in preamble)
        return restated + "\n" * preamble.count("\n") + text[len(preamble):], self._preloaded

    def close(self) -> None:
        self._thread.join()
        if self._folder is not None:
            shutil.rmtree(self._folder, ignore_errors=True)


def cache_folder() -> Path | None:
    """Where a build keeps what it makes once per machine (pdflatex's unpacked format):
    `$XDG_CACHE_HOME/generator`, else `~/.cache/generator`; None when there is no home folder."""
    base = os.environ.get("XDG_CACHE_HOME")
    if not base:
        try:
            base = str(Path.home() / ".cache")
        except RuntimeError:
            return None
    return Path(base) / "generator"


# The child processes each formats thread runs (by thread), for `UnpackedFormat.abandon`; and the
# threads whose build is stopping, which start no more.
_children: dict[int | None, set[subprocess.Popen[Any]]] = {}
_stopped: set[int | None] = set()
_children_lock = threading.Lock()


def _run_child(command: list[str], *, timeout: float, **options: Any) -> subprocess.CompletedProcess[Any]:
    """`subprocess.run(command, capture_output=True, timeout=timeout, **options)`, with the child
    registered under its thread while it runs, so that `UnpackedFormat.abandon` can end it."""
    ident = threading.get_ident()
    with _children_lock:
        if ident in _stopped:
            raise subprocess.SubprocessError("the build is stopping")
        process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, **options)
        _children.setdefault(ident, set()).add(process)
    try:
        try:
            out, err = process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.communicate()
            raise
    finally:
        with _children_lock:
            _children[ident].discard(process)
            if not _children[ident]:
                del _children[ident]
    return subprocess.CompletedProcess(command, process.returncode, out, err)


def _kept_name(source: Path) -> str:
    """`pdflatex-<hash of the format's path, size and time>.fmt`."""
    stat = source.stat()
    identity = f"{os.path.realpath(source)}\0{stat.st_size}\0{stat.st_mtime_ns}"
    return f"{source.stem}-{hashlib.sha256(identity.encode()).hexdigest()[:16]}{source.suffix}"


def _inflate(source: Path, folder: Path, name: str) -> bool:
    """Unpack `source` into folder/name (written under a temporary name, then renamed); False if
    it is not compressed or not whole. Raises OSError if the folder cannot be written."""
    temp = _temporary(folder / name)
    try:
        temp.touch()  # (OSError here if the folder cannot be written: the caller tries another)
        # In a child process: here it would wait for the interpreter lock, which the imports
        # beside it hold (0.16 s instead of 0.06 s).
        done = _run_child([sys.executable, "-I", "-S", "-c", _INFLATE, str(source), str(temp)],
                          stdin=subprocess.DEVNULL, timeout=120)
        if done.returncode != 0:
            return False
        os.replace(temp, folder / name)
        return True
    finally:
        temp.unlink(missing_ok=True)


def _temporary(target: Path) -> Path:
    """The name `target` is written under before it is renamed into place, so that builds running
    at once never see half of it (`.<name>.<process>.<thread>.tmp`; a killed build's leftovers
    are found by that shape)."""
    return target.with_name(f".{target.name}.{os.getpid()}.{threading.get_ident()}.tmp")


_STALE = 3600.0  # seconds: a kept format no longer wanted is removed once it is this old


# Settings a format does not keep, restated for a document read with its preamble preloaded
# (pdfTeX keeps its integer parameters, \\pdfcompresslevel and the like, but not the trailer ID).
_FORGOTTEN = ("\\pdftrailerid{}",)
_PRELOADED = "preloaded-1"  # part of a preloaded format's name: how it is made


def _preloaded(base: Path, preamble: str) -> Path | None:
    """pdflatex's format with `preamble` read (and `\\dump`ed), beside `base` (the unpacked
    format it starts from); made when it is not there or what it read has changed, else None.

    Why: every batch starts with the same preamble, and reading it (packages, fonts) is about
    45 ms of every pdflatex run. A format made once (0.25 s) and kept loads it with the kernel.
    Kept with it is the list of files TeX read for it (`-recorder`), with where kpathsea found
    each and its size and time: a package updated, or another one put before it on TeX's search
    path, and the format is made again. The PDFs are those of a run that reads the preamble,
    byte for byte (tests/test_compile.py).
    """
    digest = hashlib.sha256(f"{_PRELOADED}\0{base.name}\0{preamble}".encode()).hexdigest()[:16]
    name = f"{base.stem}-preamble-{digest}{base.suffix}"
    kept, inputs = base.parent / name, base.parent / f"{name}.inputs"
    if _unchanged(kept, inputs):
        return kept
    try:
        with tempfile.TemporaryDirectory(prefix="generator-preload-") as work:
            (Path(work) / "preamble.tex").write_text(preamble + "\\dump\n", encoding="utf-8")
            done = _run_child(
                ["pdflatex", "-ini", "-interaction=batchmode", "-halt-on-error", "-no-shell-escape", "-recorder",
                 "-jobname=preamble", f"&{base.stem}", "preamble.tex"],
                cwd=work, env={**tex_environment(), "TEXFORMATS": str(base.parent)}, stdin=subprocess.DEVNULL,
                timeout=120,
            )
            made = Path(work) / "preamble.fmt"
            if done.returncode != 0 or not made.is_file():
                return None  # (the preamble does not dump): batches read it
            record = _recorded(Path(work) / "preamble.fls", base)
            if not _inflate(made, base.parent, name):
                return None
        temp = _temporary(inputs)
        try:
            temp.write_text(json.dumps(record), encoding="utf-8")
            os.replace(temp, inputs)
        finally:
            temp.unlink(missing_ok=True)
        _forget_stale(base.parent, (f"{base.stem}-preamble-*",), {name, inputs.name})  # other preambles'
        return kept
    except (OSError, ValueError, subprocess.SubprocessError):
        return None


def _recorded(fls: Path, base: Path) -> dict[str, list[list[Any]]]:
    """The files a TeX run read (its `-recorder` list), but its own input and its format: those
    found on TeX's search path by name, with where, and the others by path; each with its size
    and time."""
    searched: list[list[Any]] = []
    fixed: list[list[Any]] = []
    seen = set()
    for line in fls.read_text(encoding="utf-8", errors="surrogateescape").splitlines():
        kind, _, path = line.partition(" ")
        if kind != "INPUT" or path in seen or not os.path.isabs(path) or Path(path) == base:
            continue
        seen.add(path)
        stat = os.stat(path)
        if path.endswith(".cnf"):
            fixed.append([path, stat.st_size, stat.st_mtime_ns])
        else:
            searched.append([os.path.basename(path), path, stat.st_size, stat.st_mtime_ns])
    return {"searched": searched, "fixed": fixed}


def _unchanged(kept: Path, inputs: Path) -> bool:
    """Whether the format `kept` is there with its list of inputs, kpathsea still finds each
    searched file where it was, and every file is as it was (a list missing or unreadable, a
    file gone: no)."""
    try:
        if not kept.is_file():
            return False
        record = json.loads(inputs.read_text(encoding="utf-8"))
        searched, fixed = record["searched"], record["fixed"]
        found = _run_child(["kpsewhich", *(name for name, *_ in searched)], env=tex_environment(),
                           stdin=subprocess.DEVNULL, text=True, timeout=30).stdout.splitlines()
        if found != [path for _, path, _, _ in searched]:
            return False
        for path, size, mtime in [*((path, size, mtime) for _, path, size, mtime in searched), *fixed]:
            stat = os.stat(path)
            if (stat.st_size, stat.st_mtime_ns) != (size, mtime):
                return False
        return True
    except (OSError, ValueError, KeyError, TypeError, subprocess.SubprocessError):
        return False


def _forget_stale(folder: Path, patterns: tuple[str, ...], keep: set[str]) -> None:
    """Remove the files of `folder` matching `patterns` but those in `keep`, once they are an
    hour old (a build started before may still be loading one)."""
    now = time.time()
    for path in {path for pattern in patterns for path in folder.glob(pattern)}:
        try:
            if path.name not in keep and now - path.stat().st_mtime > _STALE:
                path.unlink()
        except OSError:
            pass


class PrimedRun:
    """A pdflatex run started on the head of a document (up to and including \\begin{document}),
    waiting for the rest: TeX reads the document from a named pipe, as it would from a file.

    Why: every batch begins with the same preamble, and reading it (packages, fonts) is about
    0.1 s of each run. A build starts these runs while its main process imports its modules and
    loads the bank on one core (`Primer`), and the batches then only typeset their pages.
    """

    def __init__(self, folder: Path, head: str, fmt: Path | None, give_up: threading.Event | None = None) -> None:
        folder.mkdir()
        self.source = folder / "batch.tex"
        os.mkfifo(self.source)
        self.head = head
        self._terminal = self.source.with_suffix(".terminal")
        self._pipe: int | None = None
        self.process = start_pdflatex(self.source, fmt, self._terminal)
        try:
            self._pipe = _open_writer(self.source, self.process, give_up)
            self._send(head.encode("utf-8"), time.monotonic() + _PRIME_TIMEOUT)
        except BaseException:
            self.discard()
            raise

    def waiting(self) -> bool | None:
        """Whether TeX has read the head and now waits for the rest (None: cannot tell here).

        Linux says what a process sleeps on: reading a pipe. Elsewhere the caller waits a while."""
        if self.process.poll() is not None:
            return True  # it ended (an error in the head): nothing more to wait for
        proc = Path(f"/proc/{self.process.pid}")
        try:
            stat = (proc / "stat").read_text()
            if stat[stat.rindex(")") + 2] != "S":
                return False  # running (or reading a file)
            wchan = (proc / "wchan").read_text()
        except (OSError, ValueError, IndexError):
            return None
        if wchan in ("", "0"):  # asleep, but the kernel does not say on what
            return None
        return "pipe" in wchan  # asleep reading the pipe (opening it is "wait_for_partner")

    def finish(self, text: str, timeout: float, max_pages: int | None = None) -> tuple[int | None, str]:
        """Hand TeX the rest of `text` (which starts with the head) and wait: (exit code; the log),
        as `run_pdflatex` (and its `TeXLimitError`). The file is a regular file again afterwards."""
        if not text.startswith(self.head):
            raise ValueError("the document does not start with the head this run has read")
        deadline = time.monotonic() + timeout
        if self._pipe is not None:
            self._send(text[len(self.head):].encode("utf-8"), deadline)
            self._close_pipe()
        try:
            left = max(0.0, deadline - time.monotonic())
            return wait_pdflatex(self.process, self.source, self._terminal, left, max_pages, stated=timeout)
        finally:
            # Another pass (or an error message quoting the .tex) reads the document as a file.
            self.source.unlink()
            self.source.write_text(text, encoding="utf-8")

    def discard(self) -> None:
        """End the run unused."""
        self._close_pipe()
        end_pdflatex(self.process)

    def _send(self, data: bytes, deadline: float) -> None:
        """Write to the pipe while TeX reads; TeX that ends early (an error) or overruns is left to `_wait`."""
        view = memoryview(data)
        while view and self._pipe is not None:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not select.select([], [self._pipe], [], remaining)[1]:
                self.process.kill()  # out of time: _wait reports it
                break
            try:
                view = view[os.write(self._pipe, view[: 1 << 16]) :]
            except BlockingIOError:
                continue  # less room than asked for: wait for TeX to read on
            except BrokenPipeError:
                break  # TeX stopped reading (an error): its log says why

    def _close_pipe(self) -> None:
        if self._pipe is not None:
            os.close(self._pipe)
            self._pipe = None


def _open_writer(fifo: Path, process: subprocess.Popen[bytes], give_up: threading.Event | None) -> int:
    """Open the named pipe for writing once TeX has opened it for reading (non-blocking writes)."""
    deadline = time.monotonic() + _PRIME_TIMEOUT
    while True:
        try:
            pipe = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
            break
        except OSError as e:
            if (e.errno != errno.ENXIO or process.poll() is not None or time.monotonic() > deadline
                    or (give_up is not None and give_up.is_set())):
                raise
            time.sleep(0.001)  # TeX is still loading its format
    return pipe


# Measured 2026-11: about 0.1 s of wall time (the preamble read while the stages import); not separable
# from the machine's noise on 2026-12-02 (docs/performance.md, "Devices re-measured").
class Primer(_Closing):
    """`PrimedRun`s on one head, started one after another in a thread, up to a limit.

    One at a time, each once the one before waits for its body: they use the core that is idle
    while the main process imports and loads the bank, and do not take it from the main process.
    The build asks for two per TeX worker (the first batches to compile; later ones start TeX
    themselves), and fewer once it knows it has fewer batches. `take` hands a run to a document
    (as TeX is to read it: `UnpackedFormat.reading`) that starts with the head (a batch), or
    None; `close` ends the runs nobody took.
    """

    def __init__(self, head: str | None, fmt: UnpackedFormat, limit: int) -> None:
        self._head = head
        self._limit = limit
        self._runs: list[PrimedRun] = []
        self._lock = threading.Lock()
        self._closed = threading.Event()
        self._folder: Path | None = None
        self._thread = threading.Thread(target=self._prime, args=(fmt,), daemon=True)
        if head is not None and limit > 0 and hasattr(os, "mkfifo"):
            self._thread.start()

    def limit(self, count: int) -> None:
        """Start no more than `count` runs in all (once the build knows how many batches it has)."""
        with self._lock:
            self._limit = min(self._limit, count)

    def take(self, text: str) -> PrimedRun | None:
        """A started run for a document `text` (as TeX is to read it: `UnpackedFormat.reading`),
        if it starts with the head the runs have read and one is there."""
        with self._lock:
            if not self._runs or not text.startswith(self._runs[0].head):
                return None
            return self._runs.pop(0)

    def _prime(self, fmt: UnpackedFormat) -> None:
        head, path = fmt.reading(self._head)  # type: ignore[arg-type]  # (once the formats are there)
        try:
            with self._lock:
                if self._closed.is_set():
                    return
                self._folder = Path(tempfile.mkdtemp(prefix="generator-tex-"))
            for n in itertools.count():
                with self._lock:
                    if self._closed.is_set() or n >= self._limit:
                        return
                run = PrimedRun(self._folder / str(n), head, path, self._closed)
                with self._lock:
                    if self._closed.is_set():
                        run.discard()
                        return
                    self._runs.append(run)
                _wait_until_waiting(run, self._closed)
        except Exception:  # noqa: BLE001 (no named pipes here, the build is stopping, ...)
            return  # priming only saves time: batches without a primed run start TeX themselves

    def close(self) -> None:
        with self._lock:
            self._closed.set()
        if self._thread.is_alive():
            self._thread.join()
        for run in self._runs:
            run.discard()
        self._runs = []
        if self._folder is not None:
            shutil.rmtree(self._folder, ignore_errors=True)


def _wait_until_waiting(run: PrimedRun, give_up: threading.Event | None = None) -> None:
    deadline = time.monotonic() + _PRIME_TIMEOUT
    while time.monotonic() < deadline and not (give_up is not None and give_up.is_set()):
        state = run.waiting()
        if state is None:
            time.sleep(0.15)  # about what reading our preamble takes
            return
        if state:
            return
        time.sleep(0.005)


# Unpacks argv[1] (gzip or zlib, whichever TeX wrote) into argv[2]; exit 1 unless complete.
_INFLATE = """import sys, zlib
inflate = zlib.decompressobj(wbits=47)
with open(sys.argv[1], "rb") as packed, open(sys.argv[2], "wb") as unpacked:
    while chunk := packed.read(1 << 22):
        unpacked.write(inflate.decompress(chunk))
    unpacked.write(inflate.flush())
sys.exit(0 if inflate.eof and not inflate.unused_data else 1)
"""

"""Stage 7, write: put a finished build into place without ever leaving a half-written folder.

Everything is written into a fresh temporary folder beside the destination. Only when the whole
build succeeded is the old folder moved aside, the new one renamed into its place (a rename on
the same file system) and the old one removed. A failure or Ctrl-C before that leaves the
previous build exactly as it was; the temporary folder is removed either way.

The swap itself is two renames. Ctrl-C (SIGINT) and SIGTERM are held back while they run, and
if the second rename fails the old folder is renamed back, so no moment exists at which an
interruption or an error loses the previous build.

A folder is only ever replaced if it is empty or was written by this tool (it holds the
`.generator-output` marker, or `manifest.json` from an older build): `--out .` or `--out
question_bank` must fail with a message, not delete the project.
"""

from __future__ import annotations

import os
import shutil
import signal
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from generator.errors import OutputError, display_path

__all__ = ["staging", "MARKER"]

MARKER = ".generator-output"
_OURS = (MARKER, "manifest.json")


@contextmanager
def staging(destination: str | Path) -> Iterator[Path]:
    """Yield a temporary folder; when the `with` body succeeds it replaces `destination`.

    Raises:
        OutputError: the destination cannot be written, is not a folder, or is a folder this
            tool did not write; or writing inside the temporary folder failed.
    """
    shown = Path(destination)
    target = Path(os.path.abspath(shown))
    _refuse_unsafe(target, shown)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        temp = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-", dir=target.parent))
        temp.chmod(0o777 & ~_umask())  # mkdtemp makes it private; the output is an ordinary folder
    except OSError as e:
        raise OutputError(f"{shown}: cannot write the output folder ({e.strerror or e})") from None
    try:
        try:
            (temp / MARKER).write_text(
                "Written by `python -m generator`; replaced by the next build.\n", encoding="utf-8"
            )
            yield temp
        except OSError as e:
            if e.filename is None or not _inside(Path(str(e.filename)), temp):
                raise
            name = Path(str(e.filename)).relative_to(temp)
            raise OutputError(f"{shown}: cannot write {name} ({e.strerror or e})") from None
        _swap(temp, target, shown)
    finally:
        if temp.exists():
            shutil.rmtree(temp, ignore_errors=True)


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _refuse_unsafe(target: Path, shown: Path) -> None:
    if target.exists() and not target.is_dir():
        raise OutputError(f"{shown}: exists and is not a folder")
    for parent in target.parents:
        if parent.exists():
            if not parent.is_dir():
                raise OutputError(
                    f"{shown}: cannot write the output folder ({display_path(parent)} is a file, not a folder)"
                )
            break
    cwd = Path.cwd().absolute()
    if target == cwd or target in cwd.parents:
        raise OutputError(f"{shown}: is the current folder or contains it; choose an output folder inside it")
    if target.is_dir():
        try:
            entries = [entry.name for entry in os.scandir(target)]
        except OSError as e:
            raise OutputError(f"{shown}: cannot read the output folder ({e.strerror or e})") from None
        if entries and not any(name in entries for name in _OURS):
            raise OutputError(
                f"{shown}: exists and was not written by this tool (no {MARKER} or manifest.json); "
                "it would be replaced, so choose another output folder or empty it first"
            )


def _inside(path: Path, folder: Path) -> bool:
    try:
        Path(os.path.abspath(path)).relative_to(folder)
    except ValueError:
        return False
    return True


def _swap(temp: Path, target: Path, shown: Path) -> None:
    """Replace `target` by `temp`; on any failure the previous `target` is put back."""
    old: Path | None = None
    with _interrupts_deferred():
        try:
            if target.exists():
                old = Path(tempfile.mkdtemp(prefix=f".{target.name}.old-", dir=target.parent))
                target.rename(old / "previous")
            temp.rename(target)
        except OSError as e:
            _restore(old, target)
            raise OutputError(f"{shown}: cannot move the finished build into place ({e.strerror or e}); "
                              "the previous output is unchanged") from None
        except BaseException:
            _restore(old, target)
            raise
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)


def _restore(old: Path | None, target: Path) -> None:
    if old is None:
        return
    previous = old / "previous"
    if previous.exists() and not target.exists():
        previous.rename(target)
    shutil.rmtree(old, ignore_errors=True)


@contextmanager
def _interrupts_deferred() -> Iterator[None]:
    """Hold back SIGINT and SIGTERM for the duration of the block, then deliver them."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    received: list[int] = []

    def hold(signum: int, frame: Any) -> None:
        received.append(signum)

    previous = {}
    for signum in (signal.SIGINT, signal.SIGTERM):
        handler = signal.getsignal(signum)
        if handler is not None:  # None: installed outside Python; leave it alone
            previous[signum] = signal.signal(signum, hold)
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        if received:
            signal.raise_signal(received[0])

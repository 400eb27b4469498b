"""Stage 7, write: put a finished build into place without ever leaving a half-written folder.

Everything is written into a fresh temporary folder beside the destination. Only when the whole
build succeeded is the old folder moved aside, the new one renamed into its place (a rename on
the same file system) and the old one removed. A failure or Ctrl-C before that leaves the
previous build exactly as it was.
"""

from __future__ import annotations

import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from generator.errors import OutputError

__all__ = ["staging"]


@contextmanager
def staging(destination: Path) -> Iterator[Path]:
    """Yield a temporary folder; on normal exit it replaces `destination` atomically."""
    destination = Path(destination)
    try:
        destination.parent.mkdir(parents=True, exist_ok=True)
        temp = Path(tempfile.mkdtemp(prefix=f".{destination.name}.tmp-", dir=destination.parent))
    except OSError as e:
        raise OutputError(f"{destination}: cannot write the output folder ({e.strerror})") from None
    if destination.exists() and not destination.is_dir():
        shutil.rmtree(temp, ignore_errors=True)
        raise OutputError(f"{destination}: exists and is not a folder")
    try:
        yield temp
        old = None
        if destination.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{destination.name}.old-", dir=destination.parent))
            destination.rename(old / "previous")
        temp.rename(destination)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except OSError as e:
        raise OutputError(f"{destination}: cannot move the finished build into place ({e.strerror})") from None
    finally:
        if temp.exists():
            shutil.rmtree(temp, ignore_errors=True)

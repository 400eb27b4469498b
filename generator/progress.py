"""A progress bar for long builds: on a terminal only, and only once a build has run a second.

tqdm draws it on stderr. It stays silent when stderr is not a terminal (CI logs, pipes,
`2> file`), so that nothing but the build's own messages reaches them, and it appears only after
a second, so that quick builds (a no-op rebuild, one variant) print nothing extra. The bar is
removed when the build ends; the CLI's summary follows as before.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, TextIO

__all__ = ["Progress", "progress"]

DELAY = 1.0  # seconds before the bar appears


class Progress:
    """Steps of a build: set a stage's name and total, then advance by the units done.

    The bar is created at the first step taken after `DELAY` seconds, on a terminal only.
    """

    def __init__(self, stream: TextIO | None):
        self._stream = stream  # None: never draw
        self._start = time.monotonic()
        self._bar: Any | None = None
        self._name = ""
        self._total = 0
        self._done = 0

    def stage(self, name: str, total: int) -> None:
        """Start counting `total` units of a stage called `name` (e.g. "typesetting")."""
        self._name, self._total, self._done = name, total, 0
        if self._bar is not None:
            self._bar.set_description_str(name, refresh=False)
            self._bar.reset(total=total)

    def advance(self, units: int = 1) -> None:
        self._done += units
        if self._bar is not None:
            self._bar.update(units)
        elif self._stream is not None and time.monotonic() - self._start >= DELAY:
            from tqdm import tqdm  # only terminals need it

            tqdm.monitor_interval = 0  # no monitor thread: the build forks worker processes
            self._bar = tqdm(
                total=self._total, initial=self._done, desc=self._name, file=self._stream, leave=False,
                dynamic_ncols=True,
                bar_format="{desc}: {percentage:3.0f}%|{bar}| {n_fmt}/{total_fmt} [{elapsed}<{remaining}]",
            )

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None


@contextmanager
def progress(stream: TextIO | None = None) -> Iterator[Progress]:
    """A `Progress` that draws on `stream` (stderr) when it is a terminal, else does nothing."""
    stream = sys.stderr if stream is None else stream
    shown = Progress(stream if _is_terminal(stream) else None)
    try:
        yield shown
    finally:
        shown.close()


def _is_terminal(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False

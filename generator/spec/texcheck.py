"""TeX commands that question, worksheet and exam text may not use: they end or escape the document.

Why: a question's text is typeset inside a larger document (a copy, and a batch of copies).
`\\end{document}` in a stem silently drops the rest of the copy, `\\endinput` or `\\@@end` stops
TeX reading, `\\batchmode` or `\\dump` change how TeX runs, `\\input`, `\\openin` and friends read
files (the job's own log, or files outside it, whose text an error would then show), `\\openout`
writes them, and `\\csname` or `\\catcode` can spell any of these so that no list could catch
them. None has a use in an exercise. TeX itself runs with shell escape off, reading and writing
only in the job's folder, and under time and page limits (generator.typeset.compile); this list
turns what those would stop late, or not at all, into a spec error with file and line.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from generator.errors import Location

__all__ = ["FORBIDDEN_COMMANDS", "forbidden_commands", "refusal"]

FORBIDDEN_COMMANDS = (
    "\\end{document}", "\\begin{document}", "\\documentclass", "\\enddocument", "\\endinput", "\\@@end", "\\@@input",
    "\\input", "\\include", "\\includeonly", "\\InputIfFileExists", "\\openin", "\\read", "\\openout", "\\dump",
    "\\batchmode", "\\nonstopmode", "\\scrollmode", "\\errorstopmode", "\\stop", "\\csname", "\\catcode",
    "\\pdfximage", "\\pdfobj", "\\pdffiledump", "\\pdfmdfivesum", "\\pdffilesize", "\\pdffilemoddate",
)
_NAMES = sorted({c[1:] for c in FORBIDDEN_COMMANDS if "{" not in c}, key=len, reverse=True)
_PATTERN = re.compile(
    r"\\(?:(?:end|begin)\s*\{\s*document\s*\}|(?:" + "|".join(re.escape(n) for n in _NAMES) + r")(?![A-Za-z@]))"
)


def forbidden_commands(text: str, where: Location) -> Iterator[tuple[Location, str]]:
    """(location, command) for each forbidden command in `text`, whose first line is at `where`."""
    for match in _PATTERN.finditer(text):
        line = text.count("\n", 0, match.start())
        col = None
        if line == 0 and where.col is not None:
            col = where.col + match.start()
        command = re.sub(r"\s+", "", match.group(0))
        yield Location(where.file, None if where.line is None else where.line + line, col), command


def refusal(command: str) -> str:
    """The message for a forbidden command."""
    return f"{command} is not allowed in question, worksheet or exam text (it ends or escapes the document)"

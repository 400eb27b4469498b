"""One exception root for every user-facing error.

The CLI catches `GeneratorError` only: it prints the message and exits non-zero without a
traceback. Any other exception is a bug in the tool and keeps its traceback.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "Location",
    "GeneratorError",
    "SpecError",
    "ExpressionError",
    "SamplingError",
    "SolveError",
    "VerifyError",
    "RenderError",
    "CompileError",
    "OutputError",
    "RosterError",
    "ExportError",
    "GradeError",
]


@dataclass(frozen=True, slots=True)
class Location:
    """A place in a user's file: 1-based line and column, as editors show them."""

    file: str
    line: int | None = None
    col: int | None = None

    def __str__(self) -> str:
        parts = [self.file]
        if self.line is not None:
            parts.append(str(self.line))
            if self.col is not None:
                parts.append(str(self.col))
        return ":".join(parts)

    def shifted(self, line_offset: int = 0, col: int | None = None) -> Location:
        """Return the location `line_offset` lines further down (for text inside a YAML value)."""
        line = None if self.line is None else self.line + line_offset
        return Location(self.file, line, col if col is not None else self.col)


def display_path(path: str | Path) -> str:
    """Show a path relative to the working directory when it is below it (shorter messages).

    A symbolic link is shown as itself, never as its target: the target may lie outside the bank
    and its name is not for messages."""
    p = Path(path)
    try:
        full = p.resolve() if p.name in ("", ".", "..") else p.parent.resolve() / p.name
        return str(full.relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(p)


class GeneratorError(Exception):
    """Root of every error the user can cause and fix; the CLI prints these without traceback."""


class SpecError(GeneratorError):
    """A question, worksheet or exam file is malformed or inconsistent."""

    def __init__(self, problems: list[str] | str):
        self.problems = [problems] if isinstance(problems, str) else list(problems)
        super().__init__("\n".join(self.problems))


class ExpressionError(SpecError):
    """An expression in a spec uses syntax, a name or a function outside the whitelist."""


class SamplingError(GeneratorError):
    """Parameters could not be drawn (e.g. constraints that cannot be met)."""


class SolveError(GeneratorError):
    """SymPy could not compute an answer (e.g. a shape mismatch in a definition)."""


class VerifyError(GeneratorError):
    """An exact answer disagrees with its independent numeric check; the build stops."""


class RenderError(GeneratorError):
    """A Jinja template failed: undefined variable, syntax error, forbidden access."""


class CompileError(GeneratorError):
    """TeX failed; the message carries the log excerpt and the question that caused it."""

    def __init__(self, message: str, tex_line: int | None = None):
        super().__init__(message)
        self.tex_line = tex_line


class OutputError(GeneratorError):
    """The output folder cannot be written."""


class RosterError(GeneratorError):
    """A student roster file has a bad row."""


class ExportError(GeneratorError):
    """An online export (Moodle XML, QTI) cannot be written, or does not read back as the key."""


class GradeError(GeneratorError):
    """A response file or manifest cannot be graded (bad rows, unknown students, existing outputs)."""

    def __init__(self, problems: list[str] | str):
        self.problems = [problems] if isinstance(problems, str) else list(problems)
        super().__init__("\n".join(self.problems))

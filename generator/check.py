"""`check`: everything a question author needs short of a PDF: validate, draw, solve, verify, render."""

from __future__ import annotations

from pathlib import Path
from typing import Iterable

from generator.errors import GeneratorError
from generator.render import make_environment, render_question
from generator.sampling import sample
from generator.solve import solve
from generator.spec import load_question
from generator.verify import verify

__all__ = ["check_files"]


def check_files(files: Iterable[Path], seeds: int = 5) -> list[str]:
    """Return every problem found, one message per problem; an empty list means all is well."""
    problems: list[str] = []
    env = make_environment()
    for file in files:
        try:
            question = load_question(file)
        except GeneratorError as e:
            problems.extend(getattr(e, "problems", [str(e)]))
            continue
        for seed in range(seeds):
            try:
                solution = solve(sample(question, seed, 0))
                verify(solution)
                render_question(env, solution)
            except GeneratorError as e:
                problems.append(str(e))
                break
    return problems

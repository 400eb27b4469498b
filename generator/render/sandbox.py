"""The Jinja sandbox that question templates run in, tightened for the values we hand them.

Why more than Jinja's `SandboxedEnvironment`: that sandbox blocks `__class__`-style attributes,
but it lets a template call any public method of the objects in its context. Ours are numpy
arrays and SymPy numbers, and their methods are not harmless: `x.dump('/path')` writes a pickle
anywhere, `x.fill(0)` changes the drawn numbers behind the key's back, and many SymPy methods
(`.subs`, `.equals`, ...) pass string arguments to `sympify`, which calls `eval`. So:

- numpy and SymPy values expose only a few read-only attributes (`T`, `shape`, `ndim`, `size`,
  and a number's `p`/`q`); none of their methods can be called;
- the builtin `list`/`dict`/`set` cannot be modified (Jinja's immutable sandbox);
- `**` and `*` are checked before they run, so `<< 10 ** 10 ** 10 >>` or `<< 'x' * 10 ** 9 >>`
  fail with a message instead of hanging the tool (Jinja folds constants at compile time, so
  without interception they would hang even before rendering).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import sympy
from jinja2.exceptions import SecurityError
from jinja2.sandbox import ImmutableSandboxedEnvironment

__all__ = ["SpecSandbox", "VALUE_ATTRIBUTES", "MAX_EXPONENT", "MAX_REPEAT"]

VALUE_ATTRIBUTES = frozenset({"T", "shape", "ndim", "size", "p", "q"})
MAX_EXPONENT = 100
MAX_REPEAT = 100_000


class SpecSandbox(ImmutableSandboxedEnvironment):
    """Jinja's immutable sandbox, plus: values are read-only data, and `**`/`*` are bounded."""

    intercepted_binops = frozenset({"**", "*"})

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._attribute_decisions: dict[tuple[type, str], bool] = {}

    def is_safe_attribute(self, obj: Any, attr: str, value: Any) -> bool:
        # Every rule here and in Jinja's sandboxes looks only at the object's type (isinstance
        # checks) and the attribute's name, so the answer is kept per (type, name): documents
        # read thousands of attributes of the same few types (a question's parts, titles, ...).
        key = (type(obj), attr)
        safe = self._attribute_decisions.get(key)
        if safe is None:
            safe = self._attribute_decisions[key] = self._decide(obj, attr, value)
        return safe

    def _decide(self, obj: Any, attr: str, value: Any) -> bool:
        if isinstance(obj, (np.ndarray, np.generic, sympy.Basic)):
            return attr in VALUE_ATTRIBUTES
        return super().is_safe_attribute(obj, attr, value)

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        if operator == "**":
            exponents = np.asarray(right, dtype=object).flat if isinstance(right, np.ndarray) else [right]
            for exponent in exponents:
                if isinstance(exponent, (int, float, sympy.Number)) and abs(exponent) > MAX_EXPONENT:
                    raise SecurityError(f"exponent {exponent} is too large (at most {MAX_EXPONENT})")
        if operator == "*":
            for seq, count in ((left, right), (right, left)):
                if (isinstance(seq, (str, list, tuple)) and isinstance(count, int)
                        and count * max(len(seq), 1) > MAX_REPEAT):
                    raise SecurityError(
                        f"repeating a text or list {count} times is too much (at most {MAX_REPEAT} items)"
                    )
        return super().call_binop(context, operator, left, right)

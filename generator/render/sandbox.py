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

Why resource limits as well: a template is a small program, and a few lines of one can ask for
gigabytes or hours (a chain of powers, `'%1000000000d' % 1`, a text doubled forty times in a
loop, two nested loops of 10^5 steps each, a macro that calls itself twice). Python would die
of a `MemoryError` or never finish, with no file named. Every render therefore runs under the
budgets below; whatever breaches one raises `SecurityError`, which the render stage reports as
a `RenderError` naming the spec file, the template key and the line:

- any text or list a template builds: at most `MAX_TEXT` characters or items (checked before
  `*`, `+`, `~`, `%`, `join`, `replace`, ... allocate it), and a template's output too (a
  document template's: `MAX_DOCUMENT`);
- integers: at most `MAX_BITS` bits (about 30,000 digits; a power is refused before it is
  computed), exponents at most `MAX_EXPONENT`;
- format widths and precisions (`'%1000000000d'`, `'{:>{w}}'`, `|center(w)`): at most `MAX_WIDTH`;
- loop iterations and calls (macros, methods, filters' callables) together: at most `MAX_STEPS`
  per render, and `MAX_SECONDS` of wall-clock time.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from functools import update_wrapper
from typing import Any

import numpy as np
import sympy
from jinja2 import nodes
from jinja2.compiler import CodeGenerator, Frame
from jinja2.environment import Template
from jinja2.exceptions import SecurityError
from jinja2.sandbox import ImmutableSandboxedEnvironment, SandboxedFormatter

__all__ = [
    "MAX_BITS",
    "MAX_DOCUMENT",
    "MAX_EXPONENT",
    "MAX_REPEAT",
    "MAX_SECONDS",
    "MAX_STEPS",
    "MAX_TEXT",
    "MAX_WIDTH",
    "VALUE_ATTRIBUTES",
    "SpecSandbox",
]

VALUE_ATTRIBUTES = frozenset({"T", "shape", "ndim", "size", "p", "q"})
MAX_EXPONENT = 100
MAX_REPEAT = 100_000
MAX_TEXT = 1_000_000
MAX_DOCUMENT = 20_000_000
MAX_BITS = 100_000
MAX_WIDTH = 1000
MAX_STEPS = 1_000_000
MAX_SECONDS = 10.0

# `%` conversions: flags, then width and precision (a number, or `*` taken from the arguments).
_PERCENT = re.compile(r"%(?:\([^)]*\))?[-#0 +]*(\*|\d+)?(?:\.(\*|\d+))?")
_NUMBER = re.compile(r"\d+")


def _refuse(message: str) -> SecurityError:
    return SecurityError(message)


def _length(value: Any) -> int | None:
    return len(value) if isinstance(value, (str, list, tuple)) else None


def _bits(value: Any) -> int | None:
    """The size of an integer (or of a rational's larger part), None for anything else."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value.bit_length()
    if isinstance(value, sympy.Rational):
        return max(int(value.p).bit_length(), int(value.q).bit_length())
    return None


def _check_text(size: int, what: str) -> None:
    if size > MAX_TEXT:
        raise _refuse(f"{what} would make a text or list of {size} characters or items (at most {MAX_TEXT})")


def _check_width(number: int, what: str) -> None:
    if number > MAX_WIDTH:
        raise _refuse(f"{what}: width or precision {number} is too large (at most {MAX_WIDTH})")


def _check_percent(form: str) -> None:
    """`'%08.3f' % x`: every width and precision within `MAX_WIDTH`; `*` (taken from the values) refused."""
    for width, precision in _PERCENT.findall(form):
        for number in (width, precision):
            if number == "*":
                raise _refuse("'%' formatting: a width or precision taken from the values ('*') is not allowed")
            if number:
                _check_width(int(number), "'%' formatting")


class _BoundedFormatter(SandboxedFormatter):
    """`str.format` in the sandbox, with every field's width and precision bounded (nested
    fields such as `{:>{w}}` are filled in before `format_field` sees the spec)."""

    def format_field(self, value: Any, format_spec: str) -> Any:
        for number in _NUMBER.findall(format_spec):
            _check_width(int(number), "format")
        return super().format_field(value, format_spec)


class _GuardedCodeGenerator(CodeGenerator):
    """Jinja's code generator, with loops counted and `~` (concatenation) bounded."""

    def visit_For(self, node: nodes.For, frame: Frame) -> None:
        # Every item the loop takes counts against the render's budget (Jinja allows no node
        # types of our own, so the iterable is wrapped in a call of `SpecSandbox.counted`).
        iterable = node.iter
        if not (isinstance(iterable, nodes.Call) and isinstance(iterable.node, nodes.EnvironmentAttribute)
                and iterable.node.name == "counted"):
            counted = nodes.EnvironmentAttribute("counted")
            node.iter = nodes.Call(counted, [iterable], [], None, None, lineno=iterable.lineno)
        super().visit_For(node, frame)

    def visit_Concat(self, node: nodes.Concat, frame: Frame) -> None:
        self.write("environment.concatenated((")
        for arg in node.nodes:
            self.visit(arg, frame)
            self.write(", ")
        self.write("))")


class _Budget(threading.local):
    """One render's steps and deadline (per thread: `check` renders from several threads)."""

    depth = 0
    steps = 0
    deadline = 0.0


class GuardedTemplate(Template):
    """A template whose `render` runs under the environment's budgets, output size included."""

    def render(self, *args: Any, **kwargs: Any) -> str:
        env = self.environment
        assert isinstance(env, SpecSandbox)
        ctx = self.new_context(dict(*args, **kwargs))
        limit = MAX_TEXT if (self.name or "").startswith("<") else MAX_DOCUMENT
        with env.budget():
            try:
                return env.concat(_bounded(self, self.root_render_func(ctx), limit))
            except Exception:  # noqa: BLE001 (as Jinja's own render: the traceback is rewritten to the template's lines)
                env.handle_exception()
        raise AssertionError("unreachable")  # (handle_exception always raises)


def _bounded(template: Template, chunks: Iterator[str], limit: int) -> Iterator[str]:
    size = 0
    for chunk in chunks:
        size += len(chunk)
        if size > limit:
            frame = getattr(chunks, "gi_frame", None)
            line = template.get_corresponding_lineno(frame.f_lineno) if frame is not None else None
            error = _refuse(f"the output would be longer than {limit} characters")
            error.template_line = line  # type: ignore[attr-defined]
            raise error
        yield chunk


class SpecSandbox(ImmutableSandboxedEnvironment):
    """Jinja's immutable sandbox, plus: values are read-only data, and every render is bounded
    (see the module docstring)."""

    intercepted_binops = frozenset({"**", "*", "+", "%"})
    code_generator_class = _GuardedCodeGenerator
    template_class = GuardedTemplate

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._attribute_decisions: dict[tuple[type, str], bool] = {}
        self._budget = _Budget()
        for name, check in _FILTER_CHECKS.items():
            self.filters[name] = _guarded_filter(self.filters[name], check)

    # --- budgets ---------------------------------------------------------------------------

    def budget(self) -> _BudgetScope:
        """Context manager: a fresh budget for an outermost render (nested renders share it)."""
        return _BudgetScope(self._budget)

    def step(self, count: int = 1) -> None:
        """Spend `count` steps of the current render's budget."""
        budget = self._budget
        budget.steps += count
        if budget.steps > MAX_STEPS:
            raise _refuse(f"more than {MAX_STEPS} loop iterations and calls in one template")
        if budget.steps % 1024 == 0 and budget.deadline and time.monotonic() > budget.deadline:
            raise _refuse(f"the template ran for more than {MAX_SECONDS:.0f} s")

    def counted(self, iterable: Iterable[Any]) -> Iterator[Any]:
        """A for loop's items, each one a step (called by the generated code of every loop)."""
        step = self.step
        for item in iterable:
            step()
            yield item

    def concatenated(self, pieces: tuple[Any, ...]) -> str:
        """`a ~ b ~ c`, refused before it makes a text longer than `MAX_TEXT`."""
        texts = [str(piece) for piece in pieces]
        _check_text(sum(len(t) for t in texts), "'~'")
        return "".join(texts)

    # --- sandbox hooks -----------------------------------------------------------------------

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

    def wrap_str_format(self, value: Any) -> Callable[..., str] | None:
        wrapper = super().wrap_str_format(value)
        if wrapper is None:
            return None
        formatter = _BoundedFormatter(self)
        f_self, is_map = value.__self__, value.__name__ == "format_map"

        def bounded(*args: Any, **kwargs: Any) -> str:
            if is_map:
                if kwargs or len(args) != 1:
                    raise TypeError("format_map() takes exactly one argument and no keywords")
                return str(formatter.vformat(f_self, (), args[0]))
            return str(formatter.vformat(f_self, args, kwargs))

        return update_wrapper(bounded, value)

    def call(self, context: Any, obj: Any, /, *args: Any, **kwargs: Any) -> Any:
        self.step()
        if isinstance(getattr(obj, "__self__", None), str):
            _check_str_method(obj.__self__, obj.__name__, args, kwargs)
        return super().call(context, obj, *args, **kwargs)

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        if operator == "**":
            exponents = np.asarray(right, dtype=object).flat if isinstance(right, np.ndarray) else [right]
            for exponent in exponents:
                if isinstance(exponent, (int, float, sympy.Number)) and abs(exponent) > MAX_EXPONENT:
                    raise SecurityError(f"exponent {exponent} is too large (at most {MAX_EXPONENT})")
            bits = _bits(left)
            if bits is not None and isinstance(right, (int, sympy.Integer)) and bits * abs(int(right)) > MAX_BITS:
                raise _refuse(f"the power would have about {bits * abs(int(right))} bits (at most {MAX_BITS})")
        if operator == "*":
            for seq, count in ((left, right), (right, left)):
                if (isinstance(seq, (str, list, tuple)) and isinstance(count, int)
                        and count * max(len(seq), 1) > MAX_REPEAT):
                    raise SecurityError(
                        f"repeating a text or list {count} times is too much (at most {MAX_REPEAT} items)"
                    )
            left_bits, right_bits = _bits(left), _bits(right)
            if left_bits is not None and right_bits is not None and left_bits + right_bits > MAX_BITS:
                raise _refuse(f"the product would have about {left_bits + right_bits} bits (at most {MAX_BITS})")
        if operator == "+":
            sizes = (_length(left), _length(right))
            if sizes[0] is not None and sizes[1] is not None:
                _check_text(sizes[0] + sizes[1], "'+'")
        if operator == "%" and isinstance(left, str):
            _check_percent(left)
        return super().call_binop(context, operator, left, right)


class _BudgetScope:
    def __init__(self, budget: _Budget):
        self._budget = budget

    def __enter__(self) -> None:
        budget = self._budget
        if budget.depth == 0:
            budget.steps, budget.deadline = 0, time.monotonic() + MAX_SECONDS
        budget.depth += 1

    def __exit__(self, *exc: object) -> None:
        self._budget.depth -= 1


def _check_str_method(text: str, name: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    """Refuse a str method call that would allocate more than the budgets allow."""
    if name in ("center", "ljust", "rjust", "zfill") and args and isinstance(args[0], int):
        _check_text(args[0], f"str.{name}")
    elif name == "expandtabs":
        size = args[0] if args and isinstance(args[0], int) else kwargs.get("tabsize", 8)
        _check_text(len(text) + text.count("\t") * max(int(size), 0), "str.expandtabs")
    elif name == "replace" and len(args) >= 2:
        _check_text(_replaced_size(text, args[0], args[1], args[2] if len(args) > 2 else -1), "str.replace")
    elif name == "join" and args:
        _check_text(_joined_size(args[0], text), "str.join")
    elif name == "translate":
        raise _refuse("str.translate is not allowed in a template")


def _replaced_size(text: str, old: Any, new: Any, count: Any) -> int:
    old, new = str(old), str(new)
    found = text.count(old) if old else len(text) + 1
    if isinstance(count, int) and count >= 0:
        found = min(found, count)
    return len(text) + found * (len(new) - len(old))


def _joined_size(items: Any, separator: str) -> int:
    size = 0
    for n, item in enumerate(items if isinstance(items, (list, tuple, str)) else []):
        size += len(item) if isinstance(item, str) else len(str(item))
        size += len(separator) if n else 0
        if size > MAX_TEXT:
            break
    return size


# Filters that can make a large text from a small one: what each would make, checked before it runs.
def _center(value: Any, width: Any = 80, *rest: Any, **kwargs: Any) -> None:
    if isinstance(width, int):
        _check_text(width, "center")


def _indent(value: Any, width: Any = 4, *rest: Any, **kwargs: Any) -> None:
    text = str(value)
    size = width if isinstance(width, int) else len(str(width))
    _check_text(len(text) + (text.count("\n") + 1) * max(size, 0), "indent")


def _format(value: Any, *args: Any, **kwargs: Any) -> None:
    _check_percent(str(value))


def _replace(eval_ctx: Any, value: Any, old: Any = "", new: Any = "", count: Any = None) -> None:
    _check_text(_replaced_size(str(value), old, new, -1 if count is None else count), "replace")


def _wordwrap(environment: Any, value: Any, width: Any = 79, break_long_words: Any = True, wrapstring: Any = None,
              *rest: Any, **kwargs: Any) -> None:
    text = str(value)
    _check_text(len(text) * (1 + len(str(wrapstring or "\n"))), "wordwrap")


def _counted_items(value: Any, count: Any = 1, *rest: Any, **kwargs: Any) -> None:
    if isinstance(count, int) and count > MAX_REPEAT:
        raise _refuse(f"{count} slices or batches are too many (at most {MAX_REPEAT})")


def _join(eval_ctx: Any, value: Any, d: Any = "", attribute: Any = None) -> None:
    if attribute is None:
        _check_text(_joined_size(value, str(d)), "join")


_FILTER_CHECKS: dict[str, Callable[..., None]] = {
    "center": _center, "indent": _indent, "format": _format, "replace": _replace, "wordwrap": _wordwrap,
    "batch": _counted_items, "slice": _counted_items, "join": _join,
}


def _guarded_filter(function: Callable[..., Any], check: Callable[..., None]) -> Callable[..., Any]:
    def guarded(*args: Any, **kwargs: Any) -> Any:
        check(*args, **kwargs)
        result = function(*args, **kwargs)
        if isinstance(result, str):
            _check_text(len(result), function.__name__)
        return result

    return update_wrapper(guarded, function)  # (keeps Jinja's pass_eval_context marks)

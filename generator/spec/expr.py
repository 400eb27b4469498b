"""Safe expressions for specs: parsed with `ast`, checked against a whitelist, evaluated by us.

Why not `eval`, `exec` or `sympy.sympify`: all three execute Python (sympify calls eval), so a
question bank shared by a colleague could run `__import__('os').system(...)`. Here spec text is
only ever handed to `ast.parse`, which builds a syntax tree and runs nothing; every node type,
name and function is then checked against the tables below, and we walk the tree ourselves.

One parsed tree is evaluated by two backends: `EXACT` works on numpy object arrays of SymPy
numbers and symbols (the answer key), `NUMERIC` on float arrays (the independent check). Arrays
follow numpy's rules: `@` is matrix product, `*` is elementwise, `.T` transposes.
"""

from __future__ import annotations

import ast
import difflib
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import Any, cast

import numpy as np
import sympy

from generator.errors import ExpressionError, Location

__all__ = ["Expr", "Backend", "EXACT", "NUMERIC", "FUNCTIONS", "parse_expression", "evaluate", "inputs_of"]


@dataclass(frozen=True, slots=True)
class Expr:
    """A validated expression: its source text, syntax tree and the free names it uses."""

    text: str
    tree: ast.Expression
    names: frozenset[str]
    where: Location


_BINOPS = {ast.Add: "+", ast.Sub: "-", ast.Mult: "*", ast.Div: "/", ast.Pow: "**", ast.MatMult: "@"}
_CMPOPS = (ast.Lt, ast.LtE, ast.Gt, ast.GtE, ast.Eq, ast.NotEq)
CONSTANTS = ("e", "pi")


@dataclass(frozen=True, slots=True)
class _Function:
    min_args: int
    max_args: int
    doc: str


FUNCTIONS: dict[str, _Function] = {
    "exp": _Function(1, 1, "elementwise e^x"),
    "log": _Function(1, 1, "elementwise natural logarithm"),
    "sqrt": _Function(1, 1, "elementwise square root"),
    "abs": _Function(1, 1, "elementwise absolute value"),
    "sigmoid": _Function(1, 1, "elementwise 1/(1+e^-x)"),
    "tanh": _Function(1, 1, "elementwise hyperbolic tangent"),
    "relu": _Function(1, 1, "elementwise max(0, x)"),
    "step": _Function(1, 1, "elementwise unit step: 1 for x > 0, 0 for x < 0 (the derivative of relu)"),
    "softmax": _Function(1, 1, "softmax over the last axis"),
    "sum": _Function(1, 2, "sum(a) sums every entry, sum(a, axis) one axis"),
    "outer": _Function(2, 2, "outer product: outer(a, b)[i, j] = a[i] b[j]"),
    "dot": _Function(2, 2, "inner product of two vectors"),
    "transpose": _Function(1, 5, "transpose(a) reverses the axes (a.T); transpose(a, 0, 2, 1) reorders them"),
    "ones": _Function(1, 2, "ones(n) or ones(n, m)"),
    "zeros": _Function(1, 2, "zeros(n) or zeros(n, m)"),
    "eye": _Function(1, 1, "identity matrix eye(n)"),
    "min": _Function(1, 1, "smallest entry"),
    "max": _Function(1, 1, "largest entry"),
    "all": _Function(1, 1, "every entry true / nonzero"),
    "any": _Function(1, 1, "some entry true / nonzero"),
    "nonzero": _Function(1, 1, "every entry is nonzero"),
    "nonzero_rows": _Function(1, 1, "no row of the matrix is all zero"),
    "nonzero_cols": _Function(1, 1, "no column of the matrix is all zero"),
    "distinct": _Function(1, 1, "all entries differ"),
}


MAX_LENGTH = 2000


def parse_expression(
    text: Any,
    where: Location,
    allowed_names: set[str] | frozenset[str],
    what: str,
    defined_later: Mapping[str, str] | None = None,
) -> Expr:
    """Parse and validate `text`; `what` names the spec key (e.g. `define.u`) in messages.

    Args:
        defined_later: names the spec defines further down, each with where (e.g.
            `define.w at line 12`), so that using one too early gets a precise message.

    Raises:
        ExpressionError: syntax outside the whitelist, unknown name or function, bad arity.
    """
    if isinstance(text, bool) or not isinstance(text, (str, int, float)):
        raise ExpressionError(f"{where}: {what}: expected an expression (text), got {_describe(text)}")
    source = str(text).strip()
    if not source:
        raise ExpressionError(f"{where}: {what}: expected an expression, got an empty string")
    if len(source) > MAX_LENGTH:
        raise ExpressionError(
            f"{where}: {what}: expected an expression of at most {MAX_LENGTH} characters, got {len(source)}"
        )
    try:
        tree = ast.parse(source, mode="eval")
    except SyntaxError as e:
        col = (e.offset or 1)
        raise ExpressionError(f"{where}: {what}: syntax error at column {col} of '{_one_line(source)}'") from None
    except (RecursionError, MemoryError):
        raise ExpressionError(f"{where}: {what}: expression is nested too deeply") from None
    names: set[str] = set()
    try:
        _check(tree.body, source, where, what, frozenset(allowed_names), names, defined_later or {})
    except RecursionError:
        raise ExpressionError(f"{where}: {what}: expression is nested too deeply") from None
    return Expr(source, tree, frozenset(names), where)


def _one_line(source: str) -> str:
    """Expression text for a one-line message (a block scalar may span lines)."""
    return source.replace("\r", "\\r").replace("\n", "\\n")


def _describe(value: Any) -> str:
    if value is None:
        return "nothing (null)"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    return f"{type(value).__name__} {value!r}"


def _check(
    node: ast.AST, source: str, where: Location, what: str, allowed: frozenset[str], names: set[str],
    later: Mapping[str, str],
) -> None:
    def fail(message: str) -> ExpressionError:
        col = getattr(node, "col_offset", 0) + 1
        return ExpressionError(f"{where}: {what}: {message} (column {col} of '{_one_line(source)}')")

    def recurse(child: ast.AST) -> None:
        _check(child, source, where, what, allowed, names, later)

    if isinstance(node, ast.Constant):
        if isinstance(node.value, bool) or not isinstance(node.value, (int, float)):
            raise fail(f"only numbers are allowed as constants, got {node.value!r}")
    elif isinstance(node, ast.Name):
        if node.id in FUNCTIONS:
            raise fail(f"'{node.id}' is a function; call it as {node.id}(...)")
        if node.id not in allowed and node.id in later:
            raise fail(f"'{node.id}' is used before it is defined: {later[node.id]}")
        if node.id not in allowed and node.id not in CONSTANTS:
            hint = _did_you_mean(node.id, [*allowed, *CONSTANTS])
            raise fail(f"unknown name '{node.id}'{hint}")
        names.add(node.id)
    elif isinstance(node, ast.BinOp):
        if type(node.op) not in _BINOPS:
            raise fail(f"operator {type(node.op).__name__} is not allowed")
        recurse(node.left)
        recurse(node.right)
    elif isinstance(node, ast.UnaryOp):
        if not isinstance(node.op, (ast.USub, ast.UAdd, ast.Not)):
            raise fail(f"operator {type(node.op).__name__} is not allowed")
        recurse(node.operand)
    elif isinstance(node, ast.BoolOp):
        for value in node.values:
            recurse(value)
    elif isinstance(node, ast.Compare):
        if not all(isinstance(op, _CMPOPS) for op in node.ops):
            raise fail("only the comparisons < <= > >= == != are allowed")
        recurse(node.left)
        for comparator in node.comparators:
            recurse(comparator)
    elif isinstance(node, ast.Call):
        if not isinstance(node.func, ast.Name):
            raise fail("only calls of the listed functions are allowed, e.g. exp(x)")
        name = node.func.id
        if name not in FUNCTIONS:
            hint = _did_you_mean(name, list(FUNCTIONS))
            raise fail(f"unknown function '{name}'{hint}")
        if node.keywords:
            raise fail(f"{name}() takes no keyword arguments")
        spec = FUNCTIONS[name]
        if not spec.min_args <= len(node.args) <= spec.max_args:
            expected = str(spec.min_args) if spec.min_args == spec.max_args else f"{spec.min_args} to {spec.max_args}"
            raise fail(f"{name}() takes {expected} argument(s), got {len(node.args)}")
        for arg in node.args:
            if isinstance(arg, ast.Starred):
                raise fail("*args is not allowed")
            recurse(arg)
    elif isinstance(node, ast.Attribute):
        if node.attr != "T":
            raise fail(f"attribute '.{node.attr}' is not allowed (only .T, the transpose)")
        recurse(node.value)
    elif isinstance(node, ast.Subscript):
        recurse(node.value)
        index = node.slice
        items = index.elts if isinstance(index, ast.Tuple) else [index]
        for item in items:
            if not (isinstance(item, ast.Constant) and type(item.value) is int):
                raise fail("indices must be integer literals, e.g. x[0] or W[1, 2]")
    else:
        raise fail(f"{type(node).__name__} syntax is not allowed in expressions")


def _did_you_mean(name: str, options: list[str]) -> str:
    close = difflib.get_close_matches(name, options, n=1)
    return f"; did you mean '{close[0]}'?" if close else ""


def inputs_of(definitions: Sequence[tuple[str, Expr]], wanted: Iterable[str]) -> frozenset[str]:
    """The `wanted` names and every name they use, directly or through `definitions` (ordered:
    a definition uses only names defined before it)."""
    needed = set(wanted)
    for name, expr in reversed(definitions):
        if name in needed:
            needed |= expr.names
    return frozenset(needed)


# --- evaluation -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Backend:
    """How numbers and elementwise functions are made: exact (SymPy) or numeric (float)."""

    name: str
    number: Callable[[int | float], Any]
    constants: Mapping[str, Any]
    unary: Mapping[str, Callable[[Any], Any]]
    dtype: Any


def _exact_number(value: int | float) -> Any:
    if isinstance(value, int):
        return sympy.Integer(value)
    # The decimal a lecturer wrote, as an exact fraction (0.1 -> 1/10, not a binary float).
    fraction = Fraction(repr(value))
    return sympy.Rational(fraction.numerator, fraction.denominator)


def _np_sigmoid(x: Any) -> Any:
    return 1.0 / (1.0 + np.exp(-x))


EXACT = Backend(
    name="exact",
    number=_exact_number,
    constants={"e": sympy.E, "pi": sympy.pi},
    unary={
        "exp": sympy.exp,
        "log": sympy.log,
        "sqrt": sympy.sqrt,
        "abs": sympy.Abs,
        "sigmoid": lambda x: 1 / (1 + sympy.exp(-x)),
        # In terms of e, like sigmoid and softmax: tanh(2) would be exact but opaque in a key.
        "tanh": lambda x: (sympy.exp(2 * x) - 1) / (sympy.exp(2 * x) + 1),
        "relu": lambda x: sympy.Max(0, x),
        "step": lambda x: sympy.Heaviside(x, sympy.Rational(1, 2)),
    },
    dtype=object,
)

NUMERIC = Backend(
    name="numeric",
    number=float,
    constants={"e": math.e, "pi": math.pi},
    unary={
        "exp": np.exp,
        "log": np.log,
        "sqrt": np.sqrt,
        "abs": np.abs,
        "sigmoid": _np_sigmoid,
        "tanh": np.tanh,
        "relu": lambda x: np.maximum(0.0, x),
        "step": lambda x: np.heaviside(x, 0.5),
    },
    dtype=float,
)


def evaluate(expr: Expr, env: Mapping[str, Any], backend: Backend) -> np.ndarray:
    """Evaluate a parsed expression; returns an array (0-d for scalars).

    Raises:
        ExpressionError: shapes that do not fit (e.g. `W @ b` with the wrong sizes).
    """
    try:
        return np.asarray(_compiled(expr.tree.body)(env, backend), dtype=backend.dtype)
    except (ValueError, TypeError, IndexError, ArithmeticError, RecursionError) as e:
        raise ExpressionError(f"{expr.where}: cannot evaluate '{_one_line(expr.text)}': {_short(e)}") from None


def _short(e: Exception) -> str:
    text = str(e).splitlines()[0] if str(e) else type(e).__name__
    return text


def _wrap(value: Any, backend: Backend) -> np.ndarray:
    array = np.empty((), dtype=backend.dtype)
    array[()] = value
    return array


# An expression is evaluated thousands of times in a build (each draw's constraints, each step of
# the finite differences): its syntax tree is turned once into nested functions, one per node,
# which skip the node-type tests a tree walk repeats at every evaluation. Each does what the
# node means, in the same order (left before right, every operand of `and`/`or` and of a chained
# comparison), so the values and the errors are the same. Kept on the tree itself.
_Code = Callable[[Mapping[str, Any], Backend], Any]


def _compiled(node: ast.AST) -> _Code:
    code = getattr(node, "_generator_code", None)
    if code is None:
        code = _compile(node)
        node._generator_code = code  # type: ignore[attr-defined]
    return code


def _compile(node: ast.AST) -> _Code:
    if isinstance(node, ast.Constant):
        literal = cast(int | float, node.value)  # (`_check` lets only numbers through)
        return lambda env, be: _wrap(be.number(literal), be)
    if isinstance(node, ast.Name):
        name = node.id

        def load(env: Mapping[str, Any], be: Backend) -> Any:
            if name in env:
                return np.asarray(env[name], dtype=be.dtype)
            return _wrap(be.constants[name], be)
        return load
    if isinstance(node, ast.BinOp):
        return _binary(type(node.op), _compiled(node.left), _compiled(node.right))
    if isinstance(node, ast.UnaryOp):
        operand = _compiled(node.operand)
        if isinstance(node.op, ast.USub):
            return lambda env, be: -operand(env, be)
        if isinstance(node.op, ast.UAdd):
            return operand
        return lambda env, be: np.logical_not(_truth(operand(env, be)))
    if isinstance(node, ast.BoolOp):
        values = [_compiled(v) for v in node.values]
        combine = np.logical_and if isinstance(node.op, ast.And) else np.logical_or

        def boolean(env: Mapping[str, Any], be: Backend) -> Any:
            truths = [_truth(value(env, be)) for value in values]
            result = truths[0]
            for truth in truths[1:]:
                result = combine(result, truth)
            return result
        return boolean
    if isinstance(node, ast.Compare):
        first = _compiled(node.left)
        chain = [(op, _compiled(comparator)) for op, comparator in zip(node.ops, node.comparators, strict=True)]

        def compare(env: Mapping[str, Any], be: Backend) -> Any:
            left = first(env, be)
            result = np.asarray(True)
            for op, comparator in chain:
                right = comparator(env, be)
                result = np.logical_and(result, _compare(op, left, right))
                left = right
            return result
        return compare
    if isinstance(node, ast.Attribute):  # only .T passes validation
        value = _compiled(node.value)
        return lambda env, be: value(env, be).T
    if isinstance(node, ast.Subscript):
        value = _compiled(node.value)
        index = node.slice
        items = tuple(item.value for item in (index.elts if isinstance(index, ast.Tuple) else [index]))  # type: ignore[attr-defined]
        return lambda env, be: np.asarray(value(env, be)[items], dtype=be.dtype)
    assert isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
    function, arguments = node.func.id, [_compiled(arg) for arg in node.args]
    return lambda env, be: _call(function, [argument(env, be) for argument in arguments], be)


def _binary(op: type, left: _Code, right: _Code) -> _Code:
    if op is ast.Add:
        return lambda env, be: left(env, be) + right(env, be)
    if op is ast.Sub:
        return lambda env, be: left(env, be) - right(env, be)
    if op is ast.Mult:
        return lambda env, be: left(env, be) * right(env, be)
    if op is ast.Div:
        return lambda env, be: left(env, be) / right(env, be)
    if op is ast.Pow:
        def power(env: Mapping[str, Any], be: Backend) -> Any:
            base, exponent = left(env, be), right(env, be)
            _check_exponent(exponent)
            return base**exponent
        return power

    def matmul(env: Mapping[str, Any], be: Backend) -> Any:
        a, b = left(env, be), right(env, be)
        if a.ndim == 0 or b.ndim == 0:
            raise ValueError("'@' needs vectors or matrices on both sides; use * with a scalar")
        return np.matmul(a, b)
    return matmul


# Elementwise Python functions as numpy ufuncs over object arrays, made once: np.vectorize
# makes a new one on every call, which cost more than the few entries it then works on.
_COMPARISONS = {
    ast.Lt: np.frompyfunc(lambda a, b: bool(a < b), 2, 1),
    ast.LtE: np.frompyfunc(lambda a, b: bool(a <= b), 2, 1),
    ast.Gt: np.frompyfunc(lambda a, b: bool(a > b), 2, 1),
    ast.GtE: np.frompyfunc(lambda a, b: bool(a >= b), 2, 1),
    ast.Eq: np.frompyfunc(lambda a, b: bool(a == b), 2, 1),
    ast.NotEq: np.frompyfunc(lambda a, b: bool(a != b), 2, 1),
}
_NONZERO = np.frompyfunc(lambda v: bool(v != 0), 1, 1)
_EXACT_UNARY = {name: np.frompyfunc(func, 1, 1) for name, func in EXACT.unary.items()}


def _compare(op: ast.cmpop, left: Any, right: Any) -> np.ndarray:
    # Exact values are SymPy numbers: compare them as exact rationals/reals, elementwise.
    return np.asarray(_COMPARISONS[type(op)](left, right), dtype=bool)


def _truth(value: Any) -> np.ndarray:
    if value.dtype == bool:
        return value
    return np.asarray(_NONZERO(value), dtype=bool)


# Limits that keep a hostile or mistyped spec from hanging the tool (`2 ** 10 ** 10` would
# compute a number with ten billion digits; `ones(10 ** 9)` would fill the memory).
MAX_EXPONENT = 100
MAX_SIZE = 100


def _check_exponent(exponent: Any) -> None:
    for value in np.asarray(exponent, dtype=object).flat:
        if (isinstance(value, (int, float)) or getattr(value, "is_Number", False)) and abs(value) > MAX_EXPONENT:
            raise ValueError(f"exponent {value} is too large (at most {MAX_EXPONENT} in absolute value)")


def _size(value: Any) -> int:
    if value.ndim != 0:
        raise ValueError("sizes must be single numbers, e.g. ones(n)")
    number = value[()]
    if int(number) != number or int(number) < 0:
        raise ValueError(f"size must be a whole number >= 0, got {number}")
    if int(number) > MAX_SIZE:
        raise ValueError(f"size {int(number)} is too large (at most {MAX_SIZE})")
    return int(number)


def _call(name: str, args: list[Any], be: Backend) -> Any:
    if name in be.unary:
        if be.dtype is object:
            operand = np.asarray(args[0], dtype=object)  # (an operation on 0-d arrays gives a bare number)
            result = _EXACT_UNARY[name](operand)
            return _wrap(result, be) if operand.ndim == 0 else result
        return be.unary[name](args[0])
    a = args[0]
    if name == "softmax":
        if a.ndim == 0:
            raise ValueError("softmax needs a vector")
        exps = _call("exp", [a], be)
        return exps / exps.sum(axis=-1, keepdims=True)
    if name == "sum":
        if len(args) == 2:
            return a.sum(axis=_size(args[1]))
        return _wrap(a.sum(), be) if be.dtype is object else np.asarray(a.sum())
    if name == "outer":
        return np.multiply.outer(a, args[1])
    if name == "dot":
        if a.ndim != 1 or args[1].ndim != 1:
            raise ValueError("dot needs two vectors")
        return _wrap(np.dot(a, args[1]), be) if be.dtype is object else np.dot(a, args[1])
    if name == "transpose":
        if len(args) == 1:
            return a.T
        axes = tuple(_size(arg) for arg in args[1:])
        if sorted(axes) != list(range(a.ndim)):
            raise ValueError(
                f"transpose of an order-{a.ndim} array needs a reordering of 0..{a.ndim - 1}, got {list(axes)}"
            )
        return a.transpose(axes)
    if name in ("ones", "zeros"):
        shape = tuple(_size(arg) for arg in args)
        fill = be.number(1 if name == "ones" else 0)
        array = np.empty(shape, dtype=be.dtype)
        array[...] = fill
        return array
    if name == "eye":
        n = _size(a)
        array = np.empty((n, n), dtype=be.dtype)
        array[...] = be.number(0)
        for i in range(n):
            array[i, i] = be.number(1)
        return array
    if name in ("min", "max"):
        flat = list(a.flat)
        if not flat:
            raise ValueError(f"{name} of an empty array")
        return _wrap((min if name == "min" else max)(flat), be)
    truth = _truth(a)
    if name in ("all", "nonzero"):
        return np.asarray(bool(truth.all()))
    if name == "any":
        return np.asarray(bool(truth.any()))
    if name in ("nonzero_rows", "nonzero_cols"):
        if a.ndim != 2:
            raise ValueError(f"{name} needs a matrix")
        axis = 1 if name == "nonzero_rows" else 0
        return np.asarray(bool(truth.any(axis=axis).all()))
    if name == "distinct":
        flat = list(a.flat)
        return np.asarray(len(set(flat)) == len(flat))
    raise AssertionError(f"function {name} passed validation but has no implementation")

"""Index notation in specs, e.g. `u[j]: sum(W[j, k] * x[k], k) + b[j]`, parsed safely into SymPy.

Why a parser of our own (the same rationale as `generator.spec.expr`): `sympify` and `parse_expr`
call `eval`, so a shared bank could run code through them. Spec text here only ever reaches
`ast.parse`, which runs nothing; every node, name and function is checked against the whitelist
below, and the SymPy objects (`IndexedBase`, `KroneckerDelta`, `Sum`, ...) are built node by node
from the checked tree. No spec string is handed to eval, exec, sympify or parse_expr.

The language:
    numbers, + - * / **, unary -, the constants e and pi;
    a parameter or definition: `x` (scalar) or `W[j, k]` (one index name per axis);
    sum(expr, k) or sum(expr, n, k): the sum over the listed indices, each from 1 to its size;
    delta(i, j): the Kronecker delta;
    exp, log, sqrt, sigmoid, tanh, relu, step (the unit step, 1 for x > 0): elementwise.

Each index runs over a dimension declared in `index.ranges`. `W[j, k]` is accepted only when j
and k run over W's dimensions, a definition's free indices must be exactly those of its name, and
the free indices of two added terms must nest (b_j may be added to a term in n and j), so most
index typos are reported when the file is loaded, with file:line:col.

The module also evaluates such SymPy expressions numerically at given indices and values (used
to check index forms against the concrete Jacobian) and prints them as textbook LaTeX
(`\\sum_k w_{jk} x_k`, `\\delta_{ij}`).
"""

from __future__ import annotations

import ast
import difflib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from fractions import Fraction
from functools import lru_cache
from typing import Any

import numpy as np
import sympy
from sympy.core.function import ArgumentIndexError
from sympy.printing.latex import LatexPrinter

from generator.errors import ExpressionError, Location

__all__ = [
    "INDEX_FUNCTIONS",
    "IndexExpr",
    "IndexRef",
    "IndexScope",
    "entry_symbol",
    "evaluate_index_expression",
    "index_grid_evaluator",
    "index_symbol",
    "latex_index",
    "parse_index_expression",
    "parse_index_ref",
    "sigmoid",
    "size_symbol",
]


class sigmoid(sympy.Function):
    """The logistic function 1/(1 + e^-x); SymPy differentiates it as sigmoid(x) (1 - sigmoid(x))."""

    def fdiff(self, argindex: int = 1) -> sympy.Expr:
        if argindex != 1:
            raise ArgumentIndexError(self, argindex)
        s = sigmoid(self.args[0])
        return s * (1 - s)

    def _eval_rewrite_as_exp(self, arg: sympy.Expr, **kwargs: Any) -> sympy.Expr:
        return 1 / (1 + sympy.exp(-arg))

    def _eval_is_real(self) -> bool | None:
        return self.args[0].is_real


INDEX_FUNCTIONS: dict[str, Callable[[sympy.Expr], sympy.Expr]] = {
    "exp": sympy.exp,
    "log": sympy.log,
    "sqrt": sympy.sqrt,
    "sigmoid": sigmoid,
    "tanh": sympy.tanh,
    "relu": lambda x: sympy.Max(0, x),
    "step": lambda x: sympy.Heaviside(x, 0),  # 0 at 0, as relu's derivative (docs/bank.md)
}
_SPECIAL = ("sum", "delta")
_CONSTANTS = {"e": sympy.E, "pi": sympy.pi}


def index_symbol(name: str) -> sympy.Symbol:
    """The SymPy symbol of an index (a positive integer)."""
    return sympy.Symbol(name, integer=True, positive=True)


def size_symbol(dimension: str | int) -> sympy.Expr:
    """The size an index runs up to: a fixed number, or a symbol standing for a dimension."""
    if isinstance(dimension, int):
        return sympy.Integer(dimension)
    # The colon keeps it apart from every spec name; it is never printed (sums print as \sum_k).
    return sympy.Symbol(f"size:{dimension}", integer=True, positive=True)


def entry_symbol(name: str, rank: int) -> sympy.Symbol | sympy.IndexedBase:
    """A scalar parameter or definition as a real symbol; an array as an `IndexedBase`."""
    return sympy.IndexedBase(name, real=True) if rank else sympy.Symbol(name, real=True)


@dataclass(frozen=True, slots=True)
class IndexScope:
    """What index notation may refer to.

    Attributes:
        ranges: index name -> the dimension name (or fixed size) it runs over.
        shapes: parameter or definition name -> the dimension of each axis (() for a scalar).
    """

    ranges: Mapping[str, str | int]
    shapes: Mapping[str, tuple[str | int, ...]]


@dataclass(frozen=True, slots=True)
class IndexRef:
    """A named entry with index names, such as `u[j]`, `W[i, l]` or `E`."""

    name: str
    indices: tuple[str, ...]

    def symbol(self) -> sympy.Expr:
        """`u[j]` as SymPy's `u[j]` (an `Indexed`), `E` as the symbol `E`."""
        base = entry_symbol(self.name, len(self.indices))
        return base[tuple(index_symbol(i) for i in self.indices)] if self.indices else base

    def __str__(self) -> str:
        return f"{self.name}[{', '.join(self.indices)}]" if self.indices else self.name


@dataclass(frozen=True, slots=True)
class IndexExpr:
    """A validated index-notation expression and the SymPy expression built from it."""

    text: str
    value: sympy.Expr
    free: frozenset[str]
    names: frozenset[str]
    where: Location


class _Fail(Exception):
    def __init__(self, node: ast.AST | None, message: str):
        super().__init__(message)
        self.col = getattr(node, "col_offset", 0) + 1
        self.message = message


def _did_you_mean(name: str, options: list[str]) -> str:
    close = difflib.get_close_matches(name, options, n=1)
    return f"; did you mean '{close[0]}'?" if close else ""


def _parse(text: Any, where: Location, what: str) -> tuple[str, ast.expr]:
    if isinstance(text, bool) or not isinstance(text, (str, int, float)):
        raise ExpressionError(f"{where}: {what}: expected an index-notation expression (text), got {text!r}")
    source = str(text).strip()
    if not source:
        raise ExpressionError(f"{where}: {what}: expected an expression, got an empty string")
    try:
        return source, ast.parse(source, mode="eval").body
    except SyntaxError as e:
        raise ExpressionError(f"{where}: {what}: syntax error at column {e.offset or 1} of '{source}'") from None


def _fail_message(where: Location, what: str, source: str, e: _Fail) -> str:
    return f"{where}: {what}: {e.message} (column {e.col} of '{source}')"


def _index_names(node: ast.expr) -> list[ast.expr]:
    return list(node.elts) if isinstance(node, ast.Tuple) else [node]


def parse_index_ref(text: Any, where: Location, scope: IndexScope, what: str, *, new: bool = False) -> IndexRef:
    """Parse `u[j]`, `W[i, l]` or `E`.

    With `new=True` the name is being defined (a key of `index.define`); otherwise it must be a
    known parameter or definition, with one index per axis running over that axis' dimension.

    Raises:
        ExpressionError: not of that form, an unknown name or index, or indices that do not fit.
    """
    source, node = _parse(text, where, what)
    try:
        if isinstance(node, ast.Name):
            name, index_nodes = node.id, []
        elif isinstance(node, ast.Subscript) and isinstance(node.value, ast.Name):
            name, index_nodes = node.value.id, _index_names(node.slice)
        else:
            raise _Fail(node, "expected a name with index names, e.g. u[j], W[i, l] or E")
        indices = []
        for item in index_nodes:
            if not isinstance(item, ast.Name):
                raise _Fail(item, "indices must be index names from index.ranges, e.g. u[j]")
            if item.id not in scope.ranges:
                raise _Fail(
                    item,
                    f"unknown index '{item.id}'{_did_you_mean(item.id, list(scope.ranges))} "
                    "(declare it in index.ranges)",
                )
            indices.append(item.id)
        if len(set(indices)) != len(indices):
            raise _Fail(node, "each index name may appear only once")
        if new:
            if name in _CONSTANTS or name in INDEX_FUNCTIONS or name in _SPECIAL or name in scope.ranges:
                raise _Fail(node, f"'{name}' is reserved (a function, constant or index name); choose another name")
        else:
            _check_entry(node, name, [index_symbol(i) for i in indices], scope)
    except _Fail as e:
        raise ExpressionError(_fail_message(where, what, source, e)) from None
    return IndexRef(name, tuple(indices))


def _check_entry(node: ast.AST, name: str, indices: list[sympy.Symbol], scope: IndexScope) -> None:
    if name not in scope.shapes:
        raise _Fail(node, f"unknown name '{name}'{_did_you_mean(name, list(scope.shapes))}")
    shape = scope.shapes[name]
    if len(indices) != len(shape):
        if not shape:
            raise _Fail(node, f"'{name}' is a scalar; write {name} without indices")
        raise _Fail(
            node,
            f"'{name}' has {len(shape)} ax{'is' if len(shape) == 1 else 'es'}; write one index per axis, "
            f"e.g. {name}[{', '.join('ijkl'[: len(shape)])}]",
        )
    for axis, (index, dimension) in enumerate(zip(indices, shape, strict=True)):
        have = scope.ranges[index.name]
        if have != dimension:
            raise _Fail(
                node,
                f"index '{index.name}' runs over {have} but axis {axis + 1} of '{name}' has size {dimension}",
            )


def parse_index_expression(
    text: Any, where: Location, scope: IndexScope, what: str, *, free: frozenset[str] | None = None,
    within: bool = False,
) -> IndexExpr:
    """Parse and validate an index-notation expression into SymPy.

    Args:
        text: the spec text, e.g. `sum(W[j, k] * x[k], k) + b[j]`.
        where: its location, for messages.
        scope: the declared indices and the names (with shapes) it may use.
        what: the spec key path shown in messages, e.g. `index.define.u[j]`.
        free: if given, the free indices the expression must have (with `within=True`: may have).

    Raises:
        ExpressionError: syntax outside the whitelist, unknown names or indices, indices that
            do not fit a name's shape, or terms of a sum with different free indices.
    """
    source, node = _parse(text, where, what)
    names: set[str] = set()
    try:
        value, found = _build(node, scope, names, frozenset())
        if free is not None and (not found <= free if within else found != free):
            wanted = f"free indices among {_show(free)}" if within else f"the free indices {_show(free)}"
            raise _Fail(node, f"expected {wanted}, got {_show(found)}")
    except _Fail as e:
        raise ExpressionError(_fail_message(where, what, source, e)) from None
    return IndexExpr(source, value, found, frozenset(names), where)


def _show(indices: frozenset[str]) -> str:
    return "{" + ", ".join(sorted(indices)) + "}" if indices else "none"


def _number(value: float) -> sympy.Expr:
    if isinstance(value, int):
        return sympy.Integer(value)
    fraction = Fraction(repr(value))
    return sympy.Rational(fraction.numerator, fraction.denominator)


def _build(
    node: ast.expr, scope: IndexScope, names: set[str], bound: frozenset[str]
) -> tuple[sympy.Expr, frozenset[str]]:
    """Build the SymPy expression of a checked node; returns it with its free index names."""
    if isinstance(node, ast.Constant):
        if isinstance(node.value, bool) or not isinstance(node.value, (int, float)):
            raise _Fail(node, f"only numbers are allowed as constants, got {node.value!r}")
        return _number(node.value), frozenset()
    if isinstance(node, ast.Name):
        if node.id in _CONSTANTS and node.id not in scope.shapes:
            return _CONSTANTS[node.id], frozenset()
        if node.id in scope.ranges:
            raise _Fail(node, f"'{node.id}' is an index; use it inside brackets, e.g. x[{node.id}]")
        if node.id in INDEX_FUNCTIONS or node.id in _SPECIAL:
            raise _Fail(node, f"'{node.id}' is a function; call it as {node.id}(...)")
        _check_entry(node, node.id, [], scope)
        names.add(node.id)
        return entry_symbol(node.id, 0), frozenset()
    if isinstance(node, ast.Subscript):
        if not isinstance(node.value, ast.Name):
            raise _Fail(node, "only names can be indexed, e.g. W[j, k]")
        indices = []
        for item in _index_names(node.slice):
            if not isinstance(item, ast.Name):
                raise _Fail(item, "indices must be index names from index.ranges, e.g. W[j, k]")
            if item.id not in scope.ranges:
                raise _Fail(
                    item,
                    f"unknown index '{item.id}'{_did_you_mean(item.id, list(scope.ranges))} "
                    "(declare it in index.ranges)",
                )
            indices.append(index_symbol(item.id))
        _check_entry(node, node.value.id, indices, scope)
        names.add(node.value.id)
        return entry_symbol(node.value.id, len(indices))[tuple(indices)], frozenset(i.name for i in indices)
    if isinstance(node, ast.UnaryOp):
        if not isinstance(node.op, (ast.USub, ast.UAdd)):
            raise _Fail(node, f"operator {type(node.op).__name__} is not allowed")
        value, free = _build(node.operand, scope, names, bound)
        return (-value if isinstance(node.op, ast.USub) else value), free
    if isinstance(node, ast.BinOp):
        left, lfree = _build(node.left, scope, names, bound)
        right, rfree = _build(node.right, scope, names, bound)
        if isinstance(node.op, (ast.Add, ast.Sub)):
            # A term may leave out indices it does not depend on (b_j in u_nj = sum_k w_jk x_nk + b_j).
            if not (lfree <= rfree or rfree <= lfree):
                raise _Fail(node, f"the terms of a sum carry different free indices, {_show(lfree)} and {_show(rfree)}")
            return (left + right if isinstance(node.op, ast.Add) else left - right), lfree | rfree
        if isinstance(node.op, ast.Mult):
            return left * right, lfree | rfree
        if isinstance(node.op, ast.Div):
            return left / right, lfree | rfree
        if isinstance(node.op, ast.Pow):
            if rfree:
                raise _Fail(node.right, "an exponent cannot carry free indices")
            return left**right, lfree
        raise _Fail(node, f"operator {type(node.op).__name__} is not allowed")
    if isinstance(node, ast.Call):
        return _build_call(node, scope, names, bound)
    raise _Fail(node, f"{type(node).__name__} syntax is not allowed in index notation")


def _build_call(
    node: ast.Call, scope: IndexScope, names: set[str], bound: frozenset[str]
) -> tuple[sympy.Expr, frozenset[str]]:
    if not isinstance(node.func, ast.Name):
        raise _Fail(node, "only calls of the listed functions are allowed, e.g. exp(u[j])")
    name = node.func.id
    if node.keywords or any(isinstance(a, ast.Starred) for a in node.args):
        raise _Fail(node, f"{name}() takes plain arguments only")
    if name == "sum":
        if len(node.args) < 2:
            raise _Fail(node, "sum() takes an expression and the indices to sum over, e.g. sum(w[j, k] * x[k], k)")
        over = []
        for item in node.args[1:]:
            if not isinstance(item, ast.Name) or item.id not in scope.ranges:
                label = item.id if isinstance(item, ast.Name) else ast.unparse(item)
                raise _Fail(item, f"sum() sums over index names from index.ranges, got '{label}'")
            if item.id in bound or item.id in over:
                raise _Fail(item, f"index '{item.id}' is already summed over here")
            over.append(item.id)
        body, free = _build(node.args[0], scope, names, bound | frozenset(over))
        limits = [(index_symbol(i), 1, size_symbol(scope.ranges[i])) for i in over]
        return sympy.Sum(body, *limits), free - frozenset(over)
    if name == "delta":
        if len(node.args) != 2 or not all(isinstance(a, ast.Name) and a.id in scope.ranges for a in node.args):
            raise _Fail(node, "delta() takes two index names, e.g. delta(i, j)")
        a, b = (arg.id for arg in node.args)  # type: ignore[attr-defined]
        if scope.ranges[a] != scope.ranges[b]:
            raise _Fail(
                node,
                f"delta({a}, {b}) compares indices over different ranges ({scope.ranges[a]} and {scope.ranges[b]})",
            )
        return sympy.KroneckerDelta(index_symbol(a), index_symbol(b)), frozenset({a, b})
    if name in INDEX_FUNCTIONS:
        if len(node.args) != 1:
            raise _Fail(node, f"{name}() takes 1 argument, got {len(node.args)}")
        value, free = _build(node.args[0], scope, names, bound)
        return INDEX_FUNCTIONS[name](value), free
    raise _Fail(node, f"unknown function '{name}'{_did_you_mean(name, [*INDEX_FUNCTIONS, *_SPECIAL])}")


# --- numeric evaluation -----------------------------------------------------------------------
#
# Expressions are evaluated over whole grids of indices at once, with numpy: a check of a 4x4x4
# Jacobian then walks the SymPy tree once instead of 64 times. Each free index is an array of its
# values (1, 2, ..., n) along its own axis; a sum puts its index on a new axis in front (numpy
# broadcasting lines arrays up from the right, so the arrays already in use fit unchanged) and
# adds along it. A single index is the grid with 0-d index arrays.


def evaluate_index_expression(
    expr: sympy.Expr,
    at: Mapping[sympy.Symbol, int],
    values: Mapping[str, Any],
    sizes: Mapping[sympy.Symbol, int],
    definitions: Mapping[str, tuple[tuple[sympy.Symbol, ...], sympy.Expr]],
) -> float:
    """Evaluate an index expression in floating point at one index, walking the SymPy tree ourselves.

    Args:
        expr: built by this module (or derived from such expressions by SymPy).
        at: index symbol -> its value, counting from 1 as the notation does.
        values: parameter name -> number or numpy array (entries are read 0-based).
        sizes: size symbol -> the dimension's value in this variant.
        definitions: defined name -> (its index symbols, its expression); evaluated on demand.

    Raises:
        ValueError: a node this evaluator does not know (a bug, not a spec error).
    """
    evaluator = _GridEvaluator(values, sizes, definitions)
    indices = {symbol: np.float64(value) for symbol, value in at.items()}
    with np.errstate(all="ignore"):
        return float(evaluator.eval(expr, indices, 0))


def index_grid_evaluator(
    values: Mapping[str, Any],
    sizes: Mapping[sympy.Symbol, int],
    definitions: Mapping[str, tuple[tuple[sympy.Symbol, ...], sympy.Expr]],
) -> Callable[[sympy.Expr, Sequence[tuple[sympy.Symbol, int]]], np.ndarray]:
    """`evaluate_index_expression` at every index of a grid, for many expressions over the same values.

    The returned function takes an expression and its axes, (index symbol, size) pairs such as
    ((j, 2), (i, 2), (l, 3)), and returns the float array of shape (2, 2, 3) whose entry
    [a, b, c] is the expression at j = a + 1, i = b + 1, l = c + 1. The entries of defined names
    (u_j, ...) are computed once per set of indices and reused across expressions.
    """
    evaluator = _GridEvaluator(values, sizes, definitions)

    def grid(expr: sympy.Expr, axes: Sequence[tuple[sympy.Symbol, int]]) -> np.ndarray:
        depth = len(axes)
        at = {}
        for axis, (symbol, size) in enumerate(axes):
            shape = [1] * depth
            shape[axis] = size
            at[symbol] = np.arange(1, size + 1, dtype=float).reshape(shape)
        # Domain errors become nan or inf, which then fail the comparison and are reported.
        with np.errstate(all="ignore"):
            value = evaluator.eval(expr, at, depth)
        return np.broadcast_to(value, tuple(size for _, size in axes))

    return grid


def _sigmoid(x: Any) -> Any:
    return 1.0 / (1.0 + np.exp(-x))


def _step(x: Any) -> Any:
    return np.where(x > 0, 1.0, 0.0)  # 0 at 0: the subgradient convention of relu (docs/bank.md)


_ELEMENTWISE: dict[type, Callable[[Any], Any]] = {
    sympy.exp: np.exp,
    sympy.log: np.log,
    sympy.tanh: np.tanh,
    sigmoid: _sigmoid,
    sympy.Heaviside: _step,  # only its argument counts: 1[x > 0], 0 at 0
}


class _GridEvaluator:
    """Evaluates over index arrays; `depth` is the number of axes the arrays in use span."""

    def __init__(
        self, values: Mapping[str, Any], sizes: Mapping[sympy.Symbol, int],
        definitions: Mapping[str, tuple[tuple[sympy.Symbol, ...], sympy.Expr]],
    ):
        self.values = values
        self.sizes = sizes
        self.definitions = definitions
        self.memo: dict[tuple[Any, ...], Any] = {}

    def entry(self, name: str, index: list[Any]) -> Any:
        """The entries of `name` at the given index arrays (broadcast together), counting from 1."""
        if name in self.values:
            value = self.values[name]
            if not index:
                return np.float64(value)
            return np.asarray(value, dtype=float)[tuple(np.asarray(i).astype(np.intp) - 1 for i in index)]
        arrays = [np.asarray(i, dtype=float) for i in index]
        key = (name, *((a.shape, a.tobytes()) for a in arrays))
        if key not in self.memo:
            symbols, body = self.definitions[name]
            depth = max((a.ndim for a in arrays), default=0)
            self.memo[key] = self.eval(body, dict(zip(symbols, arrays, strict=True)), depth)
        return self.memo[key]

    def eval(self, e: sympy.Expr, at: dict[sympy.Symbol, Any], depth: int) -> Any:
        return _evaluator_of(e)(self, at, depth)

    def _sum(self, body: sympy.Expr, limits: list[tuple[Any, ...]], at: dict[sympy.Symbol, Any], depth: int) -> Any:
        inner = dict(at)
        for var, low, high in limits:  # each summation index on a new axis in front
            first = int(self.eval(low, at, depth))
            last = int(self.eval(high, at, depth))
            depth += 1
            inner[var] = np.arange(first, last + 1, dtype=float).reshape((-1,) + (1,) * (depth - 1))
        value = np.asarray(self.eval(body, inner, depth))
        # A term without the summation index (b_j in sum_k ...) has fewer axes: count it once per index value.
        value = value.reshape((1,) * (depth - value.ndim) + value.shape)
        counts = tuple(inner[var].size for var, _, _ in reversed(limits))
        value = np.broadcast_to(value, counts + value.shape[len(limits):])
        return value.sum(axis=tuple(range(len(limits))))


# A form is evaluated for every variant (and its definitions at every set of indices): its SymPy
# tree is turned once into nested functions, one per node, instead of a walk that asks each node
# which class it is (SymPy's isinstance checks were half of the index-form checks' time). Each
# does what the walk did, in the same order, so the values are the same floats.
_Node = Callable[[_GridEvaluator, dict[sympy.Symbol, Any], int], Any]


@lru_cache(maxsize=4096)
def _evaluator_of(e: sympy.Expr) -> _Node:
    if e.is_Number or e is sympy.E or e is sympy.pi:  # singletons: `in` would compare (and sympify) each
        constant = np.float64(float(e))
        return lambda ev, at, depth: constant
    if isinstance(e, sympy.Symbol):
        name = e.name

        def symbol(ev: _GridEvaluator, at: dict[sympy.Symbol, Any], depth: int) -> Any:
            if e in at:
                return at[e]
            if e in ev.sizes:
                return np.float64(ev.sizes[e])
            return ev.entry(name, [])
        return symbol
    if isinstance(e, sympy.Indexed):
        # The label's name, not str(label): printing a symbol costs more than the whole lookup.
        label, indices = e.base.label.name, [_evaluator_of(i) for i in e.indices]
        return lambda ev, at, depth: ev.entry(label, [index(ev, at, depth) for index in indices])
    if isinstance(e, (sympy.Add, sympy.Mul, sympy.Max, sympy.Min)):
        combine = (np.add if isinstance(e, sympy.Add) else np.multiply if isinstance(e, sympy.Mul)
                   else np.maximum if isinstance(e, sympy.Max) else np.minimum)
        first, *rest = [_evaluator_of(a) for a in e.args]

        def combined(ev: _GridEvaluator, at: dict[sympy.Symbol, Any], depth: int) -> Any:
            value = first(ev, at, depth)
            for term in rest:
                value = combine(value, term(ev, at, depth))
            return value
        return combined
    if isinstance(e, sympy.Pow):
        base, exponent = _evaluator_of(e.base), _evaluator_of(e.exp)
        return lambda ev, at, depth: np.power(base(ev, at, depth), exponent(ev, at, depth))
    if isinstance(e, sympy.KroneckerDelta):
        left, right = _evaluator_of(e.args[0]), _evaluator_of(e.args[1])
        return lambda ev, at, depth: np.where(left(ev, at, depth) == right(ev, at, depth), 1.0, 0.0)
    if isinstance(e, sympy.Sum):
        body, limits = e.function, list(e.limits)
        return lambda ev, at, depth: ev._sum(body, limits, at, depth)
    if type(e) in _ELEMENTWISE:
        function, argument = _ELEMENTWISE[type(e)], _evaluator_of(e.args[0])
        return lambda ev, at, depth: function(argument(ev, at, depth))

    def unknown(ev: _GridEvaluator, at: dict[sympy.Symbol, Any], depth: int) -> Any:
        raise ValueError(f"cannot evaluate {type(e).__name__} in an index form: {e}")
    return unknown


# --- LaTeX ------------------------------------------------------------------------------------


class _IndexPrinter(LatexPrinter):
    """Textbook index notation: w_{jk}, \\sum_k (no limits), \\delta_{ij}, \\sigma(u_j)."""

    def __init__(self, letters: Mapping[str, str]):
        super().__init__({"mul_symbol": None})
        self.letters = letters

    def _indices(self, indices: tuple[sympy.Expr, ...]) -> str:
        texts = [self._print(i) for i in indices]
        return "".join(texts) if all(len(t) == 1 for t in texts) else ",".join(texts)

    def _print_Indexed(self, expr: sympy.Indexed) -> str:
        name = str(expr.base.label)
        base = self.letters.get(name) or self._print(sympy.Symbol(name))
        if "_" in base:  # W2 prints as W_{2}: brace it, or W_{2}_{ij} is a double subscript
            base = f"{{{base}}}"
        return f"{base}_{{{self._indices(expr.indices)}}}"

    def _as_ordered_terms(self, expr: sympy.Expr, order: str | None = None) -> list[sympy.Expr]:
        # z_m - y_m rather than SymPy's alphabetical - y_m + z_m: positive terms first.
        terms = list(super()._as_ordered_terms(expr, order=order))
        if isinstance(expr, sympy.Add):
            terms.sort(key=lambda t: t.could_extract_minus_sign())
        return terms

    def _print_Symbol(self, expr: sympy.Symbol, style: str = "plain") -> str:
        if expr.name in self.letters:
            return self.letters[expr.name]
        return super()._print_Symbol(expr, style)

    def _print_Sum(self, expr: sympy.Sum) -> str:
        over = self._indices(tuple(limit[0] for limit in expr.limits))
        body = self._print(expr.function)
        if isinstance(expr.function, sympy.Add):
            body = rf"\left({body}\right)"
        return rf"\sum_{{{over}}} {body}"

    def _print_KroneckerDelta(self, expr: sympy.KroneckerDelta, exp: str | None = None) -> str:
        tex = rf"\delta_{{{self._indices(expr.args)}}}"
        return rf"\left({tex}\right)^{{{exp}}}" if exp is not None else tex

    def _print_sigmoid(self, expr: sigmoid, exp: str | None = None) -> str:
        tex = rf"\sigma\left({self._print(expr.args[0])}\right)"
        return rf"{tex}^{{{exp}}}" if exp is not None else tex

    def _print_Heaviside(self, expr: sympy.Heaviside, exp: str | None = None) -> str:
        tex = rf"\mathbf{{1}}\left[{self._print(expr.args[0])} > 0\right]"
        return rf"{tex}^{{{exp}}}" if exp is not None else tex

    def _print_Mul(self, expr: sympy.Mul) -> str:
        # Kronecker deltas first, as textbooks write them: \delta_{ij} x_l, not x_l \delta_{ij}.
        deltas = [f for f in expr.args if isinstance(f, sympy.KroneckerDelta)]
        rest = [f for f in expr.args if not isinstance(f, sympy.KroneckerDelta)]
        if not deltas or not rest:
            return super()._print_Mul(expr)
        # Not Mul(*rest): a number times a bracket would be multiplied out, -2(x + b) -> -2x - 2b.
        coefficient = sympy.Mul(*[f for f in rest if f.is_Number])
        others = [f for f in rest if not f.is_Number]
        sign = "-" if coefficient.is_negative else ""
        coefficient = abs(coefficient)
        head = "" if coefficient == 1 else self._print(coefficient) + " "
        if not others:
            tail = ""
        elif len(others) == 1:
            tail = self._print(others[0])
            if isinstance(others[0], sympy.Add):
                tail = rf"\left({tail}\right)"
        else:
            tail = self._print(sympy.Mul._from_args(others))
        return sign + head + " ".join(self._print(d) for d in deltas) + (" " + tail if tail else "")


def latex_index(expr: sympy.Expr, letters: Mapping[str, str] | None = None) -> str:
    """An index expression as LaTeX; `letters` maps a name to how its entries are written (W -> w)."""
    return _IndexPrinter(letters or {}).doprint(expr)

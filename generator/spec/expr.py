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
import io
import keyword
import math
import tokenize
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import Any, cast

import numpy as np
import sympy

from generator.errors import ExpressionError, Location

__all__ = [
    "DEFINITIONS",
    "EXACT",
    "FUNCTIONS",
    "MAX_DEPTH",
    "MAX_ENTRIES",
    "MAX_EXP_ARGUMENT",
    "NUMERIC",
    "RESERVED_WORDS",
    "SYNONYMS",
    "Backend",
    "Expr",
    "evaluate",
    "formula_symbols",
    "inputs_of",
    "nesting_depths",
    "parse_expression",
    "reserved_message",
    "subgradient_zero",
    "symbol_values",
    "unknown_function_message",
]


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
    "log": _Function(1, 2, "elementwise natural logarithm; log(x, b) the logarithm to base b"),
    "sqrt": _Function(1, 1, "elementwise square root"),
    "abs": _Function(1, 1, "elementwise absolute value"),
    "sigmoid": _Function(1, 1, "elementwise 1/(1+e^-x)"),
    "tanh": _Function(1, 1, "elementwise hyperbolic tangent"),
    "relu": _Function(1, 1, "elementwise max(0, x)"),
    "step": _Function(1, 1, "elementwise unit step: 1 for x > 0, 0 for x < 0 (the derivative of relu)"),
    "sin": _Function(1, 1, "elementwise sine (radians)"),
    "cos": _Function(1, 1, "elementwise cosine (radians)"),
    "tan": _Function(1, 1, "elementwise tangent (radians)"),
    "asin": _Function(1, 1, "elementwise inverse sine"),
    "acos": _Function(1, 1, "elementwise inverse cosine"),
    "atan": _Function(1, 1, "elementwise inverse tangent"),
    "sinh": _Function(1, 1, "elementwise hyperbolic sine"),
    "cosh": _Function(1, 1, "elementwise hyperbolic cosine"),
    "floor": _Function(1, 1, "elementwise largest integer <= x"),
    "ceil": _Function(1, 1, "elementwise smallest integer >= x"),
    "factorial": _Function(1, 1, "elementwise n! (n a whole number >= 0)"),
    "binomial": _Function(2, 2, "elementwise binomial coefficient binomial(n, k), n choose k"),
    "where": _Function(3, 3, "where(cond, a, b): a where cond holds, else b (elementwise; a piecewise definition)"),
    "softmax": _Function(1, 1, "softmax over the last axis"),
    "sum": _Function(1, 2, "sum(a) sums every entry, sum(a, axis) one axis"),
    "outer": _Function(2, 2, "outer product: outer(a, b)[i, j] = a[i] b[j]"),
    "dot": _Function(2, 2, "inner product of two vectors"),
    "transpose": _Function(1, 5, "transpose(a) reverses the axes (a.T); transpose(a, 0, 2, 1) reorders them"),
    "ones": _Function(1, 2, "ones(n) or ones(n, m)"),
    "zeros": _Function(1, 2, "zeros(n) or zeros(n, m)"),
    "eye": _Function(1, 1, "identity matrix eye(n)"),
    "det": _Function(1, 1, "determinant of a square matrix"),
    "inv": _Function(1, 1, "inverse of a square matrix (its determinant must not be 0)"),
    "trace": _Function(1, 1, "trace of a square matrix: the sum of its diagonal"),
    "rank": _Function(1, 1, "rank of a matrix"),
    "norm": _Function(1, 1, "Euclidean norm of a vector (Frobenius norm of a matrix)"),
    "solve": _Function(2, 2, "solve(A, b): the solution x of the linear system A x = b (A square, det(A) != 0)"),
    "subs": _Function(3, 21, "subs(f, x, v, ...): the formula f with the symbol x replaced by v (pairs of symbol, "
                             "value)"),
    "min": _Function(1, 2, "min(a): smallest entry; min(a, b): elementwise smaller of a and b"),
    "max": _Function(1, 2, "max(a): largest entry; max(a, b): elementwise larger of a and b"),
    "all": _Function(1, 1, "every entry true / nonzero"),
    "any": _Function(1, 1, "some entry true / nonzero"),
    "nonzero": _Function(1, 1, "every entry is nonzero"),
    "nonzero_rows": _Function(1, 1, "no row of the matrix is all zero"),
    "nonzero_cols": _Function(1, 1, "no column of the matrix is all zero"),
    "distinct": _Function(1, 1, "all entries differ"),
}

# What an author may write for a function that exists under another name: suggested by meaning,
# before spelling (which would offer `dot` for `det`, `min` for `inv`).
SYNONYMS: dict[str, str] = {
    "ln": "log(x)", "log10": "log(x, 10)", "log2": "log(x, 2)", "logb": "log(x, b)",
    "arcsin": "asin", "arccos": "acos", "arctan": "atan", "asine": "asin",
    "power": "x ** n", "pow": "x ** n", "square": "x ** 2", "sq": "x ** 2", "cbrt": "x ** (1 / 3)",
    "fabs": "abs", "absolute": "abs", "heaviside": "step", "sign": "step(x) - step(-x)",
    "piecewise": "where", "ifelse": "where", "if_else": "where", "cond": "where", "select": "where",
    "inverse": "inv", "pinv": "inv", "determinant": "det", "tr": "trace", "matrix_rank": "rank",
    "length": "norm", "magnitude": "norm", "linsolve": "solve", "lstsq": "solve",
    "matmul": "A @ B", "mul": "*", "prod": "*", "product": "*", "mean": "sum(a) / n",
    "fact": "factorial", "gamma": "factorial", "comb": "binomial", "choose": "binomial", "nCr": "binomial",
    "round": "decimals: N on the part (the key rounds)", "ceiling": "ceil", "trunc": "floor",
    "minimum": "min", "maximum": "max", "amin": "min", "amax": "max",
    "expm1": "exp(x) - 1", "log1p": "log(1 + x)", "sec": "1 / cos(x)", "csc": "1 / sin(x)", "cot": "1 / tan(x)",
    "substitute": "subs", "at": "subs", "evaluate": "subs", "vec": "[a, b, c]", "matrix": "[[a, b], [c, d]]",
    "array": "[a, b, c]", "vector": "[a, b, c]",
}

# Python's reserved words cannot name a value in an expression (Python's parser reads them as
# syntax). `lambda` is the usual name of a hyperparameter, so it is allowed (see `_LAMBDA`); the
# others get a message that says so, with a name to use instead.
RESERVED_WORDS = frozenset(keyword.kwlist) - {"and", "or", "not", "if", "else", "True", "False", "None", "lambda"}
_LAMBDA = "_lambd"  # as long as `lambda` (error columns stay right), and no spec name starts with `_`


MAX_LENGTH = 2000


def parse_expression(
    text: Any,
    where: Location,
    allowed_names: set[str] | frozenset[str],
    what: str,
    defined_later: Mapping[str, str] | None = None,
    symbols: frozenset[str] | set[str] = frozenset(),
) -> Expr:
    """Parse and validate `text`; `what` names the spec key (e.g. `define.u`) in messages.

    Args:
        defined_later: names the spec defines further down, each with where (e.g.
            `define.w at line 12`), so that using one too early gets a precise message.
        symbols: the question's free symbols (they must also be in `allowed_names`); `subs`
            replaces only these.

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
    words = _reserved_words(source)
    parsed = _with_lambda_names(source, words)
    try:
        tree = ast.parse(parsed, mode="eval")
    except SyntaxError as e:
        for word, column in words:
            if word in RESERVED_WORDS:  # the likely cause: a reserved word used as a name
                message = f"{reserved_message(word)} (column {column} of '{_one_line(source)}')"
                raise ExpressionError(f"{where}: {what}: {message}") from None
        col = (e.offset or 1)
        raise ExpressionError(f"{where}: {what}: syntax error at column {col} of '{_one_line(source)}'") from None
    except (RecursionError, MemoryError):
        raise ExpressionError(f"{where}: {what}: expression is nested too deeply") from None
    if parsed is not source:
        for node in ast.walk(tree):
            if isinstance(node, ast.Name) and node.id == _LAMBDA:
                node.id = "lambda"
    names: set[str] = set()
    try:
        _check(tree.body, source, where, what, frozenset(allowed_names), names, defined_later or {}, frozenset(symbols))
    except RecursionError:
        raise ExpressionError(f"{where}: {what}: expression is nested too deeply") from None
    return Expr(source, tree, frozenset(names), where)


def reserved_message(word: str) -> str:
    """Why a reserved word cannot be a name, and what to write instead."""
    return f"'{word}' is a reserved word (of Python, which reads the expressions); name it e.g. '{word}_' instead"


def _reserved_words(source: str) -> list[tuple[str, int]]:
    """Each keyword token of `source` used where a name would stand, with its column (from 1);
    `lambda` only when it does not start a lambda expression (`lambda x: ...` is refused later)."""
    try:
        tokens = [t for t in tokenize.generate_tokens(io.StringIO(source).readline)
                  if t.type not in (tokenize.NL, tokenize.NEWLINE, tokenize.COMMENT, tokenize.INDENT, tokenize.DEDENT)]
    except (tokenize.TokenError, SyntaxError, IndentationError):
        return []
    out = []
    for i, token in enumerate(tokens):
        if token.type != tokenize.NAME or not keyword.iskeyword(token.string):
            continue
        if token.string == "lambda":
            after = tokens[i + 1] if i + 1 < len(tokens) else None
            if after is not None and (after.string == ":" or after.type == tokenize.NAME):
                continue  # a lambda expression, not a name
        if token.string in RESERVED_WORDS or token.string == "lambda":
            out.append((token.string, _column(source, token.start)))
    return out


def _column(source: str, start: tuple[int, int]) -> int:
    line, col = start
    return sum(len(text) + 1 for text in source.split("\n")[: line - 1]) + col + 1


def _with_lambda_names(source: str, words: list[tuple[str, int]]) -> str:
    """`source` with each `lambda` used as a name spelled `_LAMBDA` for Python's parser (the same
    length, so columns in messages stay right); `source` itself when there is none."""
    columns = [column for word, column in words if word == "lambda"]
    if not columns or _LAMBDA in source:
        return source
    out = source
    for column in columns:
        out = out[: column - 1] + _LAMBDA + out[column - 1 + len("lambda"):]
    return out


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
    symbols: frozenset[str] = frozenset(),
) -> None:
    def fail(message: str) -> ExpressionError:
        col = getattr(node, "col_offset", 0) + 1
        return ExpressionError(f"{where}: {what}: {message} (column {col} of '{_one_line(source)}')")

    def recurse(child: ast.AST) -> None:
        _check(child, source, where, what, allowed, names, later, symbols)

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
        if isinstance(node.op, ast.BitXor):
            raise fail("'^' is not a power here; write ** for powers, e.g. w**2")
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
    elif isinstance(node, ast.IfExp):
        raise fail("a conditional (a if c else b) is not allowed; write where(c, a, b)")
    elif isinstance(node, ast.List):
        if not node.elts:
            raise fail("an empty list is not a vector; write [a, b] or [[a, b], [c, d]]")
        for item in node.elts:
            if isinstance(item, ast.Starred):
                raise fail("*args is not allowed")
            recurse(item)
    elif isinstance(node, ast.Call):
        if not isinstance(node.func, ast.Name):
            raise fail("only calls of the listed functions are allowed, e.g. exp(x)")
        name = node.func.id
        if name not in FUNCTIONS:
            raise fail(unknown_function_message(name))
        if node.keywords:
            raise fail(f"{name}() takes no keyword arguments")
        spec = FUNCTIONS[name]
        if not spec.min_args <= len(node.args) <= spec.max_args:
            expected = str(spec.min_args) if spec.min_args == spec.max_args else f"{spec.min_args} to {spec.max_args}"
            raise fail(f"{name}() takes {expected} argument(s), got {len(node.args)}")
        if name == "subs":
            _check_subs(node, symbols, fail)
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


def _check_subs(node: ast.Call, symbols: frozenset[str], fail: Callable[[str], ExpressionError]) -> None:
    """subs(f, x, v, y, w, ...): pairs of a declared symbol and a value after the formula."""
    if len(node.args) % 2 == 0:
        raise fail("subs() takes a formula and then pairs of a symbol and its value: subs(f, x, 2) or "
                   "subs(f, x, 1, y, 2)")
    for arg in node.args[1::2]:
        if not isinstance(arg, ast.Name) or arg.id not in symbols:
            shown = ast.unparse(arg)
            declared = ", ".join(sorted(symbols)) if symbols else "none; declare them with symbols: [x]"
            raise fail(f"subs() replaces a symbol of the question, got '{shown}' (symbols: {declared})")


def unknown_function_message(name: str) -> str:
    """An unknown function: what to write instead (by meaning first, then by spelling), and every function there is."""
    if name in SYNONYMS:
        meant = SYNONYMS[name]
        hint = f"; did you mean '{meant}'?" if meant.isidentifier() else f"; write {meant}"
    elif name.lower() in FUNCTIONS:
        hint = f"; did you mean '{name.lower()}'?"
    else:
        close = difflib.get_close_matches(name, list(FUNCTIONS), n=1, cutoff=0.75)
        hint = f"; did you mean '{close[0]}'?" if close else ""
    return f"unknown function '{name}'{hint} (functions: {', '.join(sorted(FUNCTIONS))})"


def _did_you_mean(name: str, options: list[str]) -> str:
    close = difflib.get_close_matches(name, options, n=1)
    return f"; did you mean '{close[0]}'?" if close else ""


def formula_symbols(expr: Expr, symbols: frozenset[str], known: Mapping[str, frozenset[str]]) -> frozenset[str]:
    """The symbols an expression's value still holds (a formula's free symbols): those it names,
    directly or through `known` definitions, less those `subs` replaces."""
    def free(node: ast.AST) -> frozenset[str]:
        if isinstance(node, ast.Name):
            return frozenset({node.id}) if node.id in symbols else known.get(node.id, frozenset())
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "subs":
            replaced = {arg.id for arg in node.args[1::2] if isinstance(arg, ast.Name)}
            inner = free(node.args[0]) - replaced
            return inner.union(*(free(arg) for arg in node.args[2::2]))
        return frozenset().union(*(free(child) for child in ast.iter_child_nodes(node)))
    return free(expr.tree.body)


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


def _whole(x: float) -> bool:
    return float(x).is_integer() and x >= 0


def _float_factorial(x: float) -> float:
    # math, not SymPy: the numeric twin shares no code with the exact side.
    return float(math.factorial(int(x))) if _whole(x) else math.gamma(x + 1.0)


def _float_binomial(n: float, k: float) -> float:
    if _whole(n) and _whole(k):
        return float(math.comb(int(n), int(k)))
    return math.gamma(n + 1.0) / (math.gamma(k + 1.0) * math.gamma(n - k + 1.0))


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
        # relu's derivative, with the subgradient 0 at 0 (as the common frameworks), one convention
        # everywhere: the key, the index form and the check (docs/bank.md).
        "step": lambda x: sympy.Heaviside(x, 0),
        "sin": sympy.sin,
        "cos": sympy.cos,
        "tan": sympy.tan,
        "asin": sympy.asin,
        "acos": sympy.acos,
        "atan": sympy.atan,
        "sinh": sympy.sinh,
        "cosh": sympy.cosh,
        "floor": sympy.floor,
        "ceil": sympy.ceiling,
        "factorial": sympy.factorial,
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
        "step": lambda x: np.heaviside(x, 0.0),
        "sin": np.sin,
        "cos": np.cos,
        "tan": np.tan,
        "asin": np.arcsin,
        "acos": np.arccos,
        "atan": np.arctan,
        "sinh": np.sinh,
        "cosh": np.cosh,
        "floor": np.floor,
        "ceil": np.ceil,
        "factorial": np.vectorize(_float_factorial, otypes=[float]),
    },
    dtype=float,
)

# Where a numeric environment keeps its definitions, in order ((name, Expr), ...), so that `subs`
# can evaluate a formula again with its symbols at other values (a float holds no formula).
DEFINITIONS = "\0definitions"
# The numeric stand-ins for symbols: a formula's float value is never an answer (a part cannot ask
# for a formula yet), but every definition is evaluated, so the symbols need some value.
_PROBES = (0.6180339887, 0.4142135624, 0.7320508076, 0.2360679775, 0.5772156649, 0.3183098862)


def subgradient_zero(expr: Any) -> Any:
    """`expr` with every unit step at the convention 0 at 0: SymPy differentiates Max(0, x) (relu)
    into Heaviside(x), which is 1/2 at 0; relu's derivative at 0 is taken to be 0 everywhere."""
    if not isinstance(expr, sympy.Basic) or not expr.has(sympy.Heaviside):
        return expr
    return expr.replace(lambda e: isinstance(e, sympy.Heaviside) and e.args[1:] != (0,),
                        lambda e: sympy.Heaviside(e.args[0], 0))


def symbol_values(names: Iterable[str], backend: Backend) -> dict[str, np.ndarray]:
    """Each declared symbol's value for `backend`: a real SymPy symbol (exact), a fixed float (numeric)."""
    out = {}
    for k, name in enumerate(names):
        probe = _PROBES[k % len(_PROBES)] + k // len(_PROBES)
        value = sympy.Symbol(name, real=True) if backend.dtype is object else probe
        out[name] = _wrap(value, backend)
    return out


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
            result = None
            for op, comparator in chain:
                right = comparator(env, be)
                current = _compare(op, left, right)
                # (a chain needs each link decided; a lone comparison over symbols stays a relation, for where)
                result = current if result is None else np.logical_and(_truth(result), _truth(current))
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
    if isinstance(node, ast.List):
        return _literal([_compiled(item) for item in node.elts])
    assert isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
    if node.func.id == "subs":
        return _substitution(node)
    function, arguments = node.func.id, [_compiled(arg) for arg in node.args]
    return lambda env, be: _call(function, [argument(env, be) for argument in arguments], be)


def _literal(items: list[_Code]) -> _Code:
    """`[a, b]`, `[[a, b], [c, d]]`: a vector or matrix of the items (each a scalar, or a row of equal shape)."""
    def literal(env: Mapping[str, Any], be: Backend) -> Any:
        values = [np.asarray(item(env, be), dtype=be.dtype) for item in items]
        shape = values[0].shape
        if any(value.shape != shape for value in values):
            shapes = ", ".join(_shape_words(value) for value in values)
            raise ValueError(f"the items of a vector or matrix literal must have one shape, got {shapes}")
        out = np.empty((len(values), *shape), dtype=be.dtype)
        for i, value in enumerate(values):
            out[i] = value[()] if value.ndim == 0 else value  # (a 0-d array would be stored as an object)
        return out
    return literal


def _substitution(node: ast.Call) -> _Code:
    """subs(f, x, v, ...). Exact: the symbols replaced in f's SymPy value. Numeric: a float holds
    no formula, so f and the definitions it reads are evaluated again with the symbols at the
    values (the environment's `DEFINITIONS`)."""
    formula = _compiled(node.args[0])
    reads = frozenset(n.id for n in ast.walk(node.args[0]) if isinstance(n, ast.Name))
    pairs = [(arg.id, _compiled(value)) for arg, value in zip(node.args[1::2], node.args[2::2], strict=True)]  # type: ignore[attr-defined]

    def substitute(env: Mapping[str, Any], be: Backend) -> Any:
        replacements = {}
        for name, value in pairs:
            array = np.asarray(value(env, be), dtype=be.dtype)
            if array.ndim != 0:
                raise ValueError(f"subs: the value for '{name}' must be a single number, got {_shape_words(array)}")
            replacements[name] = array
        if be.dtype is object:
            mapping = {sympy.Symbol(name, real=True): array[()] for name, array in replacements.items()}
            shown = np.asarray(formula(env, be), dtype=object)
            result = np.frompyfunc(lambda entry: sympy.sympify(entry).xreplace(mapping), 1, 1)(shown)
            return _wrap(result, be) if shown.ndim == 0 else result
        local: dict[str, Any] = dict(env)
        local.update(replacements)
        moved = set(replacements)
        definitions = env.get(DEFINITIONS, ())
        needed = inputs_of(definitions, reads)  # (the formula's own inputs: never the definition being evaluated)
        for name, expr in definitions:
            if name in needed and name in env and expr.names & moved:
                local[name] = evaluate(expr, local, be)
                moved.add(name)
        return formula(local, be)
    return substitute


def _shape_words(value: Any) -> str:
    """`a scalar`, `a vector of 3`, `a 3x4 matrix`, `a 2x3x4 array`: what a value is, for messages."""
    shape = np.shape(value)
    if not shape:
        return "a scalar"
    if len(shape) == 1:
        return f"a vector of {shape[0]}"
    return f"a {'x'.join(map(str, shape))} {'matrix' if len(shape) == 2 else 'array'}"


def _binary(op: type, left: _Code, right: _Code) -> _Code:
    if op is ast.Add:
        return lambda env, be: left(env, be) + right(env, be)
    if op is ast.Sub:
        return lambda env, be: left(env, be) - right(env, be)
    if op is ast.Mult:
        return lambda env, be: left(env, be) * right(env, be)
    if op is ast.Div:
        def divide(env: Mapping[str, Any], be: Backend) -> Any:
            numerator, denominator = left(env, be), right(env, be)
            if be.dtype is object:
                _check_divisor(denominator)
            return numerator / denominator
        return divide
    if op is ast.Pow:
        def power(env: Mapping[str, Any], be: Backend) -> Any:
            base, exponent = left(env, be), right(env, be)
            _check_exponent(exponent)
            if be.dtype is object:
                _check_power(base, exponent)
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
def _decided(relation: Any) -> Any:
    """A comparison's truth, or the SymPy relation itself when it is over symbols (x > 0), for `where`."""
    try:
        return bool(relation)
    except TypeError:
        return relation


_COMPARISONS = {
    ast.Lt: np.frompyfunc(lambda a, b: _decided(a < b), 2, 1),
    ast.LtE: np.frompyfunc(lambda a, b: _decided(a <= b), 2, 1),
    ast.Gt: np.frompyfunc(lambda a, b: _decided(a > b), 2, 1),
    ast.GtE: np.frompyfunc(lambda a, b: _decided(a >= b), 2, 1),
    ast.Eq: np.frompyfunc(lambda a, b: bool(a == b), 2, 1),
    ast.NotEq: np.frompyfunc(lambda a, b: bool(a != b), 2, 1),
}


def _nonzero(value: Any) -> bool:
    if isinstance(value, sympy.Basic) and (value.is_Relational or value.free_symbols):
        raise ValueError(f"'{value}' is a condition on a symbol, true for some values and false for others; "
                         "only where(cond, a, b) can use it")
    return bool(value != 0)


_NONZERO = np.frompyfunc(_nonzero, 1, 1)
_EXACT_UNARY = {name: np.frompyfunc(func, 1, 1) for name, func in EXACT.unary.items()}
_EXACT_BINARY: dict[str, Any] = {
    "min": np.frompyfunc(sympy.Min, 2, 1),
    "max": np.frompyfunc(sympy.Max, 2, 1),
    "binomial": np.frompyfunc(sympy.binomial, 2, 1),
    "log": np.frompyfunc(sympy.log, 2, 1),
}
_NUMERIC_BINARY: dict[str, Callable[[Any, Any], Any]] = {
    "min": np.minimum,
    "max": np.maximum,
    "binomial": np.vectorize(_float_binomial, otypes=[float]),
    "log": lambda x, b: np.log(x) / np.log(b),
}


def _choose(condition: Any, a: Any, b: Any) -> Any:
    if isinstance(condition, sympy.Basic) and not isinstance(condition, sympy.logic.boolalg.BooleanAtom):
        return sympy.Piecewise((a, condition), (b, True))  # over symbols: decided once numbers are in
    return a if bool(condition) else b


_EXACT_WHERE = np.frompyfunc(_choose, 3, 1)


def _compare(op: ast.cmpop, left: Any, right: Any) -> np.ndarray:
    # Exact values are SymPy numbers: compare them as exact rationals/reals, elementwise.
    result = _COMPARISONS[type(op)](left, right)
    result = result if isinstance(result, np.ndarray) else _wrap(result, EXACT)
    if result.dtype == object and all(type(v) is bool for v in result.flat):
        return result.astype(bool)
    return result  # (relations over symbols, for where)


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


# An exact value outside a function's domain is an error, not a printed infinity (1/0 is
# `zoo`, shown as \tilde{\infty}) or a complex number (log(-3) = log(3) + i pi) in a key. Only
# numbers are judged here (a drawn variant's values); over symbols, the answers' check in
# generator.answers.solve judges what the numbers make.
MAX_EXP_ARGUMENT = 200  # e^200 is about 10^87: no hand computation, and e^710 overflows a float
MAX_ENTRIES = 10_000  # entries of any array an expression makes (outer products of outer products...)
MAX_DEPTH = 40  # operators and calls nested, through the definitions an expression uses (the bank's deepest: 10)


def _numbers(value: Any) -> Iterable[Any]:
    for entry in np.asarray(value, dtype=object).flat:
        if getattr(entry, "is_Number", False) or (isinstance(entry, (int, float)) and not isinstance(entry, bool)):
            yield entry


def _check_divisor(denominator: Any) -> None:
    for entry in _numbers(denominator):
        if entry == 0:
            raise ValueError("division by zero")


def _check_power(base: Any, exponent: Any) -> None:
    exponents = list(_numbers(exponent))
    if not exponents:
        return
    negative_power = any(e < 0 for e in exponents)
    fractional = any(not getattr(e, "is_Integer", isinstance(e, int)) for e in exponents)
    for entry in _numbers(base):
        if entry == 0 and negative_power:
            raise ValueError("division by zero (0 to a negative power)")
        if entry < 0 and fractional:
            raise ValueError(f"a negative number ({entry}) to a fractional power has no real value")


def _check_domain(name: str, operand: Any) -> None:
    for entry in _numbers(operand):
        if name == "log" and entry <= 0:
            raise ValueError(f"log({entry}): the logarithm needs a positive number")
        if name == "sqrt" and entry < 0:
            raise ValueError(f"sqrt({entry}): a negative number has no real square root")
        if name in ("exp", "sigmoid", "tanh") and abs(entry) > MAX_EXP_ARGUMENT:
            raise ValueError(f"{name}({entry}): arguments beyond ±{MAX_EXP_ARGUMENT} make numbers too large for a key")


def nesting_depths(definitions: Sequence[tuple[str, Expr]]) -> dict[str, int]:
    """How deeply each definition nests operators and calls, counting the definitions it uses
    (in order: a definition uses only names defined before it)."""
    depths: dict[str, int] = {}

    def depth(node: ast.AST) -> int:
        if isinstance(node, ast.Name):
            return depths.get(node.id, 1)
        return 1 + max((depth(child) for child in ast.iter_child_nodes(node)), default=0)

    for name, expr in definitions:
        try:
            depths[name] = depth(expr.tree.body)
        except RecursionError:
            depths[name] = MAX_DEPTH + 1
    return depths


def _size(value: Any) -> int:
    if value.ndim != 0:
        raise ValueError("sizes must be single numbers, e.g. ones(n)")
    number = value[()]
    if int(number) != number or int(number) < 0:
        raise ValueError(f"size must be a whole number >= 0, got {number}")
    if int(number) > MAX_SIZE:
        raise ValueError(f"size {int(number)} is too large (at most {MAX_SIZE})")
    return int(number)


def _square(a: Any, name: str) -> None:
    if a.ndim != 2 or a.shape[0] != a.shape[1]:
        raise ValueError(f"{name} needs a square matrix, got {_shape_words(a)}")


def _sympy_matrix(a: np.ndarray) -> sympy.Matrix:
    return sympy.Matrix([[sympy.sympify(v) for v in row] for row in a])


def _nonsingular(matrix: sympy.Matrix, name: str) -> sympy.Expr:
    determinant = matrix.det()
    if determinant.is_zero:
        raise ValueError(f"{name}: the matrix is singular (determinant 0); add the constraint det(A) != 0")
    return determinant


def _det(args: list[Any], be: Backend) -> Any:
    a = args[0]
    _square(a, "det")
    if be.dtype is object:
        return _wrap(_sympy_matrix(a).det(), be)
    return np.asarray(np.linalg.det(a))


def _inv(args: list[Any], be: Backend) -> Any:
    a = args[0]
    _square(a, "inv")
    if be.dtype is object:
        matrix = _sympy_matrix(a)
        determinant = _nonsingular(matrix, "inv")
        # Over symbols (a derivative), the adjugate over the determinant: one fraction per entry.
        inverse = matrix.adjugate() / determinant if matrix.free_symbols else matrix.inv()
        return np.array(inverse.tolist(), dtype=object)
    return np.linalg.inv(a)


def _trace(args: list[Any], be: Backend) -> Any:
    a = args[0]
    _square(a, "trace")
    if be.dtype is object:
        return _wrap(sympy.Add(*[sympy.sympify(a[i, i]) for i in range(a.shape[0])]), be)
    return np.asarray(np.trace(a))


def _rank(args: list[Any], be: Backend) -> Any:
    a = args[0]
    if a.ndim != 2:
        raise ValueError(f"rank needs a matrix, got {_shape_words(a)}")
    if be.dtype is object:
        matrix = _sympy_matrix(a)
        if matrix.free_symbols:  # a generic rank would be wrong for some numbers
            raise ValueError("rank needs numbers, not symbols")
        return _wrap(sympy.Integer(matrix.rank()), be)
    return np.asarray(float(np.linalg.matrix_rank(a)))


def _norm(args: list[Any], be: Backend) -> Any:
    a = args[0]
    if be.dtype is object:
        return _wrap(sympy.sqrt(sympy.Add(*[sympy.sympify(v) ** 2 for v in a.flat])), be)
    return np.asarray(np.linalg.norm(np.ravel(a)))


def _solve(args: list[Any], be: Backend) -> Any:
    a, b = args
    _square(a, "solve")
    if b.ndim not in (1, 2) or b.shape[0] != a.shape[0]:
        raise ValueError(f"solve(A, b) needs b with {a.shape[0]} rows for {_shape_words(a)}, got {_shape_words(b)}")
    if be.dtype is object:
        matrix = _sympy_matrix(a)
        determinant = _nonsingular(matrix, "solve")
        right = _sympy_matrix(b.reshape(b.shape[0], -1))
        symbolic = matrix.free_symbols or right.free_symbols
        x = matrix.adjugate() * right / determinant if symbolic else matrix.LUsolve(right)
        return np.array(x.tolist(), dtype=object).reshape(b.shape)
    return np.linalg.solve(a, b)


_LINEAR_ALGEBRA: dict[str, Callable[[list[Any], Backend], Any]] = {
    "det": _det, "inv": _inv, "trace": _trace, "rank": _rank, "norm": _norm, "solve": _solve,
}


def _call(name: str, args: list[Any], be: Backend) -> Any:
    if len(args) == 2 and name in _EXACT_BINARY:
        if be.dtype is object:
            result = _EXACT_BINARY[name](args[0], args[1])
            return _wrap(result, be) if np.ndim(result) == 0 else np.asarray(result, dtype=object)
        return _NUMERIC_BINARY[name](args[0], args[1])
    if name == "where":
        if be.dtype is object:
            condition = args[0] if args[0].dtype == object else args[0].astype(object)
            result = _EXACT_WHERE(condition, args[1], args[2])
            return _wrap(result, be) if np.ndim(result) == 0 else np.asarray(result, dtype=object)
        return np.where(_truth(args[0]), args[1], args[2])
    if name in _LINEAR_ALGEBRA:
        return _LINEAR_ALGEBRA[name](args, be)
    if name in be.unary:
        if be.dtype is object:
            _check_domain(name, args[0])
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
        if a.size * args[1].size > MAX_ENTRIES:
            raise ValueError(f"outer product of {a.size * args[1].size} entries is too large (at most {MAX_ENTRIES})")
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

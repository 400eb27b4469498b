"""A student's response as an exact number, read safely.

Why not `float()`, `eval` or `sympy.sympify`: a response is text a student typed. eval and
sympify run Python (sympify calls eval); float() takes no fraction. The text goes through the
project's own parser (`generator.spec.expr.parse_expression`: `ast.parse`, which runs nothing,
and a whitelist), then through a narrower whitelist here: numbers (integers, decimals, `1.5e-3`),
the constant `e`, `exp(...)`, `+ - * / **`, unary minus and parentheses. Limits keep a hostile
response cheap: at most `MAX_LENGTH` characters and one power, with an exponent of at most
`MAX_EXPONENT`. A rational response is evaluated exactly (fractions.Fraction, its decimals as
typed); one with `e` through SymPy's exact backend, then to a float.
"""

from __future__ import annotations

import ast
import math
import re
from fractions import Fraction

__all__ = ["MAX_EXPONENT", "MAX_LENGTH", "ResponseError", "parse_response"]

MAX_LENGTH = 80
MAX_EXPONENT = 100
_CHARACTERS = re.compile(r"[0-9.eEpx+\-*/()\s]*")  # (`exp` and `e` are the only words)
_WORDS = re.compile(r"[A-Za-z]+")


class ResponseError(ValueError):
    """A response that is not a number this grader reads; the message says why (for the report)."""


def parse_response(text: str) -> Fraction | float:
    """The value of a response: a Fraction when rational, else a float (a closed form in e).

    Raises:
        ResponseError: empty, too long, a character or word outside the whitelist, a syntax error,
            more than one power, an exponent too large, a division by zero.
    """
    from generator.errors import ExpressionError, Location
    from generator.spec.expr import parse_expression

    source = text.strip()
    if not source:
        raise ResponseError("empty response")
    if len(source) > MAX_LENGTH:
        raise ResponseError(f"longer than {MAX_LENGTH} characters")
    words = _WORDS.findall(source)
    if not _CHARACTERS.fullmatch(source) or any(w not in ("e", "exp") and not _exponent_word(w) for w in words):
        raise ResponseError(
            "only numbers, e, exp(...), + - * / ** and parentheses are read (a decimal point, not a comma)")
    if source.count("**") > 1:
        raise ResponseError("at most one power (**)")
    try:
        expr = parse_expression(source, Location("response"), set(), "response")
    except ExpressionError as e:
        raise ResponseError(str(e).split(": response: ", 1)[-1]) from None
    _check(expr.tree.body, source)
    try:
        return _exact(expr.tree.body, source)
    except _Irrational:
        pass
    except (ZeroDivisionError, OverflowError) as e:
        raise ResponseError(f"cannot evaluate: {e}") from None
    import sympy

    from generator.spec.expr import EXACT, evaluate

    try:
        value = sympy.N(evaluate(expr, {}, EXACT)[()], 30)
    except ExpressionError as e:
        raise ResponseError(f"cannot evaluate: {e}") from None
    if not value.is_real or not value.is_finite or not math.isfinite(float(value)):
        raise ResponseError("not a real number of a usual size")
    return float(value)


def _exponent_word(word: str) -> bool:
    """`1e5` leaves `e` as a word; `2E3` too. (Words such as `ee` or `pi` are refused.)"""
    return word in ("E",)


_LITERAL_EXPONENT = re.compile(r"[eE]([+-]?\d+)")


def _check(node: ast.AST, source: str) -> None:
    if isinstance(node, ast.Constant):
        exponent = _LITERAL_EXPONENT.search(ast.get_source_segment(source, node) or "")
        if exponent is not None and abs(int(exponent.group(1))) > MAX_EXPONENT:
            raise ResponseError(f"exponent {exponent.group(1)} is too large (at most {MAX_EXPONENT})")
        return
    if isinstance(node, ast.Name) and node.id == "e":
        return
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
        _check(node.operand, source)
        return
    if isinstance(node, ast.BinOp) and isinstance(node.op, (ast.Add, ast.Sub, ast.Mult, ast.Div, ast.Pow)):
        _check(node.left, source)
        _check(node.right, source)
        return
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "exp" and len(node.args) == 1:
        _check(node.args[0], source)
        return
    raise ResponseError(f"{type(node).__name__} is not read in a response")


class _Irrational(Exception):
    """The value needs e (or a root): evaluated by SymPy instead."""


def _exact(node: ast.AST, source: str) -> Fraction:
    if isinstance(node, ast.Constant):
        literal = ast.get_source_segment(source, node) or repr(node.value)
        return Fraction(literal)  # the digits as typed: 0.1 is 1/10
    if isinstance(node, ast.UnaryOp):
        value = _exact(node.operand, source)
        return -value if isinstance(node.op, ast.USub) else value
    if isinstance(node, ast.BinOp):
        left, right = _exact(node.left, source), _exact(node.right, source)
        if isinstance(node.op, ast.Add):
            return left + right
        if isinstance(node.op, ast.Sub):
            return left - right
        if isinstance(node.op, ast.Mult):
            return left * right
        if isinstance(node.op, ast.Div):
            return left / right
        if right.denominator != 1:
            raise _Irrational
        if abs(right) > MAX_EXPONENT:
            raise ResponseError(f"exponent {right} is too large (at most {MAX_EXPONENT})")
        return left ** int(right)
    raise _Irrational  # e, exp(...)

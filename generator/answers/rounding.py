"""Exact values rounded for display and grading: fixed decimal places, significant digits, tolerances.

The key, answers.csv and manifest.json round the same exact value the same way, here: a rational
is rounded exactly (its decimal expansion by integer division), a closed form from its 40-digit
value (mpmath through SymPy), far more digits than any rule asks for. Halves are rounded away
from zero (0.125 to 2 places is 0.13), as taught in schools; -0.00 is written 0.00.

A part's exact form is "readable" when every number in it (numerators and denominators, also
inside closed forms) is within `READABLE_NUMBER`: the key then shows it beside the rounded answer.
`generator.commands.check` holds exact answers to the same bound.
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Context, Decimal
from fractions import Fraction
from functools import lru_cache
from typing import Any

import numpy as np
import sympy

from generator.spec.model import AnswerRule

__all__ = [
    "READABLE_NUMBER", "decimal_text", "readable", "rounded", "rounded_text", "rule_label", "rule_tex",
    "tolerance_label",
    "tolerance_numbers", "tolerance_tex",
]

READABLE_NUMBER = 1000
_CONTEXT = Context(prec=60)


@lru_cache(maxsize=1 << 14)
def _decimal(value: sympy.Expr) -> Decimal:
    if value.is_Rational:
        return _CONTEXT.divide(Decimal(int(value.p)), Decimal(int(value.q)))
    number = sympy.N(value, 40)
    if not number.is_real or not number.is_Number:
        raise ValueError(f"cannot round {value}: not a real number")
    return Decimal(str(number))


def rounded(value: Any, kind: str, digits: int) -> Decimal:
    """An exact scalar rounded to `digits` decimal places (`decimals`) or significant digits (`sigfigs`)."""
    exact = _decimal(value if isinstance(value, sympy.Basic) else sympy.sympify(value))
    if kind == "decimals":
        return exact.quantize(Decimal(1).scaleb(-digits), rounding=ROUND_HALF_UP, context=_CONTEXT)
    if exact == 0:
        return Decimal(0).quantize(Decimal(1).scaleb(1 - digits), context=_CONTEXT)
    quantum = Decimal(1).scaleb(exact.adjusted() - digits + 1)
    result = exact.quantize(quantum, rounding=ROUND_HALF_UP, context=_CONTEXT)
    if result.adjusted() != exact.adjusted():  # 9.96 to 2 digits is 10, not 10.0
        result = result.quantize(quantum.scaleb(1), rounding=ROUND_HALF_UP, context=_CONTEXT)
    return result


def decimal_text(number: Decimal) -> str:
    """Plain positional notation, every digit kept (`0.50`, `1200`, `0.00123`); never `-0.00`."""
    text = format(number, "f")
    return text[1:] if text.startswith("-") and set(text[1:]) <= {"0", "."} else text


def rounded_text(value: Any, kind: str, digits: int) -> str:
    """`decimal_text(rounded(...))`."""
    return decimal_text(rounded(value, kind, digits))


def readable(value: Any) -> bool:
    """Whether every number in an exact value (any shape) is within `READABLE_NUMBER`."""
    for entry in np.asarray(value, dtype=object).flat:
        expr = entry if isinstance(entry, sympy.Basic) else sympy.sympify(entry)
        numbers = [expr] if expr.is_Rational else expr.atoms(sympy.Rational)
        if any(abs(n.p) > READABLE_NUMBER or n.q > READABLE_NUMBER for n in numbers):
            return False
    return True


def _number(value: Fraction) -> str:
    return decimal_text(_CONTEXT.divide(Decimal(value.numerator), Decimal(value.denominator)).normalize(_CONTEXT))


def rule_label(rule: AnswerRule) -> str:
    """`exact`, `decimals 2` or `sigfigs 3`: how answers.csv names a part's rule."""
    return rule.kind if rule.kind == "exact" else f"{rule.kind} {rule.digits}"


def tolerance_label(rule: AnswerRule) -> str:
    """`abs 0.01`, `rel 0.001` or `abs 0.01; rel 0.001` (empty for an exact answer)."""
    pieces = []
    if rule.abs_tol is not None:
        pieces.append(f"abs {_number(rule.abs_tol)}")
    if rule.rel_tol is not None:
        pieces.append(f"rel {_number(rule.rel_tol)}")
    return "; ".join(pieces)


def tolerance_numbers(rule: AnswerRule) -> dict[str, float]:
    """The tolerance as JSON numbers: {"abs": 0.01} and/or {"rel": 0.001}."""
    out = {}
    if rule.abs_tol is not None:
        out["abs"] = float(rule.abs_tol)
    if rule.rel_tol is not None:
        out["rel"] = float(rule.rel_tol)
    return out


def tolerance_tex(rule: AnswerRule) -> str:
    """The tolerance as the key states it: `$\\pm 0.01$`, `$\\pm 1\\,\\%$ of the value`, or both."""
    pieces = []
    if rule.abs_tol is not None:
        pieces.append(rf"$\pm {_number(rule.abs_tol)}$")
    if rule.rel_tol is not None:
        pieces.append(rf"$\pm {_number(rule.rel_tol * 100)}\,\%$ of the value")
    return " plus ".join(pieces)


def rule_tex(rule: AnswerRule) -> str:
    """`to 2 decimal places, accepted within $\\pm 0.01$`: what the key says after a rounded answer."""
    places = "decimal place" if rule.kind == "decimals" else "significant digit"
    plural = "" if rule.digits == 1 else "s"
    return f"to {rule.digits} {places}{plural}, accepted within {tolerance_tex(rule)}"

"""A part's answer rule as manifest.json states it, for the exporters and the grader.

A part entry may carry `rule`, as `generator.outputs.manifest` writes it for a rounded part:
{"kind": "decimals", "digits": 2, "tolerance": {"abs": 0.01, "rel": 0.001}} (kinds `exact`,
`decimals`, `sigfigs`; either tolerance may be absent). `abs_tol` / `rel_tol` keys beside `kind`
(exact fractions in text such as "1/100", or numbers) are read too, for hand-made manifests.
No `rule`, or kind `exact`, means the exact value is asked for. A rounded answer is accepted within
`abs_tol + rel_tol x |value|` of the exact value, as the key states. Parts also may carry `kind`
(`numeric`, the default; `choice` for multiple choice) and `credit` (`entries`: partial credit
entry by entry, the default; `all`: all or nothing).

The manifest holds an exact value as a JSON number (an int when integral, else the nearest
double), so "exact" is judged to double precision: see `accepts`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

__all__ = ["EXACT", "PartRule", "accepts", "part_credit", "part_kind", "part_rule", "tolerance_of"]

# "Exact" against a double: the response's value may differ from the key's by this much relative
# (2**-50: a few units in the last place of the double the manifest holds, far below any rounding).
EXACT_RELATIVE = Fraction(1, 2**50)


@dataclass(frozen=True, slots=True)
class PartRule:
    """How a part is answered: `exact`, or `decimals`/`sigfigs` with `digits` and tolerances."""

    kind: str = "exact"
    digits: int | None = None
    abs_tol: Fraction | None = None
    rel_tol: Fraction | None = None

    @property
    def exact(self) -> bool:
        return self.kind == "exact"


EXACT = PartRule()


def part_rule(entry: dict[str, Any]) -> PartRule:
    """The rule of a manifest part entry (`EXACT` when it states none).

    Raises:
        ValueError: a rule that is not of the documented form.
    """
    raw = entry.get("rule")
    if raw is None:
        return EXACT
    if not isinstance(raw, dict) or raw.get("kind") not in ("exact", "decimals", "sigfigs"):
        raise ValueError(f"part '{entry.get('id')}': rule {raw!r}: expected kind exact, decimals or sigfigs")
    digits = raw.get("digits")
    if raw["kind"] != "exact" and (type(digits) is not int or digits < 0):
        raise ValueError(f"part '{entry.get('id')}': rule digits {digits!r}: expected a whole number >= 0")
    tolerance = raw.get("tolerance") or {}
    if not isinstance(tolerance, dict):
        raise ValueError(f"part '{entry.get('id')}': rule tolerance {tolerance!r}: expected abs and/or rel numbers")
    return PartRule(raw["kind"], digits, _fraction(tolerance.get("abs", raw.get("abs_tol"))),
                    _fraction(tolerance.get("rel", raw.get("rel_tol"))))


def _fraction(value: Any) -> Fraction | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        # (ValueError, as for every other bad manifest value: the callers report them alike)
        raise ValueError(f"tolerance {value!r}: expected a number or a fraction such as '1/100'")
    fraction = Fraction(str(value)) if not isinstance(value, float) else Fraction(repr(value))
    if fraction < 0:
        raise ValueError(f"tolerance {value!r}: expected a number >= 0")
    return fraction


def part_kind(entry: dict[str, Any]) -> str:
    """`numeric` (a scalar, vector, matrix or tensor of numbers) unless the entry says otherwise."""
    return str(entry.get("kind", "numeric"))


def part_credit(entry: dict[str, Any]) -> str:
    """`entries` (partial credit entry by entry, the default) or `all` (all or nothing)."""
    credit = entry.get("credit", "entries")
    if credit not in ("entries", "all"):
        raise ValueError(f"part '{entry.get('id')}': credit {credit!r}: expected entries or all")
    return str(credit)


def tolerance_of(rule: PartRule, value: Fraction) -> Fraction:
    """How far from `value` an answer may be under a rounded rule (0 for an exact one)."""
    if rule.exact:
        return Fraction(0)
    return (rule.abs_tol or 0) + (rule.rel_tol or 0) * abs(value)


def accepts(rule: PartRule, key: float, response: Fraction | float) -> bool:
    """Whether a response's value (exact, or a float for a closed form in e) earns the entry.

    An exact rule takes an integer key only when equal; a non-integer key (a double) when within
    `EXACT_RELATIVE` of it. A rounded rule takes anything within its tolerance.
    """
    if isinstance(response, float) and not math.isfinite(response):
        return False
    exact_key = Fraction(key) if isinstance(key, int) else Fraction(repr(key))
    gap = abs(Fraction(response) - exact_key) if isinstance(response, Fraction) else abs(
        Fraction(repr(response)) - exact_key)
    if rule.exact:
        if isinstance(key, int) and isinstance(response, Fraction):
            return gap == 0
        return gap <= EXACT_RELATIVE * max(Fraction(1), abs(exact_key))
    return gap <= tolerance_of(rule, exact_key)

"""How a part's blanks are laid out in HTML, shared by the formats: a scalar after its prompt, a
vector as a column, a matrix as a grid, a tensor as a grid per leading index ("block (n, j)"),
each blank made by the format's own function."""

from __future__ import annotations

import html
from collections.abc import Callable
from itertools import product

from generator.export.common import ExportPart, Target, html_of

__all__ = ["entry_label", "part_html", "rule_hint"]

_CELL = 'style="border:1px solid #999;padding:2px 4px"'


def entry_label(part_id: str, index: tuple[int, ...]) -> str:
    """`dE_dW[1,2]`; a scalar part is its id alone."""
    return part_id + (f"[{','.join(map(str, index))}]" if index else "")


def rule_hint(part: ExportPart, scale: int = 0) -> str:
    """What the online form asks for beyond the value: rounding, and a power of ten (QTI 1.2)."""
    hints = []
    if part.rounded_online:
        hints.append("give each value to at least 4 significant digits")
    elif part.rule.kind == "decimals":
        hints.append(f"give each value to {part.rule.digits} decimal places")
    elif part.rule.kind == "sigfigs":
        hints.append(f"give each value to {part.rule.digits} significant digits")
    if scale:
        hints.append(f"enter each value multiplied by \\(10^{{{scale}}}\\)")
    return f" <em>({'; '.join(hints)})</em>" if hints else ""


def part_html(part: ExportPart, blank: Callable[[Target], str], scale: int = 0) -> str:
    """The part's prompt and its blanks; `blank` makes one blank's markup (a cloze code, an interaction)."""
    head = f'<div class="part">({html.escape(part.id)}) {html_of(part.prompt)}{rule_hint(part, scale)}'
    by_index = {t.index: t for t in part.targets}
    shape = part.shape
    if not shape:
        return f"{head} {blank(part.targets[0])}</div>"
    if len(shape) == 1:
        rows = "".join(f"<tr><td {_CELL}>{blank(by_index[(i,)])}</td></tr>" for i in range(1, shape[0] + 1))
        return f'{head}<table style="border-collapse:collapse"><tbody>{rows}</tbody></table></div>'
    blocks = []
    for lead in product(*(range(1, n + 1) for n in shape[:-2])):
        rows = "".join(
            "<tr>" + "".join(f"<td {_CELL}>{blank(by_index[(*lead, i, j)])}</td>" for j in range(1, shape[-1] + 1))
            + "</tr>" for i in range(1, shape[-2] + 1))
        title = f"<div>block ({', '.join(map(str, lead))})</div>" if lead else ""
        blocks.append(f'{title}<table style="border-collapse:collapse"><tbody>{rows}</tbody></table>')
    return head + "".join(blocks) + "</div>"

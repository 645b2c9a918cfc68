"""Tables as aligned markdown: printed as they are, and written to out/bench/ with the JSON."""
from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any


def fmt(value: Any, digits: int = 1) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return "-" if math.isnan(value) else f"{value:.{digits}f}"
    return str(value)


def percent(value: float | None) -> str:
    return "-" if value is None or math.isnan(value) else f"{value * 100:+.1f} %"


def table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A markdown table padded so it also reads as plain text; the first column left-aligned,
    the others right-aligned."""
    widths = [max(len(headers[i]), *(len(row[i]) for row in rows)) for i in range(len(headers))]

    def line(cells: Sequence[str]) -> str:
        padded = [c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths))]
        return "| " + " | ".join(padded) + " |"

    rule = "|" + "|".join(("-" * (w + 1) + ":") if i else (":" + "-" * (w + 1))
                          for i, w in enumerate(widths)) + "|"
    return "\n".join([line(headers), rule, *(line(row) for row in rows)])


def section(title: str, body: str, note: str = "") -> str:
    return f"### {title}\n\n{body}\n" + (f"\n{note}\n" if note else "")

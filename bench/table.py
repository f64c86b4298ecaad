"""Rendering records as an aligned terminal table, CSV or JSON."""

from __future__ import annotations

import csv
import io
import json
import math
from dataclasses import dataclass
from typing import Any, Callable, Optional, Sequence

from .escape import terminal

FORMATS = ("table", "csv", "json")
EXPORT_FORMATS = ("csv", "json", "parquet")  # cnnbench export


@dataclass(frozen=True)
class Column:
    key: str
    header: str  # with its unit, e.g. "GMACs", "act (MiB)"
    fmt: Callable[[Any], str] = str
    align: str = ">"  # "<" for text


def thousands(value: Any) -> str:
    return "-" if value is None else f"{value:,}"


def scaled(divisor: float, digits: int = 2) -> Callable[[Any], str]:
    def fmt(value: Any) -> str:
        if value is None or (isinstance(value, float) and math.isnan(value)):
            return "-"
        scaled_value = value / divisor
        if scaled_value and abs(scaled_value) < 10 ** -digits:  # keep small figures readable: 0.000416, not 0.000
            return f"{scaled_value:.3g}"
        return f"{scaled_value:,.{digits}f}"
    return fmt


def percent(value: Any) -> str:
    return "-" if value is None or math.isnan(value) else f"{100 * value:.1f}%"


def shape(value: Any) -> str:
    return "-" if value is None else "x".join(map(str, value))


def render_table(rows: Sequence[dict[str, Any]], columns: Sequence[Column], footer: Optional[dict[str, Any]] = None) -> str:
    cells = [[c.header for c in columns]]
    # escaped before the widths are measured: a name's control characters take their printed width
    cells += [[terminal(c.fmt(row.get(c.key))) for c in columns] for row in rows]
    if footer is not None:
        cells.append([c.fmt(footer[c.key]) if c.key in footer else "" for c in columns])
    widths = [max(len(r[i]) for r in cells) for i in range(len(columns))]
    lines = []
    for n, r in enumerate(cells):
        lines.append("  ".join(f"{v:{c.align}{w}}" for v, c, w in zip(r, columns, widths)).rstrip())
        if n == 0 or (footer is not None and n == len(cells) - 2):
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _plain(value: Any) -> Any:
    if isinstance(value, tuple):
        return list(value)
    if isinstance(value, float) and math.isnan(value):
        return None
    return value


def render_csv(rows: Sequence[dict[str, Any]]) -> str:
    if not rows:
        return ""
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(rows[0]), lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: shape(v) if isinstance(v, tuple) else v for k, v in row.items()})
    return out.getvalue().rstrip("\n")


def render_json(document: Any) -> str:
    def default(value: Any) -> Any:
        return _plain(value) if isinstance(value, tuple) else str(value)

    def clean(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: clean(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [clean(v) for v in value]
        return _plain(value)

    return json.dumps(clean(document), indent=2, default=default)

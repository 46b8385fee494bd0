"""The workflow's HTML pages share one style sheet and one table builder (the validation
report and the model comparison's page), so every page reads alike and fits a 1400 px window."""

from __future__ import annotations

import html
from collections.abc import Sequence
from typing import Any

import numpy as np

STYLE = (
    "body{font-family:sans-serif;max-width:1240px;margin:auto;padding:0 12px;line-height:1.4}"
    "table{border-collapse:collapse;margin:6px 0 14px;font-size:14px;max-width:100%}"
    "td,th{border:1px solid #ccc;padding:3px 7px;vertical-align:top;overflow-wrap:anywhere}"
    "th{background:#eef2f6;text-align:left}td.num{text-align:right;white-space:nowrap}"
    "img{max-width:100%;height:auto}details{margin:6px 0 14px}summary{cursor:pointer}"
    ".warning{color:#8a1c1c}"
)


def cell_text(value: Any) -> str:
    """A table cell's text: '–' for a missing number, floats to 4 significant digits."""
    if value is None or (isinstance(value, float) and not np.isfinite(value)):
        return "–"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def html_table(columns: Sequence[str], rows: Sequence[Sequence[Any]], numeric: int = 0) -> str:
    """A table with escaped cells; the last ``numeric`` columns are right-aligned numbers."""
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in columns)
    first_numeric = len(columns) - numeric
    body = "".join(
        "<tr>"
        + "".join(
            f"<td{' class=num' if i >= first_numeric else ''}>{html.escape(cell_text(v))}</td>"
            for i, v in enumerate(row)
        )
        + "</tr>"
        for row in rows
    )
    return f"<table><tr>{head}</tr>{body}</table>"

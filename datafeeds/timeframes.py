"""Timeframe strings (``1m``, ``5m``, ``1h``, ``4h``, ``1d``, ``1w``, ``1mo``) and durations.

Months are calendar months: their bars open on the 1st. Where one fixed duration is needed
(gap counting, the forming-bar check) a month counts as its shortest, 28 days.
"""
from __future__ import annotations

import re

import pandas as pd

from datafeeds.errors import DataError

_UNITS = {"s": "s", "m": "min", "h": "h", "d": "D", "w": "W"}
_PATTERN = re.compile(r"^(\d+)(mo|[smhdw])$")


def parse_timeframe(text: str) -> tuple[int, str]:
    """``"15m"`` -> ``(15, "m")``; raises DataError naming the accepted forms."""
    match = _PATTERN.match(text.strip().lower()) if isinstance(text, str) else None
    if not match or int(match.group(1)) == 0:
        raise DataError(f"timeframe {text!r} not understood; use a count and a unit such as "
                        "1m, 5m, 1h, 4h, 1d, 1w or 1mo")
    return int(match.group(1)), match.group(2)


def timeframe_delta(text: str) -> pd.Timedelta:
    """Duration of one bar of ``text``; a week is 7 days, a month its shortest (28 days)."""
    count, unit = parse_timeframe(text)
    days = {"w": 7, "mo": 28}.get(unit)
    return pd.Timedelta(count * days, "D") if days else pd.Timedelta(count, _UNITS[unit])


def is_monthly(text: str) -> bool:
    """Whether ``text`` counts calendar months (``1mo``, ``3mo``)."""
    return parse_timeframe(text)[1] == "mo"


def format_timedelta(delta: pd.Timedelta) -> str:
    """A bar size in the shortest timeframe spelling: 3600 s -> ``"1h"``, 90 s -> ``"90s"``."""
    seconds = int(delta.total_seconds())
    for unit, size in (("w", 604800), ("d", 86400), ("h", 3600), ("m", 60)):
        if seconds and seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{delta.total_seconds():g}s"

"""The OHLCV contract (DESIGN §3) and its one strict validator.

A valid frame: ``DatetimeIndex`` named ``datetime``, tz UTC, bar *open* times, strictly
increasing and unique; float64 columns ``open high low close volume``; no NaN; prices > 0;
``low <= min(open, close)``, ``high >= max(open, close)``; volume >= 0; every value finite.
Every way in (file,
download, store) ends in :func:`validate_ohlcv`. It never changes a value: it refuses.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from datafeeds.errors import DataError

COLUMNS: tuple[str, ...] = ("open", "high", "low", "close", "volume")
_SHOW_ROWS = 5


def _rows(index: pd.Index, mask: np.ndarray) -> str:
    """Describe the first offending rows (by timestamp) and how many there are."""
    bad = index[mask]
    shown = ", ".join(str(t) for t in bad[:_SHOW_ROWS])
    more = f" (+{len(bad) - _SHOW_ROWS} more)" if len(bad) > _SHOW_ROWS else ""
    return f"{len(bad)} row(s): {shown}{more}"


def _positions(mask: np.ndarray) -> str:
    """Describe the first offending rows by position (0-based) when times are unusable."""
    where = np.flatnonzero(mask)
    shown = ", ".join(str(i) for i in where[:_SHOW_ROWS])
    more = f" (+{len(where) - _SHOW_ROWS} more)" if len(where) > _SHOW_ROWS else ""
    return f"{len(where)} row(s) at position {shown}{more}"


def validate_ohlcv(frame: pd.DataFrame, *, source: str = "<frame>") -> pd.DataFrame:
    """Check ``frame`` against the OHLCV contract and return it in canonical form.

    Parameters
    ----------
    frame : pandas.DataFrame
        Bars indexed by a tz-aware ``DatetimeIndex`` with columns ``open high low close volume``
        (extra columns are dropped; column order is normalised).
    source : str
        Where the bars came from, used in error messages (a file path, ``ccxt:binance``...).

    Returns
    -------
    pandas.DataFrame
        A new frame: float64 columns in contract order, index named ``datetime`` in UTC.

    Raises
    ------
    DataError
        Naming ``source``, the first offending rows and the rule broken.
    """
    if not isinstance(frame, pd.DataFrame) or frame.empty:
        raise DataError(f"{source}: no bars (empty data); expected at least one OHLCV row")
    missing = [c for c in COLUMNS if c not in frame.columns]
    if missing:
        raise DataError(
            f"{source}: missing column(s) {missing}; expected columns {list(COLUMNS)} "
            f"(got {list(frame.columns)})"
        )
    index = frame.index
    if not isinstance(index, pd.DatetimeIndex):
        raise DataError(f"{source}: rule 'one timezone-aware DatetimeIndex' broken: the index is "
                        f"{type(index).__name__} (mixed timezones or non-dates?); expected "
                        "bar open times in one timezone, e.g. all UTC")
    if index.hasnans:
        raise DataError(f"{source}: rule 'no missing timestamps' broken at "
                        f"{_positions(index.isna())}")
    if index.tz is None:
        raise DataError(
            f"{source}: timestamps are naive; expected timezone-aware (UTC) bar open times "
            "(pass the source timezone when loading)"
        )
    out = pd.DataFrame(index=index.tz_convert("UTC").rename("datetime"))
    for col in COLUMNS:
        values = pd.to_numeric(frame[col], errors="coerce").to_numpy(dtype="float64")
        bad = ~np.isfinite(values)
        if bad.any():
            raise DataError(f"{source}: rule 'no NaN or non-numeric values' broken in column "
                            f"{col!r} at {_rows(index, bad)} (NaN, infinite or text)")
        out[col] = values
    ts = out.index.asi8
    dup = np.zeros(len(ts), dtype=bool)
    dup[1:] = ts[1:] == ts[:-1]
    if dup.any():
        raise DataError(f"{source}: rule 'unique timestamps' broken at {_rows(out.index, dup)}; "
                        "run with --repair to drop duplicates (keeps the last)")
    unsorted = np.zeros(len(ts), dtype=bool)
    unsorted[1:] = ts[1:] < ts[:-1]
    if unsorted.any():
        raise DataError(f"{source}: rule 'timestamps strictly increasing' broken at "
                        f"{_rows(out.index, unsorted)}; run with --repair to sort")
    o, h, lo, c, v = (out[col].to_numpy() for col in COLUMNS)
    checks = (
        ("prices > 0", (o <= 0) | (h <= 0) | (lo <= 0) | (c <= 0)),
        ("volume >= 0", v < 0),
        ("high >= low", h < lo),
        ("low <= min(open, close)", lo > np.minimum(o, c)),
        ("high >= max(open, close)", h < np.maximum(o, c)),
    )
    for rule, bad in checks:
        if bad.any():
            raise DataError(f"{source}: rule {rule!r} broken at {_rows(out.index, bad)}")
    return out

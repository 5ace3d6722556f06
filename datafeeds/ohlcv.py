"""The OHLCV contract (DESIGN §3) and its one strict validator.

A valid frame: ``DatetimeIndex`` named ``datetime``, tz UTC, bar *open* times, strictly
increasing and unique; float64 columns ``open high low close volume``; no NaN; prices > 0;
``low <= min(open, close)``, ``high >= max(open, close)``; volume >= 0; every value finite.
Every way in (file,
download, store) ends in :func:`validate_ohlcv`; bars polled live as arrays go through
:func:`validate_rows`, the same rules without building a frame. It never changes a value: it
refuses.
"""
from __future__ import annotations

from collections.abc import Callable

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


def validate_ohlcv(frame: pd.DataFrame, *, source: str = "<frame>",
                   where: Callable[[np.ndarray], str] | None = None) -> pd.DataFrame:
    """Check ``frame`` against the OHLCV contract and return it in canonical form.

    Parameters
    ----------
    frame : pandas.DataFrame
        Bars indexed by a tz-aware ``DatetimeIndex`` with columns ``open high low close volume``
        (extra columns are dropped; column order is normalised).
    source : str
        Where the bars came from, used in error messages (a file path, ``ccxt:binance``...).
    where : callable, optional
        Names the rows of a mask in errors (a file's line numbers and text); default their
        times.

    Returns
    -------
    pandas.DataFrame
        A new frame: float64 columns in contract order, index named ``datetime`` in UTC
        at nanosecond resolution.

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
    columns = {}
    for col in COLUMNS:
        series = frame[col]
        values = series.to_numpy(dtype="float64") if pd.api.types.is_float_dtype(series) \
            else pd.to_numeric(series, errors="coerce").to_numpy(dtype="float64")
        columns[col] = values
    try:  # one unit whatever the reader chose (pandas 3 reads text at us): same bars, same hash
        utc = index.tz_convert("UTC").as_unit("ns").rename("datetime")
    except (OverflowError, ValueError):
        raise DataError(f"{source}: times outside 1677..2262 (not bar times); check the "
                        "time column's unit or format") from None
    _check(utc.asi8, np.column_stack(list(columns.values())), source,
           where or (lambda mask: _rows(utc, mask)))
    return pd.DataFrame(columns, index=utc)


def validate_rows(times_ms: np.ndarray, values: np.ndarray, *, source: str) -> None:
    """The same contract for bars as arrays (a live poll): no frame built, same rules.

    Parameters
    ----------
    times_ms : numpy.ndarray
        int64 bar open times, ms since the epoch (UTC).
    values : numpy.ndarray
        ``(n, 5)`` float64 open, high, low, close, volume.
    source : str
        Where the bars came from, for messages.

    Raises
    ------
    DataError
        As :func:`validate_ohlcv`.
    """
    if len(times_ms) == 0:
        raise DataError(f"{source}: no bars (empty data); expected at least one OHLCV row")
    ts = np.asarray(times_ms, dtype=np.int64)
    _check(ts, np.asarray(values, dtype=np.float64), source,
           lambda mask: _rows(pd.to_datetime(ts, unit="ms", utc=True), mask))


def _check(ts: np.ndarray, values: np.ndarray, source: str,
           where: Callable[[np.ndarray], str]) -> None:
    """Every value rule of the contract over times ``ts`` and ``(n, 5)`` OHLCV ``values``."""
    for j, col in enumerate(COLUMNS):
        bad = ~np.isfinite(values[:, j])
        if bad.any():
            raise DataError(f"{source}: rule 'no NaN or non-numeric values' broken in column "
                            f"{col!r} at {where(bad)} (NaN, infinite or text)")
    dup = np.zeros(len(ts), dtype=bool)
    dup[1:] = ts[1:] == ts[:-1]
    if dup.any():
        raise DataError(f"{source}: rule 'unique timestamps' broken at {where(dup)}; "
                        "run with --repair to drop duplicates (keeps the last)")
    unsorted = np.zeros(len(ts), dtype=bool)
    unsorted[1:] = ts[1:] < ts[:-1]
    if unsorted.any():
        raise DataError(f"{source}: rule 'timestamps strictly increasing' broken at "
                        f"{where(unsorted)}; run with --repair to sort")
    o, h, lo, c, v = values.T
    checks = (
        ("prices > 0", (o <= 0) | (h <= 0) | (lo <= 0) | (c <= 0)),
        ("volume >= 0", v < 0),
        ("high >= low", h < lo),
        ("low <= min(open, close)", lo > np.minimum(o, c)),
        ("high >= max(open, close)", h < np.maximum(o, c)),
    )
    for rule, bad in checks:
        if bad.any():
            raise DataError(f"{source}: rule {rule!r} broken at {where(bad)}")

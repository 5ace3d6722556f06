"""Read bar files into validated OHLCV frames, whatever layout they come in.

Detected layouts: plain ``datetime,open,high,low,close,volume`` (CSV or Parquet, header names
case-insensitive, ``date``/``timestamp``/``time`` accepted for the time column), Yahoo Finance
CSV (``Date,...,Adj Close,Volume``; optionally scaled to adjusted prices), and epoch seconds or
milliseconds in the time column. Naive timestamps are read in ``tz`` (default UTC). Every file
ends in the one validator.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from datafeeds.errors import DataError
from datafeeds.ohlcv import COLUMNS, validate_ohlcv

_TIME_NAMES = ("datetime", "date", "timestamp", "time", "timestamp_utc", "open_time")


def _read_table(path: Path) -> pd.DataFrame:
    """Parquet or (optionally gzipped) CSV, by file name."""
    name = path.name.lower()
    try:
        if name.endswith(".parquet"):
            return pd.read_parquet(path).reset_index()
        if name.endswith(".feather"):
            return pd.read_feather(path)
        return pd.read_csv(path)
    except FileNotFoundError:
        raise DataError(f"{path}: no such file") from None
    except (pd.errors.EmptyDataError, pd.errors.ParserError, UnicodeDecodeError,
            OSError, ValueError) as exc:
        raise DataError(f"{path}: cannot be read as a table ({exc}); expected CSV with a "
                        "header line, or Parquet/feather") from None


def _times(column: pd.Series, tz: str, source: str) -> pd.DatetimeIndex:
    """Parse a time column: ISO strings, or epoch seconds / milliseconds (by magnitude)."""
    if pd.api.types.is_numeric_dtype(column):
        values = column.to_numpy(dtype=np.float64)
        unit = "ms" if np.nanmax(np.abs(values)) > 1e11 else "s"
        return pd.DatetimeIndex(pd.to_datetime(values, unit=unit, utc=True), name="datetime")
    try:
        parsed = pd.to_datetime(column, format="mixed")
    except (ValueError, TypeError) as exc:
        raise DataError(f"{source}: time column cannot be parsed as dates ({exc})") from None
    if getattr(parsed.dt, "tz", None) is None:
        parsed = parsed.dt.tz_localize(tz)
    return pd.DatetimeIndex(parsed.dt.tz_convert("UTC"), name="datetime")


def load_file(path: Path | str, *, tz: str = "UTC", adjusted: bool = False) -> pd.DataFrame:
    """Load bars from ``path`` and validate them (strict).

    Parameters
    ----------
    path : path-like
        CSV (optionally ``.gz``), Parquet or feather file.
    tz : str
        Timezone of naive timestamps in the file (ignored for aware ones).
    adjusted : bool
        For Yahoo files: scale open/high/low/close by ``Adj Close / Close`` (split and
        dividend adjusted prices, consistently across the bar).

    Raises
    ------
    DataError
        Naming the file, what was found and what is expected.
    """
    path = Path(path)
    raw = _read_table(path)
    source = str(path)
    if raw.empty:
        raise DataError(f"{source}: no bars (the file has a header but no rows)")
    raw.columns = [str(c).strip().lower() for c in raw.columns]
    time_col = next((c for c in _TIME_NAMES if c in raw.columns), None)
    missing = [c for c in COLUMNS if c not in raw.columns]
    if time_col is None or missing:
        raise DataError(f"{source}: columns {list(raw.columns)} are not a bar layout; expected "
                        f"a time column ({'/'.join(_TIME_NAMES)}) and {list(COLUMNS)}")
    if "adj close" in raw.columns and adjusted:
        factor = pd.to_numeric(raw["adj close"], errors="coerce") / pd.to_numeric(
            raw["close"], errors="coerce")
        for col in ("open", "high", "low", "close"):
            raw[col] = pd.to_numeric(raw[col], errors="coerce") * factor
    frame = raw[list(COLUMNS)].copy()
    frame.index = _times(raw[time_col], tz, source)
    return validate_ohlcv(frame, source=source)

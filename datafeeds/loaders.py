"""Read bar files into OHLCV frames, whatever layout they come in, then validate them.

Detected layouts (by extension, then by header): plain ``datetime,open,high,low,close,volume``
CSV or Parquet (header names case-insensitive; ``date``/``timestamp``/``time``/
``timestamp_utc``/``open_time`` accepted for the time column); Yahoo Finance CSV
(``Adj Close``, optionally used to adjust O/H/L/C consistently); backtrader generic CSV with
separate ``Date`` and ``Time`` columns (also when the header omits ``Time``, as in
backtrader's own 1-minute sample); CryptoDataDownload CSV (a banner line, ``09-AM`` hours,
base-asset ``volume_<base>``); freqtrade JSON (``[[ms, o, h, l, c, v], ...]``) and feather
candles; ccxt ``fetch_ohlcv`` lists. Epoch seconds or milliseconds are detected by magnitude;
naive timestamps are read in ``tz`` (default UTC).
"""
from __future__ import annotations

import gzip
import json
import re
from pathlib import Path

import numpy as np
import pandas as pd

from datafeeds.errors import DataError
from datafeeds.ohlcv import COLUMNS
from datafeeds.validate import ValidationReport, check_ohlcv

_TIME_NAMES = ("datetime", "date", "timestamp", "time", "timestamp_utc", "open_time")
_PRICE_NAMES = {"open", "high", "low", "close"}
_HOUR_AMPM = re.compile(r"^\d{4}-\d{2}-\d{2} \d{1,2}-[AP]M$")


def frame_from_ccxt(rows: list[list[float]]) -> pd.DataFrame:
    """ccxt ``fetch_ohlcv`` rows ``[ms, open, high, low, close, volume]`` -> raw frame."""
    if not rows:
        return pd.DataFrame(columns=list(COLUMNS),
                            index=pd.DatetimeIndex([], tz="UTC", name="datetime"))
    array = np.asarray(rows, dtype=np.float64)
    if array.ndim != 2 or array.shape[1] < 6:
        raise DataError(f"candles have shape {array.shape}; expected rows of "
                        "[ms, open, high, low, close, volume]")
    index = pd.DatetimeIndex(pd.to_datetime(array[:, 0].astype(np.int64), unit="ms", utc=True),
                             name="datetime")
    return pd.DataFrame(array[:, 1:6], index=index, columns=list(COLUMNS))


def _head(path: Path, lines: int = 3) -> list[str]:
    opener = gzip.open if path.name.lower().endswith(".gz") else open
    try:
        with opener(path, "rt", encoding="utf-8", errors="replace") as fh:
            return [fh.readline().rstrip("\r\n") for _ in range(lines)]
    except FileNotFoundError:
        raise DataError(f"{path}: no such file") from None
    except OSError as exc:
        raise DataError(f"{path}: cannot be read ({exc})") from None


def _fields(line: str) -> list[str]:
    return [f.strip().lower() for f in line.split(",")]


def _read_csv(path: Path) -> pd.DataFrame:
    head = _head(path)
    skip = 0
    # a banner line above the header (CryptoDataDownload) has no price column names
    if not _PRICE_NAMES & set(_fields(head[0])) and _PRICE_NAMES <= set(_fields(head[1])):
        skip = 1
    header = _fields(head[skip])
    first = _fields(head[skip + 1]) if len(head) > skip + 1 else []
    names = None
    if len(first) == len(header) + 1 and "date" in header and "time" not in header:
        # backtrader's sample: header "Date,Open,..." over rows "Date,Time,Open,..."
        names = [header[0], "time", *header[1:]]
    try:
        return pd.read_csv(path, skiprows=skip + (1 if names else 0), names=names,
                           header=None if names else 0, skipinitialspace=True)
    except (pd.errors.EmptyDataError, pd.errors.ParserError, UnicodeDecodeError,
            ValueError) as exc:
        raise DataError(f"{path}: cannot be read as CSV ({exc}); expected a header line "
                        "and one bar per row") from None


def _read_json(path: Path) -> pd.DataFrame:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise DataError(f"{path}: not valid JSON ({exc})") from None
    if isinstance(data, list) and data and isinstance(data[0], list):
        frame = frame_from_ccxt(data)
        return frame.reset_index()
    if isinstance(data, list) and data and isinstance(data[0], dict):
        return pd.DataFrame(data)
    raise DataError(f"{path}: JSON holds no candles; expected [[ms, o, h, l, c, v], ...] "
                    "(freqtrade/ccxt) or a list of objects with date and OHLCV fields")


def _read_table(path: Path) -> pd.DataFrame:
    name = path.name.lower()
    try:
        if name.endswith(".parquet"):
            frame = pd.read_parquet(path)
            return frame.reset_index() if isinstance(frame.index, pd.DatetimeIndex) else frame
        if name.endswith(".feather"):
            return pd.read_feather(path)
    except FileNotFoundError:
        raise DataError(f"{path}: no such file") from None
    except (OSError, ValueError) as exc:
        raise DataError(f"{path}: cannot be read ({exc})") from None
    if name.endswith(".json"):
        return _read_json(path)
    return _read_csv(path)


def _times(raw: pd.DataFrame, tz: str, source: str) -> pd.DatetimeIndex:
    """Bar times from the time column(s): ISO strings, ``09-AM`` hours, epoch s or ms."""
    col = next((c for c in _TIME_NAMES if c in raw.columns), None)
    if col is None:
        raise DataError(f"{source}: no time column among {list(raw.columns)}; expected one of "
                        f"{list(_TIME_NAMES)}")
    column = raw[col]
    if col == "date" and "time" in raw.columns:  # backtrader: separate Date and Time
        column = raw["date"].astype(str) + " " + raw["time"].astype(str)
    if pd.api.types.is_datetime64_any_dtype(column):
        parsed = pd.to_datetime(column)
    elif pd.api.types.is_numeric_dtype(column):
        values = column.to_numpy(dtype=np.float64)
        unit = "ms" if np.nanmax(np.abs(values)) > 1e11 else "s"
        return pd.DatetimeIndex(pd.to_datetime(values, unit=unit, utc=True), name="datetime")
    else:
        text = column.astype(str).str.strip()
        fmt = "%Y-%m-%d %I-%p" if _HOUR_AMPM.match(text.iloc[0]) else "mixed"
        try:
            parsed = pd.to_datetime(text, format=fmt)
        except (ValueError, TypeError) as exc:
            raise DataError(f"{source}: time column {col!r} cannot be parsed as dates ({exc})"
                            "; mixed timezones or text in it? Use one format, e.g. "
                            "2024-01-31T23:59:00Z") from None
    if getattr(parsed.dt, "tz", None) is None:
        parsed = parsed.dt.tz_localize(tz, ambiguous="raise", nonexistent="raise")
    return pd.DatetimeIndex(parsed.dt.tz_convert("UTC"), name="datetime")


def read_bars(path: Path | str, *, tz: str = "UTC", adjusted: bool = False) -> pd.DataFrame:
    """Read a bar file into an unvalidated frame (UTC index, OHLCV columns, file order).

    See :func:`load_file` for the parameters; use this with ``check_ohlcv`` to get a report.
    """
    path = Path(path)
    raw = _read_table(path)
    source = str(path)
    if raw.empty:
        raise DataError(f"{source}: no bars (the file has a header but no rows)")
    raw.columns = [str(c).strip().lower() for c in raw.columns]
    if "volume" not in raw.columns or any(c.startswith("volume_") for c in raw.columns):
        # CryptoDataDownload: volume_<base> is base-asset volume, volume is quote volume
        base = next((c for c in raw.columns if c.startswith("volume_")), None)
        if base is not None:
            raw["volume"] = raw[base]
    missing = [c for c in COLUMNS if c not in raw.columns]
    if missing:
        raise DataError(f"{source}: columns {list(raw.columns)} lack {missing}; expected a "
                        f"time column and {list(COLUMNS)}")
    frame = raw[list(COLUMNS)].apply(pd.to_numeric, errors="coerce")
    if adjusted:
        if "adj close" not in raw.columns:
            raise DataError(f"{source}: --adjusted needs an 'Adj Close' column (Yahoo format)")
        factor = pd.to_numeric(raw["adj close"], errors="coerce") / frame["close"]
        for col in ("open", "high", "low", "close"):
            frame[col] = frame[col] * factor
    frame.index = _times(raw, tz, source)
    return frame


def load_file(path: Path | str, *, tz: str = "UTC", adjusted: bool = False,
              repair: bool = False) -> pd.DataFrame:
    """Load bars from ``path`` and validate them.

    Parameters
    ----------
    path : path-like
        CSV (optionally ``.gz``), Parquet, feather or JSON file.
    tz : str
        Timezone of naive timestamps in the file (ignored for aware ones).
    adjusted : bool
        Yahoo files: scale open/high/low/close by ``Adj Close / Close`` (split and dividend
        adjusted prices, consistently across the bar).
    repair : bool
        Drop exact duplicates, keep the last of duplicate timestamps, sort (reported by
        :func:`load_file_checked`); values are never changed.

    Raises
    ------
    DataError
        Naming the file, what was found and what is expected.
    """
    return load_file_checked(path, tz=tz, adjusted=adjusted, repair=repair)[0]


def load_file_checked(path: Path | str, *, tz: str = "UTC", adjusted: bool = False,
                      repair: bool = False, timeframe: str | None = None
                      ) -> tuple[pd.DataFrame, ValidationReport]:
    """:func:`load_file` plus the validation report (gaps, runs, repairs)."""
    raw = read_bars(path, tz=tz, adjusted=adjusted)
    return check_ohlcv(raw, source=str(path), repair=repair, timeframe=timeframe)

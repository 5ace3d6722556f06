"""Series of values an exchange publishes for a perpetual future besides its candles: funding
rates and open interest.

The contract (checked by ``validate_values``): a frame with one float64 column ``value``,
indexed by a tz-aware UTC ``DatetimeIndex`` named ``datetime``, strictly increasing, of the
time each value became known, never the start of the period it covers:

- ``funding_rate``: the rate settled at each funding time (ccxt's ``timestamp``), known
  then; any finite number (negative when shorts pay longs);
- ``open_interest``: the open interest (base amount) of a period, known at the period's end
  (the exchange's stamp plus the period: exchanges do not all say which end they stamp);
  finite and not negative.

Stored beside the bars (``BarStore.write_values``) and read as feature inputs by the same
as-of rule as other series (``features_numba.sources``).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from datafeeds.bar_files import WriteProgress, read_frame, write_frame
from datafeeds.errors import DataError

SERIES = ("funding_rate", "open_interest")


def check_series(series: str) -> str:
    """``series`` if it is one of :data:`SERIES`, else a DataError naming them."""
    if series not in SERIES:
        raise DataError(f"series {series!r}: use one of {', '.join(SERIES)}")
    return series


def values_frame(times_ms: list[int] | np.ndarray, values: list[float] | np.ndarray
                 ) -> pd.DataFrame:
    """Times (ms since the epoch, when each value became known) and values -> a raw frame."""
    index = pd.DatetimeIndex(pd.to_datetime(np.asarray(times_ms, dtype=np.int64), unit="ms",
                                            utc=True), name="datetime")
    return pd.DataFrame({"value": np.asarray(values, dtype=np.float64)}, index=index)


def validate_values(frame: pd.DataFrame, series: str, *, source: str) -> pd.DataFrame:
    """``frame`` if it is a valid series of ``series`` values (module doc), as float64 UTC.

    Raises
    ------
    DataError
        Naming ``source``, the rule broken and the first time that breaks it.
    """
    check_series(series)
    if list(frame.columns) != ["value"]:
        raise DataError(f"{source}: a {series} series has one column, 'value'; got "
                        f"{list(frame.columns)}")
    index = frame.index
    if not isinstance(index, pd.DatetimeIndex) or index.tz is None:
        raise DataError(f"{source}: a {series} series is indexed by tz-aware times")
    out = frame.astype(np.float64)
    out.index = index.tz_convert("UTC").as_unit("ns").rename("datetime")
    step = np.diff(out.index.asi8)
    if (step <= 0).any():
        at = out.index[int(np.argmax(step <= 0)) + 1]
        raise DataError(f"{source}: {series} times must be strictly increasing; {at} is not")
    value = out["value"].to_numpy()
    bad = ~np.isfinite(value) | ((value < 0) if series == "open_interest" else False)
    if bad.any():
        raise DataError(f"{source}: {series} at {out.index[int(np.argmax(bad))]} is "
                        f"{value[int(np.argmax(bad))]!r}; values must be finite"
                        + (" and not negative" if series == "open_interest" else ""))
    return out


def write_values_file(path: Path, frame: pd.DataFrame, series: str, fmt: str,
                      progress: WriteProgress | None = None) -> Path:
    """Replace ``path`` with a validated series in layout ``fmt`` (``bar_files``)."""
    return write_frame(path, validate_values(frame, series, source=str(path)), fmt, progress)


def read_values_file(path: Path, series: str, fmt: str | None = None) -> pd.DataFrame:
    """A series file (``datetime,value`` CSV, ``[[ms, value], ...]`` JSON or Parquet; by
    its extension unless ``fmt``), validated."""
    fmt = fmt or Path(path).suffix.lstrip(".").lower()
    if fmt not in ("csv", "json", "parquet"):
        raise DataError(f"{path}: a {series} file is .csv (datetime,value), .json "
                        "([[ms, value], ...]) or .parquet")
    if not Path(path).is_file():
        raise DataError(f"{path}: no such file")
    return validate_values(read_frame(Path(path), fmt, ("value",)), series, source=str(path))

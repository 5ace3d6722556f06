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

import csv
import gzip
import json
import re
from pathlib import Path

import numpy as np
import pandas as pd

from datafeeds.download_yfinance import adjust_to_adj_close
from datafeeds.errors import DataError
from datafeeds.ohlcv import COLUMNS
from datafeeds.quality import ValidationReport, check_ohlcv

_TIME_NAMES = ("datetime", "date", "timestamp", "time", "timestamp_utc", "open_time")
_PRICE_NAMES = {"open", "high", "low", "close"}
_HOUR_AMPM = re.compile(r"^\d{4}-\d{2}-\d{2} \d{1,2}-[AP]M$")
_OFFSET = r"(?:Z|[+-]\d{2}:?\d{2})$"


def frame_from_ccxt(rows: list[list[float]]) -> pd.DataFrame:
    """ccxt ``fetch_ohlcv`` rows ``[ms, open, high, low, close, volume]`` -> raw frame."""
    if not rows:
        return pd.DataFrame(columns=list(COLUMNS),
                            index=pd.DatetimeIndex([], tz="UTC", name="datetime"))
    try:
        array = np.asarray([list(r)[:6] for r in rows], dtype=np.float64)
    except (TypeError, ValueError) as exc:  # ragged rows, text, nested junk
        raise DataError(f"candles cannot be read as numbers ({_short(exc)}); expected rows of "
                        "[ms, open, high, low, close, volume]") from None
    if array.ndim != 2 or array.shape[1] < 6:
        raise DataError(f"candles have shape {array.shape}; expected rows of "
                        "[ms, open, high, low, close, volume]")
    if not np.isfinite(array[:, 0]).all():
        raise DataError("candles with a missing time; expected rows of "
                        "[ms, open, high, low, close, volume]")
    index = pd.DatetimeIndex(pd.to_datetime(array[:, 0].astype(np.int64), unit="ms", utc=True),
                             name="datetime")
    return pd.DataFrame(array[:, 1:6], index=index, columns=list(COLUMNS))


def _short(exc: BaseException) -> str:
    """An exception's text on one line, at most 200 characters."""
    text = " ".join(str(exc).split())
    return text[:200] + ("..." if len(text) > 200 else "")


def _head(path: Path, lines: int = 3) -> list[str]:
    opener = gzip.open if path.name.lower().endswith(".gz") else open
    try:
        with opener(path, "rt", encoding="utf-8", errors="replace") as fh:
            return [fh.readline().rstrip("\r\n") for _ in range(lines)]
    except FileNotFoundError:
        raise DataError(f"{path}: no such file") from None
    except (OSError, EOFError) as exc:
        raise DataError(f"{path}: cannot be read ({_short(exc)})") from None


_DELIMITERS = (",", ";", "\t", "|")
_DECIMAL_COMMA = re.compile(r"^-?\d+,\d+$")


def _delimiter(header: str, first: str) -> str:
    """The field separator: the candidate splitting the header and the first row alike."""
    counts = [(header.count(d), d) for d in _DELIMITERS
              if header.count(d) and header.count(d) == first.count(d)]
    if not counts:  # ragged first row: the header alone decides (its error comes later)
        counts = [(header.count(d), d) for d in _DELIMITERS if header.count(d)]
    return max(counts)[1] if counts else ","


def _fields(line: str, delimiter: str = ",") -> list[str]:
    return [f.strip().lower() for f in line.split(delimiter)]


def _read_csv(path: Path) -> pd.DataFrame:
    head = _head(path)
    delimiter = _delimiter(head[0], head[1])
    skip = 0
    # a banner line above the header (CryptoDataDownload) has no price column names
    if not _PRICE_NAMES & set(_fields(head[0], delimiter)):
        below = _delimiter(head[1], head[2])
        if _PRICE_NAMES <= set(_fields(head[1], below)):
            skip, delimiter = 1, below
    header = _fields(head[skip], delimiter)
    first = _fields(head[skip + 1], delimiter) if len(head) > skip + 1 else []
    names = None
    if len(first) == len(header) + 1 and "date" in header and "time" not in header:
        # backtrader's sample: header "Date,Open,..." over rows "Date,Time,Open,..."
        names = [header[0], "time", *header[1:]]
    # "1,5" under semicolons: a decimal comma (spreadsheets in much of Europe)
    decimal = "," if delimiter == ";" and any(_DECIMAL_COMMA.match(f) for f in first) else "."
    try:
        frame = pd.read_csv(path, sep=delimiter, decimal=decimal,
                            skiprows=skip + (1 if names else 0), names=names,
                            header=None if names else 0, skipinitialspace=True)
    except (pd.errors.EmptyDataError, pd.errors.ParserError, UnicodeDecodeError,
            ValueError, EOFError, OSError) as exc:
        raise DataError(f"{path}: cannot be read as CSV ({_short(exc)}); expected a header "
                        f"line and one bar per row, fields separated by {delimiter!r}") from None
    frame.attrs.update(path=str(path), first_line=skip + 2,  # file line (1-based) of bar 0
                       delimiter=delimiter, fields=len(names or header))
    return frame


def _read_json(path: Path) -> pd.DataFrame:
    opener = gzip.open if path.name.lower().endswith(".gz") else open
    try:
        with opener(path, "rt", encoding="utf-8") as fh:
            data = json.load(fh)
    except FileNotFoundError:
        raise DataError(f"{path}: no such file") from None
    except (OSError, EOFError, json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise DataError(f"{path}: not valid JSON ({_short(exc)})") from None
    if isinstance(data, list) and data and all(isinstance(r, list) for r in data):
        try:
            frame = frame_from_ccxt(data)
        except DataError as exc:
            raise DataError(f"{path}: {exc}") from None
        return frame.reset_index()
    if isinstance(data, list) and data and all(isinstance(r, dict) for r in data):
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
        raise DataError(f"{path}: cannot be read ({_short(exc)})") from None
    if name.endswith((".json", ".json.gz")):
        return _read_json(path)
    return _read_csv(path)


def _data_lines(raw: pd.DataFrame, rows: set[int]) -> dict[int, tuple[int, str]]:
    """File line number (1-based) and text of the CSV rows ``rows`` (0-based bar rows).

    Read again only on an error path; blank lines are skipped as pandas skips them.
    """
    path, first_line = raw.attrs.get("path"), raw.attrs.get("first_line")
    if path is None or not rows:
        return {}
    found: dict[int, tuple[int, str]] = {}
    row = -1
    opener = gzip.open if path.lower().endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8", errors="replace") as fh:
        for number, line in enumerate(fh, start=1):
            if number < first_line or not line.strip():
                continue
            row += 1
            if row in rows:
                found[row] = (number, line.rstrip("\r\n"))
                if len(found) == len(rows):
                    break
    return found


def _where(raw: pd.DataFrame, mask: np.ndarray, column: str) -> str:
    """The first offending rows of ``raw`` by file line (CSV) or row number, with values."""
    rows = np.flatnonzero(mask)
    lines = _data_lines(raw, {int(i) for i in rows[:5]})
    label = "line" if lines else "row"
    shown = ", ".join(f"{label} {lines[i][0] if lines else i + 1} ({raw[column].iloc[i]!r})"
                      for i in rows[:5])
    more = f" (+{len(rows) - 5} more)" if len(rows) > 5 else ""
    return f"{len(rows)} row(s): {shown}{more}"


def _lines_of(raw: pd.DataFrame, mask: np.ndarray) -> str:
    """The first offending bars of a CSV as file lines with their text (for the validator)."""
    rows = np.flatnonzero(mask)
    lines = _data_lines(raw, {int(i) for i in rows[:3]})
    shown = ", ".join(f"line {lines[i][0]} {lines[i][1][:100]!r}" for i in rows[:3])
    more = f" (+{len(rows) - 3} more)" if len(rows) > 3 else ""
    return f"{len(rows)} row(s): {shown}{more}"


def _refuse_short_rows(raw: pd.DataFrame, frame: pd.DataFrame, source: str) -> None:
    """A row with fewer fields than the header (a truncated write) is named, not read as NaN.

    Only rows with a missing value are looked at (pandas fills a short row with NaN).
    """
    expected, delimiter = raw.attrs.get("fields"), raw.attrs.get("delimiter")
    suspects = np.flatnonzero(frame.isna().any(axis=1).to_numpy())[:1000]
    if expected is None or not len(suspects):
        return
    for number, text in sorted(_data_lines(raw, {int(i) for i in suspects}).values()):
        count = len(next(csv.reader([text], delimiter=delimiter)))
        if count < expected:
            raise DataError(f"{source}: line {number} has {count} of {expected} fields, a short "
                            f"or truncated row: {text[:120]!r}; complete or delete that line")


def _epoch_unit(values: np.ndarray) -> str:
    """Epoch unit by magnitude: seconds, milliseconds, microseconds or nanoseconds."""
    top = np.nanmax(np.abs(values)) if np.isfinite(values).any() else 0.0
    return "ns" if top > 1e17 else "us" if top > 1e14 else "ms" if top > 1e11 else "s"


def _index_of_times(raw: pd.DataFrame) -> bool:
    """Whether the first column is an unnamed index of times (``,Open,High,...`` files)."""
    first = raw.columns[0]
    if not (first == "" or first.startswith("unnamed")):
        return False
    sample = raw[first].head(20).astype(str)
    try:
        pd.to_datetime(sample, format="mixed")
    except (ValueError, TypeError):
        return False
    return True


def _times(raw: pd.DataFrame, tz: str, source: str) -> pd.DatetimeIndex:
    """Bar times from the time column(s): ISO strings, ``09-AM`` hours, epoch s/ms/us/ns."""
    col = next((c for c in _TIME_NAMES if c in raw.columns), None)
    if col is None and _index_of_times(raw):  # DataFrame.to_csv(): the index, unnamed
        col = raw.columns[0]
    if col is None:
        raise DataError(f"{source}: no time column among {list(raw.columns)}; expected one of "
                        f"{list(_TIME_NAMES)}, or times in an unnamed first column")
    column = raw[col]
    if col == "date" and "time" in raw.columns:  # backtrader: separate Date and Time
        column = raw["date"].astype(str) + " " + raw["time"].astype(str)
    if pd.api.types.is_datetime64_any_dtype(column):
        parsed = pd.to_datetime(column)
    elif pd.api.types.is_numeric_dtype(column) and not pd.api.types.is_bool_dtype(column):
        values = column.to_numpy(dtype=np.float64)
        if not np.isfinite(values).all():
            raise DataError(f"{source}: rule 'no missing timestamps' broken in column {col!r} "
                            f"at {_where(raw, ~np.isfinite(values), col)}")
        unit = _epoch_unit(values)
        return pd.DatetimeIndex(pd.to_datetime(values.astype(np.int64), unit=unit, utc=True),
                                name="datetime")
    else:
        text = column.astype(str).str.strip()
        missing = (column.isna() | (text == "")).to_numpy()
        if missing.any():
            raise DataError(f"{source}: rule 'no missing timestamps' broken in column {col!r} "
                            f"at {_where(raw, missing, col)}")
        parsed = _parse_text_times(raw, text, col, source)
    if getattr(parsed.dt, "tz", None) is None:
        try:
            parsed = parsed.dt.tz_localize(tz, ambiguous="raise", nonexistent="raise")
        except (ValueError, TypeError) as exc:  # DST folds and gaps
            raise DataError(f"{source}: naive times cannot be read in timezone {tz!r} "
                            f"({_short(exc)}); pass the file's zone, e.g. --tz UTC") from None
    return pd.DatetimeIndex(parsed.dt.tz_convert("UTC"), name="datetime")


def _parse_text_times(raw: pd.DataFrame, text: pd.Series, col: str, source: str
                      ) -> pd.Series:
    """Parse time strings: ``09-AM`` hours, else ISO 8601 (fast), else any one format.

    Times that all carry a UTC offset may mix offsets (a zone's summer and winter time); an
    offset on some rows only is refused, since the others' zone is unknown.
    """
    formats = (["%Y-%m-%d %I-%p"] if _HOUR_AMPM.match(text.iloc[0]) else ["ISO8601", "mixed"])
    for fmt in formats:
        try:
            parsed = pd.to_datetime(text, format=fmt)
        except (ValueError, TypeError, OverflowError):
            continue
        if pd.api.types.is_datetime64_any_dtype(parsed):  # mixed offsets give objects
            return parsed
    zoned = text.str.contains(_OFFSET).to_numpy()
    if zoned.any() and not zoned.all():
        raise DataError(f"{source}: rule 'one timezone' broken in column {col!r}: times without "
                        f"a UTC offset among times with one, at {_where(raw, ~zoned, col)}; "
                        "give every time an offset (e.g. 2024-01-31T23:59:00Z) or none and "
                        "pass --tz")
    fmt = formats[0] if formats[0] != "ISO8601" else "mixed"
    parsed = pd.to_datetime(text, format=fmt, utc=bool(zoned.all()), errors="coerce")
    bad = parsed.isna().to_numpy()
    if not bad.any():
        return parsed
    raise DataError(f"{source}: rule 'one readable time format' broken in column {col!r} at "
                    f"{_where(raw, bad, col)}; write every time in one format, e.g. "
                    "2024-01-31T23:59:00Z")


def read_bars(path: Path | str, *, tz: str = "UTC", adjusted: bool = False) -> pd.DataFrame:
    """Read a bar file into an unvalidated frame (UTC index, OHLCV columns, file order).

    See :func:`load_file` for the parameters; use this with ``check_ohlcv`` to get a report.
    Text in a price or volume column is refused here, naming the line it is on.
    """
    path = Path(path)
    source = str(path)
    try:
        pd.Timestamp(0).tz_localize(tz)
    except (KeyError, ValueError, TypeError):  # ZoneInfoNotFoundError is a KeyError
        raise DataError(f"{source}: timezone {tz!r} unknown; use an IANA name such as UTC, "
                        "Europe/Berlin or America/New_York") from None
    raw = _read_table(path)
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
    if raw.columns.duplicated().any():
        raise DataError(f"{source}: repeated column names {list(raw.columns)}; expected each "
                        "of time, open, high, low, close, volume once")
    frame = pd.DataFrame(index=raw.index)
    for col in (*COLUMNS, *(["adj close"] if adjusted and "adj close" in raw else [])):
        values = pd.to_numeric(raw[col], errors="coerce")
        text = values.isna() & raw[col].notna()
        if text.any():  # "abc", "1;5": not a number (empty cells stay NaN for the validator)
            raise DataError(f"{source}: rule 'no NaN or non-numeric values' broken in column "
                            f"{col!r}: text at {_where(raw, text.to_numpy(), col)}")
        frame[col] = values.astype(np.float64)
    _refuse_short_rows(raw, frame, source)
    if adjusted:
        adj_close = frame.pop("adj close") if "adj close" in frame else None
        frame = adjust_to_adj_close(frame, adj_close, source=source)
    frame.index = _times(raw, tz, source)
    frame.attrs = dict(raw.attrs)  # the file lines behind the rows, for the validator's errors
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
    """:func:`load_file` plus the validation report (gaps, runs, repairs).

    With ``repair`` and a ``timeframe``, a last bar that has not closed yet is dropped too.
    """
    raw = read_bars(path, tz=tz, adjusted=adjusted)
    now = pd.Timestamp.now(tz="UTC") if repair and timeframe else None
    where = (lambda mask: _lines_of(raw, mask)) if "path" in raw.attrs else None
    return check_ohlcv(raw, source=str(path), repair=repair, timeframe=timeframe, now=now,
                       where=where)

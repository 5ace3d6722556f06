"""Bar files in the three layouts the project writes, each read back bit for bit, by the file
store (``store_files``) and by ``data import`` alike (and series of values, ``values``, in
the same layouts with one ``value`` column for the five of a bar):

- ``parquet``: the frame as it is (a ``datetime`` index, tz-aware, ns);
- ``csv``: ``datetime,open,high,low,close,volume``, ISO 8601 UTC times with as many fraction
  digits as needed, each float in its shortest exact decimal form;
- ``json``: freqtrade's and ccxt's ``[[ms, open, high, low, close, volume], ...]`` (bar times
  are whole milliseconds), floats as JSON writes them (shortest exact form).

A file is written whole to a temporary file beside it, in steps of ``store.CHUNK`` bars
(progress after each), then renamed over the old one: a crash leaves the old file.
"""
from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pandas as pd

from datafeeds.atomic import write_atomic
from datafeeds.errors import DataError
from datafeeds.ohlcv import COLUMNS, validate_ohlcv

FORMATS = ("parquet", "csv", "json")
CHUNK = 50_000  # bars per write step (progress is reported after each)
WriteProgress = Callable[[int, int], None]  # (bars written so far, bars to write)


def write_chunks(total: int, progress: WriteProgress | None) -> Iterator[tuple[int, int]]:
    """``(start, stop)`` row ranges of :data:`CHUNK` bars, reporting each one done."""
    for start in range(0, total, CHUNK):
        stop = min(start + CHUNK, total)
        yield start, stop
        if progress is not None:
            progress(stop, total)


def _write_parquet(tmp: Path, bars: pd.DataFrame, progress: WriteProgress | None) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.Table.from_pandas(bars)
    with pq.ParquetWriter(tmp, table.schema) as writer:
        for start, stop in write_chunks(len(bars), progress):
            writer.write_table(table.slice(start, stop - start))


def _iso_times(index: pd.DatetimeIndex) -> list[str]:
    """ISO 8601 UTC times, ``Z``-suffixed, fraction digits only where a time has some."""
    utc = index.tz_convert("UTC")
    if not (utc.as_unit("ns").asi8 % 1_000_000_000).any():
        return list(utc.strftime("%Y-%m-%dT%H:%M:%SZ"))
    return [t.isoformat().replace("+00:00", "Z") for t in utc]


def _write_csv(tmp: Path, bars: pd.DataFrame, progress: WriteProgress | None) -> None:
    times = _iso_times(bars.index)
    values = bars.to_numpy(np.float64)
    with open(tmp, "w", encoding="utf-8", newline="") as fh:
        fh.write("datetime," + ",".join(bars.columns) + "\n")
        for start, stop in write_chunks(len(bars), progress):
            fh.writelines(f"{t},{','.join(map(repr, row))}\n" for t, row in
                          zip(times[start:stop], values[start:stop].tolist(), strict=True))


def _write_json(tmp: Path, bars: pd.DataFrame, progress: WriteProgress | None) -> None:
    ns = bars.index.as_unit("ns").asi8
    if (ns % 1_000_000).any():
        raise DataError("bar times with fractions of a millisecond cannot be written as JSON "
                        "candles ([[ms, ...]]); use csv or parquet")
    ms = (ns // 1_000_000).tolist()
    values = bars.to_numpy(np.float64).tolist()
    with open(tmp, "w", encoding="utf-8") as fh:
        fh.write("[")
        for start, stop in write_chunks(len(bars), progress):
            rows = (json.dumps([t, *v]) for t, v in zip(ms[start:stop], values[start:stop],
                                                        strict=True))
            fh.write(("," if start else "") + ",\n".join(rows))
        fh.write("]\n")


_WRITERS = {"parquet": _write_parquet, "csv": _write_csv, "json": _write_json}


def write_frame(path: Path, frame: pd.DataFrame, fmt: str,
                progress: WriteProgress | None = None) -> Path:
    """Replace ``path`` with a validated frame (bars or values) in layout ``fmt``,
    atomically."""
    if fmt not in _WRITERS:
        raise DataError(f"format {fmt!r}: use one of {', '.join(FORMATS)}")
    return write_atomic(path, lambda tmp: _WRITERS[fmt](tmp, frame, progress))


def write_bars(path: Path, bars: pd.DataFrame, fmt: str,
               progress: WriteProgress | None = None) -> Path:
    """Replace ``path`` with validated ``bars`` in layout ``fmt``, atomically."""
    return write_frame(path, validate_ohlcv(bars, source=str(path)), fmt, progress)


def read_frame(path: Path, fmt: str, columns: tuple[str, ...]) -> pd.DataFrame:
    """The float ``columns`` of a file written by :func:`write_frame`, indexed by time (not
    validated).

    Raises
    ------
    DataError
        For a file that is not what ``fmt`` says (naming it and the fix).
    """
    try:
        if fmt == "parquet":
            frame = pd.read_parquet(path)
        elif fmt == "csv":
            frame = pd.read_csv(path, index_col="datetime",
                                dtype=dict.fromkeys(columns, np.float64))
            frame.index = pd.DatetimeIndex(pd.to_datetime(frame.index, utc=True,
                                                          format="ISO8601"), name="datetime")
        else:
            rows = np.asarray(json.loads(path.read_text(encoding="utf-8")),
                              dtype=np.float64).reshape(-1, 1 + len(columns))
            index = pd.DatetimeIndex(pd.to_datetime(rows[:, 0].astype(np.int64), unit="ms",
                                                    utc=True), name="datetime")
            frame = pd.DataFrame(rows[:, 1:], index=index, columns=list(columns))
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise DataError(f"{path}: stored file unreadable ({exc}); delete it and download "
                        "again") from None
    return frame


def read_bars_file(path: Path, fmt: str) -> pd.DataFrame:
    """The bars of a file written by :func:`write_bars`, validated."""
    return validate_ohlcv(read_frame(path, fmt, COLUMNS), source=str(path))

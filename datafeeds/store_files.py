"""The file stores: one file per series, in Parquet, CSV or JSON (``bar_files``), replaced
atomically on every write.

Layout: ``<root>/<source>/<SYMBOL>_<timeframe>.<parquet|csv|json>`` (``/``, ``:`` and blanks
in symbols become ``-``). A write assembles the whole new file beside the old one (temp file,
fsync, rename): a crash or an error at any point leaves the previous file intact. The CSV and
JSON files are the layouts ``data import`` reads and ``data export`` writes. Series of values
are kept as ``<root>/<source>/values/<SYMBOL>_<series>.<format>``.
"""
from __future__ import annotations

import re
from pathlib import Path

import pandas as pd

from datafeeds.bar_files import WriteProgress, read_bars_file, write_bars
from datafeeds.store import BarStore, StoreKey
from datafeeds.values import read_values_file, write_values_file

_UNSAFE = re.compile(r"[/:\\\s]+")


class FileStore(BarStore):
    """The bar files of format ``fmt`` (parquet, csv or json) under ``root``."""

    def __init__(self, root: Path, fmt: str = "parquet") -> None:
        self.root = Path(root)
        self.fmt = fmt
        self.url = f"{fmt}:{self.root}"

    def path(self, key: StoreKey) -> Path:
        """File of ``key``."""
        return self.root / key.source / \
            f"{_UNSAFE.sub('-', key.symbol)}_{key.timeframe}.{self.fmt}"

    def where(self, key: StoreKey) -> str:
        return str(self.path(key))

    def values_path(self, key: StoreKey) -> Path:
        """File of the series of values ``key``."""
        return self.root / key.source / "values" / \
            f"{_UNSAFE.sub('-', key.symbol)}_{key.timeframe}.{self.fmt}"

    def where_values(self, key: StoreKey) -> str:
        return str(self.values_path(key))

    def read_values(self, key: StoreKey) -> pd.DataFrame | None:
        path = self.values_path(key)
        return read_values_file(path, key.timeframe, self.fmt) if path.is_file() else None

    def _save_values(self, key: StoreKey, values: pd.DataFrame) -> None:
        stored = self.read_values(key)
        if stored is not None:  # upsert: the new value of a time wins
            merged = pd.concat([stored, values])
            values = merged[~merged.index.duplicated(keep="last")].sort_index()
        write_values_file(self.values_path(key), values, key.timeframe, self.fmt)

    def read(self, key: StoreKey, start: pd.Timestamp | None = None,
             end: pd.Timestamp | None = None) -> pd.DataFrame | None:
        path = self.path(key)
        if not path.is_file():
            return None
        frame = read_bars_file(path, self.fmt)
        first = 0 if start is None else frame.index.searchsorted(start)
        stop = len(frame) if end is None else frame.index.searchsorted(end)
        return frame.iloc[first:stop] if stop > first else None

    def keys(self) -> list[StoreKey]:
        out = []
        for path in sorted(self.root.glob(f"*/*.{self.fmt}")):
            symbol, _, timeframe = path.stem.rpartition("_")
            out.append(StoreKey(path.parent.name, symbol, timeframe))
        return out

    def tidy(self) -> list[str]:
        done = []
        for tmp in [*self.root.glob("*/.*.tmp"), *self.root.glob("*/values/.*.tmp")] \
                if self.root.is_dir() else ():
            tmp.unlink()
            done.append(f"removed {tmp}, left by an interrupted write")
        return done

    def last_bar(self, key: StoreKey) -> pd.Timestamp | None:
        if self.fmt == "parquet":
            return self._last_parquet_bar(key)
        frame = self.read(key)
        return None if frame is None else frame.index[-1]

    def _last_parquet_bar(self, key: StoreKey) -> pd.Timestamp | None:
        path = self.path(key)
        if not path.is_file():
            return None
        import pyarrow.parquet as pq

        from datafeeds.errors import DataError

        try:  # the time column only: the newest bar, without reading every price
            times = pq.read_table(path, columns=["datetime"]).column("datetime").to_pandas()
        except (OSError, ValueError, KeyError) as exc:
            raise DataError(f"{path}: stored file unreadable ({exc}); delete it and download "
                            "again") from None
        return times.iloc[-1].tz_convert("UTC") if len(times) else None

    def _save(self, key: StoreKey, bars: pd.DataFrame, *, replace: bool,
              progress: WriteProgress | None) -> None:
        stored = None if replace else self.read(key)
        if stored is not None:  # upsert: the new value of a time wins
            merged = pd.concat([stored, bars])
            bars = merged[~merged.index.duplicated(keep="last")].sort_index()
        write_bars(self.path(key), bars, self.fmt, progress)

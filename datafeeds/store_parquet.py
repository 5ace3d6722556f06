"""The Parquet bar store: one file per series, replaced atomically on every write.

Layout: ``<root>/<source>/<SYMBOL>_<timeframe>.parquet`` (``/``, ``:`` and blanks in symbols
become ``-``). A write assembles the whole new file beside the old one (temp file, fsync,
rename): a crash or an error at any point leaves the previous file intact.
"""
from __future__ import annotations

import re
from pathlib import Path

import pandas as pd

from datafeeds.atomic import write_atomic
from datafeeds.errors import DataError
from datafeeds.ohlcv import validate_ohlcv
from datafeeds.store import BarStore, StoreKey, WriteProgress, write_chunks

_UNSAFE = re.compile(r"[/:\\\s]+")


class ParquetStore(BarStore):
    """The bar files under ``root``."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.url = f"parquet:{self.root}"

    def path(self, key: StoreKey) -> Path:
        """File of ``key``."""
        return self.root / key.source / f"{_UNSAFE.sub('-', key.symbol)}_{key.timeframe}.parquet"

    def where(self, key: StoreKey) -> str:
        return str(self.path(key))

    def read(self, key: StoreKey, start: pd.Timestamp | None = None,
             end: pd.Timestamp | None = None) -> pd.DataFrame | None:
        path = self.path(key)
        if not path.is_file():
            return None
        try:
            frame = pd.read_parquet(path)
        except (OSError, ValueError) as exc:
            raise DataError(f"{path}: stored file unreadable ({exc}); delete it and download "
                            "again") from None
        frame = validate_ohlcv(frame, source=str(path))
        first = 0 if start is None else frame.index.searchsorted(start)
        stop = len(frame) if end is None else frame.index.searchsorted(end)
        return frame.iloc[first:stop] if stop > first else None

    def keys(self) -> list[StoreKey]:
        out = []
        for path in sorted(self.root.glob("*/*.parquet")):
            symbol, _, timeframe = path.stem.rpartition("_")
            out.append(StoreKey(path.parent.name, symbol, timeframe))
        return out

    def tidy(self) -> list[str]:
        done = []
        for tmp in self.root.glob("*/.*.tmp") if self.root.is_dir() else ():
            tmp.unlink()
            done.append(f"removed {tmp}, left by an interrupted write")
        return done

    def last_bar(self, key: StoreKey) -> pd.Timestamp | None:
        path = self.path(key)
        if not path.is_file():
            return None
        import pyarrow.parquet as pq

        try:  # the time column only: the newest bar, without reading every price
            times = pq.read_table(path, columns=["datetime"]).column("datetime").to_pandas()
        except (OSError, ValueError, KeyError) as exc:
            raise DataError(f"{path}: stored file unreadable ({exc}); delete it and download "
                            "again") from None
        return times.iloc[-1].tz_convert("UTC") if len(times) else None

    def _save(self, key: StoreKey, bars: pd.DataFrame, *, replace: bool,
              progress: WriteProgress | None) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        stored = None if replace else self.read(key)
        if stored is not None:  # upsert: the new value of a time wins
            merged = pd.concat([stored, bars])
            bars = merged[~merged.index.duplicated(keep="last")].sort_index()
        table = pa.Table.from_pandas(bars)

        def write(tmp: Path) -> None:
            with pq.ParquetWriter(tmp, table.schema) as writer:
                for start, stop in write_chunks(len(bars), progress):
                    writer.write_table(table.slice(start, stop - start))

        write_atomic(self.path(key), write)

"""Parquet bar store: one file per (source, symbol, timeframe), written atomically.

Layout: ``<root>/<source>/<SYMBOL>_<timeframe>.parquet`` (``/`` and ``:`` in symbols become
``-``). Every write goes to a temporary file in the same folder, is fsynced, then renamed over
the old file: a crash or an error leaves the previous file intact, never half of a new one.
``append`` adds only bars newer than the last stored bar and validates the result.
"""
from __future__ import annotations

import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from datafeeds.errors import DataError
from datafeeds.ohlcv import validate_ohlcv
from datafeeds.validate import ValidationReport, check_ohlcv

_UNSAFE = re.compile(r"[/:\\\s]+")


def _fsync_dir(folder: Path) -> None:
    """Make a rename in ``folder`` durable (no-op where directories cannot be opened)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


@dataclass(frozen=True)
class StoreKey:
    """What a stored series is: where it came from, which market, which bar size."""

    source: str
    symbol: str
    timeframe: str

    def __str__(self) -> str:
        return f"{self.source} {self.symbol} {self.timeframe}"


@dataclass(frozen=True)
class StoredSeries:
    """A stored series and what is in it."""

    key: StoreKey
    path: Path
    report: ValidationReport


class Store:
    """The bar files under ``root`` (default ``data/``)."""

    def __init__(self, root: Path | str = "data") -> None:
        self.root = Path(root)

    def path(self, key: StoreKey) -> Path:
        """File of ``key``."""
        return self.root / key.source / f"{_UNSAFE.sub('-', key.symbol)}_{key.timeframe}.parquet"

    def read(self, key: StoreKey) -> pd.DataFrame | None:
        """The stored bars of ``key`` (validated), or None when nothing is stored."""
        path = self.path(key)
        if not path.is_file():
            return None
        try:
            frame = pd.read_parquet(path)
        except (OSError, ValueError) as exc:
            raise DataError(f"{path}: stored file unreadable ({exc}); delete it and download "
                            "again") from None
        return validate_ohlcv(frame, source=str(path))

    def write(self, key: StoreKey, bars: pd.DataFrame) -> Path:
        """Replace the stored bars of ``key`` atomically (after validating them)."""
        valid = validate_ohlcv(bars, source=str(key))
        path = self.path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        os.close(fd)
        try:
            valid.to_parquet(tmp)
            with open(tmp, "rb") as fh:
                os.fsync(fh.fileno())
            os.replace(tmp, path)
            _fsync_dir(path.parent)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return path

    def append(self, key: StoreKey, bars: pd.DataFrame) -> int:
        """Add the bars of ``bars`` newer than the last stored one; returns how many."""
        stored = self.read(key)
        if stored is None:
            new = bars
            merged = bars
        else:
            new = bars[bars.index > stored.index[-1]]
            if new.empty:
                return 0
            merged = pd.concat([stored, new])
        self.write(key, merged)
        return len(new)

    def last_bar(self, key: StoreKey) -> pd.Timestamp | None:
        """Open time of the newest stored bar of ``key``."""
        stored = self.read(key)
        return None if stored is None else stored.index[-1]

    def keys(self) -> list[StoreKey]:
        """Every stored series, sorted."""
        out = []
        for path in sorted(self.root.glob("*/*.parquet")):
            symbol, _, timeframe = path.stem.rpartition("_")
            out.append(StoreKey(path.parent.name, symbol, timeframe))
        return out

    def describe(self) -> list[StoredSeries]:
        """Every stored series with its range, gaps and runs."""
        out = []
        for key in self.keys():
            frame = self.read(key)
            assert frame is not None  # listed because the file exists
            _, report = check_ohlcv(frame, source=str(key), timeframe=key.timeframe)
            out.append(StoredSeries(key, self.path(key), report))
        return out

"""Bar stores: one series per (source, symbol, timeframe), in files or a database.

``open_store(url)`` picks the backend:

- ``parquet:DIR`` (the default, ``parquet:data``) or a plain folder: one Parquet file per
  series, ``<DIR>/<source>/<SYMBOL>_<timeframe>.parquet``;
- ``csv:DIR`` and ``json:DIR``: the same with plain text files (``bar_files``), for people
  who want to read or edit their bars with anything;
- ``sqlite:///PATH``: an embedded SQLite database file, no server;
- ``postgresql://USER@HOST:PORT/DB``: a PostgreSQL server (psycopg 3), for a team or a
  server. The password comes from ``PGPASSWORD`` or ``~/.pgpass``, never from a command line;
  one given in the URL is never printed.

Every backend offers the same operations, each write one transaction (all of it or nothing,
also when the process is killed): ``write`` (upsert by bar time), ``replace``, ``append``
(only bars newer than the last stored one: what updates use), ``read`` (a time range),
``last_bar``, ``keys``, ``gaps`` and ``describe``. Bars are validated before they are stored.

Beside the bars, each backend keeps series of values (``datafeeds.values``: funding rates,
open interest) under ``StoreKey(source, symbol, series)``: ``write_values`` (upsert, one
transaction) and ``read_values``; they are not bar series (``keys`` does not list them).
"""
from __future__ import annotations

import re
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from datafeeds.bar_files import WriteProgress
from datafeeds.errors import DataError
from datafeeds.ohlcv import validate_ohlcv
from datafeeds.quality import Gap, ValidationReport, check_ohlcv
from datafeeds.values import validate_values

DEFAULT_STORE = "parquet:data"
_PASSWORD = re.compile(r"(://[^:/@]+):[^@]*@")


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
    """A stored series, where it is, and what is in it."""

    key: StoreKey
    where: str
    report: ValidationReport


def redact(url: str) -> str:
    """``url`` with any password replaced by ``***`` (for messages and logs)."""
    return _PASSWORD.sub(r"\1:***@", url)


class BarStore(ABC):
    """What every backend does; subclasses implement the five storage primitives."""

    url: str  # printable (no password)

    @abstractmethod
    def read(self, key: StoreKey, start: pd.Timestamp | None = None,
             end: pd.Timestamp | None = None) -> pd.DataFrame | None:
        """Stored bars of ``key`` with ``start <= time < end`` (validated); None if none."""

    @abstractmethod
    def last_bar(self, key: StoreKey) -> pd.Timestamp | None:
        """Open time of the newest stored bar of ``key``."""

    @abstractmethod
    def keys(self) -> list[StoreKey]:
        """Every stored series, sorted."""

    @abstractmethod
    def where(self, key: StoreKey) -> str:
        """Where ``key`` is kept, for messages (a file, or the store's URL and the key)."""

    @abstractmethod
    def _save(self, key: StoreKey, bars: pd.DataFrame, *, replace: bool,
              progress: WriteProgress | None) -> None:
        """Upsert valid ``bars`` (after deleting the series when ``replace``) atomically."""

    @abstractmethod
    def read_values(self, key: StoreKey) -> pd.DataFrame | None:
        """The stored series of values ``key`` (``key.timeframe`` is the series), validated;
        None if none."""

    @abstractmethod
    def _save_values(self, key: StoreKey, values: pd.DataFrame) -> None:
        """Upsert valid ``values`` by time atomically."""

    def write_values(self, key: StoreKey, values: pd.DataFrame) -> str:
        """Upsert a series of values (``key.timeframe``: ``funding_rate`` or
        ``open_interest``) by time in one transaction. Returns where it is kept."""
        self._save_values(key, validate_values(values, key.timeframe, source=str(key)))
        return self.where_values(key)

    def where_values(self, key: StoreKey) -> str:
        """Where the series of values ``key`` is kept, for messages."""
        return self.where(key)

    def write(self, key: StoreKey, bars: pd.DataFrame, *,
              progress: WriteProgress | None = None) -> str:
        """Upsert ``bars`` by bar time in one transaction: new times are added, stored ones
        overwritten, the rest kept. Returns :meth:`where`."""
        self._save(key, validate_ohlcv(bars, source=str(key)), replace=False,
                   progress=progress)
        return self.where(key)

    def replace(self, key: StoreKey, bars: pd.DataFrame, *,
                progress: WriteProgress | None = None) -> str:
        """Make the series of ``key`` exactly ``bars``, in one transaction."""
        self._save(key, validate_ohlcv(bars, source=str(key)), replace=True,
                   progress=progress)
        return self.where(key)

    def append(self, key: StoreKey, bars: pd.DataFrame, *,
               progress: WriteProgress | None = None) -> int:
        """Store the bars newer than the last stored one (history is never rewritten by an
        update); returns how many."""
        last = self.last_bar(key)
        new = bars if last is None else bars[bars.index > last]
        if new.empty:
            return 0
        self.write(key, new, progress=progress)
        return len(new)

    def tidy(self) -> list[str]:
        """Remove what a killed writer left behind (databases roll back by themselves);
        returns what was removed, one line each."""
        return []

    def gaps(self, key: StoreKey) -> tuple[Gap, ...]:
        """Bars missing inside the stored series of ``key``."""
        return self.check(key).gaps

    def check(self, key: StoreKey) -> ValidationReport:
        """The validation report (range, gaps, runs) of the stored series of ``key``."""
        frame = self.read(key)
        if frame is None:
            raise DataError(f"nothing stored for {key} in {self.url}")
        return check_ohlcv(frame, source=str(key), timeframe=key.timeframe)[1]

    def describe(self) -> list[StoredSeries]:
        """Every stored series with its range, gaps and runs."""
        return [StoredSeries(key, self.where(key), self.check(key)) for key in self.keys()]


def absolute_url(url: str | Path) -> str:
    """``url`` with a relative folder or SQLite file made absolute (from the current folder),
    so that worker processes started elsewhere open the same store."""
    text = str(url)
    scheme, _, rest = text.partition(":")
    if scheme in ("parquet", "csv", "json"):
        return f"{scheme}:{Path(rest).absolute()}"
    if scheme == "sqlite" and rest.startswith("///") and len(rest) > 3:
        return f"sqlite:///{Path(rest[3:]).absolute()}"
    if "://" in text:
        return text
    return f"parquet:{Path(text).absolute()}"

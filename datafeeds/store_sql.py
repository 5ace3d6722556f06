"""Bar stores in SQL databases: SQLite (embedded) and PostgreSQL (psycopg 3).

One table, ``bars``, keyed by ``(source, symbol, timeframe, time)``, one row per bar. In
PostgreSQL ``time`` is a ``timestamptz``, so the table is hypertable-friendly as it is: with
TimescaleDB, ``SELECT create_hypertable('bars', 'time', migrate_data => true)`` works on it
(the time column is part of the primary key). SQLite keeps ``time`` as integer nanoseconds
since 1970 UTC. Prices and volumes are 8-byte floats in both, so bars read back bit-identical.

Every write is one transaction: the bars go in with an upsert on the key (``INSERT ... ON
CONFLICT DO UPDATE``), a replace deletes the series first in the same transaction. A process
killed midway leaves the database as it was (SQLite's journal, PostgreSQL's WAL). Values are
always passed as query parameters, never formatted into SQL text.
"""
from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd

from datafeeds.bar_files import WriteProgress, write_chunks
from datafeeds.errors import DataError
from datafeeds.ohlcv import COLUMNS, validate_ohlcv
from datafeeds.store import BarStore, StoreKey, redact
from datafeeds.values import validate_values

_UPDATE = ", ".join(f"{c} = excluded.{c}" for c in COLUMNS)


def _schema(time_type: str, float_type: str) -> str:
    """The ``bars`` table with the database's types for the time and the 8-byte floats."""
    values = ", ".join(f"{c} {float_type} NOT NULL" for c in COLUMNS)
    return ("CREATE TABLE IF NOT EXISTS bars (source TEXT NOT NULL, symbol TEXT NOT NULL, "
            f"timeframe TEXT NOT NULL, time {time_type} NOT NULL, {values}, "
            "PRIMARY KEY (source, symbol, timeframe, time))")


def _values_schema(float_type: str) -> str:
    """The ``series_values`` table: series of values (``datafeeds.values``), times in ns."""
    return ("CREATE TABLE IF NOT EXISTS series_values (source TEXT NOT NULL, symbol TEXT NOT "
            f"NULL, series TEXT NOT NULL, time_ns BIGINT NOT NULL, value {float_type} NOT "
            "NULL, PRIMARY KEY (source, symbol, series, time_ns))")


def _frame(rows: list[tuple], key: StoreKey, unit: str) -> pd.DataFrame | None:
    """Query rows ``(time, open, high, low, close, volume)`` -> validated OHLCV frame."""
    if not rows:
        return None
    times = np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
    values = np.array([r[1:] for r in rows], dtype=np.float64)
    index = pd.DatetimeIndex(pd.to_datetime(times, unit=unit, utc=True), name="datetime")
    return validate_ohlcv(pd.DataFrame(values, index=index, columns=list(COLUMNS)),
                          source=str(key))


class _SqlStore(BarStore):
    """The queries both databases share; subclasses connect and move the bars."""

    TIME: str  # SQL expression of a row's time in the integer unit below
    UNIT: str  # "ns" or "us"
    MARK: str  # the driver's parameter placeholder

    # and each subclass has _connect() (a context manager yielding a connection that commits
    # or rolls back) and _time_param(stamp) (a time as the driver's query parameter)

    def where(self, key: StoreKey) -> str:
        return f"{self.url} ({key})"

    def _query(self, sql: str, params: tuple = ()) -> list[tuple]:
        with self._connect() as conn:
            return list(conn.execute(sql.replace("?", self.MARK), params).fetchall())

    def read_values(self, key: StoreKey) -> pd.DataFrame | None:
        rows = self._query("SELECT time_ns, value FROM series_values WHERE source = ? AND "
                           "symbol = ? AND series = ? ORDER BY time_ns",
                           (key.source, key.symbol, key.timeframe))
        if not rows:
            return None
        index = pd.DatetimeIndex(pd.to_datetime([r[0] for r in rows], unit="ns", utc=True),
                                 name="datetime")
        frame = pd.DataFrame({"value": [r[1] for r in rows]}, index=index)
        return validate_values(frame, key.timeframe, source=str(key))

    def _save_values(self, key: StoreKey, values: pd.DataFrame) -> None:
        rows = [(key.source, key.symbol, key.timeframe, t, v) for t, v in
                zip(values.index.as_unit("ns").asi8.tolist(), values["value"].tolist(),
                    strict=True)]
        upsert = ("INSERT INTO series_values VALUES (?, ?, ?, ?, ?) ON CONFLICT (source, "
                  "symbol, series, time_ns) DO UPDATE SET value = excluded.value")
        with self._connect() as conn, self._transaction(conn):
            conn.cursor().executemany(upsert.replace("?", self.MARK), rows)

    def read(self, key: StoreKey, start: pd.Timestamp | None = None,
             end: pd.Timestamp | None = None) -> pd.DataFrame | None:
        sql = (f"SELECT {self.TIME}, {', '.join(COLUMNS)} FROM bars "
               "WHERE source = ? AND symbol = ? AND timeframe = ?")
        params: tuple = (key.source, key.symbol, key.timeframe)
        for op, bound in ((">=", start), ("<", end)):
            if bound is not None:
                sql += f" AND time {op} ?"
                params += (self._time_param(bound),)
        return _frame(self._query(sql + " ORDER BY time", params), key, self.UNIT)

    def last_bar(self, key: StoreKey) -> pd.Timestamp | None:
        [(last,)] = self._query(f"SELECT max({self.TIME}) FROM bars WHERE source = ? AND "
                                "symbol = ? AND timeframe = ?",
                                (key.source, key.symbol, key.timeframe))
        return None if last is None else pd.Timestamp(int(last), unit=self.UNIT, tz="UTC")

    def keys(self) -> list[StoreKey]:
        rows = self._query("SELECT DISTINCT source, symbol, timeframe FROM bars "
                           "ORDER BY source, symbol, timeframe")
        return [StoreKey(*row) for row in rows]


class SQLiteStore(_SqlStore):
    """Bars in the SQLite file ``path`` (created on first write)."""

    TIME, UNIT, MARK = "time", "ns", "?"
    SCHEMA = _schema("INTEGER", "REAL") + " WITHOUT ROWID"

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.url = f"sqlite:///{self.path}"

    @contextlib.contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            # we BEGIN ourselves; a writer waits up to a minute for another (parallel markets)
            conn = sqlite3.connect(self.path, isolation_level=None, timeout=60.0)
        except sqlite3.Error as exc:
            raise DataError(f"{self.url}: cannot open the database ({exc})") from None
        try:
            conn.execute("PRAGMA journal_mode = WAL")  # readers (a bot) never block a writer
            conn.execute(self.SCHEMA)
            conn.execute(_values_schema("REAL"))
            yield conn
        except sqlite3.DatabaseError as exc:
            raise DataError(f"{self.url}: {exc}; is it a bar store written by mlstrategy?"
                            ) from None
        finally:
            conn.close()

    @staticmethod
    def _time_param(stamp: pd.Timestamp) -> int:
        return int(pd.Timestamp(stamp).as_unit("ns").value)

    @staticmethod
    @contextlib.contextmanager
    def _transaction(conn: sqlite3.Connection) -> Iterator[None]:
        conn.execute("BEGIN IMMEDIATE")  # one writer; the whole write or nothing
        try:
            yield
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise

    def _save(self, key: StoreKey, bars: pd.DataFrame, *, replace: bool,
              progress: WriteProgress | None) -> None:
        times = bars.index.as_unit("ns").asi8.tolist()
        values = bars.to_numpy(dtype=np.float64).tolist()
        head = (key.source, key.symbol, key.timeframe)
        insert = (f"INSERT INTO bars VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT "
                  f"(source, symbol, timeframe, time) DO UPDATE SET {_UPDATE}")
        with self._connect() as conn, self._transaction(conn):
            if replace:
                conn.execute("DELETE FROM bars WHERE source = ? AND symbol = ? AND "
                             "timeframe = ?", head)
            for start, stop in write_chunks(len(times), progress):
                conn.executemany(insert, ((*head, t, *v) for t, v in
                                          zip(times[start:stop], values[start:stop],
                                              strict=True)))


class PostgresStore(_SqlStore):
    """Bars in a PostgreSQL database (the table is created on first use)."""

    TIME, UNIT, MARK = "(EXTRACT(EPOCH FROM time) * 1000000)::bigint", "us", "%s"
    SCHEMA = _schema("TIMESTAMPTZ", "DOUBLE PRECISION")

    def __init__(self, url: str) -> None:
        try:
            import psycopg  # noqa: F401  (checked here: a clear error before any work)
        except ImportError:
            raise DataError("postgresql stores need psycopg 3: pip install "
                            "'mlstrategy[postgres]'") from None
        self._dsn = url
        self.url = redact(url)

    @contextlib.contextmanager
    def _connect(self):
        import psycopg

        try:
            conn = psycopg.connect(self._dsn, connect_timeout=10)
        except psycopg.Error as exc:
            raise DataError(f"{self.url}: cannot connect ({' '.join(str(exc).split())}); "
                            "check the host, port, user and PGPASSWORD") from None
        try:
            with conn:  # commits on success, rolls back on an error
                conn.execute(self.SCHEMA)
                conn.execute(_values_schema("DOUBLE PRECISION"))
                yield conn
        except psycopg.Error as exc:
            raise DataError(f"{self.url}: {' '.join(str(exc).split())}") from None
        finally:
            conn.close()

    @staticmethod
    def _time_param(stamp: pd.Timestamp) -> pd.Timestamp:
        return pd.Timestamp(stamp).to_pydatetime()

    @staticmethod
    def _transaction(conn):
        return conn.transaction()

    def _save(self, key: StoreKey, bars: pd.DataFrame, *, replace: bool,
              progress: WriteProgress | None) -> None:
        ns = bars.index.as_unit("ns").asi8
        if (ns % 1000).any():
            raise DataError(f"{key}: bar times finer than a microsecond cannot be stored in "
                            "PostgreSQL")
        times = (ns // 1000).tolist()
        values = bars.to_numpy(dtype=np.float64).tolist()
        head = (key.source, key.symbol, key.timeframe)
        with self._connect() as conn, conn.transaction():
            conn.execute("CREATE TEMP TABLE staging (us BIGINT, open FLOAT8, high FLOAT8, "
                         "low FLOAT8, close FLOAT8, volume FLOAT8) ON COMMIT DROP")
            with conn.cursor().copy("COPY staging FROM STDIN (FORMAT BINARY)") as copy:
                copy.set_types(["int8", "float8", "float8", "float8", "float8", "float8"])
                for start, stop in write_chunks(len(times), progress):
                    for t, v in zip(times[start:stop], values[start:stop], strict=True):
                        copy.write_row((t, *v))
            if replace:
                conn.execute("DELETE FROM bars WHERE source = %s AND symbol = %s AND "
                             "timeframe = %s", head)
            conn.execute(f"INSERT INTO bars SELECT %s, %s, %s, TIMESTAMPTZ 'epoch' + us * "
                         f"INTERVAL '1 microsecond', {', '.join(COLUMNS)} FROM staging "
                         f"ON CONFLICT (source, symbol, timeframe, time) DO UPDATE SET {_UPDATE}",
                         head)

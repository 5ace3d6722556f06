"""The bot's journal: one SQLite file (WAL, one writer) that survives every crash.

It records every bar seen, every signal with P(up) and the model version, every order attempt
with its client id *before* it is sent and each state after, every fill by the exchange's
trade id, and events (model swaps, refusals, feed status, reconciliation). A restarted bot
reads its book back from it: its position is the sum of its own fills.

Contract: one bot per journal (an exclusive lock file beside it); a journal belongs to one
(mode, exchange, symbol, timeframe) and refuses another; commits are durable
(``synchronous=FULL``) because an order attempt must be on disk before it is sent. API
credentials are never written here.
"""
from __future__ import annotations

import fcntl
import json
import os
import sqlite3
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd

from execution.orders import (
    ABSENT,
    OPEN,
    UNRESOLVED,
    Fill,
    OrderIntent,
    OrderState,
    key_bar_ms,
)
from mlstrategy.errors import ConfigError

SCHEMA_VERSION = 1
PAPER = "paper-"  # client ids of a simulated broker's orders (they reach no exchange)
LATE_HORIZON_S = 86_400.0  # an attempt not provably final is watched for late executions this long
_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS sessions (
    id INTEGER PRIMARY KEY, started TEXT NOT NULL, ended TEXT, pid INTEGER, model TEXT,
    summary TEXT);
CREATE TABLE IF NOT EXISTS bars (
    time_ms INTEGER PRIMARY KEY, open REAL, high REAL, low REAL, close REAL, volume REAL,
    session INTEGER);
CREATE TABLE IF NOT EXISTS signals (
    time_ms INTEGER NOT NULL, session INTEGER NOT NULL, proba REAL, long INTEGER,
    model TEXT, status TEXT, action TEXT, position REAL, equity REAL,
    PRIMARY KEY (time_ms, session));
CREATE TABLE IF NOT EXISTS orders (
    client_id TEXT PRIMARY KEY, intent_key TEXT NOT NULL, attempt INTEGER NOT NULL,
    session INTEGER, side TEXT, kind TEXT, amount REAL, price REAL, state TEXT NOT NULL,
    exchange_id TEXT, filled REAL DEFAULT 0, average REAL, reason TEXT,
    created REAL NOT NULL, updated REAL NOT NULL);
CREATE INDEX IF NOT EXISTS orders_by_key ON orders (intent_key);
CREATE TABLE IF NOT EXISTS fills (
    trade_id TEXT PRIMARY KEY, client_id TEXT, time_ms INTEGER, side TEXT, amount REAL,
    price REAL, fee REAL, fee_currency TEXT, base_delta REAL, quote_delta REAL,
    session INTEGER);
CREATE TABLE IF NOT EXISTS events (
    id INTEGER PRIMARY KEY, time TEXT NOT NULL, session INTEGER, kind TEXT NOT NULL,
    detail TEXT);
"""


def _now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


@dataclass(frozen=True)
class OrderRecord:
    """One order attempt as the journal has it."""

    client_id: str
    intent_key: str
    side: str
    kind: str
    amount: float
    price: float | None
    state: str
    exchange_id: str | None
    filled: float
    reason: str
    created: float  # time.time() when written, before sending


class Journal:
    """The SQLite journal at ``path``; open it with :meth:`open` (writer) or :meth:`read`."""

    def __init__(self, path: Path, connection: sqlite3.Connection,
                 lock: int | None) -> None:
        self.path = path
        self._db = connection
        self._lock = lock
        self.session: int | None = None

    # --- opening ------------------------------------------------------------------------
    @classmethod
    def open(cls, path: Path, identity: dict[str, str]) -> Journal:
        """Open (or create) the journal for writing, as its only writer.

        Parameters
        ----------
        path : pathlib.Path
            The SQLite file.
        identity : dict
            ``mode``, ``exchange``, ``symbol``, ``timeframe`` of the bot: a journal keeps one.

        Raises
        ------
        ConfigError
            When another bot holds it, or it belongs to another mode, market or timeframe.
        """
        path.parent.mkdir(parents=True, exist_ok=True)
        lock = os.open(f"{path}.lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(lock)
            raise ConfigError(f"journal {path} is in use by another running bot; stop it or "
                              "pass another --journal") from None
        journal = None
        try:
            db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
            journal = cls(path, db, lock)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=FULL")  # an attempt is on disk before it is sent
            db.executescript(_SCHEMA)
            journal._claim(identity)
        except (sqlite3.DatabaseError, ConfigError) as exc:
            if journal is not None:
                journal.close()
            else:
                os.close(lock)
            if isinstance(exc, ConfigError):
                raise
            raise ConfigError(f"{path} is not a bot journal ({exc}); pass another "
                              "--journal") from None
        return journal

    @classmethod
    def read(cls, path: Path) -> Journal:
        """Open an existing journal read-only (``status``), while a bot may be writing it."""
        if not path.is_file():
            raise ConfigError(f"no journal at {path}; a bot run writes one (see --journal)")
        db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, isolation_level=None,
                             check_same_thread=False)
        try:
            db.execute("SELECT 1 FROM meta LIMIT 1")
        except sqlite3.DatabaseError as exc:
            raise ConfigError(f"{path} is not a bot journal ({exc})") from None
        return cls(path, db, None)

    def _claim(self, identity: dict[str, str]) -> None:
        stored = self.meta()
        if not stored:
            with self._db:
                self._db.executemany("INSERT INTO meta VALUES (?, ?)",
                                     [("schema_version", str(SCHEMA_VERSION)),
                                      *identity.items()])
            return
        if stored.get("schema_version") != str(SCHEMA_VERSION):
            raise ConfigError(f"journal {self.path} has schema {stored.get('schema_version')}"
                              f", this bot writes {SCHEMA_VERSION}; use another --journal")
        differs = {k: (stored.get(k), v) for k, v in identity.items() if stored.get(k) != v}
        if differs:
            told = ", ".join(f"{k} {a!r} (not {b!r})" for k, (a, b) in differs.items())
            raise ConfigError(f"journal {self.path} belongs to {told}; pass another "
                              "--journal for this bot")

    def meta(self) -> dict[str, str]:
        """The journal's identity and settings."""
        return dict(self._db.execute("SELECT key, value FROM meta"))

    def set_meta(self, key: str, value: str) -> None:
        """Store a setting (e.g. a paper account's opening cash) once."""
        self._db.execute("INSERT OR IGNORE INTO meta VALUES (?, ?)", (key, value))

    def close(self) -> None:
        """Close the database and release the writer's lock."""
        self._db.close()
        if self._lock is not None:
            fcntl.flock(self._lock, fcntl.LOCK_UN)
            os.close(self._lock)
            self._lock = None

    # --- sessions, bars, signals, events ------------------------------------------------
    def start_session(self, model: str) -> int:
        """Begin a run; returns its id."""
        cursor = self._db.execute("INSERT INTO sessions (started, pid, model) VALUES (?, ?, ?)",
                                  (_now_iso(), os.getpid(), model))
        self.session = int(cursor.lastrowid)
        return self.session

    def end_session(self, summary: dict) -> None:
        """Close the run with its summary."""
        self._db.execute("UPDATE sessions SET ended = ?, summary = ? WHERE id = ?",
                         (_now_iso(), json.dumps(summary), self.session))

    def record(self, bars: list[tuple], signals: list[tuple]) -> None:
        """Bars seen and signals given, in one transaction.

        ``bars``: ``(time_ms, open, high, low, close, volume)``; ``signals``: ``(time_ms,
        proba, long, model, feed status, action, position, equity)``.
        """
        with self._db:
            self._db.executemany("INSERT OR REPLACE INTO bars VALUES (?, ?, ?, ?, ?, ?, ?)",
                                 [(*row, self.session) for row in bars])
            self._db.executemany(
                "INSERT OR REPLACE INTO signals VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [(t, self.session, None if p != p else p, int(lg), m, st, a, pos, eq)
                 for t, p, lg, m, st, a, pos, eq in signals])

    def _newest(self, columns: str, table: str, filters: list[tuple[str, object]],
                order: str, limit: int | None) -> list[tuple]:
        """Rows of ``table`` matching ``filters`` (clause, value), the ``limit`` newest by
        ``order`` (descending), returned oldest first."""
        where = " AND ".join(clause for clause, _ in filters) or "1"
        query = f"SELECT {columns} FROM {table} WHERE {where} ORDER BY {order}"
        args = [value for _, value in filters]
        if limit is not None:
            query += " LIMIT ?"
            args.append(limit)
        return self._db.execute(query, args).fetchall()[::-1]

    def bars(self, until_ms: int | None = None, limit: int | None = None,
             session: int | None = None) -> pd.DataFrame:
        """Recorded bars (an OHLCV frame), oldest first, up to ``until_ms`` inclusive."""
        filters = [(c, v) for c, v in (("time_ms <= ?", until_ms), ("session = ?", session))
                   if v is not None]
        rows = self._newest("time_ms, open, high, low, close, volume", "bars", filters,
                            "time_ms DESC", limit)
        index = pd.DatetimeIndex(pd.to_datetime([r[0] for r in rows], unit="ms", utc=True),
                                 name="datetime")
        return pd.DataFrame([r[1:] for r in rows], index=index,
                            columns=["open", "high", "low", "close", "volume"],
                            dtype="float64")

    def signals(self, session: int | None = None, limit: int | None = None) -> pd.DataFrame:
        """Recorded signals, oldest first (of one session when given)."""
        columns = ["time_ms", "session", "proba", "long", "model", "status", "action",
                   "position", "equity"]
        filters = [("session = ?", session)] if session is not None else []
        rows = self._newest(", ".join(columns), "signals", filters,
                            "time_ms DESC, session DESC", limit)
        return pd.DataFrame(rows, columns=columns)

    def event(self, kind: str, **detail: object) -> None:
        """Record an event (model swap, refusal, feed status, reconciliation...)."""
        self._db.execute("INSERT INTO events (time, session, kind, detail) VALUES (?, ?, ?, ?)",
                         (_now_iso(), self.session, kind, json.dumps(detail, default=str)))

    def events(self, kind: str | None = None) -> list[tuple[str, int, str, dict]]:
        """``(time, session, kind, detail)`` of recorded events, oldest first."""
        query, args = "SELECT time, session, kind, detail FROM events", []
        if kind is not None:
            query += " WHERE kind = ?"
            args.append(kind)
        return [(t, s, k, json.loads(d or "{}"))
                for t, s, k, d in self._db.execute(query + " ORDER BY id", args)]

    # --- orders (orders.OrderJournal) ---------------------------------------------------
    def order_attempts(self, key: str) -> list[tuple[str, str]]:
        """``(client_id, state)`` of earlier attempts at decision ``key``, oldest first."""
        return list(self._db.execute("SELECT client_id, state FROM orders WHERE intent_key = ?"
                                     " ORDER BY attempt", (key,)))

    def order_attempt(self, intent: OrderIntent, client_id: str, attempt: int) -> None:
        """Write, durably, that ``client_id`` is about to be sent."""
        now = time.time()
        self._db.execute("INSERT INTO orders (client_id, intent_key, attempt, session, side, "
                         "kind, amount, price, state, created, updated) VALUES "
                         "(?, ?, ?, ?, ?, ?, ?, ?, 'pending', ?, ?)",
                         (client_id, intent.key, attempt, self.session, intent.side,
                          intent.kind, intent.amount, intent.price, now, now))

    def order_state(self, client_id: str, state: str, order: OrderState | None = None,
                    reason: str = "") -> None:
        """Record what is now known of ``client_id``."""
        if order is None:
            self._db.execute("UPDATE orders SET state = ?, reason = ?, updated = ? "
                             "WHERE client_id = ?", (state, reason, time.time(), client_id))
            return
        self._db.execute("UPDATE orders SET state = ?, exchange_id = ?, filled = ?, "
                         "average = ?, reason = ?, updated = ? WHERE client_id = ?",
                         (state, order.exchange_id, order.filled, order.average, reason,
                          time.time(), client_id))

    def sent_at(self, client_id: str) -> float:
        """``time.time()`` when ``client_id`` was written, just before it was sent."""
        row = self._db.execute("SELECT created FROM orders WHERE client_id = ?",
                               (client_id,)).fetchone()
        if row is None:
            raise KeyError(f"no order attempt {client_id!r} in journal {self.path}")
        return float(row[0])

    def attempt_state(self, client_id: str) -> str | None:
        """The recorded state of attempt ``client_id``; None when it was never written."""
        row = self._db.execute("SELECT state FROM orders WHERE client_id = ?",
                               (client_id,)).fetchone()
        return None if row is None else str(row[0])

    def client_id_of(self, exchange_id: str) -> str | None:
        """The client id of the attempt the exchange knows as ``exchange_id``, if any."""
        row = self._db.execute("SELECT client_id FROM orders WHERE exchange_id = ?",
                               (exchange_id,)).fetchone()
        return None if row is None else str(row[0])

    def watch_since(self, horizon_s: float = LATE_HORIZON_S) -> int | None:
        """Exchange time (ms) from which executions may still be missing: the decision bar of
        the oldest attempt written in the last ``horizon_s`` seconds that is not provably final
        (unresolved, open, or absent: an exchange may break its promise) or whose recorded
        fills fall short of its filled amount; None if there is none."""
        keys = self._db.execute(
            f"SELECT intent_key FROM orders o WHERE created >= ? AND (state IN "
            f"({','.join('?' * 4)}) OR filled > 1e-12 + (SELECT COALESCE(SUM(amount), 0) "
            "FROM fills f WHERE f.client_id = o.client_id))",
            (time.time() - horizon_s, *UNRESOLVED, OPEN, ABSENT)).fetchall()
        return min((key_bar_ms(k) for (k,) in keys), default=None)

    def orders_sent_since(self, wall_s: float) -> int:
        """Order attempts written (each just before it was sent to the exchange) since
        ``wall_s``; a simulated broker's orders reach no exchange and are not counted."""
        return int(self._db.execute("SELECT COUNT(*) FROM orders WHERE created >= ? AND "
                                    "client_id NOT LIKE ?", (wall_s, f"{PAPER}%")
                                    ).fetchone()[0])

    def session_orders(self, session: int) -> dict[str, int]:
        """How many of ``session``'s order attempts are in each state."""
        return dict(self._db.execute("SELECT state, COUNT(*) FROM orders WHERE session = ? "
                                     "GROUP BY state ORDER BY state", (session,)))

    def session_fills(self, session: int) -> list[Fill]:
        """The fills recorded by ``session`` (late ones adopted by it included)."""
        return [Fill(*row) for row in self._db.execute(
            "SELECT trade_id, client_id, time_ms, side, amount, price, fee, fee_currency, "
            "base_delta, quote_delta FROM fills WHERE session = ? ORDER BY time_ms, rowid",
            (session,))]

    def orders(self, states: tuple[str, ...] | None = None) -> list[OrderRecord]:
        """Order attempts (in these states), oldest first."""
        query, args = ("SELECT client_id, intent_key, side, kind, amount, price, state, "
                       "exchange_id, filled, reason, created FROM orders"), []
        if states is not None:
            query += f" WHERE state IN ({','.join('?' * len(states))})"
            args = list(states)
        return [OrderRecord(*row[:9], row[9] or "", row[10])
                for row in self._db.execute(query + " ORDER BY created", args)]

    def unresolved(self) -> list[OrderRecord]:
        """Orders whose fate is open: written but unconfirmed, unknown, or still working."""
        return self.orders((*UNRESOLVED, OPEN))

    # --- fills and the book -------------------------------------------------------------
    def fill(self, fill: Fill) -> bool:
        """Record a fill; False when this trade id was recorded before."""
        cursor = self._db.execute("INSERT OR IGNORE INTO fills VALUES "
                                  "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                                  (fill.trade_id, fill.client_id, fill.time_ms, fill.side,
                                   fill.amount, fill.price, fill.fee, fill.fee_currency,
                                   fill.base_delta, fill.quote_delta, self.session))
        return cursor.rowcount == 1

    def fills(self) -> list[Fill]:
        """Every fill, oldest first."""
        return [Fill(*row) for row in self._db.execute(
            "SELECT trade_id, client_id, time_ms, side, amount, price, fee, fee_currency, "
            "base_delta, quote_delta FROM fills ORDER BY time_ms, rowid")]

    def filled_amount(self, client_id: str) -> float:
        """Base amount of the fills recorded for ``client_id``."""
        return float(self._db.execute("SELECT COALESCE(SUM(amount), 0) FROM fills WHERE "
                                      "client_id = ?", (client_id,)).fetchone()[0])

    def position(self) -> float:
        """What the bot's own fills add up to, in the base asset."""
        return float(self._db.execute("SELECT COALESCE(SUM(base_delta), 0) FROM fills")
                     .fetchone()[0])

    def cash_flow(self) -> float:
        """Net quote paid (negative) or received by the bot's own fills, fees included."""
        return float(self._db.execute("SELECT COALESCE(SUM(quote_delta), 0) FROM fills")
                     .fetchone()[0])

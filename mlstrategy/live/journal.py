"""The bot's journal: one SQLite file (WAL, one writer) that survives every crash.

It records every bar seen, every signal with P(up) and the model version, every order attempt
with its client id *before* it is sent and each state after, every fill by the exchange's
trade id, and events (model swaps, refusals, feed status, reconciliation). A restarted bot
reads its book back from it: its position is the sum of its own fills.

Several markets share one journal (a portfolio bot): bars, signals, orders, fills, events and
settings carry their market's name, and ``for_market`` gives the view one market's machinery
reads and writes (its book, its orders); a one-market bot's market is named ``""``. Sessions
and the order-rate count are the whole bot's.

Contract: one bot per journal (an exclusive lock file beside it); a journal belongs to one mode
and each market name to one (exchange, symbol, timeframe), and refuses another; commits are
durable (``synchronous=FULL``) because an order attempt must be on disk before it is sent. API
credentials are never written here. Version-1 journals (one market) are migrated in place.
"""
from __future__ import annotations

import fcntl
import json
import os
import sqlite3
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd

from execution.futures import Funding
from execution.orders import (
    ABSENT,
    OPEN,
    REJECTED,
    UNRESOLVED,
    Fill,
    OrderIntent,
    OrderState,
    key_bar_ms,
)
from mlstrategy.errors import ConfigError

SCHEMA_VERSION = 3
PAPER = "paper-"  # client ids of a simulated broker's orders (they reach no exchange)
LATE_HORIZON_S = 86_400.0  # an attempt not provably final is watched for late executions this long
_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS sessions (
    id INTEGER PRIMARY KEY, started TEXT NOT NULL, ended TEXT, pid INTEGER, model TEXT,
    summary TEXT);
CREATE TABLE IF NOT EXISTS markets (
    name TEXT PRIMARY KEY, exchange TEXT NOT NULL, symbol TEXT NOT NULL,
    timeframe TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS bars (
    market TEXT NOT NULL DEFAULT '', time_ms INTEGER NOT NULL, open REAL, high REAL,
    low REAL, close REAL, volume REAL, session INTEGER, PRIMARY KEY (market, time_ms));
CREATE TABLE IF NOT EXISTS signals (
    market TEXT NOT NULL DEFAULT '', time_ms INTEGER NOT NULL, session INTEGER NOT NULL,
    proba REAL, long INTEGER, model TEXT, status TEXT, action TEXT, position REAL,
    equity REAL, x_hash TEXT, enter REAL, exit REAL, features BLOB,
    PRIMARY KEY (market, time_ms, session));
CREATE TABLE IF NOT EXISTS models (
    ref TEXT PRIMARY KEY, model_sha256 TEXT NOT NULL, features_hash TEXT NOT NULL,
    path TEXT);
CREATE TABLE IF NOT EXISTS orders (
    client_id TEXT PRIMARY KEY, intent_key TEXT NOT NULL, attempt INTEGER NOT NULL,
    session INTEGER, side TEXT, kind TEXT, amount REAL, price REAL, state TEXT NOT NULL,
    exchange_id TEXT, filled REAL DEFAULT 0, average REAL, reason TEXT,
    created REAL NOT NULL, updated REAL NOT NULL, market TEXT NOT NULL DEFAULT '');
CREATE INDEX IF NOT EXISTS orders_by_key ON orders (intent_key);
CREATE INDEX IF NOT EXISTS orders_by_time ON orders (market, created);
CREATE TABLE IF NOT EXISTS fills (
    trade_id TEXT NOT NULL, client_id TEXT, time_ms INTEGER, side TEXT, amount REAL,
    price REAL, fee REAL, fee_currency TEXT, base_delta REAL, quote_delta REAL,
    session INTEGER, market TEXT NOT NULL DEFAULT '', PRIMARY KEY (market, trade_id));
CREATE INDEX IF NOT EXISTS fills_by_order ON fills (client_id);
CREATE TABLE IF NOT EXISTS funding (
    market TEXT NOT NULL, id TEXT NOT NULL, time_ms INTEGER NOT NULL, amount REAL NOT NULL,
    currency TEXT, session INTEGER, PRIMARY KEY (market, id));
CREATE TABLE IF NOT EXISTS events (
    id INTEGER PRIMARY KEY, time TEXT NOT NULL, session INTEGER, kind TEXT NOT NULL,
    detail TEXT, market TEXT NOT NULL DEFAULT '');
"""
# version 1 (one market, no market columns) -> 2: its market is named "" (trade and exchange
# order ids are unique only within a market: binance numbers them per symbol)
_MIGRATE_1 = """
ALTER TABLE orders ADD COLUMN market TEXT NOT NULL DEFAULT '';
ALTER TABLE fills RENAME TO fills_1;
ALTER TABLE events ADD COLUMN market TEXT NOT NULL DEFAULT '';
ALTER TABLE bars RENAME TO bars_1;
ALTER TABLE signals RENAME TO signals_1;
"""
_COPY_1 = """
INSERT INTO bars SELECT '', * FROM bars_1;
INSERT INTO signals (market, time_ms, session, proba, long, model, status, action, position,
    equity) SELECT '', * FROM signals_1;
INSERT INTO fills SELECT *, '' FROM fills_1;
DROP TABLE fills_1;
DROP TABLE bars_1;
DROP TABLE signals_1;
INSERT OR IGNORE INTO markets SELECT '', e.value, s.value, t.value FROM meta e, meta s, meta t
    WHERE e.key = 'exchange' AND s.key = 'symbol' AND t.key = 'timeframe';
UPDATE meta SET value = '2' WHERE key = 'schema_version';
"""
IDENTITY = ("exchange", "symbol", "timeframe")  # of a market
SIGNAL_COLUMNS = ("time_ms", "session", "proba", "long", "model", "status", "action",
                  "position", "equity")
# version 3: what makes each decision re-playable (the audit's)
_AUDIT_COLUMNS = {"x_hash": "TEXT", "enter": "REAL", "exit": "REAL", "features": "BLOB"}


Listener = Callable[[str, str, dict], None]  # (kind, market, detail): see Journal.listen


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
                 lock: int | None, market: str = "", *, owner: bool = True,
                 listeners: list[Listener] | None = None) -> None:
        self.path = path
        self._db = connection
        self._lock = lock
        self.market = market
        self._owner = owner  # a market's view shares the connection: it never closes it
        self._listeners = [] if listeners is None else listeners  # shared with the views
        self.session: int | None = None

    def listen(self, listener: Listener) -> None:
        """Call ``listener(kind, market, detail)`` once each event, new fill (kind
        ``fill``) or order the exchange rejected (kind ``rejected``) is written, in every
        market (notifications). A listener must not block: it runs on the writer's thread."""
        self._listeners.append(listener)

    def _tell(self, kind: str, detail: dict) -> None:
        for listener in self._listeners:
            listener(kind, self.market, detail)

    def for_market(self, name: str) -> Journal:
        """The view of market ``name``: its bars, signals, orders, fills, events, settings
        (the same connection and session; closing the view leaves the journal open)."""
        view = Journal(self.path, self._db, None, name, owner=False,
                       listeners=self._listeners)
        view.session = self.session
        return view

    def markets(self) -> dict[str, dict[str, str]]:
        """Every market the journal has traded: name -> exchange, symbol, timeframe."""
        return {name: dict(zip(IDENTITY, rest, strict=True)) for name, *rest in
                self._db.execute("SELECT name, exchange, symbol, timeframe FROM markets "
                                 "ORDER BY rowid")}

    # --- opening ------------------------------------------------------------------------
    @classmethod
    def open(cls, path: Path, identity: dict[str, str],
             markets: dict[str, dict[str, str]] | None = None) -> Journal:
        """Open (or create) the journal for writing, as its only writer.

        Parameters
        ----------
        path : pathlib.Path
            The SQLite file.
        identity : dict
            ``mode`` of the bot (a journal keeps one), and for a one-market bot the
            ``exchange``, ``symbol`` and ``timeframe`` of its market (named ``""``).
        markets : dict, optional
            A portfolio's markets: name -> ``exchange``, ``symbol``, ``timeframe``. A name
            keeps its market; names may be added over the journal's life.

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
            journal._migrate()
            db.executescript(_SCHEMA)
            journal._claim(identity, markets or {})
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

    def _migrate(self) -> None:
        """Bring a version-1 (one market) or 2 (no decision audit) journal to the current
        schema, in one transaction."""
        tables = {t for (t,) in self._db.execute("SELECT name FROM sqlite_master WHERE "
                                                 "type = 'table'")}
        if "meta" not in tables:
            return
        version = self._db.execute("SELECT value FROM meta WHERE key = 'schema_version'"
                                   ).fetchone()
        if version is None or version[0] not in ("1", "2"):
            return
        if version[0] == "1":  # its signals are copied into a table of the current schema
            script = _MIGRATE_1 + _SCHEMA + _COPY_1
        else:
            script = _SCHEMA + "".join(f"ALTER TABLE signals ADD COLUMN {name} {kind};"
                                       for name, kind in _AUDIT_COLUMNS.items())
        script += "UPDATE meta SET value = '3' WHERE key = 'schema_version';"
        self._db.executescript(f"BEGIN; {script} COMMIT;")

    def _claim(self, identity: dict[str, str],
               markets: dict[str, dict[str, str]]) -> None:
        wanted = dict(markets)
        if any(k in identity for k in IDENTITY):
            wanted[""] = {k: identity[k] for k in IDENTITY}
        stored = self.meta()
        if stored and stored.get("schema_version") != str(SCHEMA_VERSION):
            raise ConfigError(f"journal {self.path} has schema {stored.get('schema_version')}"
                              f", this bot writes {SCHEMA_VERSION}; use another --journal")
        mode = identity["mode"]
        if stored and stored.get("mode") != mode:
            raise ConfigError(f"journal {self.path} belongs to mode {stored.get('mode')!r} "
                              f"(not {mode!r}); pass another --journal for this bot")
        known = self.markets()
        for name, market in wanted.items():
            had = known.get(name)
            differs = {} if had is None else {k: (had[k], market[k]) for k in IDENTITY
                                               if had[k] != market[k]}
            if differs:
                told = ", ".join(f"{k} {a!r} (not {b!r})" for k, (a, b) in differs.items())
                where = f"market {name!r}: " if name else ""
                raise ConfigError(f"journal {self.path} belongs to {where}{told}; pass "
                                  "another --journal for this bot")
        with self._db:
            if not stored:
                self._db.executemany("INSERT INTO meta VALUES (?, ?)",
                                     [("schema_version", str(SCHEMA_VERSION)),
                                      ("mode", mode)])
            self._db.executemany("INSERT OR IGNORE INTO markets VALUES (?, ?, ?, ?)",
                                 [(name, *(m[k] for k in IDENTITY))
                                  for name, m in wanted.items()])

    def meta(self) -> dict[str, str]:
        """The journal's settings, this market's over the whole bot's (``mode``...), and
        this market's exchange, symbol and timeframe."""
        prefix = f"{self.market}:" if self.market else ""
        rows = dict(self._db.execute("SELECT key, value FROM meta"))
        mine = {k[len(prefix):]: v for k, v in rows.items() if prefix and k.startswith(prefix)}
        shared = {k: v for k, v in rows.items() if ":" not in k}
        return {**shared, **self.markets().get(self.market, {}), **mine}

    def set_meta(self, key: str, value: str) -> None:
        """Store a setting of this market (e.g. what the account held before its first
        order) once."""
        prefix = f"{self.market}:" if self.market else ""
        self._db.execute("INSERT OR IGNORE INTO meta VALUES (?, ?)", (prefix + key, value))

    def close(self) -> None:
        """Close the database and release the writer's lock (a market's view: nothing)."""
        if not self._owner:
            return
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

    def last_session(self) -> dict | None:
        """The newest run: id, started, ended (None while it runs) and its models."""
        row = self._db.execute("SELECT id, started, ended, model FROM sessions ORDER BY id "
                               "DESC LIMIT 1").fetchone()
        return None if row is None else dict(zip(("id", "started", "ended", "model"), row,
                                                  strict=True))

    def end_session(self, summary: dict) -> None:
        """Close the run with its summary."""
        self._db.execute("UPDATE sessions SET ended = ?, summary = ? WHERE id = ?",
                         (_now_iso(), json.dumps(summary), self.session))

    def record(self, bars: list[tuple], signals: list[tuple],
               meta: dict[str, str] | None = None) -> None:
        """Bars seen and signals given (and this market's settings ``meta`` replaced), in one
        transaction.

        ``bars``: ``(time_ms, open, high, low, close, volume)``; ``signals``: ``(time_ms,
        proba, target, model, feed status, action, position, equity, feature vector hash,
        enter, exit, feature vector bytes or None)``, the target (1 long, 0 flat, -1 short) in
        the ``long`` column (1 or 0 before shorts were traded).
        """
        prefix = f"{self.market}:" if self.market else ""
        with self._db:
            self._db.executemany("INSERT OR REPLACE INTO bars VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                                 [(self.market, *row, self.session) for row in bars])
            self._db.executemany(
                "INSERT OR REPLACE INTO signals VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, "
                "?)", [(self.market, t, self.session, None if p != p else p, int(lg), m, st, a,
                        pos, eq, *audit) for t, p, lg, m, st, a, pos, eq, *audit in signals])
            self._db.executemany("INSERT OR REPLACE INTO meta VALUES (?, ?)",
                                 [(prefix + k, v) for k, v in (meta or {}).items()])

    def model_used(self, ref: str, model_sha256: str, features_hash: str, path: str) -> None:
        """Record a model that decides (its sha256 and feature spec hash: the audit's)."""
        with self._db:
            self._db.execute("INSERT OR IGNORE INTO models VALUES (?, ?, ?, ?)",
                             (ref, model_sha256, features_hash, path))

    def models_used(self) -> dict[str, dict]:
        """Every model that decided in this journal, by ``name/version``."""
        try:
            rows = self._db.execute("SELECT ref, model_sha256, features_hash, path FROM models")
        except sqlite3.OperationalError:  # a read of a journal written before version 3
            return {}
        return {r[0]: {"model_sha256": r[1], "features_hash": r[2], "path": r[3]} for r in rows}

    def audit_rows(self, session: int) -> pd.DataFrame:
        """One session's signals with what makes them re-playable, oldest first: time,
        P(up), model, action, feature vector hash and bytes (None unless journaled),
        thresholds, and the bar as the journal has it now, with the session that wrote it."""
        try:
            rows = self._db.execute(
                "SELECT s.time_ms, s.proba, s.model, s.action, s.x_hash, s.features, s.enter, "
                "s.exit, b.open, b.high, b.low, b.close, b.volume, b.session FROM signals s "
                "LEFT JOIN bars b ON b.market = s.market AND b.time_ms = s.time_ms "
                "WHERE s.market = ? AND s.session = ? ORDER BY s.time_ms",
                (self.market, session)).fetchall()
        except sqlite3.OperationalError:
            raise ConfigError(f"{self.path} was written before decisions were journaled for "
                              "audit (schema 2); audit a journal of this version") from None
        return pd.DataFrame(rows, columns=["time_ms", "proba", "model", "action", "x_hash",
                                           "features", "enter", "exit", "open", "high", "low",
                                           "close", "volume", "bar_session"])

    def sessions(self) -> list[int]:
        """The sessions that journaled signals of this market, oldest first."""
        return [s for (s,) in self._db.execute("SELECT DISTINCT session FROM signals WHERE "
                                               "market = ? ORDER BY session", (self.market,))]

    def _newest(self, columns: str, table: str, filters: list[tuple[str, object]],
                order: str, limit: int | None) -> list[tuple]:
        """This market's rows of ``table`` matching ``filters`` (clause, its value or a tuple
        of its values), the ``limit`` newest by ``order`` (descending), returned oldest
        first."""
        filters = [("market = ?", self.market), *filters]
        where = " AND ".join(clause for clause, _ in filters)
        query = f"SELECT {columns} FROM {table} WHERE {where} ORDER BY {order}"
        args = [v for _, value in filters
                for v in (value if isinstance(value, tuple) else (value,))]
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
        filters = [("session = ?", session)] if session is not None else []
        return pd.DataFrame(self._newest(", ".join(SIGNAL_COLUMNS), "signals", filters,
                                         "time_ms DESC, session DESC", limit),
                            columns=list(SIGNAL_COLUMNS))

    def decisions(self, limit: int) -> list[dict]:
        """The ``limit`` newest signals past the warm-up history, oldest first, as dicts of
        ``SIGNAL_COLUMNS`` (no pandas: the control API asks for them many times a second)."""
        rows = self._newest(", ".join(SIGNAL_COLUMNS), "signals", [("action != ?", "history")],
                            "time_ms DESC, session DESC", limit)
        return [dict(zip(SIGNAL_COLUMNS, row, strict=True)) for row in rows]

    def last_bar(self) -> tuple[int, float] | None:
        """Open time (ms) and close of this market's newest bar, if any."""
        return self._db.execute("SELECT time_ms, close FROM bars WHERE market = ? ORDER BY "
                                "time_ms DESC LIMIT 1", (self.market,)).fetchone()

    def event(self, kind: str, **detail: object) -> None:
        """Record an event of this market (model swap, refusal, feed status...)."""
        self._db.execute("INSERT INTO events (time, session, kind, detail, market) VALUES "
                         "(?, ?, ?, ?, ?)", (_now_iso(), self.session, kind,
                                             json.dumps(detail, default=str), self.market))
        self._tell(kind, detail)

    def last_event(self, kind: str) -> tuple[str, int, str, dict] | None:
        """``(time, session, kind, detail)`` of this market's newest ``kind`` event, if any."""
        row = self._db.execute("SELECT time, session, kind, detail FROM events WHERE market = ?"
                               " AND kind = ? ORDER BY id DESC LIMIT 1",
                               (self.market, kind)).fetchone()
        return None if row is None else (*row[:3], json.loads(row[3] or "{}"))

    def equity_points(self, points: int) -> list[tuple[int, float, float | None]]:
        """``(time_ms, equity, close)`` of this market's traded bars, at most about
        ``points`` of them evenly spread (the first and the last included), read in SQL so
        a long journal costs no memory here."""
        traded = "s.market = ? AND s.action != 'history' AND s.equity IS NOT NULL"
        total = self._db.execute(f"SELECT COUNT(*) FROM signals s WHERE {traded}",
                                 (self.market,)).fetchone()[0]
        step = max(total // max(points, 1), 1)
        return self._db.execute(
            "SELECT time_ms, equity, close FROM (SELECT s.time_ms, s.equity, b.close, "
            "ROW_NUMBER() OVER (ORDER BY s.time_ms, s.session) AS n FROM signals s LEFT JOIN "
            f"bars b ON b.market = s.market AND b.time_ms = s.time_ms WHERE {traded}) "
            "WHERE (n - 1) % ? = 0 OR n = ? ORDER BY n", (self.market, step, total)).fetchall()

    def events(self, kind: str | None = None) -> list[tuple[str, int, str, dict]]:
        """``(time, session, kind, detail)`` of this market's events, oldest first."""
        query, args = "SELECT time, session, kind, detail FROM events WHERE market = ?", \
            [self.market]
        if kind is not None:
            query += " AND kind = ?"
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
                         "kind, amount, price, state, created, updated, market) VALUES "
                         "(?, ?, ?, ?, ?, ?, ?, ?, 'pending', ?, ?, ?)",
                         (client_id, intent.key, attempt, self.session, intent.side,
                          intent.kind, intent.amount, intent.price, now, now, self.market))

    def order_state(self, client_id: str, state: str, order: OrderState | None = None,
                    reason: str = "") -> None:
        """Record what is now known of ``client_id``."""
        if state == REJECTED:
            self._tell(REJECTED, {"client_id": client_id, "reason": reason})
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
        row = self._db.execute("SELECT client_id FROM orders WHERE exchange_id = ? AND "
                               "market = ?", (exchange_id, self.market)).fetchone()
        return None if row is None else str(row[0])

    def watch_since(self, horizon_s: float = LATE_HORIZON_S) -> int | None:
        """Exchange time (ms) from which executions may still be missing: the decision bar of
        the oldest attempt written in the last ``horizon_s`` seconds that is not provably final
        (unresolved, open, or absent: an exchange may break its promise) or whose recorded
        fills fall short of its filled amount; None if there is none."""
        keys = self._db.execute(
            f"SELECT intent_key FROM orders o WHERE market = ? AND created >= ? AND (state IN "
            f"({','.join('?' * 4)}) OR filled > 1e-12 + (SELECT COALESCE(SUM(amount), 0) "
            "FROM fills f WHERE f.client_id = o.client_id))",
            (self.market, time.time() - horizon_s, *UNRESOLVED, OPEN, ABSENT)).fetchall()
        return min((key_bar_ms(k) for (k,) in keys), default=None)

    def orders_sent_since(self, wall_s: float) -> int:
        """Order attempts written (each just before it was sent to the exchange) since
        ``wall_s``, in every market; a simulated broker's orders reach no exchange and are not
        counted."""
        return int(self._db.execute("SELECT COUNT(*) FROM orders WHERE created >= ? AND "
                                    "client_id NOT LIKE ?", (wall_s, f"{PAPER}%")
                                    ).fetchone()[0])

    def session_orders(self, session: int) -> dict[str, int]:
        """How many of ``session``'s order attempts in this market are in each state."""
        return dict(self._db.execute("SELECT state, COUNT(*) FROM orders WHERE session = ? "
                                     "AND market = ? GROUP BY state ORDER BY state",
                                     (session, self.market)))

    def session_fills(self, session: int) -> list[Fill]:
        """The fills recorded by ``session`` (late ones adopted by it included)."""
        return [Fill(*row) for row in self._db.execute(
            "SELECT trade_id, client_id, time_ms, side, amount, price, fee, fee_currency, "
            "base_delta, quote_delta FROM fills WHERE session = ? AND market = ? "
            "ORDER BY time_ms, rowid", (session, self.market))]

    def orders(self, states: tuple[str, ...] | None = None,
               limit: int | None = None) -> list[OrderRecord]:
        """This market's order attempts (in these states; the ``limit`` newest), oldest
        first."""
        filters = [] if states is None else \
            [(f"state IN ({','.join('?' * len(states))})", tuple(states))]
        rows = self._newest("client_id, intent_key, side, kind, amount, price, state, "
                            "exchange_id, filled, reason, created", "orders", filters,
                            "created DESC, rowid DESC", limit)
        return [OrderRecord(*row[:9], row[9] or "", row[10]) for row in rows]

    def unresolved(self) -> list[OrderRecord]:
        """Orders whose fate is open: written but unconfirmed, unknown, or still working."""
        return self.orders((*UNRESOLVED, OPEN))

    # --- fills and the book -------------------------------------------------------------
    def fill(self, fill: Fill) -> bool:
        """Record a fill; False when this trade id was recorded before."""
        cursor = self._db.execute("INSERT OR IGNORE INTO fills VALUES "
                                  "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                                  (fill.trade_id, fill.client_id, fill.time_ms, fill.side,
                                   fill.amount, fill.price, fill.fee, fill.fee_currency,
                                   fill.base_delta, fill.quote_delta, self.session,
                                   self.market))
        if cursor.rowcount != 1:
            return False
        self._tell("fill", asdict(fill))
        return True

    def fills(self, limit: int | None = None) -> list[Fill]:
        """Every fill of this market (the ``limit`` newest), oldest first."""
        return [Fill(*row) for row in self._newest(
            "trade_id, client_id, time_ms, side, amount, price, fee, fee_currency, "
            "base_delta, quote_delta", "fills", [], "time_ms DESC, rowid DESC", limit)]

    def fill_count(self) -> int:
        """How many fills this market has."""
        return int(self._db.execute("SELECT COUNT(*) FROM fills WHERE market = ?",
                                    (self.market,)).fetchone()[0])

    def filled_amount(self, client_id: str) -> float:
        """Base amount of the fills recorded for ``client_id``."""
        return float(self._db.execute("SELECT COALESCE(SUM(amount), 0) FROM fills WHERE "
                                      "client_id = ?", (client_id,)).fetchone()[0])

    def position(self) -> float:
        """What the bot's own fills in this market add up to, in the base asset."""
        return float(self._db.execute("SELECT COALESCE(SUM(base_delta), 0) FROM fills WHERE "
                                      "market = ?", (self.market,)).fetchone()[0])

    def cash_flow(self, every_market: bool = False) -> float:
        """Net quote paid (negative) or received by the bot's own fills in this market (in
        every market: a shared account's), fees and a contract's funding included."""
        where, args = ("", ()) if every_market else (" WHERE market = ?", (self.market,))
        tables = (("quote_delta", "fills"), ("amount", "funding")) if self._has_funding() \
            else (("quote_delta", "fills"),)
        return sum(float(self._db.execute(f"SELECT COALESCE(SUM({column}), 0) FROM {table}"
                                          + where, args).fetchone()[0])
                   for column, table in tables)

    def _has_funding(self) -> bool:
        """Whether the file has the funding table (a journal written before it, read-only,
        does not)."""
        return self._db.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND "
                                "name = 'funding'").fetchone() is not None

    # --- a contract's funding -----------------------------------------------------------
    def funding(self, payment: Funding) -> bool:
        """Record a funding payment of this market; False when it was recorded before."""
        cursor = self._db.execute("INSERT OR IGNORE INTO funding VALUES (?, ?, ?, ?, ?, ?)",
                                  (self.market, payment.id, payment.time_ms, payment.amount,
                                   payment.currency, self.session))
        return cursor.rowcount == 1

    def last_funding_ms(self) -> int | None:
        """Time of this market's newest funding payment recorded, if any."""
        return self._db.execute("SELECT MAX(time_ms) FROM funding WHERE market = ?",
                                (self.market,)).fetchone()[0]

    def funding_total(self) -> tuple[float, int]:
        """This market's funding received (negative: paid) and the number of payments."""
        if not self._has_funding():
            return 0.0, 0
        total, count = self._db.execute("SELECT COALESCE(SUM(amount), 0), COUNT(*) FROM "
                                        "funding WHERE market = ?", (self.market,)).fetchone()
        return float(total), int(count)

"""The journal: one writer, one bot identity, fills counted once, the book read back."""
from __future__ import annotations

import pytest

from execution.orders import Fill, OrderIntent
from mlstrategy.errors import ConfigError
from mlstrategy.live.journal import Journal

IDENTITY = {"mode": "live", "exchange": "binance", "symbol": "BTC/USDT", "timeframe": "1m"}


def _fill(trade_id: str, side: str, amount: float, price: float) -> Fill:
    sign = 1.0 if side == "buy" else -1.0
    fee = amount * price * 0.001
    return Fill(trade_id, "c-0", 1_700_000_000_000, side, amount, price, fee, "USDT",
                sign * amount, -sign * amount * price - fee)


def test_one_writer_and_one_identity(tmp_path):
    path = tmp_path / "j.sqlite"
    journal = Journal.open(path, IDENTITY)
    with pytest.raises(ConfigError, match="in use by another running bot"):
        Journal.open(path, IDENTITY)
    journal.close()
    with pytest.raises(ConfigError, match=r"symbol 'BTC/USDT' \(not 'ETH/USDT'\)"):
        Journal.open(path, {**IDENTITY, "symbol": "ETH/USDT"})
    Journal.open(path, IDENTITY).close()  # the same bot again: fine


def test_fills_are_counted_once_and_make_the_position(tmp_path):
    journal = Journal.open(tmp_path / "j.sqlite", IDENTITY)
    journal.start_session("m/v")
    journal.order_attempt(OrderIntent("k", "buy", 0.3), "c-0", 0)
    assert journal.fill(_fill("1", "buy", 0.3, 100.0))
    assert not journal.fill(_fill("1", "buy", 0.3, 100.0))  # the same trade seen again
    assert journal.fill(_fill("2", "sell", 0.1, 110.0))
    assert journal.position() == pytest.approx(0.2)
    assert journal.cash_flow() == pytest.approx(-30.03 + 10.989)
    assert journal.filled_amount("c-0") == pytest.approx(0.4)
    journal.close()
    reader = Journal.read(tmp_path / "j.sqlite")
    assert [f.trade_id for f in reader.fills()] == ["1", "2"]
    reader.close()


def test_an_attempt_is_on_disk_before_it_is_sent(tmp_path):
    path = tmp_path / "j.sqlite"
    journal = Journal.open(path, IDENTITY)
    journal.start_session("m/v")
    journal.order_attempt(OrderIntent("k", "buy", 0.3), "c-0", 0)
    reader = Journal.read(path)  # another connection, as a restarted bot would be
    assert [(o.client_id, o.state) for o in reader.unresolved()] == [("c-0", "pending")]
    reader.close()
    journal.close()


def test_reading_what_is_not_a_journal(tmp_path):
    with pytest.raises(ConfigError, match="no journal"):
        Journal.read(tmp_path / "missing.sqlite")
    (tmp_path / "text.sqlite").write_text("hello")
    with pytest.raises(ConfigError, match="not a bot journal"):
        Journal.read(tmp_path / "text.sqlite")


def test_markets_keep_their_own_books_in_one_journal(tmp_path):
    path = tmp_path / "j.sqlite"
    markets = {"btc": {**{k: IDENTITY[k] for k in ("exchange", "symbol", "timeframe")}},
               "eth": {"exchange": "binance", "symbol": "ETH/USDT", "timeframe": "1m"}}
    journal = Journal.open(path, {"mode": "live"}, markets)
    journal.start_session("portfolio")
    btc, eth = journal.for_market("btc"), journal.for_market("eth")
    btc.order_attempt(OrderIntent("kb", "buy", 0.3), "cb-0", 0)
    eth.order_attempt(OrderIntent("ke", "buy", 2.0), "ce-0", 0)
    # binance numbers trades and orders per symbol: the same ids in two markets are two fills
    assert btc.fill(_fill("1", "buy", 0.3, 100.0))
    assert eth.fill(_fill("1", "buy", 2.0, 10.0))
    btc.set_meta("held_before", "0.5")
    btc.event("late_execution", client_id="cb-0")
    assert (btc.position(), eth.position()) == (pytest.approx(0.3), pytest.approx(2.0))
    assert [o.client_id for o in eth.unresolved()] == ["ce-0"]
    assert btc.meta()["held_before"] == "0.5" and "held_before" not in eth.meta()
    assert eth.meta()["symbol"] == "ETH/USDT" and eth.events("late_execution") == []
    assert btc.cash_flow(every_market=True) == pytest.approx(-30.03 - 20.02)
    assert btc.orders_sent_since(0.0) == 2  # the order rate is the whole bot's
    btc.close()  # a view leaves the journal open
    assert journal.for_market("btc").position() == pytest.approx(0.3)
    journal.close()
    with pytest.raises(ConfigError, match=r"market 'eth': symbol 'ETH/USDT' \(not 'SOL/USDT'\)"):
        Journal.open(path, {"mode": "live"}, {"eth": {**markets["eth"], "symbol": "SOL/USDT"}})
    with pytest.raises(ConfigError, match=r"mode 'live' \(not 'paper'\)"):
        Journal.open(path, {"mode": "paper"}, markets)
    reopened = Journal.open(path, {"mode": "live"}, {**markets, "sol": {
        "exchange": "binance", "symbol": "SOL/USDT", "timeframe": "1m"}})  # a market added
    assert list(reopened.markets()) == ["btc", "eth", "sol"]
    reopened.close()


_V1 = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE sessions (id INTEGER PRIMARY KEY, started TEXT NOT NULL, ended TEXT, pid INTEGER,
    model TEXT, summary TEXT);
CREATE TABLE bars (time_ms INTEGER PRIMARY KEY, open REAL, high REAL, low REAL, close REAL,
    volume REAL, session INTEGER);
CREATE TABLE signals (time_ms INTEGER NOT NULL, session INTEGER NOT NULL, proba REAL,
    long INTEGER, model TEXT, status TEXT, action TEXT, position REAL, equity REAL,
    PRIMARY KEY (time_ms, session));
CREATE TABLE orders (client_id TEXT PRIMARY KEY, intent_key TEXT NOT NULL,
    attempt INTEGER NOT NULL, session INTEGER, side TEXT, kind TEXT, amount REAL, price REAL,
    state TEXT NOT NULL, exchange_id TEXT, filled REAL DEFAULT 0, average REAL, reason TEXT,
    created REAL NOT NULL, updated REAL NOT NULL);
CREATE INDEX orders_by_key ON orders (intent_key);
CREATE TABLE fills (trade_id TEXT PRIMARY KEY, client_id TEXT, time_ms INTEGER, side TEXT,
    amount REAL, price REAL, fee REAL, fee_currency TEXT, base_delta REAL, quote_delta REAL,
    session INTEGER);
CREATE TABLE events (id INTEGER PRIMARY KEY, time TEXT NOT NULL, session INTEGER,
    kind TEXT NOT NULL, detail TEXT);
INSERT INTO meta VALUES ('schema_version', '1'), ('mode', 'live'), ('exchange', 'binance'),
    ('symbol', 'BTC/USDT'), ('timeframe', '1m'), ('held_before', '0.05');
INSERT INTO sessions VALUES (1, '2026-01-01T00:00:00+00:00', NULL, 1, 'm/v', NULL);
INSERT INTO bars VALUES (1700000000000, 1, 2, 0.5, 1.5, 10, 1);
INSERT INTO signals VALUES (1700000000000, 1, 0.6, 1, 'm/v', 'LIVE', 'enter 0.3', 0, 100);
INSERT INTO orders VALUES ('c-0', 'k', 0, 1, 'buy', 'market', 0.3, NULL, 'open', '7', 0.3,
    100, '', 1.0, 1.0);
INSERT INTO fills VALUES ('1', 'c-0', 1700000000000, 'buy', 0.3, 100, 0.03, 'USDT', 0.3,
    -30.03, 1);
INSERT INTO events VALUES (1, '2026-01-01T00:00:00+00:00', 1, 'reconciled', '{}');
"""


def test_a_version_1_journal_is_migrated_with_its_book(tmp_path):
    import sqlite3

    path = tmp_path / "old.sqlite"
    db = sqlite3.connect(path)
    db.executescript(_V1)
    db.close()
    journal = Journal.open(path, IDENTITY)  # the one-market bot that wrote it
    assert journal.position() == pytest.approx(0.3)
    assert [o.client_id for o in journal.unresolved()] == ["c-0"]
    assert journal.client_id_of("7") == "c-0" and journal.meta()["held_before"] == "0.05"
    assert len(journal.bars()) == 1 and len(journal.signals()) == 1
    assert [e[2] for e in journal.events()] == ["reconciled"]
    assert journal.markets() == {"": {k: IDENTITY[k] for k in ("exchange", "symbol",
                                                                "timeframe")}}
    journal.close()
    with pytest.raises(ConfigError, match=r"symbol 'BTC/USDT' \(not 'ETH/USDT'\)"):
        Journal.open(path, {**IDENTITY, "symbol": "ETH/USDT"})


def test_a_version_2_journal_gains_the_decision_audits_columns(tmp_path):
    import sqlite3

    path = tmp_path / "v2.sqlite"
    journal = Journal.open(path, IDENTITY)
    journal.start_session("m/1")
    journal.record([(0, 1.0, 2.0, 0.5, 1.5, 10.0)],
                   [(0, 0.6, 1, "m/1", "LIVE", "hold", 0.0, 100.0, None, None, None, None)])
    journal.close()
    db = sqlite3.connect(path)  # back to what a version-2 bot wrote
    db.executescript("ALTER TABLE signals DROP COLUMN x_hash; ALTER TABLE signals DROP COLUMN "
                     "enter; ALTER TABLE signals DROP COLUMN exit; ALTER TABLE signals DROP "
                     "COLUMN features; DROP TABLE models; UPDATE meta SET value = '2' WHERE "
                     "key = 'schema_version';")
    db.close()
    with pytest.raises(ConfigError, match="written before decisions were journaled"):
        Journal.read(path).audit_rows(1)
    journal = Journal.open(path, IDENTITY)
    assert journal.meta()["schema_version"] == "3" and len(journal.signals()) == 1
    journal.start_session("m/1")
    journal.model_used("m/1", "ab" * 32, "cd" * 32, "models/m/1")
    journal.record([(60_000, 1.5, 2.0, 1.0, 1.8, 5.0)],
                   [(60_000, 0.7, 1, "m/1", "LIVE", "hold", 0.0, 100.0, "0123", 0.6, 0.5,
                     b"\0" * 8)])
    rows = journal.audit_rows(2)
    assert rows[["x_hash", "enter", "exit", "close"]].values.tolist() == [["0123", 0.6, 0.5,
                                                                            1.8]]
    assert journal.models_used() == {"m/1": {"model_sha256": "ab" * 32,
                                             "features_hash": "cd" * 32,
                                             "path": "models/m/1"}}
    journal.close()

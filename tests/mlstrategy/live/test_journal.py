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

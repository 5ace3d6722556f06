"""Risk limits: they only shrink or veto, the kill switch holds for the UTC day, and the
guard's state lives in the journal, so a restart continues it."""
from __future__ import annotations

import time

import pytest

from execution.orders import OrderIntent
from mlstrategy.live.journal import Journal
from mlstrategy.live.risk import RiskGuard, RiskLimits

DAY = 86_400_000
T0 = 1_700_006_400_000 // DAY * DAY  # a UTC midnight
IDENTITY = {"mode": "live", "exchange": "binance", "symbol": "BTC/USDT", "timeframe": "1m"}


@pytest.fixture
def journal(tmp_path):
    journal = Journal.open(tmp_path / "j.sqlite", IDENTITY)
    journal.start_session("m/v")
    yield journal
    journal.close()


def _review(guard: RiskGuard, *, entering=True, size=1.0, price=100.0, position=0.0,
            live=True):
    return guard.review(entering=entering, size=size, price=price, position=position,
                        feed_live=live)


def test_nothing_is_sent_on_a_feed_that_is_not_live(journal):
    assert _review(RiskGuard(RiskLimits(), journal), live=False).size == 0.0


def test_the_position_is_capped_at_its_notional(journal):
    guard = RiskGuard(RiskLimits(max_position=150.0), journal)
    assert _review(guard, size=1.0, position=1.0).size == pytest.approx(0.5)
    assert _review(guard, size=1.0, position=2.0).size == 0.0
    assert _review(guard, entering=False, size=2.0, position=2.0).size == 2.0  # exits go


def test_the_daily_loss_kill_switch_blocks_entries_until_the_next_day(journal):
    guard = RiskGuard(RiskLimits(max_daily_loss=100.0), journal)
    guard.on_bar(T0 + 60_000, 10_000.0)
    guard.on_bar(T0 + 120_000, 9_950.0)
    assert not guard.killed and _review(guard).size == 1.0
    guard.on_bar(T0 + 180_000, 9_900.0)
    assert guard.killed
    assert _review(guard).reason.startswith("kill switch")
    assert _review(guard, entering=False).size == 1.0
    guard.on_bar(T0 + DAY + 60_000, 9_900.0)  # a new UTC day starts from today's equity
    assert not guard.killed and _review(guard).size == 1.0


def test_a_restart_the_same_day_keeps_the_trip_and_the_baseline(journal):
    limits = RiskLimits(max_daily_loss=100.0)
    first = RiskGuard(limits, journal)
    first.on_bar(T0 + 60_000, 10_000.0)
    first.on_bar(T0 + 120_000, 9_890.0)
    assert first.killed
    again = RiskGuard(limits, journal)  # a restarted bot on the same journal
    again.on_bar(T0 + 180_000, 9_950.0)  # equity recovered a little: still the same day
    assert again.killed and _review(again).reason.startswith("kill switch")
    (trip,) = [e[3] for e in journal.events("kill_switch")]
    assert trip == {"day": T0 // DAY, "loss": pytest.approx(110.0), "limit": 100.0}
    other = RiskGuard(RiskLimits(max_daily_loss=100.0), journal)
    other.on_bar(T0 + 60_000 + DAY, 9_900.0)  # the next day starts afresh
    assert not other.killed


def test_a_restart_keeps_the_days_loss_baseline(journal):
    limits = RiskLimits(max_daily_loss=100.0)
    RiskGuard(limits, journal).on_bar(T0 + 60_000, 10_000.0)
    again = RiskGuard(limits, journal)
    again.on_bar(T0 + 120_000, 9_899.0)  # 101 below the day's first equity, not a new day
    assert again.killed


def test_orders_per_minute_count_attempts_sent_by_the_wall_clock(journal):
    now = [1_000_000.0]
    guard = RiskGuard(RiskLimits(max_orders_per_minute=2), journal, clock=lambda: now[0])
    for k in range(2):
        assert _review(guard).size == 1.0
        journal.order_attempt(OrderIntent(f"k{k}", "buy", 1.0), f"c{k}-0", 0)
    now[0] = time.time() + 30.0  # half a minute after both were written
    assert _review(guard).reason == "2 orders sent in the last minute"
    restarted = RiskGuard(RiskLimits(max_orders_per_minute=2), journal, clock=lambda: now[0])
    assert _review(restarted).size == 0.0  # the count is the journal's
    now[0] += 31.0
    assert _review(guard).size == 1.0  # both left the window


def test_a_paper_brokers_orders_reach_no_exchange_and_are_not_counted(journal):
    now = [time.time()]
    guard = RiskGuard(RiskLimits(max_orders_per_minute=1), journal, clock=lambda: now[0])
    for k in range(3):  # a bracket's three legs at once on the simulated broker
        journal.order_attempt(OrderIntent(f"p{k}", "buy", 1.0), f"paper-1-{k}", 0)
    assert _review(guard).size == 1.0
    journal.order_attempt(OrderIntent("k", "buy", 1.0), "ml1234-k-0", 0)
    assert _review(guard).reason == "1 orders sent in the last minute"

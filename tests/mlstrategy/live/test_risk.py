"""Risk limits: they only shrink or veto, and the kill switch holds for the UTC day."""
from __future__ import annotations

import pytest

from mlstrategy.live.risk import RiskGuard, RiskLimits

DAY = 86_400_000
T0 = 1_700_006_400_000 // DAY * DAY  # a UTC midnight


def _review(guard: RiskGuard, *, entering=True, size=1.0, price=100.0, position=0.0,
            now=T0, live=True):
    return guard.review(entering=entering, size=size, price=price, position=position,
                        now_ms=now, feed_live=live)


def test_nothing_is_sent_on_a_feed_that_is_not_live():
    assert _review(RiskGuard(RiskLimits()), live=False).size == 0.0


def test_the_position_is_capped_at_its_notional():
    guard = RiskGuard(RiskLimits(max_position=150.0))
    assert _review(guard, size=1.0, position=1.0).size == pytest.approx(0.5)
    assert _review(guard, size=1.0, position=2.0).size == 0.0
    assert _review(guard, entering=False, size=2.0, position=2.0).size == 2.0  # exits go


def test_the_daily_loss_kill_switch_blocks_entries_until_the_next_day():
    guard = RiskGuard(RiskLimits(max_daily_loss=100.0))
    guard.on_bar(T0 + 60_000, 10_000.0)
    guard.on_bar(T0 + 120_000, 9_950.0)
    assert not guard.killed and _review(guard, now=T0 + 120_000).size == 1.0
    guard.on_bar(T0 + 180_000, 9_900.0)
    assert guard.killed
    assert _review(guard, now=T0 + 180_000).reason.startswith("kill switch")
    assert _review(guard, entering=False, now=T0 + 180_000).size == 1.0
    guard.on_bar(T0 + DAY + 60_000, 9_900.0)  # a new UTC day starts from today's equity
    assert not guard.killed and _review(guard, now=T0 + DAY + 60_000).size == 1.0


def test_orders_per_minute():
    guard = RiskGuard(RiskLimits(max_orders_per_minute=2))
    for k in range(2):
        assert _review(guard, now=T0 + k * 1000).size == 1.0
        guard.sent(T0 + k * 1000)
    assert _review(guard, now=T0 + 30_000).size == 0.0
    assert _review(guard, now=T0 + 61_000).size == 1.0  # the first left the window

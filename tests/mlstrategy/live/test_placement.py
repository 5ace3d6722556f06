"""Orders are never placed twice: every fault on the submit, through real ccxt, real journal.

The simulator books the order and then loses the answer (dropped connection, a reply slower
than the client's timeout, a 503 "execution status unknown", a garbled 200), or fails before
booking (500). ``place`` must look the order up by client id before anything else and send a
new attempt (under a new client id) only once the exchange provably has none.
"""
from __future__ import annotations

import pytest

from datafeeds.exchange.client import make_exchange
from datafeeds.exchange.orders import (
    ABSENT,
    CLOSED,
    REJECTED,
    UNKNOWN,
    OrderGateway,
    OrderIntent,
    client_order_id,
    intent_key,
    place,
)
from datafeeds.exchange.simulator import ORDER, Fault
from mlstrategy.live.journal import Journal
from mlstrategy.live.reconcile import reconcile

IDENTITY = {"mode": "live", "exchange": "binance", "symbol": "BTC/USDT", "timeframe": "1m"}
KEY = intent_key("mltest", 1_641_000_000_000, "enter")
BUY = OrderIntent(KEY, "buy", 0.01)


@pytest.fixture
def desk(market, tmp_path):
    """(simulator, gateway, journal) with a stepped clock and a 0.3 s client timeout."""
    market.state.clock.speed = None  # time stands still unless a client catches up
    ex = make_exchange("binance", api_url=market.url, rate_limit=False, timeout_ms=300)
    ex.apiKey = ex.secret = "test"
    gateway = OrderGateway(ex, "BTC/USDT", settle_s=0.2, retries=2, backoff=0.01)
    gateway.load()
    journal = Journal.open(tmp_path / "journal.sqlite", IDENTITY)
    journal.start_session("test")
    yield market, gateway, journal
    journal.close()


@pytest.mark.parametrize("fault", [
    Fault(0, path=ORDER, book=True),  # booked, connection dropped
    Fault(200, "", delay=0.6, path=ORDER, book=True),  # booked, answer after the timeout
    Fault(503, '{"code": -1006, "msg": "Execution status unknown."}', path=ORDER, book=True),
    Fault(200, '{"garbled": ', path=ORDER, book=True),  # booked, answer unreadable
], ids=["dropped", "timeout", "503-unknown", "malformed"])
def test_lost_answer_is_looked_up_and_adopted_never_resent(desk, fault):
    sim, gateway, journal = desk
    sim.fail(fault)
    placement = place(gateway, journal, BUY)
    assert placement.state == CLOSED and placement.order.filled == 0.01
    assert sim.order_requests == [client_order_id(KEY, 0)]  # reached the exchange once
    assert len(sim.account.orders) == 1
    assert journal.order_attempts(KEY) == [(client_order_id(KEY, 0), CLOSED)]


def test_failed_before_booking_is_resent_under_a_new_client_id(desk):
    sim, gateway, journal = desk
    sim.fail(Fault(500, path=ORDER))  # refused before acting
    placement = place(gateway, journal, BUY)
    assert placement.state == CLOSED
    assert sim.order_requests == [client_order_id(KEY, 0), client_order_id(KEY, 1)]
    assert len(sim.account.orders) == 1
    assert journal.order_attempts(KEY) == [(client_order_id(KEY, 0), ABSENT),
                                           (client_order_id(KEY, 1), CLOSED)]


def test_a_rejection_is_final(desk):
    sim, gateway, journal = desk
    placement = place(gateway, journal, OrderIntent(KEY, "buy", 5.0))  # > 10,000 USDT
    assert placement.state == REJECTED and "insufficient funds" in placement.reason
    assert len(sim.order_requests) == 1 and sim.account.orders == {}


def test_a_decision_taken_again_after_a_restart_adopts_the_first_attempt(desk):
    sim, gateway, journal = desk
    first = place(gateway, journal, BUY)
    again = place(gateway, journal, BUY)  # the same bar decided again (restart)
    assert again.client_id == first.client_id and again.state == CLOSED
    assert len(sim.order_requests) == 1


def test_an_unanswerable_lookup_leaves_the_order_unknown_until_reconciled(desk):
    sim, gateway, journal = desk
    sim.fail(Fault(0, path=ORDER, book=True))
    sim.die_after(1)  # the order request is answered (dropped), then nothing is
    placement = place(gateway, journal, BUY)
    assert placement.state == UNKNOWN
    again = place(gateway, journal, BUY)  # still unknown: nothing new is sent
    assert again.state == UNKNOWN and len(sim.order_requests) == 1
    sim.revive()
    result = reconcile(gateway, journal)
    assert result.resolved == 1 and result.fills_recovered == 1
    assert journal.order_attempts(KEY) == [(client_order_id(KEY, 0), CLOSED)]
    assert journal.position() == pytest.approx(0.01)

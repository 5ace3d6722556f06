"""Orders are never placed twice: every fault on the submit, through real ccxt, real journal.

The simulator books the order and then loses the answer (dropped connection, a reply slower
than the client's timeout, a 503 "execution status unknown", a garbled 200), executes it only
after the client gave up (late, within or past binance's receive window), or fails before
booking (500). ``place`` must look the order up by client id, never send a second attempt
while the exchange may still execute the first (``follow_up`` settles it after the deadline),
and an execution the exchange reports later still is adopted by the history sweep.
"""
from __future__ import annotations

import time

import pytest

from datafeeds.exchange.client import make_exchange
from execution.deadline import execution_deadline
from execution.orders import (
    ABSENT,
    CLOSED,
    REJECTED,
    UNKNOWN,
    OrderGateway,
    OrderIntent,
    client_order_id,
    follow_up,
    intent_key,
    place,
)
from execution.simulator import ORDER, Fault
from execution.sweep import sweep
from mlstrategy.live.journal import Journal
from mlstrategy.live.reconcile import reconcile

IDENTITY = {"mode": "live", "exchange": "binance", "symbol": "BTC/USDT", "timeframe": "1m"}
BAR_MS = 1_641_000_000_000
KEY = intent_key("mltest", BAR_MS, "enter")
BUY = OrderIntent(KEY, "buy", 0.01)
FIRST = client_order_id(KEY, 0)


@pytest.fixture
def desk(market, tmp_path):
    """(simulator, gateway, journal): a stepped clock, a 0.3 s client timeout and a 0.4 s
    receive window, so an attempt is settled 0.8 s after it was sent (0.1 s clock margin)."""
    ex = make_exchange("binance", api_url=market.url, rate_limit=False, timeout_ms=300)
    ex.apiKey = ex.secret = "test"
    ex.options["recvWindow"] = 400
    gateway = OrderGateway(ex, "BTC/USDT", retries=2, backoff=0.01,
                           deadline=execution_deadline(ex, margin_s=0.1))
    gateway.load()
    journal = Journal.open(tmp_path / "journal.sqlite", IDENTITY)
    journal.start_session("test")
    yield market, gateway, journal
    journal.close()


def _settled(gateway, journal, client_id):
    """``follow_up`` once the deadline of ``client_id`` has passed."""
    time.sleep(max(journal.sent_at(client_id) + gateway.deadline.seconds - time.time(), 0)
               + 0.05)
    return follow_up(gateway, journal, client_id)


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
    assert sim.order_requests == [FIRST]  # reached the exchange once
    assert len(sim.account.orders) == 1
    assert journal.order_attempts(KEY) == [(FIRST, CLOSED)]


def test_an_order_executed_after_the_timeout_is_found_before_the_deadline(desk):
    sim, gateway, journal = desk
    gateway.exchange.options["recvWindow"] = 2000  # settled 2.4 s after sending
    gateway.deadline = execution_deadline(gateway.exchange, margin_s=0.1)
    sim.fail(Fault(200, "", delay=0.8, path=ORDER, method="POST", late=True))  # in its window
    placement = place(gateway, journal, BUY)
    assert placement.state == UNKNOWN  # not found yet: nothing may be sent in its place
    assert follow_up(gateway, journal, FIRST) == UNKNOWN
    time.sleep(0.8)  # it has executed by now, and the deadline is still ahead
    state = follow_up(gateway, journal, FIRST)
    assert state.status == CLOSED and state.filled == 0.01
    assert sim.order_requests == [FIRST] and len(sim.account.orders) == 1
    assert journal.order_attempts(KEY) == [(FIRST, CLOSED)]


def test_a_request_past_its_receive_window_is_refused_and_settles_absent(desk):
    sim, gateway, journal = desk
    sim.fail(Fault(200, "", delay=0.5, path=ORDER, method="POST", late=True))  # window: 0.4 s
    assert place(gateway, journal, BUY).state == UNKNOWN
    assert follow_up(gateway, journal, FIRST) == UNKNOWN  # before the deadline: still open
    assert _settled(gateway, journal, FIRST) == ABSENT
    assert sim.account.orders == {}  # the exchange kept its promise


def test_failed_before_booking_is_not_resent_in_the_same_decision(desk):
    sim, gateway, journal = desk
    sim.fail(Fault(500, path=ORDER))  # refused before acting: but the bot cannot know that
    assert place(gateway, journal, BUY).state == UNKNOWN
    assert sim.order_requests == [FIRST]
    assert _settled(gateway, journal, FIRST) == ABSENT
    again = place(gateway, journal, BUY)  # the same bar decided again (a restart)
    assert again.state == CLOSED and again.client_id == client_order_id(KEY, 1)
    assert len(sim.account.orders) == 1
    assert journal.order_attempts(KEY) == [(FIRST, ABSENT), (client_order_id(KEY, 1), CLOSED)]


def test_a_late_execution_past_the_deadline_is_adopted_by_the_sweep(desk):
    sim, gateway, journal = desk
    sim.honour_recv_window = False  # an exchange that breaks its promise
    sim.fail(Fault(200, "", delay=1.2, path=ORDER, method="POST", late=True))
    assert place(gateway, journal, BUY).state == UNKNOWN
    assert _settled(gateway, journal, FIRST) == ABSENT
    with sim.state.lock:  # someone else trades the same market meanwhile
        sim.account.place({"side": "BUY", "type": "MARKET", "quantity": "0.02",
                           "newClientOrderId": "web_123"}, "BTCUSDT", 47_000.0,
                          sim.state.now_ms())
    time.sleep(0.6)  # the first order executes now, after the bot gave up on it
    foreign: set[str] = set()
    found = sweep(gateway, journal, "mltest-", journal.watch_since(), foreign=foreign)
    assert found.adopted == (FIRST,) and len(found.fills) == 1
    assert journal.order_attempts(KEY) == [(FIRST, CLOSED)]
    assert journal.position() == pytest.approx(0.01)  # the other 0.02 are not the bot's
    assert len(foreign) == 1 and journal.watch_since() is None
    assert sweep(gateway, journal, "mltest-", BAR_MS, foreign=foreign).fills == ()


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
    result = reconcile(gateway, journal, "mltest")
    assert result.resolved == 1 and result.fills_recovered == 1
    assert journal.order_attempts(KEY) == [(FIRST, CLOSED)]
    assert journal.position() == pytest.approx(0.01)

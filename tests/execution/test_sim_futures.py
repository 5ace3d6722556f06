"""The simulator's USDⓈ-M perpetuals through real ccxt ``binanceusdm``: margin settings,
reduce-only, conditional (algo) orders triggering on the recorded price path, funding."""
from __future__ import annotations

import ccxt
import pytest

from datafeeds import load_sample
from datafeeds.exchange.client import make_exchange
from execution.sim_book import SimClock
from execution.sim_futures import FuturesAccount
from execution.simulator import ExchangeSimulator

BARS = load_sample("btcperp-1m").iloc[:3000]
START_MS = int(BARS.index[2000].value // 1_000_000)
PERP = "BTC/USDT:USDT"


@pytest.fixture
def perp():
    """A frozen clock at bar 2000's open (the test moves it), a 10,000 USDT wallet with
    funding every 10 minutes."""
    clock = SimClock(START_MS, frozen=True)
    account = FuturesAccount(10_000.0, funding_every_ms=600_000)
    with ExchangeSimulator(BARS, interval="1m", clock=clock, futures=account) as sim:
        ex = make_exchange("binanceusdm", api_url=sim.url, rate_limit=False, timeout_ms=500)
        ex.apiKey = ex.secret = "test"
        yield sim, ex, clock, account


def _move(clock: SimClock, minutes: int) -> None:
    clock._now += minutes * 60_000  # a frozen clock: the test is the time


def test_margin_mode_and_leverage_are_set_and_kept_while_a_position_is_open(perp):
    sim, ex, clock, account = perp
    ex.set_margin_mode("isolated", PERP)
    with pytest.raises(ccxt.MarginModeAlreadySet):  # -4046 "no need to change"
        ex.set_margin_mode("isolated", PERP)
    ex.set_leverage(3, PERP)
    ex.create_order(PERP, "market", "buy", 0.01)
    with pytest.raises(ccxt.ExchangeError, match="-4048"):
        ex.set_margin_mode("cross", PERP)
    (position,) = ex.fetch_positions([PERP])
    assert position["side"] == "long" and position["contracts"] == pytest.approx(0.01)
    assert position["marginMode"] == "isolated"
    entry = position["entryPrice"]
    assert position["liquidationPrice"] == pytest.approx(entry * (1 - 1 / 3) / (1 - 0.004))
    assert account.position("BTCUSDT").leverage == 3


def test_reduce_only_never_grows_a_position_and_stops_are_algo_orders(perp):
    sim, ex, clock, account = perp
    with pytest.raises(ccxt.ExchangeError, match="-2022"):  # nothing to reduce
        ex.create_order(PERP, "market", "sell", 0.01, None, {"reduceOnly": True})
    ex.create_order(PERP, "market", "sell", 0.02)  # a short
    with pytest.raises(ccxt.ExchangeError, match="-2022"):  # more than the position
        ex.create_order(PERP, "market", "buy", 0.03, None, {"reduceOnly": True})
    price = float(BARS["open"].iloc[2000])  # ccxt drops a numpy float stopPrice
    with pytest.raises(ccxt.ExchangeError, match="-2021"):  # a buy stop below the price
        ex.create_order(PERP, "STOP_MARKET", "buy", 0.02, None,
                        {"stopPrice": price * 0.99, "reduceOnly": True})
    with pytest.raises(ccxt.ExchangeError, match="-4120"):  # conditional: not on /order
        ex.fapiPrivatePostOrder({"symbol": "BTCUSDT", "side": "BUY", "type": "STOP_MARKET",
                                 "quantity": "0.02", "stopPrice": str(price * 1.01)})
    stop = ex.create_order(PERP, "STOP_MARKET", "buy", 0.02, None,
                           {"stopPrice": price * 1.0005, "reduceOnly": True,
                            "clientOrderId": "my-stop"})
    assert stop["status"] == "open" and stop["clientOrderId"] == "my-stop"
    assert [o["clientOrderId"] for o in ex.fetch_open_orders(PERP, params={"trigger": True})
            ] == ["my-stop"]
    high = BARS["high"].iloc[2000:]
    minutes = int((high >= price * 1.0005).to_numpy().argmax()) + 1  # the bar that reaches it
    _move(clock, minutes)
    done = ex.fetch_order(None, PERP, {"clientAlgoId": "my-stop", "trigger": True})
    assert done["status"] == "closed" and done["info"]["actualOrderId"]
    sent = ex.fetch_order(done["info"]["actualOrderId"], PERP)
    assert sent["status"] == "closed" and sent["filled"] == pytest.approx(0.02)
    assert sent["reduceOnly"] and ex.fetch_positions([PERP]) == []


def test_funding_is_paid_by_longs_at_each_funding_time_and_listed_as_income(perp):
    sim, ex, clock, account = perp
    ex.create_order(PERP, "market", "buy", 0.1)
    wallet = account.wallet
    _move(clock, 25)  # two funding times pass (every 10 minutes)
    ex.fetch_balance()  # any private request brings the account up to now
    paid = ex.fetch_funding_history(PERP, START_MS)
    assert len(paid) == 2 and all(p["amount"] < 0 for p in paid)
    assert account.wallet == pytest.approx(wallet + sum(p["amount"] for p in paid))
    assert all(p["timestamp"] % 600_000 == 0 for p in paid)

"""The exchange simulator through real ccxt: clock, forming candle, orders, faults."""
from __future__ import annotations

import ccxt
import pytest

from datafeeds import load_sample
from datafeeds.exchange.client import make_exchange
from execution.sim_book import SimClock
from execution.simulator import ORDER, ExchangeSimulator, Fault

BARS = load_sample("btcperp-1m").iloc[:3000]
START = 2000
START_MS = int(BARS.index[START].value // 1_000_000)


def _sim(clock: SimClock, **kwargs) -> ExchangeSimulator:
    return ExchangeSimulator(BARS, interval="1m", clock=clock, **kwargs)


def _ex(sim: ExchangeSimulator, **kwargs) -> ccxt.Exchange:
    ex = make_exchange("binance", api_url=sim.url, rate_limit=False, timeout_ms=500, **kwargs)
    ex.apiKey = ex.secret = "test"
    return ex


def test_forming_candle_grows_towards_the_recorded_bar():
    clock = SimClock(START_MS + 30_000, frozen=True)  # half-way through bar START
    with _sim(clock) as sim:
        ex = _ex(sim)
        rows = ex.fetch_ohlcv("BTC/USDT", "1m", START_MS - 60_000, 5)
        assert [r[0] for r in rows] == [START_MS - 60_000, START_MS]  # closed + forming
        closed, forming = rows
        o, h, lo, c, v = BARS.iloc[START].to_numpy()
        assert closed[1:] == pytest.approx(list(BARS.iloc[START - 1].to_numpy()), abs=0)
        assert forming[1] == o and forming[5] == pytest.approx(v / 2)
        assert forming[4] == pytest.approx(o + (c - o) / 2)
        assert lo <= forming[3] <= min(o, forming[4]) <= max(o, forming[4]) <= forming[2] <= h
        assert forming[2] - forming[3] == pytest.approx((h - lo) / 2)  # half the range so far
        assert ex.fetch_time() == START_MS + 30_000


def test_stepped_clock_closes_the_next_bar_once_the_client_has_every_closed_bar():
    with _sim(SimClock(START_MS, speed=None)) as sim:
        ex = _ex(sim)
        ex.fetch_ohlcv("BTC/USDT", "1m", START_MS - 120_000, 5)  # reads up to the newest
        assert ex.fetch_time() == START_MS + 60_000  # ... so bar START closes
        assert ex.fetch_time() == START_MS + 60_000  # and time stands until it is read


def test_market_and_limit_orders_fill_and_move_the_balances():
    with _sim(SimClock(START_MS, speed=None), balances={"USDT": 10_000.0, "BTC": 0.5}) as sim:
        ex = _ex(sim)
        order = ex.create_order("BTC/USDT", "market", "buy", 0.01, None, {"clientOrderId": "a"})
        assert order["status"] == "closed" and order["filled"] == 0.01
        assert order["average"] == BARS["open"].iloc[START]  # at the forming bar's open
        balance = ex.fetch_balance()
        assert balance["BTC"]["total"] == pytest.approx(0.51)
        assert balance["USDT"]["total"] == pytest.approx(
            10_000 - 0.01 * BARS["open"].iloc[START] * 1.001)
        limit = ex.create_order("BTC/USDT", "limit", "buy", 0.01, 1000.0, {"clientOrderId": "b"})
        assert limit["status"] == "open"
        assert [o["clientOrderId"] for o in ex.fetch_open_orders("BTC/USDT")] == ["b"]
        assert ex.cancel_order(None, "BTC/USDT", {"origClientOrderId": "b"})["status"] == \
            "canceled"
        assert ex.fetch_balance()["USDT"]["used"] == pytest.approx(0.0)


@pytest.mark.parametrize(("amount", "error"), [
    (0.0001, ccxt.BadRequest),  # about 4.6 USDT: below the 5 USDT minimum notional
    (10.0, ccxt.InsufficientFunds),
])
def test_orders_the_exchange_refuses(amount, error):
    with _sim(SimClock(START_MS, speed=None), balances={"USDT": 1_000.0}) as sim:
        with pytest.raises(error):
            _ex(sim).create_order("BTC/USDT", "market", "buy", amount)
        assert sim.account.orders == {}


def test_a_booked_order_whose_answer_is_lost_is_at_the_exchange():
    with _sim(SimClock(START_MS, speed=None), balances={"USDT": 10_000.0}) as sim:
        ex = _ex(sim)
        sim.fail(Fault(0, path=ORDER, book=True))
        with pytest.raises(ccxt.NetworkError):
            ex.create_order("BTC/USDT", "market", "buy", 0.01, None, {"clientOrderId": "lost"})
        found = ex.fetch_order(None, "BTC/USDT", {"origClientOrderId": "lost"})
        assert found["status"] == "closed" and sim.order_requests == ["lost"]
        with pytest.raises(ccxt.OrderNotFound):
            ex.fetch_order(None, "BTC/USDT", {"origClientOrderId": "never-sent"})


def test_private_endpoints_check_the_api_key():
    with _sim(SimClock(START_MS, speed=None), balances={"USDT": 1.0}, api_key="right") as sim:
        ex = _ex(sim)
        ex.apiKey = "wrong"
        with pytest.raises(ccxt.AuthenticationError):
            ex.fetch_balance()
        ex.apiKey = "right"
        assert ex.fetch_balance()["USDT"]["free"] == 1.0


def test_chaos_is_reproducible_from_its_seed():
    draws = []
    for _ in range(2):
        with _sim(SimClock(START_MS, speed=None)) as sim:
            chaos = sim.chaos(0.5, seed=7, slow=0.0, kinds=("429", "500", "malformed"))
            ex = _ex(sim)
            for _ in range(20):
                try:
                    ex.fetch_time()
                except ccxt.BaseError:
                    pass
            draws.append(dict(chaos.counts))
    assert draws[0] == draws[1] and sum(draws[0].values()) > 0


def _restamped(bars, like):
    """Real bars of another window, stamped with ``like``'s times: a second market on the
    same clock (the sample holds one real 1m series)."""
    out = bars.iloc[:len(like)].copy()
    out.index = like.index
    return out


def test_several_markets_share_one_account_and_number_their_ids_apart():
    eth = _restamped(load_sample("btcperp-1m").iloc[6000:9000] / [20, 20, 20, 20, 1], BARS)
    with _sim(SimClock(START_MS, speed=None), balances={"USDT": 10_000.0}) as sim:
        assert sim.add_market(eth, base="ETH", quote="USDT") == "ETHUSDT"
        ex = _ex(sim)
        ex.load_markets()
        assert {"BTC/USDT", "ETH/USDT"} <= set(ex.markets)
        btc = ex.create_order("BTC/USDT", "market", "buy", 0.01, None, {"clientOrderId": "b"})
        eth_order = ex.create_order("ETH/USDT", "market", "buy", 0.5, None,
                                    {"clientOrderId": "e"})
        assert btc["id"] == eth_order["id"] == "1"  # binance numbers orders per symbol
        assert eth_order["average"] == eth["open"].iloc[START]
        found = ex.fetch_order(None, "ETH/USDT", {"origClientOrderId": "e"})
        assert found["symbol"] == "ETH/USDT" and found["filled"] == 0.5
        with pytest.raises(ccxt.OrderNotFound):  # a client id is looked up in its market
            ex.fetch_order(None, "ETH/USDT", {"origClientOrderId": "b"})
        assert [t["symbol"] for t in ex.fetch_my_trades("ETH/USDT")] == ["ETH/USDT"]
        balance = ex.fetch_balance()
        assert balance["USDT"]["total"] == pytest.approx(
            10_000 - 1.001 * (0.01 * BARS["open"].iloc[START] + 0.5 * eth["open"].iloc[START]))
        # a stepped clock waits for every market: their bars close together
        ex.fetch_ohlcv("BTC/USDT", "1m", START_MS - 120_000, 5)
        assert ex.fetch_time() == START_MS  # ETH not read yet: time stands
        ex.fetch_ohlcv("ETH/USDT", "1m", START_MS - 120_000, 5)
        assert ex.fetch_time() == START_MS + 60_000  # both read up to the last: the next closes
        ex.fetch_ohlcv("ETH/USDT", "1m", START_MS - 120_000, 5)
        assert ex.fetch_time() == START_MS + 60_000


def _first_bar(after: int, test) -> int:
    return next(i for i in range(after, len(BARS)) if test(BARS.iloc[i]))


def test_a_stop_loss_rests_until_the_price_path_reaches_it_then_sells_at_the_market():
    clock = SimClock(START_MS, frozen=True)
    with _sim(clock, balances={"USDT": 1_000.0, "BTC": 0.5}) as sim:
        ex = _ex(sim)
        price = float(BARS["open"].iloc[START])
        stop = round(price * 0.995, 2)
        with pytest.raises(ccxt.InvalidOrder):  # already through it: binance refuses it
            ex.create_order("BTC/USDT", "STOP_LOSS", "sell", 0.1, None,
                            {"clientOrderId": "x", "stopPrice": price * 1.001})
        order = ex.create_order("BTC/USDT", "STOP_LOSS", "sell", 0.1, None,
                                {"clientOrderId": "sl", "stopPrice": stop})
        assert (order["status"], order["triggerPrice"]) == ("open", stop)
        assert ex.fetch_balance()["BTC"]["used"] == pytest.approx(0.1)
        hit = _first_bar(START, lambda bar: bar["low"] <= stop)
        clock.step_to(int(BARS.index[hit].value // 1_000_000) - 1)  # just before that bar
        assert ex.fetch_order(None, "BTC/USDT", {"origClientOrderId": "sl"})["status"] == "open"
        clock.step_to(int(BARS.index[hit + 1].value // 1_000_000) + 1)
        done = ex.fetch_order(None, "BTC/USDT", {"origClientOrderId": "sl"})
        trade, = ex.fetch_my_trades("BTC/USDT")
        expected = min(stop, BARS["open"].iloc[hit]) if hit > START else stop
        assert done["status"] == "closed" and trade["price"] == pytest.approx(expected)
        assert trade["timestamp"] == int(BARS.index[hit].value // 1_000_000)
        assert ex.fetch_balance()["BTC"]["total"] == pytest.approx(0.4)


def test_an_oco_fills_one_leg_and_expires_the_other_or_cancels_as_one():
    clock = SimClock(START_MS, frozen=True)
    with _sim(clock, balances={"USDT": 1_000.0, "BTC": 0.5}) as sim:
        ex = _ex(sim)
        ex.load_markets()
        price = float(BARS["open"].iloc[START])
        take, stop = round(price * 1.003, 2), round(price * 0.99, 2)

        def oco(tag: str) -> dict:
            return ex.privatePostOrderListOco({
                "symbol": "BTCUSDT", "side": "SELL", "quantity": "0.20000",
                "aboveType": "LIMIT_MAKER", "abovePrice": f"{take:.2f}",
                "aboveClientOrderId": f"tp-{tag}", "belowType": "STOP_LOSS",
                "belowStopPrice": f"{stop:.2f}", "belowClientOrderId": f"sl-{tag}",
                "listClientOrderId": f"list-{tag}"})

        placed = oco("a")
        assert [o["clientOrderId"] for o in placed["orders"]] == ["tp-a", "sl-a"]
        assert ex.fetch_balance()["BTC"]["used"] == pytest.approx(0.2)  # locked once
        ex.cancel_order(None, "BTC/USDT", {"origClientOrderId": "tp-a"})  # one leg: both go
        assert ex.fetch_order(None, "BTC/USDT", {"origClientOrderId": "sl-a"})["status"] == \
            "canceled"
        assert ex.fetch_balance()["BTC"]["free"] == pytest.approx(0.5)
        oco("b")
        hit = _first_bar(START, lambda bar: bar["high"] >= take or bar["low"] <= stop)
        clock.step_to(int(BARS.index[hit + 1].value // 1_000_000))
        legs = {leg: ex.fetch_order(None, "BTC/USDT", {"origClientOrderId": f"{leg}-b"})
                for leg in ("tp", "sl")}
        first = "sl" if BARS["low"].iloc[hit] <= stop else "tp"  # the stop first in a bar
        assert legs[first]["status"] == "closed"
        assert legs["tp" if first == "sl" else "sl"]["status"] == "expired"
        balance = ex.fetch_balance()["BTC"]
        assert (balance["total"], balance["used"]) == (pytest.approx(0.3), pytest.approx(0.0))

"""``CcxtBroker`` in a Cerebro: limit orders rest, fill and cancel at the exchange."""
from __future__ import annotations

import pytest

from datafeeds import load_sample
from datafeeds.bt.compat import bt
from datafeeds.bt.feed import NumpyData
from datafeeds.exchange.client import make_exchange
from execution.broker import CcxtBroker
from execution.orders import OrderGateway
from execution.sim_book import SimClock
from execution.simulator import ExchangeSimulator
from mlstrategy.live.journal import Journal

BARS = load_sample("btcperp-1m").iloc[:2100]
START = 2000


class _LimitOrders(bt.Strategy):
    """Bar 1: a limit buy far below the market and a marketable one; bar 3: cancel the first."""

    def __init__(self) -> None:
        self.events: list[tuple[str, str, float]] = []
        self.resting = None

    def next(self) -> None:
        if len(self) == 1:
            price = self.data.close[0]
            self.resting = self.buy(size=0.01, price=price * 0.5, exectype=bt.Order.Limit,
                                    intent="rest")
            self.buy(size=0.01, price=price * 1.01, exectype=bt.Order.Limit, intent="take")
        elif len(self) == 3:
            self.cancel(self.resting)

    def notify_order(self, order: bt.Order) -> None:
        self.events.append((order.info["intent"], order.getstatusname(), order.executed.size))


def test_limit_orders_rest_fill_and_cancel(tmp_path):
    clock = SimClock(int(BARS.index[START].value // 1_000_000), frozen=True)
    with ExchangeSimulator(BARS, interval="1m", clock=clock,
                           balances={"USDT": 10_000.0}) as sim:
        ex = make_exchange("binance", api_url=sim.url, rate_limit=False, timeout_ms=500)
        ex.apiKey = ex.secret = "test"
        gateway = OrderGateway(ex, "BTC/USDT", retries=1, backoff=0.01)
        gateway.load()
        journal = Journal.open(tmp_path / "j.sqlite", {"mode": "live", "exchange": "binance",
                                                       "symbol": "BTC/USDT", "timeframe": "1m"})
        journal.start_session("test")
        cerebro = bt.Cerebro(stdstats=False)
        feed = NumpyData.from_frame(BARS.iloc[START - 5:START], timeframe="1m")
        cerebro.adddata(feed)
        cerebro.setbroker(CcxtBroker(gateway, journal, "mltest", feed, balance_ttl=0.0))
        cerebro.addstrategy(_LimitOrders)
        strategy = cerebro.run()[0]
        assert sim.account.open_orders() == []
        assert journal.position() == pytest.approx(0.01)
        journal.close()
    by_intent = {}
    for intent, status, size in strategy.events:
        by_intent.setdefault(intent, []).append((status, size))
    assert by_intent["take"][-1] == ("Completed", pytest.approx(0.01))
    assert [s for s, _ in by_intent["rest"]] == ["Submitted", "Accepted", "Canceled"]

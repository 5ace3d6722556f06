"""Live candles by the exchange's clock, through real ccxt against the simulator."""
from __future__ import annotations

import numpy as np

from datafeeds import load_sample
from datafeeds.exchange.candles import DELAYED, DISCONNECTED, LIVE, CandlePoller
from datafeeds.exchange.client import make_exchange
from execution.sim_book import SimClock
from execution.simulator import KLINES, ExchangeSimulator, Fault

BARS = load_sample("btcperp-1m").iloc[:3000]
START = 2000
MINUTE = 60_000
START_MS = int(BARS.index[START].value // 1_000_000)


def _poller(sim: ExchangeSimulator, **kwargs) -> CandlePoller:
    ex = make_exchange("binance", api_url=sim.url, rate_limit=False, timeout_ms=500)
    return CandlePoller(ex, "BTC/USDT", "1m", retries=0, backoff=0.01, **kwargs)


def _recorded(i: int) -> list[float]:
    return [float(x) for x in BARS.iloc[i].to_numpy()]


def test_closed_by_the_exchange_clock_never_the_local_one():
    # the exchange's clock is in January 2022, mid-way through bar START; the local clock is
    # years later, by which every bar would look closed
    clock = SimClock(START_MS + 30_000, frozen=True)
    with ExchangeSimulator(BARS, interval="1m", clock=clock) as sim:
        poller = _poller(sim)
        history = poller.history(500)
        assert history.index[-1] == BARS.index[START - 1] and len(history) == 500
        assert poller.poll() == []  # bar START is forming: not handed out
        clock.step_to(START_MS + MINUTE)  # it closes
        (bar,) = poller.poll()
        assert bar.time_ms == START_MS and bar.live and poller.status == LIVE
        assert [bar.open, bar.high, bar.low, bar.close, bar.volume] == _recorded(START)


def test_an_accelerated_clock_hands_out_every_closed_bar_once_and_exactly():
    clock = SimClock(START_MS, speed=1200.0)  # a minute every 50 ms
    with ExchangeSimulator(BARS, interval="1m", clock=clock) as sim:
        poller = _poller(sim)
        poller.history(100)
        seen = []
        while len(seen) < 20:
            seen += poller.poll()
        times = [b.time_ms for b in seen]
        assert times == [START_MS + k * MINUTE for k in range(len(seen))]
        for k, bar in enumerate(seen):  # the forming candle, which differs, never slipped in
            assert [bar.open, bar.high, bar.low, bar.close, bar.volume] == _recorded(START + k)


def test_backfill_after_a_disconnect_in_order_without_duplicates():
    clock = SimClock(START_MS, frozen=True)
    with ExchangeSimulator(BARS, interval="1m", clock=clock) as sim:
        poller = _poller(sim)
        poller.history(100)
        clock.step_to(START_MS + MINUTE)
        assert [b.time_ms for b in poller.poll()] == [START_MS]
        sim.die_after(0)
        clock.step_to(START_MS + 6 * MINUTE)  # five more bars close while we are cut off
        assert poller.poll() == [] and poller.status == DISCONNECTED
        sim.revive()
        bars = poller.poll()
        assert [b.time_ms for b in bars] == [START_MS + k * MINUTE for k in range(1, 6)]
        assert [b.live for b in bars] == [False] * 4 + [True]  # only the newest is tradable
        assert poller.status == LIVE and poller.poll() == []


def test_a_stalled_exchange_makes_the_feed_delayed():
    clock = SimClock(START_MS, frozen=True)
    with ExchangeSimulator(BARS.iloc[:START + 1], interval="1m", clock=clock) as sim:
        poller = _poller(sim, grace_ms=10_000)
        poller.history(100)
        clock.step_to(START_MS + MINUTE)
        poller.poll()
        assert poller.status == LIVE
        clock.step_to(START_MS + 2 * MINUTE + 5_000)  # the next bar is 5 s late: still fine
        assert poller.poll() == [] and poller.status == LIVE
        clock.step_to(START_MS + 2 * MINUTE + 11_000)  # 11 s late: stalled
        assert poller.poll() == [] and poller.status == DELAYED


def test_malformed_or_failing_answers_never_raise_from_a_poll():
    clock = SimClock(START_MS, frozen=True)
    with ExchangeSimulator(BARS, interval="1m", clock=clock) as sim:
        poller = _poller(sim)
        poller.history(100)
        clock.step_to(START_MS + MINUTE)
        sim.fail(Fault(200, '[[1, "x"]]'), Fault(503, "down"))
        assert poller.poll() == [] and poller.status == DISCONNECTED
        assert poller.poll() == [] and poller.failures == 2
        assert [b.time_ms for b in poller.poll()] == [START_MS]
        assert sim.count(KLINES) >= 3 and np.isfinite(poller.server_ms)

"""backtrader feeds over real bars: stock PandasData against our preloaded NumpyData.

Run: ``python -m pytest benchmarks/bench_feed.py --benchmark-only``. Each run pushes the whole
embedded BTC/USD hourly sample (20,111 bars) through Cerebro with an empty strategy, so the
time per run / 20,111 is the per-bar cost including backtrader's own loop.
"""
from __future__ import annotations

import pytest

from datafeeds import load_sample
from datafeeds.bt_compat import bt
from datafeeds.bt_feed import NumpyData

BARS = load_sample("btcusd-1h")


def _run(make_feed) -> None:
    cerebro = bt.Cerebro(stdstats=False)
    cerebro.adddata(make_feed())
    cerebro.addstrategy(bt.Strategy)
    cerebro.run()


@pytest.mark.parametrize("feed", ["PandasData", "NumpyData"])
def test_feed_empty_strategy(benchmark, feed):
    benchmark.group = f"backtrader feed, empty strategy, {len(BARS)} bars"
    if feed == "PandasData":
        naive = BARS.tz_convert(None)
        benchmark.pedantic(_run, args=(lambda: bt.feeds.PandasData(dataname=naive),),
                           rounds=5, iterations=1)
    else:
        benchmark.pedantic(_run, args=(lambda: NumpyData.from_frame(BARS, timeframe="1h"),),
                           rounds=5, iterations=1)

"""backtrader feeds over real bars: stock PandasData against our preloaded NumpyData.

Run: ``python -m pytest benchmarks/bench_feed.py --benchmark-only``. Each round pushes the
whole embedded BTC/USD hourly sample (20,111 bars) through the feed; ``extra_info`` holds the
per-bar cost in µs (median time / bars). Two groups:

- ``cerebro run``: Cerebro with an empty strategy, so backtrader's own loop is included;
- ``feed preload``: only the feed loading every bar into its lines (what Cerebro does before
  the loop with ``preload=True``), i.e. the feed's own cost.
"""
from __future__ import annotations

import pytest

from datafeeds import load_sample
from datafeeds.bt.compat import bt
from datafeeds.bt.feed import NumpyData

BARS = load_sample("btcusd-1h")
NAIVE = BARS.tz_convert(None)  # PandasData takes naive times as they are
FEEDS = {
    "PandasData": lambda: bt.feeds.PandasData(dataname=NAIVE),
    "NumpyData": lambda: NumpyData.from_frame(BARS, timeframe="1h"),
}


def _cerebro_run(make_feed) -> None:
    cerebro = bt.Cerebro(stdstats=False)
    cerebro.adddata(make_feed())
    cerebro.addstrategy(bt.Strategy)
    cerebro.run()


def _preload(make_feed) -> None:
    cerebro = bt.Cerebro(stdstats=False)
    cerebro._tradingcal = None  # set by Cerebro.run; the feed reads it at start
    feed = make_feed()
    feed.setenvironment(cerebro)
    feed._start()
    feed.preload()


def _measure(benchmark, group: str, fn, feed: str) -> None:
    benchmark.group = f"backtrader feed, {group}, {len(BARS)} bars"
    benchmark.pedantic(fn, args=(FEEDS[feed],), rounds=5, iterations=1, warmup_rounds=1)
    benchmark.extra_info["us_per_bar"] = round(benchmark.stats.stats.median / len(BARS) * 1e6,
                                               2)


@pytest.mark.parametrize("feed", list(FEEDS))
def test_feed_empty_strategy(benchmark, feed):
    _measure(benchmark, "cerebro run with an empty strategy", _cerebro_run, feed)


@pytest.mark.parametrize("feed", list(FEEDS))
def test_feed_preload_only(benchmark, feed):
    _measure(benchmark, "feed preload only", _preload, feed)

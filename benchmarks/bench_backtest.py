"""The ML backtest against the baselines a backtrader user would compare it with.

Run: ``python -m pytest benchmarks/bench_backtest.py --benchmark-only``. 100,000 real-shaped
hourly bars (the BTC sample's returns and bar shapes, chained; ``MLSTRATEGY_BENCH_BARS``
changes the size), a default CatBoost model (300 trees of depth 6) trained on the real sample.
``extra_info["bars_per_s"]`` is bars / the minimum time. One group, side by side:

- ``stock-empty``: stock ``PandasData`` and an empty ``bt.Strategy`` (the floor backtrader
  users know);
- ``naive-ml``: ``PandasData`` and ``predict_proba`` of one feature row per bar in ``next()``,
  long/flat market orders (what a hand-rolled script does);
- ``mlstrategy``: ``run_backtest`` with its report (JSON, trades.csv, equity.png), P(up)
  precomputed by the batch engine and read from a feed line;
- ``mlstrategy-streaming``: the same, with features and trees evaluated bar by bar as live;
- ``same-orders-no-model``: ``NumpyData`` and a strategy that sends exactly the orders the
  ``mlstrategy`` run sent (read from a dict), with no model, no features and no report: what
  backtrader itself costs for this run's bars and orders, the floor of any backtrader backtest
  of this model.

A second group measures what each backtrader analyzer adds per bar to an empty run, which is
why the statistics are numpy over the equity curve; a third the per-bar live path (one
streaming feature update plus the Numba tree evaluation).
"""
from __future__ import annotations

import os

import numpy as np
import pytest

from benchmarks.conftest import long_bars
from datafeeds.bt.compat import bt
from datafeeds.bt.feed import NumpyData
from features_numba import FeatureStream, compute_features
from mlstrategy.backtest.report import run_backtest
from mlstrategy.backtest.runner import BacktestConfig, simulate
from mlstrategy.research.dataset import describe
from mlstrategy.trading.strategy import paper_broker
from mlstrategy.trading.strategy_params import COMMISSION

N = int(os.environ.get("MLSTRATEGY_BENCH_BARS", "100000"))
BARS = long_bars(N)
GROUP = f"ML backtest, {N} bars"


@pytest.fixture(scope="module")
def artifact(bench_model):
    return bench_model


class _Naive(bt.Strategy):
    """Per bar: one row's P(up) from CatBoost, long/flat market orders."""

    params = (("x", None), ("model", None), ("enter", 0.5), ("exit", 0.5))

    def __init__(self) -> None:
        self.i = 0

    def next(self) -> None:
        proba = self.p.model.predict_proba(self.p.x[self.i:self.i + 1])[0]
        self.i += 1
        if not self.position and proba >= self.p.enter:
            self.buy(size=0.95 * self.broker.getvalue() / self.data.close[0])
        elif self.position and proba < self.p.exit:
            self.close()


class _SameOrders(bt.Strategy):
    """The ML run's own orders by bar number (enter: a buy of its size, exit: a close)."""

    params = (("orders", None),)

    def next(self) -> None:
        order = self.p.orders.get(len(self))
        if order is not None:
            intent, size = order
            if intent == "exit":
                self.close()
            else:
                self.buy(size=size)


def _stock_empty() -> None:
    cerebro = bt.Cerebro(stdstats=False)
    cerebro.adddata(bt.feeds.PandasData(dataname=BARS.tz_convert(None)))
    cerebro.addstrategy(bt.Strategy)
    cerebro.run()


def _naive(artifact, x) -> None:
    cerebro = bt.Cerebro(stdstats=False)
    cerebro.adddata(bt.feeds.PandasData(dataname=BARS.tz_convert(None)))
    cerebro.addstrategy(_Naive, x=x, model=artifact.model, enter=artifact.thresholds.enter,
                        exit=artifact.thresholds.exit)
    cerebro.broker.setcash(100_000.0)
    cerebro.broker.setcommission(commission=0.001)
    cerebro.run()


def _config(artifact, streaming: bool = False) -> BacktestConfig:
    return BacktestConfig(start=artifact.spec.warmup, allow_in_sample=True, plot=False,
                          streaming=streaming)


def _ours(artifact, out, streaming: bool) -> None:
    run_backtest(describe(BARS, "bench", "BTC/USD", "1h"), artifact,
                 _config(artifact, streaming), out)


def _orders_of(artifact) -> dict[int, tuple[str, float]]:
    """The ``mlstrategy`` run's orders: bar number (``len(strategy)``) -> (intent, size)."""
    config = _config(artifact)
    sim = simulate(describe(BARS, "bench", "BTC/USD", "1h"), artifact, config)
    bar_of = {t: i + 1 for i, t in enumerate(sim.bars.index.as_unit("ns").asi8)}
    return {bar_of[ns]: (intent, size) for ns, _, intent, _, size in sim.strategy.decisions}


def _same_orders(orders: dict[int, tuple[str, float]], config: BacktestConfig) -> None:
    cerebro = bt.Cerebro(stdstats=False, quicknotify=True)
    cerebro.adddata(NumpyData.from_frame(BARS.iloc[config.start:], timeframe="1h"))
    cerebro.addstrategy(_SameOrders, orders=orders)
    cerebro.setbroker(paper_broker(config.strategy.costed(COMMISSION)))
    cerebro.run()


def _measure(benchmark, fn, *args) -> None:
    benchmark.group = GROUP
    benchmark.pedantic(fn, args=args, rounds=2, iterations=1)
    benchmark.extra_info["bars_per_s"] = round(N / benchmark.stats.stats.min)


@pytest.mark.parametrize("contender", ["stock-empty", "naive-ml", "mlstrategy",
                                       "mlstrategy-streaming", "same-orders-no-model"])
def test_backtest_throughput(benchmark, contender, artifact, tmp_path):
    if contender == "stock-empty":
        _measure(benchmark, _stock_empty)
    elif contender == "same-orders-no-model":
        orders = _orders_of(artifact)
        _measure(benchmark, _same_orders, orders, _config(artifact))
        benchmark.extra_info["orders"] = len(orders)
    elif contender == "naive-ml":
        x = np.ascontiguousarray(compute_features(BARS, artifact.spec))
        _measure(benchmark, _naive, artifact, x)
    else:
        _measure(benchmark, _ours, artifact, tmp_path, contender.endswith("streaming"))


ANALYZERS = {"none": None, "SharpeRatio": bt.analyzers.SharpeRatio,
             "DrawDown": bt.analyzers.DrawDown, "Returns": bt.analyzers.Returns,
             "TradeAnalyzer": bt.analyzers.TradeAnalyzer, "SQN": bt.analyzers.SQN}


@pytest.mark.parametrize("analyzer", list(ANALYZERS))
def test_analyzer_cost_per_bar(benchmark, analyzer):
    def run() -> None:
        cerebro = bt.Cerebro(stdstats=False)
        cerebro.adddata(NumpyData.from_frame(BARS, timeframe="1h"))
        cerebro.addstrategy(bt.Strategy)
        if ANALYZERS[analyzer] is not None:
            cerebro.addanalyzer(ANALYZERS[analyzer])
        cerebro.run()

    benchmark.group = f"backtrader analyzer on an empty NumpyData run, {N} bars"
    benchmark.pedantic(run, rounds=2, iterations=1)
    benchmark.extra_info["us_per_bar"] = round(benchmark.stats.stats.min / N * 1e6, 2)


def test_per_bar_live_path(benchmark, artifact):
    """One streaming feature update plus the Numba tree evaluation of its row."""
    stream = FeatureStream(artifact.spec)
    stream.warm(BARS.iloc[:1000])
    rows = BARS.iloc[1000:3000].to_numpy()
    times = BARS.index[1000:3000].as_unit("ns").asi8
    model = artifact.model

    def run() -> None:
        for (o, h, lo, c, v), t in zip(rows, times, strict=True):
            model.predict_row(stream.update(o, h, lo, c, v, int(t)))

    benchmark.group = "per-bar live path: features + inference, 2000 bars"
    benchmark.pedantic(run, rounds=5, iterations=1, warmup_rounds=1)
    benchmark.extra_info["us_per_bar"] = round(benchmark.stats.stats.min / 2000 * 1e6, 2)


class _Flip(bt.Strategy):
    """An order every sixth bar, no model: what backtrader itself costs per order."""

    def next(self) -> None:
        if len(self) % 6 == 0:
            if self.position:
                self.sell(size=self.position.size)
            else:
                self.buy(size=1.0)


@pytest.mark.parametrize("strategy", ["empty", "order every 6 bars"])
def test_backtrader_cost_per_order(benchmark, strategy):
    def run() -> None:
        cerebro = bt.Cerebro(stdstats=False, quicknotify=True)
        cerebro.adddata(NumpyData.from_frame(BARS, timeframe="1h"))
        cerebro.addstrategy(bt.Strategy if strategy == "empty" else _Flip)
        cerebro.broker.set_checksubmit(False)
        cerebro.run()

    benchmark.group = f"backtrader's own cost per order (NumpyData), {N} bars"
    benchmark.pedantic(run, rounds=2, iterations=1)
    benchmark.extra_info["orders"] = 0 if strategy == "empty" else N // 6

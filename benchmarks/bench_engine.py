"""The trading engine against vectorbt, end to end, and in a grid, on 1M real-shaped bars.

Run: ``python -m pytest benchmarks/bench_engine.py --benchmark-only`` (vectorbt comes with
``pip install -e ".[bench]"``). The bars are the BTC sample's returns and shapes chained to 1M
(``benchmarks.conftest``); P(up) is the benchmark model's (``bench_model``), so the turnover
is the model's. ``extra_info`` holds bars a second and the orders. Groups:

- ``engine alone``: ``run_engine`` (long/flat, 95% of the value, fills at the next open, 0.1%
  fees) beside vectorbt's ``Portfolio.from_signals`` on the same signals and costs;
- ``backtest --engine numba``: ``run_backtest`` end to end on 1M bars (features, inference,
  engine, report and equity.png, no backtrader plot), to set beside the backtrader run's bars
  a second in ``bench_backtest.py``;
- ``grid``: 1,000 configurations (enter x exit x cooldown) over 1M bars on every core.
"""
from __future__ import annotations

import numpy as np
import pytest

from benchmarks.conftest import long_bars
from features_numba import compute_features
from mlstrategy.backtest.grid import run_grid
from mlstrategy.backtest.report import run_backtest
from mlstrategy.backtest.runner import BacktestConfig
from mlstrategy.research.dataset import describe
from mlstrategy.trading.decision import decide
from mlstrategy.trading.engine import EngineBars, run_engine
from mlstrategy.trading.strategy_params import StrategyParams

N = 1_000_000


@pytest.fixture(scope="module")
def bars():
    return long_bars(N)


@pytest.fixture(scope="module")
def proba(bars, bench_model):
    x = compute_features(bars, bench_model.spec)
    out = np.full(N, np.nan)
    rows = ~np.isnan(x).any(axis=1)
    out[rows] = bench_model.model.predict_proba(x[rows])
    return out


def _signals(proba, enter, exit_):
    """Entries and exits of the long/flat rule, as vectorbt takes them (decided on a close,
    so they act on the next bar)."""
    held, entries, exits = 0, np.zeros(len(proba), bool), np.zeros(len(proba), bool)
    for i, p in enumerate(proba):
        target = decide(p, held, enter, exit_, False)
        entries[i], exits[i] = target > held, target < held
        held = target
    return np.roll(entries, 1) & (np.arange(len(proba)) > 0), \
        np.roll(exits, 1) & (np.arange(len(proba)) > 0)


@pytest.mark.parametrize("contender", ["mlstrategy-engine", "vectorbt-from_signals"])
def test_engine_alone(benchmark, contender, bars, proba, bench_model):
    enter, exit_ = bench_model.thresholds.enter, bench_model.thresholds.exit
    benchmark.group = f"engine alone, {N:,} bars, the benchmark model's signals"
    if contender == "mlstrategy-engine":
        columns = EngineBars.of(bars)

        def run():
            return run_engine(columns, proba, StrategyParams(), enter=enter, exit_=exit_,
                              cash=100_000.0, commission=0.001)
    else:
        vbt = pytest.importorskip("vectorbt", reason="pip install -e '.[bench]'")
        entries, exits = _signals(proba, enter, exit_)

        def run():
            return vbt.Portfolio.from_signals(
                bars["close"].to_numpy(), entries, exits, price=bars["open"].to_numpy(),
                size=0.95, size_type="percent", fees=0.001, init_cash=100_000.0, freq="1h")
    result = benchmark.pedantic(run, rounds=5, iterations=1, warmup_rounds=1)
    benchmark.extra_info["bars_per_s"] = round(N / benchmark.stats.stats.min)
    orders = len(result.fill_sizes) if contender == "mlstrategy-engine" \
        else int(result.orders.count())
    benchmark.extra_info["orders"] = orders


def test_backtest_numba_end_to_end(benchmark, bars, bench_model, tmp_path):
    config = BacktestConfig(start=bench_model.spec.warmup, allow_in_sample=True, plot=False,
                            engine="numba")
    dataset = describe(bars, "bench", "BTC/USD", "1h")
    benchmark.group = f"backtest --engine numba end to end, {N:,} bars"
    benchmark.pedantic(run_backtest, args=(dataset, bench_model, config, tmp_path),
                       rounds=2, iterations=1)
    benchmark.extra_info["bars_per_s"] = round(N / benchmark.stats.stats.min)


def test_grid_of_1000(benchmark, bars, bench_model, tmp_path):
    config = BacktestConfig(start=bench_model.spec.warmup, allow_in_sample=True, plot=False,
                            engine="numba")
    axes = {"enter": [round(0.50 + 0.01 * k, 2) for k in range(20)],
            "exit": [round(0.40 + 0.01 * k, 2) for k in range(10)], "cooldown": [0, 1, 2, 3, 4]}
    dataset = describe(bars, "bench", "BTC/USD", "1h")
    benchmark.group = f"grid of 1,000 configurations over {N:,} bars, every core"
    benchmark.pedantic(lambda: run_grid(dataset, bench_model, config, axes, tmp_path / "grid",
                                        ledger=tmp_path / "models"), rounds=1, iterations=1)
    benchmark.extra_info["configurations"] = 1000

from __future__ import annotations

import json

import numpy as np
import pytest

from features_numba import compute_features
from mlstrategy.backtest import BacktestConfig, run_backtest
from mlstrategy.errors import MLStrategyError


@pytest.fixture(scope="module")
def run(trained, tmp_path_factory):
    out = tmp_path_factory.mktemp("report")
    return run_backtest(trained.dataset, trained.artifact, BacktestConfig(plot=True), out)


def test_report_and_plot_are_written(run):
    report = json.loads(run.report_path.read_text())
    assert set(report["analyzers"]) == {"sharpe", "drawdown", "returns", "trades", "sqn"}
    assert report["annualisation"]["periods_per_year"] == 365  # BTC trades on weekends
    assert report["final_value"] > 0
    assert run.plot_path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_backtest_trades_only_the_holdout(run, trained):
    start = trained.result.holdout.test_start
    assert run.report["data"]["warmup_bars"] == start
    assert run.report["data"]["traded_bars"] == len(trained.dataset.bars) - start


def test_streaming_path_predicts_exactly_what_the_batch_path_predicts(run, trained):
    """No train/serve skew: bar-by-bar features in backtrader == the training matrix."""
    bars = trained.dataset.bars
    start = trained.result.holdout.test_start
    batch = trained.artifact.model.predict_proba(
        compute_features(bars, trained.artifact.spec)[start:])
    np.testing.assert_array_equal(run.probas, batch)


def test_orders_decided_on_a_close_fill_at_the_next_open(trained, tmp_path):
    from datafeeds.bt.compat import bt
    from mlstrategy.backtest import _feed
    from mlstrategy.inference import SignalEngine
    from mlstrategy.strategy import MLStrategy

    bars = trained.dataset.bars
    start = trained.result.holdout.test_start
    engine = SignalEngine(trained.artifact)
    engine.warm(bars.iloc[:start])
    cerebro = bt.Cerebro(stdstats=False)
    cerebro.adddata(_feed(bars.iloc[start:], "1h", "BTC/USD"))
    cerebro.addstrategy(MLStrategy, engine=engine)
    cerebro.broker.setcash(1e6)
    strategy = cerebro.run()[0]
    assert len(strategy.fills) >= 2, "the model should trade on a year of hourly bars"
    opens = bars["open"]
    for when, price, _size in strategy.fills:
        stamp = bt.num2date(when)
        # executed price is an average backtrader computes: equal to the open up to rounding
        assert price == pytest.approx(opens.loc[opens.index.tz_localize(None) == stamp].iloc[0],
                                      rel=1e-12)
    # a fill's bar is never the first traded bar: a decision needs a closed bar first
    assert bt.num2date(strategy.fills[0][0]) > bars.index[start].tz_localize(None)


def test_start_outside_the_data_is_refused(trained, tmp_path):
    with pytest.raises(MLStrategyError, match="outside"):
        run_backtest(trained.dataset, trained.artifact,
                     BacktestConfig(start=len(trained.dataset.bars), plot=False), tmp_path)

"""Backtests that can be trusted: one decision path, three proven-equal ways to P(up), no
look-ahead, exact arithmetic on a hand-computed scenario, and the model's training bars kept
out whatever the data is called."""
from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from datafeeds.bt.compat import bt
from datafeeds.bt.dates import num2ns
from datafeeds.bt.feed import NumpyData
from features_numba import FeatureSpec, compute_features
from mlstrategy.backtest.report import run_backtest
from mlstrategy.backtest.runner import BacktestConfig, simulate
from mlstrategy.backtest.spans import trading_span
from mlstrategy.errors import MLStrategyError
from mlstrategy.trading.strategy import MLStrategy
from tests.conftest import REPO_ROOT


@pytest.fixture(scope="module")
def run(trained, tmp_path_factory):
    out = tmp_path_factory.mktemp("report")
    return run_backtest(trained.dataset, trained.artifact, BacktestConfig(plot=True), out)


def test_every_report_file_is_written_and_tells_the_truth(run):
    text = run.report_path.read_text()
    report = json.loads(text)
    assert list(report)[:2] == ["in_sample", "warnings"] and report["in_sample"] is False
    strategy, hold = report["summary"]["strategy"], report["summary"]["buy_and_hold"]
    for row in (strategy, hold):
        assert {"total_return", "sharpe", "max_drawdown", "psr", "dsr", "sharpe_ci95"} <= set(row)
    assert {"fees", "exposure", "turnover", "trades"} <= set(strategy)
    assert strategy["trades"] == report["significance"]["trades"] > 10
    assert 8000 < report["annualisation"]["periods_per_year"] < 8800  # hourly, 24/7, gaps
    assert "9223372036854775807" not in text  # backtrader's "no value" sentinel
    trades = pd.read_csv(run.trades_path)
    assert len(trades) == strategy["trades"]
    assert trades["fees"].sum() == pytest.approx(strategy["fees"], rel=1e-9, abs=1e-6)
    for png in (run.equity_path, run.plot_path):
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_the_backtest_trades_only_bars_the_model_never_saw(run, trained):
    start = trained.result.holdout.test_start
    assert run.report["data"]["warmup_bars"] == start
    assert run.report["data"]["traded_bars"] == len(trained.dataset.bars) - start


def test_three_ways_to_p_up_are_one_and_give_the_same_orders(trained):
    """CatBoost's own batch call, the precomputed feed line, and the streaming features with
    the Numba tree evaluator bar by bar: bit-identical at every bar, identical orders."""
    bars, artifact = trained.dataset.bars, trained.artifact
    start = trained.result.holdout.test_start
    catboost = artifact.model.predict_proba(compute_features(bars, artifact.spec)[start:])
    line = simulate(trained.dataset, artifact, BacktestConfig(plot=False))
    stream = simulate(trained.dataset, artifact, BacktestConfig(plot=False, streaming=True))
    assert line.strategy.engine is None and stream.strategy.engine is not None
    np.testing.assert_array_equal(np.asarray(line.strategy.probas), catboost)
    np.testing.assert_array_equal(np.asarray(stream.strategy.probas), catboost)
    assert line.strategy.decisions == stream.strategy.decisions
    assert line.strategy.executions == stream.strategy.executions
    assert line.strategy.values == stream.strategy.values


def test_orders_up_to_a_bar_do_not_change_when_later_bars_are_removed(trained):
    full = simulate(trained.dataset, trained.artifact, BacktestConfig(plot=False)).strategy
    cut_at = full.decisions[len(full.decisions) // 2][0]  # a bar with an order on it
    cut = int(trained.dataset.bars.index.searchsorted(pd.Timestamp(cut_at, tz="UTC"))) + 1
    short = simulate(trained.dataset.slice(0, cut), trained.artifact,
                     BacktestConfig(plot=False)).strategy
    assert short.decisions == [d for d in full.decisions if d[0] <= cut_at]
    assert short.probas == full.probas[:len(short.probas)]


def test_fills_happen_at_the_next_bars_open(run, trained):
    opens = trained.dataset.bars["open"]
    sim = simulate(trained.dataset, trained.artifact, BacktestConfig(plot=False))
    decided = [pd.Timestamp(d[0], tz="UTC") for d in sim.strategy.decisions]
    filled = [pd.Timestamp(num2ns(e["time"]), tz="UTC") for e in sim.strategy.executions]
    index = trained.dataset.bars.index
    assert len(filled) == len(decided) > 10
    for when, fill in zip(decided, filled, strict=True):
        assert fill == index[index.get_loc(when) + 1]  # the bar after the decision
    for e, fill in zip(sim.strategy.executions, filled, strict=True):
        assert e["price"] == pytest.approx(opens.loc[fill], rel=1e-12)


def test_a_hand_computed_scenario_including_a_rejected_order(trained):
    """Cash 1000, 10 bps, half the value per entry, enter at 0.6, exit below 0.5."""
    index = pd.date_range("2024-01-01", periods=7, freq="1h", tz="UTC", name="datetime")
    opens = [100.0, 102.0, 104.0, 99.0, 100.0, 250.0, 240.0]
    closes = [100.0, 104.0, 101.0, 100.0, 100.0, 250.0, 260.0]
    bars = pd.DataFrame({"open": opens, "high": np.maximum(opens, closes),
                         "low": np.minimum(opens, closes), "close": closes,
                         "volume": 1.0}, index=index)
    probas = np.array([0.7, 0.65, 0.4, 0.45, 0.9, 0.9, 0.9])
    cerebro = bt.Cerebro(stdstats=False)
    cerebro.adddata(NumpyData.from_frame(bars, timeframe="1h", name="X",
                                         extra={"p_up": probas}))
    cerebro.addstrategy(MLStrategy, model=trained.artifact, enter=0.6, exit=0.5, fraction=0.5)
    cerebro.broker.setcash(1000.0)
    cerebro.broker.setcommission(commission=0.001)
    s = cerebro.run()[0]
    # bar 0 decides 0.5 * 1000 / 100 = 5 units, bought at bar 1's open 102 (fee 0.51)
    # bar 2 (P 0.4 < 0.5) sells them at bar 3's open 99 (fee 0.495)
    cash = 1000.0 - 5 * 102.0 - 0.51 + 5 * 99.0 - 0.495
    # bar 4 decides 0.5 * cash / 100 units; bar 5 gaps up to 250: not enough cash -> Margin
    # bar 5 decides again 0.5 * cash / 250 units, bought at bar 6's open 240
    units = 0.5 * cash / 250.0
    final_cash = cash - units * 240.0 - units * 240.0 * 0.001
    assert [(e["size"], e["price"]) for e in s.executions] == [
        (5.0, 102.0), (-5.0, 99.0), (pytest.approx(units, rel=1e-12), 240.0)]
    assert [e["fee"] for e in s.executions] == pytest.approx([0.51, 0.495,
                                                              units * 240.0 * 0.001])
    assert [r["status"] for r in s.refused] == ["Margin"]
    assert s.refused[0]["size"] == pytest.approx(0.5 * cash / 100.0)
    assert s.values[-1] == pytest.approx(final_cash + units * 260.0, rel=1e-12)
    assert cerebro.broker.getvalue() == s.values[-1]
    (trade,) = s.trades  # the open position at the end is no closed trade
    assert (trade["side"], trade["size"], trade["entry_price"], trade["bars_held"]) == \
        ("long", 5.0, 102.0, 2)
    assert trade["exit_price"] == pytest.approx(99.0, rel=1e-12)
    assert (trade["pnl"], trade["fees"]) == pytest.approx((5 * (99.0 - 102.0), 0.51 + 0.495))


def test_training_bars_are_found_by_content_whatever_the_file(trained, tmp_path):
    """The training bars, renamed, with rows dropped and rows added, written to a CSV with six
    decimals and read back: every one is recognised by content, and none of the others."""
    from mlstrategy.research.dataset import file_dataset

    bars, clean = trained.dataset.bars, trained.result.holdout.test_start
    added = bars.iloc[200:230].copy()
    added.index = added.index + pd.Timedelta(minutes=30)  # bars the model never saw
    added[["open", "high", "low", "close"]] *= 1.01
    edited = pd.concat([bars.iloc[100:], added]).sort_index()
    path = tmp_path / "spx.csv"
    edited.to_csv(path, float_format="%.6f")  # as Yahoo writes them
    dataset, _ = file_dataset(path, "SPX", None)
    found = trained.artifact.is_training_bar(dataset.bars)
    expected = np.asarray(dataset.bars.index < bars.index[clean]) & \
        ~np.asarray(dataset.bars.index.isin(added.index))
    np.testing.assert_array_equal(found, expected)
    span = trading_span(dataset, trained.artifact)
    assert span.start == clean - 100 + 30 and not span.in_sample
    assert "by content" in span.matched_by
    assert any("trained on BTC/USD" in w for w in span.warnings)
    with pytest.raises(MLStrategyError, match="inside the model's training data"):
        trading_span(dataset, trained.artifact, start=2900)
    refused = subprocess.run([sys.executable, str(REPO_ROOT / "trading_bot.py"), "backtest",
                              "--models-dir", str(trained.models_dir), "--data", str(path),
                              "--symbol", "SPX", "--start", "2900", "--no-plot", "--out",
                              str(tmp_path / "r")], capture_output=True, text=True,
                             timeout=300)
    assert refused.returncode == 2 and "--allow-in-sample" in refused.stderr
    assert len(refused.stderr.strip().splitlines()) == 1
    inside = trading_span(dataset, trained.artifact, start=span.start - 1000,
                          allow_in_sample=True)
    assert inside.in_sample and inside.warnings[0].startswith("IN-SAMPLE")
    traded = len(dataset.bars) - inside.start
    assert inside.training_share == pytest.approx(found[inside.start:].sum() / traded)
    assert inside.period_share == pytest.approx(1000 / traded)


def test_another_instrument_starts_after_the_training_period(shared_data, tmp_path):
    """An NVDA model backtested on ORCL: ORCL's bars of NVDA's training years are not out of
    sample (markets move together), although none of them is an NVDA bar."""
    from mlstrategy.registry.artifact import load_artifact, save_artifact
    from mlstrategy.research.dataset import file_dataset
    from mlstrategy.research.training import train
    from tests.mlstrategy.conftest import FAST

    nvda, _ = file_dataset(shared_data / "backtrader" / "nvda-1999-2014.txt", "NVDA", None)
    result = train(nvda, FeatureSpec.default(), FAST)
    model = load_artifact(save_artifact(tmp_path, "nvda", result.model, result.manifest,
                                        training_bars=result.training_bars))
    orcl, _ = file_dataset(shared_data / "backtrader" / "orcl-1995-2014.txt", "ORCL", None)
    assert not model.is_training_bar(orcl.bars).any()
    span = trading_span(orcl, model)
    first_clean = pd.Timestamp(model.manifest.training_data.holdout_first_bar)
    assert orcl.bars.index[span.start] >= first_clean > orcl.bars.index[span.start - 1]
    assert "training period" in span.matched_by and not span.in_sample
    with pytest.raises(MLStrategyError, match="inside the model's training data"):
        trading_span(orcl, model, start=span.start - 1)


def test_in_sample_needs_asking_and_then_says_so(trained, tmp_path):
    with pytest.raises(MLStrategyError, match="inside the model's training data"):
        simulate(trained.dataset, trained.artifact, BacktestConfig(start=500, plot=False))
    result = run_backtest(trained.dataset, trained.artifact,
                          BacktestConfig(start=500, allow_in_sample=True, plot=False), tmp_path)
    assert result.report["in_sample"] is True
    assert result.report["warnings"][0].startswith("IN-SAMPLE")


def test_start_outside_the_data_is_refused(trained, tmp_path):
    with pytest.raises(MLStrategyError, match="no bar to trade"):
        simulate(trained.dataset, trained.artifact,
                 BacktestConfig(start=len(trained.dataset.bars), plot=False))


def test_any_backtrader_feed_and_several_at_once(trained, tmp_path):
    """A GenericCSVData and a PandasData of the same bars in one Cerebro: each feed gets its
    own streaming features, P(up) equal to the batch engine's, and the same decisions."""
    from mlstrategy.trading.inference import batch_probas

    bars = trained.dataset.bars.iloc[-600:]
    csv = tmp_path / "bars.csv"
    bars.tz_convert(None).to_csv(csv, date_format="%Y-%m-%d %H:%M:%S")
    cerebro = bt.Cerebro(stdstats=False)
    cerebro.adddata(bt.feeds.GenericCSVData(
        dataname=str(csv), dtformat="%Y-%m-%d %H:%M:%S", timeframe=bt.TimeFrame.Minutes,
        compression=60, datetime=0, open=1, high=2, low=3, close=4, volume=5,
        openinterest=-1), name="csv")
    cerebro.adddata(bt.feeds.PandasData(dataname=bars.tz_convert(None)), name="pandas")
    cerebro.addstrategy(MLStrategy, model=trained.artifact, fraction=0.45)
    cerebro.broker.setcash(100_000.0)
    strategy = cerebro.run()[0]
    batch = batch_probas(bars, trained.artifact)
    books = {data._name: book for data, book in strategy.books.items()}
    for book in books.values():
        np.testing.assert_array_equal(np.asarray(book.probas), batch)
    by_feed = {name: [d[0:1] + d[2:4] for d in strategy.decisions if d[1] == name]
               for name in books}
    assert by_feed["csv"] == by_feed["pandas"] and len(by_feed["csv"]) > 2


def test_walk_forward_trades_each_window_with_a_model_that_never_saw_it(trained, tmp_path):
    from mlstrategy.backtest.walkforward import run_walk_forward

    result = run_walk_forward(trained.dataset, trained.artifact, BacktestConfig(plot=False),
                              tmp_path, every=1500)
    windows = result.report["walk_forward"]["windows"]
    start = trained.result.holdout.test_start
    assert [w["bars"][0] for w in windows] == list(range(start, len(trained.dataset.bars),
                                                         1500))
    for w in windows:
        assert w["trained_on"][1] == w["bars"][0]  # trained on bars before the window only
    assert len({(w["enter"], w["exit"]) for w in windows}) == len(windows)  # a model each
    values = result.report["summary"]["strategy"]["final_value"]
    growth = np.prod([1 + w["return"] for w in windows])
    assert values == pytest.approx(100_000.0 * growth, rel=1e-9)  # one stitched curve


@pytest.mark.parametrize("kind", ["random_forest", "hist_gb", "mlp", "xgboost"])
def test_every_model_kind_backtests_with_the_same_p_up_both_ways(kind, btc_dataset, tmp_path):
    """Bar by bar (each model's own per-row call) and precomputed (its batch call)."""
    from features_numba import FeatureSpec
    from mlstrategy.models import parse_params
    from mlstrategy.registry.artifact import load_artifact, save_artifact
    from mlstrategy.research.training import TrainConfig, train

    if kind == "xgboost":
        pytest.importorskip("xgboost")
    small = {"random_forest": {"n_estimators": "20"}, "hist_gb": {"max_iter": "30"},
             "mlp": {"hidden": "16", "max_iter": "30"}, "xgboost": {"n_estimators": "30"}}
    data = btc_dataset.slice(0, 4000)
    result = train(data, FeatureSpec.default(),
                   TrainConfig(model=kind, params=parse_params(kind, small[kind]), folds=2))
    artifact = load_artifact(save_artifact(tmp_path, kind, result.model, result.manifest,
                                           training_bars=result.training_bars))
    line = simulate(data, artifact, BacktestConfig(plot=False)).strategy
    stream = simulate(data, artifact, BacktestConfig(plot=False, streaming=True)).strategy
    if kind == "mlp":
        np.testing.assert_allclose(stream.probas, line.probas, rtol=0, atol=1e-12)
    else:
        np.testing.assert_array_equal(np.asarray(stream.probas), np.asarray(line.probas))
        assert stream.decisions == line.decisions

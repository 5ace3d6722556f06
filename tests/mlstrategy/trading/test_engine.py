"""The trading engine is trade for trade the Cerebro run (here: a model's P(up), default
options; every option is in ``test_engine_identity``), so the training's holdout figures are
the backtest's on the same bars; costs are always against the trader."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from datafeeds.bt.dates import num2ns
from mlstrategy.backtest.report import run_backtest
from mlstrategy.backtest.runner import BacktestConfig, simulate
from mlstrategy.trading.engine import run_engine
from mlstrategy.trading.inference import batch_probas
from mlstrategy.trading.strategy_params import StrategyParams


def _cerebro_fills(sim) -> list[tuple]:
    times = sim.bars.index.as_unit("ns").asi8
    return [(int(np.searchsorted(times, num2ns(e["time"]))), e["size"], e["price"], e["fee"])
            for e in sim.strategy.executions]


@pytest.mark.parametrize("slippage", [0.0, 0.002])
def test_the_engine_is_trade_for_trade_the_cerebro_run(trained, slippage):
    config = BacktestConfig(plot=False, strategy=StrategyParams(slippage=slippage))
    sim = simulate(trained.dataset, trained.artifact, config)
    bars = sim.bars
    run = run_engine(bars, batch_probas(trained.dataset.bars, trained.artifact)[sim.span.start:],
                     StrategyParams(), enter=trained.artifact.thresholds.enter,
                     exit_=trained.artifact.thresholds.exit, cash=config.strategy.cash,
                     commission=trained.artifact.training_cost, slippage=slippage)
    cerebro = _cerebro_fills(sim)
    assert len(cerebro) > 100
    assert [(b, s, p) for b, s, p, _ in cerebro] == list(zip(
        run.fill_bars.tolist(), run.fill_sizes.tolist(), run.fill_prices.tolist(),
        strict=True))
    np.testing.assert_allclose(run.fill_fees, [f for *_, f in cerebro], rtol=1e-12)
    np.testing.assert_allclose(run.values, sim.strategy.values, rtol=1e-12)
    np.testing.assert_allclose(run.trade_pnls, [t["pnl_net"] for t in sim.strategy.trades],
                               rtol=1e-9)


def test_a_buy_the_cash_cannot_pay_at_a_gap_is_refused_in_both():
    """The hand-computed scenario of the backtest tests: bar 5 gaps up, the buy decided at
    bar 4 cannot be paid at bar 5's open; it is decided again and filled at bar 6."""
    opens = np.array([100.0, 102.0, 104.0, 99.0, 100.0, 250.0, 240.0])
    closes = np.array([100.0, 104.0, 101.0, 100.0, 100.0, 250.0, 260.0])
    bars = pd.DataFrame({"open": opens, "high": np.maximum(opens, closes),
                         "low": np.minimum(opens, closes), "close": closes, "volume": 1.0},
                        index=pd.date_range("2024-01-01", periods=7, freq="1h", tz="UTC"))
    probas = np.array([0.7, 0.65, 0.4, 0.45, 0.9, 0.9, 0.9])
    run = run_engine(bars, probas, StrategyParams(fraction=0.5), enter=0.6, exit_=0.5,
                     cash=1000.0, commission=0.001)
    cash = 1000.0 - 5 * 102.0 - 0.51 + 5 * 99.0 - 0.495
    units = 0.5 * cash / 250.0
    assert run.refused == 1 and run.fill_bars.tolist() == [1, 3, 6]
    assert run.fill_sizes.tolist() == pytest.approx([5.0, -5.0, units], rel=1e-12)
    assert run.values[-1] == pytest.approx(cash - units * 240.0 * 1.001 + units * 260.0,
                                           rel=1e-12)


def test_training_holdout_figures_are_the_backtests(trained, tmp_path):
    report = run_backtest(trained.dataset, trained.artifact, BacktestConfig(plot=False),
                          tmp_path).report
    holdout = trained.result.holdout_metrics
    assert report["data"]["traded_first_bar"] == \
        trained.artifact.manifest.training_data.holdout_first_bar
    strategy, hold = report["summary"]["strategy"], report["summary"]["buy_and_hold"]
    assert holdout["trades"] == strategy["trades"]
    for mine, theirs in (("return", "total_return"), ("sharpe", "sharpe"),
                         ("max_drawdown", "max_drawdown"), ("profit_factor", "profit_factor"),
                         ("trade_hit_rate", "win_rate")):
        assert holdout[mine] == pytest.approx(strategy[theirs], rel=1e-9), mine
    assert holdout["buy_hold_return"] == pytest.approx(hold["total_return"], rel=1e-12)
    assert holdout["buy_hold_sharpe"] == pytest.approx(hold["sharpe"], rel=1e-12)


def test_every_fill_pays_the_full_slippage_and_the_final_mark_its_exit(trained, tmp_path):
    slippage, commission = 0.003, 0.001
    config = BacktestConfig(plot=False, strategy=StrategyParams(slippage=slippage,
                                                                commission=commission))
    result = run_backtest(trained.dataset, trained.artifact, config, tmp_path)
    sim = simulate(trained.dataset, trained.artifact, config)
    opens = sim.bars["open"].to_numpy()
    for bar, size, price, fee in _cerebro_fills(sim):  # never capped at the bar's range
        worse = price / opens[bar] - 1.0 if size > 0 else 1.0 - price / opens[bar]
        assert worse >= slippage * (1 - 1e-12)
        assert fee == pytest.approx(abs(size) * price * commission, rel=1e-12)
    beyond = [b for b, s, p, _ in _cerebro_fills(sim)
              if p > sim.bars["high"].iloc[b] or p < sim.bars["low"].iloc[b]]
    assert beyond, "some fills should lie beyond the bar's range (an open at the high)"
    strategy = result.report["summary"]["strategy"]
    position = sim.strategy.getposition(sim.strategy.data).size
    close = float(sim.bars["close"].iloc[-1])
    expected = sim.strategy.values[-1] - position * close * (
        slippage + (1 - slippage) * commission)
    assert strategy["final_value"] == pytest.approx(expected, rel=1e-12)
    assert strategy["final_exit_cost"] == pytest.approx(sim.strategy.values[-1] - expected)
    hold = result.report["summary"]["buy_and_hold"]
    bars = sim.bars
    cash = config.strategy.cash
    units = 0.95 * cash / (bars["open"].iloc[1] * (1 + slippage) * (1 + commission))
    left = cash - units * bars["open"].iloc[1] * (1 + slippage) * (1 + commission)
    assert hold["final_value"] == pytest.approx(
        left + units * close * (1 - slippage) * (1 - commission), rel=1e-12)


def test_shorts_pay_the_borrow_rate(trained, tmp_path):
    bars = trained.dataset.bars
    base = BacktestConfig(plot=False, strategy=_shorts())
    free = simulate(trained.dataset, trained.artifact, base)
    paid = simulate(trained.dataset, trained.artifact,
                    BacktestConfig(plot=False, strategy=_shorts(borrow_rate=0.5)))
    assert any(e["size"] < 0 for e in free.strategy.executions)
    assert paid.strategy.values[-1] < free.strategy.values[-1]
    report = run_backtest(trained.dataset, trained.artifact,
                          BacktestConfig(plot=False, strategy=_shorts(borrow_rate=0.5)),
                          tmp_path).report
    assert report["config"]["strategy"]["borrow_rate"] == 0.5
    assert pd.Timestamp(report["data"]["traded_first_bar"]) > bars.index[0]


def _shorts(**costs):
    from mlstrategy.trading.strategy_params import StrategyParams

    return StrategyParams(allow_short=True, **costs)

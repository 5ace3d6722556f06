"""Backtest runner: the trained model drives ``MLStrategy`` through backtrader's Cerebro.

By default it runs on the model's holdout span (bars no part of training saw); the bars before
that span warm the streaming features, so the first traded bar has the exact features the batch
engine computed in training. Results are backtrader's own analyzers, written as JSON, and
backtrader's plot, written as PNG.
"""
from __future__ import annotations

import json
import logging
import math
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from datafeeds.bt.compat import bt
from datafeeds.bt.feed import NumpyData
from mlstrategy.artifact import Artifact
from mlstrategy.dataset import Dataset
from mlstrategy.errors import MLStrategyError
from mlstrategy.inference import SignalEngine
from mlstrategy.strategy import MLStrategy

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class BacktestConfig:
    """Broker and reporting settings of a backtest."""

    cash: float = 100_000.0
    commission: float = 0.001  # per side, fraction of traded value (10 bps)
    slippage: float = 0.0  # fraction of price, against us
    stake: float = 0.95
    start: int | None = None  # first bar traded; None = the model's holdout start
    plot: bool = True


@dataclass(frozen=True)
class BacktestResult:
    """Where the report and plot went, and the report itself."""

    report: dict
    report_path: Path
    plot_path: Path | None
    probas: np.ndarray


def _plain(value: object) -> object:
    """backtrader's AutoOrderedDicts and numpy scalars -> JSON-ready values (NaN -> None)."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, (float, np.floating)):
        return None if math.isnan(value) or math.isinf(value) else float(value)
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        return int(value)
    return value


def periods_per_year(bars_index) -> int:
    """365 for markets trading on weekends (crypto), else 252: Sharpe annualisation factor."""
    return 365 if (bars_index.day_of_week >= 5).any() else 252


def _feed(bars: pd.DataFrame, timeframe: str | None, name: str) -> NumpyData:
    """A preloaded backtrader feed over ``bars``; the timeframe is told when it is known."""
    known = timeframe not in (None, "unknown")
    return NumpyData.from_frame(bars, timeframe=timeframe if known else None, name=name)


def run_backtest(dataset: Dataset, artifact: Artifact, config: BacktestConfig,
                 out_dir: Path) -> BacktestResult:
    """Backtest ``artifact`` on ``dataset`` and write ``backtest.json`` (+ ``backtest.png``).

    Raises
    ------
    MLStrategyError
        If the span to trade is empty or the data is not what the model was trained for.
    """
    bars = dataset.bars
    start = config.start
    if start is None:
        start = holdout_start(dataset, artifact)
    if not 0 <= start < len(bars) - 1:
        raise MLStrategyError(f"backtest start bar {start} is outside the {len(bars)} bars given")
    engine = SignalEngine(artifact)
    engine.warm(bars.iloc[:start])
    traded = bars.iloc[start:]
    cerebro = bt.Cerebro(stdstats=False)
    cerebro.adddata(_feed(traded, dataset.info.timeframe, dataset.info.symbol))
    for observer in (bt.observers.Value, bt.observers.DrawDown, bt.observers.Trades,
                     bt.observers.BuySell):
        cerebro.addobserver(observer)
    cerebro.addstrategy(MLStrategy, engine=engine, stake=config.stake)
    cerebro.broker.setcash(config.cash)
    cerebro.broker.setcommission(commission=config.commission)
    if config.slippage:
        cerebro.broker.set_slippage_perc(config.slippage)
    factor = periods_per_year(traded.index)
    cerebro.addanalyzer(bt.analyzers.SharpeRatio, _name="sharpe", timeframe=bt.TimeFrame.Days,
                        compression=1, riskfreerate=0.0, annualize=True, factor=factor)
    cerebro.addanalyzer(bt.analyzers.DrawDown, _name="drawdown")
    cerebro.addanalyzer(bt.analyzers.Returns, _name="returns", timeframe=bt.TimeFrame.Days,
                        tann=factor)
    cerebro.addanalyzer(bt.analyzers.TradeAnalyzer, _name="trades")
    cerebro.addanalyzer(bt.analyzers.SQN, _name="sqn")
    log.info("backtest: %d bars %s .. %s (%d warm-up bars before)", len(traded),
             traded.index[0], traded.index[-1], start)
    strategy = cerebro.run()[0]
    probas = np.asarray(strategy.probas, dtype=np.float64)
    report = {
        "model": {"name": artifact.name, "version": artifact.version,
                  "path": str(artifact.path), "thresholds": artifact.thresholds.to_dict()},
        "data": {**dataset.info.to_dict(), "traded_first_bar": traded.index[0].isoformat(),
                 "traded_last_bar": traded.index[-1].isoformat(), "traded_bars": len(traded),
                 "warmup_bars": start},
        "config": asdict(config),
        "annualisation": {"periods_per_year": factor, "risk_free_rate": 0.0,
                          "sharpe_timeframe": "days"},
        "start_value": config.cash,
        "final_value": cerebro.broker.getvalue(),
        "bars_long_signal": int(np.nansum(probas >= artifact.thresholds.enter)),
        "analyzers": {a: strategy.analyzers.getbyname(a).get_analysis()
                      for a in ("sharpe", "drawdown", "returns", "trades", "sqn")},
    }
    report = _plain(report)
    out_dir.mkdir(parents=True, exist_ok=True)
    report_path = out_dir / "backtest.json"
    report_path.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    plot_path = _plot(cerebro, out_dir / "backtest.png") if config.plot else None
    return BacktestResult(report, report_path, plot_path, probas)


def holdout_start(dataset: Dataset, artifact: Artifact) -> int:
    """First bar no part of training saw: the model's holdout start on its own training data,
    otherwise (other symbol or source) the first bar after the feature warm-up."""
    trained = artifact.manifest["training_data"]
    if (trained["source"], trained["symbol"]) != (dataset.info.source, dataset.info.symbol):
        return artifact.spec.warmup
    first = pd.Timestamp(trained["holdout_first_bar"])
    return int(dataset.bars.index.searchsorted(first))


def _plot(cerebro: bt.Cerebro, path: Path) -> Path:
    """Save backtrader's own plot of the run to ``path``."""
    import matplotlib.pyplot as plt

    figures = cerebro.plot(iplot=False, volume=False, style="line")
    figure = figures[0][0]
    figure.set_size_inches(16, 9)
    figure.savefig(path, dpi=100)
    for group in figures:
        for fig in group:
            plt.close(fig)
    return path

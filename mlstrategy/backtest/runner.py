"""Backtest wiring: the trained model drives ``MLStrategy`` through backtrader's Cerebro.

By default the model's P(up) of every bar is computed once by the batch engine
(``inference.batch_probas``) and rides into backtrader as the feed's ``p_up`` line; the
strategy reads it instead of computing it, through the same decision and order code as live.
``streaming=True`` computes it bar by bar instead (features streamed, trees evaluated by the
Numba evaluator), exactly as a live bot does; a test proves both give the same P(up) at every
bar and the same orders. Orders fill at the next bar's open. Observers (which cost per bar) are
added only when a plot is asked for, backtrader's analyzers (measured at 7-35 µs a bar or
trade each in ``benchmarks/bench_backtest.py``) only when asked for; the equity curve is
recorded by the strategy and the statistics are numpy over it (``report``).
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd

from datafeeds.bt.compat import bt
from datafeeds.bt.dates import date2num
from datafeeds.bt.feed import NumpyData
from mlstrategy.backtest.plots import OBSERVERS
from mlstrategy.backtest.spans import Span, trading_span
from mlstrategy.errors import MLStrategyError
from mlstrategy.registry.artifact import Artifact
from mlstrategy.research.dataset import Dataset, DatasetInfo
from mlstrategy.trading.engine import EngineRun, run_engine
from mlstrategy.trading.inference import batch_probas
from mlstrategy.trading.strategy import MLStrategy, paper_broker
from mlstrategy.trading.strategy_params import StrategyParams

log = logging.getLogger(__name__)
ANALYZERS = {"trades": bt.analyzers.TradeAnalyzer, "sqn": bt.analyzers.SQN,
             "drawdown": bt.analyzers.DrawDown, "sharpe": bt.analyzers.SharpeRatio,
             "returns": bt.analyzers.Returns}


@dataclass(frozen=True)
class BacktestConfig:
    """Broker, span and reporting settings of a backtest."""

    start: int | None = None  # first bar traded; None: the first bar the model never saw
    allow_in_sample: bool = False
    strategy: StrategyParams = field(default_factory=StrategyParams)  # with the costs
    streaming: bool = False  # P(up) bar by bar (as live) instead of the precomputed line
    plot: bool = True  # backtrader's own plot (the backtrader engine only)
    analyzers: bool = False  # also run backtrader's analyzers (their results in the report)
    engine: str = "backtrader"  # or "numba": the trading engine, trade for trade the same
    periods_per_year: float | None = None  # None: as observed in the traded bars
    trials: int = 1  # configurations tried on these bars, when no trial ledger is given

    def for_model(self, artifact: Artifact) -> BacktestConfig:
        """This configuration with the commission resolved for ``artifact`` (its training
        cost unless one was given)."""
        return replace(self, strategy=self.strategy.costed(artifact.training_cost))


@dataclass(frozen=True)
class EngineStrategy:
    """What a report reads of ``MLStrategy`` after a run, when the trading engine ran it: the
    same fills and trades, as columns (``report.fills_frame`` and ``trades_frame`` read both)."""

    values: np.ndarray  # portfolio value after each bar
    executions: pd.DataFrame  # every fill: bt time, data, size, price, value, fee
    trades: pd.DataFrame  # closed round trips, the columns of ``MLStrategy.trades``
    refused: list[dict]  # entries refused for cash at the fill, with the reason
    enter: float
    exit: float
    probas: np.ndarray
    analyzers: tuple = ()

    @classmethod
    def of(cls, run: EngineRun, bars: pd.DataFrame, name: str, enter: float, exit_: float,
           probas: np.ndarray) -> EngineStrategy:
        """``run`` over ``bars`` (a feed called ``name``) in ``MLStrategy``'s terms, its
        numbers in backtrader's arithmetic (``Trade.update``)."""
        ns = bars.index.as_unit("ns").asi8
        when = date2num(ns)
        sizes, prices, fees = run.fill_sizes, run.fill_prices, run.fill_fees
        executions = pd.DataFrame({"time": when[run.fill_bars], "data": name, "size": sizes,
                                   "price": prices, "value": np.abs(sizes) * prices,
                                   "fee": fees})
        a, b = run.round_trips()
        size = sizes[a]
        entry = (0.0 + size * prices[a]) / size
        pnl = size * (prices[b] - entry) * 1.0
        paid = 0.0 + fees[a] + fees[b]
        trades = pd.DataFrame({
            "data": name, "entry_time": when[run.fill_bars[a]],
            "exit_time": when[run.fill_bars[b]],
            "side": np.where(size > 0, "long", "short"), "size": np.abs(size),
            "entry_price": entry, "exit_price": entry + pnl / size, "fees": paid,
            "pnl": pnl, "pnl_net": pnl - paid,
            "bars_held": (run.fill_bars[b] - run.fill_bars[a]).astype(np.int64)})
        refused = [{"time": pd.Timestamp(ns[b]).isoformat(), "data": name,
                    "side": "buy" if size > 0 else "sell", "size": abs(size),
                    "status": "Margin", "reason": "not enough cash at the fill price"}
                   for b, size in zip(run.refused_bars, run.refused_sizes, strict=True)]
        return cls(run.values, executions, trades, refused, enter, exit_, probas)


@dataclass(frozen=True)
class Simulation:
    """What a run produced (Cerebro's or the trading engine's), before any reporting."""

    strategy: MLStrategy | EngineStrategy
    cerebro: bt.Cerebro | None  # None: the trading engine ran it
    bars: pd.DataFrame  # the traded bars
    span: Span
    timeframe: str
    info: DatasetInfo  # the whole dataset the span was taken from
    open_positions: list[tuple[float, float]]  # (size, last close) of each feed at the end


def simulate(dataset: Dataset, artifact: Artifact, config: BacktestConfig, *,
             lines: dict[str, np.ndarray] | None = None) -> Simulation:
    """Run the backtest of ``artifact`` on ``dataset`` through Cerebro.

    ``lines`` (one value per traded bar) replace the model's own P(up): ``p_up`` and, when
    given, ``p_enter``/``p_exit`` thresholds (a walk-forward's windows).

    Raises
    ------
    MLStrategyError
        When the span to trade is empty or in-sample without ``allow_in_sample``.
    """
    config = config.for_model(artifact)
    span = trading_span(dataset, artifact, start=config.start,
                        allow_in_sample=config.allow_in_sample)
    bars = dataset.bars
    traded = bars.iloc[span.start:]
    timeframe = dataset.timeframe
    if config.engine == "numba":
        return _simulate_numba(dataset, artifact, config, span, lines)
    if lines is not None:
        extra = lines
    else:
        extra = {} if config.streaming else \
            {"p_up": batch_probas(bars, artifact, dataset.others)[span.start:]}
    feed = NumpyData.from_frame(traded, timeframe=None if timeframe == "unknown" else timeframe,
                                name=dataset.info.symbol, extra=extra)
    # quicknotify: order notifications go straight to the strategy (same order, less work)
    cerebro = bt.Cerebro(stdstats=False, quicknotify=True)
    cerebro.adddata(feed)
    if config.plot:  # observers cost per bar: only for the plot
        for observer in OBSERVERS:
            cerebro.addobserver(observer)
    cerebro.addstrategy(MLStrategy, model=artifact,
                        history=bars.iloc[:span.start] if config.streaming else None,
                        others=dataset.others,
                        **config.strategy.options())
    cerebro.setbroker(paper_broker(config.strategy))
    if config.analyzers:  # each costs per bar or per trade; the report computes its own
        days = traded.index.normalize().nunique()
        years = (traded.index[-1] - traded.index[0]).days / 365.25 or 1.0
        daily = {"timeframe": bt.TimeFrame.Days, "compression": 1}
        settings = {"sharpe": {**daily, "riskfreerate": 0.0, "annualize": True,
                               "factor": round(days / years)},  # trading days a year seen
                    "returns": {**daily, "tann": round(days / years)}}
        for name, analyzer in ANALYZERS.items():
            cerebro.addanalyzer(analyzer, _name=name, **settings.get(name, {}))
    log.info("backtest: %d bars %s .. %s (%d bars before warm the features)", len(traded),
             traded.index[0], traded.index[-1], span.start)
    strategy = cerebro.run()[0]
    held = [(strategy.getposition(data).size, float(data.close[0])) for data in strategy.datas]
    return Simulation(strategy, cerebro, traded, span, timeframe, dataset.info, held)


def _simulate_numba(dataset: Dataset, artifact: Artifact, config: BacktestConfig, span: Span,
                    lines: dict[str, np.ndarray] | None) -> Simulation:
    """``simulate`` by the trading engine (``mlstrategy.trading.engine``): the same fills, refusals
    and values as the Cerebro run, without backtrader."""
    if config.streaming or config.analyzers:
        raise MLStrategyError("--streaming and --analyzers run inside backtrader; drop them "
                              "or use --engine backtrader")
    traded = dataset.bars.iloc[span.start:]
    lines = lines or {"p_up": batch_probas(dataset.bars, artifact, dataset.others)[span.start:]}
    params = config.strategy
    enter = artifact.thresholds.enter if params.enter is None else params.enter
    exit_ = artifact.thresholds.exit if params.exit is None else params.exit
    run = run_engine(traded, lines["p_up"], params, enter=lines.get("p_enter", enter),
                     exit_=lines.get("p_exit", exit_), cash=config.strategy.cash,
                     commission=config.strategy.commission, slippage=config.strategy.slippage,
                     borrow_rate=config.strategy.borrow_rate)
    log.info("backtest (trading engine): %d bars %s .. %s (%d bars before warm the "
             "features)", len(traded), traded.index[0], traded.index[-1], span.start)
    strategy = EngineStrategy.of(run, traded, dataset.info.symbol, enter, exit_,
                                 np.asarray(lines["p_up"]))
    return Simulation(strategy, None, traded, span, dataset.timeframe, dataset.info,
                      [(run.position, float(traded["close"].iloc[-1]))])


def probas_of(simulation: Simulation) -> np.ndarray:
    """P(up) the strategy acted on at every traded bar."""
    return np.asarray(simulation.strategy.probas, dtype=np.float64)

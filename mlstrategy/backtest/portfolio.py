"""The backtest of a portfolio: every market in one Cerebro, one pot of cash, the account's
limits, and the bot's order of decisions.

It is the bot's run without the exchange: one ``MLStrategy`` with a feed per market (its own
model, P(up) precomputed by the batch engine, its own stake), markets whose bars close together
decided in the file's order, and the account's ``RiskGuard`` (open positions, exposure, the
day's loss, position size) in front of every order as the bot's session puts it, so a
``replay`` of the same file and bars makes the same decisions. It starts where a replay does:
at the latest of the markets' first bars their models never saw (``portfolio_start``).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from datafeeds.bt.compat import bt
from datafeeds.bt.feed import NumpyData
from datafeeds.timeframes import timeframe_delta
from mlstrategy.backtest.spans import trading_span
from mlstrategy.backtest.stats import observed_periods_per_year, performance
from mlstrategy.errors import ConfigError
from mlstrategy.live.risk import MemoryLedger, RiskGuard, RiskLimits, open_book
from mlstrategy.registry.artifact import Artifact
from mlstrategy.research.dataset import Dataset
from mlstrategy.trading.engine import buy_and_hold, exit_cost
from mlstrategy.trading.inference import SignalEngine, batch_probas
from mlstrategy.trading.strategy import ENTER, MLStrategy, paper_broker
from mlstrategy.trading.strategy_params import StrategyParams


@dataclass(frozen=True)
class PortfolioMarket:
    """One market of a portfolio backtest."""

    name: str
    dataset: Dataset
    artifact: Artifact
    stake: float | None = None  # fraction of the account's value per entry


def portfolio_start(markets: list[PortfolioMarket], history: int) -> pd.Timestamp:
    """The first bar a portfolio trades: for each market the first bar its model never saw,
    at least ``history`` bars in (the bot's warm-up), and the latest of those."""
    starts = []
    for m in markets:
        bars = m.dataset.bars
        first = max(trading_span(m.dataset, m.artifact).start, min(history, len(bars) - 1))
        starts.append(bars.index[first])
    return max(starts)


class AccountGate:
    """A backtest's session for one market: the account's ``RiskGuard`` in front of its
    orders, as the bot's ``LiveSession`` puts it (every bar is LIVE, nothing is journaled)."""

    other_bars = None  # a backtest's other markets' bars come with its data

    def __init__(self, guard: RiskGuard, bar_ms: int) -> None:
        self.guard = guard
        self.bar_ms = bar_ms

    def begin(self, strategy: MLStrategy, data: bt.feeds.DataBase) -> None:
        """Nothing to restore."""

    def engine_for_bar(self, engine: SignalEngine, bar_ns: int) -> SignalEngine:
        return engine

    def steer(self, target: int, current: int) -> int:
        """No operator in a backtest: the model's target."""
        return target

    def review(self, strategy: MLStrategy, data: bt.feeds.DataBase, bar_ns: int, proba: float,
               target: int, intent: str | None, size: float) -> float:
        """The size the guard lets through (the bar's close sets the day's loss first)."""
        self.guard.on_bar(bar_ns // 1_000_000 + self.bar_ms, strategy.broker.getvalue())
        if intent is None or not size > 0:
            return 0.0
        verdict = self.guard.review(entering=intent == ENTER, size=size,
                                    price=float(data.close[0]),
                                    position=strategy.getposition(data).size, feed_live=True,
                                    book=open_book(strategy, data))
        return verdict.size

    def on_order(self, strategy: MLStrategy, order: bt.Order, fills: list[dict]) -> None:
        """Fills are the strategy's own record."""

    def on_data_status(self, status: str) -> None:
        """A backtest's feed is always there."""

    def finish(self, strategy: MLStrategy) -> None:
        """Nothing to close."""


@dataclass(frozen=True)
class PortfolioBacktest:
    """What a portfolio backtest did: the strategy (fills, trades, decisions) and its
    report (the portfolio, the equal-weight basket, each market)."""

    strategy: MLStrategy
    start: pd.Timestamp
    report: dict


def run_portfolio_backtest(markets: list[PortfolioMarket], params: StrategyParams,
                           limits: RiskLimits, start: pd.Timestamp) -> PortfolioBacktest:
    """Trade ``markets`` from ``start`` to the end of their bars in one Cerebro.

    Raises
    ------
    ConfigError
        Markets of different bar sizes, or no bar to trade after ``start``.
    """
    timeframes = {m.dataset.timeframe for m in markets}
    if len(timeframes) > 1:
        raise ConfigError("a portfolio backtest trades one bar size; the markets have "
                          f"{', '.join(sorted(timeframes))}")
    timeframe = timeframes.pop()
    params = params.costed(markets[0].artifact.training_cost)
    cerebro = bt.Cerebro(stdstats=False, quicknotify=True)
    traded = {}
    for m in markets:
        bars = m.dataset.bars
        first = int(bars.index.searchsorted(start))
        if first >= len(bars):
            raise ConfigError(f"market {m.name!r} has no bar at or after {start}")
        traded[m.name] = bars.iloc[first:]
        p_up = batch_probas(bars, m.artifact)[first:]
        cerebro.adddata(NumpyData.from_frame(traded[m.name], timeframe=timeframe,
                                             name=m.name, extra={"p_up": p_up}))
    guard = RiskGuard(limits, MemoryLedger())
    bar_ms = int(timeframe_delta(timeframe).total_seconds() * 1000)
    cerebro.addstrategy(MLStrategy, models={m.name: m.artifact for m in markets},
                        sessions={m.name: AccountGate(guard, bar_ms) for m in markets},
                        stakes={m.name: m.stake for m in markets if m.stake is not None},
                        **params.options())
    cerebro.setbroker(paper_broker(params))
    strategy = cerebro.run()[0]
    return PortfolioBacktest(strategy, start, _report(strategy, markets, traded, params))


def _report(strategy: MLStrategy, markets: list[PortfolioMarket],
            traded: dict[str, pd.DataFrame], params: StrategyParams) -> dict:
    """The portfolio against an equal-weight basket bought at the first fill, and each
    market's trades; open positions are marked net of what closing them would cost."""
    cash, commission = params.cash, float(params.commission)
    values = np.asarray(strategy.values, dtype=np.float64)
    held = sum(exit_cost(strategy.getposition(d).size, float(d.close[0]), commission,
                         params.slippage) for d in strategy.datas)
    values[-1] -= held
    index = max(traded.values(), key=len).index
    per_year = observed_periods_per_year(index)
    basket = sum(buy_and_hold(bars, cash / len(markets), 1.0, commission, params.slippage)[-1]
                 for bars in traded.values())
    trades = pd.DataFrame(strategy.trades)
    rows = {}
    for m in markets:
        mine = trades[trades["data"] == m.name] if len(trades) else trades
        bars = traded[m.name]
        hold = buy_and_hold(bars, cash, 1.0, commission, params.slippage)
        rows[m.name] = {
            "symbol": m.dataset.info.symbol, "model": m.artifact.ref,
            "first_bar": bars.index[0].isoformat(), "last_bar": bars.index[-1].isoformat(),
            "bars": len(bars), "trades": len(mine),
            "pnl_net": float(mine["pnl_net"].sum()) if len(mine) else 0.0,
            "fees": float(mine["fees"].sum()) if len(mine) else 0.0,
            "decisions": sum(d[1] == m.name for d in strategy.decisions),
            "open_position": float(strategy.getposition(strategy.getdatabyname(m.name)).size),
            "buy_and_hold_return": float(hold[-1] / cash - 1.0)}
    return {
        "start": index[0].isoformat(), "end": index[-1].isoformat(),
        "cash": cash, "final_value": float(values[-1]),
        "portfolio": performance(values, cash, per_year),
        "basket_return": float(basket / cash - 1.0),
        "refused": strategy.refused, "markets": rows,
    }

"""Validation metrics: how well P(up) ranks bars (ML) and what trading on it earns after costs,
each beside the baseline a useless model would reach.

ML: balanced accuracy, precision, recall, F1, ROC AUC, log loss, Brier; the baseline always
predicts the majority class (with the base rate as its probability).

Trading: the trading engine (``mlstrategy.trading.engine``: ``MLStrategy``'s default rules,
trade for trade the Cerebro run's) over each test stretch of bars, with the backtest's cash, sizing,
commission and final mark, and the report's statistics, so a holdout's figures are the
``backtest``'s on the same bars. Baselines on the same bars and costs: buy-and-hold (the
report's) and always-long (take the label's trade on every bar, paying a round trip each time).
"""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
from sklearn.metrics import (
    balanced_accuracy_score,
    brier_score_loss,
    f1_score,
    log_loss,
    precision_score,
    recall_score,
    roc_auc_score,
)

from mlstrategy.backtest.stats import bar_returns, observed_periods_per_year, performance
from mlstrategy.trading.engine import buy_and_hold, run_engine
from mlstrategy.trading.strategy_params import CASH, StrategyParams


def classification_metrics(y: np.ndarray, proba: np.ndarray) -> dict[str, float]:
    """ML metrics of P(up) ``proba`` for 0/1 labels ``y``, and the majority-class baseline."""
    y_int = y.astype(np.int64)
    both = 0 < y_int.sum() < len(y_int)
    base = float(y_int.mean()) if len(y_int) else math.nan
    predicted = (proba >= 0.5).astype(np.int64)
    clipped = np.clip(proba, 1e-12, 1 - 1e-12)
    constant = np.full(len(y_int), min(max(base, 1e-12), 1 - 1e-12))
    return {
        "rows": int(len(y_int)),
        "base_rate": base,
        "auc": float(roc_auc_score(y_int, proba)) if both else math.nan,
        "balanced_accuracy": float(balanced_accuracy_score(y_int, predicted)) if both
        else math.nan,
        "accuracy": float((predicted == y_int).mean()) if len(y_int) else math.nan,
        "precision": float(precision_score(y_int, predicted, zero_division=0.0)),
        "recall": float(recall_score(y_int, predicted, zero_division=0.0)),
        "f1": float(f1_score(y_int, predicted, zero_division=0.0)),
        "log_loss": float(log_loss(y_int, clipped, labels=[0, 1])) if len(y_int) else math.nan,
        "brier": float(brier_score_loss(y_int, proba)) if len(y_int) else math.nan,
        "baseline_accuracy": max(base, 1 - base) if len(y_int) else math.nan,
        "baseline_log_loss": float(log_loss(y_int, constant, labels=[0, 1]))
        if both else math.nan,
        "baseline_brier": float(brier_score_loss(y_int, constant)) if len(y_int) else math.nan,
    }


def signal_metrics(proba: np.ndarray, forward: np.ndarray, enter: float) -> dict[str, float]:
    """What the bars with ``proba >= enter`` earned per signal (the label's trade, no costs)."""
    signal = proba >= enter
    if not signal.any():
        return {"signals": 0, "signal_rate": 0.0, "hit_rate": math.nan,
                "mean_return_bps": math.nan, "edge_bps": math.nan}
    chosen = forward[signal]
    return {"signals": int(signal.sum()), "signal_rate": float(signal.mean()),
            "hit_rate": float((chosen > 0).mean()),
            "mean_return_bps": float(chosen.mean() * 1e4),
            "edge_bps": float((chosen.mean() - forward.mean()) * 1e4)}


def trading_metrics(bars: pd.DataFrame, blocks: list[tuple[int, int]],
                    probas: list[np.ndarray], forward: np.ndarray, *, enter: float,
                    exit_: float, cost: float, cash: float = CASH,
                    fraction: float = 0.95) -> dict[str, float]:
    """Trading P(up) over the bar ranges ``blocks`` (``[a, b)`` each, ``probas`` one array per
    block), with buy-and-hold and always-long beside it (see module doc).

    Each block starts flat with ``cash``; their per-bar returns are chained. One block's figures
    are exactly a backtest's of those bars with the same settings (annualised by the bars a
    year they hold); several blocks are annualised by the whole data's.
    """
    strat, hold, pnls = [], [], []
    for (a, b), proba in zip(blocks, probas, strict=True):
        stretch = bars.iloc[a:b]
        values, run = strategy_values(stretch, proba, enter=enter, exit_=exit_, cost=cost,
                                      cash=cash, fraction=fraction)
        strat.append(values)
        hold.append(buy_and_hold(stretch, cash, fraction, cost))
        pnls.append(run.trade_pnls)
    single = len(blocks) == 1
    ppy = observed_periods_per_year(bars.index[blocks[0][0]:blocks[0][1]] if single
                                    else bars.index)
    mine, held = (performance(_chained(curves, cash), cash, ppy) for curves in (strat, hold))
    pnl = np.concatenate(pnls) if pnls else np.empty(0)
    losses = -pnl[pnl <= 0].sum()
    always = np.exp(forward[~np.isnan(forward)]) - 1.0 - 2 * cost
    return {"return": mine["total_return"], "sharpe": mine["sharpe"],
            "max_drawdown": mine["max_drawdown"], "trades": int(len(pnl)),
            "trade_hit_rate": float((pnl > 0).mean()) if len(pnl) else math.nan,
            "profit_factor": float(pnl[pnl > 0].sum() / losses) if losses > 0 else math.nan,
            "buy_hold_return": held["total_return"], "buy_hold_sharpe": held["sharpe"],
            "buy_hold_max_drawdown": held["max_drawdown"],
            "always_long_mean_bps": float(always.mean() * 1e4) if len(always) else math.nan}


def strategy_values(stretch: pd.DataFrame, proba: np.ndarray, *, enter: float, exit_: float,
                    cost: float, cash: float = CASH, fraction: float = 0.95
                    ) -> tuple[np.ndarray, object]:
    """The strategy's value after each bar of ``stretch`` traded on ``proba`` (the last net of
    closing what is open, as a backtest marks it), and the engine's run."""
    run = run_engine(stretch, proba, StrategyParams(fraction=fraction), enter=enter,
                     exit_=exit_, cash=cash, commission=cost)
    return run.marked(float(stretch["close"].iloc[-1]), cost), run


def _chained(curves: list[np.ndarray], cash: float) -> np.ndarray:
    """One equity curve from stretches that each started at ``cash`` (the first as it is)."""
    if len(curves) == 1:
        return curves[0]
    returns = np.concatenate([bar_returns(c, cash) for c in curves])
    return cash * np.cumprod(1.0 + returns)

"""Validation metrics: how well P(up) ranks bars (ML) and what trading on it earns after costs,
each beside the baseline a useless model would reach.

ML: balanced accuracy, precision, recall, F1, ROC AUC, log loss, Brier; the baseline always
predicts the majority class (with the base rate as its probability).

Trading: long/flat on the test bars with the one decision rule of ``MLStrategy``
(``decision.decide``): decided on a bar's close, held from the next open to the open after,
``cost`` paid per side on every change. Baselines on the same bars and costs: buy-and-hold
(enter at the first open, hold) and always-long (take the label's trade on every bar, paying
a round trip each time).
"""
from __future__ import annotations

import math

import numpy as np
from sklearn.metrics import (
    balanced_accuracy_score,
    brier_score_loss,
    f1_score,
    log_loss,
    precision_score,
    recall_score,
    roc_auc_score,
)

from mlstrategy.decision import decide


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


def _curve_stats(returns: np.ndarray, periods_per_year: float) -> tuple[float, float, float]:
    """Total return, annualised Sharpe and max drawdown of per-bar simple returns."""
    if not len(returns):
        return math.nan, math.nan, math.nan
    equity = np.cumprod(1.0 + returns)
    std = returns.std(ddof=1) if len(returns) > 1 else 0.0
    sharpe = returns.mean() / std * math.sqrt(periods_per_year) if std > 0 else math.nan
    peak = np.maximum.accumulate(np.concatenate(([1.0], equity)))
    drawdown = float((1.0 - np.concatenate(([1.0], equity)) / peak).max())
    return float(equity[-1] - 1.0), float(sharpe), drawdown


def trading_metrics(proba: np.ndarray, opens: np.ndarray, forward: np.ndarray,
                    blocks: list[np.ndarray], *, enter: float, exit_: float, cost: float,
                    periods_per_year: float) -> dict[str, float]:
    """Long/flat trading on ``proba`` over the test ``blocks`` (row indices, contiguous each),
    with its buy-and-hold and always-long baselines (see module doc).

    ``proba``, ``forward`` are per test row in block order; ``opens`` are the opens of all bars.
    """
    strat, hold, wins, trades, offset = [], [], [], 0, 0
    for rows in blocks:
        p = proba[offset:offset + len(rows)]
        offset += len(rows)
        usable = rows[rows + 2 < len(opens)]
        step = opens[usable + 2] / opens[usable + 1] - 1.0  # next open to the open after
        position, entry_value, value = 0, 1.0, 1.0
        for i in range(len(usable)):
            target = decide(p[i], position, enter, exit_, False)
            paid = cost * abs(target - position)
            if target and not position:
                trades += 1
                entry_value = value
            elif position and not target:
                wins.append(value > entry_value)
            position = target
            r = position * step[i] - paid
            value *= 1.0 + r
            strat.append(r)
        if len(step):
            hold.append(np.concatenate(([step[0] - cost], step[1:])))
    total, sharpe, drawdown = _curve_stats(np.asarray(strat), periods_per_year)
    hold_total, hold_sharpe, hold_dd = _curve_stats(
        np.concatenate(hold) if hold else np.empty(0), periods_per_year)
    always = np.exp(forward[~np.isnan(forward)]) - 1.0 - 2 * cost
    return {"return": total, "sharpe": sharpe, "max_drawdown": drawdown, "trades": trades,
            "trade_hit_rate": float(np.mean(wins)) if wins else math.nan,
            "buy_hold_return": hold_total, "buy_hold_sharpe": hold_sharpe,
            "buy_hold_max_drawdown": hold_dd,
            "always_long_mean_bps": float(always.mean() * 1e4) if len(always) else math.nan}

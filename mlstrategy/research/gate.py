"""The sanity gate: results too good to be true, and models with no skill, are flagged.

Markets this liquid are nearly efficient: out-of-sample AUCs of 0.50-0.57 are what real
features give, and a net Sharpe above 3 after costs, year after year, is what a leak gives. A
result is flagged as too good when, on any fold or the holdout:

- the AUC is 0.75 or more, or the holdout's is far above every fold's;
- the hit rate is 0.8 or more over 100+ signals;
- the annualised net Sharpe is above ``max_sharpe`` (3.0);
- the profit factor of 20+ closed trades is above ``max_profit_factor`` (2.5);

or when any one feature alone predicts the label with an AUC of ``max_feature_auc`` (0.60) or
more (either way round) on the training rows: a column that knows the future. A holdout no
better than its baselines after costs (AUC not above 0.5, or a net Sharpe not above
buy-and-hold's) has no skill. Each flag names the number that fired. Flags go into the
manifest as ``suspicious``; a flagged model is never promoted automatically, and its
backtests and bot sessions say so first.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.stats import rankdata


@dataclass(frozen=True)
class GateLimits:
    """Where a result stops being believable."""

    max_auc: float = 0.75
    max_hit_rate: float = 0.8
    min_signals: int = 100  # signals before the hit rate counts
    holdout_margin: float = 0.1  # holdout AUC above the best fold's by this much
    max_sharpe: float = 3.0  # annualised, net of costs
    max_profit_factor: float = 2.5
    min_trades: int = 20  # closed trades before the profit factor counts
    max_feature_auc: float = 0.60  # one feature alone, on the training rows


def feature_aucs(x: np.ndarray, y: np.ndarray, names: list[str], *,
                 most_rows: int = 200_000) -> dict[str, float]:
    """How well each column alone ranks the 0/1 labels ``y``: ``max(AUC, 1 - AUC)`` over its
    non-NaN rows (evenly thinned to ``most_rows``), by the Mann-Whitney rank sum."""
    step = max(1, len(y) // most_rows)
    x, y = x[::step], y[::step]
    out = {}
    for j, name in enumerate(names):
        keep = ~np.isnan(x[:, j]) & ~np.isnan(y)
        labels = y[keep] > 0.5
        positives, negatives = int(labels.sum()), int((~labels).sum())
        if not positives or not negatives:
            continue
        ranks = rankdata(x[keep, j])
        auc = (ranks[labels].sum() - positives * (positives + 1) / 2) / (positives * negatives)
        out[name] = float(max(auc, 1.0 - auc))
    return out


def sanity_flags(folds: list[dict], holdout: dict, features: dict[str, float] | None = None,
                 limits: GateLimits = GateLimits()) -> list[str]:
    """Why these validation results cannot be trusted as they are (empty: nothing found).

    ``features`` are the single-feature AUCs on the training rows (``feature_aucs``).
    """
    flags = []
    aucs = [f["auc"] for f in folds if not _nan(f.get("auc"))]
    if any(a >= limits.max_auc for a in aucs):
        flags.append(f"too good: a fold AUC of {max(aucs):.3f} (>= {limits.max_auc}) on a "
                     "liquid market usually means the features or labels see the future")
    results = [*({"name": f"fold {k}", **f} for k, f in enumerate(folds, start=1)),
               {**holdout, "name": "holdout"}]
    for f in results:
        if f.get("signals", 0) >= limits.min_signals and not _nan(f.get("hit_rate")) and \
                f["hit_rate"] >= limits.max_hit_rate:
            flags.append(f"too good: hit rate {f['hit_rate']:.2f} over {f['signals']} "
                         f"signals ({f['name']}) (>= {limits.max_hit_rate})")
            break
    for f in results:
        if not _nan(f.get("sharpe")) and f["sharpe"] > limits.max_sharpe:
            flags.append(f"too good: annualised net Sharpe {f['sharpe']:.2f} ({f['name']}) "
                         f"(> {limits.max_sharpe})")
            break
    for f in results:
        if f.get("trades", 0) >= limits.min_trades and not _nan(f.get("profit_factor")) and \
                f["profit_factor"] > limits.max_profit_factor:
            flags.append(f"too good: profit factor {f['profit_factor']:.2f} over "
                         f"{f['trades']} trades ({f['name']}) (> {limits.max_profit_factor})")
            break
    leaks = sorted(((auc, name) for name, auc in (features or {}).items()
                    if auc >= limits.max_feature_auc), reverse=True)
    if leaks:
        named = ", ".join(f"{name} {auc:.3f}" for auc, name in leaks[:5])
        flags.append(f"too good: a single feature predicts the label alone on the training "
                     f"rows with AUC >= {limits.max_feature_auc} ({named}): it may see the "
                     "future")
    if aucs and not _nan(holdout.get("auc")) and \
            holdout["auc"] > max(aucs) + limits.holdout_margin:
        flags.append(f"too good: holdout AUC {holdout['auc']:.3f} is far above every fold "
                     f"(best {max(aucs):.3f})")
    if _nan(holdout.get("auc")) or holdout["auc"] <= 0.5:
        flags.append(f"no skill: holdout AUC {holdout.get('auc')} is not above 0.5")
    elif not _nan(holdout.get("sharpe")) and not _nan(holdout.get("buy_hold_sharpe")) and \
            holdout["sharpe"] <= holdout["buy_hold_sharpe"]:
        flags.append(f"no skill: holdout net Sharpe {holdout['sharpe']:.2f} is not above "
                     f"buy-and-hold's {holdout['buy_hold_sharpe']:.2f} after costs")
    return flags


def _nan(value: object) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))

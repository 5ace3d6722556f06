"""The sanity gate: results too good to be true, and models with no skill, are flagged.

Markets this liquid are nearly efficient: out-of-sample AUCs of 0.50-0.57 are what real
features give. A fold AUC of 0.75 or more, a hit rate of 0.8 or more over 100+ signals, or a
holdout far better than every fold almost always means a leak (a feature or label that sees the
future, overlapping rows), not an edge. The opposite is flagged too: a holdout no better than
its baselines after costs (AUC not above 0.5, or a net Sharpe not above buy-and-hold's) has no
skill. Flags go into the manifest as ``suspicious``; a flagged model is never promoted
automatically.
"""
from __future__ import annotations

import math

MAX_AUC = 0.75
MAX_HIT_RATE, MIN_SIGNALS = 0.8, 100
HOLDOUT_MARGIN = 0.1  # holdout AUC above the best fold's by this much


def sanity_flags(folds: list[dict], holdout: dict) -> list[str]:
    """Why these validation results cannot be trusted as they are (empty: nothing found)."""
    flags = []
    aucs = [f["auc"] for f in folds if not _nan(f.get("auc"))]
    if any(a >= MAX_AUC for a in aucs):
        flags.append(f"too good: a fold AUC of {max(aucs):.3f} (>= {MAX_AUC}) on a liquid "
                     "market usually means the features or labels see the future")
    for f in [*folds, holdout]:
        if f.get("signals", 0) >= MIN_SIGNALS and not _nan(f.get("hit_rate")) and \
                f["hit_rate"] >= MAX_HIT_RATE:
            flags.append(f"too good: hit rate {f['hit_rate']:.2f} over {f['signals']} "
                         f"signals ({f.get('name', 'holdout')}) (>= {MAX_HIT_RATE})")
            break
    if aucs and not _nan(holdout.get("auc")) and holdout["auc"] > max(aucs) + HOLDOUT_MARGIN:
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

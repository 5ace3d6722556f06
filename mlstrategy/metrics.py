"""Validation metrics: how well P(up) ranks bars (ML) and what acting on it would have earned.

Trading metrics use the label's own forward return (next open to open ``horizon`` bars later),
so they measure exactly the trade the strategy takes, before costs.
"""
from __future__ import annotations

import numpy as np
from sklearn.metrics import accuracy_score, brier_score_loss, log_loss, roc_auc_score


def classification_metrics(y: np.ndarray, proba: np.ndarray) -> dict[str, float]:
    """AUC, accuracy at 0.5, log loss, Brier score and base rate of 0/1 labels ``y``."""
    y_int = y.astype(np.int64)
    both_classes = 0 < y_int.sum() < len(y_int)
    return {
        "rows": int(len(y_int)),
        "base_rate": float(y_int.mean()),
        "auc": float(roc_auc_score(y_int, proba)) if both_classes else float("nan"),
        "accuracy": float(accuracy_score(y_int, proba >= 0.5)),
        "log_loss": float(log_loss(y_int, proba, labels=[0, 1])),
        "brier": float(brier_score_loss(y_int, proba)),
    }


def signal_metrics(proba: np.ndarray, forward: np.ndarray, enter: float) -> dict[str, float]:
    """What going long on ``proba >= enter`` earned per signal, against all bars.

    ``edge_bps`` is the mean forward log return of signalled bars minus that of every bar, in
    basis points: the value the model adds over always being long.
    """
    signal = proba >= enter
    all_mean = float(forward.mean())
    if not signal.any():
        return {"signals": 0, "signal_rate": 0.0, "hit_rate": float("nan"),
                "mean_return_bps": float("nan"), "edge_bps": float("nan")}
    chosen = forward[signal]
    return {
        "signals": int(signal.sum()),
        "signal_rate": float(signal.mean()),
        "hit_rate": float((chosen > 0).mean()),
        "mean_return_bps": float(chosen.mean() * 1e4),
        "edge_bps": float((chosen.mean() - all_mean) * 1e4),
    }

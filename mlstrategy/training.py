"""Training: features + labels -> purged walk-forward validation -> final model -> manifest.

The last ``test_fraction`` of bars is a holdout that no fold, threshold or model ever sees in
training; the backtest runs on exactly that span. Inside the training span, expanding-window
walk-forward folds (purged by the label overlap) give per-fold metrics and out-of-fold
probabilities, from which the decision thresholds are chosen.
"""
from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

import numpy as np

from features_numba import KERNEL_VERSION, FeatureSpec, compute_features
from mlstrategy.artifact import Thresholds
from mlstrategy.dataset import Dataset
from mlstrategy.errors import MLStrategyError
from mlstrategy.labels import LabelSpec, make_labels
from mlstrategy.metrics import classification_metrics, signal_metrics
from mlstrategy.models.catboost import CatBoostModel, CatBoostParams
from mlstrategy.splits import Fold, holdout_split, walk_forward_folds

log = logging.getLogger(__name__)
Progress = Callable[[str], None]


@dataclass(frozen=True)
class TrainConfig:
    """Everything that decides a training run besides the data and the features."""

    label: LabelSpec = field(default_factory=LabelSpec)
    catboost: CatBoostParams = field(default_factory=CatBoostParams)
    test_fraction: float = 0.2
    folds: int = 4
    enter_quantile: float = 0.7


@dataclass(frozen=True)
class TrainResult:
    """A trained model, how it validated, and the manifest fields describing it."""

    model: CatBoostModel
    thresholds: Thresholds
    holdout: Fold
    fold_metrics: list[dict]
    holdout_metrics: dict
    manifest: dict


def _usable(rows: np.ndarray, y: np.ndarray, warmup: int) -> np.ndarray:
    """Rows past the feature warm-up whose label is known."""
    rows = rows[rows >= warmup]
    return rows[~np.isnan(y[rows])]


def _evaluate(model: CatBoostModel, x: np.ndarray, y: np.ndarray, fwd: np.ndarray,
              rows: np.ndarray, enter: float) -> tuple[dict, np.ndarray]:
    proba = model.predict_proba(x[rows])
    metrics = classification_metrics(y[rows], proba)
    metrics.update(signal_metrics(proba, fwd[rows], enter))
    return metrics, proba


def train(dataset: Dataset, spec: FeatureSpec, config: TrainConfig,
          progress: Progress | None = None) -> TrainResult:
    """Train and validate a model on ``dataset`` with features ``spec``.

    Raises
    ------
    MLStrategyError
        If the dataset is too short for the warm-up, folds and holdout asked for.
    """
    say = progress or log.info
    bars = dataset.bars
    n = len(bars)
    needed = spec.warmup + config.label.overlap + 50 * (config.folds + 2)
    if n < needed:
        raise MLStrategyError(
            f"{n} bars are too few: features need {spec.warmup} bars of warm-up and "
            f"{config.folds} folds plus a holdout need more; give at least {needed} bars"
        )
    say(f"features: {len(spec)} columns over {n} bars (warm-up {spec.warmup})")
    x = compute_features(bars, spec)
    y, fwd = make_labels(bars["open"].to_numpy(), config.label)
    holdout = holdout_split(n, config.test_fraction, config.label.overlap)
    folds = walk_forward_folds(holdout.train_end, config.folds, config.label.overlap,
                               min_train=spec.warmup + (holdout.train_end - spec.warmup) // 3)
    fold_metrics: list[dict] = []
    oof: list[np.ndarray] = []
    for k, fold in enumerate(folds, start=1):
        train_rows = _usable(fold.train_index(), y, spec.warmup)
        test_rows = _usable(fold.test_index(), y, spec.warmup)
        say(f"fold {k}/{len(folds)}: train {len(train_rows)} rows, test {len(test_rows)} rows")
        model = CatBoostModel.fit(x[train_rows], y[train_rows], config.catboost)
        metrics, proba = _evaluate(model, x, y, fwd, test_rows, enter=0.5)
        fold_metrics.append({"fold": k, **asdict(fold), **metrics})
        oof.append(proba)
    oof_all = np.concatenate(oof)
    thresholds = Thresholds(enter=float(np.quantile(oof_all, config.enter_quantile)),
                            exit=float(np.quantile(oof_all, 0.5)))
    train_rows = _usable(holdout.train_index(), y, spec.warmup)
    say(f"final model: train {len(train_rows)} rows; holdout from bar {holdout.test_start}")
    model = CatBoostModel.fit(x[train_rows], y[train_rows], config.catboost)
    holdout_rows = _usable(holdout.test_index(), y, spec.warmup)
    holdout_metrics, _ = _evaluate(model, x, y, fwd, holdout_rows, thresholds.enter)
    manifest = {
        "features": {"spec": spec.to_dict(), "hash": spec.hash, "names": list(spec.names),
                     "kernel_version": KERNEL_VERSION, "warmup": spec.warmup},
        "label": config.label.to_dict(),
        "thresholds": {**thresholds.to_dict(), "enter_quantile": config.enter_quantile,
                       "rule": f"enter at the {config.enter_quantile:.0%} quantile of "
                               "out-of-fold P(up), exit below its median"},
        "learner": {"kind": "catboost", "params": asdict(config.catboost)},
        "training_data": {
            **dataset.info.to_dict(),
            "train_bars": [0, holdout.train_end],
            "holdout_bars": [holdout.test_start, holdout.test_end],
            "holdout_first_bar": bars.index[holdout.test_start].isoformat(),
        },
        "validation": {
            "scheme": "expanding walk-forward, purged by the label overlap, plus a final "
                      "chronological holdout",
            "purge_bars": config.label.overlap,
            "test_fraction": config.test_fraction,
            "folds": fold_metrics,
            "holdout": holdout_metrics,
        },
    }
    return TrainResult(model, thresholds, holdout, fold_metrics, holdout_metrics, manifest)

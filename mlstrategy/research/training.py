"""Training: features + labels -> purged validation -> final model -> manifest draft.

The last ``test_fraction`` of bars is a holdout that no fold, threshold or model ever sees in
training; the backtest runs on exactly that span. Inside the training span the validation
scheme (``--cv``: expanding or rolling walk-forward, combinatorial purged k-fold) gives per-fold
ML and trading metrics beside their baselines, and out-of-fold probabilities from which the
decision thresholds are chosen. Every split is purged by each label's actual reach and
embargoed after each test block. The sanity gate then flags results too good to be true, or
without skill.
"""
from __future__ import annotations

import logging
import os
from dataclasses import asdict, dataclass, field
from typing import Protocol

import numpy as np
import pandas as pd

from datafeeds.fingerprint import fingerprint_set
from features_numba import KERNEL_VERSION, FeatureSpec, compute_features
from mlstrategy.backtest.stats import bar_returns
from mlstrategy.errors import MLStrategyError
from mlstrategy.models import model_class, parse_params
from mlstrategy.registry.artifact import Thresholds
from mlstrategy.research import drift_reference
from mlstrategy.research.dataset import Dataset
from mlstrategy.research.gate import GateLimits, feature_aucs, sanity_flags
from mlstrategy.research.labels import Labels, LabelSpec, labels_of
from mlstrategy.research.metrics import (
    classification_metrics,
    signal_metrics,
    strategy_values,
    trading_metrics,
)
from mlstrategy.research.splits import Fold, clean_train, holdout_split, splits
from mlstrategy.trading.strategy_params import CASH, COMMISSION

log = logging.getLogger(__name__)


class Progress(Protocol):
    """What training reports while it runs (a plain object: it crosses process boundaries)."""

    def __call__(self, message: str) -> None:
        """A stage worth a line."""

    def advance(self, done: int, total: int) -> None:
        """``done`` of ``total`` validation fits finished (a progress bar)."""


class LogProgress:
    """Progress into the log (the default)."""

    def __call__(self, message: str) -> None:
        log.info(message)

    def advance(self, done: int, total: int) -> None:
        """Nothing: the stage lines say it."""


@dataclass(frozen=True)
class TrainConfig:
    """Everything that decides a training run besides the data and the features."""

    label: LabelSpec = field(default_factory=LabelSpec)
    model: str = "catboost"
    params: object | None = None  # the kind's params dataclass; None: its defaults
    cv: str = "walk_forward"  # walk_forward | rolling | cpcv
    folds: int = 4  # folds; for cpcv the number of groups
    test_groups: int = 2  # cpcv: groups tested together
    rolling_window: int | None = None  # rolling: training bars per fold (default a third)
    embargo: int | None = None  # bars after each test block left out; None: label reach
    test_fraction: float = 0.2
    enter_quantile: float = 0.7
    cost: float = COMMISSION  # per side, for the trading metrics
    early_stopping_fraction: float = 0.15  # later slice of training rows that early stops
    threads: int = field(default_factory=lambda: os.cpu_count() or 1)
    gate: GateLimits = field(default_factory=GateLimits)

    def model_params(self) -> object:
        """The params dataclass of ``model`` (its defaults unless given)."""
        return self.params if self.params is not None else parse_params(self.model, {})


@dataclass(frozen=True)
class TrainResult:
    """A trained model, how it validated, and the manifest fields describing it."""

    model: object
    thresholds: Thresholds
    holdout: Fold
    fold_metrics: list[dict]
    holdout_metrics: dict
    manifest: dict
    importance: np.ndarray
    flags: list[str]
    training_bars: np.ndarray  # fingerprints of the bars before the holdout (the artifact's)


def _fit(config: TrainConfig, x: np.ndarray, labels: Labels, rows: np.ndarray) -> object:
    """Fit the configured model on ``rows``; kinds that early-stop watch the last slice of
    them (chronological, purged from the rows it is fit on)."""
    cls = model_class(config.model)
    params = config.model_params()
    y = labels.y
    stops = getattr(params, "early_stopping_rounds", 0) and config.early_stopping_fraction > 0
    if stops and len(rows) > 200:
        cut = rows[int(len(rows) * (1 - config.early_stopping_fraction))]
        watch = rows[rows >= cut]
        fit_rows = clean_train(rows[rows < cut], ((int(cut), int(rows[-1]) + 1),),
                               labels.reach, 0)
        return cls.fit(x[fit_rows], y[fit_rows], params, threads=config.threads,
                       eval_set=(x[watch], y[watch]))
    return cls.fit(x[rows], y[rows], params, threads=config.threads)


def _thresholds(proba: np.ndarray, quantile: float) -> tuple[float, float]:
    return float(np.quantile(proba, quantile)), float(np.quantile(proba, 0.5))


def _evaluate(model: object, x: np.ndarray, labels: Labels, test: np.ndarray,
              blocks: list[tuple[int, int]], bars: pd.DataFrame, enter: float, exit_: float,
              config: TrainConfig) -> tuple[dict, np.ndarray]:
    """ML metrics on the labelled ``test`` rows; trading metrics over every bar of the
    ``blocks`` (a trade needs no label), as a backtest trades them."""
    proba = model.predict_proba(x[test])
    metrics = classification_metrics(labels.y[test], proba)
    metrics.update(signal_metrics(proba, labels.forward[test], enter))
    metrics.update(trading_metrics(bars, blocks, [model.predict_proba(x[a:b]) for a, b in blocks],
                                   labels.forward[test], enter=enter, exit_=exit_,
                                   cost=config.cost))
    metrics.update({"enter": enter, "exit": exit_})
    return metrics, proba


def train(dataset: Dataset, spec: FeatureSpec, config: TrainConfig,
          progress: Progress | None = None) -> TrainResult:
    """Train and validate a model on ``dataset`` with features ``spec``.

    Raises
    ------
    MLStrategyError
        If the dataset is too short for the warm-up, folds and holdout asked for, or the
        validation scheme cannot be built.
    """
    say = progress or LogProgress()
    spec = spec.on_bar(dataset.timeframe)
    bars = dataset.bars
    n = len(bars)
    needed = spec.warmup + config.label.overlap + 50 * (config.folds + 2)
    if n < needed:
        raise MLStrategyError(
            f"{n} bars are too few: features need {spec.warmup} bars of warm-up and "
            f"{config.folds} folds plus a holdout need more; give at least {needed} bars")
    say(f"features: {len(spec)} columns over {n} bars (warm-up {spec.warmup})")
    x = compute_features(bars, spec, others=dataset.others, threads=config.threads)
    labels = labels_of(bars, config.label)
    embargo = config.label.overlap if config.embargo is None else config.embargo
    holdout = holdout_split(n, config.test_fraction, config.label.overlap)
    usable = np.flatnonzero((np.arange(n) >= spec.warmup) & ~np.isnan(labels.y))
    block = ((holdout.test_start, n),)
    train_rows = clean_train(usable[usable < holdout.test_start], block, labels.reach, 0)
    holdout_rows = usable[usable >= holdout.test_start]
    try:
        cv = splits(config.cv, train_rows, labels.reach, folds=config.folds, embargo=embargo,
                    min_train=len(train_rows) // 3,
                    rolling_window=config.rolling_window or len(train_rows) // 3,
                    test_groups=config.test_groups)
    except ValueError as exc:
        raise MLStrategyError(str(exc)) from None
    fold_metrics, oof = [], []
    for k, split in enumerate(cv, start=1):
        say(f"fold {k}/{len(cv)} ({split.name}): train {len(split.train)} rows, test "
            f"{len(split.test)} rows")
        model = _fit(config, x, labels, split.train)
        enter, exit_ = _thresholds(model.predict_proba(x[split.train]), config.enter_quantile)
        metrics, proba = _evaluate(model, x, labels, split.test, list(split.blocks), bars,
                                   enter, exit_, config)
        fold_metrics.append({"fold": k, "name": split.name, "train_rows": len(split.train),
                             "test_blocks": [list(b) for b in split.blocks], **metrics})
        oof.append(proba)
        say.advance(k, len(cv))
    enter, exit_ = _thresholds(np.concatenate(oof), config.enter_quantile)
    thresholds = Thresholds(enter=enter, exit=exit_)
    say(f"final model: train {len(train_rows)} rows; holdout from bar {holdout.test_start}")
    model = _fit(config, x, labels, train_rows)
    holdout_metrics, holdout_proba = _evaluate(model, x, labels, holdout_rows,
                                               [(holdout.test_start, n)], bars, enter, exit_,
                                               config)
    values, _ = strategy_values(bars.iloc[holdout.test_start:],
                                model.predict_proba(x[holdout.test_start:]), enter=enter,
                                exit_=exit_, cost=config.cost)
    returns = bar_returns(values, CASH)
    reference = drift_reference.build(x[train_rows], holdout_proba, labels.y[holdout_rows],
                                      returns)
    singles = feature_aucs(x[train_rows], labels.y[train_rows], list(spec.names))
    flags = sanity_flags(fold_metrics, holdout_metrics, singles, config.gate)
    importance = model.feature_importance(x[train_rows], labels.y[train_rows])
    manifest = {
        "features": {"spec": spec.to_dict(), "hash": spec.hash, "names": list(spec.names),
                     "kernel_version": KERNEL_VERSION, "warmup": spec.warmup,
                     "inputs": list(spec.inputs)},
        "label": config.label.to_dict(),
        "thresholds": {**thresholds.to_dict(), "enter_quantile": config.enter_quantile,
                       "rule": f"enter at the {config.enter_quantile:.0%} quantile of "
                               "out-of-fold P(up), exit below its median"},
        "learner": {"kind": config.model, "params": asdict(config.model_params())},
        "training_data": {
            **dataset.info.to_dict(),
            "train_bars": [0, holdout.train_end],
            "holdout_bars": [holdout.test_start, holdout.test_end],
            "holdout_first_bar": bars.index[holdout.test_start].isoformat(),
            "inputs": dataset.others_info(),
        },
        "validation": {
            "scheme": config.cv, "folds_asked": config.folds,
            "test_groups": config.test_groups if config.cv == "cpcv" else None,
            "purge": "each label's reach", "purge_bars": config.label.overlap,
            "embargo_bars": embargo, "test_fraction": config.test_fraction,
            "cost_per_side": config.cost, "folds": fold_metrics, "holdout": holdout_metrics,
            "gate": asdict(config.gate), "single_feature_auc": dict(
                sorted(singles.items(), key=lambda item: -item[1])),
        },
        "suspicious": flags,
        # the drift reference; save_artifact moves the holdout's returns to their own file
        "drift": {**reference.to_dict(), "returns": returns},
    }
    return TrainResult(model, thresholds, holdout, fold_metrics, holdout_metrics, manifest,
                       importance, flags, fingerprint_set(bars.iloc[:holdout.test_start]))

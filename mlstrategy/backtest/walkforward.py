"""Walk-forward: the honest test of the whole workflow (train, deploy, retrain, replace).

The bars after the model's training span are cut into windows of ``every`` bars. Each window is
traded by a model trained, with the settings of the given model's manifest, only on the bars
before the window (its own validation, thresholds and holdout included), so no window is
traded by a model that saw it. The windows' P(up) and thresholds ride into one Cerebro run as
feed lines, so the position carries over from window to window as it would in production when
a model is replaced, and the equity curve is one stitched curve. The report adds a table of
the windows.
"""
from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

import numpy as np

from features_numba import compute_features
from mlstrategy.backtest.report import (
    BacktestResult,
    bt_ns,
    fills_frame,
    marked_values,
    write_report,
)
from mlstrategy.backtest.runner import BacktestConfig, Simulation, simulate
from mlstrategy.backtest.spans import trading_span
from mlstrategy.models import parse_params
from mlstrategy.registry.artifact import Artifact
from mlstrategy.research.dataset import Dataset
from mlstrategy.research.labels import labels_of
from mlstrategy.research.metrics import classification_metrics
from mlstrategy.research.training import TrainConfig, train

log = logging.getLogger(__name__)


def training_config(artifact: Artifact) -> TrainConfig:
    """The training settings recorded in ``artifact``'s manifest."""
    manifest = artifact.manifest
    validation = manifest.validation
    return TrainConfig(label=manifest.label,
                       model=manifest.learner.kind,
                       params=parse_params(manifest.learner.kind, manifest.learner.params),
                       cv=validation.scheme, folds=validation.folds_asked,
                       test_groups=validation.test_groups or 2,
                       embargo=validation.embargo_bars, test_fraction=validation.test_fraction,
                       cost=artifact.training_cost,
                       enter_quantile=manifest.thresholds.enter_quantile or 0.7)


def run_walk_forward(dataset: Dataset, artifact: Artifact, config: BacktestConfig,
                     out_dir: Path, *, every: int, ledger: Path | None = None,
                     progress: Callable[[str], None] | None = None) -> BacktestResult:
    """Retrain every ``every`` bars and trade each window with its own model (module doc)."""
    say = progress or log.info
    config = config.for_model(artifact)
    # windows start where the given model's span starts (with its in-sample checks)
    start = trading_span(dataset, artifact, start=config.start,
                         allow_in_sample=config.allow_in_sample).start
    n = len(dataset.bars)
    settings = training_config(artifact)
    x = compute_features(dataset.bars, artifact.spec, others=dataset.others)
    y = labels_of(dataset.bars, settings.label).y
    lines = {name: np.full(n - start, np.nan) for name in ("p_up", "p_enter", "p_exit")}
    windows = []
    bounds = list(range(start, n, every))
    for k, first in enumerate(bounds, start=1):
        last = min(first + every, n)
        say(f"window {k}/{len(bounds)}: training on bars 0 .. {first - 1}, trading "
            f"{first} .. {last - 1}")
        result = train(dataset.slice(0, first), artifact.spec, settings)
        proba = result.model.predict_proba(x[first:last])
        lines["p_up"][first - start:last - start] = proba
        lines["p_enter"][first - start:last - start] = result.thresholds.enter
        lines["p_exit"][first - start:last - start] = result.thresholds.exit
        labelled = ~np.isnan(y[first:last])
        metrics = classification_metrics(y[first:last][labelled], proba[labelled]) \
            if labelled.sum() > 1 else {}
        windows.append({"window": k, "trained_on": [0, first], "bars": [first, last],
                        "first_bar": dataset.bars.index[first].isoformat(),
                        "enter": result.thresholds.enter, "exit": result.thresholds.exit,
                        "holdout_auc": result.holdout_metrics.get("auc"),
                        "window_auc": metrics.get("auc")})
    sim = simulate(dataset, artifact, config, lines=lines)
    values = marked_values(sim, config)[0]
    for window in windows:
        lo, hi = window["bars"][0] - start, window["bars"][1] - start
        before = config.strategy.cash if lo == 0 else values[lo - 1]
        window["return"] = float(values[hi - 1] / before - 1.0)
        window["fills"] = sum(lo <= i < hi for i in _fill_bars(sim))
    return write_report(sim, artifact, config, out_dir,
                        extra={"walk_forward": {"every": every, "windows": windows,
                                                "settings": "the manifest's training "
                                                            "settings, retrained per window"}},
                        ledger=ledger, kind="walk_forward", retrain_every=every)


def _fill_bars(sim: Simulation) -> list[int]:
    """Index in the traded bars of every fill."""
    times = sim.bars.index.as_unit("ns").asi8
    return np.searchsorted(times, bt_ns(fills_frame(sim.strategy)["time"].to_numpy())).tolist()

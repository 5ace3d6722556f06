"""What the drift watch adds to a live bar: the model's P(up) alone beside P(up) plus the
drift figures (feature bins, PSI, labels, calibration over a 500-bar window).

Run: ``python -m pytest benchmarks/bench_drift.py --benchmark-only``. Each round decides 1,000
real BTC/USD hours with a model trained on the sample's earlier hours, after 800 untimed ones
(the features warm, the drift window full: its one bootstrap of the return band, about 0.1 s,
is not in the per-bar figure); group ``live bar: P(up), then drift``. The audit's hash of each
feature vector is timed with the drift.
"""
from __future__ import annotations

import numpy as np
import pytest

from features_numba import FeatureSpec
from mlstrategy.live.drift import DriftMonitor
from mlstrategy.live.drift_settings import DriftLimits
from mlstrategy.models.catboost import CatBoostParams
from mlstrategy.registry.artifact import load_artifact, save_artifact
from mlstrategy.research.dataset import sample_dataset
from mlstrategy.research.training import TrainConfig, train
from mlstrategy.trading.inference import SignalEngine, row_hash

ROUND_BARS = 1_000
WARM_BARS = 800  # features warm and a full 500-bar drift window before the timed bars


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    dataset = sample_dataset("btcusd-1h")
    result = train(dataset, FeatureSpec.default(),
                   TrainConfig(params=CatBoostParams(iterations=100, early_stopping_rounds=0),
                               folds=2))
    artifact = load_artifact(save_artifact(tmp_path_factory.mktemp("models"), "btc",
                                           result.model, result.manifest,
                                           training_bars=result.training_bars))
    bars = dataset.bars.iloc[-(ROUND_BARS + WARM_BARS):]
    rows = [(*bar, ts.value) for ts, bar in zip(bars.index, bars.to_numpy(), strict=True)]
    return artifact, rows


def _decide(engine: SignalEngine, monitor: DriftMonitor | None, rows: list[tuple]) -> None:
    for row in rows:
        proba = engine.on_bar(*row)
        if monitor is not None:
            row_hash(engine.row)
            monitor.update(engine.row, proba, row[:4], 100_000.0)


@pytest.mark.parametrize("drift", [False, True], ids=["P(up) only", "P(up) + drift"])
def test_live_bar(benchmark, setup, drift):
    artifact, rows = setup

    def warmed() -> tuple[tuple, dict]:
        """A fresh engine and a full drift window (its return band bootstrapped once)."""
        engine = SignalEngine(artifact)
        monitor = DriftMonitor(artifact, DriftLimits()) if drift else None
        _decide(engine, monitor, rows[:WARM_BARS])
        return (engine, monitor, rows[WARM_BARS:]), {}

    benchmark.pedantic(_decide, setup=warmed, rounds=5)
    benchmark.group = "live bar: P(up), then drift"
    benchmark.extra_info["bars"] = ROUND_BARS
    benchmark.extra_info["us_per_bar"] = round(benchmark.stats.stats.median / ROUND_BARS * 1e6, 1)
    assert np.isfinite(benchmark.stats.stats.median)

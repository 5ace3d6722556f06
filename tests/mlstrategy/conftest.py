"""A small real model, trained once per test session on the embedded BTC/USD sample."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from features_numba import FeatureSpec
from mlstrategy.models.catboost import CatBoostParams
from mlstrategy.registry.artifact import Artifact, load_artifact, save_artifact
from mlstrategy.registry.production import ModelRef, promote
from mlstrategy.research.dataset import Dataset, sample_dataset
from mlstrategy.research.labels import LabelSpec
from mlstrategy.research.training import TrainConfig, TrainResult, train

# a small model that trades often (no early stopping): quick to train, plenty of orders
FAST = TrainConfig(label=LabelSpec(horizon=4),
                   params=CatBoostParams(iterations=40, depth=4, early_stopping_rounds=0),
                   test_fraction=0.2, folds=2)


@dataclass(frozen=True)
class Trained:
    dataset: Dataset
    result: TrainResult
    models_dir: Path
    artifact: Artifact


@pytest.fixture(scope="session")
def btc_dataset() -> Dataset:
    return sample_dataset("btcusd-1h")


@pytest.fixture(scope="session")
def trained(btc_dataset: Dataset, tmp_path_factory: pytest.TempPathFactory) -> Trained:
    models_dir = tmp_path_factory.mktemp("models")
    result = train(btc_dataset, FeatureSpec.default(), FAST)
    path = save_artifact(models_dir, "btc", result.model, result.manifest,
                         training_bars=result.training_bars, importance=result.importance)
    promote(models_dir, ModelRef("btc", path.name))
    return Trained(btc_dataset, result, models_dir, load_artifact(path))

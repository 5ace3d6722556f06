from __future__ import annotations

import numpy as np
import pytest

from features_numba import FeatureSpec
from mlstrategy.artifact import save_artifact, sha256_file
from mlstrategy.errors import MLStrategyError
from mlstrategy.labels import LabelSpec
from mlstrategy.models.catboost import CatBoostParams
from mlstrategy.training import TrainConfig, train


def test_manifest_describes_data_features_label_and_validation(trained):
    m = trained.result.manifest
    spec = FeatureSpec.default()
    assert m["features"]["hash"] == spec.hash
    assert m["features"]["names"] == list(spec.names)
    assert m["label"]["horizon"] == 4
    info = trained.dataset.info
    assert m["training_data"]["sha256"] == info.sha256
    assert m["training_data"]["rows"] == len(trained.dataset.bars) == 20111
    folds = m["validation"]["folds"]
    assert len(folds) == 2
    for fold in folds:
        assert 0.0 <= fold["auc"] <= 1.0
        assert fold["train_end"] + m["validation"]["purge_bars"] == fold["test_start"]
    assert m["thresholds"]["enter"] >= m["thresholds"]["exit"]


def test_no_training_label_reaches_the_holdout(trained):
    m = trained.result.manifest
    train_end = m["training_data"]["train_bars"][1]
    holdout_start = m["training_data"]["holdout_bars"][0]
    # last training row is train_end - 1; its label reads up to train_end - 1 + overlap
    assert train_end - 1 + LabelSpec(horizon=4).overlap < holdout_start


def test_same_data_and_seed_give_a_byte_identical_model(btc_dataset, tmp_path):
    small = btc_dataset.slice(0, 3000)
    config = TrainConfig(catboost=CatBoostParams(iterations=20, depth=3, seed=7), folds=1)
    paths = []
    for name in ("a", "b"):
        result = train(small, FeatureSpec.default(), config)
        paths.append(save_artifact(tmp_path, name, result.model, result.manifest))
    assert sha256_file(paths[0] / "model.cbm") == sha256_file(paths[1] / "model.cbm")


def test_too_little_data_is_refused_with_the_minimum(btc_dataset):
    with pytest.raises(MLStrategyError, match="too few"):
        train(btc_dataset.slice(0, 100), FeatureSpec.default(), TrainConfig())


def test_holdout_probabilities_are_real_predictions(trained):
    bars = trained.dataset.bars
    start = trained.result.holdout.test_start
    from features_numba import compute_features

    x = compute_features(bars, trained.artifact.spec)[start:]
    proba = trained.artifact.model.predict_proba(x)
    assert proba.shape == (len(bars) - start,)
    assert np.all((proba > 0) & (proba < 1))
    assert proba.std() > 0  # the model does distinguish bars

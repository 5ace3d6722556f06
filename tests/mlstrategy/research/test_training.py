"""Training: every model kind, reproducible files, honest validation, the sanity gate."""
from __future__ import annotations

import numpy as np
import pytest

from features_numba import FeatureSpec, compute_features
from mlstrategy.errors import MLStrategyError
from mlstrategy.models import KINDS, parse_params
from mlstrategy.registry.artifact import load_artifact, save_artifact, sha256_file
from mlstrategy.research.labels import LabelSpec
from mlstrategy.research.training import TrainConfig, train

SMALL = {"catboost": {"iterations": "30", "depth": "3"},
         "random_forest": {"n_estimators": "20", "max_depth": "5"},
         "hist_gb": {"max_iter": "30"},
         "mlp": {"hidden": "16", "max_iter": "30"},
         "xgboost": {"n_estimators": "30", "max_depth": "3"}}


def test_manifest_describes_data_features_label_and_validation(trained):
    m = trained.artifact.manifest
    spec = FeatureSpec.default()
    assert m.features.hash == spec.hash and m.features.names == list(spec.names)
    assert m.label.horizon == 4 and m.learner.kind == "catboost"
    assert m.training_data.sha256 == trained.dataset.info.sha256
    assert m.training_data.rows == len(trained.dataset.bars) == 20111
    folds = m.validation.folds
    assert len(folds) == 2
    for fold in folds:
        assert 0.0 <= fold["auc"] <= 1.0
        for key in ("balanced_accuracy", "precision", "recall", "f1", "log_loss", "brier",
                    "baseline_log_loss", "return", "sharpe", "max_drawdown", "trades",
                    "trade_hit_rate", "buy_hold_return", "always_long_mean_bps"):
            assert key in fold
    assert m.thresholds.enter >= m.thresholds.exit
    for name in ("metrics.json", "report.md", "feature_importance.png"):
        assert (trained.artifact.path / name).is_file()


def test_no_training_label_reaches_the_holdout(trained):
    m = trained.artifact.manifest
    train_end, holdout_start = m.training_data.train_bars[1], m.training_data.holdout_bars[0]
    assert train_end - 1 + LabelSpec(horizon=4).overlap < holdout_start


@pytest.mark.parametrize("kind", KINDS)
def test_every_model_kind_is_reproducible_and_predicts_the_same_row_by_row(kind, btc_dataset,
                                                                           tmp_path):
    pytest.importorskip("xgboost") if kind == "xgboost" else None
    small = btc_dataset.slice(0, 3000)
    config = TrainConfig(model=kind, params=parse_params(kind, {**SMALL[kind], "seed": "7"}),
                         folds=2, threads=2)
    paths = []
    for name in ("a", "b"):
        result = train(small, FeatureSpec.default(), config)
        paths.append(save_artifact(tmp_path, name, result.model, result.manifest,
                                   training_bars=result.training_bars))
    files = [p / load_artifact(p).manifest.model_file for p in paths]
    assert sha256_file(files[0]) == sha256_file(files[1])  # same data + seed: same bytes
    artifact = load_artifact(paths[0])
    assert artifact.manifest.learner.kind == kind
    x = compute_features(small.bars, artifact.spec)[artifact.spec.warmup:]
    batch = artifact.model.predict_proba(x)
    rows = np.array([artifact.model.predict_row(r) for r in x[::50]])
    if kind == "mlp":
        np.testing.assert_allclose(rows, batch[::50], rtol=0, atol=1e-12)
    else:
        np.testing.assert_array_equal(rows, batch[::50])


def test_too_little_data_is_refused_with_the_minimum(btc_dataset):
    with pytest.raises(MLStrategyError, match="too few"):
        train(btc_dataset.slice(0, 100), FeatureSpec.default(), TrainConfig())


def test_a_leaky_feature_is_flagged_and_an_honest_one_is_not(trained, btc_dataset):
    from mlstrategy.research.gate import sanity_flags

    honest = trained.artifact.manifest
    assert not [f for f in honest.suspicious if f.startswith("too good")]
    folds = [{"auc": 0.99, "hit_rate": 0.97, "signals": 500}]
    assert any(f.startswith("too good") for f in sanity_flags(folds, {"auc": 0.99}))


@pytest.mark.parametrize("cv", ["rolling", "cpcv"])
def test_other_validation_schemes_train(cv, btc_dataset):
    config = TrainConfig(params=parse_params("catboost", SMALL["catboost"]), cv=cv, folds=4,
                         label=LabelSpec(kind="triple_barrier", horizon=12))
    result = train(btc_dataset.slice(0, 4000), FeatureSpec.default(), config)
    assert len(result.fold_metrics) == (6 if cv == "cpcv" else 4)
    assert result.manifest["validation"]["scheme"] == cv

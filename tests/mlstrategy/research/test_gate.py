"""The sanity gate catches a real leak: a volume column that knows the next tradeable bar's
direction, built from the embedded ORCL daily bars. The model is flagged (and the flags name
the numbers that fired and the leaking column), never promoted, and its backtest says so first.
"""
from __future__ import annotations

import numpy as np
import pytest

from datafeeds import load_sample
from features_numba import FeatureSpec
from mlstrategy.backtest.report import run_backtest, summary_lines
from mlstrategy.backtest.runner import BacktestConfig
from mlstrategy.registry.artifact import load_artifact, save_artifact
from mlstrategy.registry.production import production_ref
from mlstrategy.registry.promotion import promote_if_better
from mlstrategy.research.dataset import describe
from mlstrategy.research.gate import feature_aucs
from mlstrategy.research.training import train
from tests.mlstrategy.conftest import FAST


@pytest.fixture(scope="module")
def canary(tmp_path_factory):
    """ORCL daily with a volume that is high when open[t+2] > open[t+1] (plus noise)."""
    bars = load_sample("orcl-1d").copy()
    opens = bars["open"].to_numpy()
    up = np.zeros(len(opens))
    up[:-2] = opens[2:] > opens[1:-1]
    bars["volume"] = 1e6 * (1 + up) * np.random.default_rng(0).uniform(0.9, 1.1, len(opens))
    dataset = describe(bars, "canary", "ORCL", "1d")
    result = train(dataset, FeatureSpec.default(), FAST)
    models = tmp_path_factory.mktemp("models")
    path = save_artifact(models, "canary", result.model, result.manifest,
                         training_bars=result.training_bars)
    return dataset, result, models, load_artifact(path)


def test_the_next_bar_canary_is_flagged_with_the_numbers_that_fired(canary):
    _, result, _, _ = canary
    flags = " | ".join(result.flags)
    assert "annualised net Sharpe" in flags and "(> 3.0)" in flags
    assert "profit factor" in flags and "(> 2.5)" in flags
    single = [f for f in result.flags if "single feature" in f]
    assert single and "volume_zscore_24" in single[0]  # the leaking column, named
    assert result.manifest["suspicious"] == result.flags


def test_a_flagged_model_is_never_promoted(canary):
    dataset, _, models, artifact = canary
    decision = promote_if_better(models, dataset, artifact)
    assert not decision.promoted and "flagged by the sanity gate" in decision.reason
    assert production_ref(models, artifact.name) is None


def test_a_flagged_models_backtest_says_so_first(canary, tmp_path):
    dataset, result, _, artifact = canary
    report = run_backtest(dataset, artifact, BacktestConfig(plot=False), tmp_path).report
    assert report["model_flags"] == result.flags
    assert report["warnings"][:len(result.flags)] == [
        f"MODEL FLAGGED by the sanity gate: {flag}" for flag in result.flags]
    assert summary_lines(report)[0].startswith(f"MODEL FLAGGED by the sanity gate "
                                               f"({len(result.flags)})")


def test_the_single_feature_check_ranks_either_way_round():
    rng = np.random.default_rng(1)
    y = rng.integers(0, 2, 5000).astype(float)
    x = np.column_stack([rng.normal(size=5000), -y + rng.normal(scale=0.5, size=5000)])
    x[:100, 1] = np.nan  # warm-up rows are left out, not counted as ties
    aucs = feature_aucs(x, y, ["noise", "inverse"])
    assert abs(aucs["noise"] - 0.5) < 0.03
    assert aucs["inverse"] > 0.9

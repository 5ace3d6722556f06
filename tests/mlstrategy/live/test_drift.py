"""Drift: the training reference in the artifact, the live figures, and the guard.

The regime change is real data on both sides: the BTC/USD hourly sample's holdout, then
EUR/USD futures minutes (CME 6E, ``../shared/data``) rescaled to continue from the last BTC
close and served as the next hours. Their features leave the training deciles within a few
hundred bars, and far fewer of the FX bars go up than the model expects (many minutes do not
move at all), so its calibration breaks too.
"""
from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from datafeeds.loaders import load_file
from features_numba import FeatureSpec, compute_features
from mlstrategy.cli import cli
from mlstrategy.errors import ModelError
from mlstrategy.live.drift import DriftMonitor
from mlstrategy.live.drift_settings import DRIFT_META, DriftLimits
from mlstrategy.live.journal import Journal
from mlstrategy.models.catboost import CatBoostParams
from mlstrategy.registry.artifact import HOLDOUT_RETURNS, load_artifact, save_artifact
from mlstrategy.registry.production import (
    ModelRef,
    artifact_dir,
    history,
    production_ref,
    promote,
)
from mlstrategy.research.drift_reference import psi
from mlstrategy.research.training import train
from mlstrategy.trading.inference import batch_probas
from tests.mlstrategy.conftest import FAST

BTC_BARS = 1300  # of the sample's holdout, then the FX minutes
FX_FIRST, FX_BARS = 28_600, 700
HISTORY = 600
# documented in mlstrategy.live.drift: the default limits breach within these bars of a change
FEATURES_WITHIN, CALIBRATION_WITHIN = 250, 500
HOUR_MS = 3_600_000


@pytest.fixture(scope="module")
def spliced(shared_data, trained, tmp_path_factory):
    """The sample's holdout bars, then the FX minutes as hours: a CSV and the splice's time."""
    start = trained.result.holdout.test_start
    btc = trained.dataset.bars.iloc[start:start + BTC_BARS]
    fx = load_file(shared_data / "nautilus_trader" /
                   "6EH4.XCME_1min_bars_20240101_20240131.csv").iloc[FX_FIRST:FX_FIRST + FX_BARS]
    fx = fx.copy()
    fx[["open", "high", "low", "close"]] *= btc["close"].iloc[-1] / fx["open"].iloc[0]
    fx["volume"] *= btc["volume"].mean() / fx["volume"].mean()
    fx.index = btc.index[-1] + pd.Timedelta(hours=1) * np.arange(1, FX_BARS + 1)
    bars = pd.concat([btc, fx])
    path = tmp_path_factory.mktemp("spliced") / "btc_then_fx.csv"
    bars.rename_axis("datetime").to_csv(path)
    return path, bars, int(fx.index[0].value // 1_000_000)


def _replay(models_dir, data, journal, *extra: str) -> None:
    result = CliRunner().invoke(cli, [
        "bot", "replay", "--data", str(data), "--symbol", "BTC/USD", "--timeframe", "1h",
        "--models-dir", str(models_dir), "--model", "btc", "--broker", "paper",
        "--start", str(HISTORY), "--history", str(HISTORY), "--journal", str(journal),
        "--quiet", *extra])
    assert result.exit_code == 0, result.output


def test_the_artifact_keeps_its_training_reference(trained, tmp_path):
    art = trained.artifact
    assert art.drift is not None and len(art.drift.edges) == len(art.spec)
    assert all(abs(sum(shares) - 1.0) < 1e-9 for shares in art.drift.expected)
    assert len(art.holdout_returns) == art.drift.returns_bars == \
        len(trained.dataset.bars) - trained.result.holdout.test_start
    # the holdout's returns compound to the holdout backtest's return
    total = np.prod(1.0 + art.holdout_returns) - 1.0
    assert total == pytest.approx(art.manifest.validation.holdout["return"], rel=1e-9)
    np.save(art.path / HOLDOUT_RETURNS, art.holdout_returns * 2, allow_pickle=False)
    try:
        with pytest.raises(ModelError, match="holdout_returns.npy: sha256 differs"):
            load_artifact(art.path)
    finally:
        np.save(art.path / HOLDOUT_RETURNS, art.holdout_returns, allow_pickle=False)


def test_the_live_psi_is_the_windows_psi_against_the_training_deciles(trained):
    art = trained.artifact
    bars = trained.dataset.bars.iloc[-900:]
    x, p = compute_features(bars, art.spec), batch_probas(bars, art)
    limits = DriftLimits(window=300)
    monitor = DriftMonitor(art, limits)
    figures = [monitor.update(x[i], p[i], tuple(bars.iloc[i, :4]), None)
               for i in range(len(bars)) if not np.isnan(p[i])]
    last = figures[-1]
    window = x[-limits.window:]
    binned = art.drift.bin_rows(window)
    by_feature = [psi(np.bincount(binned[:, f], minlength=len(shares)), np.array(shares))
                  for f, shares in enumerate(art.drift.expected)]
    assert last.psi_median == pytest.approx(np.median(by_feature), rel=1e-9)
    assert last.psi_max == pytest.approx(max(by_feature), rel=1e-9)
    ranked = sorted(zip(by_feature, art.spec.names, strict=True), reverse=True)[:5]
    assert list(last.psi_top) == [name for _, name in ranked]
    assert sum(b["rows"] for b in last.reliability) == last.labelled
    assert figures[limits.window - 2] is None and figures[limits.window - 1] is not None


def test_a_live_loss_below_the_holdouts_band_breaches_and_an_ordinary_one_does_not(trained):
    art = trained.artifact
    bars = trained.dataset.bars.iloc[-700:]
    x, p = compute_features(bars, art.spec), batch_probas(bars, art)
    limits = DriftLimits(window=300)
    for end, breached in ((0.1, True), (1.0, False)):  # a 90% loss over 700 bars, or none
        equity = 100_000.0 * np.geomspace(1.0, end, len(bars)) if end != 1.0 else \
            np.full(len(bars), 100_000.0)
        monitor = DriftMonitor(art, limits)
        figures = [monitor.update(x[i], p[i], tuple(bars.iloc[i, :4]), equity[i])
                   for i in range(len(bars)) if not np.isnan(p[i])][-1]
        assert figures.live_bars == limits.window
        assert figures.live_return == pytest.approx(equity[-1] / equity[-301] - 1.0)
        assert figures.band_low < 0 < figures.band_high
        assert ("return" in figures.breaches) is breached


def test_a_regime_change_breaches_psi_then_calibration_within_the_documented_bars(
        spliced, trained, tmp_path):
    data, bars, splice_ms = spliced
    journal = tmp_path / "warn.sqlite"
    _replay(trained.models_dir, data, journal)
    read = Journal.read(journal)
    events = [detail for _, _, _, detail in read.events("drift")]
    figures = json.loads(read.meta()[DRIFT_META])
    read.close()
    assert events, "no drift breach journaled"
    assert all(e["bar_ms"] >= splice_ms for e in events)  # no alarm on the BTC bars
    breached_at = {new: e["bar_ms"] for e in events for new in e["new"]}
    assert (breached_at["features"] - splice_ms) // HOUR_MS <= FEATURES_WITHIN
    assert (breached_at["calibration"] - splice_ms) // HOUR_MS <= CALIBRATION_WITHIN
    assert events[0]["action"] == "warn"
    assert figures["psi_median"] > DriftLimits.psi and "features" in figures["breaches"]
    status = CliRunner().invoke(cli, ["bot", "status", "--journal", str(journal)])
    assert "BREACHED: features" in status.output and "last drift breach at" in status.output


@pytest.fixture(scope="module")
def two_champions(trained, tmp_path_factory):
    """A models directory where champion A (the session's model) was replaced by B."""
    models_dir = tmp_path_factory.mktemp("champions")
    other = train(trained.dataset, FeatureSpec.default(),
                  replace(FAST, params=CatBoostParams(iterations=30, depth=3,
                                                      early_stopping_rounds=0)))
    refs = []
    for version, result in (("20240101T000000Z", trained.result),
                            ("20240102T000000Z", other)):
        save_artifact(models_dir, "btc", result.model, {**result.manifest, "version": version},
                      training_bars=result.training_bars)
        refs.append(ModelRef("btc", version))
        promote(models_dir, refs[-1])
    return models_dir, refs


def test_on_drift_rollback_restores_the_champion_which_trades_the_next_bar(
        spliced, two_champions, tmp_path):
    data, bars, splice_ms = spliced
    models_dir, (champion, challenger) = two_champions
    journal = tmp_path / "rollback.sqlite"
    _replay(models_dir, data, journal, "--on-drift", "rollback")
    read = Journal.read(journal)
    (breach, *later) = [d for _, _, _, d in read.events("drift")]
    (rolled,) = [d for _, _, _, d in read.events("drift_rollback")]
    (swap,) = [d for _, _, _, d in read.events("model_swap")]
    signals = read.signals()
    decided = read.audit_rows(signals["session"].iloc[-1]).set_index("time_ms")
    read.close()
    assert breach["action"] == "rollback" and breach["bar_ms"] >= splice_ms
    assert rolled == {"bar_ms": breach["bar_ms"], "old": str(challenger), "new": str(champion)}
    assert swap["old"] == str(challenger) and swap["new"] == str(champion)
    assert production_ref(models_dir, "btc") == champion
    assert history(models_dir, "btc")[-1]["action"] == "rollback"
    # the restored champion decides from the bar after the breach on
    by_model = signals.set_index("time_ms")["model"]
    assert by_model[breach["bar_ms"]] == str(challenger)
    assert set(by_model[by_model.index > breach["bar_ms"]]) == {str(champion)}
    assert all(not e["action"].startswith("rollback") for e in later)  # never back and forth
    # with the champion's own thresholds (no --enter/--exit given)
    thresholds = {str(ref): load_artifact(artifact_dir(models_dir, ref)).thresholds
                  for ref in (champion, challenger)}
    for time_ms, row in decided.iterrows():
        assert (row["enter"], row["exit"]) == (thresholds[row["model"]].enter,
                                               thresholds[row["model"]].exit), time_ms
    audit = CliRunner().invoke(cli, ["audit", "--journal", str(journal), "--models-dir",
                                     str(models_dir)])
    assert audit.exit_code == 0 and "all equal, bit for bit" in audit.output, audit.output


def test_the_samples_replay_raises_no_false_alarm(trained, tmp_path):
    journal = tmp_path / "sample.sqlite"
    result = CliRunner().invoke(cli, [
        "bot", "replay", "--models-dir", str(trained.models_dir), "--model", "btc",
        "--broker", "paper", "--journal", str(journal), "--quiet"])
    assert result.exit_code == 0, result.output
    read = Journal.read(journal)
    figures = json.loads(read.meta()[DRIFT_META])
    assert read.events("drift") == []
    live = len(read.signals()) - (read.signals()["action"] == "history").sum()
    read.close()
    assert live == len(trained.dataset.bars) - trained.result.holdout.test_start
    assert figures["breaches"] == [] and figures["live_bars"] == DriftLimits.window

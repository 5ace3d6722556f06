"""Several markets in one registry: a production model per market, ``train`` and the cycle
writing one layout, and a registry of the earlier layout migrated on first use."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

from datafeeds import load_sample
from mlstrategy.registry.artifact import INDEX, load_artifact, read_index, save_artifact
from mlstrategy.registry.production import (
    HISTORY,
    PRODUCTION,
    ModelRef,
    history,
    list_models,
    production_ref,
    productions,
    promote,
)
from mlstrategy.research.trials import LEDGER


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "mlstrategy.cli", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=600)


def test_two_markets_by_train_and_cycle_each_have_their_production_model(tmp_path):
    orcl = load_sample("orcl-1d")
    orcl.iloc[:-400].to_csv(tmp_path / "orcl_early.csv", index_label="datetime")
    fast = ("--param", "iterations=30", "--param", "depth=4", "--folds", "2")
    btc = _cli("train", "--sample", "btcusd-1h", *fast, cwd=tmp_path)
    assert btc.returncode == 0, btc.stderr
    early = _cli("train", "--data", "orcl_early.csv", "--symbol", "ORCL", "--name", "orcl-1d",
                 "--horizon", "5", *fast, cwd=tmp_path)
    assert early.returncode == 0, early.stderr
    models = tmp_path / "models"
    for market in ("btcusd-1h", "orcl-1d"):  # the gate may keep the sample models out
        if production_ref(models, market) is None:
            promote(models, list_models(models, market)[-1], action="forced", reason="test")
    [first_orcl] = history(models, "orcl-1d")[:1]
    assert first_orcl["old"] is None and "BTC" not in first_orcl["reason"]
    champion = production_ref(models, "orcl-1d")

    (tmp_path / "cycle.toml").write_text(
        '[cycle]\nstore = "parquet:data"\n[[market]]\nname = "orcl-1d"\nsource = "yahoo"\n'
        'symbol = "ORCL"\ntimeframe = "1d"\nbars = "sample:orcl-1d"\nmax_gap = 5\n'
        "[market.train]\nfolds = 2\nhorizon = 5\nparams = { iterations = 30, depth = 4 }\n")
    cycle = _cli("cycle", "--config", "cycle.toml", cwd=tmp_path)
    assert cycle.returncode in (0, 10), cycle.stderr
    # the cycle's model sits beside train's, and was compared with ORCL's champion only
    assert [p.name for p in (models / "orcl-1d").iterdir() if p.name == "orcl-1d"] == []
    orcl_models = list_models(models, "orcl-1d")
    assert len(orcl_models) == 2 and orcl_models[0] == champion
    decision = history(models, "orcl-1d")[-1]
    assert decision["new"] == str(orcl_models[1]) and decision["old"] == str(champion)
    assert decision["action"] in ("kept", "promoted")
    assert set(productions(models)) == {"btcusd-1h", "orcl-1d"}
    assert all(e["new"].startswith("btcusd-1h/") for e in history(models, "btcusd-1h"))

    listing = _cli("models", "list", cwd=tmp_path)
    assert listing.returncode == 0, listing.stderr
    for market, ref in productions(models).items():
        assert f"{market}: production {ref.version}" in listing.stdout
        assert f"* {ref}" in listing.stdout
    # a backtest picks the market of its bars, and asks when nothing says which
    orcl_backtest = _cli("backtest", "--sample", "orcl-1d", "--engine", "numba",
                         "--no-plot", cwd=tmp_path)
    assert orcl_backtest.returncode == 0, orcl_backtest.stderr
    assert f"model: {production_ref(models, 'orcl-1d')}" in orcl_backtest.stdout
    unsaid = _cli("backtest", cwd=tmp_path)
    assert unsaid.returncode == 2 and "choose one with --model NAME" in unsaid.stderr
    assert "btcusd-1h, orcl-1d" in unsaid.stderr


def _old_layout(trained, root: Path) -> Path:
    """The registry as the previous version wrote it: ``train``'s market "btc" with one
    production.json and history.jsonl for all, and a cycle's market "eth" nested in
    models/eth/ with its own index, pointer, history and trial ledger."""
    models = root / "models"
    shutil.copytree(trained.models_dir, models)
    for name in (PRODUCTION, HISTORY):
        (models / "btc" / name).rename(models / name)
    cycle = models / "eth"
    draft = {k: v for k, v in trained.artifact.manifest.to_dict().items()
             if k not in ("schema_version", "name", "created", "libraries", "model_file",
                          "model_sha256")}
    path = save_artifact(cycle, "eth", trained.artifact.model, {**draft, "version": "v1"},
                         training_bars=trained.artifact.training_bars)
    assert path == cycle / "eth" / "v1"
    (cycle / PRODUCTION).write_text(json.dumps({
        "name": "eth", "version": "v1", "path": "eth/v1", "promoted": "2026-11-01T00:00:00+00:00"}))
    (cycle / HISTORY).write_text(json.dumps({
        "time": "2026-11-01T00:00:00+00:00", "action": "promoted", "new": "eth/v1", "old": None,
        "reason": "no production model yet", "metrics": {}}) + "\n")
    (cycle / LEDGER).write_text(json.dumps({"kind": "train", "identity": "eth-trial"}) + "\n")
    return models


def test_a_registry_of_the_previous_layout_is_migrated_on_first_use(trained, tmp_path):
    models = _old_layout(trained, tmp_path)
    btc_history = [json.loads(line) for line in (models / HISTORY).read_text().splitlines()]
    btc_ref = ModelRef("btc", trained.artifact.version)
    listing = _cli("models", "list", cwd=tmp_path)
    assert listing.returncode == 0, listing.stderr
    assert "registry layout: moved" in listing.stderr
    assert "btc: production" in listing.stdout and "eth: production v1" in listing.stdout
    assert not (models / PRODUCTION).exists() and not (models / HISTORY).exists()
    assert not (models / "eth" / "eth").exists() and not (models / "eth" / INDEX).exists()
    assert productions(models) == {"btc": btc_ref, "eth": ModelRef("eth", "v1")}
    assert history(models, "btc") == btc_history
    assert [e["new"] for e in history(models, "eth")] == ["eth/v1"]
    assert {"btc/" + btc_ref.version, "eth/v1"} <= set(read_index(models))
    assert load_artifact(models / "eth" / "v1").name == "eth"  # its manifest sha still checks
    ledger = (models / LEDGER).read_text()
    assert "eth-trial" in ledger
    again = _cli("models", "list", cwd=tmp_path)  # once is enough
    assert again.returncode == 0 and "registry layout" not in again.stderr
    assert (models / LEDGER).read_text() == ledger

"""The sweep: same seed, same trials, same winner and model, in local processes or on Dask."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from datafeeds import load_sample
from datafeeds.store import StoreKey
from datafeeds.stores import open_store
from mlstrategy.backtest.report import run_backtest
from mlstrategy.backtest.runner import BacktestConfig
from mlstrategy.registry.artifact import load_artifact
from mlstrategy.research.dataset import sample_dataset
from mlstrategy.research.trials import read as read_trials


def _config(tmp_path: Path, name: str) -> Path:
    """A market whose bars are in a store both runs share; its own models and sweeps."""
    path = tmp_path / f"{name}.toml"
    path.write_text(f"""
[cycle]
store = "parquet:{tmp_path / 'data'}"
models_dir = "{tmp_path / name / 'models'}"
sweeps_dir = "{tmp_path / name / 'sweeps'}"

[[market]]
name = "btc"
source = "coinbase"
symbol = "BTC/USD"
timeframe = "1h"
[market.train]
folds = 2
params = {{ iterations = 30 }}
[market.sweep]
depth = [3, 6]
learning_rate = [0.03, 0.3]
enter_quantile = [0.55, 0.9]
""")
    return path


def _sweep(config: Path, *options: str) -> dict:
    run = subprocess.run([sys.executable, "-m", "mlstrategy.cli", "sweep", "--config",
                          str(config), "--trials", "8", "--workers", "2", "--threads", "1",
                          "--seed", "7", *options], capture_output=True, text=True,
                         timeout=900)
    assert run.returncode == 0, run.stderr
    [best] = list(config.parent.glob(f"{config.stem}/sweeps/btc/*/best.json"))
    trials = [json.loads(line) for line in best.with_name("trials.jsonl").read_text()
              .splitlines()]
    return {"best": json.loads(best.read_text()), "trials": trials,
            "console": run.stdout + run.stderr}


def test_local_processes_and_a_dask_cluster_find_the_same_winner(tmp_path):
    distributed = pytest.importorskip("distributed", reason="Dask not installed: pip install "
                                      "'mlstrategy[cluster]'")
    open_store(f"parquet:{tmp_path / 'data'}").write(StoreKey("coinbase", "BTC/USD", "1h"),
                                                     load_sample("btcusd-1h"))
    local = _sweep(_config(tmp_path, "local"))
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as cluster:
        dask = _sweep(_config(tmp_path, "dask"), "--scheduler", cluster.scheduler_address)
        assert len({t["pid"] for t in dask["trials"]}) == 2  # both workers took trials
    assert dask["best"]["executor"].startswith("Dask at tcp://")
    assert [(t["params"], t["value"]) for t in local["trials"]] == \
        [(t["params"], t["value"]) for t in dask["trials"]]
    assert len(local["trials"]) == 8 and local["best"]["best_params"] == dask["best"]["best_params"]
    models = [load_artifact(Path(run["best"]["model"])) for run in (local, dask)]
    assert models[0].manifest.model_sha256 == models[1].manifest.model_sha256
    search = models[0].manifest.validation.search
    assert search["trials"] == 8 and search["best_value"] == local["best"]["best_value"]
    # the eight tries and the winner's training feed the deflated Sharpe of its backtest
    registry = Path(local["best"]["model"]).parents[1]
    kinds = [t.kind for t in read_trials(registry)]
    assert kinds.count("sweep") == 8 and kinds.count("train") == 1
    report = run_backtest(sample_dataset("btcusd-1h"), models[0], BacktestConfig(plot=False),
                          tmp_path / "report", ledger=registry).report
    assert report["significance"]["trials"] == 9  # the default backtest is the training's
    assert report["significance"]["dsr"] < report["significance"]["psr"]
    searching = local["console"].split("best of")[0]  # before the winner is chosen
    lines = [line for line in searching.splitlines() if line.startswith("trial ")]
    assert len(lines) == 8 and all("CV objective" in line for line in lines)
    assert "holdout" not in searching  # nothing to pick a trial by but the CV objective

"""The update cycle as cron runs it: real subprocesses, the embedded real samples, offline."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import psutil
import pytest

from datafeeds import load_sample
from datafeeds.store import StoreKey
from datafeeds.stores import open_store
from mlstrategy.cycle.run import STEPS
from mlstrategy.registry.artifact import load_artifact, read_index
from mlstrategy.registry.production import (
    artifact_dir,
    history,
    list_models,
    production_ref,
    promote,
)
from tests.conftest import REPO_ROOT

BTC = """
[[market]]
name = "btc"
source = "coinbase"
symbol = "BTC/USD"
timeframe = "1h"
bars = "sample:btcusd-1h"
[market.train]
folds = 2
params = { iterations = 30, depth = 4 }
"""
ORCL = """
[[market]]
name = "orcl"
source = "yahoo"
symbol = "ORCL"
timeframe = "1d"
bars = "sample:orcl-1d"
max_gap = 5
[market.train]
folds = 2
horizon = 5
params = { iterations = 30, depth = 4 }
"""


def _config(tmp_path: Path, *markets: str) -> Path:
    path = tmp_path / "cycle.toml"
    path.write_text("[cycle]\nstore = \"parquet:data\"\n" + "".join(markets))
    return path


def _cycle(tmp_path: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "mlstrategy.cli", "cycle", "--config",
                           "cycle.toml"], cwd=tmp_path, capture_output=True, text=True,
                          timeout=600)


def _reports(tmp_path: Path) -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted((tmp_path / "cycles").glob("*/report.json"))]


def test_two_markets_end_to_end_then_nothing_to_do(tmp_path):
    _config(tmp_path, BTC, ORCL)
    first = _cycle(tmp_path)
    assert first.returncode in (0, 10), first.stderr
    [report] = _reports(tmp_path)
    assert report["exit_code"] == first.returncode
    assert [m["name"] for m in report["markets"]] == ["btc", "orcl"]
    for market in report["markets"]:
        assert market["status"] in ("kept", "promoted"), market
        assert list(market["steps"]) == list(STEPS)
        assert market["steps"]["update"]["added"] > 0
        assert len(market["steps"]["train"]["fold_auc"]) == 2
        folder = next((tmp_path / "cycles").glob("2*"))
        assert (folder / market["equity"]).is_file()
        assert f"| {market['name']} | {market['status']} |" in (folder / "report.md").read_text()
    assert report["markets"][1]["steps"]["validate"]["largest_gap"] == 4  # 9/11, < max_gap
    second = _cycle(tmp_path)
    assert second.returncode == 0, second.stderr
    assert [m["status"] for m in _reports(tmp_path)[-1]["markets"]] == ["nothing to do"] * 2
    for name in ("btc", "orcl"):
        assert len(list_models(tmp_path / "models", name)) == 1  # nothing trained again


def test_a_gap_stops_its_market_with_the_reason_and_exit_1(tmp_path):
    _config(tmp_path, ORCL.replace("max_gap = 5", "max_gap = 2"))
    run = _cycle(tmp_path)
    assert run.returncode == 1
    [market] = _reports(tmp_path)[0]["markets"]
    assert market["status"] == "stopped" and "gap of 4 bars" in market["reason"]
    assert "max_gap = 2" in market["reason"] and not (tmp_path / "models" / "orcl").exists()


def _consistent(tmp_path: Path, first) -> None:
    """Store, registry and reports as one finished cycle leaves them, nothing half-written."""
    leftovers = [p for p in tmp_path.rglob("*") if p.name.endswith((".tmp", ".partial"))
                 or p.name == "cycle.lock"]
    assert leftovers == []
    stored = open_store("parquet:" + str(tmp_path / "data")).read(
        StoreKey("coinbase", "BTC/USD", "1h"))
    pd.testing.assert_frame_equal(stored, load_sample("btcusd-1h"), check_freq=False)
    registry = tmp_path / "models"
    old, new = list_models(registry)  # one model per version of the data: never trained twice
    assert old == first
    for ref in (old, new):
        load_artifact(artifact_dir(registry, ref))
        assert str(ref) in read_index(registry)
    decisions = [e for e in history(registry, "btc") if e["new"] == str(new)]
    assert len(decisions) == 1 and decisions[0]["action"] in ("kept", "promoted")
    assert production_ref(registry, "btc") == (
        new if decisions[0]["action"] == "promoted" else old)
    assert _reports(tmp_path)[-1]["markets"][0]["status"] in ("kept", "promoted")


@pytest.mark.parametrize("step", STEPS)
def test_killed_at_each_step_the_rerun_ends_consistent(tmp_path, step):
    """New bars arrive for a market with a production model; the cycle is SIGKILLed the moment
    it announces a step, then run again to the end."""
    bars = load_sample("btcusd-1h")
    export = tmp_path / "export.csv"
    bars.iloc[:15000].to_csv(export, index_label="datetime")
    _config(tmp_path, BTC.replace('bars = "sample:btcusd-1h"', f'bars = "{export}"'))
    assert _cycle(tmp_path).returncode in (0, 10)
    registry = tmp_path / "models"
    [first] = list_models(registry)
    if production_ref(registry, "btc") is None:  # a champion to beat: promote compares backtests
        promote(registry, first, action="forced", reason="the test's champion")
    bars.to_csv(export, index_label="datetime")  # 5,111 new bars
    process = subprocess.Popen([sys.executable, "-m", "mlstrategy.cli", "cycle", "--config",
                                "cycle.toml"], cwd=tmp_path, stdout=subprocess.PIPE,
                               stderr=subprocess.DEVNULL, text=True)
    for line in process.stdout:
        if line.strip() == f"step {step}: btc":
            workers = psutil.Process(process.pid).children(recursive=True)
            os.kill(process.pid, signal.SIGKILL)
            break
    assert process.wait(timeout=600) == -signal.SIGKILL
    assert workers  # the market ran in a worker process, which dies with the cycle
    gone, alive = psutil.wait_procs(workers, timeout=10)
    assert alive == []
    assert (tmp_path / "cycles" / "cycle.lock").is_file()  # a stale lock, left by the kill
    rerun = _cycle(tmp_path)
    assert rerun.returncode in (0, 10), rerun.stderr
    assert "taking over the stale lock" in rerun.stderr
    _consistent(tmp_path, first)


def test_a_live_cycle_holds_the_lock(tmp_path):
    _config(tmp_path, BTC)
    lock = tmp_path / "cycles" / "cycle.lock"
    lock.parent.mkdir()
    lock.write_text(json.dumps({"pid": os.getpid(), "host": os.uname().nodename,
                                "started": "2026-11-28T00:00:00+00:00"}))
    run = _cycle(tmp_path)
    assert run.returncode == 1 and f"another cycle is running (pid {os.getpid()}" in run.stderr
    assert lock.is_file() and not (tmp_path / "models").exists()


def test_a_bad_config_is_one_line_exit_2(tmp_path):
    _config(tmp_path, BTC.replace('timeframe = "1h"', 'timeframe = "hourly"'))
    run = _cycle(tmp_path)
    assert run.returncode == 2 and len(run.stderr.strip().splitlines()) == 1
    assert "timeframe" in run.stderr and "Traceback" not in run.stderr


def test_markets_on_a_dask_cluster_give_the_same_models(tmp_path):
    """The same two-market cycle in local processes and on two Dask workers: the same model
    files."""
    distributed = pytest.importorskip("distributed", reason="Dask not installed: pip install "
                                      "'mlstrategy[cluster]'")
    hashes = {}
    for how in ("local", "dask"):
        folder = tmp_path / how
        folder.mkdir()
        _config(folder, BTC, ORCL)
        args = [sys.executable, "-m", "mlstrategy.cli", "cycle", "--config", "cycle.toml",
                "--threads", "1"]
        if how == "dask":
            with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                          dashboard_address=None) as cluster:
                run = subprocess.run([*args, "--scheduler", cluster.scheduler_address],
                                     cwd=folder, capture_output=True, text=True, timeout=600)
        else:
            run = subprocess.run(args, cwd=folder, capture_output=True, text=True, timeout=600)
        assert run.returncode in (0, 10), run.stderr
        hashes[how] = [load_artifact(artifact_dir(folder / "models", ref)).manifest.model_sha256
                       for ref in list_models(folder / "models")]
        assert len(hashes[how]) == 2
    assert hashes["local"] == hashes["dask"]


def test_an_unreachable_exchange_fails_its_market_only(tmp_path):
    offline = """
[[market]]
name = "binance"
source = "binance"
symbol = "BTC/USDT"
timeframe = "1h"
api_url = "http://127.0.0.1:1"
"""
    _config(tmp_path, offline, ORCL)
    open_store("parquet:" + str(tmp_path / "data")).write(StoreKey("binance", "BTC/USDT", "1h"),
                                                          load_sample("btcusd-1h").iloc[:500])
    run = _cycle(tmp_path)
    assert run.returncode == 1, run.stderr
    failed, orcl = _reports(tmp_path)[0]["markets"]
    assert failed["status"] == "failed" and failed["reason"].startswith("update: ExchangeError")
    assert orcl["status"] in ("kept", "promoted")


def test_new_bars_are_stored_every_run_and_retrain_waits_for_retrain_every(tmp_path):
    bars = load_sample("btcusd-1h")
    source = tmp_path / "export.csv"  # a file the user's exporter keeps extending
    market = BTC.replace('bars = "sample:btcusd-1h"', f'bars = "{source}"\nretrain_every = "7d"')
    _config(tmp_path, market)
    statuses = []
    for stop in (3000, 3024, 3200):  # then one more day (too soon), then 8 more days (due)
        bars.iloc[:stop].to_csv(source, index_label="datetime")
        run = _cycle(tmp_path)
        assert run.returncode in (0, 10), run.stderr
        [result] = _reports(tmp_path)[-1]["markets"]
        statuses.append((result["steps"]["update"]["added"], result["status"]))
    assert statuses[0] == (3000, statuses[0][1]) and statuses[0][1] in ("kept", "promoted")
    assert statuses[1] == (24, "nothing to do")
    assert "retrain_every 7d" in _reports(tmp_path)[1]["markets"][0]["reason"]
    assert statuses[2][0] == 176 and statuses[2][1] in ("kept", "promoted")
    assert len(list_models(tmp_path / "models", "btc")) == 2


def test_a_market_whose_live_model_drifts_is_retrained_before_retrain_every(tmp_path):
    from mlstrategy.live.drift import DriftFigures
    from mlstrategy.live.drift_settings import DRIFT_META
    from mlstrategy.live.journal import Journal

    bars = load_sample("btcusd-1h")
    source = tmp_path / "export.csv"
    market = BTC.replace('bars = "sample:btcusd-1h"', f'bars = "{source}"\nretrain_every = "7d"')
    (tmp_path / "cycle.toml").write_text('[cycle]\nstore = "parquet:data"\n'
                                         'journals = ["journals/bot.sqlite"]\n' + market)
    bars.iloc[:3000].to_csv(source, index_label="datetime")
    assert _cycle(tmp_path).returncode in (0, 10)
    (model,) = list_models(tmp_path / "models", "btc")
    (tmp_path / "journals").mkdir()
    # what a paper bot trading that model journals with its bars (mlstrategy.live.drift)
    journal = Journal.open(tmp_path / "journals" / "bot.sqlite", {
        "mode": "paper", "exchange": "coinbase", "symbol": "BTC/USD", "timeframe": "1h"})
    journal.start_session(str(model))

    def measured(breaches: list[str], hour: int) -> None:
        figures = DriftFigures(str(model), 500, 0.9 if breaches else 0.2, 3.1, "natr_14", 495,
                               0.251, 0.247, 0.04, 0.47, 0.51, 500, -0.02, -0.3, 0.3,
                               breaches)
        journal.record([(hour * 3_600_000, 1.0, 1.0, 1.0, 1.0, 1.0)], [],
                       {DRIFT_META: json.dumps(figures.to_dict())})

    measured([], 1)
    steps = []
    for stop, breaches in ((3024, []), (3048, ["features"])):
        measured(breaches, stop)
        bars.iloc[:stop].to_csv(source, index_label="datetime")
        run = _cycle(tmp_path)
        assert run.returncode in (0, 10), run.stderr
        [result] = _reports(tmp_path)[-1]["markets"]
        steps.append(result)
    journal.close()
    waited, retrained = steps
    assert waited["status"] == "nothing to do" and "retrain_every 7d" in waited["reason"]
    assert waited["steps"]["drift"]["breaches"] == [] and \
        waited["steps"]["drift"]["model"] == str(model)
    assert retrained["status"] in ("kept", "promoted")
    assert retrained["steps"]["drift"]["breaches"] == ["features"]
    assert list(retrained["steps"]) == ["update", "validate", "drift", "train", "backtest",
                                        "promote"]
    assert len(list_models(tmp_path / "models", "btc")) == 2
    report = sorted((tmp_path / "cycles").glob("*/report.md"))[-1].read_text()
    (line,) = [x for x in report.splitlines() if x.startswith("| drift |")]
    assert f"model {model};" in line and "psi_median 0.9;" in line and \
        "breaches features;" in line


def test_a_market_reading_another_market_keeps_both_and_trains_on_both(tmp_path, shared_data):
    """ETH/BTC 5m with features of its own hours and of BTC/USD's (the example spec): the
    cycle stores both series, trains and backtests on both; a spec reading a market without
    a [[market.reads]] table is refused before anything runs."""
    eth = f"""
[[market]]
name = "ethbtc"
source = "bittrex"
symbol = "ETH/BTC"
timeframe = "5m"
bars = "{shared_data / 'freqtrade' / 'ETH_BTC-5m.csv'}"
features = "{REPO_ROOT / 'examples' / 'features_informative.toml'}"
[market.train]
folds = 2
params = {{ iterations = 30, depth = 4 }}
"""
    reads = ('[[market.reads]]\nsymbol = "BTC/USD"\nsource = "coinbase"\ntimeframe = "1h"\n'
             'bars = "sample:btcusd-1h"\n')
    _config(tmp_path, eth)
    refused = _cycle(tmp_path)
    assert refused.returncode == 2 and "add a [[market.reads]] table" in refused.stderr
    _config(tmp_path, eth + reads)
    run = _cycle(tmp_path)
    assert run.returncode in (0, 10), run.stderr
    [market] = _reports(tmp_path)[-1]["markets"]
    assert market["status"] in ("kept", "promoted"), market
    assert market["steps"]["update"]["BTC/USD"]["added"] == len(load_sample("btcusd-1h"))
    store = open_store(f"parquet:{tmp_path / 'data'}")
    assert store.last_bar(StoreKey("coinbase", "BTC/USD", "1h")) is not None
    [ref] = list_models(tmp_path / "models", "ethbtc")
    artifact = load_artifact(artifact_dir(tmp_path / "models", ref))
    assert artifact.spec.markets == ("BTC/USD",)
    assert artifact.manifest.training_data.inputs["BTC/USD"]["rows"] == \
        len(load_sample("btcusd-1h"))


def test_a_market_reading_its_funding_rate_keeps_it_and_trains_on_it(tmp_path):
    """BTC/USD hourly with its funding rate as features, the rates from a file (synthetic:
    the repo holds no recorded funding): stored beside the bars, read by the training."""
    bars = load_sample("btcusd-1h")
    times = pd.date_range(bars.index[0].ceil("8h"), bars.index[-1], freq="8h",
                          name="datetime")
    rates = pd.DataFrame({"value": 1e-4 * np.sin(np.arange(len(times)) / 3.0)}, index=times)
    rates.to_csv(tmp_path / "funding.csv")
    (tmp_path / "spec.toml").write_text(
        '[[feature]]\nkind = "rsi"\nn = 14\n[[feature]]\nkind = "natr"\nn = 14\n'
        '[[feature]]\nkind = "level"\nseries = "funding_rate"\n'
        '[[feature]]\nkind = "zscore"\nn = 9\ninput = "close"\nseries = "funding_rate"\n')
    reads = ('features = "spec.toml"\n[[market.reads]]\nsymbol = "BTC/USD"\n'
             'source = "coinbase"\nseries = "funding_rate"\nbars = "funding.csv"\n')
    _config(tmp_path, BTC.replace("[market.train]", reads + "[market.train]"))
    run = _cycle(tmp_path)
    assert run.returncode in (0, 10), run.stderr
    [market] = _reports(tmp_path)[-1]["markets"]
    assert market["status"] in ("kept", "promoted"), market
    assert market["steps"]["update"]["funding_rate"]["added"] == len(times)
    stored = open_store(f"parquet:{tmp_path / 'data'}").read_values(
        StoreKey("coinbase", "BTC/USD", "funding_rate"))
    np.testing.assert_array_equal(stored["value"].to_numpy(), rates["value"].to_numpy())
    [ref] = list_models(tmp_path / "models", "btc")
    artifact = load_artifact(artifact_dir(tmp_path / "models", ref))
    assert artifact.spec.inputs == ("funding_rate",)
    assert "level@funding_rate" in artifact.spec.names

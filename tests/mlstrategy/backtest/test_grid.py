"""``backtest --engine numba`` and ``backtest --grid``: the same report as Cerebro's, and every
configuration of a grid counted by the deflated Sharpe of the best."""
from __future__ import annotations

import csv
import json
import shutil
import subprocess
import sys
from dataclasses import replace

import pytest

from mlstrategy.backtest.grid import parse_axes
from mlstrategy.backtest.report import run_backtest
from mlstrategy.backtest.runner import BacktestConfig
from mlstrategy.errors import ConfigError
from mlstrategy.research.trials import read
from mlstrategy.trading.strategy_params import StrategyParams
from tests.conftest import REPO_ROOT


@pytest.mark.parametrize("params", [StrategyParams(),
                                    StrategyParams(allow_short=True, stop_loss=0.01,
                                                   take_profit=0.02, cooldown=2)])
def test_the_engine_writes_the_same_report_as_cerebro(trained, tmp_path, params):
    reports = {}
    for engine in ("backtrader", "numba"):
        config = BacktestConfig(plot=False, strategy=replace(params, slippage=0.001,
                                                             borrow_rate=0.1),
                                engine=engine)
        reports[engine] = run_backtest(trained.dataset, trained.artifact, config,
                                       tmp_path / engine)
    cerebro, engine = (reports[k].report for k in ("backtrader", "numba"))
    for row in ("strategy", "buy_and_hold"):
        for key, value in cerebro["summary"][row].items():
            if isinstance(value, float):
                assert engine["summary"][row][key] == pytest.approx(value, rel=1e-9,
                                                                    abs=1e-12), key
            else:
                assert engine["summary"][row][key] == value, key
    assert engine["orders"] == cerebro["orders"]
    assert (tmp_path / "numba" / "trades.csv").read_text() == \
        (tmp_path / "backtrader" / "trades.csv").read_text()


def test_a_grid_writes_its_table_picture_and_trials(trained, tmp_path):
    shutil.copytree(trained.models_dir, tmp_path / "models")
    (tmp_path / "models" / "trials.jsonl").unlink(missing_ok=True)  # a ledger of its own
    run = subprocess.run([sys.executable, str(REPO_ROOT / "trading_bot.py"), "backtest",
                          "--models-dir", str(tmp_path / "models"), "--sample", "btcusd-1h",
                          "--grid", "enter=0.52:0.60:0.02", "--grid", "exit=0.45,0.5",
                          "--out", str(tmp_path / "grid")],
                         capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr
    with open(tmp_path / "grid" / "grid.csv", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 5 * 2 and {"enter", "exit", "sharpe", "trades"} <= set(rows[0])
    assert (tmp_path / "grid" / "grid.png").stat().st_size > 10_000
    trials = read(tmp_path / "models")
    assert len({t.identity for t in trials}) == 10
    report = json.loads((tmp_path / "grid" / "backtest.json").read_text())
    assert report["significance"]["trials"] == 10  # the best one counts them all
    best = max(rows, key=lambda r: float(r["sharpe"]))
    assert report["grid"]["best"]["sharpe"] == pytest.approx(float(best["sharpe"]))
    assert report["summary"]["strategy"]["sharpe"] == pytest.approx(float(best["sharpe"]),
                                                                   rel=1e-9)
    assert "best of 10 (net Sharpe):" in run.stdout


def test_grid_options_are_checked():
    assert parse_axes(("enter=0.5:0.6:0.05", "cooldown=0,2")) == {
        "enter": [0.5, 0.55, 0.6], "cooldown": [0, 2]}
    with pytest.raises(ConfigError, match="no strategy option 'entry'"):
        parse_axes(("entry=0.5:0.6:0.1",))
    with pytest.raises(ConfigError, match="LO <= HI"):
        parse_axes(("enter=0.6:0.5:0.1",))

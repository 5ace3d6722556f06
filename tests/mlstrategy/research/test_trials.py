"""The trial ledger and the deflated Sharpe it feeds: the paper's numerical example, a
backtest's DSR against an independent computation from the ledger, and trials found by
content when the data was renamed and edited."""
from __future__ import annotations

import math
import subprocess
import sys

import numpy as np
import pytest
from scipy.stats import norm

from mlstrategy.backtest.report import run_backtest
from mlstrategy.backtest.runner import BacktestConfig
from mlstrategy.backtest.stats import deflated_sharpe, expected_max_sharpe
from mlstrategy.research.dataset import describe
from mlstrategy.research.trials import Trial, TrialData, deflation, read, record, record_training


def test_the_papers_numerical_example():
    """Bailey and López de Prado (2014), section 'A numerical example': 100 trials whose
    annualised Sharpes vary by 0.5, a daily track record of 1,250 bars with an annualised
    Sharpe of 2.5, skew -3 and kurtosis 10: SR0 = 0.1132 a day, DSR = 0.9004."""
    assert expected_max_sharpe(100, 0.5 / 250) == pytest.approx(0.1132, abs=5e-5)
    assert deflated_sharpe(2.5 / math.sqrt(250), 1250, -3.0, 10.0, 100, 0.5 / 250) == \
        pytest.approx(0.9004, abs=5e-4)


def _independent_dsr(sharpes: list[float], ppy: float, row: dict) -> float:
    """Eq. 1 and 2 of the paper, written out again from the ledger's Sharpes."""
    gamma = 0.5772156649015329
    per_bar = np.asarray(sharpes) / math.sqrt(ppy)
    n_trials, variance = len(per_bar), per_bar.var(ddof=1)
    sr0 = math.sqrt(variance) * ((1 - gamma) * norm.ppf(1 - 1 / n_trials)
                                 + gamma * norm.ppf(1 - 1 / (n_trials * math.e)))
    sr, t = row["sharpe"] / math.sqrt(ppy), row["bars"]
    z = (sr - sr0) * math.sqrt(t - 1) / math.sqrt(
        1 - row["skew"] * sr + (row["kurtosis"] - 1) / 4 * sr ** 2)
    return float(norm.cdf(z))


def test_a_backtests_dsr_counts_the_ledgers_trials(trained, tmp_path):
    ledger = tmp_path / "models"
    bars = trained.dataset.bars
    data = TrialData.of(bars, "BTC/USD", "1h")
    sharpes = np.random.default_rng(3).normal(0.3, 0.8, 24)
    for k, sharpe in enumerate(sharpes):  # 24 configurations tried on these bars
        record(ledger, Trial("backtest", f"config-{k}", data, float(sharpe), 8500.0, "test"))
    record(ledger, Trial("backtest", "config-0", data, 0.1, 8500.0, "test"))  # run again
    result = run_backtest(trained.dataset, trained.artifact, BacktestConfig(plot=False),
                          tmp_path / "report", ledger=ledger)
    report = result.report
    significance, row = report["significance"], report["summary"]["strategy"]
    assert significance["trials"] == 24 + 1  # distinct ones, this backtest included
    assert significance["sharpe_variance_from"] == "the trials' Sharpes"
    mine = read(ledger)[-1]
    assert mine.kind == "backtest" and mine.sharpe == pytest.approx(row["sharpe"])
    ppy = report["annualisation"]["periods_per_year"]
    expected = _independent_dsr([0.1, *sharpes[1:], mine.sharpe], ppy, row)
    assert row["dsr"] == pytest.approx(expected, rel=1e-9, abs=1e-12)


def test_trials_on_an_edited_copy_of_the_data_are_counted(trained, tmp_path):
    """A model's training and its backtests count for a backtest on the same bars renamed,
    first 100 rows dropped: by content, not by name."""
    ledger = tmp_path / "models"
    record_training(ledger, trained.artifact, trained.dataset)
    edited = describe(trained.dataset.bars.iloc[100:], "file:spx.csv", "SPX", "1h")
    found = deflation(ledger, edited.bars, TrialData.of(edited.bars, "SPX", "1h"), 8766.0)
    assert found.trials == 1 and found.sharpes == (
        trained.artifact.manifest.validation.holdout["sharpe"],)
    elsewhere = describe(trained.dataset.bars.iloc[:50].assign(
        open=lambda f: f.open * 3, high=lambda f: f.high * 3, low=lambda f: f.low * 3,
        close=lambda f: f.close * 3), "other", "ETH/USD", "1h")
    none = deflation(ledger, elsewhere.bars, TrialData.of(elsewhere.bars, "ETH/USD", "1h"),
                     8766.0)
    assert none.trials == 1 and none.sharpes == ()  # nothing tried on those bars


def test_models_trials_lists_the_ledger(trained, tmp_path):
    ledger = tmp_path / "models"
    record_training(ledger, trained.artifact, trained.dataset)
    run = subprocess.run([sys.executable, "-m", "mlstrategy.cli", "models", "trials",
                          "--models-dir", str(ledger)], capture_output=True, text=True,
                         timeout=120)
    assert run.returncode == 0, run.stderr
    assert "train" in run.stdout and "BTC/USD 1h" in run.stdout
    assert run.stdout.strip().endswith("1 recorded, 1 distinct")


def test_a_damaged_ledger_is_a_one_line_error_not_fewer_trials(trained, tmp_path):
    import shutil

    models = tmp_path / "models"
    shutil.copytree(trained.models_dir, models)
    record_training(models, trained.artifact, trained.dataset)
    with open(models / "trials.jsonl", "a", encoding="utf-8") as fh:
        fh.write('{"kind": "backtest"}\n{"kind": "backtest"}\n')  # edited by hand
    run = subprocess.run([sys.executable, "-m", "mlstrategy.cli", "backtest", "--models-dir",
                          str(models), "--sample", "btcusd-1h", "--no-plot", "--out",
                          str(tmp_path / "r")], capture_output=True, text=True, timeout=300)
    assert run.returncode == 2 and "Traceback" not in run.stderr
    last = run.stderr.strip().splitlines()[-1]
    assert last.startswith("error: ") and "entry 2, is not a trial record" in last

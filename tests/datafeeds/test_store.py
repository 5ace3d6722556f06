"""Every store backend keeps bars exactly, writes them all-or-nothing, and answers the same."""
from __future__ import annotations

import subprocess
import sys

import pandas as pd
import pytest

from datafeeds import DataError
from datafeeds.store import StoreKey, redact
from datafeeds.stores import open_store

KEY = StoreKey("coinbase", "BTC/USD", "1h")


def test_write_read_append_upsert_replace(store_url, btc_bars):
    store = open_store(store_url)
    assert store.read(KEY) is None and store.last_bar(KEY) is None and store.keys() == []
    store.write(KEY, btc_bars.iloc[:1000])
    assert store.append(KEY, btc_bars.iloc[500:1500]) == 500  # overlap is not stored twice
    assert store.append(KEY, btc_bars.iloc[:1500]) == 0
    pd.testing.assert_frame_equal(store.read(KEY), btc_bars.iloc[:1500], check_freq=False)
    assert store.last_bar(KEY) == btc_bars.index[1499]
    span = store.read(KEY, btc_bars.index[100], btc_bars.index[200])
    pd.testing.assert_frame_equal(span, btc_bars.iloc[100:200], check_freq=False)

    fixed = btc_bars.iloc[10:12] * 1.5  # upsert: these two times get new values, others kept
    store.write(KEY, fixed)
    expected = pd.concat([btc_bars.iloc[:10], fixed, btc_bars.iloc[12:1500]])
    pd.testing.assert_frame_equal(store.read(KEY), expected, check_freq=False)

    holed = btc_bars.iloc[:300].drop(btc_bars.index[100:103])  # replace: exactly these bars
    store.replace(KEY, holed)
    pd.testing.assert_frame_equal(store.read(KEY), holed, check_freq=False)
    [gap] = store.gaps(KEY)
    assert (gap.after, gap.missing) == (btc_bars.index[99], 3)
    [series] = store.describe()
    assert series.report.rows == 297 and series.report.timeframe == pd.Timedelta("1h")
    other = StoreKey("coinbase", "ETH/USD", "1d")
    store.write(other, btc_bars.iloc[:5])
    assert [(k.source, k.symbol[:3], k.timeframe) for k in store.keys()] == [
        ("coinbase", "BTC", "1h"), ("coinbase", "ETH", "1d")]


def test_invalid_bars_are_refused_and_nothing_changes(store_url, btc_bars):
    store = open_store(store_url)
    store.write(KEY, btc_bars.iloc[:100])
    bad = btc_bars.iloc[100:110].copy()
    bad.iloc[3, 1] = -1.0
    with pytest.raises(DataError, match="prices > 0"):
        store.append(KEY, bad)
    pd.testing.assert_frame_equal(store.read(KEY), btc_bars.iloc[:100], check_freq=False)


_KILLED_WRITER = """
import os, signal, sys
import pandas as pd
from datafeeds import load_sample
from datafeeds.store import StoreKey
from datafeeds.stores import open_store
bars = load_sample("btcusd-1h")
step = bars.index[-1] - bars.index[0] + pd.Timedelta("1h")
long = pd.concat([bars.set_axis(bars.index + k * step) for k in range(8)])  # 153k bars
def die(done, total):
    print(f"{done} of {total} written, killing", flush=True)
    os.kill(os.getpid(), signal.SIGKILL)
open_store(sys.argv[1]).append(StoreKey("coinbase", "BTC/USD", "1h"),
                               long[long.index > bars.index[-1]], progress=die)
print("not killed", flush=True)
"""


def test_an_update_killed_mid_write_leaves_the_store_as_it_was(store_url, btc_bars):
    """SIGKILL once the first 50,000 bars of the write are out (a file store rewrites the
    whole file, the databases insert the 133,777 new bars): nothing of the write stays."""
    store = open_store(store_url)
    store.write(KEY, btc_bars)
    before = store.read(KEY)
    run = subprocess.run([sys.executable, "-c", _KILLED_WRITER, store_url], text=True,
                         capture_output=True, timeout=300)
    assert run.returncode == -9 and run.stdout.startswith("50000 of "), run
    pd.testing.assert_frame_equal(open_store(store_url).read(KEY), before, check_freq=False)
    assert store.keys() == [StoreKey("coinbase", "BTC-USD" if store_url.split(":")[0] in
                                     ("parquet", "csv", "json") else "BTC/USD", "1h")]


def test_a_corrupt_parquet_file_is_a_clear_error(tmp_path):
    store = open_store(f"parquet:{tmp_path}")
    path = store.path(KEY)
    path.parent.mkdir(parents=True)
    path.write_bytes(b"not parquet")
    with pytest.raises(DataError, match="unreadable"):
        store.read(KEY)


def test_a_file_that_is_no_sqlite_database_is_a_clear_error(tmp_path):
    path = tmp_path / "bars.db"
    path.write_bytes(b"not a database, just text" * 100)
    with pytest.raises(DataError, match="is it a bar store"):
        open_store(f"sqlite:///{path}").keys()


@pytest.mark.parametrize(("url", "message"), [
    ("mysql://u@h/db", "unknown kind 'mysql'"),
    ("sqlite://bars.db", "sqlite:///relative/path.db"),
])
def test_store_urls_are_checked(url, message):
    with pytest.raises(DataError, match=message):
        open_store(url)


def test_an_unreachable_server_is_one_line_without_the_password():
    pytest.importorskip("psycopg")
    url = "postgresql://trader:s3cret@127.0.0.1:1/bars"
    with pytest.raises(DataError, match="cannot connect") as caught:
        open_store(url).keys()
    assert "s3cret" not in str(caught.value) and redact(url) in str(caught.value)


def test_postgres_time_column_is_timestamptz(postgres_url, btc_bars):
    """The schema a TimescaleDB hypertable needs: a timestamptz time inside the key."""
    import psycopg

    open_store(postgres_url).write(KEY, btc_bars.iloc[:3])
    with psycopg.connect(postgres_url) as conn:
        kind = conn.execute("SELECT data_type FROM information_schema.columns WHERE "
                            "table_name = 'bars' AND column_name = 'time'").fetchone()[0]
        first = conn.execute("SELECT min(time) FROM bars").fetchone()[0]
    assert kind == "timestamp with time zone"
    assert pd.Timestamp(first) == btc_bars.index[0]

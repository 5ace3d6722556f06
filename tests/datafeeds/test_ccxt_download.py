"""The ccxt downloader through real ccxt, against a fake binance over HTTP on 127.0.0.1."""
from __future__ import annotations

import signal
import subprocess
import sys
import time

import pandas as pd
import pytest

from datafeeds import DataError, ExchangeError, load_sample
from datafeeds.exchange.client import make_exchange
from datafeeds.exchange.history import fetch_range, update_store
from datafeeds.store import StoreKey
from datafeeds.stores import open_store
from execution.simulator import KLINES, ExchangeSimulator, Fault

BARS = load_sample("btcusd-1h").iloc[:4500]
KEY = StoreKey("binance", "BTC/USDT", "1h")
NOW = BARS.index[-1] + pd.Timedelta(minutes=90)  # the last served bar is closed


@pytest.fixture
def exchange():
    with ExchangeSimulator(BARS) as fake:
        yield fake, make_exchange("binance", api_url=fake.url, rate_limit=False)


def test_pagination_over_more_than_three_pages(exchange):
    fake, ex = exchange
    pages = list(fetch_range(ex, "BTC/USDT", "1h", BARS.index[0], limit=1000, now=NOW))
    assert [len(p) for p in pages] == [1000, 1000, 1000, 1000, 500]
    pd.testing.assert_frame_equal(pd.concat(pages), BARS, check_freq=False)
    assert fake.count(KLINES) == 6  # the last, empty page says "no more yet"


def test_forming_candle_is_not_returned(exchange):
    _, ex = exchange
    pages = list(fetch_range(ex, "BTC/USDT", "1h", BARS.index[-10],
                             now=BARS.index[-1] + pd.Timedelta(minutes=20)))
    assert pd.concat(pages).index[-1] == BARS.index[-2]


def test_rate_limits_and_server_errors_are_retried(exchange):
    fake, ex = exchange
    fake.fail(Fault(429, '{"code": -1003, "msg": "Too many requests"}'),
              Fault(503, "Service Unavailable"), Fault(502, "Bad Gateway"))
    pages = list(fetch_range(ex, "BTC/USDT", "1h", BARS.index[0], limit=2000, backoff=0.001,
                             now=NOW))
    pd.testing.assert_frame_equal(pd.concat(pages), BARS, check_freq=False)
    assert not fake.faults  # every fault was met and got past


def test_retries_give_up_with_one_line(exchange):
    fake, ex = exchange
    fake.fail(*[Fault(503, "down")] * 4)
    with pytest.raises(ExchangeError, match="still failing after 3 attempts") as err:
        list(fetch_range(ex, "BTC/USDT", "1h", BARS.index[0], retries=2, backoff=0.001,
                         now=NOW))
    assert "\n" not in str(err.value)


def test_non_retryable_error_is_reported_at_once_in_one_line(exchange):
    fake, ex = exchange
    fake.fail(Fault(400, '{"code": -1100, "msg": "Illegal characters found in parameter"}'))
    with pytest.raises(ExchangeError, match="Illegal characters") as err:
        list(fetch_range(ex, "BTC/USDT", "1h", BARS.index[0], now=NOW))
    assert "\n" not in str(err.value) and fake.count(KLINES) == 1


FIRST_MS = int(BARS.index[0].timestamp() * 1000)


@pytest.mark.parametrize("body", [
    '{"unexpected": true}', '[["x"]]', "<html>oops</html>", "null", "[1, 2, 3]", "[[1, 2]]",
    '["a"]', "[{}]", '""', "123", "{", "[[", f'[[{FIRST_MS}, "1", "2", "0.5", "1.5"]]',
    f'[[{FIRST_MS}, "1", "2", "0.5", "1.5", "x"]]', f'[[{FIRST_MS}, "-1", "2", "0.5", "1.5", "3"]]',
    f'[[{FIRST_MS}, "1", "0.5", "2", "1.5", "3"]]',
])
def test_malformed_body_is_refused(exchange, body):
    fake, ex = exchange
    fake.fail(Fault(200, body))
    with pytest.raises((ExchangeError, DataError)) as err:
        list(fetch_range(ex, "BTC/USDT", "1h", BARS.index[0], now=NOW, backoff=0.001))
    assert "\n" not in str(err.value)


def test_malformed_markets_are_refused(exchange):
    fake, ex = exchange
    fake.fail(Fault(200, '{"symbols": "nope"}', path="/api/v3/exchangeInfo"))
    with pytest.raises((ExchangeError, DataError)):
        list(fetch_range(ex, "BTC/USDT", "1h", BARS.index[0], now=NOW))


def test_timeouts_are_retried(exchange):
    fake, _ = exchange
    ex = make_exchange("binance", api_url=fake.url, rate_limit=False, timeout_ms=200)
    fake.fail(Fault(200, "[]", delay=1.0), Fault(200, "[]", delay=1.0))
    pages = list(fetch_range(ex, "BTC/USDT", "1h", BARS.index[0], limit=1000, backoff=0.001,
                             now=NOW))
    pd.testing.assert_frame_equal(pd.concat(pages), BARS, check_freq=False)


def test_exchange_dying_midway_leaves_a_valid_store_and_update_completes(exchange, tmp_path):
    fake, ex = exchange
    store = open_store(tmp_path)
    fake.die_after(3)  # markets and two pages of klines, then every connection is dropped
    with pytest.raises(ExchangeError, match="still failing after 2 attempts") as err:
        update_store(store, KEY, ex, since=BARS.index[0], limit=1000, retries=1,
                     backoff=0.001, now=NOW)
    assert "\n" not in str(err.value)
    pd.testing.assert_frame_equal(store.read(KEY), BARS.iloc[:2000], check_freq=False)
    fake.revive()
    added = update_store(store, KEY, ex, since=BARS.index[0], limit=1000, now=NOW)
    assert added == 2500
    pd.testing.assert_frame_equal(store.read(KEY), BARS, check_freq=False)
    assert update_store(store, KEY, ex, since=BARS.index[0], now=NOW) == 0


def test_download_process_killed_midway_then_update_completes(tmp_path):
    """SIGKILL the real CLI mid-download: the store stays valid and `update` fills the rest."""
    data_dir = tmp_path / "data"
    path = open_store(data_dir).path(KEY)
    with ExchangeSimulator(BARS) as fake:
        fake.latency = 0.05  # 45 pages of 100 bars: several seconds in all
        args = [sys.executable, "-m", "mlstrategy.cli", "data", "download", "binance",
                "BTC/USDT", "-t", "1h", "--since", str(BARS.index[0].date()), "--limit", "100",
                "--api-url", fake.url, "--store", str(data_dir)]
        proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            deadline = time.monotonic() + 120
            while not path.exists() and proc.poll() is None and time.monotonic() < deadline:
                time.sleep(0.01)
            time.sleep(0.2)  # a few more pages, likely killed in the middle of one
        finally:
            proc.send_signal(signal.SIGKILL)
            proc.wait()
        assert proc.returncode == -signal.SIGKILL  # it did not finish on its own
        partial = open_store(data_dir).read(KEY)  # validates
        assert 0 < len(partial) < len(BARS)
        pd.testing.assert_frame_equal(partial, BARS.iloc[:len(partial)], check_freq=False)
        fake.latency = 0.0
        ex = make_exchange("binance", api_url=fake.url, rate_limit=False)
        added = update_store(open_store(data_dir), KEY, ex, since=BARS.index[0], now=NOW)
    assert added == len(BARS) - len(partial)
    pd.testing.assert_frame_equal(open_store(data_dir).read(KEY), BARS, check_freq=False)
    assert [p.name for p in path.parent.glob("*.parquet")] == [path.name]


def test_unknown_symbol_and_exchange(exchange):
    _, ex = exchange
    with pytest.raises(ExchangeError, match="symbol"):
        list(fetch_range(ex, "NOPE/USDT", "1h", BARS.index[0], now=NOW))
    with pytest.raises(ExchangeError, match="unknown exchange"):
        make_exchange("not-an-exchange")


def test_offline_exchange_fails_fast_in_one_line():
    ex = make_exchange("binance", api_url="http://127.0.0.1:9")  # nothing listens there
    started = time.perf_counter()
    with pytest.raises(ExchangeError, match="cannot connect.*offline") as err:
        list(fetch_range(ex, "BTC/USDT", "1h", BARS.index[0], backoff=10.0, now=NOW))
    assert time.perf_counter() - started < 5  # no retries with a 10 s backoff happened
    assert "\n" not in str(err.value)


def test_dropped_connection_mid_download_is_retried(exchange):
    fake, ex = exchange
    fake.fail(Fault(status=0))
    pages = list(fetch_range(ex, "BTC/USDT", "1h", BARS.index[0], backoff=0.001, now=NOW))
    pd.testing.assert_frame_equal(pd.concat(pages), BARS, check_freq=False)

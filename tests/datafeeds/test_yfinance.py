"""yfinance: offline is one clean, fast error; real Yahoo frames normalise to the contract."""
from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from datafeeds.download_yfinance import download_yfinance, normalise_yfinance

_OFFLINE = {**os.environ, "HTTPS_PROXY": "http://127.0.0.1:9", "HTTP_PROXY": "http://127.0.0.1:9",
            "https_proxy": "http://127.0.0.1:9", "http_proxy": "http://127.0.0.1:9"}


def _yahoo_layout(shared_data) -> pd.DataFrame:
    """The real ORCL Yahoo download, in the column layout yfinance.download returns."""
    raw = pd.read_csv(shared_data / "backtrader/orcl-1995-2014.txt", index_col="Date",
                      parse_dates=True)
    raw.columns = pd.MultiIndex.from_product([raw.columns, ["ORCL"]],
                                             names=["Price", "Ticker"])
    return raw


def test_yfinance_layout_normalises(shared_data):
    bars = normalise_yfinance(_yahoo_layout(shared_data), "ORCL", adjusted=False)
    assert str(bars.index[0]) == "1995-01-03 00:00:00+00:00"
    assert list(bars.columns) == ["open", "high", "low", "close", "volume"]
    adjusted = normalise_yfinance(_yahoo_layout(shared_data), "ORCL", adjusted=True)
    ratio = adjusted["close"] / bars["close"]
    np.testing.assert_allclose(adjusted["open"] / bars["open"], ratio, rtol=1e-12)


def test_offline_download_is_one_line_exit_2_and_fast():
    result = subprocess.run(
        [sys.executable, "-m", "mlstrategy.cli", "data", "download", "yahoo", "AAPL",
         "-t", "1d", "--since", "2024-01-01"],
        env=_OFFLINE, capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "error: yahoo returned no bars for 'AAPL' (1d, 2024-01-01 .. None): offline, unknown "
        "symbol, or no trading in that range"]


@pytest.mark.network
def test_real_download():
    bars, report = download_yfinance("AAPL", interval="1d", start="2024-01-01",
                                     end="2024-02-01")
    assert 15 <= len(bars) <= 23 and report.rows == len(bars)


def test_download_drops_the_forming_bar_and_validates(shared_data, monkeypatch):
    """The real ORCL frame as yfinance hands it over (no network: yf.download replaced)."""
    import yfinance

    layout = _yahoo_layout(shared_data)
    monkeypatch.setattr(yfinance, "download", lambda *args, **kwargs: layout)
    during_last_day = pd.Timestamp("2014-12-31 15:00", tz="UTC")
    bars, report = download_yfinance("ORCL", interval="1d", now=during_last_day)
    assert str(bars.index[-1]) == "2014-12-30 00:00:00+00:00"
    assert report.repairs == ("dropped the forming candle opened at 2014-12-31 00:00:00+00:00",)
    bars, report = download_yfinance("ORCL", interval="1d", adjusted=True)
    assert len(bars) == 5036 and report.repairs == ()


def test_unsupported_interval_is_a_data_error():
    from datafeeds import DataError

    with pytest.raises(DataError, match="not supported"):
        download_yfinance("AAPL", interval="3h")

"""Daily and intraday stock bars from Yahoo Finance through yfinance.

yfinance does not raise when it cannot reach Yahoo (or the symbol is unknown): it logs and
returns an empty frame. That case becomes one clear ``ExchangeError`` here, at once. A last bar
that has not closed yet is dropped (and reported); everything else goes through the one
validator, strictly.
"""
from __future__ import annotations

import logging
import warnings
from dataclasses import replace

import pandas as pd

from datafeeds.errors import DataError, ExchangeError
from datafeeds.ohlcv import COLUMNS
from datafeeds.quality import ValidationReport, check_ohlcv, drop_forming
from datafeeds.store import BarStore, StoreKey

_INTERVALS = ("1m", "2m", "5m", "15m", "30m", "60m", "90m", "1h", "1d", "5d", "1wk", "1mo")
# yfinance interval -> our timeframe spelling, for the forming-bar check ("1mo" varies: none)
_TIMEFRAMES = {"60m": "1h", "1wk": "1w", "1mo": None}


def adjust_to_adj_close(bars: pd.DataFrame, adj_close: pd.Series | None, *, source: str
                        ) -> pd.DataFrame:
    """Split- and dividend-adjusted bars: open/high/low/close scaled by ``Adj Close / Close``.

    One factor per bar for all four prices keeps each bar consistent (high stays the high);
    volume is left as traded.
    """
    if adj_close is None:
        raise DataError(f"{source}: adjusting needs an 'Adj Close' column (Yahoo format)")
    out = bars.copy()
    factor = adj_close.astype("float64") / bars["close"]
    for col in ("open", "high", "low", "close"):
        out[col] = bars[col] * factor
    return out


def normalise_yfinance(raw: pd.DataFrame, symbol: str, *, adjusted: bool) -> pd.DataFrame:
    """yfinance's frame (single- or multi-level columns, naive or zoned index) -> OHLCV.

    Parameters
    ----------
    raw : pandas.DataFrame
        What ``yfinance.download(..., auto_adjust=False)`` returned.
    symbol : str
        The ticker, to pick its columns from a multi-ticker frame.
    adjusted : bool
        Scale open/high/low/close by ``Adj Close / Close`` consistently.

    Returns
    -------
    pandas.DataFrame
        Unvalidated OHLCV bars with a UTC index (naive daily dates become 00:00 UTC).
    """
    frame = raw.copy()
    if isinstance(frame.columns, pd.MultiIndex):  # ('Close', 'AAPL') since yfinance 0.2.48
        level = frame.columns.names.index("Ticker") if "Ticker" in frame.columns.names else 1
        frame = frame.xs(symbol, axis=1, level=level)
    frame.columns = [str(c).lower() for c in frame.columns]
    missing = [c for c in COLUMNS if c not in frame.columns]
    if missing:
        raise DataError(f"yahoo {symbol}: response lacks {missing} (columns "
                        f"{list(frame.columns)})")
    out = frame[list(COLUMNS)].astype("float64")
    if adjusted:
        out = adjust_to_adj_close(out, frame.get("adj close"), source=f"yahoo {symbol}")
    index = pd.DatetimeIndex(frame.index)
    out.index = (index.tz_localize("UTC") if index.tz is None else index.tz_convert("UTC")
                 ).rename("datetime")
    return out


def download_yfinance(symbol: str, *, interval: str = "1d", start: str | None = None,
                      end: str | None = None, adjusted: bool = False,
                      now: pd.Timestamp | None = None
                      ) -> tuple[pd.DataFrame, ValidationReport]:
    """Download ``symbol`` bars from Yahoo Finance, drop a still-forming bar, validate.

    Parameters
    ----------
    symbol : str
        Yahoo ticker, e.g. ``AAPL`` or ``^GSPC``.
    interval : str
        yfinance interval (``1m`` ... ``1d``, ``1wk``, ``1mo``); ``1w`` is read as ``1wk``.
    start, end : str, optional
        First day and the day to stop before (``YYYY-MM-DD``); Yahoo's defaults otherwise.
    adjusted : bool
        Scale open/high/low/close by ``Adj Close / Close`` (split- and dividend-adjusted bars);
        otherwise Yahoo's unadjusted-for-dividends prices are kept as they are.
    now : pandas.Timestamp, optional
        The current time (tests); a last bar not closed by then is dropped and reported.

    Returns
    -------
    (pandas.DataFrame, ValidationReport)
        Valid bars (UTC bar open times; daily bars at 00:00 UTC of their date) and the report.

    Raises
    ------
    ExchangeError
        When Yahoo answers nothing (offline, unknown symbol, or no bars in the range).
    DataError
        For an unsupported interval or bars that break the OHLCV contract.
    """
    import yfinance as yf

    interval = "1wk" if interval == "1w" else interval
    if interval not in _INTERVALS:
        raise DataError(f"yfinance interval {interval!r} not supported; use one of "
                        f"{list(_INTERVALS)}")
    logging.getLogger("yfinance").setLevel(logging.CRITICAL)  # we report the failure ourselves
    with warnings.catch_warnings():  # yfinance's own pandas deprecation noise
        warnings.simplefilter("ignore")
        raw = yf.download(symbol, start=start, end=end, interval=interval, auto_adjust=False,
                          progress=False, threads=False)
    if raw is None or raw.empty:
        raise ExchangeError(f"yahoo returned no bars for {symbol!r} ({interval}, {start} .. "
                            f"{end}): offline, unknown symbol, or no trading in that range")
    bars = normalise_yfinance(raw, symbol, adjusted=adjusted)
    timeframe = _TIMEFRAMES.get(interval, interval)
    repairs: list[str] = []
    if timeframe is not None:
        bars, repairs = drop_forming(bars, timeframe, now or pd.Timestamp.now(tz="UTC"))
    if bars.empty:
        raise ExchangeError(f"yahoo has no closed {interval} bar of {symbol!r} yet in "
                            f"{start} .. {end}; try again after the bar closes")
    valid, report = check_ohlcv(bars, source=f"yahoo:{symbol}")
    return valid, replace(report, repairs=tuple(repairs))


def update_store_yahoo(store: BarStore, key: StoreKey, *, since: pd.Timestamp | None = None,
                       until: pd.Timestamp | None = None, adjusted: bool = False,
                       now: pd.Timestamp | None = None) -> tuple[int, ValidationReport]:
    """Download the daily/intraday bars of ``key`` from Yahoo into ``store``, resuming.

    Yahoo takes whole days, so the request starts at the day of the last stored bar (or
    ``since``); the bars already stored are skipped by ``append``. Returns the bars added and
    the download's report.
    """
    last = store.last_bar(key)
    start = since if last is None else last
    bars, report = download_yfinance(
        key.symbol, interval=key.timeframe, adjusted=adjusted, now=now,
        start=None if start is None else start.strftime("%Y-%m-%d"),
        end=None if until is None else until.strftime("%Y-%m-%d"))
    return store.append(key, bars), report

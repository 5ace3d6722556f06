"""Daily and intraday stock bars from Yahoo Finance through yfinance.

yfinance does not raise when it cannot reach Yahoo (or the symbol is unknown): it logs and
returns an empty frame. That case becomes one clear ``ExchangeError`` here, at once.
"""
from __future__ import annotations

import logging
import warnings

import pandas as pd

from datafeeds.errors import DataError, ExchangeError
from datafeeds.ohlcv import COLUMNS
from datafeeds.validate import ValidationReport, check_ohlcv

_INTERVALS = ("1m", "2m", "5m", "15m", "30m", "60m", "90m", "1h", "1d", "5d", "1wk", "1mo")


def normalise_yfinance(raw: pd.DataFrame, symbol: str, *, adjusted: bool) -> pd.DataFrame:
    """yfinance's frame (single- or multi-level columns, naive or zoned index) -> OHLCV.

    With ``adjusted``, open/high/low/close are scaled by ``Adj Close / Close`` consistently.
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
        if "adj close" not in frame.columns:
            raise DataError(f"yahoo {symbol}: no 'Adj Close' column to adjust with")
        factor = frame["adj close"] / frame["close"]
        for col in ("open", "high", "low", "close"):
            out[col] = out[col] * factor
    index = pd.DatetimeIndex(frame.index)
    out.index = (index.tz_localize("UTC") if index.tz is None else index.tz_convert("UTC")
                 ).rename("datetime")
    return out


def download_yfinance(symbol: str, *, interval: str = "1d", start: str | None = None,
                      end: str | None = None, adjusted: bool = False
                      ) -> tuple[pd.DataFrame, ValidationReport]:
    """Download ``symbol`` bars and validate them.

    Raises
    ------
    ExchangeError
        When Yahoo answers nothing (offline, unknown symbol, or no bars in the range).
    """
    import yfinance as yf

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
    return check_ohlcv(bars, source=f"yahoo:{symbol}")

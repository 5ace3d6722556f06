"""Bars in and out: the OHLCV contract, loaders, downloaders, store and backtrader feeds.

Imports nothing from the rest of mlstrategy; only this package talks to ccxt and yfinance.
Importing it stays light (pandas only): the backtrader feed (``datafeeds.bt.feed``) and the
downloaders (``datafeeds.exchange.history``, ``datafeeds.download_yfinance``) are imported from
their modules when needed.
"""
from __future__ import annotations

from datafeeds.errors import DataError, ExchangeError
from datafeeds.loaders import load_file, load_file_checked, read_bars
from datafeeds.ohlcv import COLUMNS, validate_ohlcv
from datafeeds.resample import resample
from datafeeds.samples import DEFAULT_SAMPLE, SAMPLES, load_sample
from datafeeds.store import Store, StoreKey
from datafeeds.validate import ValidationReport, check_ohlcv

__all__ = [
    "COLUMNS",
    "DEFAULT_SAMPLE",
    "SAMPLES",
    "DataError",
    "ExchangeError",
    "Store",
    "StoreKey",
    "ValidationReport",
    "check_ohlcv",
    "load_file",
    "load_file_checked",
    "load_sample",
    "read_bars",
    "resample",
    "validate_ohlcv",
]

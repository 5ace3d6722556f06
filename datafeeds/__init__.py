"""Bars in and out: the OHLCV contract, loaders, downloaders, store and backtrader feeds.

Imports nothing from the rest of mlstrategy; only this package talks to ccxt and yfinance.
"""
from __future__ import annotations

from datafeeds.errors import DataError, ExchangeError
from datafeeds.ohlcv import COLUMNS, validate_ohlcv
from datafeeds.samples import DEFAULT_SAMPLE, SAMPLES, load_sample

__all__ = [
    "COLUMNS",
    "DEFAULT_SAMPLE",
    "SAMPLES",
    "DataError",
    "ExchangeError",
    "load_sample",
    "validate_ohlcv",
]

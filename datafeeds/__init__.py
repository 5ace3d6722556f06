"""Bars in and out: the OHLCV contract, loaders, downloaders, store and backtrader feeds.

Imports nothing from the rest of mlstrategy; only this package talks to ccxt and yfinance.
Importing it is nearly free: the names below load their modules (and pandas) on first use, so
a command's ``--help`` never waits for them. The backtrader feeds (``datafeeds.bt``) and the
exchange code (``datafeeds.exchange``) are imported from their modules when needed.
"""
from __future__ import annotations

import importlib

from datafeeds.errors import DataError, ExchangeError

_LAZY = {"load_file": "loaders", "load_file_checked": "loaders", "read_bars": "loaders",
         "COLUMNS": "ohlcv", "validate_ohlcv": "ohlcv", "resample": "resampling",
         "DEFAULT_SAMPLE": "samples", "SAMPLES": "samples", "load_sample": "samples",
         "open_store": "stores", "BarStore": "store", "StoreKey": "store",
         "ValidationReport": "quality", "check_ohlcv": "quality"}

__all__ = ["DataError", "ExchangeError", *_LAZY]


def __getattr__(name: str) -> object:
    """Load a public name's module on first use (PEP 562)."""
    if name not in _LAZY:
        raise AttributeError(f"module 'datafeeds' has no attribute {name!r}")
    return getattr(importlib.import_module(f"datafeeds.{_LAZY[name]}"), name)

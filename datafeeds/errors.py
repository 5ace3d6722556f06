"""Errors raised by datafeeds: every way bars come in ends in one of these."""
from __future__ import annotations


class DataError(ValueError):
    """Market data that breaks the OHLCV contract, or a file that cannot be read as bars.

    The message names the source, the offending rows and the rule broken, and says how to fix it.
    """


class ExchangeError(RuntimeError):
    """An exchange or data vendor failed (offline, rejected, rate limited beyond retries)."""

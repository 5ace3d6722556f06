"""Errors raised by datafeeds: every way bars come in ends in one of these."""
from __future__ import annotations


class DataError(ValueError):
    """Market data that breaks the OHLCV contract, or a file that cannot be read as bars.

    The message names the source, the offending rows and the rule broken, and says how to fix it.
    """


class ExchangeError(RuntimeError):
    """An exchange or data vendor failed (offline, rejected, rate limited beyond retries)."""


class OrderRejected(ExchangeError):
    """The exchange refused an order: it was not placed (or was refused before sending)."""


class InsufficientFunds(OrderRejected):
    """The account's balance cannot pay for the order."""


class AuthFailed(ExchangeError):
    """The exchange refused the API credentials or their permissions."""


class RateLimited(ExchangeError):
    """The exchange keeps answering "too many requests"."""


class OrderNotFound(ExchangeError):
    """The exchange has no order under the id or client id asked for."""

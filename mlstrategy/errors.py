"""Errors of the mlstrategy package and the tuple of every error a user can cause.

``datafeeds`` and ``features_numba`` import nothing of ours, so their roots (``DataError``,
``ExchangeError``, ``FeatureError``) cannot derive from ``MLStrategyError``; ``USER_ERRORS``
gathers all of them for the CLIs, which turn any of them into one line and exit code 2.
"""
from __future__ import annotations

from datafeeds.errors import DataError, ExchangeError
from features_numba.errors import FeatureError


class MLStrategyError(Exception):
    """Root of the errors raised by mlstrategy itself."""


class ModelError(MLStrategyError, ValueError):
    """A model artifact is missing, corrupt, or does not fit the data or features given."""


class ConfigError(MLStrategyError, ValueError):
    """A configuration file or option is invalid."""


class PositionMismatch(MLStrategyError):
    """The bot's journal and the exchange disagree on what the bot holds: it stopped trading.

    The CLIs exit with code 3 (not 2: nothing the user typed was wrong).
    """


USER_ERRORS: tuple[type[BaseException], ...] = (
    MLStrategyError,
    DataError,
    ExchangeError,
    FeatureError,
)

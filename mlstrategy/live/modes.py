"""How a bot runs: ``Mode`` (its journal is keyed by the string)."""
from __future__ import annotations

from enum import StrEnum


class Mode(StrEnum):
    """How a bot runs."""

    PAPER = "paper"  # an exchange's live candles, backtrader's simulated broker
    LIVE = "live"  # the real account
    REPLAY = "replay"  # a file served by the local exchange simulator

"""How a bot runs: ``Mode`` (its journal is keyed by the string), and its warm-up."""
from __future__ import annotations

from enum import StrEnum

# closed bars a bot fetches at start to warm its features up (``--history``); a portfolio's
# replay and backtest both start at least this many bars into every market's data
WARM_UP_BARS = 1000


class Mode(StrEnum):
    """How a bot runs."""

    PAPER = "paper"  # an exchange's live candles, backtrader's simulated broker
    LIVE = "live"  # the real account
    REPLAY = "replay"  # a file served by the local exchange simulator

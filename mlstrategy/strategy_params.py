"""``StrategyParams``: ``MLStrategy``'s trading options, one frozen dataclass for every caller."""
from __future__ import annotations

from dataclasses import dataclass

SIZINGS = ("fraction", "units", "vol_target")


@dataclass(frozen=True)
class StrategyParams:
    """``MLStrategy``'s trading parameters (thresholds None: the model's own)."""

    enter: float | None = None
    exit: float | None = None
    allow_short: bool = False
    sizing: str = "fraction"
    fraction: float = 0.95
    units: float = 1.0
    vol_target: float = 0.01
    atr_period: int = 14
    stop_loss: float | None = None
    take_profit: float | None = None
    max_bars_held: int | None = None
    cooldown: int = 0

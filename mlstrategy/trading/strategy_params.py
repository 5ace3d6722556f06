"""``StrategyParams``: how a model is traded, one frozen dataclass for every caller.

``backtest`` (both engines), the walk-forward, the grid, promotion, the cycle and the bot all
take it, ``MLStrategy`` takes its trading options (``options()``), and the CLIs build it from
one shared set of options (``cli.strategy_options``). The costs' and the cash's defaults are
defined here and nowhere else; the commission defaults to the cost the model was trained and
validated with (its manifest), so a backtest is costed as its training was.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, fields, replace
from enum import StrEnum

CASH = 100_000.0  # starting cash of a backtest and of a paper bot
COMMISSION = 0.001  # per side, a fraction of the traded value (10 bps): training's --cost


class Sizing(StrEnum):
    """How big a position is (the strings are what options, JSON and journals hold)."""

    FRACTION = "fraction"  # a fraction of the portfolio value
    UNITS = "units"  # a fixed number of units
    VOL_TARGET = "vol_target"  # the position whose one-ATR move is a target of the value


SIZINGS = tuple(s.value for s in Sizing)
COSTS = ("cash", "commission", "slippage", "borrow_rate")  # the broker's, not the strategy's


@dataclass(frozen=True)
class StrategyParams:
    """``MLStrategy``'s trading options and the broker's costs (thresholds None: the
    model's own; commission None: the model's training cost)."""

    enter: float | None = None
    exit: float | None = None
    allow_short: bool = False
    sizing: str = Sizing.FRACTION.value
    fraction: float = 0.95
    units: float = 1.0
    vol_target: float = 0.01
    atr_period: int = 14
    stop_loss: float | None = None
    take_profit: float | None = None
    max_bars_held: int | None = None
    cooldown: int = 0
    cash: float = CASH
    commission: float | None = None
    slippage: float = 0.0  # fraction of price, always against the order, in full
    borrow_rate: float = 0.0  # annual, on the value of short positions (per calendar day)

    def options(self) -> dict:
        """The trading options, as ``MLStrategy``'s params take them (costs left out)."""
        return {k: v for k, v in asdict(self).items() if k not in COSTS}

    def costed(self, training_cost: float) -> StrategyParams:
        """These parameters with the commission resolved (the model's ``training_cost``
        when none was given)."""
        if self.commission is not None:
            return self
        return replace(self, commission=float(training_cost))

    @property
    def costs(self) -> tuple[float, float, float]:
        """(commission, slippage, borrow rate): what a trial's identity records."""
        return (float(self.commission if self.commission is not None else COMMISSION),
                self.slippage, self.borrow_rate)


OPTION_NAMES = tuple(f.name for f in fields(StrategyParams) if f.name not in COSTS)

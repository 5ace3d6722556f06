"""The strategy's options, one set for ``backtest`` and the bot: passed to the command as one
``params: StrategyParams`` (its defaults are ``StrategyParams``'s)."""
from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import fields
from typing import TypeVar

import click

from mlstrategy.trading.strategy_params import CASH, SIZINGS, StrategyParams

F = TypeVar("F", bound=Callable)
_DEFAULTS = StrategyParams()
_FIELDS = tuple(f.name for f in fields(StrategyParams))

_OPTIONS = (
    click.option("--cash", type=click.FloatRange(min=0, min_open=True), default=CASH,
                 show_default=True, help="Starting cash (of a backtest or a paper bot)."),
    click.option("--commission", type=click.FloatRange(0.0, 0.1), help="Commission per side "
                 "as a fraction of traded value. Default: the cost the model was trained "
                 "with (its manifest; 0.001 unless `train --cost` said otherwise)."),
    click.option("--slippage", type=click.FloatRange(0.0, 0.1), default=_DEFAULTS.slippage,
                 show_default=True, help="Slippage as a fraction of price, always against the "
                 "order and in full (beyond the bar's high or low if need be)."),
    click.option("--borrow-rate", type=click.FloatRange(0.0, 5.0),
                 default=_DEFAULTS.borrow_rate, show_default=True, help="Annual rate shorts "
                 "pay on their value, per calendar day held (e.g. 0.05 for 5%%)."),
    click.option("--enter", type=click.FloatRange(0.0, 1.0), help="P(up) to go long "
                 "(default: the model's threshold)."),
    click.option("--exit", "exit_", type=click.FloatRange(0.0, 1.0), help="P(up) below which "
                 "a long is closed (default: the model's threshold)."),
    click.option("--allow-short", is_flag=True, help="Also go short when P(down) reaches the "
                 "enter threshold."),
    click.option("--sizing", type=click.Choice(SIZINGS), default=_DEFAULTS.sizing,
                 show_default=True, help="Position size: a fraction of the value, a fixed "
                 "number of units, or a volatility target by ATR."),
    click.option("--fraction", type=click.FloatRange(0.01, 1.0), default=_DEFAULTS.fraction,
                 show_default=True, help="Fraction of portfolio value held (the cap for "
                 "vol_target)."),
    click.option("--units", type=click.FloatRange(min=0, min_open=True),
                 default=_DEFAULTS.units, show_default=True,
                 help="Units per position for --sizing units."),
    click.option("--vol-target", type=click.FloatRange(min=0, min_open=True),
                 default=_DEFAULTS.vol_target, show_default=True, help="For --sizing "
                 "vol_target: a one-ATR move is this fraction of the value."),
    click.option("--atr-period", type=click.IntRange(min=1), default=_DEFAULTS.atr_period,
                 show_default=True, help="Bars of the ATR that --sizing vol_target uses."),
    click.option("--stop-loss", type=click.FloatRange(0.0, 1.0, min_open=True),
                 help="Stop-loss as a fraction of the price (a bracket order)."),
    click.option("--take-profit", type=click.FloatRange(0.0, 10.0, min_open=True),
                 help="Take-profit as a fraction of the price (a bracket order)."),
    click.option("--max-bars-held", type=click.IntRange(min=1), help="Close a position after "
                 "this many bars."),
    click.option("--cooldown", type=click.IntRange(min=0), default=_DEFAULTS.cooldown,
                 show_default=True, help="Bars to wait after closing before entering again."),
)


def strategy_options(func: F) -> F:
    """Add the strategy's options to a command; it receives them as ``params``."""

    @functools.wraps(func)
    def command(*args, **kwargs):
        kwargs["exit"] = kwargs.pop("exit_")  # --exit's parameter (exit is a builtin)
        params = StrategyParams(**{name: kwargs.pop(name) for name in _FIELDS})
        return func(*args, params=params, **kwargs)

    for option in reversed(_OPTIONS):
        command = option(command)
    return command

"""Replays: recorded bars served by the local exchange simulator, as if it were an exchange.

The bot then runs exactly as against a real exchange (REST over HTTP through ccxt, the live
feed, the broker), on bars it can be checked against. By default the replay trades the bars a
model never trained on (its holdout), warmed on the bars before them.
"""
from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass

import pandas as pd

from execution.sim_book import INTERVAL_MS, SimClock
from execution.simulator import ExchangeSimulator
from features_numba import FeatureSpec
from features_numba.batch import bucketed
from mlstrategy.errors import ConfigError
from mlstrategy.live.market_bars import followed, poll_timeframe
from mlstrategy.research.dataset import Dataset


@dataclass(frozen=True)
class ReplayMarket:
    """The simulated market of a replay."""

    url: str
    symbol: str  # BASE/QUOTE as the bot trades it
    timeframe: str
    start: int  # first bar traded (index into the dataset's bars)
    bars_left: int  # bars from ``start`` to the end of the data


def market_symbol(symbol: str) -> tuple[str, str]:
    """``BTC/USD`` -> ``("BTC", "USD")`` (a perpetual's ``BTC/USDT:USDT`` too); a ticker
    such as ``ORCL`` is quoted in USD."""
    base, _, quote = symbol.upper().partition(":")[0].partition("/")
    clean = "".join(ch for ch in base if ch.isalnum()) or "ASSET"
    return clean, ("".join(ch for ch in quote if ch.isalnum()) or "USD")


@contextlib.contextmanager
def simulated_market(dataset: Dataset, start: int, *, speed: float | None,
                     balances: dict[str, float] | None = None,
                     others: dict[str, tuple[pd.DataFrame, str]] | None = None
                     ) -> Iterator[ReplayMarket]:
    """Serve ``dataset`` from a simulator whose clock starts at bar ``start``'s open.

    Parameters
    ----------
    dataset : Dataset
        The bars to serve.
    start : int
        First bar that is not closed yet when the replay begins (bars before it are history).
    speed : float or None
        Clock speed (x real time); None moves it one bar each time the bot has read every
        closed bar (as fast as the bot runs).
    balances : dict, optional
        Opening balances of the simulated account (quote asset, e.g. ``{"USD": 10000}``).
    others : dict, optional
        Other markets listed too (whose bars a model's features read), by symbol: their bars
        and bar size. The clock does not wait for them: a bot reads them when it needs them.
    """
    bars = dataset.bars
    if not 0 < start < len(bars):
        raise ConfigError(f"replay start bar {start} is outside the {len(bars)} bars given "
                          "(it needs at least one bar of history before it)")
    timeframe = dataset.timeframe
    if timeframe not in INTERVAL_MS:
        raise ConfigError(f"cannot replay {timeframe!r} bars; the simulator serves "
                          f"{', '.join(INTERVAL_MS)}")
    base, quote = market_symbol(dataset.info.symbol)
    clock = SimClock(int(bars.index[start].value // 1_000_000), speed)
    with ExchangeSimulator(bars, base=base, quote=quote, interval=timeframe, clock=clock,
                           balances=balances) as sim:
        for symbol, (other, interval) in (others or {}).items():
            other_base, other_quote = market_symbol(symbol)
            sim.add_market(other, base=other_base, quote=other_quote, awaited=False,
                           interval=interval)
        yield ReplayMarket(sim.url, f"{base}/{quote}", timeframe, start, len(bars) - start)


def served_others(dataset: Dataset, spec: FeatureSpec) -> dict[str, tuple[pd.DataFrame, str]]:
    """The other markets ``spec`` reads, as the simulator serves them: each at the bar size a
    bot polls it at (``market_bars.followed``), made of ``dataset``'s bars of it."""
    out = {}
    for market, (step, _) in followed(spec).items():
        timeframe = poll_timeframe(step)
        if timeframe not in INTERVAL_MS:
            raise ConfigError(f"cannot replay {market} at {timeframe}; the simulator serves "
                              f"{', '.join(INTERVAL_MS)}")
        out[market] = bucketed(dataset.others[market], step), timeframe
    return out

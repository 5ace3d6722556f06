"""The trading engine: ``MLStrategy``'s default rules over arrays, in Numba, trade for trade the
Cerebro run's (tested against it).

Long or flat on P(up) by ``decision.decide_nb`` (the rule the strategy calls), a position of
``fraction`` of the portfolio value at the decision bar's close, market orders decided on a
bar's close and filled at the next bar's open, slippage in full against the order, commission
on each fill's value, cash checked at the fill (a buy the cash cannot pay is refused, as
backtrader's Margin, and decided again on the next bar), the value after each bar at its close.
What a backtest report adds (the last value net of closing the open position, the statistics)
is applied to its arrays by the same report functions, so the training's trading metrics and
``backtest`` give the same figures on the same bars.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from numba import njit

from mlstrategy.decision import decide_nb


@njit(cache=True, nogil=True)
def long_flat_nb(open_, close, proba, enter, exit_, fraction, cash, commission, slippage,
                 values, fills):
    """Run the default strategy; fill ``values`` (n) and ``fills`` (n x 4: bar, signed size,
    price, fee); returns (fills written, buys refused for cash). Matches backtrader's
    BackBroker + ``MLStrategy`` with ``set_checksubmit(False)``."""
    n = close.shape[0]
    position = 0.0
    entry = 0.0  # the position's price
    pending = 0.0  # signed size of the order waiting for the next open
    written = 0
    refused = 0
    for i in range(n):
        # cash moves in backtrader's order of operations, so the sizes come out bit for bit
        if pending > 0.0:
            price = open_[i] * (1.0 + slippage)
            fee = pending * commission * price
            left = cash - pending * price - fee
            if left < 0.0:
                refused += 1
            else:
                cash = left
                position += pending
                entry = price
                fills[written, 0], fills[written, 1] = i, pending
                fills[written, 2], fills[written, 3] = price, fee
                written += 1
        elif pending < 0.0:
            price = open_[i] * (1.0 - slippage)
            size = -pending
            fee = size * commission * price
            cash += size * entry + size * (price - entry)  # the cost back, and the PnL
            cash -= fee
            position -= size
            fills[written, 0], fills[written, 1] = i, pending
            fills[written, 2], fills[written, 3] = price, fee
            written += 1
        pending = 0.0
        value = cash + position * close[i]
        current = 1 if position > 0.0 else 0
        target = decide_nb(proba[i], current, enter, exit_, False)
        if target == 1 and current == 0:
            pending = fraction * value / close[i]
        elif target == 0 and current == 1:
            pending = -position
        values[i] = value
    return written, refused


@dataclass(frozen=True)
class EngineRun:
    """What the engine produced: the value after each bar, every fill, the closed trades."""

    values: np.ndarray  # portfolio value at each bar's close
    fill_bars: np.ndarray  # bar index of each fill
    fill_sizes: np.ndarray  # signed: + bought, - sold
    fill_prices: np.ndarray
    fill_fees: np.ndarray
    refused: int  # buys refused for lack of cash at the fill
    position: float  # still open at the end

    def marked(self, last_close: float, commission: float, slippage: float = 0.0
               ) -> np.ndarray:
        """``values`` with the last one net of closing the open position (as a report marks
        it: ``exit_cost``)."""
        values = self.values.copy()
        if len(values):
            values[-1] -= exit_cost(self.position, last_close, commission, slippage)
        return values

    @property
    def trade_pnls(self) -> np.ndarray:
        """Net PnL of each closed round trip (entry and exit fees included)."""
        buys = self.fill_sizes > 0
        entries, exits = np.flatnonzero(buys), np.flatnonzero(~buys)
        entries = entries[:len(exits)]  # the last entry may still be open
        size = self.fill_sizes[entries]
        return size * (self.fill_prices[exits] - self.fill_prices[entries]) \
            - self.fill_fees[entries] - self.fill_fees[exits]


def run_long_flat(open_: np.ndarray, close: np.ndarray, proba: np.ndarray, *, enter: float,
                  exit_: float, cash: float, commission: float, slippage: float = 0.0,
                  fraction: float = 0.95) -> EngineRun:
    """The default strategy over one stretch of bars (see module doc)."""
    n = len(close)
    values = np.empty(n)
    fills = np.empty((n, 4))
    written, refused = long_flat_nb(np.ascontiguousarray(open_, dtype=np.float64),
                                    np.ascontiguousarray(close, dtype=np.float64),
                                    np.ascontiguousarray(proba, dtype=np.float64),
                                    float(enter), float(exit_), float(fraction), float(cash),
                                    float(commission), float(slippage), values, fills)
    fills = fills[:written]
    sizes = fills[:, 1].copy()
    return EngineRun(values, fills[:, 0].astype(np.int64), sizes, fills[:, 2].copy(),
                     fills[:, 3].copy(), int(refused), float(sizes.sum()))


def buy_and_hold(bars: pd.DataFrame, cash: float, fraction: float, commission: float,
                 slippage: float = 0.0) -> np.ndarray:
    """Value after each bar of buying ``fraction`` of ``cash`` at the second bar's open (as
    the strategy's first possible fill) with the same commission and slippage, and holding;
    the last value is net of selling (``exit_cost``), as the strategy's is."""
    values = np.full(len(bars), float(cash))
    if len(bars) < 2:
        return values
    price = bars["open"].iloc[1] * (1 + slippage)
    units = fraction * cash / (price * (1 + commission))
    left = cash - units * price * (1 + commission)
    closes = bars["close"].to_numpy()
    values[1:] = left + units * closes[1:]
    values[-1] -= exit_cost(units, closes[-1], commission, slippage)
    return values


def exit_cost(size: float, price: float, commission: float, slippage: float) -> float:
    """What closing a position of signed ``size`` marked at ``price`` costs against that mark:
    the fill ``slippage`` worse, and ``commission`` on the fill's value."""
    fill = price * (1.0 - slippage) if size > 0 else price * (1.0 + slippage)
    return abs(size) * (abs(price - fill) + fill * commission)

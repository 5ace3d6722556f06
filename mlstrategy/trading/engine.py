"""The trading engine: ``MLStrategy``'s rules over arrays, in Numba, trade for trade the Cerebro
run of ``backtest`` (a test compares every fill, refusal and bar value).

One kernel (``trade_nb``) runs what ``MLStrategy`` and backtrader's ``BackBroker`` do bar by
bar, in their order:

- **broker, at the bar's open**: a short pays its borrow (``borrow_rate / 365`` a calendar
  day on its size at its entry price, backtrader's credit interest, added to the fee of the
  fill that closes it); the pending
  market order fills at the open (slippage in full; a buy the cash cannot pay is refused, as
  backtrader's Margin, and its children with it); the children of a filled entry are active
  from its fill on, that bar included (``ProtectiveBroker``, as protective orders resting on
  an exchange), and fill by backtrader's rules (a stop at the open when the open gaps through
  it, else at the stop; a limit at the open when the open is better, else at the limit; the
  stop first; one cancels the other);
- **strategy, at the bar's close**: the decision of ``decision.decide_nb`` on P(up) (a reversal
  goes flat first; ``max_bars_held`` closes; ``cooldown`` waits), sized as a ``fraction`` of the
  value, fixed ``units`` or a ``vol_target`` by Wilder's ATR; an entry with a stop-loss or a
  take-profit is a bracket; an exit cancels the children and closes at the next open;
- the value after the bar at its close, computed as backtrader does.

Cash moves in backtrader's order of operations, so sizes and prices come out bit for bit. What
a backtest report adds (the last value net of closing the open position, the statistics) is
applied to the arrays by the same report functions, so training's trading metrics,
champion/challenger and ``backtest --engine numba`` give the Cerebro run's figures.
"""
from __future__ import annotations

from dataclasses import dataclass

import numba
import numpy as np
import pandas as pd
from numba import njit, prange

from mlstrategy.trading.decision import decide_nb
from mlstrategy.trading.strategy_params import SIZINGS, StrategyParams

MARKET, STOP, LIMIT = 0, 1, 2  # how a fill came about
_NAN = np.nan


@njit(cache=True, nogil=True)
def _slip(price, slippage, buying):
    """backtrader's percentage slippage with ``slip_out``: in full, against the order."""
    if slippage == 0.0:
        return price
    return price * (1.0 + slippage) if buying else price * (1.0 - slippage)


@njit(cache=True, nogil=True)
def _value(cash, position, entry, close):
    """backtrader's ``BackBroker._get_value`` of one stock-like position (shortcash)."""
    dvalue = position * close
    if dvalue > 0.0:
        unrealized = position * (close - entry)
        return cash + ((dvalue - unrealized) / 1.0 + unrealized)
    return cash + (0.0 + dvalue)


@njit(cache=True, nogil=True)
def trade_nb(open_, high, low, close, day, proba, enter, exit_, allow_short, sizing, fraction,
             units, vol_target, atr_period, stop_loss, take_profit, max_bars_held, cooldown,
             cash, commission, slippage, credit_rate, store, values, fills, refusals, curve):
    """Run ``MLStrategy`` over the bars (module doc).

    ``enter``/``exit_`` are per-bar thresholds, or one for all bars; ``sizing`` 0 fraction,
    1 units, 2 vol_target; ``stop_loss``/``take_profit`` NaN for none; ``max_bars_held`` -1 for
    none. With ``store`` it writes the value after each bar, ``fills`` rows (bar, signed size,
    price, fee, kind) and ``refusals`` rows (bar, signed size); always ``curve``: the last
    value marked net of closing the open position (a report's mark), the sum and the sum of
    squares of the bar returns of that curve, and its maximum drawdown. Returns how many fills
    and refusals there were.
    """
    n = close.shape[0]
    per_bar = enter.shape[0] > 1
    previous = peak = cash  # of the value curve, for ``curve``
    sum_r = sum_r2 = drawdown = 0.0
    position = 0.0
    entry = 0.0  # the position's price
    position_day = 0  # calendar day of the last borrow charge (backtrader: pos.datetime)
    credit = 0.0  # borrow paid since the position opened, reported with the closing fee
    pending = 0.0  # signed size of the market order waiting for the next open
    stop_price = _NAN  # bracket children (NaN: none); active once their parent filled
    limit_price = _NAN
    children_active = False
    entry_bar = 0  # ``MLStrategy``'s book: bars seen when the position opened
    cooldown_until = 0
    atr = _NAN
    prev_close = _NAN
    written = 0
    refused = 0
    for i in range(n):
        # --- broker, at the open -----------------------------------------------------------
        if position != 0.0:
            if position < 0.0 and day[i] > position_day:
                charge = (day[i] - position_day) * credit_rate * abs(position) * entry
                cash -= charge
                credit += charge
            position_day = day[i]
        closed_at = -1  # bar whose fill closed the position, for the cooldown
        if pending != 0.0:
            buying = pending > 0.0
            price = _slip(open_[i], slippage, buying)
            size = abs(pending)
            fee = size * commission * price
            if position == 0.0:  # opening
                if buying:
                    left = cash - size * price - fee
                else:
                    left = cash + size * price - fee
                if left < 0.0:
                    if store:
                        refusals[refused, 0], refusals[refused, 1] = i, pending
                    refused += 1
                    stop_price = limit_price = _NAN
                else:
                    cash = left
                    position, entry, position_day = pending, price, day[i]
                    entry_bar = i
                    children_active = stop_price == stop_price or limit_price == limit_price
                    if store:
                        fills[written, 0], fills[written, 1] = i, pending
                        fills[written, 2], fills[written, 3], fills[written, 4] = \
                            price, fee, MARKET
                    written += 1
            else:  # closing what is held
                if position > 0.0:
                    cash += size * entry / 1.0 + size * (price - entry)
                else:
                    cash += -size * entry + -size * (price - entry)
                cash -= fee
                if store:
                    fills[written, 0], fills[written, 1], fills[written, 2] = i, pending, price
                    fills[written, 3], fills[written, 4] = fee + credit, MARKET
                written += 1
                position, credit, closed_at = 0.0, 0.0, i
            pending = 0.0
        if children_active and position != 0.0:
            long = position > 0.0
            price = _NAN
            kind = STOP
            if stop_price == stop_price:
                if long:
                    if open_[i] <= stop_price:
                        price = _slip(open_[i], slippage, False)
                    elif low[i] <= stop_price:
                        price = _slip(stop_price, slippage, False)
                else:
                    if open_[i] >= stop_price:
                        price = _slip(open_[i], slippage, True)
                    elif high[i] >= stop_price:
                        price = _slip(stop_price, slippage, True)
            if price != price and limit_price == limit_price:
                kind = LIMIT
                if long:
                    if limit_price <= open_[i]:
                        price = _slip(open_[i], slippage, False)
                    elif limit_price <= high[i]:
                        price = limit_price
                else:
                    if limit_price >= open_[i]:
                        price = _slip(open_[i], slippage, True)
                    elif limit_price >= low[i]:
                        price = limit_price
            if price == price:
                size = abs(position)
                fee = size * commission * price
                if long:
                    cash += size * entry / 1.0 + size * (price - entry)
                else:
                    cash += -size * entry + -size * (price - entry)
                cash -= fee
                if store:
                    fills[written, 0], fills[written, 1] = i, -position
                    fills[written, 2], fills[written, 3], fills[written, 4] = \
                        price, fee + credit, kind
                written += 1
                position, credit, closed_at = 0.0, 0.0, i
                stop_price = limit_price = _NAN
                children_active = False
        if closed_at >= 0:
            cooldown_until = closed_at + 1 + cooldown
        value = _value(cash, position, entry, close[i])
        # --- strategy, at the close ----------------------------------------------------------
        if sizing == 2:
            tr = high[i] - low[i]
            if prev_close == prev_close:
                tr = max(tr, abs(high[i] - prev_close), abs(low[i] - prev_close))
            atr = tr if atr != atr else atr + (tr - atr) / atr_period
            prev_close = close[i]
        current = 1 if position > 0.0 else (-1 if position < 0.0 else 0)
        k = i if per_bar else 0
        target = decide_nb(proba[i], current, enter[k], exit_[k], allow_short)
        if target != 0 and current != 0 and target != current:
            target = 0  # a reversal goes flat first
        seen = i + 1
        if current != 0 and max_bars_held >= 0 and seen - entry_bar >= max_bars_held:
            target = 0
        if current == 0 and target != 0 and seen < cooldown_until:
            target = 0
        if target != current:
            if current != 0:  # exit: the children go, the position closes at the next open
                stop_price = limit_price = _NAN
                children_active = False
                pending = -position
            else:
                if sizing == 1:
                    amount = units
                else:
                    amount = fraction * value / close[i]
                    if sizing == 2:
                        amount = min(vol_target * value / atr, amount) if atr > 0.0 else 0.0
                if amount > 0.0:
                    pending = amount if target > 0 else -amount
                    side = 1.0 if target > 0 else -1.0
                    if stop_loss == stop_loss:
                        stop_price = close[i] * (1.0 - side * stop_loss)
                    if take_profit == take_profit:
                        limit_price = close[i] * (1.0 + side * take_profit)
        if store:
            values[i] = value
        if i == n - 1:  # the last value, marked as a report marks it
            value -= _closing_cost(position, close[i], commission, slippage)
        r = value / previous - 1.0
        sum_r += r
        sum_r2 += r * r
        previous = value
        if value > peak:
            peak = value
        elif value < peak * (1.0 - drawdown):  # only a new low below the worst so far divides
            drawdown = max(drawdown, 1.0 - value / peak)
    curve[0], curve[1], curve[2], curve[3] = previous, sum_r, sum_r2, drawdown
    return written, refused


@njit(cache=True, nogil=True)
def _closing_cost(size, price, commission, slippage):
    """``exit_cost`` in the kernel."""
    fill = price * (1.0 - slippage) if size > 0 else price * (1.0 + slippage)
    return abs(size) * (abs(price - fill) + fill * commission)


@njit(cache=True, parallel=True)
def grid_nb(open_, high, low, close, day, proba, enter, exit_, allow_short, sizing, fraction,
            units, vol_target, atr_period, stop_loss, take_profit, max_bars_held, cooldown,
            cash, commission, slippage, credit_rate, out):
    """``trade_nb`` for every configuration (one per element of the option arrays), on every
    core; ``out`` rows: the marked last value, the sum and sum of squares of the returns, the
    maximum drawdown, the fills and the refusals."""
    nothing = np.empty((0, 5))
    for k in prange(out.shape[0]):
        curve = np.empty(4)
        written, refused = trade_nb(
            open_, high, low, close, day, proba, enter[k:k + 1], exit_[k:k + 1],
            allow_short[k], sizing[k], fraction[k], units[k], vol_target[k], atr_period[k],
            stop_loss[k], take_profit[k], max_bars_held[k], cooldown[k], cash, commission,
            slippage, credit_rate, False, nothing[:, 0], nothing, nothing[:, :2], curve)
        out[k, :4] = curve
        out[k, 4], out[k, 5] = written, refused


@dataclass(frozen=True)
class EngineRun:
    """What the engine produced over one stretch of bars."""

    values: np.ndarray  # portfolio value at each bar's close
    fill_bars: np.ndarray  # bar index of each fill
    fill_sizes: np.ndarray  # signed: + bought, - sold
    fill_prices: np.ndarray
    fill_fees: np.ndarray  # commission, and a short's borrow on its closing fill
    fill_kinds: np.ndarray  # MARKET, STOP or LIMIT
    refused_bars: np.ndarray  # entries refused for cash at the fill
    refused_sizes: np.ndarray
    position: float  # still open at the end

    @property
    def refused(self) -> int:
        """Entries refused for lack of cash."""
        return len(self.refused_bars)

    def marked(self, last_close: float, commission: float, slippage: float = 0.0
               ) -> np.ndarray:
        """``values`` with the last one net of closing the open position (as a report marks
        it: ``exit_cost``)."""
        values = self.values.copy()
        if len(values):
            values[-1] -= exit_cost(self.position, last_close, commission, slippage)
        return values

    def round_trips(self) -> tuple[np.ndarray, np.ndarray]:
        """Indices of the opening and of the closing fill of each closed trade (a position
        opens with one fill and closes with the next)."""
        closed = len(self.fill_sizes) // 2 * 2
        return np.arange(0, closed, 2), np.arange(1, closed, 2)

    @property
    def trade_pnls(self) -> np.ndarray:
        """Net PnL of each closed round trip (fees and borrow included)."""
        a, b = self.round_trips()
        return self.fill_sizes[a] * (self.fill_prices[b] - self.fill_prices[a]) \
            - self.fill_fees[a] - self.fill_fees[b]


@dataclass(frozen=True)
class EngineBars:
    """The columns the engine reads, once (a grid runs many configurations over them)."""

    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    day: np.ndarray  # UTC calendar day of each bar (borrow is charged by the day)

    @classmethod
    def of(cls, bars: pd.DataFrame) -> EngineBars:
        """The columns of an OHLCV frame."""
        columns = [np.ascontiguousarray(bars[k].to_numpy(dtype=np.float64))
                   for k in ("open", "high", "low", "close")]
        return cls(*columns, np.ascontiguousarray(bars.index.as_unit("ns").asi8
                                                  // 86_400_000_000_000))


def run_engine(bars: pd.DataFrame | EngineBars, proba: np.ndarray, params: StrategyParams, *,
               enter: float | np.ndarray, exit_: float | np.ndarray, cash: float,
               commission: float, slippage: float = 0.0, borrow_rate: float = 0.0) -> EngineRun:
    """``MLStrategy`` with ``params`` over ``bars`` (an OHLCV frame, or its ``EngineBars``) on
    ``proba`` (one per bar); ``enter``/``exit_`` the thresholds, or one per bar."""
    if params.sizing not in SIZINGS:
        raise ValueError(f"sizing {params.sizing!r} is not one of {SIZINGS}")
    b = bars if isinstance(bars, EngineBars) else EngineBars.of(bars)
    n = len(b.close)
    # two fills a bar at most: an entry at the open and its stop or take-profit after it
    values, fills, refusals = np.empty(n), np.empty((2 * n, 5)), np.empty((n, 2))
    written, refused = trade_nb(
        b.open, b.high, b.low, b.close, b.day,
        np.ascontiguousarray(proba, dtype=np.float64), _thresholds(enter),
        _thresholds(exit_),
        bool(params.allow_short), SIZINGS.index(params.sizing), float(params.fraction),
        float(params.units), float(params.vol_target), int(params.atr_period),
        _or_nan(params.stop_loss), _or_nan(params.take_profit),
        -1 if params.max_bars_held is None else int(params.max_bars_held),
        int(params.cooldown), float(cash), float(commission), float(slippage),
        float(borrow_rate) / 365.0, True, values, fills, refusals, np.empty(4))
    fills, refusals = fills[:written], refusals[:refused]
    sizes = fills[:, 1].copy()
    return EngineRun(values, fills[:, 0].astype(np.int64), sizes, fills[:, 2].copy(),
                     fills[:, 3].copy(), fills[:, 4].astype(np.int64),
                     refusals[:, 0].astype(np.int64), refusals[:, 1].copy(), float(sizes.sum()))


def run_grid_configurations(bars: EngineBars, proba: np.ndarray,
                            configs: list[tuple[StrategyParams, float, float]], *, cash: float,
                            commission: float, slippage: float = 0.0,
                            borrow_rate: float = 0.0, threads: int | None = None) -> np.ndarray:
    """Each ``(params, enter, exit)`` over ``bars`` on ``threads`` cores (default all), as
    ``grid_nb`` rows."""
    def column(values, dtype=np.float64):
        return np.ascontiguousarray(np.asarray(values, dtype=dtype))

    params = [c[0] for c in configs]
    out = np.empty((len(configs), 6))
    numba.set_num_threads(min(threads or numba.config.NUMBA_NUM_THREADS,
                              numba.config.NUMBA_NUM_THREADS))
    grid_nb(bars.open, bars.high, bars.low, bars.close, bars.day,
            np.ascontiguousarray(proba, dtype=np.float64), column([c[1] for c in configs]),
            column([c[2] for c in configs]), column([p.allow_short for p in params], np.bool_),
            column([SIZINGS.index(p.sizing) for p in params], np.int64),
            column([p.fraction for p in params]), column([p.units for p in params]),
            column([p.vol_target for p in params]),
            column([p.atr_period for p in params], np.int64),
            column([_or_nan(p.stop_loss) for p in params]),
            column([_or_nan(p.take_profit) for p in params]),
            column([-1 if p.max_bars_held is None else p.max_bars_held for p in params],
                   np.int64), column([p.cooldown for p in params], np.int64),
            float(cash), float(commission), float(slippage), float(borrow_rate) / 365.0, out)
    return out


def _thresholds(value: float | np.ndarray) -> np.ndarray:
    """One threshold for every bar (a one-element array), or one per bar."""
    return np.ascontiguousarray(np.atleast_1d(np.asarray(value, dtype=np.float64)))


def _or_nan(value: float | None) -> float:
    return np.nan if value is None else float(value)


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
    return float(_closing_cost(float(size), float(price), float(commission), float(slippage)))

"""``MLStrategy``: a backtrader Strategy driven by a trained model, in backtests and live alike.

On each closed bar it hands the bar to a ``SignalEngine`` (streaming features -> P(up) ->
long/flat target) and sends a market order when the target differs from the position. In a
backtest that order fills at the next bar's open: the decision never sees the bar it trades on.
"""
from __future__ import annotations

from datafeeds.bt_compat import bt
from mlstrategy.inference import SignalEngine

_UNIX_EPOCH_NUM = 719163.0  # backtrader's date2num(1970-01-01): days since 0001-01-01, plus 1
_NS_PER_S = 1_000_000_000


def bar_time_ns(num: float) -> int:
    """backtrader's float date (UTC) -> int64 ns since the epoch, exact to the second."""
    return round((num - _UNIX_EPOCH_NUM) * 86400.0) * _NS_PER_S


class MLStrategy(bt.Strategy):
    """Long/flat strategy on the model's P(up).

    Params
    ------
    engine : SignalEngine
        The model and its streaming feature state (warmed on the bars before the first one fed).
    stake : float
        Fraction of portfolio value to hold when long (below 1 leaves room for costs and gaps).
    """

    params = (("engine", None), ("stake", 0.95))

    def __init__(self) -> None:
        if not isinstance(self.p.engine, SignalEngine):
            raise TypeError("MLStrategy needs engine=SignalEngine(artifact)")
        self.engine: SignalEngine = self.p.engine
        self.probas: list[float] = []  # P(up) of every bar, NaN during warm-up
        self.fills: list[tuple[float, float, float]] = []  # (bar time, price, signed size)
        self.order = None

    def next(self) -> None:
        d = self.data
        in_position = self.position.size > 0
        signal = self.engine.on_bar(d.open[0], d.high[0], d.low[0], d.close[0], d.volume[0],
                                    bar_time_ns(d.datetime[0]), in_position)
        self.probas.append(signal.proba)
        if self.order is not None:  # one order in flight at a time
            return
        if signal.long and not in_position:
            size = self.p.stake * self.broker.getvalue() / d.close[0]
            self.order = self.buy(size=size)
        elif in_position and not signal.long:
            self.order = self.close()

    def notify_order(self, order: bt.Order) -> None:
        if order.status == order.Completed:
            self.fills.append((self.data.datetime[0], order.executed.price, order.executed.size))
        if not order.alive():
            self.order = None

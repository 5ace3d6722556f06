"""``MLStrategy``: a backtrader Strategy driven by a trained model, in backtests and live alike.

On each closed bar it hands the bar to a ``SignalEngine`` (streaming features -> P(up) ->
long/flat target) and sends a market order when the target differs from the position. In a
backtest that order fills at the next bar's open: the decision never sees the bar it trades on.

Backtest and live run this one decision path. Live, a ``session`` (``mlstrategy.live``) may
swap the engine between bars (a newly promoted model), and stands as a gate in front of the
orders: it journals the bar and the signal, and may shrink or veto an order (risk limits, a
feed that is not LIVE), never add one.
"""
from __future__ import annotations

from typing import Protocol

from datafeeds.bt.compat import bt
from datafeeds.bt.dates import num2ns
from mlstrategy.inference import Signal, SignalEngine

ENTER, EXIT = "enter", "exit"


class Session(Protocol):
    """The live side of a run (``mlstrategy.live.session.LiveSession``)."""

    def begin(self, strategy: MLStrategy) -> None:
        """The run starts (a simulated broker gets its journaled book back)."""

    def engine_for_bar(self, engine: SignalEngine, bar_ns: int) -> SignalEngine:
        """The engine to use from this bar on (the same, or a newly promoted model's)."""

    def review(self, strategy: MLStrategy, bar_ns: int, signal: Signal, intent: str | None,
               size: float) -> float:
        """Journal the bar and signal; return how much of ``intent`` may be sent (0: none)."""

    def on_order(self, strategy: MLStrategy, order: bt.Order) -> None:
        """An order notification (fills of a simulated broker go to the journal here)."""

    def on_data_status(self, status: str) -> None:
        """The feed's status changed (LIVE, DELAYED, DISCONNECTED)."""

    def finish(self, strategy: MLStrategy) -> None:
        """The run ended."""


class MLStrategy(bt.Strategy):
    """Long/flat strategy on the model's P(up).

    Params
    ------
    engine : SignalEngine
        The model and its streaming feature state (warmed on the bars before the first one fed).
    stake : float
        Fraction of portfolio value to hold when long (below 1 leaves room for costs and gaps).
    session : Session, optional
        The live side of a bot run; None in a backtest.
    """

    params = (("engine", None), ("stake", 0.95), ("session", None))

    def __init__(self) -> None:
        if not isinstance(self.p.engine, SignalEngine):
            raise TypeError("MLStrategy needs engine=SignalEngine(artifact)")
        self.engine: SignalEngine = self.p.engine
        self.session: Session | None = self.p.session
        self.probas: list[float] = []  # P(up) of every bar, NaN during warm-up
        self.fills: list[tuple[float, float, float]] = []  # (bar time, price, signed size)
        self.order = None

    def start(self) -> None:
        if self.session is not None:
            self.session.begin(self)

    def next(self) -> None:
        d = self.data
        bar_ns = num2ns(d.datetime[0])
        if self.session is not None:  # between bars: maybe a newly promoted model
            self.engine = self.session.engine_for_bar(self.engine, bar_ns)
        in_position = self.position.size > 0
        signal = self.engine.on_bar(d.open[0], d.high[0], d.low[0], d.close[0], d.volume[0],
                                    bar_ns, in_position)
        self.probas.append(signal.proba)
        intent, size = self._decide(signal, in_position)
        if self.session is not None:
            size = self.session.review(self, bar_ns, signal, intent, size)
        if intent is None or not size > 0:
            return
        if intent == ENTER:
            self.order = self.buy(size=size, intent=ENTER)
        else:
            self.order = self.close(size=size, intent=EXIT)

    def _decide(self, signal: Signal, in_position: bool) -> tuple[str | None, float]:
        """The one decision: enter when the model says long and we are flat, exit when not."""
        if self.order is not None:  # one order in flight at a time
            return None, 0.0
        if signal.long and not in_position:
            return ENTER, self.p.stake * self.broker.getvalue() / self.data.close[0]
        if in_position and not signal.long:
            return EXIT, self.position.size
        return None, 0.0

    def notify_order(self, order: bt.Order) -> None:
        if order.status == order.Completed:
            self.fills.append((self.data.datetime[0], order.executed.price, order.executed.size))
        if self.session is not None:
            self.session.on_order(self, order)
        if not order.alive():
            self.order = None

    def notify_data(self, data: bt.feeds.DataBase, status: int, *args, **kwargs) -> None:
        if self.session is not None:
            self.session.on_data_status(data._getstatusname(status))

    def stop(self) -> None:
        if self.session is not None:
            self.session.finish(self)

"""``MLStrategy``: a backtrader Strategy driven by a trained model, in backtests and live alike.

On each closed bar of each data feed it gets the model's P(up) and decides, in one place
(``decide``), whether to be long, flat (or short, when allowed); an order is sent when the
decision differs from the position. In a backtest a market order fills at the next bar's open:
the decision never sees the bar it trades on.

P(up) comes one of two proven-equal ways: from the feed's ``p_up`` line when the backtest
precomputed it for all bars (``inference.batch_probas``), or bar by bar from the streaming
features and the model (``SignalEngine``), which is what a live bot and any plain backtrader
feed (``GenericCSVData``, ``PandasData``...) use. Either way the same decision and order code
runs. Live, a ``session`` (``mlstrategy.live``) may swap the model between bars and stands as
a gate in front of the orders: it journals the bar and signal and may shrink or veto an order
(risk limits, a feed that is not LIVE), never add one. A portfolio gives each feed (by name)
its own model, session and stake (``models``, ``sessions``, ``stakes``); feeds whose bars
close together are decided in the order they were added.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Protocol

from datafeeds.bt.compat import bt
from datafeeds.bt.dates import num2ns
from mlstrategy.registry.artifact import Artifact, load_artifact
from mlstrategy.trading.decision import decide
from mlstrategy.trading.inference import OtherBars, SignalEngine
from mlstrategy.trading.strategy_params import OPTION_NAMES, SIZINGS, StrategyParams

ENTER, EXIT = "enter", "exit"
__all__ = ["ENTER", "EXIT", "SIZINGS", "MLStrategy", "Session", "decide", "resolve_model"]


class Session(Protocol):
    """The live side of a run (``mlstrategy.live.session.LiveSession``)."""

    other_bars: OtherBars | None  # where the other markets' bars come from (a bot's model)

    def begin(self, strategy: MLStrategy, data: bt.feeds.DataBase) -> None:
        """The run starts (a simulated broker gets ``data``'s journaled book back)."""

    def engine_for_bar(self, engine: SignalEngine, bar_ns: int) -> SignalEngine:
        """The engine to use from this bar on (the same, or a newly promoted model's)."""

    def review(self, strategy: MLStrategy, data: bt.feeds.DataBase, bar_ns: int, proba: float,
               target: int, intent: str | None, size: float) -> float:
        """Journal ``data``'s bar and signal; return how much of ``intent`` may be sent (0:
        none)."""

    def steer(self, target: int, current: int) -> int:
        """The position to hold after the model's ``target``: an operator's exit asked for
        makes it 0."""

    def on_order(self, strategy: MLStrategy, order: bt.Order, fills: list[dict]) -> None:
        """An order notification and its new ``executions`` (a simulated broker's fills go
        to the journal here)."""

    def on_data_status(self, status: str) -> None:
        """The feed's status changed (LIVE, DELAYED, DISCONNECTED)."""

    def finish(self, strategy: MLStrategy) -> None:
        """The run ended."""


@dataclass
class _Book:
    """What the strategy tracks for one data feed."""

    artifact: Artifact
    engine: SignalEngine | None  # None: P(up) comes from the feed's line
    line: object | None
    enter: float  # the thresholds (the model's unless given)
    exit: float
    fraction: float  # of the portfolio value per entry (``fraction`` sizing)
    session: Session | None = None
    enter_line: object | None = None  # per-bar thresholds (walk-forward: each window's model)
    exit_line: object | None = None
    probas: list[float] = field(default_factory=list)
    seen: int = 0  # bars handled (several feeds advance at different times)
    order: bt.Order | None = None  # one order in flight at a time
    children: list = field(default_factory=list)  # bracket stop/limit of the open position
    entry_bar: int = 0
    cooldown_until: int = 0
    atr: float = math.nan
    prev_close: float = math.nan


def resolve_model(model: object, models_dir: str | Path) -> Artifact:
    """An ``Artifact``, an artifact directory, or ``"production"`` (the production model of
    the registry's only market) -> a loaded artifact."""
    if isinstance(model, Artifact):
        return model
    if model in (None, "production"):  # a backtest: the newest model while none is promoted
        from mlstrategy.registry.production import resolve

        return resolve(Path(models_dir), None, newest_if_no_production=True)
    return load_artifact(Path(model))


class ProtectiveBroker(bt.brokers.BackBroker):
    """backtrader's simulated broker, with a bracket's stop and take-profit active from the
    moment its entry fills (backtrader's own: from the next bar), as protective orders are on
    an exchange, placed when the entry fills: the rest of the fill bar can trigger them (at
    the open when it is already through them, as an exchange refuses a stop that would trigger
    at once and the bot then leaves at the market)."""

    def _bracketize(self, order: bt.Order, cancel: bool = False) -> None:
        parent_ref = getattr(order.parent, "ref", order.ref)
        if cancel or order.ref != parent_ref:
            super()._bracketize(order, cancel)
            return
        children = self._pchildren[parent_ref]
        children.popleft()  # the parent, filled
        for child in children:  # after it in the pending queue: tried on this bar
            child.activate()

    def forget_finished(self) -> None:
        """Drop the finished orders backtrader keeps for ever (a bot's run is long)."""
        self.orders = [o for o in self.orders if o.alive()]
        for ref in [r for r, group in self._pchildren.items()
                    if not any(o.alive() for o in group)]:
            del self._pchildren[ref]


def paper_broker(params: StrategyParams) -> ProtectiveBroker:
    """The simulated broker with ``params``' cash and costs (commission resolved), for a
    backtest and a paper bot alike (``cerebro.setbroker``)."""
    broker = ProtectiveBroker()
    broker.setcash(params.cash)
    # shorts pay ``borrow_rate`` a year on their value, accrued per calendar day held
    broker.setcommission(commission=params.commission, interest=params.borrow_rate,
                         interest_long=False)
    # cash is checked when an order fills (at the next open), not also when it is sent:
    # the same orders are refused (Margin), at half the cost per order
    broker.set_checksubmit(False)
    if params.slippage:  # in full, beyond the bar's range if need be (slip_out): never capped
        broker.set_slippage_perc(params.slippage, slip_open=True, slip_limit=True,
                                 slip_match=True, slip_out=True)
    return broker


class MLStrategy(bt.Strategy):
    """Trade every data feed on the model's P(up).

    Params
    ------
    model : Artifact, path or "production"
        The trained model (an artifact directory, or the production one of ``models_dir``).
    models_dir : str
        Where ``production`` is looked up.
    enter, exit : float, optional
        P(up) to go long, and below which a long is closed; default the model's thresholds.
    allow_short : bool
        Also go short when P(down) = 1 - P(up) reaches ``enter`` (kept while it stays at or
        above ``exit``).
    sizing : {"fraction", "units", "vol_target"}
        ``fraction`` of the portfolio value; a fixed number of ``units``; or ``vol_target``:
        the position whose one-ATR move is ``vol_target`` of the value (at most ``fraction``).
    fraction, units, vol_target, atr_period : float, float, float, int
        The sizing parameters.
    stop_loss, take_profit : float, optional
        Fractions of the price at the decision: the entry goes out as a bracket order with a
        stop and/or a take-profit limit, active from the entry's fill (``ProtectiveBroker``).
    max_bars_held : int, optional
        Close a position after this many bars whatever the model says.
    cooldown : int
        Bars to wait after a position is closed before entering again.
    proba_line : str
        Read P(up) from this line of a feed when it has one (precomputed in a backtest);
        ``p_enter`` and ``p_exit`` lines, when the feed has them, give the thresholds bar by
        bar (a walk-forward, where each window has its model).
    history : pandas.DataFrame, optional
        Bars before the first feed's first bar, to warm its streaming features with.
    others : dict, optional
        The bars of the other markets the model's features read, by symbol (a backtest
        knows them all at start).
    session : Session, optional
        The live side of a bot run; None in a backtest.
    models, sessions, stakes : dict, optional
        A portfolio: per feed name, its model (else ``model``), its session (else
        ``session``) and its ``fraction`` of the portfolio value per entry (else
        ``fraction``).
    keep_records : bool
        Keep every bar's value, decision, fill and trade in memory (a backtest reports them).
        A bot runs for weeks and its journal has them: without, memory stays bounded, as it
        also drops backtrader's own records of finished orders and trades.
    """

    # the trading options and their defaults are StrategyParams' (``StrategyParams.options``)
    params = (("model", None), ("models_dir", "models"),
              *((f.name, f.default) for f in fields(StrategyParams) if f.name in OPTION_NAMES),
              ("proba_line", "p_up"), ("history", None), ("others", None), ("session", None),
              ("models", None),
              ("sessions", None), ("stakes", None), ("keep_records", True))

    def __init__(self) -> None:
        p = self.p
        if p.sizing not in SIZINGS:
            raise ValueError(f"sizing {p.sizing!r} is not one of {SIZINGS}")
        models, sessions, stakes = p.models or {}, p.sessions or {}, p.stakes or {}
        default = None if p.model is None and len(models) == len(self.datas) > 0 else \
            resolve_model(p.model, p.models_dir)
        self.books: dict[object, _Book] = {}
        for data in self.datas:
            artifact = models.get(data._name) or default
            thresholds = artifact.thresholds
            line = getattr(data.lines, p.proba_line, None)
            session = sessions.get(data._name, p.session)
            engine = None if line is not None else SignalEngine(
                artifact, p.others, None if session is None else session.other_bars)
            self.books[data] = _Book(
                artifact, engine, line,
                thresholds.enter if p.enter is None else float(p.enter),
                thresholds.exit if p.exit is None else float(p.exit),
                float(stakes.get(data._name, p.fraction)), session,
                getattr(data.lines, "p_enter", None), getattr(data.lines, "p_exit", None))
        first = self.books[self.data0]
        self.artifact = first.artifact  # the first feed's (one model in a backtest)
        self.enter, self.exit = first.enter, first.exit
        if p.history is not None and self.books[self.data0].engine is not None:
            self.books[self.data0].engine.warm(p.history)
        self._single = self.books[self.data0] if len(self.books) == 1 else None
        self.values: list[float] = []  # portfolio value after each bar
        self.executions: list[dict] = []  # every fill: bt time, data, size, price, value, fee
        self.refused: list[dict] = []  # orders rejected or refused for margin, with reasons
        self.trades: list[dict] = []  # closed round trips
        self.decisions: list[tuple] = []  # (bar ns, feed, intent, target, size) of each order
        self._entry_sizes: dict[int, float] = {}

    @property
    def probas(self) -> list[float]:
        """P(up) of every bar of the first feed (NaN during warm-up)."""
        return self.books[self.data0].probas

    @property
    def engine(self) -> SignalEngine | None:
        """The first feed's streaming engine (None when P(up) comes from its line)."""
        return self.books[self.data0].engine

    def start(self) -> None:
        for data, book in self.books.items():
            if book.session is not None:
                book.session.begin(self, data)

    def next(self) -> None:
        if self._single is not None:  # one feed: a new bar on every call
            book = self._single
            book.seen += 1
            self._on_bar(self.data0, book)
        else:
            for data, book in self.books.items():
                if len(data) > book.seen:  # this feed has a new bar
                    book.seen = len(data)
                    self._on_bar(data, book)
        if self.p.keep_records:
            self.values.append(self.broker.getvalue())
        else:
            self._forget_finished()

    def _forget_finished(self) -> None:
        """Drop backtrader's records of what is finished: the orders notified, the trades
        closed (all but each one's last, which backtrader updates), and a paper broker's
        finished orders."""
        self._orders.clear()
        for trades in self._trades.values():
            for kept in trades.values():
                del kept[:-1]
        forget = getattr(self.broker, "forget_finished", None)
        if forget is not None:
            forget()

    def _on_bar(self, data: bt.feeds.DataBase, book: _Book) -> None:
        """The one decision and order path of a closed bar."""
        bar_ns = num2ns(data.datetime[0])
        if book.line is not None:
            proba = book.line[0]
        else:
            if book.session is not None:  # between bars: maybe a newly promoted model
                engine = book.session.engine_for_bar(book.engine, bar_ns)
                if engine is not book.engine:
                    self._swapped(book, engine)
            proba = book.engine.on_bar(data.open[0], data.high[0], data.low[0],
                                       data.close[0], data.volume[0], bar_ns)
        book.probas.append(proba)
        if self.p.sizing == "vol_target":
            self._update_atr(data, book)
        size = self.getposition(data).size
        current = (size > 0) - (size < 0)
        target = current if book.order is not None else self._target(book, proba, current)
        if book.session is not None and book.order is None:
            target = book.session.steer(target, current)
        intent = None if target == current else (ENTER if current == 0 else EXIT)
        amount = abs(size) if intent == EXIT else \
            self._size(data, book) if intent == ENTER else 0.0
        if book.session is not None:
            amount = book.session.review(self, data, bar_ns, proba, target, intent, amount)
        if intent is None or not amount > 0:
            return
        if self.p.keep_records:
            self.decisions.append((bar_ns, data._name, intent, target, amount))
        if intent == EXIT:
            for child in book.children:
                self.cancel(child)
            book.children = []
            book.order = self.close(data=data, size=amount, intent=EXIT)
        else:
            self._enter(data, book, target, amount)

    def _swapped(self, book: _Book, engine: SignalEngine) -> None:
        """A new model decides from this bar: its thresholds too, unless options set them."""
        book.engine, book.artifact = engine, engine.artifact
        thresholds = engine.artifact.thresholds
        book.enter = thresholds.enter if self.p.enter is None else book.enter
        book.exit = thresholds.exit if self.p.exit is None else book.exit

    def _target(self, book: _Book, proba: float, current: int) -> int:
        """``decide``, then the holding limit and the cooldown."""
        enter = book.enter if book.enter_line is None else book.enter_line[0]
        exit_ = book.exit if book.exit_line is None else book.exit_line[0]
        target = decide(proba, current, enter, exit_, self.p.allow_short)
        if target and current and target != current:
            return 0  # a reversal goes flat first; the new side is entered on a later bar
        held = book.seen - book.entry_bar
        if current and self.p.max_bars_held is not None and held >= self.p.max_bars_held:
            return 0
        if not current and target and book.seen < book.cooldown_until:
            return 0
        return target

    def _size(self, data: bt.feeds.DataBase, book: _Book) -> float:
        """How much to buy or sell short on entering."""
        p = self.p
        if p.sizing == "units":
            return float(p.units)
        value, price = self.broker.getvalue(), data.close[0]
        most = book.fraction * value / price
        if p.sizing == "vol_target":
            if not book.atr > 0:
                return 0.0  # no ATR yet: no size
            return min(p.vol_target * value / book.atr, most)
        return most

    def _update_atr(self, data: bt.feeds.DataBase, book: _Book) -> None:
        """Wilder's ATR of the feed, bar by bar (for ``vol_target`` sizing)."""
        high, low, close = data.high[0], data.low[0], data.close[0]
        prev = book.prev_close
        tr = high - low if prev != prev else max(high - low, abs(high - prev), abs(low - prev))
        n = self.p.atr_period
        book.atr = tr if book.atr != book.atr else book.atr + (tr - book.atr) / n
        book.prev_close = close

    def _enter(self, data: bt.feeds.DataBase, book: _Book, side: int, amount: float) -> None:
        p = self.p
        if p.stop_loss is None and p.take_profit is None:
            order = self.buy if side > 0 else self.sell
            book.order = order(data=data, size=amount, intent=ENTER)
            return
        price = data.close[0]
        stop = None if p.stop_loss is None else price * (1 - side * p.stop_loss)
        limit = None if p.take_profit is None else price * (1 + side * p.take_profit)
        bracket = self.buy_bracket if side > 0 else self.sell_bracket
        orders = bracket(data=data, size=amount, exectype=bt.Order.Market, stopprice=stop,
                         limitprice=limit, stopexec=None if stop is None else bt.Order.Stop,
                         limitexec=None if limit is None else bt.Order.Limit, intent=ENTER)
        book.order, book.children = orders[0], [o for o in orders[1:] if o is not None]

    def notify_order(self, order: bt.Order) -> None:
        book = self.books[order.data]
        fills = []
        if order.status in (order.Partial, order.Completed):
            fills = self._record_fill(order, book)
        elif order.status in (order.Rejected, order.Margin) and self.p.keep_records:
            self.refused.append({
                "time": bt.num2date(order.data.datetime[0]).isoformat(),
                "data": order.data._name, "side": "buy" if order.isbuy() else "sell",
                "size": abs(order.created.size), "status": order.getstatusname(),
                "reason": order.info.get("reason") or (
                    "not enough cash at the fill price" if order.status == order.Margin
                    else "rejected by the broker")})
        if book.session is not None:
            book.session.on_order(self, order, fills)
        if order == book.order:  # notifications are clones: equal by reference number
            if not order.alive():
                book.order = None
        elif order.status == order.Completed and order in book.children:
            book.children = []  # a bracket child closed the position

    def _record_fill(self, order: bt.Order, book: _Book) -> list[dict]:
        """Record the order's new executions (returned) and what they do to the book."""
        fills = []
        for bit in order.executed.iterpending():
            if bit is None:
                break
            fills.append({"time": bit.dt, "data": order.data._name, "size": bit.size,
                          "price": bit.price, "value": abs(bit.size) * bit.price,
                          "fee": bit.closedcomm + bit.openedcomm})
        if self.p.keep_records:
            self.executions.extend(fills)
        size = self.getposition(order.data).size
        if size and order.status == order.Completed and order == book.order:
            book.entry_bar = book.seen
        if not size:
            book.children = [c for c in book.children if c.alive()]
            book.cooldown_until = book.seen + 1 + self.p.cooldown
        return fills

    def notify_trade(self, trade: bt.Trade) -> None:
        if trade.justopened:  # notifications are copies: remember the size by reference
            self._entry_sizes[trade.ref] = trade.size
        if not trade.isclosed:
            return
        size = self._entry_sizes.pop(trade.ref, 0.0)
        if not self.p.keep_records:
            return
        self.trades.append({
            "data": trade.data._name, "entry_time": trade.dtopen, "exit_time": trade.dtclose,
            "side": "long" if size > 0 else "short",
            "size": abs(size), "entry_price": trade.price,
            "exit_price": trade.price + trade.pnl / size if size else math.nan,
            "fees": trade.commission, "pnl": trade.pnl, "pnl_net": trade.pnlcomm,
            "bars_held": trade.barlen})

    def notify_data(self, data: bt.feeds.DataBase, status: int, *args, **kwargs) -> None:
        session = self.books[data].session if data in self.books else self.p.session
        if session is not None:
            session.on_data_status(data._getstatusname(status))

    def stop(self) -> None:
        for book in self.books.values():
            if book.session is not None:
                book.session.finish(self)

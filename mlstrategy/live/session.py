"""``LiveSession``: the live side of ``MLStrategy`` in a bot run.

Between bars it lets ``ModelWatcher`` swap in a newly promoted model. On each bar it journals
the bar and the model's signal, puts the strategy's order through the risk gate (nothing is
traded on warm-up history or a feed that is not LIVE), reports one status line, and stops the
run at ``until``. A live broker that finds the position not provably the bot's (``mismatch``)
halts entries; the session journals it once, says so loudly, and (``on_mismatch="stop"``, the
default) ends the run after the bar. With a simulated (paper) broker it journals the orders
and fills itself; a live broker journals its own before and after the exchange sees them. The
summary is made at the very end (``summarize``), from the journal, once every order is resolved.
In a portfolio each market has its own session over its view of the one journal.
"""
from __future__ import annotations

import logging
import math
import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

import pandas as pd

from datafeeds.bt.compat import bt
from datafeeds.bt.dates import num2ns
from execution.orders import (
    CANCELED,
    CLOSED,
    EXPIRED,
    OPEN,
    REFUSED,
    REJECTED,
    Fill,
    OrderIntent,
    intent_key,
)
from mlstrategy.live.controls import Controls
from mlstrategy.live.drift import DriftGuard, DriftSettings
from mlstrategy.live.hot_swap import ModelWatcher
from mlstrategy.live.journal import PAPER, Journal
from mlstrategy.live.risk import RiskGuard, Verdict, open_book
from mlstrategy.trading.inference import SignalEngine, row_hash
from mlstrategy.trading.strategy import ENTER, MLStrategy

log = logging.getLogger(__name__)
PAUSED = "entries paused by the operator"
_FLUSH_EVERY = 500  # history rows journaled per transaction
# a simulated broker's order notifications as journal states
_PAPER_STATES = {"Accepted": OPEN, "Partial": OPEN, "Completed": CLOSED, "Canceled": CANCELED,
                 "Expired": EXPIRED, "Margin": REJECTED, "Rejected": REJECTED}


@dataclass(frozen=True)
class BarStatus:
    """The status line of one bar past the warm-up history."""

    time: pd.Timestamp
    close: float
    proba: float
    signal: str  # "long" | "flat" | "warm-up"
    action: str  # what was sent, or why nothing was
    position: float
    equity: float
    model: str
    feed: str  # LIVE | DELAYED | DISCONNECTED


@dataclass
class SessionSummary:
    """What a run did, for the end of the run and the journal (orders and fills from it)."""

    model: str
    history_bars: int = 0
    bars: int = 0
    live_bars: int = 0
    long_signals: int = 0
    orders: Counter = field(default_factory=Counter)  # this run's order attempts by state
    blocked: Counter = field(default_factory=Counter)  # vetoed orders by reason
    fills: int = 0  # this run's fills (late executions it adopted included)
    bought: float = 0.0  # base asset bought and sold by them
    sold: float = 0.0
    swaps: int = 0
    refused_models: int = 0
    feed: Counter = field(default_factory=Counter)  # status changes
    start_equity: float = math.nan
    end_equity: float = math.nan
    position: float = 0.0  # the journal's, after the last order was resolved
    first_bar: str = ""
    last_bar: str = ""
    mismatch: str | None = None  # the position was found not provably the bot's
    model_flags: list[str] = field(default_factory=list)  # the sanity gate's, of the model

    def to_dict(self) -> dict:
        """JSON-ready form."""
        data = asdict(self)
        for key in ("orders", "blocked", "feed"):
            data[key] = dict(getattr(self, key))
        return {k: (None if isinstance(v, float) and math.isnan(v) else v)
                for k, v in data.items()}


class LiveSession:
    """Journal, risk gate, hot swap and status for one bot run (see module doc).

    Parameters
    ----------
    journal : Journal
        The run's journal (session already started).
    guard : RiskGuard
        Risk limits.
    watcher : ModelWatcher
        Follows the production model.
    on_status : callable
        Called with a ``BarStatus`` for every bar past the history.
    stop : threading.Event
        Set to end the run after the current bar.
    until : pandas.Timestamp, optional
        End the run once a bar at or after this time was handled.
    paper_cash : float, optional
        A paper (simulated broker) run: its opening cash; the book is restored from the journal.
    label : str
        What the run is, logged once the warm-up history has arrived.
    on_mismatch : {"stop", "continue"}
        On a position mismatch: end the run after the bar (exit non-zero), or go on with
        entries halted (exits limited to what the journal and the account both hold).
    account : Journal, optional
        The whole bot's journal when ``journal`` is one market's view of it (a portfolio):
        the paper account's opening cash is kept there.
    broker : object, optional
        The market's own live broker (None: a paper run); its holdings check halts this
        market only, also when the strategy's broker routes several markets.
    controls : Controls, optional
        The operator's requests (the control API's): paused entries, an exit, a reload.
    drift : DriftSettings, optional
        Watch the model's drift (``mlstrategy.live.drift``) and act on a breach.
    journal_features : bool
        Journal each decision's feature vector, not only its hash.
    """

    def __init__(self, journal: Journal, guard: RiskGuard, watcher: ModelWatcher, *,
                 on_status: Callable[[BarStatus], None], stop: threading.Event,
                 until: pd.Timestamp | None = None, paper_cash: float | None = None,
                 label: str = "bot", on_mismatch: str = "stop",
                 account: Journal | None = None, broker: object | None = None,
                 controls: Controls | None = None, drift: DriftSettings | None = None,
                 journal_features: bool = False) -> None:
        self.journal = journal
        self.account = account or journal
        self.broker = broker
        self.guard = guard
        self.watcher = watcher
        self.other_bars = watcher.markets
        self.on_status = on_status
        self.stop = stop
        self.until = until
        self.paper_cash = paper_cash
        self.label = label
        self.on_mismatch = on_mismatch
        self.controls = controls
        self.summary = SessionSummary(model=watcher.current.ref,
                                      model_flags=list(watcher.current.manifest.suspicious))
        self._bars: list[tuple] = []
        self._signals: list[tuple] = []
        self._paper_fills = 0  # simulated fills journaled this session
        self._paper_open: set[str] = set()  # client ids of paper orders not final yet
        self.journal_features = journal_features
        self.drift = None if drift is None else \
            DriftGuard(drift, journal, watcher.models_dir, controls, watcher)
        self._meta: dict[str, str] = {}  # settings journaled with the next flush
        self._used(watcher.current)

    # --- hooks MLStrategy calls ----------------------------------------------------------
    def begin(self, strategy: MLStrategy, data: bt.feeds.DataBase) -> None:
        """The run starts (history fetched); a paper run continues the journal's book (the
        account's cash: every market's fills)."""
        log.info("%s, model %s, warm-up history %d bars", self.label, self.summary.model,
                 getattr(data, "history_bars", 0))
        for flag in self.summary.model_flags:
            log.warning("MODEL FLAGGED by the sanity gate: %s", flag)
        if self.paper_cash is None:
            return
        self.account.set_meta("paper_cash", repr(self.paper_cash))
        opening = float(self.account.meta()["paper_cash"])
        position = bt.Position()
        for fill in self.journal.fills():
            position.update(fill.base_delta, fill.price)
        strategy.broker.setcash(opening + self.journal.cash_flow(every_market=True))
        if position.size:
            strategy.broker.positions[data] = position
            log.info("paper book restored: cash %.2f, position %.8f", strategy.broker.cash,
                     position.size)

    def engine_for_bar(self, engine: SignalEngine, bar_ns: int) -> SignalEngine:
        """Swap in a newly promoted model between bars (history bars never trigger it); an
        operator's reload reads the production pointer again."""
        if self.controls is not None and self.controls.take_reload(self.journal.market):
            if not self.watcher.follow:
                log.warning("reload asked, but this market is pinned to %s: restart it with "
                            "--model NAME to follow its production model", self.summary.model)
            self.watcher.recheck()
        new = self.watcher.check(bar_ns // 1_000_000)
        if new is None:
            return engine
        self.summary.swaps = self.watcher.swaps
        self._used(self.watcher.current)
        if self.drift is not None:
            self.drift.watch(self.watcher.current)
        return new

    def _used(self, artifact) -> None:
        """Journal a model that decides from now on (the audit finds it by its ref)."""
        self.journal.model_used(artifact.ref, artifact.manifest.model_sha256,
                                artifact.spec.hash, str(artifact.path))

    def steer(self, target: int, current: int) -> int:
        """``target``, or flat when the operator asked this market to exit."""
        market = self.journal.market
        if self.controls is None or not self.controls.exit_wanted(market):
            return target
        if current == 0:
            self.controls.exit_done(market)
        return 0

    def review(self, strategy: MLStrategy, data: bt.feeds.DataBase, bar_ns: int, proba: float,
               target: int, intent: str | None, size: float) -> float:
        """Journal ``data``'s bar and signal and gate the order; the size that may be sent."""
        bar_ms = bar_ns // 1_000_000
        history = bool(getattr(data, "in_history", False))
        feed = data._getstatusname(data._laststatus)
        model = self.watcher.current.ref
        ohlc = (data.open[0], data.high[0], data.low[0], data.close[0])
        self._bars.append((bar_ms, *ohlc, data.volume[0]))
        book = strategy.books[data]
        row = None if book.engine is None else book.engine.row
        audit = (None if row is None else row_hash(row), book.enter, book.exit,
                 row.tobytes() if row is not None and self.journal_features else None)
        s = self.summary
        s.bars += 1
        s.long_signals += target > 0
        if history:
            s.history_bars += 1
            self._signals.append((bar_ms, proba, target, model, feed, "history", None,
                                  None, *audit))
            if self.drift is not None:
                self._meta.update(self.drift.on_bar(bar_ms, row, proba, ohlc, None))
            if len(self._bars) >= _FLUSH_EVERY:
                self._flush()
            return 0.0
        equity = strategy.broker.getvalue()
        position = strategy.getposition(data).size
        if not s.first_bar:
            s.start_equity, s.first_bar = equity, pd.Timestamp(bar_ms, unit="ms").isoformat()
        s.live_bars += feed == "LIVE"
        s.last_bar, s.end_equity, s.position = pd.Timestamp(bar_ms, unit="ms").isoformat(), \
            equity, position
        close = float(data.close[0])
        self.guard.on_bar(bar_ms + _bar_ms(data), equity)
        halted = self._holdings_problem(self.broker)
        action = "hold"
        if intent is not None and size > 0:
            verdict = self.guard.review(entering=intent == ENTER, size=size, price=close,
                                        position=position, feed_live=feed == "LIVE",
                                        book=open_book(strategy, data))
            if halted and (intent == ENTER or self.stop.is_set()):
                verdict = Verdict(0.0, halted)  # stopping: not even a limited exit
            elif intent == ENTER and self.controls is not None and \
                    self.controls.paused(self.journal.market):
                verdict = Verdict(0.0, PAUSED)
            size = verdict.size if verdict.size > 0 else 0.0
            if verdict.reason:
                s.blocked[verdict.reason] += 1
            if size > 0:
                action = f"{intent} {size:.8g}" + (f" ({verdict.reason})" if verdict.reason
                                                     else "")
            else:
                action = f"{intent} blocked: {verdict.reason}"
        else:
            size = 0.0
        self._signals.append((bar_ms, proba, target, model, feed, action, position,
                              equity, *audit))
        if self.drift is not None:
            self._meta.update(self.drift.on_bar(bar_ms, row, proba, ohlc, equity))
        self._flush()
        self.on_status(BarStatus(pd.Timestamp(bar_ms, unit="ms", tz="UTC"), close, proba,
                                 _signal_word(proba, target), action, position, equity,
                                 model, feed))
        if self.until is not None and pd.Timestamp(bar_ms, unit="ms", tz="UTC") >= self.until:
            self.stop.set()
        return size

    def _holdings_problem(self, broker: object) -> str:
        """Why entries are halted on this bar by the live broker's holdings check, or ""."""
        problem = getattr(broker, "mismatch", None)
        if problem is not None and self.summary.mismatch is None:
            self.summary.mismatch = problem
            self.journal.event("position_mismatch", reason=problem,
                               on_mismatch=self.on_mismatch)
            log.error("POSITION MISMATCH: %s. Nothing is bought; sells are limited to what "
                      "the journal and the account both hold. %s", problem,
                      "Stopping after this bar." if self.on_mismatch == "stop"
                      else "Going on (--on-mismatch continue).")
            if self.on_mismatch == "stop":
                self.stop.set()
        if problem is not None:
            return "market halted: position mismatch"
        unchecked = getattr(broker, "unchecked", None)
        return "" if unchecked is None else f"no entry: {unchecked}"

    def on_order(self, strategy: MLStrategy, order: bt.Order, fills: list[dict]) -> None:
        """Journal a simulated broker's orders and fills (a live broker journals its own)."""
        if order.status in (order.Rejected, order.Margin):
            self.journal.event("order_" + order.getstatusname().lower(),
                               reason=order.info.get("reason", order.getstatusname()))
        if self.paper_cash is None:
            return  # a live broker journals its own orders and fills, from the exchange
        client_id = f"{PAPER}{self.journal.session}-{order.ref}"
        status = order.getstatusname()
        # the first notice of an order: Submitted, or Accepted when the broker checks cash
        # only at the fill (``set_checksubmit(False)``, as a backtest's broker does)
        if order.status in (order.Submitted, order.Accepted) and \
                client_id not in self._paper_open:
            bar_ms = num2ns(order.data.datetime[0]) // 1_000_000
            side = "buy" if order.isbuy() else "sell"
            kind = order.getordername().lower()  # a bracket's legs: market, stop, limit
            intent = OrderIntent(intent_key("paper", bar_ms, order.info.get("intent", side)),
                                 side, abs(order.created.size), kind,
                                 None if kind == "market" else order.created.price)
            self.journal.order_attempt(intent, client_id, 0)
            self._paper_open.add(client_id)
        if status in _PAPER_STATES:
            state = _PAPER_STATES[status]
            self.journal.order_state(client_id, state, reason=order.info.get("reason", ""))
            if state != OPEN:
                self._paper_open.discard(client_id)
        for fill in fills:
            self._paper_fills += 1
            size, price, fee = fill["size"], fill["price"], fill["fee"]
            self.journal.fill(Fill(f"{PAPER}{self.journal.session}-{self._paper_fills}",
                                   client_id, num2ns(fill["time"]) // 1_000_000,
                                   "buy" if size > 0 else "sell", abs(size), price, fee,
                                   "quote", size, -size * price - fee))

    def on_data_status(self, status: str) -> None:
        """Journal and count feed status changes."""
        self.summary.feed[status] += 1
        self.journal.event("feed", status=status)

    def finish(self, strategy: MLStrategy) -> None:
        """The run's last bar is done: flush the journal; paper orders that never filled end."""
        self._flush()
        for client_id in self._paper_open:  # a paper order fills at the next bar: none came
            self.journal.order_state(client_id, CANCELED, reason="the run ended before it "
                                                                 "could fill")
        self._paper_open.clear()

    def summarize(self, end_equity: float) -> SessionSummary:
        """The run's summary, from the journal once every order is resolved (the runner
        closes the journal's session with it)."""
        s = self.summary
        session = self.journal.session
        s.orders = Counter(self.journal.session_orders(session))
        refused = sum(e[1] == session for e in self.journal.events(REFUSED))
        if refused:
            s.orders[REFUSED] += refused
        fills = self.journal.session_fills(session)
        s.fills = len(fills)
        s.bought = sum(f.amount for f in fills if f.side == "buy")
        s.sold = sum(f.amount for f in fills if f.side == "sell")
        s.position = self.journal.position()
        if s.first_bar:
            s.end_equity = end_equity
        s.refused_models = self.watcher.refusals
        s.swaps = self.watcher.swaps
        s.model = self.watcher.current.ref
        s.model_flags = list(self.watcher.current.manifest.suspicious)
        return s

    def _flush(self) -> None:
        if self._bars or self._signals:
            self.journal.record(self._bars, self._signals, self._meta)
            self._bars, self._signals, self._meta = [], [], {}


def _signal_word(proba: float, target: int) -> str:
    if math.isnan(proba):
        return "warm-up"
    return {1: "long", 0: "flat", -1: "short"}[target]


def _bar_ms(data: bt.feeds.DataBase) -> int:
    """The feed's bar size in ms (its poller knows it)."""
    return int(data.p.poller.step_ms) if getattr(data.p, "poller", None) else 0

"""Risk limits the live bot enforces before any order leaves it.

A gate in front of the one decision path: it can only shrink or veto what ``MLStrategy``
decided, never add to it. Limits: the position's notional, the day's loss (a kill switch: no
new entries until the next UTC day, exits still allowed), order attempts per wall-clock minute,
and the feed's health (nothing is traded on a DELAYED or DISCONNECTED feed); for an account
that trades several markets (a portfolio, one guard for all), how many positions may be open at
once and their total notional. The day's loss is the whole account's.

Its state lives in the journal (``RiskLedger``), so a restart continues it: each UTC day's
starting equity (the loss baseline) and each kill-switch trip are journaled events, and the
orders counted toward the rate limit are the journal's order attempts, each written just before
it was sent. Days are the exchange's (bar times); the rate limit's minute is the wall clock's.
"""
from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

log = logging.getLogger(__name__)
_DAY_MS = 86_400_000
DAY_START, KILL_SWITCH = "risk_day", "kill_switch"  # journal event kinds


@dataclass(frozen=True)
class RiskLimits:
    """Limits in the quote currency (e.g. USDT); None means no limit."""

    max_position: float | None = None  # notional of the position, at the bar's close
    max_daily_loss: float | None = None  # equity drop since the UTC day's first bar
    # attempts sent to the exchange in any 60 s of wall time; None: no limit (a replay, whose
    # simulated minutes pass in a fraction of a wall-clock second)
    max_orders_per_minute: int | None = 6
    max_open_positions: int | None = None  # markets with a position at once (a portfolio)
    max_exposure: float | None = None  # notional of every market's position together


@dataclass(frozen=True)
class OpenBook:
    """The account's other markets at the time of a decision: their positions."""

    positions: int = 0  # markets (other than the deciding one) with a position
    exposure: float = 0.0  # their notional at their last close


def open_book(strategy: object, data: object) -> OpenBook:
    """What a backtrader ``strategy`` holds in every market other than ``data``'s."""
    others = [(d, strategy.getposition(d).size) for d in strategy.datas if d is not data]
    return OpenBook(sum(size != 0 for _, size in others),
                    sum(abs(size) * float(d.close[0]) for d, size in others))


@dataclass(frozen=True)
class Verdict:
    """What may be sent: ``size`` (0 to send nothing) and why it was cut, if it was."""

    size: float
    reason: str = ""


class RiskLedger(Protocol):
    """Where the guard keeps its state: the bot's journal."""

    def event(self, kind: str, **detail: object) -> None:
        """Record an event."""

    def events(self, kind: str | None = None) -> list[tuple[str, int, str, dict]]:
        """``(time, session, kind, detail)`` of recorded events, oldest first."""

    def orders_sent_since(self, wall_s: float) -> int:
        """Order attempts sent since ``wall_s`` (``time.time()``)."""


class MemoryLedger:
    """A ``RiskLedger`` in memory, for a backtest: nothing is sent, nothing survives."""

    def __init__(self) -> None:
        self._events: list[tuple[str, int, str, dict]] = []

    def event(self, kind: str, **detail: object) -> None:
        self._events.append(("", 0, kind, detail))

    def events(self, kind: str | None = None) -> list[tuple[str, int, str, dict]]:
        return [e for e in self._events if kind in (None, e[2])]

    def orders_sent_since(self, wall_s: float) -> int:
        return 0


class RiskGuard:
    """Applies ``RiskLimits`` bar by bar, continuing the state ``ledger`` holds.

    Parameters
    ----------
    limits : RiskLimits
        The limits.
    ledger : RiskLedger
        The journal: the day's baseline and kill-switch trips are read from and written to it.
    clock : callable
        Wall-clock seconds (``time.time``) for the orders-per-minute limit.
    """

    def __init__(self, limits: RiskLimits, ledger: RiskLedger,
                 clock: Callable[[], float] = time.time) -> None:
        self.limits = limits
        self.ledger = ledger
        self.clock = clock
        days, trips = ledger.events(DAY_START), ledger.events(KILL_SWITCH)
        self._day: int | None = days[-1][3]["day"] if days else None
        self._day_start_equity = float(days[-1][3]["start_equity"]) if days else 0.0
        self.killed_day: int | None = trips[-1][3]["day"] if trips else None

    def on_bar(self, now_ms: int, equity: float) -> None:
        """Track the day's starting equity; trip the kill switch on the day's loss limit."""
        day = now_ms // _DAY_MS
        if day != self._day:
            self._day, self._day_start_equity = day, equity
            self.ledger.event(DAY_START, day=day, start_equity=equity)
        limit = self.limits.max_daily_loss
        loss = self._day_start_equity - equity
        if limit is not None and self.killed_day != day and loss >= limit:
            self.killed_day = day
            self.ledger.event(KILL_SWITCH, day=day, loss=loss, limit=limit)
            log.warning("kill switch: the day's loss %.2f reached the limit %.2f; no new "
                        "entries until the next UTC day", loss, limit)

    @property
    def killed(self) -> bool:
        """Whether new entries are blocked today."""
        return self.killed_day is not None and self.killed_day == self._day

    def review(self, *, entering: bool, size: float, price: float, position: float,
               feed_live: bool, book: OpenBook = OpenBook()) -> Verdict:
        """How much of an order of ``size`` (base units, at about ``price``) may be sent;
        ``book`` is what the account's other markets hold."""
        if not feed_live:
            return Verdict(0.0, "feed not live")
        per_minute = self.limits.max_orders_per_minute
        if per_minute is not None and \
                self.ledger.orders_sent_since(self.clock() - 60.0) >= per_minute:
            return Verdict(0.0, f"{per_minute} orders sent in the last minute")
        if entering:
            if self.killed:
                return Verdict(0.0, "kill switch: daily loss limit reached")
            most = self.limits.max_open_positions
            if most is not None and not position and book.positions >= most:
                return Verdict(0.0, f"the account's limit of {most} open position"
                                    f"{'s' if most != 1 else ''} is reached")
            reason = ""
            caps = [(self.limits.max_position, position * price, "position capped at"),
                    (self.limits.max_exposure, book.exposure + abs(position) * price,
                     "account exposure capped at")]
            for cap, used, why in caps:
                room = math.inf if cap is None else max(cap - used, 0.0) / price
                if room < size:
                    size, reason = room, f"{why} {cap:g} notional"
            return Verdict(size, reason)
        return Verdict(size)

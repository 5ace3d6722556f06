"""Risk limits the live bot enforces before any order leaves it.

A gate in front of the one decision path: it can only shrink or veto what ``MLStrategy``
decided, never add to it. Limits: the position's notional, the day's loss (a kill switch: no
new entries until the next UTC day, exits still allowed), orders per minute, and the feed's
health (nothing is traded on a DELAYED or DISCONNECTED feed).
"""
from __future__ import annotations

import logging
from collections import deque
from dataclasses import dataclass

log = logging.getLogger(__name__)
_DAY_MS = 86_400_000


@dataclass(frozen=True)
class RiskLimits:
    """Limits in the quote currency (e.g. USDT); None means no limit."""

    max_position: float | None = None  # notional of the position, at the bar's close
    max_daily_loss: float | None = None  # equity drop since the UTC day's first bar
    max_orders_per_minute: int = 6


@dataclass(frozen=True)
class Verdict:
    """What may be sent: ``size`` (0 to send nothing) and why it was cut, if it was."""

    size: float
    reason: str = ""


class RiskGuard:
    """Applies ``RiskLimits`` bar by bar; the clock is the exchange's (bar times, ms)."""

    def __init__(self, limits: RiskLimits) -> None:
        self.limits = limits
        self.killed_day: int | None = None  # UTC day (ms // day) the kill switch tripped on
        self._day: int | None = None
        self._day_start_equity = 0.0
        self._sent: deque[int] = deque()

    def on_bar(self, now_ms: int, equity: float) -> None:
        """Track the day's starting equity; trip the kill switch on the day's loss limit."""
        day = now_ms // _DAY_MS
        if day != self._day:
            self._day, self._day_start_equity = day, equity
        limit = self.limits.max_daily_loss
        if limit is not None and self.killed_day != day and \
                self._day_start_equity - equity >= limit:
            self.killed_day = day
            log.warning("kill switch: the day's loss %.2f reached the limit %.2f; no new "
                        "entries until the next UTC day", self._day_start_equity - equity,
                        limit)

    @property
    def killed(self) -> bool:
        """Whether new entries are blocked today."""
        return self.killed_day is not None and self.killed_day == self._day

    def review(self, *, entering: bool, size: float, price: float, position: float,
               now_ms: int, feed_live: bool) -> Verdict:
        """How much of an order of ``size`` (base units, at about ``price``) may be sent."""
        if not feed_live:
            return Verdict(0.0, "feed not live")
        while self._sent and now_ms - self._sent[0] >= 60_000:
            self._sent.popleft()
        if len(self._sent) >= self.limits.max_orders_per_minute:
            return Verdict(0.0, f"{self.limits.max_orders_per_minute} orders in the last "
                                "minute")
        if entering:
            if self.killed:
                return Verdict(0.0, "kill switch: daily loss limit reached")
            cap = self.limits.max_position
            if cap is not None:
                room = max(cap - position * price, 0.0) / price
                if room < size:
                    return Verdict(room, f"position capped at {cap:g} notional")
        return Verdict(size)

    def sent(self, now_ms: int) -> None:
        """Count an order sent at ``now_ms``."""
        self._sent.append(now_ms)

"""How long after sending an order request the exchange may still execute it.

The rule, enforced by ``orders.follow_up`` and restart reconciliation (and stated in the
README): an order attempt whose outcome is unknown (timeout, dropped connection, 5xx, garbled
answer) is declared absent only once

    client request timeout + the exchange's receive window + a clock margin

has passed since it was written to the journal, just before it was sent. Until then nothing
new is sent in its place; the bar's decision may be skipped, which is safe, a duplicate is not.

- **Receive window.** binance (and ccxt's other binance classes) acts on a signed request only
  while its own clock is within ``recvWindow`` ms of the request's timestamp, and refuses it
  after (ccxt sends ``options['recvWindow']``, 10,000 ms). An exchange that promises no such
  window gets ``NO_WINDOW_S``, a conservative minute.
- **Timeout.** A request accepted at the very end of its window may still be queued in the
  exchange's engine (binance's -1007 "execution status unknown"); the client's timeout, the time
  an answer is allowed to take, is added as the allowance for that queue: a sum, not a maximum.
- **Clock margin.** The timestamp is the bot's clock, the window the exchange's. binance refuses
  a request stamped more than a second ahead of its clock, so a bot whose requests are accepted
  at all is at most a second ahead: ``CLOCK_MARGIN_S``.

An exchange may still break its promise; executions found later are adopted by the history
sweep (``execution.sweep``), never sent again.
"""
from __future__ import annotations

from dataclasses import dataclass

import ccxt

from datafeeds.errors import ExchangeError

NO_WINDOW_S = 60.0  # an exchange that promises no receive window
CLOCK_MARGIN_S = 1.0  # binance refuses requests stamped over 1 s ahead of its clock
BINANCE_DEFAULT_WINDOW_MS = 5_000  # binance's own default when a request carries none


@dataclass(frozen=True)
class ExecutionDeadline:
    """The parts of the deadline, in seconds, and whether the exchange promises its window."""

    timeout_s: float
    window_s: float
    margin_s: float
    promised: bool

    @property
    def seconds(self) -> float:
        """Seconds after sending until the exchange can no longer execute the request."""
        return self.timeout_s + self.window_s + self.margin_s

    def describe(self) -> str:
        """The rule with its numbers, for logs and ``--help``."""
        window = "recvWindow" if self.promised else "no receive window promised: assumed"
        return (f"{self.seconds:g} s (request timeout {self.timeout_s:g} s + {window} "
                f"{self.window_s:g} s + clock margin {self.margin_s:g} s)")


def promises_window(exchange: ccxt.Exchange) -> bool:
    """Whether the exchange refuses signed requests older than a receive window (binance)."""
    return isinstance(exchange, ccxt.binance)


def set_recv_window(exchange: ccxt.Exchange, ms: int) -> None:
    """Ask the exchange to refuse our signed requests older than ``ms`` (binance only).

    Raises
    ------
    ExchangeError
        For an exchange that has no such window.
    """
    if not promises_window(exchange):
        raise ExchangeError(f"{exchange.id} promises no receive window; drop --recv-window "
                            f"(the bot then waits {NO_WINDOW_S:g} s plus the timeout before "
                            "declaring an unanswered order absent)")
    exchange.options["recvWindow"] = int(ms)


def execution_deadline(exchange: ccxt.Exchange,
                       margin_s: float = CLOCK_MARGIN_S) -> ExecutionDeadline:
    """The deadline of ``exchange`` as configured (its timeout and receive window)."""
    timeout_s = float(exchange.timeout) / 1000.0
    if promises_window(exchange):
        window_ms = exchange.options.get("recvWindow") or BINANCE_DEFAULT_WINDOW_MS
        return ExecutionDeadline(timeout_s, float(window_ms) / 1000.0, margin_s, True)
    return ExecutionDeadline(timeout_s, NO_WINDOW_S, margin_s, False)

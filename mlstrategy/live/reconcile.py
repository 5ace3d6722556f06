"""Restart reconciliation: square the journal with the exchange before any new order.

For every order the journal left unresolved (written but unconfirmed, unknown, or working), the
exchange is asked by client id. Found: its state and every fill are recorded (no fill is lost)
and, if it is still working, it is cancelled: it was decided on a bar long gone. Not found: it
is asked again once the exchange can no longer act on the request, then recorded absent. Orders
recorded as final whose fills are missing get them fetched. The bot's position is then the sum
of its own fills, checked against the exchange's balance.
"""
from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass

from datafeeds.exchange.orders import ABSENT, CANCELED, CLOSED, EXPIRED, OPEN, OrderGateway
from mlstrategy.live.journal import Journal

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Reconciliation:
    """What reconciliation found and did."""

    resolved: int  # unresolved orders found at the exchange
    absent: int  # unresolved orders the exchange never had
    canceled: int  # working orders left by the previous run, cancelled
    fills_recovered: int  # fills recorded now that the journal missed
    position: float  # own position after reconciliation (sum of own fills)
    balance: float  # the exchange's total balance of the base asset


def reconcile(gateway: OrderGateway, journal: Journal,
              sleep: Callable[[float], None] = time.sleep) -> Reconciliation:
    """Resolve every unresolved order of ``journal`` against the exchange (see module doc).

    Raises
    ------
    ExchangeError
        When the exchange cannot be asked: the bot must not trade before this succeeds.
    """
    resolved = absent = canceled = recovered = 0
    for record in journal.unresolved():
        state = gateway.lookup(record.client_id)
        wait = record.created + gateway.settle_s - time.time()
        if state is None and wait > 0:  # it may still be in flight: ask once it cannot be
            sleep(wait)
            state = gateway.lookup(record.client_id)
        if state is None:
            journal.order_state(record.client_id, ABSENT, reason="not at the exchange")
            absent += 1
            continue
        resolved += 1
        if state.status == OPEN:
            state = gateway.cancel(record.client_id) or state
            canceled += 1
        journal.order_state(record.client_id, state.status, state)
    for record in journal.orders((CLOSED, CANCELED, EXPIRED, OPEN)):
        if record.filled > journal.filled_amount(record.client_id) + 1e-12:
            state = gateway.lookup(record.client_id)
            if state is not None:
                recovered += sum(journal.fill(f) for f in gateway.fills(state))
    balance = gateway.balance().base_total
    result = Reconciliation(resolved, absent, canceled, recovered, journal.position(), balance)
    if result.position > balance + 1e-9:
        log.warning("own position %.8f is above the exchange's balance %.8f: someone moved "
                    "funds; the bot trades only what is there", result.position, balance)
    journal.event("reconciled", **asdict(result))
    log.info("reconciled: %s", asdict(result))
    return result

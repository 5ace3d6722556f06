"""Reconciliation: square the journal with the exchange at start (before any new order) and at
stop (after the last one).

For every order the journal left unresolved (written but unconfirmed, unknown, or working), the
exchange is asked by client id. Found: its state and every fill are recorded (no fill is lost)
and, if it is still working, it is cancelled: it was decided on a bar long gone; but a stop or
take-profit resting for the position is kept (cancelled only when it would sell more than the
bot holds), and one that executed while the bot was down is the position's exit. Not found: it
is asked again once the exchange can no longer execute it (the deadline of
``execution.deadline``), then recorded absent. Orders recorded as final whose fills are
missing get them fetched, and the trade history is swept for executions of attempts that are
not provably final (``execution.sweep``). The bot's position is then the sum of its
own fills, checked against what the account holds above what it held before the bot's first
order (recorded here, once per journal): ``mismatch`` says when it cannot be the bot's.
"""
from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass

from execution.orders import (
    ABSENT,
    CANCELED,
    CLOSED,
    EXPIRED,
    OPEN,
    UNKNOWN,
    OrderGateway,
    OrderState,
    follow_up,
)
from execution.protection import PROTECTIVE
from execution.sweep import sweep
from mlstrategy.live.journal import Journal

log = logging.getLogger(__name__)
HELD_BEFORE = "held_before"  # journal meta: base asset held before the bot's first order
_CLOCK_STEP = 0.05  # slept past a deadline, so that the clock read after it is past it too


@dataclass(frozen=True)
class Reconciliation:
    """What reconciliation found and did."""

    resolved: int  # unresolved orders found at the exchange
    absent: int  # unresolved orders the exchange never executed
    canceled: int  # working orders left by the previous run, cancelled
    fills_recovered: int  # fills recorded now that the journal missed
    adopted: int  # attempts the journal had given up on that executed after all
    position: float  # own position after reconciliation (sum of own fills)
    balance: float  # the exchange's total balance of the base asset
    held_before: float  # base asset held before the bot's first order: never sold
    mismatch: str | None  # why the position cannot be the bot's; None when it can


def reconcile(gateway: OrderGateway, journal: Journal, tag: str,
              sleep: Callable[[float], None] = time.sleep) -> Reconciliation:
    """Resolve every unresolved order of ``journal`` against the exchange (see module doc).

    ``tag`` is the bot's client-id tag (``orders.strategy_tag``). Waits, when an unresolved
    attempt's deadline has not passed yet, until it has.

    Raises
    ------
    ExchangeError
        When the exchange cannot be asked: the bot must not trade before this succeeds.
    """
    resolved = absent = canceled = recovered = 0
    for record in journal.unresolved():
        state = _settle(gateway, journal, record.client_id, sleep)
        if not isinstance(state, OrderState):
            absent += state == ABSENT
            continue
        resolved += 1
        if state.status == OPEN and record.kind not in PROTECTIVE:
            state = gateway.cancel(record.client_id) or state
            canceled += 1
        journal.order_state(record.client_id, state.status, state)
    for record in journal.orders((CLOSED, CANCELED, EXPIRED, OPEN)):
        if record.filled > journal.filled_amount(record.client_id) + 1e-12:
            state = gateway.lookup(record.client_id)
            if state is not None:
                recovered += sum(journal.fill(f) for f in gateway.fills(state))
    since = journal.watch_since()
    found = sweep(gateway, journal, f"{tag}-", since) if since is not None else None
    position = journal.position()
    for record in journal.orders((OPEN,)):  # a stop or take-profit kept guards the position
        if record.kind in PROTECTIVE and abs(position) + 1e-12 < record.amount - record.filled:
            state = gateway.cancel(record.client_id)  # it would sell what is not the bot's
            canceled += 1
            if state is not None:
                journal.order_state(record.client_id, state.status, state)
    balance = gateway.balance().base_total  # a contract's: its signed position
    rules = gateway.holdings
    held = journal.meta().get(HELD_BEFORE)
    if held is None:  # the first reconciliation of this journal: what is there is not ours
        held_before = rules.first_held_before(balance, position)
        journal.set_meta(HELD_BEFORE, repr(held_before))
    else:
        held_before = float(held)
    problem = rules.mismatch(position, balance, held_before, gateway.base)
    if problem is not None and (late := _protection_executed(gateway, journal)):
        recovered += late  # a stop executed while the account was read: its fills explain it
        position = journal.position()
        balance = gateway.balance().base_total
        problem = rules.mismatch(position, balance, held_before, gateway.base)
    if found is not None and found.unattributed:
        problem = (f"orders {', '.join(found.unattributed)} carry this bot's client id but "
                   "are not in its journal")
    result = Reconciliation(resolved, absent, canceled,
                            recovered + (len(found.fills) if found else 0),
                            len(found.adopted) if found else 0, position, balance,
                            held_before, problem)
    journal.event("reconciled", **asdict(result))
    log.info("reconciled: %s", asdict(result))
    return result


def _protection_executed(gateway: OrderGateway, journal: Journal) -> int:
    """Record the fills of resting stops and take-profits that executed since they were last
    asked (the exchange goes on while the reconciliation reads it); how many."""
    count = 0
    for record in journal.orders((OPEN,)):
        if record.kind not in PROTECTIVE:
            continue
        state = gateway.lookup(record.client_id)
        if state is None or state.filled <= record.filled + 1e-12:
            continue
        journal.order_state(record.client_id, state.status, state)
        count += sum(journal.fill(f) for f in gateway.fills(state))
    return count


def _settle(gateway: OrderGateway, journal: Journal, client_id: str,
            sleep: Callable[[float], None]) -> OrderState | str:
    """The exchange's order for an unresolved attempt, or ABSENT once the deadline has passed
    without one (waiting for it when it has not)."""
    state = follow_up(gateway, journal, client_id)
    if state == UNKNOWN:  # it may still execute: ask again once it no longer can
        wait = journal.sent_at(client_id) + gateway.deadline.seconds - time.time()
        log.info("order %s: outcome unknown; waiting %.1f s, until the exchange can no longer "
                 "execute it", client_id, wait)
        sleep(max(wait, 0.0) + _CLOCK_STEP)
        state = follow_up(gateway, journal, client_id)
    return state

"""Late executions adopted: the account's trade history read against the bot's journal.

An exchange may execute an order after the bot gave up on it: after its answer was lost and
the deadline passed (an exchange that breaks its receive-window promise), or while the bot was
down. ``sweep`` reads the account's trades in the market from ``since_ms`` on. A trade whose
order the journal knows (by exchange id) and whose fill it lacks is recorded. A trade of an
order it does not know is looked up by the exchange's order id: when the order's client id
carries this bot's prefix, the attempt it belongs to is brought up to the exchange's state and
its fills are recorded (an attempt marked absent becomes the execution it was); any other
order is someone else's and is left alone.

The position then follows from the fills by the normal decision path: an extra buy is sold by
the next exit, never by selling other holdings. An order with this bot's prefix that the journal
never wrote cannot be attributed (the journal writes every attempt before sending it): it is
reported, and the bot must stop trading the market.
"""
from __future__ import annotations

import logging
from collections.abc import Collection
from dataclasses import dataclass
from typing import Protocol

from execution.orders import Fill, OrderGateway, OrderState

log = logging.getLogger(__name__)


class SweepJournal(Protocol):
    """What ``sweep`` reads and writes of the bot's journal."""

    def client_id_of(self, exchange_id: str) -> str | None:
        """The client id of the attempt the exchange knows as ``exchange_id``, if any."""

    def attempt_state(self, client_id: str) -> str | None:
        """The journal's state of attempt ``client_id``; None when it never wrote one."""

    def order_state(self, client_id: str, state: str, order: OrderState | None = None,
                    reason: str = "") -> None:
        """Record what is now known of ``client_id``."""

    def fill(self, fill: Fill) -> bool:
        """Record a fill; False when it was recorded before (same trade id)."""

    def event(self, kind: str, **detail: object) -> None:
        """Record something worth knowing later."""


@dataclass(frozen=True)
class Sweep:
    """What a sweep found: fills recorded now, attempts adopted late, orders not attributable."""

    fills: tuple[Fill, ...] = ()
    adopted: tuple[str, ...] = ()  # client ids whose execution the journal had not known
    unattributed: tuple[str, ...] = ()  # this bot's prefix, never written to the journal


def sweep(gateway: OrderGateway, journal: SweepJournal, prefix: str, since_ms: int, *,
          skip: Collection[str] = (), foreign: set[str] | None = None) -> Sweep:
    """Adopt every execution of this bot's orders since ``since_ms`` missing from ``journal``.

    Parameters
    ----------
    prefix : str
        Start of every client id this bot sends (``orders.strategy_tag`` and a dash).
    since_ms : int
        Exchange time to read trades from: at or before the decision bar of the oldest order
        that may still have executions the journal lacks.
    skip : collection of str
        Client ids followed elsewhere (a broker's open orders): their fills are left to it.
    foreign : set of str, optional
        Exchange ids of orders known not to be this bot's; grown as others are found.

    Raises
    ------
    ExchangeError
        When the exchange cannot be asked; nothing is adopted then.
    """
    foreign = set() if foreign is None else foreign
    by_order: dict[str, list[dict]] = {}
    for trade in gateway.trades_since(since_ms):
        by_order.setdefault(str(trade["order"]), []).append(trade)
    fills: list[Fill] = []
    adopted: list[str] = []
    unattributed: list[str] = []
    for exchange_id, trades in by_order.items():
        if exchange_id in foreign:
            continue
        client_id = journal.client_id_of(exchange_id)
        order = None
        if client_id is None:
            order = gateway.order_by_id(exchange_id)
            if not order.client_id.startswith(prefix):
                foreign.add(exchange_id)
                continue
            client_id = order.client_id
        if client_id in skip:
            continue
        was = journal.attempt_state(client_id)
        if was is None:
            log.error("order %s (%s) carries this bot's client id but the journal never wrote "
                      "it: its executions cannot be attributed", client_id, exchange_id)
            unattributed.append(client_id)
            continue
        new = [f for f in (gateway.fill_of(t, client_id, trades[0]["side"]) for t in trades)
               if journal.fill(f)]
        if order is not None:  # the journal did not know the exchange had it: adopt it
            journal.order_state(client_id, order.status, order,
                                reason=f"executed late, found in the trade history (was {was})")
            journal.event("late_execution", client_id=client_id, exchange_id=exchange_id,
                          was=was, fills=len(new), filled=order.filled)
            log.warning("order %s, recorded %s, executed after all: %g %s adopted into the "
                        "journal", client_id, was, order.filled, gateway.base)
            adopted.append(client_id)
        fills += new
    return Sweep(tuple(fills), tuple(adopted), tuple(unattributed))

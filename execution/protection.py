"""Protective orders on the exchange: a position's stop-loss and take-profit rest there, so a
bot that dies leaves no position unprotected.

When an entry fills, ``protect`` places them for the filled amount: on spot one binance OCO
list when both are wanted (the take-profit a LIMIT_MAKER above the price, the stop a STOP_LOSS
below it, one quantity locked once; when one fills the other expires), or the one alone; on a
perpetual each leg its own reduce-only conditional order (``futures``). As every order
(``orders.place``): each leg's attempt is journaled before the request is sent, under a client
id of the bot's scheme keyed on the entry's decision bar (intents ``stop`` and ``take``); an
earlier attempt at the legs is adopted, never repeated; a lost answer leaves the legs unknown
until the exchange has them or can no longer act (``orders.follow_up``). A leg that fills is
the position's exit.
"""
from __future__ import annotations

import logging

from datafeeds.errors import ExchangeError, OrderRejected, RateLimited
from execution.orders import (
    ABSENT,
    REFUSED,
    REJECTED,
    STOP,
    TAKE,
    OrderGateway,
    OrderIntent,
    OrderJournal,
    OrderState,
    Placement,
    adopt,
    client_order_id,
    intent_key,
    place,
    settle,
)

log = logging.getLogger(__name__)
PROTECTIVE = (STOP, TAKE)


def has_oco(gateway: OrderGateway) -> bool:
    """Whether the market takes a stop and a take-profit as one OCO list (binance spot)."""
    return bool(gateway.market.get("spot")) and \
        hasattr(gateway.exchange, "privatePostOrderListOco")


def protect(gateway: OrderGateway, journal: OrderJournal, tag: str, bar_ms: int, side: str,
            amount: float, stop: float | None, take: float | None) -> list[Placement]:
    """Place the stop-loss and/or take-profit exiting ``amount`` (orders to ``side``, reduce
    only) for the entry decided on ``bar_ms``; one ``Placement`` per leg (stop first)."""
    intents = [OrderIntent(intent_key(tag, bar_ms, kind), side, amount, kind, price,
                           reduce_only=True)
               for kind, price in ((STOP, stop), (TAKE, take)) if price is not None]
    if len(intents) == 1 or not has_oco(gateway):  # each leg its own (reduce-only) order
        return [place(gateway, journal, intent) for intent in intents]
    earlier = {i.key: journal.order_attempts(i.key) for i in intents}
    live = {key: next(((cid, state) for cid, state in reversed(attempts)
                       if state not in (ABSENT, REFUSED)), None)
            for key, attempts in earlier.items()}
    if any(live.values()):  # placed before (a restart re-deciding): adopt, never resend
        return [adopt(gateway, journal, *live[i.key]) for i in intents if live[i.key]]
    ids = [client_order_id(i.key, len(earlier[i.key])) for i in intents]
    for intent, client_id in zip(intents, ids, strict=True):
        journal.order_attempt(intent, client_id, len(earlier[intent.key]))
    try:
        answered = _send_oco(gateway, ids, amount, stop, take)
    except (OrderRejected, RateLimited) as exc:  # certainly not placed
        for client_id in ids:
            journal.order_state(client_id, REJECTED, reason=str(exc))
        return [Placement(client_id, REJECTED, reason=str(exc)) for client_id in ids]
    except ExchangeError as exc:  # credentials: nothing can be placed, stop the bot
        for client_id in ids:
            journal.order_state(client_id, REJECTED, reason=str(exc))
        raise
    return [settle(gateway, journal, client_id, answered.get(client_id)) for client_id in ids]


def _send_oco(gateway: OrderGateway, ids: list[str], amount: float, stop: float,
              take: float) -> dict[str, OrderState]:
    """binance's OCO sell, sent once; the legs the answer holds, by client id (none when
    the outcome is unknown)."""
    exchange, symbol = gateway.exchange, gateway.symbol
    stop_id, take_id = ids
    request = {"symbol": gateway.market["id"], "side": "SELL",
               "quantity": exchange.amount_to_precision(symbol, float(amount)),
               "aboveType": "LIMIT_MAKER",
               "abovePrice": exchange.price_to_precision(symbol, float(take)),
               "aboveClientOrderId": take_id, "belowType": "STOP_LOSS",
               "belowStopPrice": exchange.price_to_precision(symbol, float(stop)),
               "belowClientOrderId": stop_id, "listClientOrderId": f"{stop_id}-oco"}
    what = f"sell {amount:g} {symbol} stop {stop:g} / take {take:g} ({stop_id}, {take_id})"
    raw = gateway.send(what, exchange.privatePostOrderListOco, request)
    legs = {}
    try:
        for report in (raw or {}).get("orderReports", []):
            state = gateway.parse_order(report)
            legs[state.client_id] = state
    except (AttributeError, KeyError, TypeError, ValueError):
        log.warning("%s: the exchange's answer is malformed; looking the legs up", what)
        return {}
    return legs

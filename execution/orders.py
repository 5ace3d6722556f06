"""Orders through ccxt so that none is ever placed twice, and every fill is accounted for.

The rule: a submit whose outcome is unknown (timeout, dropped connection, 5xx, garbled answer)
is never retried. Every order carries a client order id derived from (strategy, bar time,
intent, attempt) and is written to the journal *before* it is sent. After an unknown outcome
the order is looked up by that id: found, it is adopted; not found, it stays unknown and is
asked for again (``follow_up``) until the exchange can no longer execute it (the deadline of
``execution.deadline``: request timeout + receive window + clock margin), and only
then is it recorded absent. Nothing is sent in its place meanwhile, and no new attempt at the
same decision is made in the same bar: the strategy decides again on a later bar, under a new
client id. So no client id reaches the exchange twice, and an order the exchange did book is
never booked again. An execution the exchange reports later still is adopted by the history
sweep (``execution.sweep``).

``OrderGateway`` wraps the ccxt calls (reads retried, the submit never), ``place`` and
``follow_up`` run the rule above against an ``OrderJournal`` (the bot's SQLite journal).
"""
from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol, TypeVar

import ccxt

from datafeeds.errors import (
    ExchangeError,
    OrderNotFound,
    OrderRejected,
    RateLimited,
)
from datafeeds.exchange.client import load_market
from datafeeds.exchange.translate import PARSE_ERRORS, read_ccxt, submit_error
from execution import holdings
from execution.deadline import ExecutionDeadline, execution_deadline

log = logging.getLogger(__name__)
T = TypeVar("T")
_TRADES_PAGE = 1000  # trades asked for per request (binance's most)

class OrderStatus(StrEnum):
    """An order's state as the journal keeps it (these strings): ccxt's statuses plus ours."""

    PENDING = "pending"  # written, maybe sent: its fate is not known yet
    UNKNOWN = "unknown"  # sent, the answer was lost, and the exchange could still execute it
    ABSENT = "absent"  # unknown outcome, not at the exchange after the deadline
    REFUSED = "refused"  # refused here before sending (below the market's minimums)
    REJECTED = "rejected"  # refused by the exchange
    OPEN = "open"
    CLOSED = "closed"
    CANCELED = "canceled"
    EXPIRED = "expired"


# the states by their short names, as the code reads them
PENDING, UNKNOWN, ABSENT, REFUSED, REJECTED = (
    OrderStatus.PENDING, OrderStatus.UNKNOWN, OrderStatus.ABSENT, OrderStatus.REFUSED,
    OrderStatus.REJECTED)
OPEN, CLOSED, CANCELED, EXPIRED = (
    OrderStatus.OPEN, OrderStatus.CLOSED, OrderStatus.CANCELED, OrderStatus.EXPIRED)
UNRESOLVED = (PENDING, UNKNOWN)  # must be resolved before anything new is sent
STOP, TAKE = "stop", "take"  # protective orders' kinds: a stop-loss, a take-profit


def strategy_tag(*identity: str) -> str:
    """A short, stable tag for one bot (exchange, symbol, timeframe, ...) in client ids."""
    return "ml" + hashlib.sha256("|".join(identity).encode()).hexdigest()[:6]


def _base36(n: int) -> str:
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"
    out = ""
    while True:
        n, r = divmod(n, 36)
        out = digits[r] + out
        if n == 0:
            return out


def intent_key(tag: str, bar_ms: int, intent: str) -> str:
    """What one decision is known by: the strategy, the bar it was taken on, and the intent."""
    return f"{tag}-{_base36(bar_ms // 1000)}-{intent}"


def key_intent(client_id: str) -> str:
    """The intent of the decision a client id (or its key) carries out: ``buy``, ``stop``..."""
    return client_id.split("-")[2]


def key_bar_ms(key: str) -> int:
    """The open time (ms) of the bar decision ``key`` was taken on (``intent_key``'s bar)."""
    return int(key.split("-")[1], 36) * 1000


def client_order_id(key: str, attempt: int) -> str:
    """The client order id of ``attempt`` (0, 1, ...) at carrying out decision ``key``.

    At most 36 characters of ``[A-Za-z0-9-]``, which every major exchange accepts.
    """
    return f"{key}-{attempt}"


@dataclass(frozen=True)
class OrderIntent:
    """An order the strategy wants: which decision, which side, how much, at what limit."""

    key: str
    side: str  # "buy" | "sell"
    amount: float
    kind: str = "market"  # "market" | "limit" | "stop" | "take" (protective, see submit)
    price: float | None = None  # limit price; a stop's trigger
    reduce_only: bool = False  # it may only shrink a position (a contract's exit)


@dataclass(frozen=True)
class OrderState:
    """An order as the exchange reports it."""

    client_id: str
    exchange_id: str
    status: str  # open | closed | canceled | expired | rejected
    side: str
    amount: float
    filled: float
    average: float | None


@dataclass(frozen=True)
class Fill:
    """One execution, with its fee, and what it did to the base and quote balances."""

    trade_id: str
    client_id: str
    time_ms: int
    side: str
    amount: float
    price: float
    fee: float
    fee_currency: str
    base_delta: float
    quote_delta: float


@dataclass(frozen=True)
class Balance:
    """The account's base and quote balances."""

    base_free: float
    base_total: float
    quote_free: float
    quote_total: float


class OrderJournal(Protocol):
    """Where ``place`` writes ahead: every attempt before it is sent, every state after."""

    def order_attempts(self, key: str) -> list[tuple[str, str]]:
        """``(client_id, state)`` of earlier attempts at decision ``key``, oldest first."""

    def order_attempt(self, intent: OrderIntent, client_id: str, attempt: int) -> None:
        """Record (durably) that ``client_id`` is about to be sent."""

    def order_state(self, client_id: str, state: str, order: OrderState | None = None,
                    reason: str = "") -> None:
        """Record what is now known of ``client_id``."""

    def sent_at(self, client_id: str) -> float:
        """``time.time()`` when ``client_id`` was written, just before it was sent."""


@dataclass(frozen=True)
class Placement:
    """What ``place`` achieved: an order at the exchange, a refusal, or an open question."""

    client_id: str | None
    state: str
    order: OrderState | None = None
    reason: str = ""


class OrderGateway:
    """ccxt calls for one market: reads retried with backoff, submits never.

    Parameters
    ----------
    exchange : ccxt.Exchange
        From ``make_exchange(..., credentials=True)``.
    symbol : str
        Unified symbol, e.g. ``BTC/USDT``.
    deadline : ExecutionDeadline, optional
        How long after sending the exchange may still execute an order request; default from
        the exchange's timeout and receive window (``deadline.execution_deadline``).
    retries, backoff : int, float
        Retries of reads and the first wait between them (doubled each time).
    sleep : callable
        Waits (tests pass a recorder).
    """

    holdings = holdings  # what of the account is the bot's: the spot rules

    def __init__(self, exchange: ccxt.Exchange, symbol: str, *,
                 deadline: ExecutionDeadline | None = None, retries: int = 3,
                 backoff: float = 0.25, sleep: Callable[[float], None] = time.sleep) -> None:
        self.exchange = exchange
        self.symbol = symbol
        self.deadline = deadline or execution_deadline(exchange)
        self._retries = retries
        self._backoff = backoff
        self._sleep = sleep
        self.market: dict = {}

    def _read(self, what: str, fn: Callable, *args: object,
              parse: Callable[[object], T] = lambda raw: raw) -> T:
        return read_ccxt(f"{what} on {self.exchange.id}", fn, *args, parse=parse,
                         retries=self._retries, backoff=self._backoff, sleep=self._sleep)

    def load(self) -> None:
        """Load the market's precision and limits (once, at start)."""
        self.market = load_market(self.exchange, self.symbol, retries=self._retries,
                                  backoff=self._backoff)

    @property
    def base(self) -> str:
        """Base asset, e.g. BTC."""
        return self.market["base"]

    @property
    def quote(self) -> str:
        """Quote asset, e.g. USDT."""
        return self.market["quote"]

    def round_amount(self, amount: float) -> float:
        """``amount`` truncated to the market's amount precision (never rounded up, but a
        sum of fills a hair below a whole step, from float addition, is that step: else each
        exit would leave a step of dust behind)."""
        if not amount > 0 or not self.market:
            return max(amount, 0.0)
        try:
            return float(self.exchange.amount_to_precision(self.symbol, amount * (1 + 1e-9)))
        except ccxt.InvalidOrder:  # less than one step of the market's precision
            return 0.0

    def check(self, amount: float, price: float) -> str | None:
        """Why an order of ``amount`` at about ``price`` may not be sent, or None if it may."""
        limits = self.market.get("limits", {})
        min_amount = (limits.get("amount") or {}).get("min") or 0.0
        min_cost = (limits.get("cost") or {}).get("min") or 0.0
        if amount <= 0 or amount < min_amount:
            return f"amount {amount:g} is below the market's minimum {min_amount:g}"
        if amount * price < min_cost:
            return (f"notional {amount * price:.2f} {self.quote} is below the market's "
                    f"minimum {min_cost:g}")
        return None

    def submit(self, client_id: str, intent: OrderIntent) -> OrderState | None:
        """Send the order once. None means the outcome is unknown: look it up, never resend.

        A ``stop`` is binance's STOP_LOSS (a market order once the price reaches
        ``intent.price``), a ``take`` its LIMIT_MAKER (a limit that only rests).

        Raises
        ------
        OrderRejected, AuthFailed, RateLimited
            When the exchange certainly did not place it.
        """
        what = f"{intent.side} {intent.amount:g} {self.symbol} {intent.kind} ({client_id})"
        kind, price, params = self.order_request(intent)
        raw = self.send(what, self.exchange.create_order, self.symbol, kind, intent.side,
                        float(intent.amount), price, {**params, "clientOrderId": client_id})
        if raw is None:
            return None
        try:
            state = self._order_state(raw)
        except (KeyError, TypeError, ValueError):
            state = None
        if state is None or state.client_id != client_id:
            log.warning("%s: the exchange's answer is malformed; looking it up", what)
            return None
        return state

    def order_request(self, intent: OrderIntent) -> tuple[str, float | None, dict]:
        """ccxt's order type, price and extra parameters for ``intent`` (client id aside)."""
        # plain floats: ccxt silently drops a numpy float stopPrice and sends a MARKET order
        price = None if intent.price is None else float(intent.price)
        if intent.kind == STOP:
            return "STOP_LOSS", None, {"stopPrice": price}
        if intent.kind == TAKE:
            return "LIMIT_MAKER", price, {}
        return intent.kind, price, {}

    def by_client_id(self, client_id: str) -> dict:
        """ccxt's parameters that name order ``client_id`` in a lookup or a cancel."""
        return {"origClientOrderId": client_id}

    def send(self, what: str, call: Callable, *args: object) -> object | None:
        """``call(*args)`` once: its answer, or None when its outcome is unknown.

        Raises
        ------
        OrderRejected, AuthFailed, RateLimited
            When the exchange certainly did not act on it.
        """
        try:
            return call(*args)
        except (ccxt.BaseError, *PARSE_ERRORS) as exc:
            refusal = submit_error(what, exc)
            if refusal is not None:
                raise refusal from None
            log.warning("%s: outcome unknown (%s); looking it up before anything else",
                        what, type(exc).__name__)
            return None

    def parse_order(self, raw: dict) -> OrderState:
        """An order as the exchange's own API returns it (not ccxt's structure)."""
        return self._order_state(self.exchange.parse_order(raw, self.market))

    def lookup(self, client_id: str) -> OrderState | None:
        """The order the exchange has under ``client_id``, or None when it has none.

        Raises
        ------
        ExchangeError
            When the exchange cannot be asked (after retries): the question stays open.
        """
        try:
            return self._read(f"fetch_order {client_id}", self.exchange.fetch_order, None,
                              self.symbol, self.by_client_id(client_id),
                              parse=self._order_state)
        except OrderNotFound:
            return None

    def order_by_id(self, exchange_id: str) -> OrderState:
        """The order the exchange has under its own id ``exchange_id``.

        Raises
        ------
        ExchangeError
            When the exchange cannot be asked, or has no such order.
        """
        return self._read(f"fetch_order #{exchange_id}", self.exchange.fetch_order,
                          exchange_id, self.symbol, parse=self._order_state)

    def fills(self, order: OrderState) -> list[Fill]:
        """Every execution of ``order`` (its trades at the exchange), fees included; asked
        again while they do not add up to the order's filled amount (a garbled answer parses
        into no trades, and an exchange may list trades a moment after the order)."""
        def parse(raw: object) -> list[Fill]:
            if not isinstance(raw, list):
                raise TypeError("trades are not a list")
            fills = [self.fill_of(t, order.client_id, order.side) for t in raw
                     if str(t.get("order")) == order.exchange_id]
            if abs(sum(f.amount for f in fills) - order.filled) > 1e-9 * max(order.filled, 1):
                raise ValueError(f"its trades add up to {sum(f.amount for f in fills):g}, "
                                 f"the order says {order.filled:g} filled")
            return fills

        return self._read(f"fetch_my_trades of {order.client_id}",
                          self.exchange.fetch_my_trades, self.symbol, None, None,
                          {"orderId": order.exchange_id}, parse=parse)

    def trades_since(self, since_ms: int) -> list[dict]:
        """The account's trades in this market from ``since_ms`` (exchange time) on, ccxt's
        trade structures, oldest first; every page of them."""
        def parse(raw: object) -> list[dict]:
            if not isinstance(raw, list) or any(
                    t.get("id") is None or t.get("order") is None for t in raw):
                raise TypeError("trades without id or order")
            return raw

        trades: dict[str, dict] = {}
        start = since_ms
        while True:
            page = self._read(f"fetch_my_trades since {start}", self.exchange.fetch_my_trades,
                              self.symbol, start, _TRADES_PAGE, parse=parse)
            fresh = [t for t in page if str(t["id"]) not in trades]
            trades.update((str(t["id"]), t) for t in fresh)
            if len(page) < _TRADES_PAGE or not fresh:
                return sorted(trades.values(), key=lambda t: (t["timestamp"], str(t["id"])))
            start = max(int(t["timestamp"]) for t in page)

    def fill_of(self, trade: dict, client_id: str, side: str) -> Fill:
        """ccxt's ``trade`` of order ``client_id`` (a ``side`` order) as a ``Fill``."""
        amount, price = float(trade["amount"]), float(trade["price"])
        fee = trade.get("fee") or {}
        fee_cost, fee_currency = float(fee.get("cost") or 0.0), fee.get("currency") or ""
        sign = 1.0 if side == "buy" else -1.0
        base_delta = sign * amount - (fee_cost if fee_currency == self.base else 0.0)
        quote_delta = -sign * amount * price - (fee_cost if fee_currency == self.quote else 0.0)
        return Fill(str(trade["id"]), client_id, int(trade["timestamp"]), side, amount, price,
                    fee_cost, fee_currency, base_delta, quote_delta)

    def balance(self) -> Balance:
        """Free and total base and quote balances."""
        def parse(raw: dict) -> Balance:
            info = raw.get("info")  # ccxt parses a garbled body into no assets, silently
            if not isinstance(info, (dict, list)) or not info or (
                    isinstance(info, dict) and not isinstance(info.get("balances", []), list)):
                raise ValueError("a balance answer without the account's balances")
            base, quote = raw.get(self.base) or {}, raw.get(self.quote) or {}
            return Balance(float(base.get("free") or 0.0), float(base.get("total") or 0.0),
                           float(quote.get("free") or 0.0), float(quote.get("total") or 0.0))

        return self._read("fetch_balance", self.exchange.fetch_balance, parse=parse)

    def cancel(self, client_id: str) -> OrderState | None:
        """Cancel ``client_id``; its final state, or None when it was no longer working."""
        try:
            self._read(f"cancel_order {client_id}", self.exchange.cancel_order, None,
                       self.symbol, self.by_client_id(client_id))
        except (OrderNotFound, ExchangeError):  # filled or gone meanwhile: read what it is
            pass
        return self.lookup(client_id)

    @staticmethod
    def _order_state(raw: object) -> OrderState:
        """ccxt's order structure as an ``OrderState``; ValueError when it is incomplete."""
        if not isinstance(raw, dict) or raw.get("id") is None or raw.get("status") is None:
            raise ValueError("an order without id or status")
        amount, filled = float(raw["amount"]), float(raw.get("filled") or 0.0)
        average = raw.get("average")
        return OrderState(str(raw.get("clientOrderId") or ""), str(raw["id"]),
                          str(raw["status"]), str(raw["side"]), amount, filled,
                          None if average is None else float(average))


def place(gateway: OrderGateway, journal: OrderJournal, intent: OrderIntent) -> Placement:
    """Carry out ``intent`` at the exchange, at most once, whatever the network does.

    An earlier attempt at the same decision (a restart re-deciding the same bar) that may be
    at the exchange is adopted, not repeated. A new attempt is journaled before it is sent. An
    unknown outcome is looked up by client id at once (a lost answer of a booked order); not
    found, the attempt stays unknown: ``follow_up`` asks again, and nothing is sent in its
    place, until the deadline.

    Returns
    -------
    Placement
        ``open``/``closed``/``expired``... with the exchange's order; ``rejected`` with the
        reason; ``unknown`` when the exchange may still execute it (follow it up).
    """
    earlier = journal.order_attempts(intent.key)
    for client_id, state in reversed(earlier):
        if state not in (ABSENT, REFUSED):  # may be at the exchange: adopt, never resend
            return adopt(gateway, journal, client_id, state)
    attempt = len(earlier)
    client_id = client_order_id(intent.key, attempt)
    journal.order_attempt(intent, client_id, attempt)
    try:
        order = gateway.submit(client_id, intent)
    except (OrderRejected, RateLimited) as exc:  # certainly not placed
        journal.order_state(client_id, REJECTED, reason=str(exc))
        return Placement(client_id, REJECTED, reason=str(exc))
    except ExchangeError as exc:  # credentials: nothing can be placed, stop the bot
        journal.order_state(client_id, REJECTED, reason=str(exc))
        raise
    return settle(gateway, journal, client_id, order)


def settle(gateway: OrderGateway, journal: OrderJournal, client_id: str,
           order: OrderState | None) -> Placement:
    """A sent order as its answer has it, or else a lookup by client id (a lost answer of a
    booked order); unknown (journaled) when neither does."""
    if order is None:
        try:
            order = gateway.lookup(client_id)
        except ExchangeError:
            order = None
        if order is None:
            reason = (f"answer lost; the exchange may execute it until "
                      f"{gateway.deadline.seconds:g} s after sending")
            journal.order_state(client_id, UNKNOWN, reason=reason)
            return Placement(client_id, UNKNOWN, reason=reason)
    journal.order_state(client_id, order.status, order)
    return Placement(client_id, order.status, order)


def follow_up(gateway: OrderGateway, journal: OrderJournal, client_id: str) -> OrderState | str:
    """Ask again for an attempt whose outcome is unknown.

    Returns
    -------
    OrderState or str
        The exchange's order once it has one (journaled); ``ABSENT`` (journaled) when it has
        none and the deadline had passed before it was asked; ``UNKNOWN`` before that.

    Raises
    ------
    ExchangeError
        When the exchange cannot be asked: the question stays open.
    """
    past_deadline = time.time() >= journal.sent_at(client_id) + gateway.deadline.seconds
    order = gateway.lookup(client_id)  # asked after the deadline, if it had passed before
    if order is not None:
        journal.order_state(client_id, order.status, order)
        return order
    if not past_deadline:
        return UNKNOWN
    journal.order_state(client_id, ABSENT, reason="not at the exchange "
                        f"{gateway.deadline.seconds:g} s after it was sent")
    return ABSENT


def adopt(gateway: OrderGateway, journal: OrderJournal, client_id: str,
          state: str) -> Placement:
    """The earlier attempt ``client_id`` as the exchange now has it (never sent again)."""
    try:
        order = gateway.lookup(client_id)
    except ExchangeError as exc:
        return Placement(client_id, UNKNOWN, reason=str(exc))
    if order is None:  # unresolved: only ``follow_up`` past the deadline may call it absent
        return Placement(client_id, UNKNOWN if state in UNRESOLVED else state,
                         reason="earlier attempt not resolved yet")
    journal.order_state(client_id, order.status, order)
    return Placement(client_id, order.status, order)

"""``CcxtBroker``: a backtrader broker that trades a real exchange account through ccxt.

Orders go through ``orders.place`` (journaled before sending, never placed twice), fills come
from the exchange's own trades and reach ``notify_order`` as Partial/Completed executions with
their fees. An order whose answer was lost stays Submitted, and nothing new is sent, until
``orders.follow_up`` finds it or the deadline passes (then it is Rejected: the bar's decision is
skipped and the strategy decides again on a later bar). Orders below the market's precision or
minimum notional are refused here, with the reason, and never sent.

Holdings: the broker's position is what its own filled orders add up to, and it sells at most
what the account holds above ``held_before`` (what it held before the bot's first order), so
holdings it did not buy are never sold. On every live bar it sweeps the trade history for
executions the journal lacks (``sweep``) and checks the position against the balance
(``holdings``): a mismatch halts buying and is reported in ``mismatch``; when the account
cannot be read, ``unchecked`` says so for that bar. Cash is the exchange's free quote balance.

Brackets: an entry sent with a stop-loss and/or a take-profit (backtrader's bracket) is placed
alone; once it fills, its stop and take-profit rest on the exchange for the filled amount
(``protection``; one OCO list when both), so the position stays protected if the bot dies. A
leg that fills is the position's exit; an exit the strategy decides first cancels them before
it sells; a leg the exchange refuses (the price is already through it) exits at the market,
as the backtest's stop or take-profit fills at that bar's open. Resting legs are asked after
once a bar and are found again at a restart. A perpetual's broker (``futures_broker``) is
this one with a signed position: exits are reduce-only, so are its stops.

The journal (``BrokerJournal``) is the bot's: it remembers attempts and fills across restarts.
"""
from __future__ import annotations

import logging
import math
import time
from collections import deque
from typing import Protocol

from datafeeds.bt.compat import bt
from datafeeds.bt.dates import num2ns
from datafeeds.errors import ExchangeError
from execution.orders import (
    ABSENT,
    CANCELED,
    CLOSED,
    EXPIRED,
    OPEN,
    REFUSED,
    REJECTED,
    STOP,
    TAKE,
    UNKNOWN,
    UNRESOLVED,
    Balance,
    Fill,
    OrderGateway,
    OrderIntent,
    OrderJournal,
    OrderState,
    follow_up,
    intent_key,
    key_bar_ms,
    place,
)
from execution.protection import PROTECTIVE, has_oco, protect
from execution.sweep import SweepJournal, sweep

log = logging.getLogger(__name__)
RESIZED = "protection_resized"  # journal event: the legs were placed again for the position
# backtrader's order arguments besides owner, data, size, price and plimit
_ORDER_ARGS = ("exectype", "valid", "tradeid", "oco", "trailamount", "trailpercent", "parent",
               "transmit")


class BrokerJournal(OrderJournal, SweepJournal, Protocol):
    """The order journal plus fills: what ``CcxtBroker`` needs to survive restarts."""

    def fills(self) -> list[Fill]:
        """Every fill recorded, oldest first."""

    def watch_since(self) -> int | None:
        """Exchange time (ms) from which executions may still be missing from the journal:
        the decision bar of the oldest attempt not provably final; None when there is none."""

    def orders(self, states: tuple[str, ...] | None = None) -> list:
        """Order attempts (in these states), oldest first: records with ``client_id``,
        ``kind``, ``amount``..."""


class CcxtBroker(bt.BrokerBase):
    """Live broker over ``gateway`` for one market (one data feed).

    Parameters
    ----------
    gateway : OrderGateway
        The market's order gateway (``load()`` already called).
    journal : BrokerJournal
        Write-ahead journal of orders and fills.
    tag : str
        This bot's tag in client order ids (``orders.strategy_tag``).
    data : backtrader data feed
        The market's feed: bar times for client ids, last close for the value.
    held_before : float
        Base asset the account held before the bot's first order: never sold.
    balance_ttl : float
        Seconds a fetched balance is reused before asking the exchange again.
    follow_every : float
        Seconds between follow-ups of orders not final yet.
    """

    def __init__(self, gateway: OrderGateway, journal: BrokerJournal, tag: str, data: object,
                 *, held_before: float = 0.0, balance_ttl: float = 2.0,
                 follow_every: float = 0.25) -> None:
        super().__init__()
        self.gateway = gateway
        self.journal = journal
        self.tag = tag
        self.data = data
        self.held_before = held_before
        self.balance_ttl = balance_ttl
        self.follow_every = follow_every
        self.notifs: deque = deque()
        self.mismatch: str | None = None  # the position is not provably the bot's: halted
        self.unchecked: str | None = None  # this bar's holdings check could not run
        self._tracked: dict[str, bt.Order] = {}  # client id -> bt order not final yet
        self._position = bt.Position()
        self._balance: Balance | None = None
        self._balance_at = -1e18
        self._next_follow = 0.0
        self._bars_checked = 0
        self._foreign: set[str] = set()  # exchange ids of orders that are not this bot's
        self._children: dict[int, list[bt.Order]] = {}  # entry ref -> its stop/take-profit
        self._legs: set[str] = set()  # client ids of protective orders resting on the exchange
        self.reload()

    def reload(self) -> None:
        """Read the book from the journal again (at start: a restart continues it; at the end:
        after reconciliation recorded the last fills) and forget the cached balance."""
        self._position = bt.Position()
        for fill in self.journal.fills():
            self._position.update(fill.base_delta, fill.price)
        self._balance_at = -1e18
        for record in self.journal.orders((OPEN, UNKNOWN)):  # found again at a restart
            if record.kind in PROTECTIVE and record.client_id not in self._tracked:
                self._tracked[record.client_id] = None
                self._legs.add(record.client_id)

    def start(self) -> None:
        super().start()
        self.startingcash = self.getcash()  # backtrader's writers and analyzers read it

    # --- what the strategy reads ---------------------------------------------------------
    def balance(self, *, fresh: bool = False) -> Balance:
        """The exchange's balances, fetched again when older than ``balance_ttl``."""
        if fresh or time.monotonic() - self._balance_at > self.balance_ttl:
            try:
                return self._fetch_balance()
            except ExchangeError as exc:
                if self._balance is None:
                    raise
                log.warning("balance not refreshed (%s); using the last one", exc)
        return self._balance

    def _fetch_balance(self) -> Balance:
        """The exchange's balances now (ExchangeError when it cannot be asked)."""
        self._balance = self.gateway.balance()
        self._balance_at = time.monotonic()
        return self._balance

    def position_size(self) -> float:
        """Own position (signed), never more than the account bears out (``gateway.holdings``:
        on spot what it holds above ``held_before``), in whole steps of the market's amount
        precision (dust the exchange would refuse is no position)."""
        own = self.gateway.holdings.own(self._position.size, self.balance().base_total,
                                        self.held_before)
        return math.copysign(self.gateway.round_amount(abs(own)), own)

    def getcash(self) -> float:
        return self.balance().quote_free

    def market_value(self) -> float:
        """What the own position adds to the account's value at the last close."""
        return self.position_size() * float(self.data.close[0])

    def getvalue(self, datas: object = None) -> float:
        return self.getcash() + self.market_value()

    def getposition(self, data: object, clone: bool = True) -> bt.Position:
        return bt.Position(self.position_size(), self._position.price)

    def get_notification(self) -> bt.Order | None:
        return self.notifs.popleft() if self.notifs else None

    # --- orders --------------------------------------------------------------------------
    def buy(self, owner, data, size, price=None, plimit=None, **kwargs):
        return self._submit(self._order(bt.BuyOrder, owner, data, size, price, plimit, kwargs),
                            kwargs)

    def sell(self, owner, data, size, price=None, plimit=None, **kwargs):
        return self._submit(self._order(bt.SellOrder, owner, data, size, price, plimit, kwargs),
                            kwargs)

    @staticmethod
    def _order(order_cls: type, owner, data, size, price, plimit, kwargs: dict) -> bt.Order:
        """A bt order from backtrader's arguments; what is left in ``kwargs`` is order info."""
        known = {k: kwargs.pop(k) for k in _ORDER_ARGS if k in kwargs}
        return order_cls(owner=owner, data=data, size=size, price=price, pricelimit=plimit,
                         **known)

    def _notify(self, order: bt.Order) -> None:
        self.notifs.append(order.clone())

    def _refuse(self, order: bt.Order, key: str, reason: str) -> bt.Order:
        """Refuse here, before sending: the order is Rejected with the reason (a bracket's
        stop and take-profit with it)."""
        log.warning("order %s refused: %s", key, reason)
        order.addinfo(reason=reason)
        order.reject(self)
        self._notify(order)
        self._protect(order)
        return order

    def _submit(self, order: bt.Order, info: dict) -> bt.Order:
        order.addinfo(**info)
        order.addcomminfo(self.getcommissioninfo(order.data))
        if order.parent is not None:  # a bracket's stop or take-profit: placed on its fill
            self._children.setdefault(order.parent.ref, []).append(order)
            order.submit(self)
            order.accept(self)
            self._notify(order)
            return self._send(order.parent) if order.transmit else order
        if not order.transmit:  # a bracket's entry: sent with its last child
            return order
        return self._send(order)

    def _send(self, order: bt.Order) -> bt.Order:
        """Refuse ``order`` here or place it on the exchange (never twice)."""
        side = "buy" if order.isbuy() else "sell"
        intent = str(order.info.get("intent", side))
        bar_ms = num2ns(order.data.datetime[0]) // 1_000_000
        order.addinfo(bar_ms=bar_ms)
        key = intent_key(self.tag, bar_ms, intent)
        if order.exectype not in (None, bt.Order.Market, bt.Order.Limit):
            return self._refuse(order, key, "only market and limit orders are supported")
        kind = "limit" if order.exectype == bt.Order.Limit else "market"
        amount = abs(order.created.size)
        reduces = self._reduces(side)
        if reduces:  # never more than the own position
            self._lift_protection()  # it is locked by the resting stop/take-profit
            amount = min(amount, self._exit_room())
        elif self.mismatch is not None:
            return self._refuse(order, key, f"entries halted: {self.mismatch}")
        amount = self.gateway.round_amount(amount)
        signed = amount if side == "buy" else -amount  # the order is for what is sent
        order.size = order.created.size = order.created.remsize = signed
        order.executed.remsize = signed
        ref_price = order.created.price if kind == "limit" else float(order.data.close[0])
        reason = self.gateway.check(amount, ref_price)
        if reason is None and not reduces:
            reason = self._entry_refusal(side, amount, ref_price)
        if reason is None and any(o is not None and o.status == o.Submitted
                                  for o in self._tracked.values()):
            reason = "an earlier order's outcome is still unknown"
        if reason is not None:
            self.journal.event(REFUSED, key=key, reason=reason)
            return self._refuse(order, key, reason)
        order.submit(self)
        self._notify(order)
        placement = place(self.gateway, self.journal,
                          OrderIntent(key, side, amount, kind,
                                      order.created.price if kind == "limit" else None,
                                      reduce_only=reduces))
        order.addinfo(client_id=placement.client_id)
        if placement.state == REJECTED:
            order.addinfo(reason=placement.reason)
            order.reject(self)
            self._notify(order)
            self._protect(order)
            return order
        self._tracked[placement.client_id] = order
        if placement.state != UNKNOWN:  # unknown: resolved in next(), nothing new meanwhile
            self._follow(placement.client_id, placement.order)
        return order

    def _reduces(self, side: str) -> bool:
        """Whether an order to ``side`` exits (spot: every sell; the bot never shorts)."""
        return side == "sell"

    def _exit_room(self) -> float:
        """The most an exit may sell: the own position, and no coin that is not free."""
        return min(self.position_size(), self.balance(fresh=True).base_free)

    def _entry_refusal(self, side: str, amount: float, price: float) -> str | None:
        """Why an entry may not be sent, beyond the market's minimums (spot: none)."""
        return None

    def _follow(self, client_id: str, state: OrderState) -> None:
        """``_apply``, or try again on the next cycle when the exchange cannot be read now."""
        try:
            self._apply(client_id, state)
        except ExchangeError as exc:
            log.warning("order %s: %s; following it up next time", client_id, exc)

    def cancel(self, order: bt.Order) -> None:
        waiting = self._children.get(getattr(order.parent, "ref", None), [])
        if order in waiting:  # a stop or take-profit not on the exchange yet
            waiting.remove(order)
            order.cancel()
            self._notify(order)
            return
        client_id = order.info.get("client_id")
        if client_id in self._tracked:
            self._cancel_on_exchange(client_id)

    def _cancel_on_exchange(self, client_id: str) -> None:
        """Cancel ``client_id`` (an OCO leg: both) and follow what it now is."""
        try:
            state = self.gateway.cancel(client_id)
        except ExchangeError as exc:
            log.warning("cancel %s: %s; will retry", client_id, exc)
            return
        if state is not None:
            self._follow(client_id, state)

    def _apply(self, client_id: str, state: OrderState) -> None:
        """Bring the bt order of ``client_id`` up to the exchange's ``state``."""
        order = self._tracked.get(client_id)
        fills = self.gateway.fills(state) if state.filled > 0 else []
        self.journal.order_state(client_id, state.status, state)
        if order is not None and order.status == order.Submitted:
            order.accept(self)
            self._notify(order)
        new_fills = 0
        for fill in fills:
            if self.journal.fill(fill):
                self._execute(order, fill)
                new_fills += 1
        if fills:
            self._balance_at = -1e18  # balances moved
        if order is None:
            if state.status != OPEN:  # a protective order found again at a restart
                self._tracked.pop(client_id, None)
                self._leg_done(client_id, state.status)
            return
        if state.status == OPEN:
            if new_fills:
                order.partial()
                self._notify(order)
            return
        if state.status == CLOSED and not order.executed.remsize:
            order.completed()
        elif state.status == CANCELED or (state.status == CLOSED and order.executed.remsize):
            order.cancel()
        elif state.status == EXPIRED:  # bt's expire() refuses market orders: set it as is
            order.status = order.Expired
        else:
            order.reject(self)
        self._notify(order)
        del self._tracked[client_id]
        self._leg_done(client_id, state.status)
        self._protect(order)

    def _leg_done(self, client_id: str, status: str) -> None:
        """A protective order is final: one that executed was the position's exit, so the
        other leg goes too (an OCO's expires by itself and is settled at its next follow-up;
        separate legs are cancelled)."""
        if client_id not in self._legs:
            return
        self._legs.discard(client_id)
        if status == CLOSED and not has_oco(self.gateway):
            self._lift_protection()

    def _protect(self, entry: bt.Order) -> None:
        """``entry`` is final: rest its stop-loss and take-profit on the exchange for what it
        filled (nothing filled: they are cancelled). A leg the exchange refuses (the price
        already went through it) leaves the position at the market at once, its other leg
        cancelled, as the backtest fills a stop or take-profit the fill bar's open is
        through."""
        children = self._children.pop(entry.ref, [])
        amount = self.gateway.round_amount(min(abs(entry.executed.size),
                                               abs(self.position_size()))) if children else 0.0
        if not amount > 0:
            for child in children:
                child.cancel()
                self._notify(child)
            return
        legs = {STOP if c.exectype == bt.Order.Stop else TAKE: c for c in children}
        self._rest_legs(entry.info["bar_ms"], "sell" if entry.isbuy() else "buy", amount,
                        {kind: child.created.price for kind, child in legs.items()}, legs)

    def _rest_legs(self, bar_ms: int, exit_side: str, amount: float,
                   prices: dict[str, float], children: dict[str, bt.Order | None]) -> None:
        """Place the legs of ``prices`` (kind -> price) exiting ``amount``, keyed on
        ``bar_ms``, and follow them (as ``children``, the strategy's bt orders, where it has
        them). A leg the exchange refuses (the price already went through it) leaves the
        position at the market at once, its other leg cancelled, as the backtest fills a
        stop or take-profit the fill bar's open is through."""
        kinds = [k for k in (STOP, TAKE) if k in prices]
        placements = protect(self.gateway, self.journal, self.tag, bar_ms, exit_side, amount,
                             prices.get(STOP), prices.get(TAKE))
        unprotected = False
        for kind, placement in zip(kinds, placements, strict=True):
            child = children.get(kind)
            if child is not None:
                signed = -amount if exit_side == "sell" else amount
                child.size = child.created.size = child.created.remsize = signed
                child.executed.remsize = signed
                child.addinfo(client_id=placement.client_id)
            if placement.state == REJECTED:
                log.error("%s order %s refused (%s)", kind, placement.client_id,
                          placement.reason)
                if child is not None:
                    child.addinfo(reason=placement.reason)
                    child.reject(self)
                    self._notify(child)
                unprotected = True
                continue
            self._tracked[placement.client_id] = child
            self._legs.add(placement.client_id)
            if placement.state not in (UNKNOWN, OPEN):
                self._follow(placement.client_id, placement.order)
        if unprotected:  # a leg the price already went through: exit now, as the backtest
            self._lift_protection()
            self._leave_unprotected(bar_ms, self.position_size())

    def _resize_protection(self) -> None:
        """Legs resting for another amount than the position (a late execution adopted since
        they were placed): cancelled, and placed again for the position at the same prices,
        keyed on this bar (once a bar)."""
        if not self._legs:
            return
        legs = [r for r in self.journal.orders((OPEN,)) if r.client_id in self._legs]
        if not legs or len(legs) != len(self._legs):  # one not settled yet: next bar
            return
        size = self.gateway.round_amount(abs(self.position_size()))
        if all(self.gateway.round_amount(r.amount - r.filled) == size for r in legs):
            return
        bar_ms = num2ns(self.data.datetime[0]) // 1_000_000
        if any(key_bar_ms(r.client_id) == bar_ms for r in legs):
            return  # placed on this bar already
        children = {r.kind: self._tracked.get(r.client_id) for r in legs}
        for record in legs:  # the strategy's bt orders move to the new legs
            self._tracked[record.client_id] = None
        log.warning("position %g, its stop and take-profit rest for %g: placing them again",
                    size, legs[0].amount - legs[0].filled)
        self.journal.event(RESIZED, position=size, resting=legs[0].amount - legs[0].filled,
                           legs=[r.client_id for r in legs])
        self._lift_protection()
        size = self.gateway.round_amount(abs(self.position_size()))  # a leg may have filled
        if self._legs or not size > 0:
            return  # not cancelled (asked again next bar), or nothing left to protect
        self._rest_legs(bar_ms, legs[0].side, size, {r.kind: r.price for r in legs},
                        children)

    def _leave_unprotected(self, bar_ms: int, position: float) -> None:
        """Exit ``position`` (signed), whose stop (of the entry decided on ``bar_ms``) could
        not rest on the exchange, at the market."""
        amount = self.gateway.round_amount(abs(position))
        if not amount > 0:
            return
        side = "sell" if position > 0 else "buy"
        key = intent_key(self.tag, bar_ms, "unprotected")
        placement = place(self.gateway, self.journal,
                          OrderIntent(key, side, amount, reduce_only=True))
        log.error("no stop on the exchange: %s %g at the market (%s: %s)", side, amount,
                  placement.client_id, placement.state)
        if placement.state not in (REJECTED,):
            self._tracked[placement.client_id] = None
            if placement.state != UNKNOWN:
                self._follow(placement.client_id, placement.order)

    def _lift_protection(self) -> None:
        """Cancel the protective orders resting on the exchange (before an exit sells the
        coins they lock)."""
        for client_id in list(self._legs):
            if client_id in self._legs:  # not settled meanwhile with the other leg
                self._cancel_on_exchange(client_id)

    def _execute(self, order: bt.Order | None, fill: Fill) -> None:
        """One fill into the own position and, when tracked, the bt order's executions."""
        price = fill.price
        pprice_orig = self._position.price
        psize, pprice, opened, closed = self._position.update(fill.base_delta, price)
        if order is None:
            return
        size = fill.amount if fill.side == "buy" else -fill.amount  # gross, fees aside
        comm = fill.fee if fill.fee_currency == self.gateway.quote else fill.fee * price
        total = abs(opened) + abs(closed) or 1.0
        closedcomm, openedcomm = comm * abs(closed) / total, comm * abs(opened) / total
        pnl = -closed * (price - pprice_orig)
        dt = order.data.datetime[0]
        order.execute(dt, size, price, closed, abs(closed) * pprice_orig, closedcomm,
                      opened, abs(opened) * price, openedcomm, 0.0, pnl, psize, pprice)

    def next(self) -> None:
        """Follow the orders not final yet (resting stops and take-profits once a bar); on
        each new live bar, check the holdings."""
        now = time.monotonic()
        bars = len(self.data)
        new_bar = bars != self._bars_checked and _tradable(self.data)
        due = now >= self._next_follow
        if due:
            self._next_follow = now + self.follow_every
        for client_id in list(self._tracked):
            if new_bar if client_id in self._legs else due:
                self._follow_up(client_id)
        if new_bar:
            self._bars_checked = bars
            self.check_holdings()
            if self.mismatch is None and self.unchecked is None:
                self._resize_protection()

    def _follow_up(self, client_id: str) -> None:
        """Ask the exchange about one tracked order and bring its bt order up to date."""
        if client_id not in self._tracked:  # settled meanwhile (the other leg filled)
            return
        order = self._tracked[client_id]
        try:  # outcome unknown: found, absent or waiting
            if self.journal.attempt_state(client_id) in UNRESOLVED:
                state = follow_up(self.gateway, self.journal, client_id)
            else:
                state = self.gateway.lookup(client_id)
        except ExchangeError as exc:
            log.debug("order %s: %s; asking again next time", client_id, exc)
            return
        if state == ABSENT:
            if order is not None:
                order.addinfo(reason="the exchange never executed it (its answer was lost): "
                                     "the bar's decision is skipped")
                order.reject(self)
                self._notify(order)
                self._protect(order)  # an entry that never was: its stop and target go
            del self._tracked[client_id]
            if client_id in self._legs:  # a stop that never rested: do not stay unprotected
                self._legs.discard(client_id)
                self._leave_unprotected(key_bar_ms(client_id), self.position_size())
        elif isinstance(state, OrderState):
            self._follow(client_id, state)

    def check_holdings(self) -> None:
        """Adopt executions the journal lacks, then check the position against the balance.

        Sets ``mismatch`` (buying halts) when the position is not provably the bot's, and
        ``unchecked`` when it cannot be told on this bar (the exchange could not be asked, or
        an order in flight is moving the balance). A new mismatch is only one a second look
        agrees with: one odd answer halts nothing, and a resting stop or a late execution
        that moved the balance since the executions were read explains itself once they are
        read again.
        """
        try:
            for look in range(1 if self.mismatch is not None else 2):
                if look:  # ask the resting legs and the trade history again first
                    for client_id in list(self._legs):
                        self._follow_up(client_id)
                unattributed = self._adopt_missing()
                if unattributed:
                    self.unchecked, self.mismatch = None, (
                        f"orders {', '.join(unattributed)} carry this bot's client id but "
                        "are not in its journal")
                    return
                if set(self._tracked) - self._legs:  # in flight: moves the balance first
                    self.unchecked = "an order is still in flight"
                    return
                balance = self._fetch_balance()
                problem = self.gateway.holdings.mismatch(
                    self._position.size, balance.base_total, self.held_before,
                    self.gateway.base)
                if problem is None:
                    break
            self.unchecked, self.mismatch = None, problem
        except ExchangeError as exc:
            self.unchecked = f"the account could not be checked ({exc})"

    def _adopt_missing(self) -> tuple[str, ...]:
        """Sweep the trade history for executions of the bot's orders the journal lacks into
        the position; the client ids of this bot's prefix it never wrote."""
        since = self.journal.watch_since()
        if since is None:
            return ()
        found = sweep(self.gateway, self.journal, f"{self.tag}-", since,
                      skip=set(self._tracked), foreign=self._foreign)
        for fill in found.fills:
            self._position.update(fill.base_delta, fill.price)
        return found.unattributed


def _tradable(data: object) -> bool:
    """Whether the feed's current bar may be traded on (not warm-up, not backfill)."""
    if getattr(data, "in_history", False):
        return False
    return data._laststatus not in (data.DELAYED, data.DISCONNECTED)

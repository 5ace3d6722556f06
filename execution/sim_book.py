"""The simulated exchange's state: its clock, its markets' candles (a forming one each), an account.

Everything here is plain Python over recorded real bars, shaped the way binance's spot REST API
answers (strings for numbers, ``NEW``/``FILLED``/``EXPIRED`` statuses), so the HTTP layer in
``simulator`` only routes and injects faults.

Clock: ``SimClock`` runs at ``speed`` times real time from a start bar, or is *stepped*: it
jumps to the next bar's close once a client has read every closed bar (``speed=None``, see
``simulator``), so a replay runs as fast as the client reads. The candle that contains "now"
is served as forming: its high, low, close and volume grow from the open towards the recorded
bar's values as the bar elapses, so a client that takes it for closed sees other numbers than
the closed bar has.

Orders: market orders fill at the forming candle's current close; limit orders rest until the
price path reaches them. Fees are charged in the quote asset. Filters as binance applies them:
lot size, minimum notional, insufficient balance, duplicate open client order id.
"""
from __future__ import annotations

import itertools
import math
import threading
import time
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

INTERVAL_MS = {"1m": 60_000, "3m": 180_000, "5m": 300_000, "15m": 900_000, "30m": 1_800_000,
               "1h": 3_600_000, "2h": 7_200_000, "4h": 14_400_000, "1d": 86_400_000}
LOT_STEP = 0.00001
_RESTING_SELLS = ("LIMIT_MAKER", "STOP_LOSS")  # protective sells: take-profit, stop-loss
MIN_NOTIONAL = 5.0


class SimClock:
    """Exchange time in ms: frozen, running ``speed`` x real time, or stepped by the client."""

    def __init__(self, start_ms: int, speed: float | None = 1.0, *, frozen: bool = False
                 ) -> None:
        self._start_ms = start_ms
        self.speed = speed
        self.frozen = frozen
        self._wall0 = time.monotonic()
        self._now = start_ms  # stepped and frozen clocks

    @property
    def stepped(self) -> bool:
        """Whether time moves only when a client has caught up (as-fast-as-possible replay)."""
        return self.speed is None and not self.frozen

    def now_ms(self) -> int:
        """Current exchange time in ms since the epoch."""
        if self.frozen or self.speed is None:
            return self._now
        return self._start_ms + int((time.monotonic() - self._wall0) * 1000.0 * self.speed)

    def step_to(self, ms: int) -> None:
        """Move a stepped clock forward to ``ms`` (never backwards)."""
        self._now = max(self._now, ms)


@dataclass
class Candles:
    """Recorded bars as arrays, served up to the clock with the current one forming."""

    bars: pd.DataFrame
    step_ms: int

    def __post_init__(self) -> None:
        self.ms = self.bars.index.as_unit("ms").asi8
        self.values = self.bars[["open", "high", "low", "close", "volume"]].to_numpy(np.float64)

    def closed_before(self, now_ms: int) -> int:
        """Number of bars closed at ``now_ms`` (their open + step is not after it)."""
        return int(np.searchsorted(self.ms, now_ms - self.step_ms, side="right"))

    def row(self, i: int, now_ms: int) -> tuple[float, float, float, float, float]:
        """Bar ``i`` as it looks at ``now_ms``: final once closed, partly formed before."""
        o, hi, lo, c, v = self.values[i]
        f = (now_ms - self.ms[i]) / self.step_ms
        if f >= 1.0:
            return o, hi, lo, c, v
        f = max(f, 0.0)
        return o, o + f * (hi - o), o - f * (o - lo), o + f * (c - o), f * v

    def price(self, now_ms: int) -> float | None:
        """Last trade price: the forming bar's close (None before the first bar opens)."""
        i = int(np.searchsorted(self.ms, now_ms, side="right")) - 1
        if i < 0:
            return None
        return self.row(i, now_ms)[3]

    def klines(self, start_ms: int, limit: int, end_ms: int | None, now_ms: int) -> list:
        """binance ``/api/v3/klines`` rows from ``start_ms``: closed bars and the forming one."""
        first = int(np.searchsorted(self.ms, start_ms))
        visible = int(np.searchsorted(self.ms, now_ms, side="right"))  # opened by now
        stop = min(first + limit, visible)
        if end_ms is not None:
            stop = min(stop, int(np.searchsorted(self.ms, end_ms, side="right")))
        return [[int(self.ms[i]), *(repr(float(x)) for x in self.row(i, now_ms)),
                 int(self.ms[i]) + self.step_ms - 1, "0", 1, "0", "0", "0"]
                for i in range(first, stop)]

    def first_touch(self, from_ms: int, now_ms: int, *, below: float | None = None,
                    above: float | None = None,
                    gapped_above: bool = False) -> tuple[int, float, str] | None:
        """When and at what price the path from ``from_ms`` to ``now_ms`` first reached
        ``below`` (a low at or under it) or ``above`` (a high at or over it), bar by bar, the
        lower one first within a bar; ``(time, price, "below" | "above")`` or None.

        ``below`` trades at its price, or at a later bar's open already through it (a stop
        becomes a market order); ``above`` at its price (a resting limit is the maker), or,
        with ``gapped_above`` (a market order once triggered), at such an open too.
        """
        i0 = max(int(np.searchsorted(self.ms, from_ms, side="right")) - 1, 0)
        i1 = int(np.searchsorted(self.ms, now_ms, side="right"))
        for i in range(i0, i1):
            o, hi, lo, _, _ = self.row(i, now_ms)
            when = max(int(self.ms[i]), from_ms)
            if below is not None and lo <= below:
                return when, (o if i > i0 and o <= below else below), "below"
            if above is not None and hi >= above:
                return when, (o if gapped_above and i > i0 and o >= above else above), "above"
        return None

    def range_extremes(self, from_ms: int, now_ms: int) -> tuple[float, float] | None:
        """Lowest low and highest high traded in ``(from_ms, now_ms]`` (approximated by bars)."""
        i0 = max(int(np.searchsorted(self.ms, from_ms, side="right")) - 1, 0)
        i1 = int(np.searchsorted(self.ms, now_ms, side="right"))
        if i1 <= i0:
            return None
        rows = [self.row(i, now_ms) for i in range(i0, i1)]
        return min(r[2] for r in rows), max(r[1] for r in rows)


def _fmt(x: float) -> str:
    return f"{x:.8f}"


@dataclass
class Account:
    """One spot account over every market: balances, orders by id, trades."""

    balances: dict[str, list[float]]  # asset -> [free, locked]
    pairs: dict[str, tuple[str, str]] = field(default_factory=dict)  # symbol -> (base, quote)
    fee_rate: float = 0.001
    # binance numbers orders and trades per symbol: ids repeat across markets
    orders: dict[tuple[str, int], dict] = field(default_factory=dict)  # (symbol, id) ->
    trades: list[dict] = field(default_factory=list)
    lowest: dict[str, float] = field(default_factory=dict)  # lowest total ever held, by asset
    lists: dict[int, dict] = field(default_factory=dict)  # OCO order lists by orderListId
    _ids: dict[str, itertools.count] = field(default_factory=dict)  # by symbol
    _trade_ids: dict[str, itertools.count] = field(default_factory=dict)
    _list_ids: itertools.count = field(default_factory=lambda: itertools.count(1))

    def __post_init__(self) -> None:
        self.lowest = {asset: self.total(asset) for asset in self.balances}

    def total(self, asset: str) -> float:
        """Free plus locked balance of ``asset``."""
        free, locked = self.balances.get(asset, [0.0, 0.0])
        return free + locked

    def _next_id(self, counters: dict[str, itertools.count], symbol: str) -> int:
        return next(counters.setdefault(symbol, itertools.count(1)))

    def order(self, symbol: str, order_id: int) -> dict | None:
        """``symbol``'s order ``order_id``."""
        return self.orders.get((symbol, order_id))

    def by_client_id(self, symbol: str, client_id: str) -> dict | None:
        """``symbol``'s newest order with this client id (binance looks up the newest)."""
        found = [o for o in self.orders.values()
                 if o["clientOrderId"] == client_id and o["symbol"] == symbol]
        return found[-1] if found else None

    def lowest_total(self, asset: str) -> float:
        """The lowest total balance of ``asset`` the account ever had."""
        return self.lowest.get(asset, 0.0)

    def open_orders(self, symbol: str | None = None) -> list[dict]:
        """Orders still working (of ``symbol``, when given)."""
        return [o for o in self.orders.values() if o["status"] in ("NEW", "PARTIALLY_FILLED")
                and symbol in (None, o["symbol"])]

    def _fill(self, order: dict, qty: float, price: float, now_ms: int, maker: bool) -> dict:
        """Book a trade of ``qty`` at ``price`` against ``order`` and move the balances."""
        quote_qty = qty * price
        fee = quote_qty * self.fee_rate
        base_asset, quote_asset = self.pairs[order["symbol"]]
        base, quote = self.balances.setdefault(base_asset, [0.0, 0.0]), \
            self.balances.setdefault(quote_asset, [0.0, 0.0])
        if order["side"] == "BUY":
            base[0] += qty
            if order["type"] != "MARKET":  # paid from the locked reserve
                reserve = qty * float(order["price"]) * (1 + self.fee_rate)
                quote[1] -= reserve
                quote[0] += reserve - quote_qty - fee
            else:
                quote[0] -= quote_qty + fee
        else:
            if order["type"] != "MARKET":  # a resting sell's coins are locked
                base[1] -= qty
            else:
                base[0] -= qty
            quote[0] += quote_qty - fee
        for asset in (base_asset, quote_asset):
            self.lowest[asset] = min(self.lowest.get(asset, math.inf), self.total(asset))
        executed = float(order["executedQty"]) + qty
        order["executedQty"] = _fmt(executed)
        order["cummulativeQuoteQty"] = _fmt(float(order["cummulativeQuoteQty"]) + quote_qty)
        order["status"] = "FILLED" if executed >= float(order["origQty"]) - 1e-12 \
            else "PARTIALLY_FILLED"
        order["updateTime"] = now_ms
        trade = {"symbol": order["symbol"], "id": self._next_id(self._trade_ids, order["symbol"]),
                 "orderId": order["orderId"], "orderListId": order["orderListId"],
                 "price": _fmt(price),
                 "qty": _fmt(qty), "quoteQty": _fmt(quote_qty), "commission": _fmt(fee),
                 "commissionAsset": quote_asset, "time": now_ms, "isBuyer": order["side"] == "BUY",
                 "isMaker": maker, "isBestMatch": True}
        self.trades.append(trade)
        return trade

    def place(self, params: dict[str, str], symbol: str, price_now: float, now_ms: int,
              *, partial: float | None = None) -> tuple[int, dict]:
        """Validate and book a new order as binance does; returns ``(http status, body)``.

        Types: ``MARKET``, ``LIMIT``, and for sells ``LIMIT_MAKER`` (refused when it would
        fill at once) and ``STOP_LOSS`` (``stopPrice``; a market order once the price falls
        to it, refused when it already has). ``partial`` fills only that fraction of a
        market order, which then expires (the answer binance gives when the book runs out).
        """
        order = self._new_order(params, symbol, params.get("type", ""), price_now, now_ms)
        if isinstance(order, tuple):
            return order
        fills = []
        if order["type"] == "MARKET":
            qty = float(order["origQty"])
            fills.append(self._fill(order, qty if partial is None else
                                    math.floor(qty * partial / LOT_STEP) * LOT_STEP,
                                    price_now, now_ms, maker=False))
            if order["status"] != "FILLED":
                order["status"] = "EXPIRED"
        else:
            self._reserve(order)
            limit = float(order["price"])
            crosses = order["type"] == "LIMIT" and (
                price_now <= limit if order["side"] == "BUY" else price_now >= limit)
            if crosses:  # marketable limit: fills now, at the market's better price
                fills.append(self._fill(order, float(order["origQty"]), price_now, now_ms,
                                        maker=False))
        return 200, self._report(order, now_ms, fills)

    def place_oco(self, params: dict[str, str], symbol: str, price_now: float,
                  now_ms: int) -> tuple[int, dict]:
        """binance's ``POST /api/v3/orderList/oco`` for a sell: a take-profit leg above the
        price (``aboveType`` LIMIT_MAKER at ``abovePrice``) and a stop leg below it
        (``belowType`` STOP_LOSS at ``belowStopPrice``) over one ``quantity``, locked once;
        when one leg fills the other expires, cancelling one cancels both."""
        if params.get("side") != "SELL" or params.get("aboveType") != "LIMIT_MAKER" or \
                params.get("belowType") != "STOP_LOSS":
            return 400, {"code": -1102, "msg": "This simulator's OCO is a SELL with aboveType "
                                               "LIMIT_MAKER and belowType STOP_LOSS."}
        list_client_id = params.get("listClientOrderId", "")
        if list_client_id and any(lst["listClientOrderId"] == list_client_id and
                                  lst["listOrderStatus"] == "EXECUTING"
                                  for lst in self.lists.values()):
            return 400, {"code": -2010, "msg": "Duplicate order sent."}
        legs = []
        for leg, kind, price_key, given in (("above", "LIMIT_MAKER", "price", "abovePrice"),
                                            ("below", "STOP_LOSS", "stopPrice",
                                             "belowStopPrice")):
            leg_params = {"side": "SELL", "quantity": params.get("quantity", ""),
                          "newClientOrderId": params.get(f"{leg}ClientOrderId", ""),
                          price_key: params.get(given, "")}
            order = self._new_order(leg_params, symbol, kind, price_now, now_ms,
                                    check_balance=not legs)
            if isinstance(order, tuple):
                for booked in legs:  # the list is all or nothing
                    del self.orders[(symbol, booked["orderId"])]
                return order
            legs.append(order)
        list_id = next(self._list_ids)
        for order in legs:
            order["orderListId"] = list_id
        self._reserve(legs[0])  # one quantity, locked once for both legs
        self.lists[list_id] = {
            "orderListId": list_id, "contingencyType": "OCO", "listStatusType": "EXEC_STARTED",
            "listOrderStatus": "EXECUTING",
            "listClientOrderId": list_client_id or f"simlist{list_id}",
            "transactionTime": now_ms, "symbol": symbol,
            "orders": [{"symbol": symbol, "orderId": o["orderId"],
                        "clientOrderId": o["clientOrderId"]} for o in legs]}
        return 200, {**self.lists[list_id],
                     "orderReports": [self._report(o, now_ms, []) for o in legs]}

    def _new_order(self, params: dict[str, str], symbol: str, kind: str, price_now: float,
                   now_ms: int, *, check_balance: bool = True) -> dict | tuple[int, dict]:
        """Validate an order as binance does and book it (NEW, nothing locked or filled yet);
        ``(http status, error)`` when it is refused."""
        side = params.get("side", "")
        client_id = params.get("newClientOrderId", "")
        try:
            qty = float(params.get("quantity", "nan"))
            limit = float(params["price"]) if kind in ("LIMIT", "LIMIT_MAKER") else None
            stop = float(params["stopPrice"]) if kind == "STOP_LOSS" else None
        except (KeyError, ValueError):
            return 400, {"code": -1100, "msg": "Illegal characters found in a parameter."}
        resting_sell = kind in ("LIMIT_MAKER", "STOP_LOSS")
        if side not in ("BUY", "SELL") or kind not in ("MARKET", "LIMIT", *_RESTING_SELLS) or \
                not qty > 0 or (resting_sell and side != "SELL"):
            return 400, {"code": -1102, "msg": "Mandatory parameter was not sent or is invalid."}
        if client_id and any(o["clientOrderId"] == client_id for o in self.open_orders(symbol)):
            return 400, {"code": -2010, "msg": "Duplicate order sent."}
        if abs(qty / LOT_STEP - round(qty / LOT_STEP)) > 1e-6:
            return 400, {"code": -1013, "msg": "Filter failure: LOT_SIZE"}
        if kind == "STOP_LOSS" and stop >= price_now:
            return 400, {"code": -2010, "msg": "Stop price would trigger immediately."}
        if kind == "LIMIT_MAKER" and limit <= price_now:
            return 400, {"code": -2010, "msg": "Order would immediately match and take."}
        ref_price = next(p for p in (limit, stop, price_now) if p is not None)
        if qty * ref_price < MIN_NOTIONAL:
            return 400, {"code": -1013, "msg": "Filter failure: NOTIONAL"}
        base_asset, quote_asset = self.pairs[symbol]
        free_base = self.balances.get(base_asset, [0.0, 0.0])[0]
        free_quote = self.balances.get(quote_asset, [0.0, 0.0])[0]
        if check_balance and (
                (side == "BUY" and qty * ref_price * (1 + self.fee_rate) > free_quote) or
                (side == "SELL" and qty > free_base + 1e-12)):
            return 400, {"code": -2010,
                         "msg": "Account has insufficient balance for requested action."}
        order_id = self._next_id(self._ids, symbol)
        order = {"symbol": symbol, "orderId": order_id, "orderListId": -1,
                 "clientOrderId": client_id or f"sim{order_id}",
                 "price": _fmt(limit or 0.0), "origQty": _fmt(qty), "executedQty": _fmt(0.0),
                 "cummulativeQuoteQty": _fmt(0.0), "status": "NEW",
                 "timeInForce": params.get("timeInForce", "GTC"), "type": kind, "side": side,
                 "stopPrice": _fmt(stop or 0.0), "icebergQty": _fmt(0.0), "time": now_ms,
                 "updateTime": now_ms, "isWorking": kind != "STOP_LOSS", "workingTime": now_ms,
                 "origQuoteOrderQty": _fmt(0.0), "selfTradePreventionMode": "NONE"}
        self.orders[(symbol, order_id)] = order
        return order

    def _reserve(self, order: dict) -> None:
        """Lock what a resting order may spend: a buy's quote at its limit, a sell's coins."""
        base_asset, quote_asset = self.pairs[order["symbol"]]
        qty = float(order["origQty"])
        if order["side"] == "BUY":
            self._lock(quote_asset, qty * float(order["price"]) * (1 + self.fee_rate))
        else:
            self._lock(base_asset, qty)

    @staticmethod
    def _report(order: dict, now_ms: int, fills: list[dict]) -> dict:
        """binance's answer to a placement: the order, when, and its fills."""
        return {**order, "transactTime": now_ms,
                "fills": [{"price": t["price"], "qty": t["qty"], "commission": t["commission"],
                           "commissionAsset": t["commissionAsset"], "tradeId": t["id"]}
                          for t in fills]}

    def _lock(self, asset: str, amount: float) -> None:
        """Move ``amount`` of ``asset`` from free to locked (negative: back)."""
        balance = self.balances.setdefault(asset, [0.0, 0.0])
        balance[0] -= amount
        balance[1] += amount

    def match_resting(self, symbol: str, candles: Candles, now_ms: int) -> None:
        """Fill ``symbol``'s resting orders the price path has reached since they were
        placed: limits at their price; stops, triggered, at the market (the stop, or a later
        bar's open already through it); of an OCO the leg reached first (the stop when both
        are within one bar), the other expiring."""
        for order in self.open_orders(symbol):
            if order["status"] not in ("NEW", "PARTIALLY_FILLED"):
                continue  # an OCO sibling filled earlier in this loop
            left = float(order["origQty"]) - float(order["executedQty"])
            if order["type"] == "LIMIT":
                extremes = candles.range_extremes(order["updateTime"], now_ms)
                if extremes is None:
                    continue
                low, high = extremes
                limit = float(order["price"])
                if (order["side"] == "BUY" and low <= limit) or \
                        (order["side"] == "SELL" and high >= limit):
                    self._fill(order, left, limit, now_ms, maker=True)
                continue
            legs = self._legs(order)
            stop = next((o for o in legs if o["type"] == "STOP_LOSS"), None)
            take = next((o for o in legs if o["type"] == "LIMIT_MAKER"), None)
            touch = candles.first_touch(
                order["time"], now_ms,
                below=None if stop is None else float(stop["stopPrice"]),
                above=None if take is None else float(take["price"]))
            if touch is None:
                continue
            when, price, side = touch
            hit = stop if side == "below" else take
            self._fill(hit, left, price, when, maker=hit is take)
            for other in legs:
                if other is not hit:
                    other["status"], other["updateTime"] = "EXPIRED", when
            self._end_list(hit, "ALL_DONE")

    def _legs(self, order: dict) -> list[dict]:
        """The orders of ``order``'s OCO list (itself alone when it is in none)."""
        if order["orderListId"] == -1:
            return [order]
        return [self.orders[(order["symbol"], leg["orderId"])]
                for leg in self.lists[order["orderListId"]]["orders"]]

    def _end_list(self, order: dict, status: str) -> None:
        """Close ``order``'s OCO list, if it has one."""
        if order["orderListId"] != -1:
            self.lists[order["orderListId"]].update(listStatusType=status,
                                                    listOrderStatus=status)

    def cancel(self, order: dict, now_ms: int) -> dict:
        """Cancel a working order (an OCO leg: both) and release what it had locked."""
        left = float(order["origQty"]) - float(order["executedQty"])
        base_asset, quote_asset = self.pairs[order["symbol"]]
        if order["side"] == "BUY":
            self._lock(quote_asset, -left * float(order["price"]) * (1 + self.fee_rate))
        else:
            self._lock(base_asset, -left)
        for leg in self._legs(order):  # an OCO's quantity was locked once: released once
            leg["status"], leg["updateTime"] = "CANCELED", now_ms
        self._end_list(order, "ALL_DONE")
        return order

    def balance_rows(self) -> list[dict]:
        """binance ``/api/v3/account`` balances."""
        return [{"asset": a, "free": _fmt(f), "locked": _fmt(lk)}
                for a, (f, lk) in sorted(self.balances.items())]


@dataclass
class SimMarket:
    """One spot market the simulator lists: its recorded bars and assets."""

    bars: pd.DataFrame
    base: str = "BTC"
    quote: str = "USDT"
    caught_up: bool = False  # the last klines answer held every closed bar (stepped clock)
    awaited: bool = True  # a stepped clock waits for a client to read it
    interval: str | None = None  # its bars' own size, whatever is asked (None: as asked)
    _candles: Candles | None = None

    @property
    def symbol(self) -> str:
        """The exchange's id of the market, e.g. ``BTCUSDT``."""
        return self.base + self.quote

    def candles(self, interval: str) -> Candles:
        """The bars as served for ``interval``, or at the market's own (rebuilt when ``bars``
        was replaced)."""
        step = INTERVAL_MS[self.interval or interval]
        if self._candles is None or self._candles.bars is not self.bars or \
                self._candles.step_ms != step:
            self._candles = Candles(self.bars, step)
        return self._candles

    def listing(self) -> dict:
        """The market as binance's exchangeInfo lists it."""
        return {
            "symbol": self.symbol, "status": "TRADING", "baseAsset": self.base,
            "baseAssetPrecision": 8, "quoteAsset": self.quote, "quotePrecision": 8,
            "quoteAssetPrecision": 8,
            "orderTypes": ["LIMIT", "LIMIT_MAKER", "MARKET", "STOP_LOSS", "STOP_LOSS_LIMIT",
                           "TAKE_PROFIT", "TAKE_PROFIT_LIMIT"],
            "icebergAllowed": True, "ocoAllowed": True, "isSpotTradingAllowed": True,
            "isMarginTradingAllowed": False, "permissions": ["SPOT"],
            "filters": [
                {"filterType": "PRICE_FILTER", "minPrice": "0.01", "maxPrice": "1000000.00",
                 "tickSize": "0.01"},
                {"filterType": "LOT_SIZE", "minQty": _fmt(LOT_STEP), "maxQty": "9000.00",
                 "stepSize": _fmt(LOT_STEP)},
                {"filterType": "NOTIONAL", "minNotional": _fmt(MIN_NOTIONAL),
                 "applyMinToMarket": True, "maxNotional": "9000000.00",
                 "applyMaxToMarket": False, "avgPriceMins": 5},
            ],
        }


@dataclass
class ExchangeState:
    """Everything the simulator serves, shared by its handler threads under ``lock``: its
    markets by symbol (the first one given is the default), one clock, one account."""

    markets: dict[str, SimMarket]
    clock: SimClock | None = None  # None: the wall clock, so every recorded bar is closed
    interval: str = "1m"  # bar size of every market's bars: prices and stepping follow it
    account: Account | None = None
    api_key: str | None = None  # required value of X-MBX-APIKEY on private endpoints
    # a USDⓈ-M futures account, when served (a ``sim_futures.FuturesAccount``, which reads
    # this module: not imported here)
    futures: object | None = None
    # recorded series of values by (exchange id, series): (stamps in ms, values)
    published: dict[tuple[str, str], tuple[list[int], list[float]]] = field(
        default_factory=dict)
    lock: threading.RLock = field(default_factory=threading.RLock)

    @property
    def first(self) -> SimMarket:
        """The market given first (a one-market simulator's only one)."""
        return next(iter(self.markets.values()))

    @property
    def symbol(self) -> str:
        """The first market's id, e.g. ``BTCUSDT``."""
        return self.first.symbol

    @property
    def bars(self) -> pd.DataFrame:
        """The first market's bars (replace them to let time pass in a data test)."""
        return self.first.bars

    @bars.setter
    def bars(self, bars: pd.DataFrame) -> None:
        self.first.bars = bars

    def now_ms(self) -> int:
        """The exchange's time."""
        return self.clock.now_ms() if self.clock is not None else int(time.time() * 1000)

    def candles(self, interval: str, symbol: str | None = None) -> Candles:
        """The bars of ``symbol`` (default the first market) as served for ``interval``."""
        return self.markets[symbol or self.symbol].candles(interval)

    def step_if_caught_up(self) -> None:
        """A stepped clock: close the next bar once every market has been read up to its last
        closed bar (so several markets' bars close together, as on an exchange)."""
        clock = self.clock
        read = [m for m in self.markets.values() if m.awaited]
        if clock is None or not clock.stepped or not all(m.caught_up for m in read):
            return
        now = clock.now_ms()
        closes = []
        for m in read:
            candles = m.candles(self.interval)
            closed = candles.closed_before(now)
            if closed < len(candles.ms):
                closes.append(int(candles.ms[closed]) + candles.step_ms)
            m.caught_up = False
        if closes:
            clock.step_to(min(closes))

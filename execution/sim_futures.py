"""The simulated exchange's USDⓈ-M perpetual futures: one account, binance's ``/fapi`` answers.

Every market the simulator lists is also a perpetual (``BTCUSDT`` trades both as spot and as a
contract, over the same recorded prices). The account is one-way (one net position per symbol)
with a USDT wallet:

- orders: ``MARKET`` and ``LIMIT`` (``/fapi/v1/order``). The protective ``STOP_MARKET`` and
  ``TAKE_PROFIT_MARKET`` are *algo* orders (``/fapi/v1/algoOrder``, binance's conditional
  order service since December 2025; ``/fapi/v1/order`` refuses them, -4120): a
  ``triggerPrice`` that, once the price path reaches it, sends a market order (the algo's
  ``actualOrderId``; its trades carry that id) and the algo order is ``FINISHED``; refused
  when it would trigger at once. ``reduceOnly`` orders may only shrink the position:
  refused when they would grow it, cut to the position when they execute, expired when it is
  gone.
- margin: each symbol's leverage (``/fapi/v1/leverage``) and margin type
  (``/fapi/v1/marginType``, ``ISOLATED`` or ``CROSSED``; unchangeable while a position is
  open); an opening order needs its notional / leverage plus the fee free in the wallet.
- positions (``/fapi/v3/positionRisk``): amount, entry price, mark, unrealised PnL, margin and
  the isolated liquidation price with one maintenance-margin bracket (``MAINT_MARGIN``).
- funding: every ``funding_every_ms`` (binance: 8 h, at 00:00, 08:00, 16:00 UTC) each position
  pays ``amount x price x rate`` (a short receives it), booked as ``FUNDING_FEE`` income
  (``/fapi/v1/income``) at that time, with resting orders matched up to it first.

A liquidation is not simulated: the bot refuses positions whose liquidation lies near.
"""
from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field

from execution.sim_book import LOT_STEP, MIN_NOTIONAL, Candles, SimMarket, _fmt

MAINT_MARGIN = 0.004  # binance's first maintenance-margin bracket of BTCUSDT
FUNDING_8H = 8 * 3_600_000
_PROTECTIVE = ("STOP_MARKET", "TAKE_PROFIT_MARKET")


def _error(code: int, msg: str) -> tuple[int, dict]:
    return 400, {"code": code, "msg": msg}


@dataclass
class Position:
    """One symbol's net position and its margin settings."""

    amount: float = 0.0  # signed: a short is negative
    entry: float = 0.0
    leverage: int = 20
    margin_type: str = "CROSSED"
    updated: int = 0

    def liquidation(self) -> float:
        """The isolated liquidation price (0 when flat): where the margin left equals the
        maintenance margin, ``entry (1 - 1/lev) / (1 - mm)`` long, ``(1 + 1/lev) / (1 + mm)``
        short."""
        if self.amount == 0:
            return 0.0
        side = 1.0 if self.amount > 0 else -1.0
        return self.entry * (1 - side / self.leverage) / (1 - side * MAINT_MARGIN)

    def margin(self) -> float:
        """Initial margin the position holds: notional at entry / leverage."""
        return abs(self.amount) * self.entry / self.leverage


@dataclass
class FuturesAccount:
    """One USDⓈ-M futures account over every listed market."""

    wallet: float  # USDT: deposits + realised PnL - fees + funding
    fee_rate: float = 0.0004
    funding_rate: float = 0.0001
    funding_every_ms: int = FUNDING_8H
    positions: dict[str, Position] = field(default_factory=dict)
    orders: dict[tuple[str, int], dict] = field(default_factory=dict)
    algos: dict[tuple[str, int], dict] = field(default_factory=dict)  # conditional orders
    trades: list[dict] = field(default_factory=list)
    income: list[dict] = field(default_factory=list)
    funded_until: int | None = None  # funding is booked up to this exchange time
    _ids: dict[str, itertools.count] = field(default_factory=dict)
    _tran_ids: itertools.count = field(default_factory=lambda: itertools.count(1))
    _algo_ids: itertools.count = field(default_factory=lambda: itertools.count(1))

    def position(self, symbol: str) -> Position:
        """``symbol``'s position (flat, default settings, when never traded)."""
        return self.positions.setdefault(symbol, Position())

    def _next_id(self, symbol: str) -> int:
        return next(self._ids.setdefault(symbol, itertools.count(1)))

    def available(self) -> float:
        """Wallet not held as margin by positions."""
        return self.wallet - sum(p.margin() for p in self.positions.values())

    def open_orders(self, symbol: str | None = None) -> list[dict]:
        """Orders still working (of ``symbol``, when given)."""
        return [o for o in self.orders.values() if o["status"] in ("NEW", "PARTIALLY_FILLED")
                and symbol in (None, o["symbol"])]

    def open_algos(self, symbol: str | None = None) -> list[dict]:
        """Conditional orders not triggered yet (of ``symbol``, when given)."""
        return [a for a in self.algos.values() if a["algoStatus"] == "NEW"
                and symbol in (None, a["symbol"])]

    def algo_by_client_id(self, symbol: str, client_id: str) -> dict | None:
        """``symbol``'s newest conditional order with this client algo id."""
        found = [a for a in self.algos.values()
                 if a["clientAlgoId"] == client_id and a["symbol"] == symbol]
        return found[-1] if found else None

    def by_client_id(self, symbol: str, client_id: str) -> dict | None:
        """``symbol``'s newest order with this client id."""
        found = [o for o in self.orders.values()
                 if o["clientOrderId"] == client_id and o["symbol"] == symbol]
        return found[-1] if found else None

    # --- time passing: funding and resting orders ----------------------------------------
    def advance(self, markets: dict[str, SimMarket], interval: str, now_ms: int) -> None:
        """Bring the account to ``now_ms``: resting orders matched and funding paid, in the
        order they happened."""
        if self.funded_until is None:
            self.funded_until = now_ms
        every = self.funding_every_ms
        due = (self.funded_until // every + 1) * every
        while due <= now_ms:
            self._match(markets, interval, due)
            for symbol, pos in self.positions.items():
                price = markets[symbol].candles(interval).price(due) if symbol in markets \
                    else None
                if pos.amount and price is not None:
                    self._book_income(symbol, "FUNDING_FEE",
                                      -pos.amount * price * self.funding_rate, due)
            self.funded_until = due
            due += every
        self._match(markets, interval, now_ms)
        self.funded_until = max(self.funded_until, now_ms)

    def _book_income(self, symbol: str, kind: str, amount: float, time_ms: int) -> None:
        self.wallet += amount
        tran = next(self._tran_ids)
        self.income.append({"symbol": symbol, "incomeType": kind, "income": _fmt(amount),
                            "asset": "USDT", "info": kind, "time": time_ms, "tranId": tran,
                            "tradeId": ""})

    def _match(self, markets: dict[str, SimMarket], interval: str, now_ms: int) -> None:
        """Execute the resting orders the price path reached by ``now_ms``, earliest touch
        first (a stop before a take-profit within one bar): each at its price or a later
        bar's open already through it (a reduce-only one
        whose position is gone expires)."""
        touched = []
        for order in [*self.open_orders(), *self.open_algos()]:
            if order["symbol"] not in markets:
                continue
            candles: Candles = markets[order["symbol"]].candles(interval)
            buy = order["side"] == "BUY"
            algo = "algoId" in order
            level = float(order["triggerPrice"] if algo else order["price"])
            # a buy limit and a sell's stop wait below the price, the others above it
            falls = buy != (algo and order["orderType"] == "STOP_MARKET")
            touch = candles.first_touch(order["createTime" if algo else "updateTime"], now_ms,
                                        below=level if falls else None,
                                        above=None if falls else level, gapped_above=True)
            if touch is not None:
                stop_first = not (algo and order["orderType"] == "STOP_MARKET")
                touched.append((touch[0], stop_first, order, touch[1]))
        for when, _, order, price in sorted(touched, key=lambda t: t[:2]):
            if "algoId" in order:
                self._trigger(order, price, when)
            else:
                self._execute(order, price, when, maker=True)

    def _trigger(self, algo: dict, price: float, now_ms: int) -> None:
        """A conditional order reached: its market order executes (reduce-only: at most the
        position), the algo order is finished."""
        params = {"side": algo["side"], "quantity": algo["quantity"],
                  "reduceOnly": str(algo["reduceOnly"]).lower()}
        order = self._book(algo["symbol"], params, "MARKET", "", 0.0, now_ms)
        self._execute(order, price, now_ms, maker=False)
        if order["status"] != "FILLED":
            order["status"] = "EXPIRED"
        algo.update(algoStatus="FINISHED", triggerTime=now_ms, updateTime=now_ms,
                    actualOrderId=str(order["orderId"]), actualPrice=order["avgPrice"])

    # --- orders --------------------------------------------------------------------------
    def place(self, params: dict[str, str], symbol: str, price_now: float, now_ms: int,
              *, partial: float | None = None) -> tuple[int, dict]:
        """Validate and book a ``MARKET`` or ``LIMIT`` order as binance's futures do;
        ``(http status, body)``. ``partial`` fills only that fraction of a market order,
        which then expires."""
        kind = params.get("type", "")
        if kind in _PROTECTIVE:
            return _error(-4120, "Order type not supported for this endpoint. Please use the "
                                 "Algo Order API endpoints instead.")
        if kind not in ("MARKET", "LIMIT"):
            return _error(-1102, "Mandatory parameter was not sent or is invalid.")
        client_id = params.get("newClientOrderId", "")
        try:
            limit = float(params["price"]) if kind == "LIMIT" else 0.0
        except (KeyError, ValueError):
            return _error(-1100, "Illegal characters found in a parameter.")
        refused = self._refusal(params, symbol, client_id, limit or price_now, self.open_orders)
        if refused is not None:
            return refused
        order = self._book(symbol, params, kind, client_id, limit, now_ms)
        side = order["side"]
        if kind == "MARKET":
            self._execute(order, price_now, now_ms, maker=False, fraction=partial)
            if order["status"] != "FILLED":
                order["status"] = "EXPIRED"
        elif price_now <= limit if side == "BUY" else price_now >= limit:
            self._execute(order, price_now, now_ms, maker=False)
        return 200, dict(order)

    def place_algo(self, params: dict[str, str], symbol: str, price_now: float,
                   now_ms: int) -> tuple[int, dict]:
        """Validate and book a conditional ``STOP_MARKET`` / ``TAKE_PROFIT_MARKET``."""
        kind, side = params.get("type", ""), params.get("side", "")
        client_id = params.get("clientAlgoId", "")
        if params.get("algoType") != "CONDITIONAL" or kind not in _PROTECTIVE:
            return _error(-1102, "Mandatory parameter was not sent or is invalid.")
        try:
            trigger = float(params["triggerPrice"])
        except (KeyError, ValueError):
            return _error(-1102, "Mandatory parameter 'triggerPrice' was not sent.")
        falls = (side == "SELL") == (kind == "STOP_MARKET")
        if (price_now <= trigger) if falls else (price_now >= trigger):
            return _error(-2021, "Order would immediately trigger.")
        refused = self._refusal(params, symbol, client_id, trigger, self.open_algos)
        if refused is not None:
            return refused
        algo_id = next(self._algo_ids)
        algo = {"algoId": algo_id, "clientAlgoId": client_id or f"simalgo{algo_id}",
                "algoType": "CONDITIONAL", "orderType": kind, "symbol": symbol,
                "side": side, "positionSide": "BOTH", "timeInForce": "GTC",
                "quantity": params["quantity"], "algoStatus": "NEW",
                "triggerPrice": _fmt(trigger), "price": _fmt(0.0), "icebergQuantity": None,
                "selfTradePreventionMode": "EXPIRE_MAKER", "workingType": "CONTRACT_PRICE",
                "priceMatch": "NONE", "closePosition": False, "priceProtect": False,
                "reduceOnly": params.get("reduceOnly", "false").lower() == "true",
                "createTime": now_ms, "updateTime": now_ms, "triggerTime": 0,
                "goodTillDate": 0, "actualOrderId": "", "actualPrice": _fmt(0.0)}
        self.algos[(symbol, algo_id)] = algo
        return 200, dict(algo)

    def _refusal(self, params: dict[str, str], symbol: str, client_id: str, ref: float,
                 working) -> tuple[int, dict] | None:
        """Why binance refuses this new order (quantity, duplicate id, reduce-only, notional,
        margin), or None."""
        side = params.get("side", "")
        reduce_only = params.get("reduceOnly", "false").lower() == "true"
        try:
            qty = float(params.get("quantity", "nan"))
        except ValueError:
            return _error(-1100, "Illegal characters found in a parameter.")
        if side not in ("BUY", "SELL") or not qty > 0:
            return _error(-1102, "Mandatory parameter was not sent or is invalid.")
        if params.get("closePosition", "false").lower() == "true":
            return _error(-1102, "This simulator takes no closePosition orders.")
        if client_id and any(client_id in (o.get("clientOrderId"), o.get("clientAlgoId"))
                             for o in working(symbol)):
            return _error(-4015, "Client order id is not valid.")
        if abs(qty / LOT_STEP - round(qty / LOT_STEP)) > 1e-6:
            return _error(-1111, "Precision is over the maximum defined for this asset.")
        sign = 1.0 if side == "BUY" else -1.0
        pos = self.position(symbol)
        if reduce_only and (pos.amount * sign >= 0 or qty > abs(pos.amount) + 1e-12):
            return _error(-2022, "ReduceOnly Order is rejected.")
        if not reduce_only and qty * ref < MIN_NOTIONAL:
            return _error(-4164, f"Order's notional must be no smaller than {MIN_NOTIONAL:g}.")
        opening = max(qty - (abs(pos.amount) if pos.amount * sign < 0 else 0.0), 0.0)
        if opening * ref * (1 / pos.leverage + self.fee_rate) > self.available() + 1e-9:
            return _error(-2019, "Margin is insufficient.")
        return None

    def _book(self, symbol: str, params: dict[str, str], kind: str, client_id: str,
              limit: float, now_ms: int) -> dict:
        """A new regular order, NEW, nothing filled."""
        order_id = self._next_id(symbol)
        order = {"orderId": order_id, "symbol": symbol, "status": "NEW",
                 "clientOrderId": client_id or f"simf{order_id}", "price": _fmt(limit),
                 "avgPrice": _fmt(0.0), "origQty": params["quantity"],
                 "executedQty": _fmt(0.0), "cumQty": _fmt(0.0), "cumQuote": _fmt(0.0),
                 "timeInForce": "GTC", "type": kind, "origType": kind,
                 "reduceOnly": params.get("reduceOnly", "false").lower() == "true",
                 "closePosition": False, "side": params["side"], "positionSide": "BOTH",
                 "stopPrice": _fmt(0.0), "workingType": "CONTRACT_PRICE",
                 "priceProtect": False, "time": now_ms, "updateTime": now_ms}
        self.orders[(symbol, order_id)] = order
        return order

    def _execute(self, order: dict, price: float, now_ms: int, *, maker: bool,
                 fraction: float | None = None) -> None:
        """Fill what is left of ``order`` (a reduce-only one: at most the position) at
        ``price``; realise PnL, charge the fee in USDT."""
        symbol, sign = order["symbol"], 1.0 if order["side"] == "BUY" else -1.0
        pos = self.position(symbol)
        qty = float(order["origQty"]) - float(order["executedQty"])
        if fraction is not None:
            qty = math.floor(qty * fraction / LOT_STEP) * LOT_STEP
        if order["reduceOnly"]:
            qty = min(qty, abs(pos.amount)) if pos.amount * sign < 0 else 0.0
        order["updateTime"] = now_ms
        if not qty > 0:
            order["status"] = "EXPIRED"  # nothing left to reduce
            return
        closing = min(qty, abs(pos.amount)) if pos.amount * sign < 0 else 0.0
        realised = closing * (price - pos.entry) * (-sign)
        fee = qty * price * self.fee_rate
        new_amount = pos.amount + sign * qty
        if abs(new_amount) < 1e-12:
            pos.amount, pos.entry = 0.0, 0.0
        elif closing == 0:  # growing: the entry is the size-weighted average
            pos.entry = (abs(pos.amount) * pos.entry + qty * price) / abs(new_amount)
            pos.amount = new_amount
        elif closing < qty:  # through zero: the rest opens at this price
            pos.amount, pos.entry = new_amount, price
        else:
            pos.amount = new_amount
        pos.updated = now_ms
        self.wallet += realised - fee
        executed = float(order["executedQty"]) + qty
        quote = float(order["cumQuote"]) + qty * price
        order.update(executedQty=_fmt(executed), cumQty=_fmt(executed), cumQuote=_fmt(quote),
                     avgPrice=_fmt(quote / executed),
                     status="FILLED" if executed >= float(order["origQty"]) - 1e-12
                     else "PARTIALLY_FILLED")
        self.trades.append({
            "symbol": symbol, "id": len([t for t in self.trades if t["symbol"] == symbol]) + 1,
            "orderId": order["orderId"], "side": order["side"], "price": _fmt(price),
            "qty": _fmt(qty), "realizedPnl": _fmt(realised), "quoteQty": _fmt(qty * price),
            "commission": _fmt(fee), "commissionAsset": "USDT", "time": now_ms,
            "positionSide": "BOTH", "buyer": sign > 0, "maker": maker})

    def cancel(self, order: dict, now_ms: int) -> dict:
        """Cancel a working order (or conditional order)."""
        order["algoStatus" if "algoId" in order else "status"] = "CANCELED"
        order["updateTime"] = now_ms
        return dict(order)

    # --- what the account endpoints show ------------------------------------------------
    def position_row(self, symbol: str, price: float | None, now_ms: int) -> dict:
        """``symbol``'s position as ``/fapi/v3/positionRisk`` shows it."""
        pos = self.position(symbol)
        mark = pos.entry if price is None else price
        upnl = pos.amount * (mark - pos.entry)
        isolated = pos.margin() if pos.margin_type == "ISOLATED" else 0.0
        return {"symbol": symbol, "positionSide": "BOTH", "positionAmt": _fmt(pos.amount),
                "entryPrice": _fmt(pos.entry), "breakEvenPrice": _fmt(pos.entry),
                "markPrice": _fmt(mark), "unRealizedProfit": _fmt(upnl),
                "liquidationPrice": _fmt(pos.liquidation()),
                "isolatedMargin": _fmt(isolated + upnl if isolated else 0.0),
                "notional": _fmt(pos.amount * mark), "marginAsset": "USDT",
                "isolatedWallet": _fmt(isolated), "initialMargin": _fmt(pos.margin()),
                "maintMargin": _fmt(abs(pos.amount) * mark * MAINT_MARGIN),
                "positionInitialMargin": _fmt(pos.margin()), "openOrderInitialMargin": "0",
                "adl": 0, "bidNotional": "0", "askNotional": "0",
                "updateTime": pos.updated or now_ms}

    def account_row(self, unrealised: float, now_ms: int) -> dict:
        """``/fapi/v3/account``: the USDT wallet."""
        wallet, available = _fmt(self.wallet), _fmt(self.available())
        asset = {"asset": "USDT", "walletBalance": wallet,
                 "unrealizedProfit": _fmt(unrealised),
                 "marginBalance": _fmt(self.wallet + unrealised),
                 "maintMargin": "0", "initialMargin": _fmt(self.wallet - self.available()),
                 "positionInitialMargin": _fmt(self.wallet - self.available()),
                 "openOrderInitialMargin": "0", "crossWalletBalance": available,
                 "crossUnPnl": "0", "availableBalance": available,
                 "maxWithdrawAmount": available, "updateTime": now_ms}
        return {"totalInitialMargin": asset["initialMargin"], "totalMaintMargin": "0",
                "totalWalletBalance": wallet, "totalUnrealizedProfit": _fmt(unrealised),
                "totalMarginBalance": asset["marginBalance"],
                "totalPositionInitialMargin": asset["initialMargin"],
                "totalOpenOrderInitialMargin": "0", "totalCrossWalletBalance": available,
                "totalCrossUnPnl": "0", "availableBalance": available,
                "maxWithdrawAmount": available, "assets": [asset], "positions": []}


def contract_listing(market: SimMarket) -> dict:
    """The market as binance's ``/fapi/v1/exchangeInfo`` lists its perpetual."""
    return {
        "symbol": market.symbol, "pair": market.symbol, "contractType": "PERPETUAL",
        "deliveryDate": 4133404800000, "onboardDate": 1569398400000, "status": "TRADING",
        "maintMarginPercent": "2.5000", "requiredMarginPercent": "5.0000",
        "baseAsset": market.base, "quoteAsset": market.quote, "marginAsset": market.quote,
        "pricePrecision": 2, "quantityPrecision": 5, "baseAssetPrecision": 8,
        "quotePrecision": 8, "underlyingType": "COIN", "underlyingSubType": [],
        "settlePlan": 0, "triggerProtect": "0.0500", "liquidationFee": "0.012500",
        "marketTakeBound": "0.05",
        "filters": [
            {"filterType": "PRICE_FILTER", "minPrice": "0.01", "maxPrice": "1000000",
             "tickSize": "0.01"},
            {"filterType": "LOT_SIZE", "minQty": _fmt(LOT_STEP), "maxQty": "1000",
             "stepSize": _fmt(LOT_STEP)},
            {"filterType": "MARKET_LOT_SIZE", "minQty": _fmt(LOT_STEP), "maxQty": "120",
             "stepSize": _fmt(LOT_STEP)},
            {"filterType": "MAX_NUM_ORDERS", "limit": 200},
            {"filterType": "MIN_NOTIONAL", "notional": _fmt(MIN_NOTIONAL)},
            {"filterType": "PERCENT_PRICE", "multiplierUp": "1.0500",
             "multiplierDown": "0.9500", "multiplierDecimal": "4"}],
        "orderTypes": ["LIMIT", "MARKET", "STOP", "STOP_MARKET", "TAKE_PROFIT",
                       "TAKE_PROFIT_MARKET", "TRAILING_STOP_MARKET"],
        "timeInForce": ["GTC", "IOC", "FOK", "GTX"],
    }

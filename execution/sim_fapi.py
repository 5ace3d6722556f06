"""The simulator's ``/fapi`` routes: binance USDⓈ-M futures as ccxt's ``binanceusdm`` calls them.

Public: ``/fapi/v1/ping``, ``/time``, ``/exchangeInfo`` (every listed market as a perpetual),
``/klines``. Private, over ``ExchangeState.futures`` (``sim_futures.FuturesAccount``):
``/fapi/v1/leverage``, ``/marginType``, ``/leverageBracket``, ``/order`` and
``/algoOrder`` (POST, GET, DELETE), ``/openOrders``, ``/openAlgoOrders``, ``/userTrades``,
``/income``; ``/fapi/v3/account`` and
``/fapi/v3/positionRisk``. Every private request first brings the account to the exchange's
time (``FuturesAccount.advance``): resting orders triggered, funding paid.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from execution.sim_book import ExchangeState, SimMarket
from execution.sim_futures import MAINT_MARGIN, FuturesAccount, contract_listing

FAPI = "/fapi/v1"
FAPI_ORDER = f"{FAPI}/order"
ALGO_ORDER = f"{FAPI}/algoOrder"
_NO_ACCOUNT = 400, {"code": -2015, "msg": "Invalid API-key, IP, or permissions for action."}
_INVALID_SYMBOL = 400, {"code": -1121, "msg": "Invalid symbol."}

Answer = tuple[int, object]


def _account(state: ExchangeState) -> FuturesAccount | None:
    """The futures account, brought up to now (None when the simulator serves none)."""
    account = state.futures
    if account is not None:
        account.advance(state.markets, state.interval, state.now_ms())
    return account


def _price(state: ExchangeState, market: SimMarket) -> float | None:
    return market.candles(state.interval).price(state.now_ms())


def _private(handler: Callable[[object, ExchangeState, FuturesAccount, SimMarket | None],
                               Answer], *, symbol: bool = True) -> Callable:
    """A route over the futures account (and the market the request names, when it must)."""
    def route(request: object, state: ExchangeState) -> Answer:
        account = _account(state)
        if account is None:
            return _NO_ACCOUNT
        market = state.markets.get(request.query.get("symbol", ""))
        if symbol and market is None:
            return _INVALID_SYMBOL
        return handler(request, state, account, market)
    return route


def _exchange_info(request: object, state: ExchangeState) -> Answer:
    return 200, {"timezone": "UTC", "serverTime": state.now_ms(), "futuresType": "U_MARGINED",
                 "rateLimits": [], "exchangeFilters": [],
                 "assets": [{"asset": "USDT", "marginAvailable": True}],
                 "symbols": [contract_listing(m) for m in state.markets.values()]}


def _leverage(request, state, account, market) -> Answer:
    try:
        leverage = int(request.query["leverage"])
    except (KeyError, ValueError):
        return 400, {"code": -1102, "msg": "Mandatory parameter 'leverage' was not sent."}
    if not 1 <= leverage <= 125:
        return 400, {"code": -4028, "msg": f"Leverage {leverage} is not valid"}
    position = account.position(market.symbol)
    if position.amount and leverage < position.leverage:  # binance: margin must suffice
        return 400, {"code": -2027, "msg": "Exceeded the maximum allowable position at "
                                           "current leverage."}
    position.leverage = leverage
    return 200, {"leverage": leverage, "maxNotionalValue": "1000000", "symbol": market.symbol}


def _margin_type(request, state, account, market) -> Answer:
    wanted = request.query.get("marginType", "").upper()
    if wanted not in ("ISOLATED", "CROSSED"):
        return 400, {"code": -1102, "msg": "Mandatory parameter 'marginType' was not sent."}
    position = account.position(market.symbol)
    if position.margin_type == wanted:
        return 400, {"code": -4046, "msg": "No need to change margin type."}
    if position.amount or account.open_orders(market.symbol):
        return 400, {"code": -4048, "msg": "Margin type cannot be changed if there exists "
                                           "position."}
    position.margin_type = wanted
    return 200, {"code": 200, "msg": "success"}


def _leverage_bracket(request, state, account, market) -> Answer:
    markets = [market] if market is not None else list(state.markets.values())
    return 200, [{"symbol": m.symbol, "notionalCoef": 1.0, "brackets": [
        {"bracket": 1, "initialLeverage": 125, "notionalCap": 1_000_000_000,
         "notionalFloor": 0, "maintMarginRatio": MAINT_MARGIN, "cum": 0.0}]}
        for m in markets]


@dataclass(frozen=True)
class _Kind:
    """Regular orders or conditional (algo) orders: how the account keeps and names them."""

    place: str  # the ``FuturesAccount`` method placing one
    table: str  # its attribute holding them by (symbol, id)
    id_key: str  # the request parameter naming one by the exchange's id
    client_key: str  # ... by the client's id
    find: str  # the method finding one by client id
    status: str  # the field of its status
    working: tuple[str, ...]  # statuses it can still be cancelled in


_ORDERS = _Kind("place", "orders", "orderId", "origClientOrderId", "by_client_id", "status",
                ("NEW", "PARTIALLY_FILLED"))
_ALGOS = _Kind("place_algo", "algos", "algoId", "clientAlgoId", "algo_by_client_id",
               "algoStatus", ("NEW",))


def _orders_of(kind: _Kind) -> Callable:
    """The route of one kind of order: ``POST`` places, ``GET`` looks up (by the exchange's
    or the client's id), ``DELETE`` cancels."""
    def route(request, state, account, market) -> Answer:
        query, now = request.query, state.now_ms()
        if request.method == "POST":
            price = _price(state, market)
            if price is None:
                return 400, {"code": -2010, "msg": "Order rejected: market not open yet."}
            return getattr(account, kind.place)(query, market.symbol, price, now)
        if kind.id_key in query:
            order = getattr(account, kind.table).get((market.symbol, int(query[kind.id_key])))
        else:
            order = getattr(account, kind.find)(market.symbol, query.get(kind.client_key, ""))
        if order is None:
            return 400, {"code": -2013, "msg": "Order does not exist."} \
                if request.method == "GET" else {"code": -2011, "msg": "Unknown order sent."}
        if request.method == "DELETE":
            if order[kind.status] not in kind.working:
                return 400, {"code": -2011, "msg": "Unknown order sent."}
            return 200, account.cancel(order, now)
        return 200, dict(order)
    return route


_order, _algo_order = _orders_of(_ORDERS), _orders_of(_ALGOS)


def _open_algo_orders(request, state, account, market) -> Answer:
    return 200, [dict(a) for a in account.open_algos(market.symbol if market else None)]


def place_partial(request, state: ExchangeState, fraction: float) -> Answer:
    """A futures market order that fills only ``fraction`` of its size, then expires."""
    def partly(request, state, account, market) -> Answer:
        price = _price(state, market)
        if price is None or request.path != FAPI_ORDER or request.query.get("type") != "MARKET":
            return (_order if request.path == FAPI_ORDER else _algo_order)(
                request, state, account, market)
        return account.place(request.query, market.symbol, price, state.now_ms(),
                             partial=fraction)
    return _private(partly)(request, state)


def _open_orders(request, state, account, market) -> Answer:
    return 200, [dict(o) for o in account.open_orders(market.symbol if market else None)]


def _user_trades(request, state, account, market) -> Answer:
    query = request.query
    trades = [t for t in account.trades if t["symbol"] == market.symbol]
    if "orderId" in query:
        trades = [t for t in trades if t["orderId"] == int(query["orderId"])]
    if "startTime" in query:
        trades = [t for t in trades if t["time"] >= int(query["startTime"])]
    return 200, trades[:int(query.get("limit", 500))]


def _income(request, state, account, market) -> Answer:
    query = request.query
    rows = [r for r in account.income
            if (market is None or r["symbol"] == market.symbol) and
            r["incomeType"] == query.get("incomeType", r["incomeType"]) and
            r["time"] >= int(query.get("startTime", 0))]
    return 200, rows[:int(query.get("limit", 100))]


def _account_v3(request, state, account, market) -> Answer:
    unrealised = sum(
        float(account.position_row(s, _price(state, m), state.now_ms())["unRealizedProfit"])
        for s, m in state.markets.items())
    return 200, account.account_row(unrealised, state.now_ms())


def _position_risk(request, state, account, market) -> Answer:
    markets = [market] if market is not None else list(state.markets.values())
    return 200, [account.position_row(m.symbol, _price(state, m), state.now_ms())
                 for m in markets if account.position(m.symbol).amount]


_PRIVATE_ROUTES = {
    ("POST", f"{FAPI}/leverage"): _private(_leverage),
    ("POST", f"{FAPI}/marginType"): _private(_margin_type),
    ("GET", f"{FAPI}/leverageBracket"): _private(_leverage_bracket, symbol=False),
    ("POST", FAPI_ORDER): _private(_order),
    ("GET", FAPI_ORDER): _private(_order),
    ("DELETE", FAPI_ORDER): _private(_order),
    ("GET", f"{FAPI}/openOrders"): _private(_open_orders, symbol=False),
    ("POST", ALGO_ORDER): _private(_algo_order),
    ("GET", ALGO_ORDER): _private(_algo_order),
    ("DELETE", ALGO_ORDER): _private(_algo_order),
    ("GET", f"{FAPI}/openAlgoOrders"): _private(_open_algo_orders, symbol=False),
    ("GET", f"{FAPI}/userTrades"): _private(_user_trades),
    ("GET", f"{FAPI}/income"): _private(_income, symbol=False),
    ("GET", "/fapi/v3/account"): _private(_account_v3, symbol=False),
    ("GET", "/fapi/v3/positionRisk"): _private(_position_risk, symbol=False),
}
PRIVATE_PATHS = {path for _, path in _PRIVATE_ROUTES}


def _published(series: str, rows: Callable[[str, int, float], dict]) -> Callable:
    """A route serving the recorded ``series`` of the market asked (``state.published``),
    from ``startTime``, ``limit`` records, those stamped by the exchange's clock only."""

    def route(request: object, state: ExchangeState) -> Answer:
        query = request.query
        symbol = query.get("symbol", "")
        stamps, values = state.published.get((symbol, series), ((), ()))
        start, limit = int(query.get("startTime", 0)), int(query.get("limit", 100))
        now = state.now_ms()
        out = [rows(symbol, t, v) for t, v in zip(stamps, values, strict=True)
               if start <= t <= now]
        return 200, out[:limit]

    return route


def fapi_routes(time: Callable, klines: Callable) -> dict[tuple[str, str], Callable]:
    """The routes by (method, path); ``time`` and ``klines`` are the spot ones (same
    answers)."""
    return {("GET", f"{FAPI}/ping"): lambda request, state: (200, {}),
            ("GET", f"{FAPI}/time"): time,
            ("GET", f"{FAPI}/exchangeInfo"): _exchange_info,
            ("GET", f"{FAPI}/klines"): klines,
            ("GET", f"{FAPI}/fundingRate"): _published("funding_rate", lambda s, t, v: {
                "symbol": s, "fundingTime": t, "fundingRate": repr(v), "markPrice": "0"}),
            ("GET", "/futures/data/openInterestHist"): _published(
                "open_interest", lambda s, t, v: {"symbol": s, "sumOpenInterest": repr(v),
                                                  "sumOpenInterestValue": "0", "timestamp": t}),
            **_PRIVATE_ROUTES}

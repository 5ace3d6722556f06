"""A local exchange over real HTTP on 127.0.0.1 that speaks binance's spot REST API (and,
with a ``futures`` account, its USDⓈ-M futures API: ``sim_fapi``).

``python trading_bot.py replay`` streams a file through it, and the tests drive real ccxt
against it, so the live feed, the broker and the bot are exercised exactly as against binance:
point ccxt at ``sim.url`` (``make_exchange(..., api_url=sim.url)``).

Contract: ``with ExchangeSimulator(bars, interval="1m", clock=SimClock(...)) as sim:`` serves

- public: ``/api/v3/ping``, ``/time`` (the simulator's clock), ``/exchangeInfo`` (its spot
  markets, ``BTCUSDT`` by default and any ``add_market`` lists, with lot size and minimum
  notional filters), ``/klines`` (the recorded candles up to the clock, the current one
  forming); a stepped clock (``SimClock(speed=None)``) closes the next bar at the first
  ``/time`` after every market was read up to its last closed bar, so a replay runs as fast
  as its client reads;
- private (header ``X-MBX-APIKEY`` must equal ``api_key`` when one is set): ``/account``,
  ``POST/GET/DELETE /order``, ``/openOrders``, ``/myTrades`` over one ``Account`` that trades
  every market (order and trade ids are numbered per market, as binance does);
- ``/fapi/...`` (``sim_fapi``): every market as a perpetual of one ``FuturesAccount``.

Faults, so a client's failure handling can be tested for real:

- ``sim.fail(Fault(...))`` queues a fault for the next request to ``Fault.path`` (of
  ``Fault.method`` when set; or the one ``after`` more such requests): an HTTP status and body
  (429, 5xx, 400 with a binance error, 200 with a malformed body), ``status=0`` to drop the
  connection unanswered, ``delay`` seconds of silence first (past a client's timeout). On an
  order placement (spot or futures, ``PLACING``), ``book=True`` books the order *before* the
  fault: the exchange acts and the answer is lost, which is what makes naive clients place
  orders twice; ``late=True`` holds
  the request ``delay`` seconds (or until ``release`` is set) and *then* acts (a busy
  exchange): the order executes after the client has given up on the answer.
- Signed requests carry binance's ``timestamp`` and ``recvWindow``: an order request acted on
  more than ``recvWindow`` ms (wall clock) after its timestamp is rejected (-1021), as binance
  promises; ``sim.honour_recv_window = False`` makes an exchange that breaks that promise.
- ``sim.chaos(rate, seed)`` draws such faults at random for a fraction of all requests
  (``order_rate`` of order placements), including late executions, rejected orders and
  partial fills.
- ``sim.on_booked`` is called with each booked order, ``sim.on_order_request`` with each order
  request as it arrives, before any fault (a test kills its client there).
- ``sim.die_after(n)`` / ``sim.revive()`` drop every connection after ``n`` more requests.
"""
from __future__ import annotations

import json
import random
import threading
import time
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import pandas as pd

from execution.sim_book import INTERVAL_MS, Account, ExchangeState, SimClock, SimMarket
from execution.sim_fapi import ALGO_ORDER, FAPI_ORDER, PRIVATE_PATHS, fapi_routes
from execution.sim_fapi import place_partial as place_futures_partial
from execution.sim_futures import FuturesAccount

API = "/api/v3"
KLINES = f"{API}/klines"
ORDER = f"{API}/order"
OCO = f"{API}/orderList/oco"
ORDER_LIST = f"{API}/orderList"
_PRIVATE = {f"{API}/account", ORDER, f"{API}/openOrders", f"{API}/myTrades", OCO, ORDER_LIST,
            *PRIVATE_PATHS}
# POST to these places orders (spot, futures): faults may book them first
PLACING = (ORDER, OCO, FAPI_ORDER, ALGO_ORDER)
REQUESTS_KEPT = 10_000  # state-changing requests kept for inspection (tests), the latest
_INTERNAL = '{"code": -1000, "msg": "An unknown error occurred while processing the request."}'
_UNKNOWN = '{"code": -1006, "msg": "An unexpected response was received from the message ' \
           'bus. Execution status unknown."}'


@dataclass
class Fault:
    """What to do instead of answering one request to ``path``."""

    status: int = 500  # 0: drop the connection without an answer
    body: str = _INTERNAL
    delay: float = 0.0  # seconds of silence before acting (longer than the client timeout)
    path: str = KLINES
    method: str = ""  # only requests with this method ("POST"...); "" for any
    book: bool = False  # placing an order: book it first, then fail the answer
    late: bool = False  # placing an order: wait ``delay`` first, then act (and answer)
    after: int = 0  # let this many requests to ``path`` pass before striking
    partial: float | None = None  # placing: fill only this fraction of a market order
    kind: str = ""  # name for counting (chaos)
    release: threading.Event | None = None  # late: act once it is set (``delay`` at most)


def chaos_fault(kind: str, path: str, method: str, slow: float) -> Fault | None:
    """The fault ``kind`` as it applies to ``method path`` (None where it cannot apply)."""
    placing = method == "POST" and path in PLACING
    faults = {
        "429": Fault(429, '{"code": -1003, "msg": "Too many requests."}'),
        "500": Fault(500, _INTERNAL),
        "503": Fault(503, _UNKNOWN, book=placing),  # execution status unknown: it did act
        "slow": Fault(200, "", delay=slow, book=placing),  # the answer never arrives in time
        "late": Fault(200, "", delay=slow, late=True) if placing else None,  # acts late
        "drop": Fault(0, book=placing),
        "malformed": Fault(200, '{"unexpected": ', book=placing),
        "reject": Fault(400, '{"code": -2010, "msg": "Order rejected: market is closed."}')
        if placing else None,
        "partial": Fault(200, "", partial=0.4) if placing else None,
    }
    fault = faults[kind]
    if fault is not None:
        fault.path, fault.kind = path, kind
    return fault


@dataclass
class Chaos:
    """Random faults on ``rate`` of all requests (``order_rate`` of order placements, when
    given), reproducible from ``seed``."""

    rate: float
    seed: int
    kinds: tuple[str, ...] = ("429", "500", "503", "slow", "late", "drop", "malformed",
                              "reject", "partial")
    slow: float = 1.5  # seconds a slow answer takes (set above the client's timeout)
    order_rate: float | None = None
    counts: Counter = field(default_factory=Counter)

    def __post_init__(self) -> None:
        self._random = random.Random(self.seed)

    def draw(self, method: str, path: str) -> Fault | None:
        """A fault for this request, or None (most of the time)."""
        placing = method == "POST" and path in PLACING
        rate = self.order_rate if placing and self.order_rate is not None else self.rate
        if self._random.random() >= rate:
            return None
        kinds = [k for k in self.kinds if chaos_fault(k, path, method, self.slow) is not None]
        fault = chaos_fault(self._random.choice(kinds), path, method, self.slow)
        self.counts[fault.kind] += 1
        return fault


@dataclass(frozen=True)
class Request:
    """One request as a route handler sees it."""

    method: str
    path: str
    query: dict[str, str]
    body: str
    api_key: str | None


Route = Callable[[Request, ExchangeState], tuple[int, object]]


def _time(request: Request, state: ExchangeState) -> tuple[int, object]:
    """The exchange's clock; a stepped clock first closes the next bar if the client has all."""
    state.step_if_caught_up()
    return 200, {"serverTime": state.now_ms()}


def _exchange_info(request: Request, state: ExchangeState) -> tuple[int, object]:
    return 200, {"timezone": "UTC", "serverTime": state.now_ms(), "rateLimits": [],
                 "exchangeFilters": [],
                 "symbols": [m.listing() for m in state.markets.values()]}


def _market(query: dict[str, str], state: ExchangeState) -> SimMarket | None:
    """The market a request names (None: the exchange lists no such symbol)."""
    return state.markets.get(query.get("symbol", ""))


_INVALID_SYMBOL = 400, {"code": -1121, "msg": "Invalid symbol."}


def _klines(request: Request, state: ExchangeState) -> tuple[int, object]:
    """binance klines; a stepped clock moves to the next close once the client is caught up."""
    query = request.query
    market = _market(query, state)
    if market is None:
        return _INVALID_SYMBOL
    if query.get("interval") not in INTERVAL_MS:
        return 400, {"code": -1120, "msg": "Invalid interval."}
    candles = market.candles(query["interval"])
    start = int(query.get("startTime", 0))
    now = state.now_ms()
    end = int(query["endTime"]) if "endTime" in query else None
    rows = candles.klines(start, min(int(query.get("limit", 500)), 1000), end, now)
    closed = candles.closed_before(now)
    # the client has every closed bar: a stepped clock closes the next at its next /time
    market.caught_up = closed == 0 or start > candles.ms[closed - 1] or (
        len(rows) > 0 and rows[-1][0] >= candles.ms[closed - 1])
    return 200, rows


def _account_or_error(request: Request, state: ExchangeState) -> tuple[int, object] | Account:
    if state.account is None:
        return 400, {"code": -2015, "msg": "Invalid API-key, IP, or permissions for action."}
    return state.account


def _find(account: Account, symbol: str, query: dict[str, str]) -> dict | None:
    if "orderId" in query:
        return account.order(symbol, int(query["orderId"]))
    return account.by_client_id(symbol, query.get("origClientOrderId", ""))


@dataclass(frozen=True)
class _Desk:
    """What a private order request works on: the account, the market it names, the time and
    the price now, resting orders already matched up to now."""

    account: Account
    market: SimMarket
    now: int
    price: float | None  # None before the market's first bar opens


_NOT_OPEN = 400, {"code": -2010, "msg": "Order rejected: market not open yet."}


def _desk(request: Request, state: ExchangeState) -> _Desk | tuple[int, object]:
    """The request's ``_Desk``, or the error answer (no account, unknown symbol)."""
    account = _account_or_error(request, state)
    if not isinstance(account, Account):
        return account
    market = _market(request.query, state)
    if market is None:
        return _INVALID_SYMBOL
    now = state.now_ms()
    candles = market.candles(state.interval)
    account.match_resting(market.symbol, candles, now)
    return _Desk(account, market, now, candles.price(now))


def _order(request: Request, state: ExchangeState) -> tuple[int, object]:
    """``POST`` places, ``GET`` looks up (by id or client id), ``DELETE`` cancels."""
    desk = _desk(request, state)
    if not isinstance(desk, _Desk):
        return desk
    account, query = desk.account, request.query
    if request.method == "POST":
        if desk.price is None:
            return _NOT_OPEN
        return account.place(query, desk.market.symbol, desk.price, desk.now)
    order = _find(account, desk.market.symbol, query)
    if order is None:
        code = -2013 if request.method == "GET" else -2011
        return 400, {"code": code, "msg": "Order does not exist." if code == -2013
                     else "Unknown order sent."}
    if request.method == "DELETE":
        if order["status"] not in ("NEW", "PARTIALLY_FILLED"):
            return 400, {"code": -2011, "msg": "Unknown order sent."}
        return 200, account.cancel(order, desk.now)
    return 200, order


def _order_list(request: Request, state: ExchangeState) -> tuple[int, object]:
    """``POST /orderList/oco`` places a stop and a take-profit as one; ``DELETE /orderList``
    cancels both (by ``orderListId`` or ``listClientOrderId``)."""
    desk = _desk(request, state)
    if not isinstance(desk, _Desk):
        return desk
    account, query, symbol = desk.account, request.query, desk.market.symbol
    if request.method == "POST":
        if desk.price is None:
            return _NOT_OPEN
        return account.place_oco(query, symbol, desk.price, desk.now)
    found = [lst for lst in account.lists.values() if lst["symbol"] == symbol and (
        str(lst["orderListId"]) == query.get("orderListId") or
        lst["listClientOrderId"] == query.get("listClientOrderId"))]
    if not found or found[-1]["listOrderStatus"] != "EXECUTING":
        return 400, {"code": -2011, "msg": "Unknown order list sent."}
    first = found[-1]["orders"][0]
    account.cancel(account.order(symbol, first["orderId"]), desk.now)
    return 200, {**found[-1], "orderReports": [
        account.order(symbol, o["orderId"]) for o in found[-1]["orders"]]}


def _open_orders(request: Request, state: ExchangeState) -> tuple[int, object]:
    account = _account_or_error(request, state)
    if not isinstance(account, Account):
        return account
    symbol = request.query.get("symbol")
    if symbol is not None and symbol not in state.markets:
        return _INVALID_SYMBOL
    for market in state.markets.values():
        account.match_resting(market.symbol, market.candles(state.interval), state.now_ms())
    return 200, account.open_orders(symbol)


def _my_trades(request: Request, state: ExchangeState) -> tuple[int, object]:
    account = _account_or_error(request, state)
    if not isinstance(account, Account):
        return account
    market = _market(request.query, state)
    if market is None:
        return _INVALID_SYMBOL
    trades = [t for t in account.trades if t["symbol"] == market.symbol]
    if "orderId" in request.query:
        trades = [t for t in trades if t["orderId"] == int(request.query["orderId"])]
    if "startTime" in request.query:
        trades = [t for t in trades if t["time"] >= int(request.query["startTime"])]
    return 200, trades[-int(request.query.get("limit", 500)):]


def _account(request: Request, state: ExchangeState) -> tuple[int, object]:
    account = _account_or_error(request, state)
    if not isinstance(account, Account):
        return account
    return 200, {"makerCommission": 10, "takerCommission": 10, "buyerCommission": 0,
                 "sellerCommission": 0, "canTrade": True, "canWithdraw": True,
                 "canDeposit": True, "updateTime": state.now_ms(), "accountType": "SPOT",
                 "balances": account.balance_rows(), "permissions": ["SPOT"]}


def _outside_recv_window(query: dict[str, str]) -> str | None:
    """binance's refusal of a signed request acted on outside its window, or None.

    binance acts on a signed request only while its wall-clock time is within ``recvWindow``
    ms (default 5,000) after the request's ``timestamp``, and not more than 1 s before it.
    """
    if "timestamp" not in query:
        return None
    now, stamp = time.time() * 1000.0, float(query["timestamp"])
    if stamp > now + 1000.0:
        return "Timestamp for this request was 1000ms ahead of the server's time."
    if now - stamp > float(query.get("recvWindow", 5000)):
        return "Timestamp for this request is outside of the recvWindow."
    return None


class _Handler(BaseHTTPRequestHandler):
    disable_nagle_algorithm = True  # else ~40 ms per request (delayed ACK)
    protocol_version = "HTTP/1.1"  # keep-alive, as real exchanges do
    sim: ExchangeSimulator

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 (stdlib name)
        """Silence per-request logging."""

    def _send(self, status: int, body: str) -> None:
        """Write one JSON (or raw text) response."""
        payload = body.encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def _handle(self, method: str) -> None:
        """Route one request, applying the death switch and any fault first."""
        url = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length).decode() if length else ""
        query = {k: v[0] for k, v in parse_qs(url.query).items()}
        query.update({k: v[0] for k, v in parse_qs(body).items()} if body else {})
        request = Request(method, url.path, query, body, self.headers.get("X-MBX-APIKEY"))
        sim = self.sim
        state = sim.state
        with state.lock:
            sim.counts[url.path] += 1
            if method != "GET":
                sim.requests.append(request)
            if method == "POST" and url.path in PLACING:  # every order request that arrives
                sim.order_requests.extend(
                    [query.get("clientAlgoId", "")] if url.path == ALGO_ORDER else
                    [query.get("newClientOrderId", "")] if url.path != OCO else
                    [query.get("aboveClientOrderId", ""), query.get("belowClientOrderId", "")])
                if sim.on_order_request is not None:
                    sim.on_order_request(request)
            dead = sim.alive_for is not None and sim.alive_for <= 0
            if sim.alive_for is not None:
                sim.alive_for -= 1
            fault = sim.take_fault(method, url.path)
        if dead:
            self.close_connection = True
            return
        time.sleep(sim.latency)
        # the exchange acts unless the fault strikes before it: booked orders, partial fills,
        # late executions and answers that are only late are acted on; errors and drops are not
        acts = fault is None or fault.book or fault.late or fault.partial is not None or (
            fault.status == 200 and not fault.body)
        late = fault is not None and fault.late
        if late:  # a busy exchange: it acts only now
            if fault.release is not None:
                fault.release.wait(fault.delay)
            else:
                time.sleep(fault.delay)
        status, payload = self._answer(request, fault) if acts else (0, "")
        if fault is not None:
            if not late:
                time.sleep(fault.delay)
            if fault.status == 0:
                self.close_connection = True
                return
            if fault.body:
                status, payload = fault.status, fault.body
        self._send(status, payload if isinstance(payload, str) else json.dumps(payload))

    def _answer(self, request: Request, fault: Fault | None) -> tuple[int, object]:
        """Let the exchange act on the request and return its own answer."""
        sim = self.sim
        route = sim.routes.get((request.method, request.path))
        if route is None:
            return 404, {"code": -1, "msg": f"no route {request.method} {request.path}"}
        if request.path in _PRIVATE and sim.state.api_key is not None and \
                request.api_key != sim.state.api_key:
            return 401, {"code": -2015, "msg": "Invalid API-key, IP, or permissions for action."}
        if request.path in _PRIVATE and sim.honour_recv_window:
            stale = _outside_recv_window(request.query)
            if stale is not None:
                return 400, {"code": -1021, "msg": stale}
        placing = request.method == "POST" and request.path in PLACING
        with sim.state.lock:
            if not placing:
                return route(request, sim.state)
            partial = fault.partial if fault is not None else None
            status, payload = sim.place_partial(request, partial) if partial is not None \
                else route(request, sim.state)
            if status == 200 and sim.on_booked is not None:
                sim.on_booked(payload)
        return status, payload

    def do_GET(self) -> None:  # noqa: N802 (stdlib name)
        self._handle("GET")

    def do_POST(self) -> None:  # noqa: N802 (stdlib name)
        self._handle("POST")

    def do_DELETE(self) -> None:  # noqa: N802 (stdlib name)
        self._handle("DELETE")

    def do_PUT(self) -> None:  # noqa: N802 (stdlib name)
        self._handle("PUT")


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: object, client_address: object) -> None:
        """A client that gave up (timeout, killed) is expected: stay quiet."""


class ExchangeSimulator:
    """Run the simulated exchange in a background thread: ``with ExchangeSimulator(...)``.

    Parameters
    ----------
    bars : pandas.DataFrame
        Recorded OHLCV bars (the OHLCV contract) served as the first market's candles;
        ``add_market`` lists more.
    base, quote : str
        The first market's assets; its binance id is ``base + quote``.
    interval : str
        Bar size of ``bars`` (prices and the stepped clock follow it).
    clock : SimClock, optional
        The exchange's time; default the wall clock (every recorded bar already closed).
    balances : dict of str to float, optional
        Opening free balances of the one account; None serves no account (public data only).
    api_key : str, optional
        Value ``X-MBX-APIKEY`` must carry on private endpoints (any key when None).
    fee_rate : float
        Taker and maker fee, charged in the quote asset.
    futures : FuturesAccount, optional
        A USDⓈ-M futures account, served under ``/fapi`` (every market is also listed
        as a perpetual); None serves none.
    """

    def __init__(self, bars: pd.DataFrame, *, base: str = "BTC", quote: str = "USDT",
                 interval: str = "1m", clock: SimClock | None = None,
                 balances: dict[str, float] | None = None, api_key: str | None = None,
                 fee_rate: float = 0.001, futures: FuturesAccount | None = None) -> None:
        account = None
        if balances is not None:
            account = Account({a: [float(v), 0.0] for a, v in balances.items()},
                              fee_rate=fee_rate)
        self.state = ExchangeState({}, clock=clock, interval=interval, account=account,
                                   api_key=api_key, futures=futures)
        self.add_market(bars, base=base, quote=quote)
        self.routes: dict[tuple[str, str], Route] = {
            ("GET", f"{API}/ping"): lambda request, state: (200, {}),
            ("GET", f"{API}/time"): _time,
            ("GET", f"{API}/exchangeInfo"): _exchange_info,
            ("GET", KLINES): _klines,
            ("GET", f"{API}/account"): _account,
            ("POST", ORDER): _order,
            ("GET", ORDER): _order,
            ("DELETE", ORDER): _order,
            ("GET", f"{API}/openOrders"): _open_orders,
            ("POST", OCO): _order_list,
            ("DELETE", ORDER_LIST): _order_list,
            ("GET", f"{API}/myTrades"): _my_trades,
            **fapi_routes(_time, _klines),
        }
        self.faults: deque[Fault] = deque()
        self.chaos_policy: Chaos | None = None
        # the latest requests that change something (a replay runs for days: reads, the bulk,
        # are only counted, by path)
        self.requests: deque[Request] = deque(maxlen=REQUESTS_KEPT)
        self.counts: Counter[str] = Counter()
        self.order_requests: list[str] = []  # client id of every order placement received
        self.alive_for: int | None = None  # requests still answered before dying
        self.latency = 0.0  # seconds added to every answer (a slow exchange)
        self.honour_recv_window = True  # False: act on signed requests however late
        self.on_booked: Callable[[dict], None] | None = None
        self.on_order_request: Callable[[Request], None] | None = None  # before any fault
        handler = type("Handler", (_Handler,), {"sim": self})
        self._server = _Server(("127.0.0.1", 0), handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        """Base URL to give ``make_exchange(..., api_url=)``."""
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    @property
    def account(self) -> Account:
        """The simulated account (raises when the simulator serves none)."""
        if self.state.account is None:
            raise RuntimeError("this simulator has no account: pass balances=")
        return self.state.account

    def add_market(self, bars: pd.DataFrame, *, base: str, quote: str, awaited: bool = True,
                   interval: str | None = None) -> str:
        """List another market (bars of the same interval, or of their own ``interval``);
        returns its symbol. A stepped clock waits for a client to read it, unless not
        ``awaited`` (a market no bot follows, or only reads now and then)."""
        market = SimMarket(bars, base=base, quote=quote, awaited=awaited, interval=interval)
        with self.state.lock:
            self.state.markets[market.symbol] = market
            if self.state.account is not None:
                self.state.account.pairs[market.symbol] = (base, quote)
        return market.symbol

    def publish(self, symbol: str, series: str, stamps_ms: list[int],
                values: list[float]) -> None:
        """Serve a recorded series of the perpetual ``symbol`` (its id, e.g. ``BTCUSDT``):
        ``funding_rate`` at ``/fapi/v1/fundingRate``, ``open_interest`` at
        ``/futures/data/openInterestHist``, each record once the clock passes its stamp."""
        self.state.published[(symbol, series)] = (list(stamps_ms), list(values))

    def count(self, path: str) -> int:
        """Requests seen so far to ``path``."""
        return self.counts[path]

    def route(self, method: str, path: str, handler: Route) -> None:
        """Serve ``method path`` with ``handler(request, state) -> (status, body)``."""
        self.routes[(method.upper(), path)] = handler

    def fail(self, *faults: Fault) -> None:
        """Queue faults: the next requests to each fault's path get them, in order."""
        with self.state.lock:
            self.faults.extend(faults)

    def chaos(self, rate: float, seed: int, *, slow: float = 1.5,
              kinds: tuple[str, ...] | None = None, order_rate: float | None = None) -> Chaos:
        """Inject random faults into ``rate`` of all requests (``order_rate`` of order
        placements) from now on; returns the policy."""
        policy = Chaos(rate, seed, slow=slow, order_rate=order_rate) if kinds is None else \
            Chaos(rate, seed, kinds=kinds, slow=slow, order_rate=order_rate)
        self.chaos_policy = policy
        return policy

    def take_fault(self, method: str, path: str) -> Fault | None:
        """The queued fault for ``path`` due now if any, else a chaos draw (call under the
        lock). Queued faults for ``path`` that wait for later requests count this one."""
        due = None
        for queued in list(self.faults):
            if queued.path != path or queued.method not in ("", method):
                continue
            if queued.after == 0 and due is None:
                due = queued
                self.faults.remove(queued)
            elif queued.after > 0:
                queued.after -= 1
        if due is not None:
            return due
        return self.chaos_policy.draw(method, path) if self.chaos_policy else None

    def place_partial(self, request: Request, fraction: float) -> tuple[int, object]:
        """Book a market order that fills only ``fraction`` of its size, then expires."""
        state = self.state
        if request.path in (FAPI_ORDER, ALGO_ORDER):
            return place_futures_partial(request, state, fraction)
        market = _market(request.query, state)
        now = state.now_ms()
        price = None if market is None else market.candles(state.interval).price(now)
        if price is None or request.path != ORDER or request.query.get("type") != "MARKET":
            return (_order_list if request.path == OCO else _order)(request, state)
        return state.account.place(request.query, market.symbol, price, now, partial=fraction)

    def die_after(self, requests: int) -> None:
        """Answer ``requests`` more requests, then drop every connection (a dead exchange)."""
        with self.state.lock:
            self.alive_for = requests

    def revive(self) -> None:
        """Answer again after :meth:`die_after`."""
        with self.state.lock:
            self.alive_for = None

    def __enter__(self) -> ExchangeSimulator:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

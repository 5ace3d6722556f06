"""A fake exchange speaking binance's spot REST API over real HTTP on 127.0.0.1.

Contract: ``with FakeExchange(bars) as fake:`` serves ``/api/v3/ping``, ``/api/v3/time``,
``/api/v3/exchangeInfo`` (one spot market, ``BTCUSDT`` by default) and ``/api/v3/klines``
(the real candles of ``bars``, an OHLCV frame, paged by ``startTime``/``limit`` exactly like
binance) at ``fake.url``. Point ccxt at it by rewriting every ``exchange.urls['api']`` entry.

Extending it (orders, balances for the live-trading tests): register more endpoints with
``fake.route("POST", "/api/v3/order", handler)``; a handler gets the ``Request`` and the
shared ``ExchangeState`` and returns ``(status, json_body)``.

Faults, injected per request: ``fake.fail(Fault(...), ...)`` queues faults that the next
requests to ``Fault.path`` (klines by default) get instead of an answer: an HTTP status and
body (429, 5xx, 400 with a binance error body, 200 with a malformed body), ``status=0`` to
drop the connection unanswered, ``delay`` seconds of silence first (a timeout for a client
with a shorter one). ``fake.die_after(n)``: after ``n`` more requests every connection is
dropped unanswered until ``fake.revive()``, as if the exchange process had died.
"""
from __future__ import annotations

import json
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import numpy as np
import pandas as pd

_INTERVAL_MS = {"1m": 60_000, "3m": 180_000, "5m": 300_000, "15m": 900_000, "30m": 1_800_000,
                "1h": 3_600_000, "2h": 7_200_000, "4h": 14_400_000, "1d": 86_400_000}
KLINES = "/api/v3/klines"


@dataclass
class Fault:
    """What to do instead of answering one request to ``path``."""

    status: int = 500  # 0: drop the connection without an answer
    body: str = '{"code": -1000, "msg": "internal error"}'
    delay: float = 0.0  # seconds of silence before acting (longer than the client timeout)
    path: str = KLINES


@dataclass(frozen=True)
class Request:
    """One request as a route handler sees it."""

    method: str
    path: str
    query: dict[str, str]
    body: str


Route = Callable[[Request, "ExchangeState"], tuple[int, object]]


@dataclass
class ExchangeState:
    """Candles served, faults queued and requests counted, shared with the handler threads."""

    bars: pd.DataFrame
    base: str = "BTC"
    quote: str = "USDT"
    faults: deque = field(default_factory=deque)
    requests: list[Request] = field(default_factory=list)
    klines_requests: int = 0
    alive_for: int | None = None  # requests still answered before dying; None: forever
    latency: float = 0.0  # seconds added to every answer (a slow exchange)
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def symbol(self) -> str:
        """The exchange's id of the one market, e.g. ``BTCUSDT``."""
        return self.base + self.quote

    def market(self) -> dict:
        """The market as binance's exchangeInfo lists it."""
        return {
            "symbol": self.symbol, "status": "TRADING", "baseAsset": self.base,
            "baseAssetPrecision": 8, "quoteAsset": self.quote, "quotePrecision": 8,
            "quoteAssetPrecision": 8, "orderTypes": ["LIMIT", "MARKET"],
            "icebergAllowed": True, "ocoAllowed": True, "isSpotTradingAllowed": True,
            "isMarginTradingAllowed": False, "permissions": ["SPOT"],
            "filters": [
                {"filterType": "PRICE_FILTER", "minPrice": "0.01", "maxPrice": "1000000.00",
                 "tickSize": "0.01"},
                {"filterType": "LOT_SIZE", "minQty": "0.00001", "maxQty": "9000.00",
                 "stepSize": "0.00001"},
            ],
        }


def _ping(request: Request, state: ExchangeState) -> tuple[int, object]:
    return 200, {}


def _time(request: Request, state: ExchangeState) -> tuple[int, object]:
    return 200, {"serverTime": int(time.time() * 1000)}


def _exchange_info(request: Request, state: ExchangeState) -> tuple[int, object]:
    return 200, {"timezone": "UTC", "serverTime": int(time.time() * 1000), "rateLimits": [],
                 "exchangeFilters": [], "symbols": [state.market()]}


def _klines(request: Request, state: ExchangeState) -> tuple[int, object]:
    """Binance klines: bars opening at or after startTime, at most ``limit`` (default 500)."""
    query = request.query
    if query.get("symbol") != state.symbol:
        return 400, {"code": -1121, "msg": "Invalid symbol."}
    if query.get("interval") not in _INTERVAL_MS:
        return 400, {"code": -1120, "msg": "Invalid interval."}
    step = _INTERVAL_MS[query["interval"]]
    bars = state.bars
    ms = bars.index.as_unit("ms").asi8
    first = int(np.searchsorted(ms, int(query.get("startTime", 0))))
    stop = min(first + min(int(query.get("limit", 500)), 1000), len(ms))
    if "endTime" in query:
        stop = min(stop, int(np.searchsorted(ms, int(query["endTime"]), side="right")))
    values = bars[["open", "high", "low", "close", "volume"]].to_numpy()[first:stop]
    rows = [[int(t), *(repr(float(x)) for x in v), int(t) + step - 1, "0", 1, "0", "0", "0"]
            for t, v in zip(ms[first:stop], values, strict=True)]
    return 200, rows


class _Handler(BaseHTTPRequestHandler):
    disable_nagle_algorithm = True  # else ~40 ms per request (delayed ACK)
    protocol_version = "HTTP/1.1"  # keep-alive, as real exchanges do
    fake: FakeExchange

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
        """Route one request, applying the death switch and any queued fault first."""
        url = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length).decode() if length else ""
        query = {k: v[0] for k, v in parse_qs(url.query).items()}
        query.update({k: v[0] for k, v in parse_qs(body).items()} if body else {})
        request = Request(method, url.path, query, body)
        state = self.fake.state
        with state.lock:
            state.requests.append(request)
            state.klines_requests += url.path == KLINES
            dead = state.alive_for is not None and state.alive_for <= 0
            if state.alive_for is not None:
                state.alive_for -= 1
            fault = None
            for queued in state.faults:
                if queued.path == url.path:
                    fault = queued
                    state.faults.remove(queued)
                    break
        if dead:
            self.close_connection = True
            return
        time.sleep(state.latency)
        if fault is not None:
            time.sleep(fault.delay)
            if fault.status == 0:
                self.close_connection = True
                return
            self._send(fault.status, fault.body)
            return
        route = self.fake.routes.get((method, url.path))
        if route is None:
            self._send(404, json.dumps({"code": -1, "msg": f"no route {method} {url.path}"}))
            return
        status, payload = route(request, state)
        self._send(status, payload if isinstance(payload, str) else json.dumps(payload))

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
        """A client that gave up (timeout test) is expected: stay quiet."""


class FakeExchange:
    """Run the fake exchange in a background thread: ``with FakeExchange(bars) as fx: ...``."""

    def __init__(self, bars: pd.DataFrame, *, base: str = "BTC", quote: str = "USDT") -> None:
        self.state = ExchangeState(bars, base=base, quote=quote)
        self.routes: dict[tuple[str, str], Route] = {
            ("GET", "/api/v3/ping"): _ping,
            ("GET", "/api/v3/time"): _time,
            ("GET", "/api/v3/exchangeInfo"): _exchange_info,
            ("GET", KLINES): _klines,
        }
        handler = type("Handler", (_Handler,), {"fake": self})
        self._server = _Server(("127.0.0.1", 0), handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        """Base URL to give ``make_exchange(..., api_url=)``."""
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def route(self, method: str, path: str, handler: Route) -> None:
        """Serve ``method path`` with ``handler(request, state) -> (status, body)``."""
        self.routes[(method.upper(), path)] = handler

    def fail(self, *faults: Fault) -> None:
        """Queue faults: the next requests to each fault's path get them, in order."""
        with self.state.lock:
            self.state.faults.extend(faults)

    def die_after(self, requests: int) -> None:
        """Answer ``requests`` more requests, then drop every connection (a dead exchange)."""
        with self.state.lock:
            self.state.alive_for = requests

    def revive(self) -> None:
        """Answer again after :meth:`die_after`."""
        with self.state.lock:
            self.state.alive_for = None

    def __enter__(self) -> FakeExchange:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

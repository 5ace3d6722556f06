"""A fake exchange speaking binance's spot REST API over real HTTP on 127.0.0.1.

Serves real candles (given as an OHLCV frame) from ``/api/v3/klines`` and one market from
``/api/v3/exchangeInfo``. Faults are scripted per request: HTTP status codes (429, 5xx, 400
with a binance error body), malformed bodies, or dropping the connection.
"""
from __future__ import annotations

import json
import threading
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import numpy as np
import pandas as pd

_INTERVAL_MS = {"1m": 60_000, "5m": 300_000, "1h": 3_600_000, "1d": 86_400_000}


@dataclass
class Fault:
    """What to do instead of answering one klines request."""

    status: int = 500
    body: str = '{"code": -1000, "msg": "internal error"}'


@dataclass
class ExchangeState:
    """Candles served and faults queued, shared with the handler thread."""

    bars: pd.DataFrame
    base: str = "BTC"
    quote: str = "USDT"
    faults: deque = field(default_factory=deque)
    klines_requests: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def market(self) -> dict:
        return {
            "symbol": self.base + self.quote, "status": "TRADING", "baseAsset": self.base,
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


class _Handler(BaseHTTPRequestHandler):
    disable_nagle_algorithm = True  # else ~40 ms per request (delayed ACK)
    state: ExchangeState

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 (stdlib name)
        """Silence per-request logging."""

    def _send(self, status: int, body: str) -> None:
        payload = body.encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def do_GET(self) -> None:  # noqa: N802 (stdlib name)
        url = urlsplit(self.path)
        query = {k: v[0] for k, v in parse_qs(url.query).items()}
        if url.path == "/api/v3/exchangeInfo":
            self._send(200, json.dumps({"timezone": "UTC", "serverTime": 0, "rateLimits": [],
                                        "symbols": [self.state.market()]}))
        elif url.path == "/api/v3/klines":
            self._klines(query)
        else:
            self._send(404, '{"code": -1, "msg": "not found"}')

    def _klines(self, query: dict) -> None:
        state = self.state
        with state.lock:
            state.klines_requests += 1
            fault = state.faults.popleft() if state.faults else None
        if fault is not None:
            if fault.status == 0:  # drop the connection without an answer
                self.close_connection = True
                return
            self._send(fault.status, fault.body)
            return
        if query.get("symbol") != state.base + state.quote:
            self._send(400, '{"code": -1121, "msg": "Invalid symbol."}')
            return
        step = _INTERVAL_MS[query["interval"]]
        start = int(query.get("startTime", 0))
        limit = int(query.get("limit", 500))
        ms = state.bars.index.as_unit("ms").asi8
        first = int(np.searchsorted(ms, start))
        rows = []
        for i in range(first, min(first + limit, len(ms))):
            o, h, lo, c, v = state.bars.iloc[i][["open", "high", "low", "close", "volume"]]
            rows.append([int(ms[i]), str(o), str(h), str(lo), str(c), str(v),
                         int(ms[i]) + step - 1, "0", 1, "0", "0", "0"])
        self._send(200, json.dumps(rows))


class FakeExchange:
    """Run the fake exchange in a background thread: ``with FakeExchange(bars) as fx: ...``."""

    def __init__(self, bars: pd.DataFrame) -> None:
        self.state = ExchangeState(bars)
        handler = type("Handler", (_Handler,), {"state": self.state})
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        """Base URL to give ``make_exchange(..., api_url=)``."""
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def fail(self, *faults: Fault) -> None:
        """Queue faults: the next klines requests get them, in order."""
        self.state.faults.extend(faults)

    def __enter__(self) -> FakeExchange:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

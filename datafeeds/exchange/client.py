"""The ccxt exchange object: one factory, credentials from the environment only.

Keys come from ``MLSTRATEGY_API_KEY`` / ``MLSTRATEGY_API_SECRET`` and nowhere else; they are
handed to ccxt and never logged, printed or stored by this package.
"""
from __future__ import annotations

import contextlib
import os
import threading
from urllib.parse import urlsplit, urlunsplit

import ccxt

from datafeeds.errors import ExchangeError
from datafeeds.exchange.translate import call_ccxt

API_KEY_ENV = "MLSTRATEGY_API_KEY"
API_SECRET_ENV = "MLSTRATEGY_API_SECRET"
# binance's clients whose markets are one type: spot, USDⓈ-M perpetuals
_MARKET_TYPES = {"binance": "spot", "binanceusdm": "linear"}


def _rebase(url: str, base: str) -> str:
    parts, new = urlsplit(url), urlsplit(base)
    return urlunsplit((new.scheme, new.netloc, parts.path, parts.query, parts.fragment))


def _rebase_all(api: object, base: str) -> object:
    """Every URL in ccxt's (possibly nested) ``urls['api']`` pointed at ``base``."""
    if isinstance(api, dict):
        return {k: _rebase_all(v, base) for k, v in api.items()}
    return _rebase(api, base) if isinstance(api, str) else api


def make_exchange(exchange_id: str, *, api_url: str | None = None, rate_limit: bool = True,
                  timeout_ms: int = 10_000, sandbox: bool = False,
                  credentials: bool = False) -> ccxt.Exchange:
    """A ccxt exchange object.

    Parameters
    ----------
    exchange_id : str
        A ccxt exchange id such as ``binance``.
    api_url : str, optional
        Base URL that every REST endpoint is pointed at instead (testnet, proxy, simulator).
    rate_limit : bool
        Let ccxt space requests by the exchange's rate limit (keep it on against real ones).
    timeout_ms : int
        Per-request timeout in milliseconds.
    sandbox : bool
        Use the exchange's testnet (ccxt's sandbox mode), where it has one.
    credentials : bool
        Require ``MLSTRATEGY_API_KEY`` and ``MLSTRATEGY_API_SECRET`` (trading); otherwise
        they are used when set and public data needs none.

    Raises
    ------
    ExchangeError
        For an id ccxt does not know, a testnet the exchange lacks, or missing credentials.
    """
    cls = getattr(ccxt, exchange_id, None)
    if not isinstance(cls, type):
        raise ExchangeError(f"unknown exchange {exchange_id!r}; use a ccxt id such as "
                            "binance, coinbase, kraken")
    # the last decoded body lets us tell "no more candles" from a malformed answer
    config: dict = {"enableRateLimit": rate_limit, "timeout": timeout_ms,
                    "enableLastJsonResponse": True}
    key, secret = os.environ.get(API_KEY_ENV, ""), os.environ.get(API_SECRET_ENV, "")
    if credentials and not (key and secret):
        raise ExchangeError(f"trading needs API credentials: set {API_KEY_ENV} and "
                            f"{API_SECRET_ENV} in the environment (never on the command line)")
    if key:
        config["apiKey"], config["secret"] = key, secret
    if exchange_id in _MARKET_TYPES:  # one request for markets: no currencies, no margins
        config["options"] = {"fetchMarkets": {"types": [_MARKET_TYPES[exchange_id]]},
                             "fetchCurrencies": False, "fetchMargins": False}
    exchange = cls(config)
    if sandbox:
        try:
            exchange.set_sandbox_mode(True)
        except ccxt.NotSupported:
            raise ExchangeError(f"{exchange_id} has no testnet in ccxt; drop --sandbox or "
                                "point --api-url at one") from None
    if api_url:
        exchange.urls["api"] = _rebase_all(exchange.urls["api"], api_url)
    return exchange


def load_market(exchange: ccxt.Exchange, symbol: str, *, retries: int = 3,
                backoff: float = 0.25, first_contact: bool = False) -> dict:
    """The market ``symbol`` of ``exchange``, loading its markets (again) until it is there.

    A garbled market list parses to no markets without an error, so a missing symbol is asked
    for again before it is called unknown.

    Raises
    ------
    ExchangeError
        Offline (fast, on first contact), failing, or no such market after ``retries``.
    """
    for attempt in range(retries + 1):
        call_ccxt(f"load_markets on {exchange.id}", exchange.load_markets, attempt > 0,
                  retries=retries, backoff=backoff, first_contact=first_contact)
        if symbol in (exchange.markets or {}):
            return exchange.market(symbol)
        first_contact = False
    raise ExchangeError(f"{exchange.id} has no market {symbol!r}; check the symbol, e.g. "
                        "BTC/USDT")


def serialize_requests(exchange: ccxt.Exchange) -> ccxt.Exchange:
    """Let several threads share ``exchange``: one request at a time, so its rate limiter and
    its per-request state (nonce, last response) see them in turn; ``request_lock(exchange)``
    holds off the other threads for several requests that must see one moment. Returns it."""
    lock = threading.RLock()
    fetch2 = exchange.fetch2

    def one_at_a_time(*args: object, **kwargs: object) -> object:
        with lock:
            return fetch2(*args, **kwargs)

    exchange.fetch2 = one_at_a_time
    exchange.mlstrategy_lock = lock
    return exchange


def request_lock(exchange: ccxt.Exchange) -> contextlib.AbstractContextManager:
    """The lock ``serialize_requests`` put on ``exchange`` (nothing to hold when it has none)."""
    return getattr(exchange, "mlstrategy_lock", None) or contextlib.nullcontext()

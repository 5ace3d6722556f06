"""The one place ccxt exceptions are handled: retries for transient failures, translation of
the rest into ``ExchangeError`` (the exchange refused or failed) or ``DataError`` (it sent
candles that make no sense). Nothing else in the project catches ccxt exceptions.

Reads (candles, orders, balances) are safe to repeat and are retried by ``call_ccxt``.
Placing an order is not: ``submit_error`` tells a definite refusal (rejected, insufficient
funds, bad credentials) from an outcome that is unknown (timeout, dropped connection, 5xx,
an answer that cannot be parsed), which the caller must resolve by looking the order up.
"""
from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from typing import TypeVar

import ccxt

from datafeeds.errors import (
    AuthFailed,
    DataError,
    ExchangeError,
    InsufficientFunds,
    OrderNotFound,
    OrderRejected,
    RateLimited,
)

log = logging.getLogger(__name__)
T = TypeVar("T")

# Transient: rate limits (429, DDoS protection), timeouts, 5xx / maintenance, network errors,
# the exchange's own "try again" codes and answers that could not be parsed.
RETRYABLE = (ccxt.OperationFailed,)
# Raised while ccxt parses an answer that is not what the exchange documents.
PARSE_ERRORS = (TypeError, KeyError, IndexError, ValueError, AttributeError)
_SECRET_ENVS = ("MLSTRATEGY_API_KEY", "MLSTRATEGY_API_SECRET")
_FIRST_CONTACT_TRIES, _FIRST_CONTACT_WAIT = 3, 0.2


def one_line(exc: BaseException) -> str:
    """An exception's text on one line, at most 300 characters, with any credential masked."""
    text = " ".join(str(exc).split())
    for name in _SECRET_ENVS:
        secret = os.environ.get(name)
        if secret:
            text = text.replace(secret, "***")
    return text[:300] + ("..." if len(text) > 300 else "")


def call_ccxt(what: str, fn: Callable[..., T], *args: object, retries: int = 5,
              backoff: float = 1.0, first_contact: bool = False,
              sleep: Callable[[float], None] = time.sleep) -> T:
    """Call ``fn(*args)``, retrying transient ccxt errors with exponential backoff.

    Parameters
    ----------
    what : str
        What is being done, for messages (``"fetch_ohlcv BTC/USDT 1h on binance"``).
    retries : int
        Retries after the first attempt for transient errors.
    backoff : float
        First wait in seconds; doubled after every failed attempt.
    first_contact : bool
        A connection that cannot be made at all (or times out) on the first request, three
        times in a row a fifth of a second apart, means offline or blocked: fail fast then
        instead of backing off.
    sleep : callable
        Waits between attempts (tests pass a recorder).

    Raises
    ------
    ExchangeError
        After the retries, or at once for a non-transient error, in one line.
    DataError
        When ccxt cannot make sense of the exchange's answer.
    """
    delay = backoff
    for attempt in range(retries + 1):
        try:
            return fn(*args)
        except RETRYABLE as exc:
            if first_contact and type(exc) in (ccxt.NetworkError, ccxt.RequestTimeout):
                if attempt >= min(_FIRST_CONTACT_TRIES - 1, retries):
                    raise ExchangeError(f"{what}: cannot connect ({one_line(exc)}); offline, "
                                        "or the exchange is blocked from here") from None
                sleep(_FIRST_CONTACT_WAIT)  # one glitch is not "offline": two quick retries
                continue
            if attempt == retries:
                error = RateLimited if isinstance(exc, ccxt.DDoSProtection) else ExchangeError
                raise error(f"{what}: still failing after {retries + 1} attempts "
                            f"({type(exc).__name__}: {one_line(exc)}); the exchange "
                            "is unreachable or rate limiting: try again later") from None
            log.warning("%s: %s, retrying in %.1fs", what, type(exc).__name__, delay)
            sleep(delay)
            delay *= 2
        except ccxt.OrderNotFound as exc:
            raise OrderNotFound(f"{what}: no such order ({one_line(exc)})") from None
        except ccxt.BadSymbol as exc:
            raise ExchangeError(f"{what}: unknown symbol ({one_line(exc)}); check the "
                                "exchange's symbol list, e.g. BTC/USDT") from None
        except (ccxt.AuthenticationError, ccxt.PermissionDenied, ccxt.AccountSuspended):
            raise AuthFailed(f"{what}: authentication failed; check MLSTRATEGY_API_KEY and "
                             "MLSTRATEGY_API_SECRET and the key's permissions") from None
        except ccxt.BaseError as exc:
            raise ExchangeError(f"{what}: {type(exc).__name__}: {one_line(exc)}") from None
        except PARSE_ERRORS as exc:
            # ccxt parsing an answer that is not what the exchange documents
            raise DataError(f"{what}: malformed answer from the exchange ({type(exc).__name__}: "
                            f"{one_line(exc)}); expected the exchange's documented JSON") from None
    raise AssertionError("unreachable")


def submit_error(what: str, exc: BaseException) -> ExchangeError | None:
    """The definite refusal ``exc`` stands for, or None when the order's fate is unknown.

    Parameters
    ----------
    what : str
        The order, for messages (``"buy 0.01 BTC/USDT market (client id ...)"``).
    exc : BaseException
        What ``create_order`` raised.

    Returns
    -------
    ExchangeError or None
        ``InsufficientFunds``, ``OrderRejected`` (invalid, refused), ``AuthFailed`` or
        ``RateLimited`` when the exchange certainly did not place it; None after a timeout,
        a dropped connection, a 5xx or an unparseable answer: it may have acted.
    """
    if isinstance(exc, ccxt.InsufficientFunds):
        return InsufficientFunds(f"{what}: insufficient funds ({one_line(exc)})")
    if isinstance(exc, (ccxt.AuthenticationError, ccxt.PermissionDenied,
                        ccxt.AccountSuspended)):
        return AuthFailed(f"{what}: authentication failed; check MLSTRATEGY_API_KEY, "
                          "MLSTRATEGY_API_SECRET and the key's trading permission")
    if isinstance(exc, (ccxt.RateLimitExceeded, ccxt.DDoSProtection)):
        return RateLimited(f"{what}: rate limited ({one_line(exc)})")
    if isinstance(exc, ccxt.OperationFailed) or isinstance(exc, PARSE_ERRORS):
        return None  # timeouts, drops, 5xx, "execution status unknown", garbled answers
    if isinstance(exc, ccxt.BaseError):  # InvalidOrder, BadRequest, OperationRejected, ...
        return OrderRejected(f"{what}: rejected ({type(exc).__name__}: {one_line(exc)})")
    raise exc


def read_ccxt(what: str, fn: Callable[..., object], *args: object,
              parse: Callable[[object], T] = lambda raw: raw, retries: int = 3,
              backoff: float = 0.25, sleep: Callable[[float], None] = time.sleep) -> T:
    """A read (never an order) that must make sense: ``call_ccxt``, and an answer ccxt or
    ``parse`` cannot read (``parse`` raises ValueError, KeyError or TypeError) is asked for
    again, up to ``retries`` times.

    Raises
    ------
    ExchangeError
        When the exchange keeps failing or answering nonsense.
    """
    for attempt in range(retries + 1):
        try:
            return parse(call_ccxt(what, fn, *args, retries=retries, backoff=backoff,
                                   sleep=sleep))
        except (DataError, ValueError, KeyError, TypeError) as exc:
            if attempt == retries:
                raise ExchangeError(f"{what}: malformed answers from the exchange "
                                    f"({exc})") from None
            log.warning("%s: malformed answer (%s); asking again", what, exc)
            sleep(backoff)
    raise AssertionError("unreachable")


def check_candles(what: str, rows: object, raw: object) -> list[list[float]]:
    """The candles ccxt returned, or DataError when they are not ``[[ms, o, h, l, c, v]]``.

    ``raw`` is the decoded response body: ccxt turns a body that is no list of candles (or a
    list of broken ones) into an empty list, which must not pass for "no more bars".
    """
    unparsed = isinstance(raw, list) and len(raw) > 0 and rows == []
    if unparsed or not isinstance(raw, list) or not isinstance(rows, list) or any(
            not isinstance(r, (list, tuple)) or len(r) < 6 or r[0] is None for r in rows):
        raise DataError(f"{what}: malformed candles from the exchange (expected rows of "
                        "[ms, open, high, low, close, volume])")
    return rows

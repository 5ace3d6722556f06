"""The one place ccxt exceptions are handled: retries for transient failures, translation of
the rest into ``ExchangeError`` (the exchange refused or failed) or ``DataError`` (it sent
candles that make no sense). Nothing else in the project catches ccxt exceptions.
"""
from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TypeVar

import ccxt

from datafeeds.errors import DataError, ExchangeError

log = logging.getLogger(__name__)
T = TypeVar("T")

# Transient: rate limits (429, DDoS protection), timeouts, 5xx / maintenance, network errors.
RETRYABLE = (ccxt.NetworkError,)


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
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
        A connection that cannot be made at all (or times out) on the first request means
        offline or blocked: fail at once instead of retrying.
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
                raise ExchangeError(f"{what}: cannot connect ({_one_line(exc)}); offline, or "
                                    "the exchange is blocked from here") from None
            if attempt == retries:
                raise ExchangeError(f"{what}: still failing after {retries + 1} attempts "
                                    f"({type(exc).__name__}: {_one_line(exc)}); the exchange "
                                    "is unreachable or rate limiting: try again later") from None
            log.warning("%s: %s, retrying in %.1fs", what, type(exc).__name__, delay)
            sleep(delay)
            delay *= 2
        except ccxt.BadSymbol as exc:
            raise ExchangeError(f"{what}: unknown symbol ({_one_line(exc)}); check the "
                                "exchange's symbol list, e.g. BTC/USDT") from None
        except ccxt.AuthenticationError:
            raise ExchangeError(f"{what}: authentication failed; check MLSTRATEGY_API_KEY and "
                                "MLSTRATEGY_API_SECRET") from None
        except ccxt.BaseError as exc:
            raise ExchangeError(f"{what}: {type(exc).__name__}: {_one_line(exc)}") from None
        except (TypeError, KeyError, IndexError, ValueError, AttributeError) as exc:
            # ccxt parsing an answer that is not what the exchange documents
            raise DataError(f"{what}: malformed answer from the exchange ({type(exc).__name__}: "
                            f"{_one_line(exc)}); expected the exchange's documented JSON") from None
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

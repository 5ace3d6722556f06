"""Funding rates and open interest of a perpetual future through ccxt, paginated, into the
store beside its bars (``datafeeds.values`` says what each value's time means).

``fetch_values`` walks ``fetch_funding_rate_history`` or ``fetch_open_interest_history``
forward from a time, page by page; ``update_values`` stores each page atomically from the last
stored value (or ``since``), so an interrupted download leaves a valid store that the next
one resumes. A bot following a funding rate polls with ``fetch_values`` too.
"""
from __future__ import annotations

from collections.abc import Callable, Iterator

import ccxt
import pandas as pd

from datafeeds.errors import DataError
from datafeeds.exchange.translate import call_ccxt
from datafeeds.store import BarStore, StoreKey
from datafeeds.timeframes import timeframe_delta
from datafeeds.values import check_series, validate_values, values_frame

Progress = Callable[[int, pd.Timestamp], None]


def _page(exchange: ccxt.Exchange, symbol: str, series: str, cursor: int, limit: int,
          period: str, retries: int, backoff: float) -> tuple[list[int], list[float], int]:
    """One page from ``cursor`` (ms): the times each value became known, the values, and the
    exchange's stamp of the last one (where the next page starts after)."""
    what = f"{series} {symbol} on {exchange.id}"
    if series == "funding_rate":
        rows = call_ccxt(f"fetch_funding_rate_history {what}",
                         exchange.fetch_funding_rate_history, symbol, cursor, limit,
                         retries=retries, backoff=backoff)
        field, shift = "fundingRate", 0  # the rate settled at its funding time
    else:
        rows = call_ccxt(f"fetch_open_interest_history {what}",
                         exchange.fetch_open_interest_history, symbol, period, cursor, limit,
                         retries=retries, backoff=backoff)
        field = "openInterestAmount"
        shift = int(timeframe_delta(period).total_seconds() * 1000)  # known at its end
    if not isinstance(rows, list):
        raise DataError(f"{what}: the exchange answered {type(rows).__name__}, not a list")
    try:
        stamps = [int(r["timestamp"]) for r in rows]
        values = [float(r[field]) for r in rows]
    except (KeyError, TypeError, ValueError) as exc:
        raise DataError(f"{what}: malformed record ({exc}); expected 'timestamp' and "
                        f"{field!r}") from None
    return [t + shift for t in stamps], values, (stamps[-1] if stamps else cursor)


def period_ms(series: str, period: str) -> int:
    """How long after the exchange's stamp a value is known: 0 for a funding rate (settled at
    its stamp), the period for an open interest (stamped at one end or the other)."""
    return 0 if series == "funding_rate" else int(timeframe_delta(period).total_seconds() * 1000)


def fetch_values(exchange: ccxt.Exchange, symbol: str, series: str, since_ms: int,
                 until_ms: int, *, period: str = "1h", limit: int = 500, retries: int = 5,
                 backoff: float = 1.0) -> Iterator[pd.DataFrame]:
    """Yield validated pages of ``series`` values known after ``since_ms`` and by
    ``until_ms`` (ms), in time order, without overlap."""
    cursor = since_ms + 1 - period_ms(series, period)
    while cursor <= until_ms:
        known, values, last = _page(exchange, symbol, series, cursor, limit, period, retries,
                                    backoff)
        keep = [i for i, t in enumerate(known) if since_ms < t <= until_ms]
        if keep:
            yield validate_values(values_frame([known[i] for i in keep],
                                               [values[i] for i in keep]), series,
                                  source=f"{series} {symbol} on {exchange.id}")
        if not known or last < cursor:
            return
        cursor = last + 1


def update_values(store: BarStore, key: StoreKey, exchange: ccxt.Exchange, *,
                  since: pd.Timestamp, until: pd.Timestamp | None = None, period: str = "1h",
                  limit: int = 500, retries: int = 5, backoff: float = 1.0,
                  progress: Progress | None = None) -> int:
    """Download the values of ``key`` (``key.timeframe``: the series) after the last stored
    one, or from ``since``, up to ``until`` (default now); returns how many were added.

    ``period``: the open-interest period (``5m`` .. ``1d``, as the exchange offers).

    Raises
    ------
    ExchangeError
        Offline at the first request (fast), a refusal, or retries exhausted; an exchange
        without the series says so (ccxt's NotSupported).
    DataError
        Malformed records or values that break ``datafeeds.values``' contract.
    """
    series = check_series(key.timeframe)
    call_ccxt(f"load_markets on {exchange.id}", exchange.load_markets, retries=retries,
              backoff=backoff, first_contact=True)
    stored = store.read_values(key)
    after = int(since.timestamp() * 1000) - 1 if stored is None else \
        int(stored.index[-1].value // 1_000_000)
    end_ms = int((until or pd.Timestamp.now(tz="UTC")).timestamp() * 1000)
    added = 0
    for page in fetch_values(exchange, key.symbol, series, after, end_ms, period=period,
                             limit=limit, retries=retries, backoff=backoff):
        store.write_values(key, page)
        added += len(page)
        if progress is not None:
            progress(added, page.index[-1])
    return added

"""Candles from a crypto exchange through ccxt, paginated, resumable, rate-limit aware.

``fetch_range`` walks ``fetch_ohlcv`` forward from ``since`` in pages of ``limit`` bars,
retrying transient errors (see ``datafeeds.exchange.translate``) and dropping the forming
candle.
``update_store`` appends each page to the store as it arrives (each write atomic), so
an interrupted download leaves a valid store and the next update resumes after its last bar.
"""
from __future__ import annotations

import logging
from collections.abc import Callable, Iterator

import ccxt
import pandas as pd

from datafeeds.exchange.translate import call_ccxt, check_candles
from datafeeds.loaders import frame_from_ccxt
from datafeeds.ohlcv import validate_ohlcv
from datafeeds.store import BarStore, StoreKey
from datafeeds.timeframes import timeframe_delta

log = logging.getLogger(__name__)
Progress = Callable[[int, pd.Timestamp], None]


def fetch_range(exchange: ccxt.Exchange, symbol: str, timeframe: str, since: pd.Timestamp,
                *, until: pd.Timestamp | None = None, limit: int = 1000, retries: int = 5,
                backoff: float = 1.0, now: pd.Timestamp | None = None
                ) -> Iterator[pd.DataFrame]:
    """Yield validated pages of closed bars from ``since`` (inclusive) up to ``until``/now.

    Parameters
    ----------
    exchange : ccxt.Exchange
        From :func:`datafeeds.exchange.client.make_exchange`.
    symbol, timeframe : str
        Unified ccxt symbol (``BTC/USDT``) and bar size (``1m``, ``1h``...).
    since : pandas.Timestamp
        Open time of the first bar wanted (tz-aware).
    until : pandas.Timestamp, optional
        Only bars that close at or before this time; default now.
    limit : int
        Bars asked for per request (the exchange may send fewer).
    retries, backoff : int, float
        Transient errors (429, 5xx, timeouts, dropped connections) are retried ``retries``
        times, waiting ``backoff`` seconds, then twice as long each time.
    now : pandas.Timestamp, optional
        The current time (tests); a bar whose close is after it is still forming and dropped.

    Yields
    ------
    pandas.DataFrame
        One valid OHLCV frame per page, in time order, without overlap.

    Raises
    ------
    ExchangeError
        Offline at the first request, a non-transient refusal, or retries exhausted.
    DataError
        The exchange sent candles that break the OHLCV contract or are malformed.
    """
    step_ms = int(timeframe_delta(timeframe).total_seconds() * 1000)
    now_ms = int((now or pd.Timestamp.now(tz="UTC")).timestamp() * 1000)
    end_ms = min(now_ms, int(until.timestamp() * 1000)) if until is not None else now_ms
    what = f"fetch_ohlcv {symbol} {timeframe} on {exchange.id}"
    call_ccxt(f"load_markets on {exchange.id}", exchange.load_markets, retries=retries,
              backoff=backoff, first_contact=True)
    cursor = int(since.timestamp() * 1000)
    first_page = True
    while cursor < end_ms:
        rows = call_ccxt(what, exchange.fetch_ohlcv, symbol, timeframe, cursor, limit,
                         retries=retries, backoff=backoff)
        rows = check_candles(what, rows, exchange.last_json_response)
        # closed bars only: a bar is closed once its end (open + bar size) is not after now
        rows = [r for r in rows if cursor <= r[0] and r[0] + step_ms <= end_ms]
        if not rows:
            return
        if rows[0][0] > cursor and not first_page:
            log.warning("%s: no bars from %s to %s (a gap at the exchange)", what,
                        pd.Timestamp(cursor, unit="ms", tz="UTC"),
                        pd.Timestamp(rows[0][0], unit="ms", tz="UTC"))
        yield validate_ohlcv(frame_from_ccxt(rows), source=what)
        cursor = int(rows[-1][0]) + step_ms
        first_page = False


def update_store(store: BarStore, key: StoreKey, exchange: ccxt.Exchange, *,
                 since: pd.Timestamp, until: pd.Timestamp | None = None, limit: int = 1000,
                 retries: int = 5, backoff: float = 1.0, progress: Progress | None = None,
                 now: pd.Timestamp | None = None) -> int:
    """Download the bars after the last stored one (or from ``since``) into the store.

    Each page is appended atomically as it arrives, so an interruption at any point leaves a
    valid store that the next call resumes from, without gap or duplicate.

    Parameters
    ----------
    store : BarStore
        Where the bars go.
    key : StoreKey
        Source (the exchange id), symbol and timeframe of the series.
    exchange : ccxt.Exchange
        From :func:`datafeeds.exchange.client.make_exchange`.
    since : pandas.Timestamp
        First bar wanted when nothing is stored yet (ignored otherwise).
    until, limit, retries, backoff, now
        As in :func:`fetch_range`.
    progress : callable, optional
        Called after each page with the bars added so far and the last bar's open time.

    Returns
    -------
    int
        Bars added.
    """
    last = store.last_bar(key)
    start = since if last is None else last + timeframe_delta(key.timeframe)
    added = 0
    for page in fetch_range(exchange, key.symbol, key.timeframe, start, until=until,
                            limit=limit, retries=retries, backoff=backoff, now=now):
        added += store.append(key, page)
        if progress is not None:
            progress(added, page.index[-1])
    return added

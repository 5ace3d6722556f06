"""Closed candles of one market as they close, by the exchange's clock, over REST.

``CandlePoller.history`` fetches the bars before now (warm-up) and ``poll`` the bars closed
since the last one handed out. A candle is closed when its open time plus the bar size is not
after the exchange's time (``fetch_time``), never the local clock, so a forming candle (whose
high, low, close and volume still change) is never handed out. After a failure the next
successful poll backfills every missed bar in order; bars already handed out are dropped.

Status, as backtrader names it: ``LIVE`` when the last bar handed out is the newest closed bar,
``DELAYED`` while catching up or when no new bar has closed for longer than the bar size plus
a grace period (a stalled feed), ``DISCONNECTED`` while the exchange cannot be reached or
answers nonsense. The bot trades only when it is LIVE.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass

import ccxt
import numpy as np
import pandas as pd

from datafeeds.errors import DataError, ExchangeError
from datafeeds.exchange.client import load_market, request_lock
from datafeeds.exchange.history import fetch_range
from datafeeds.exchange.translate import call_ccxt, check_candles, read_ccxt
from datafeeds.loaders import frame_from_ccxt
from datafeeds.ohlcv import validate_ohlcv, validate_rows
from datafeeds.timeframes import timeframe_delta

log = logging.getLogger(__name__)
LIVE, DELAYED, DISCONNECTED = "LIVE", "DELAYED", "DISCONNECTED"


@dataclass(frozen=True)
class Bar:
    """One closed bar; ``live`` when it was the newest closed bar as it was handed out."""

    time_ms: int
    open: float
    high: float
    low: float
    close: float
    volume: float
    live: bool


def _positive_ms(answer: object) -> int:
    """An exchange time in ms, or ValueError."""
    if not isinstance(answer, (int, float)) or answer <= 0:
        raise ValueError(f"not a time: {answer!r}")
    return int(answer)


class CandlePoller:
    """Closed bars of ``symbol`` at ``timeframe`` from a ccxt exchange.

    Parameters
    ----------
    exchange : ccxt.Exchange
        From ``make_exchange``.
    symbol, timeframe : str
        Unified symbol (``BTC/USDT``) and bar size (``1m``, ``1h``...).
    retries, backoff : int, float
        Quick retries of each request before a poll counts as failed.
    grace_ms : int, optional
        How late (exchange time) a bar may be before the feed counts as stalled; default
        half a bar, at least 5 seconds.
    """

    def __init__(self, exchange: ccxt.Exchange, symbol: str, timeframe: str, *,
                 retries: int = 4, backoff: float = 0.2, grace_ms: int | None = None) -> None:
        self.exchange = exchange
        self.symbol = symbol
        self.timeframe = timeframe
        self.step_ms = int(timeframe_delta(timeframe).total_seconds() * 1000)
        self.grace_ms = grace_ms if grace_ms is not None else max(self.step_ms // 2, 5000)
        self._retries = retries
        self._backoff = backoff
        self.status = DELAYED
        self.last_ms: int | None = None  # open time of the last bar handed out
        self.server_ms: int | None = None  # the exchange's time at the last poll
        self.failures = 0  # polls failed in a row
        self._what = f"candles {symbol} {timeframe} on {exchange.id}"

    def server_time(self) -> int:
        """The exchange's clock in ms (retried, a garbled answer included).

        Raises
        ------
        ExchangeError
            When the exchange keeps failing or answering nonsense.
        """
        self.server_ms = read_ccxt(f"fetch_time on {self.exchange.id}", self.exchange.fetch_time,
                                   parse=_positive_ms, retries=self._retries,
                                   backoff=self._backoff)
        return self.server_ms

    def history(self, bars: int) -> pd.DataFrame:
        """The last ``bars`` closed bars before now, validated (warm-up at start).

        Raises
        ------
        ExchangeError
            Offline (at once), or the exchange keeps failing.
        DataError
            When the exchange has fewer bars than asked or sends bars that break the contract.
        """
        load_market(self.exchange, self.symbol, retries=self._retries, backoff=self._backoff,
                    first_contact=True)
        for attempt in range(self._retries + 1):  # a garbled page is asked for again
            now = self.server_time()
            since = pd.Timestamp(now - (bars + 1) * self.step_ms, unit="ms", tz="UTC")
            try:
                pages = list(fetch_range(self.exchange, self.symbol, self.timeframe, since,
                                         now=pd.Timestamp(now, unit="ms", tz="UTC"),
                                         retries=self._retries, backoff=self._backoff))
                break
            except DataError as exc:
                if attempt == self._retries:
                    raise
                log.warning("%s: %s; asking again", self._what, exc)
        frame = pd.concat(pages) if pages else frame_from_ccxt([])
        if len(frame) == 0:
            raise DataError(f"{self._what}: the exchange has no closed bars before now; "
                            "check the symbol and timeframe")
        frame = validate_ohlcv(frame.iloc[-bars:], source=self._what)
        self.last_ms = int(frame.index[-1].value // 1_000_000)
        return frame

    def poll(self) -> list[Bar]:
        """Bars closed since the last one handed out, oldest first (empty when none).

        Never raises for a failing or misbehaving exchange: the status says so instead.
        """
        if self.last_ms is None:
            raise RuntimeError("call history() before poll()")
        try:
            with request_lock(self.exchange):  # the clock and the candles of one moment
                now = self.server_time()
                rows = call_ccxt(f"fetch_ohlcv {self._what}", self.exchange.fetch_ohlcv,
                                 self.symbol, self.timeframe, self.last_ms + self.step_ms, 1000,
                                 retries=self._retries, backoff=self._backoff)
                rows = check_candles(self._what, rows, self.exchange.last_json_response)
            rows = [r[:6] for r in rows
                    if r[0] > self.last_ms and r[0] + self.step_ms <= now]  # closed, new
            array = np.asarray(rows, dtype=np.float64).reshape(-1, 6)
            times = array[:, 0].astype(np.int64)
            if len(rows):
                validate_rows(times, array[:, 1:], source=self._what)
        except (ExchangeError, DataError, TypeError, ValueError) as exc:
            self.failures += 1
            if self.status != DISCONNECTED:
                log.warning("%s: DISCONNECTED (%s)", self._what, exc)
            self.status = DISCONNECTED
            return []
        if self.failures:
            log.info("%s: reconnected after %d failed polls", self._what, self.failures)
        self.failures = 0
        if not len(times):
            late = now - (self.last_ms + 2 * self.step_ms)  # the next bar is due by then
            if late > self.grace_ms and self.status != DELAYED:
                log.warning("%s: DELAYED, no new bar for %.1f s past its close", self._what,
                            late / 1000)
                self.status = DELAYED
            return []
        if times[0] > self.last_ms + self.step_ms:
            log.warning("%s: the exchange has no bars from %s to %s", self._what,
                        pd.Timestamp(self.last_ms + self.step_ms, unit="ms", tz="UTC"),
                        pd.Timestamp(int(times[0]), unit="ms", tz="UTC"))
        newest = now < int(times[-1]) + 2 * self.step_ms  # the next bar is still forming
        bars = [Bar(int(t), *map(float, v), live=newest and i == len(times) - 1)
                for i, (t, v) in enumerate(zip(times, array[:, 1:], strict=True))]
        self.last_ms = int(times[-1])
        self.status = LIVE if newest else DELAYED
        return bars

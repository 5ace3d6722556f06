"""The bars of the other markets a model's features read, and the funding rates, for a bot.

Before each of the traded market's bars, every bar of the other markets that has closed by
that bar's open time, and every funding rate settled by then, must be in the model's feature
stream (the as-of rule of ``features_numba.sources``). ``MarketBars`` fetches them from the
bot's exchange when they are not there yet (their history at the first bar, then a poll when a
new bar is due, and for a funding rate at each live bar), journals them beside the traded
market's bars (under ``<market>@<input>``, a funding rate as a bar whose prices are the rate,
so a backtest or an audit reads the very data the bot read) and hands them to every engine
that asks. Open interest is not followed (its period is not known to the model).
"""
from __future__ import annotations

import logging

import pandas as pd

from datafeeds.errors import ExchangeError
from datafeeds.exchange.candles import Bar, CandlePoller
from datafeeds.exchange.client import load_market
from datafeeds.exchange.derivatives import fetch_values
from datafeeds.exchange.translate import call_ccxt
from datafeeds.timeframes import format_timedelta
from datafeeds.values import validate_values
from features_numba import FeatureSpec
from mlstrategy.errors import ConfigError
from mlstrategy.live.journal import Journal

log = logging.getLogger(__name__)

MAX_HISTORY = 50_000  # bars of one other market fetched at start, at most
FUNDING_EVERY_MS = 8 * 3_600_000  # the longest funding interval of major exchanges
PUBLISHED_WITHIN_MS = 60_000  # a rate settled at T is asked for again until T + this


def followed(spec: FeatureSpec) -> dict[str, tuple[int, int]]:
    """Each other market of ``spec``: the bar size (ns) to poll it at (the finest its
    features read: the others are made of it), and the bars of warm-up they need."""
    out = {}
    for market in spec.markets:
        read = [(spec.step_ns(source), sub.warmup) for source, sub, _ in spec.sources
                if source.market == market and source.series is None]
        step = min(s for s, _ in read)
        out[market] = step, max((warmup + 2) * (s // step) for s, warmup in read)
    return out


def poll_timeframe(step_ns: int) -> str:
    """A bar size in ns as a timeframe (``"1h"``)."""
    return format_timedelta(pd.Timedelta(step_ns, "ns"))


def journal_key(market: str, key: str) -> str:
    """The journal's market name for what the traded ``market`` reads as ``key`` (another
    market's symbol, or a series such as ``funding_rate@ETH/USDT:USDT``)."""
    return f"{market}@{key}"


def values_of(bars: pd.DataFrame) -> pd.DataFrame:
    """Journaled funding rates (bars whose close is the rate) as a series of values."""
    return validate_values(bars[["close"]].rename(columns={"close": "value"}), "funding_rate",
                           source="journaled funding rates")


class MarketBars:
    """The other markets and funding rates of ``spec``, polled from ``exchange`` and
    journaled in ``journal`` (the traded market's view, trading ``symbol``)."""

    def __init__(self, exchange: object, spec: FeatureSpec, journal: Journal,
                 symbol: str) -> None:
        self.exchange = exchange
        self.funding: dict[str, tuple[str, int]] = {}  # key -> (symbol, history at start)
        for source, sub, _ in spec.sources:  # one source per series read
            if source.series == "funding_rate":
                self.funding[source.input] = (source.market or symbol,
                                              (sub.warmup + 3) * FUNDING_EVERY_MS)
        self._known: dict[str, int] = {}  # key -> time (ms) of the last rate fetched
        self._asked: dict[str, int] = {}  # key -> the exchange's time (ms) at the last poll
        self.unfollowed = sorted(set(spec.inputs) - set(spec.markets) - set(self.funding))
        self.pollers: dict[str, CandlePoller] = {}
        self._margin: dict[str, int] = {}  # bars of warm-up before the first one needed
        self.chunks: dict[str, list[pd.DataFrame]] = {}  # every bar fetched, in batches
        self._journals: dict[str, Journal] = {}
        for market, (step, margin) in followed(spec).items():
            self.pollers[market] = CandlePoller(exchange, market, poll_timeframe(step))
            self._margin[market] = margin
        for key in [*self.pollers, *self.funding]:
            self.chunks[key] = []
            self._journals[key] = journal.for_market(journal_key(journal.market, key))

    def check(self) -> None:
        """Refuse to start unless the exchange lists every market the features read.

        Raises
        ------
        ExchangeError
            Naming the market missing (or the exchange unreachable).
        ConfigError
            For features reading open interest (a bot does not follow it), or the funding
            rate of a market that is no perpetual.
        """
        if self.unfollowed:
            raise ConfigError(f"the model's features read {', '.join(self.unfollowed)}, which "
                              "a bot does not follow (backtests and the cycle do); trade a "
                              "model without it")
        funded = {symbol for symbol, _ in self.funding.values()}
        for market in [*self.pollers, *sorted(funded)]:
            try:
                listed = load_market(self.exchange, market, first_contact=True)
            except ExchangeError as exc:
                raise ExchangeError(f"the model's features read {market}, which the bot "
                                    f"follows on the traded market's exchange: {exc}"
                                    ) from None
            if market in funded and not listed.get("swap"):
                raise ConfigError(f"the model's features read the funding rate of {market}, "
                                  f"which {self.exchange.id} lists as no perpetual; trade the "
                                  "perpetual (e.g. exchange binanceusdm, symbol "
                                  "BTC/USDT:USDT)")

    def until(self, bar_ns: int) -> dict[str, list[pd.DataFrame]]:
        """Every bar fetched of each market, once those closed by ``bar_ns`` are in (or the
        exchange has none of them yet: the features then read NaN, as the batch does for a
        missing bar)."""
        for market, poller in self.pollers.items():
            due_ms = bar_ns // 1_000_000 - poller.step_ms  # the last bar closed by then opens
            due_ms -= due_ms % poller.step_ms
            if poller.last_ms is None:
                now = poller.server_time()
                bars = min((now - due_ms) // poller.step_ms + self._margin[market],
                           MAX_HISTORY)
                self._add(market, poller.history(int(bars)))
            elif poller.last_ms < due_ms:
                self._add(market, _frame(poller.poll()))
        for key, (symbol, history) in self.funding.items():
            bar_ms = bar_ns // 1_000_000
            if self._asked.get(key, -1) > bar_ms + PUBLISHED_WITHIN_MS:
                continue  # every rate settled by this bar was there at the last poll
            after = self._known.get(key, bar_ms - history)
            now = call_ccxt(f"fetch_time on {self.exchange.id}", self.exchange.fetch_time)
            for page in fetch_values(self.exchange, symbol, "funding_rate", after, now):
                self._add(key, page)
                self._known[key] = int(page.index[-1].value // 1_000_000)
            self._known.setdefault(key, after)
            self._asked[key] = now
        return self.chunks

    def _add(self, key: str, frame: pd.DataFrame) -> None:
        if frame.empty:
            return
        self.chunks[key].append(frame)
        times = frame.index.as_unit("ms").asi8.tolist()
        rows = frame.to_numpy().tolist() if key in self.pollers else \
            [(v, v, v, v, 0.0) for (v,) in frame.to_numpy().tolist()]  # a rate as a bar
        self._journals[key].record(
            [(t, *row) for t, row in zip(times, rows, strict=True)], [])
        log.debug("%s: %d up to %s", key, len(frame), frame.index[-1])


def _frame(bars: list[Bar]) -> pd.DataFrame:
    """Polled bars as an OHLCV frame."""
    index = pd.DatetimeIndex(pd.to_datetime([b.time_ms for b in bars], unit="ms", utc=True),
                             name="datetime")
    return pd.DataFrame([(b.open, b.high, b.low, b.close, b.volume) for b in bars],
                        index=index, columns=["open", "high", "low", "close", "volume"],
                        dtype="float64")

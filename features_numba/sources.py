"""Series a feature can read besides the model's own bars, and the one rule that joins them.

A ``Source`` is another market and/or a higher timeframe, or a series of values an exchange
publishes for a market (``SERIES``: funding rates, open interest). Its bars are the series' bars
grouped into buckets of its bar size (``bucket_nb``: open of the first, highest high, lowest
low, close of the last, volumes summed in order), buckets aligned on the epoch (UTC), as the
exchanges align hours and days.

The as-of rule (``align_nb``): the row of a bar opening at ``t`` takes the values of the source
bar that closed last by ``t``, the one opening at ``floor(t, D) - D`` for a source bar of
duration ``D``; if that bar is missing, NaN, never a value from later or an older one. So the
row at 10:59 of a 1m model sees the 09:00-10:00 hour, and the 10:00-11:00 hour from the row
at 11:00 on. Batch and streaming both follow it (``batch``, ``stream``).

A series of values is indexed by the time each value became known (a funding rate: when it
was published, at its funding time; see ``datafeeds.values``); a row takes the last value
known by its open time (a value stays the latest until the next is published). The features
of such a series read each value as a bar whose open, high, low and close are the value.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
from numba import njit

from features_numba.errors import FeatureError

_TIMEFRAME = re.compile(r"^(\d+)([mhd])$")
SERIES = ("funding_rate", "open_interest")
_UNIT_NS = {"m": 60_000_000_000, "h": 3_600_000_000_000, "d": 86_400_000_000_000}


def bar_ns(timeframe: str) -> int:
    """``"15m"`` -> its duration in ns; minutes, hours and days only (weeks and months do not
    align on the epoch the way exchanges align them)."""
    match = _TIMEFRAME.match(timeframe) if isinstance(timeframe, str) else None
    if not match or int(match.group(1)) == 0:
        raise FeatureError(f"timeframe {timeframe!r} not understood; a feature reads bars of "
                           "minutes, hours or days, such as 5m, 1h, 4h or 1d")
    return int(match.group(1)) * _UNIT_NS[match.group(2)]


@dataclass(frozen=True)
class Source:
    """Which series a feature reads: ``market``'s (None: the model's own) bars at
    ``timeframe`` (None: the model's own bar size), or its ``series`` of values."""

    market: str | None = None
    timeframe: str | None = None
    series: str | None = None

    def __post_init__(self) -> None:
        if self.timeframe is not None:
            bar_ns(self.timeframe)
        if self.series is not None and self.series not in SERIES:
            raise FeatureError(f"series {self.series!r}: a feature reads one of "
                               f"{', '.join(SERIES)} (or, without series, the bars)")
        if self.series is not None and self.timeframe is not None:
            raise FeatureError(f"series {self.series}: its values are read as published; "
                               "drop the timeframe")
        if self.market is not None and (not isinstance(self.market, str)
                                        or not self.market.strip()
                                        or set(self.market) & set("@,\n")):
            raise FeatureError(f"market {self.market!r}: name a market as its symbol, "
                               "e.g. ETH/USDT")

    @property
    def own(self) -> bool:
        """Whether this is the model's own series."""
        return self.market is None and self.timeframe is None and self.series is None

    @property
    def input(self) -> str | None:
        """The data it needs besides the model's own bars, by the name a caller gives it
        (``others``): another market's bars by its symbol, a series of values as
        ``funding_rate`` (the model's own market's) or ``funding_rate@ETH/USDT``; None when
        it reads the model's own bars only."""
        if self.series is not None:
            return self.series + (f"@{self.market}" if self.market else "")
        return self.market

    @classmethod
    def of_input(cls, key: str) -> Source:
        """The source read under ``key`` (``input`` read back; its timeframe, if any, is
        not part of the name)."""
        series, _, market = key.partition("@")
        if series in SERIES:
            return cls(market or None, None, series)
        return cls(key)

    def describe(self, traded: str = "the traded market") -> str:
        """What it reads, in words: ``the bars of ETH/USDT``, ``the funding_rate of ...``."""
        if self.series is not None:
            return f"the {self.series} of {self.market or traded}"
        return f"the bars of {self.market or traded}"

    @property
    def suffix(self) -> str:
        """What a column name gains: ``""``, ``"@1h"``, ``"@ETH/USDT"``, ``"@ETH/USDT,1h"``,
        ``"@funding_rate"``."""
        parts = [p for p in (self.market, self.timeframe, self.series) if p is not None]
        return "@" + ",".join(parts) if parts else ""

    def to_dict(self) -> dict:
        """The keys a feature definition gains (none for the model's own series)."""
        return {k: v for k, v in (("market", self.market), ("timeframe", self.timeframe),
                                  ("series", self.series)) if v is not None}


@njit(cache=True, nogil=True)
def bucket_nb(ts, o, h, l, c, v, step):  # noqa: E741
    """Group bars (open times ``ts``, ascending) into buckets of ``step`` ns: returns the
    buckets' open times and OHLCV. The streaming ``Bucket`` does the same operations."""
    n = ts.shape[0]
    opens = np.empty(n, dtype=np.int64)
    out = np.empty((5, n))
    k = -1
    for i in range(n):
        start = ts[i] - ts[i] % step
        if k < 0 or start != opens[k]:
            k += 1
            opens[k] = start
            out[0, k] = o[i]
            out[1, k] = h[i]
            out[2, k] = l[i]
            out[3, k] = c[i]
            out[4, k] = v[i]
        else:
            if h[i] > out[1, k]:
                out[1, k] = h[i]
            if l[i] < out[2, k]:
                out[2, k] = l[i]
            out[3, k] = c[i]
            out[4, k] = out[4, k] + v[i]
    return opens[:k + 1], out[:, :k + 1]


@njit(cache=True, nogil=True)
def as_of_nb(ts, known):
    """For each row time in ``ts`` (ascending), the index of the last value in ``known``
    (ascending times each value became known) known by then, or -1 before the first."""
    out = np.empty(ts.shape[0], dtype=np.int64)
    j = -1
    for i in range(ts.shape[0]):
        while j + 1 < known.shape[0] and known[j + 1] <= ts[i]:
            j += 1
        out[i] = j
    return out


@njit(cache=True, nogil=True)
def align_nb(ts, opens, step):
    """For each row time in ``ts`` (ascending), the index in ``opens`` of the source bar that
    closed last by then (the one opening at ``floor(t, step) - step``), or -1 if it is
    missing."""
    out = np.full(ts.shape[0], -1, dtype=np.int64)
    j = 0
    for i in range(ts.shape[0]):
        need = ts[i] - ts[i] % step - step
        while j < opens.shape[0] and opens[j] < need:
            j += 1
        if j < opens.shape[0] and opens[j] == need:
            out[i] = j
    return out

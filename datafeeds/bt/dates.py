"""Bar times <-> backtrader's float dates: the one conversion every feed and strategy uses.

backtrader stores a time as days since 0001-01-01 plus one (``bt.date2num`` of a naive UTC
datetime). Our bars are int64 nanoseconds since the epoch (UTC bar open times). The historical
feed, the live feed and ``MLStrategy`` all go through these two functions, so a bar's time is
the same number on every path.
"""
from __future__ import annotations

import numpy as np

EPOCH_ORDINAL = 719163  # datetime(1970, 1, 1).toordinal(): bt's float of the epoch
_NS_PER_S = 1_000_000_000


def date2num(ns: np.ndarray) -> np.ndarray:
    """``bt.date2num`` of each UTC time given as int64 ns since the epoch (same float ops).

    Parameters
    ----------
    ns : numpy.ndarray
        int64 nanoseconds since 1970-01-01 UTC (``DatetimeIndex.asi8`` in ns).

    Returns
    -------
    numpy.ndarray
        float64 backtrader dates, bit-identical to ``bt.date2num(datetime)`` per element.
    """
    seconds, nanos = np.divmod(np.asarray(ns, dtype=np.int64), _NS_PER_S)
    days, second_of_day = np.divmod(seconds, 86400)
    hour, rest = np.divmod(second_of_day, 3600)
    minute, second = np.divmod(rest, 60)
    micro = nanos // 1000
    base = (days + EPOCH_ORDINAL).astype(np.float64)
    return base + (hour / 24.0 + minute / 1440.0 + second / 86400.0 + micro / 86400000000.0)


def num2ns(num: float) -> int:
    """The inverse for bar times: a backtrader date -> int ns since the epoch, to the second."""
    return round((num - EPOCH_ORDINAL) * 86400.0) * _NS_PER_S

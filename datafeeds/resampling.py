"""Resampling bars to a larger timeframe (1m -> 5m, 1h, 1d ...), labelled by bar open time.

open = first open, high = max high, low = min low, close = last close, volume = sum; bins are
``[start, start + timeframe)`` aligned to the epoch (days to 00:00 UTC; weeks to Monday
00:00 UTC). Bins with no bar are
left out (gaps stay gaps); a first bin the data enters late (its open is unknown) and a last
bin the data does not cover to its end (still forming) are dropped.
"""
from __future__ import annotations

import pandas as pd

from datafeeds.errors import DataError
from datafeeds.ohlcv import validate_ohlcv
from datafeeds.quality import infer_timeframe
from datafeeds.timeframes import timeframe_delta

_MONDAY = pd.Timestamp("1970-01-05", tz="UTC")  # the epoch was a Thursday
_AGG = {"open": "first", "high": "max", "low": "min", "close": "last", "volume": "sum"}


def resample(bars: pd.DataFrame, timeframe: str, *, source_timeframe: str | None = None
             ) -> pd.DataFrame:
    """Aggregate validated ``bars`` into ``timeframe`` bars labelled by their open time.

    Parameters
    ----------
    bars : pandas.DataFrame
        A valid OHLCV frame (see ``validate_ohlcv``).
    timeframe : str
        Target bar size, e.g. ``5m``, ``1h``, ``1d``, ``1w``.
    source_timeframe : str, optional
        Bar size of ``bars``; inferred from the most common spacing when omitted.

    Returns
    -------
    pandas.DataFrame
        A valid OHLCV frame of complete target bars only.

    Raises
    ------
    DataError
        If ``timeframe`` is not larger than, or not a multiple of, the bars' own timeframe.
    """
    target = timeframe_delta(timeframe)
    own = timeframe_delta(source_timeframe) if source_timeframe else infer_timeframe(bars.index)
    if own is None or target <= own or target % own != pd.Timedelta(0):
        raise DataError(f"cannot resample {own} bars to {timeframe}: the target must be a "
                        "larger multiple of the source bar size")
    weekly = target % pd.Timedelta(days=7) == pd.Timedelta(0)
    origin = _MONDAY if weekly else "epoch"
    grouped = bars.resample(target, label="left", closed="left", origin=origin)
    out = grouped.agg(_AGG)
    out = out[grouped["open"].count() > 0]
    if len(out) and bars.index[0] > out.index[0]:
        out = out.iloc[1:]  # the data starts inside the first bin: its open is unknown
    if len(out) and bars.index[-1] + own < out.index[-1] + target:
        out = out.iloc[:-1]  # the last bin is not complete yet
    return validate_ohlcv(out, source=f"resampled {timeframe}")

"""Resampling bars to a larger timeframe (1m -> 5m, 1h, 1d, 1w, 1mo ...), labelled by open time.

open = first open, high = max high, low = min low, close = last close, volume = sum. Bins are
``[start, start + timeframe)`` on the calendar, in UTC: days start at 00:00, weeks on Monday
00:00 by default (``week_start`` picks another day), months on the 1st; smaller bins are
aligned to the epoch (an hour's bins start on the hour). Bins with no bar are left out (gaps
stay gaps); a first bin the data enters late (its open is unknown) and a last bin the data
does not cover to its end (still forming) are dropped.
"""
from __future__ import annotations

import pandas as pd

from datafeeds.errors import DataError
from datafeeds.ohlcv import validate_ohlcv
from datafeeds.quality import infer_timeframe
from datafeeds.timeframes import is_monthly, parse_timeframe, timeframe_delta

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_AGG = {"open": "first", "high": "max", "low": "min", "close": "last", "volume": "sum"}


def _bins(timeframe: str, week_start: str) -> tuple[pd.DateOffset | pd.Timedelta, object]:
    """The pandas frequency and origin of ``timeframe`` bins."""
    count, _ = parse_timeframe(timeframe)
    if is_monthly(timeframe):
        return pd.offsets.MonthBegin(count), "start_day"
    target = timeframe_delta(timeframe)
    if target % pd.Timedelta(days=7) == pd.Timedelta(0):  # weeks: from the chosen weekday
        first = pd.Timestamp("1970-01-05", tz="UTC")  # a Monday (the epoch was a Thursday)
        return target, first + pd.Timedelta(days=WEEKDAYS.index(week_start))
    return target, "epoch"


def resample(bars: pd.DataFrame, timeframe: str, *, source_timeframe: str | None = None,
             week_start: str = "mon") -> pd.DataFrame:
    """Aggregate validated ``bars`` into ``timeframe`` bars labelled by their open time.

    Parameters
    ----------
    bars : pandas.DataFrame
        A valid OHLCV frame (see ``validate_ohlcv``).
    timeframe : str
        Target bar size, e.g. ``5m``, ``1h``, ``1d``, ``1w``, ``1mo``.
    source_timeframe : str, optional
        Bar size of ``bars``; inferred from the most common spacing when omitted.
    week_start : str
        Weekday weekly bars open on: ``mon`` (default, ISO weeks) ... ``sun``.

    Returns
    -------
    pandas.DataFrame
        A valid OHLCV frame of complete target bars only.

    Raises
    ------
    DataError
        If ``timeframe`` is not larger than, or not a multiple of, the bars' own timeframe.
    """
    if week_start not in WEEKDAYS:
        raise DataError(f"week start {week_start!r} unknown; use one of {list(WEEKDAYS)}")
    own = timeframe_delta(source_timeframe) if source_timeframe else infer_timeframe(bars.index)
    target = timeframe_delta(timeframe)
    if own is None or target <= own or (not is_monthly(timeframe)
                                        and target % own != pd.Timedelta(0)) \
            or (is_monthly(timeframe) and pd.Timedelta(days=1) % own != pd.Timedelta(0)):
        raise DataError(f"cannot resample {own} bars to {timeframe}: the target must be a "
                        "larger multiple of the source bar size (months: of a day's divisor)")
    freq, origin = _bins(timeframe, week_start)
    grouped = bars.resample(freq, label="left", closed="left", origin=origin)
    out = grouped.agg(_AGG)
    out = out[grouped["open"].count() > 0]
    if len(out) and bars.index[0] > out.index[0]:
        out = out.iloc[1:]  # the data starts inside the first bin: its open is unknown
    if len(out) and bars.index[-1] + own < out.index[-1] + freq:
        out = out.iloc[:-1]  # the last bin is not complete yet
    return validate_ohlcv(out, source=f"resampled {timeframe}")

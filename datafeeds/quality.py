"""Checking and (only when asked) repairing bars, with a report of everything found and done.

``check_ohlcv`` is strict by default: anything that breaks the OHLCV contract raises
``DataError`` (via ``validate_ohlcv``). With ``repair=True`` it first drops rows without any
value (Yahoo's ``null`` rows) and exact duplicate rows, resolves duplicate timestamps (keeping
the last row), sorts, and drops a still-forming last candle; it never changes a value.
Either way the report lists gaps, zero-volume and flat runs, and runs of 2+ bars whose OHLCV
repeats an earlier run bar for bar under other timestamps (a classic timezone-shift defect;
single chance repeats of quiet bars are not reported).
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from datafeeds.errors import DataError
from datafeeds.ohlcv import COLUMNS, validate_ohlcv
from datafeeds.timeframes import format_timedelta, is_monthly, parse_timeframe, timeframe_delta


@dataclass(frozen=True)
class Run:
    """Consecutive bars sharing a property: first and last bar time and how many bars."""

    first: pd.Timestamp
    last: pd.Timestamp
    bars: int
    copy_of: pd.Timestamp | None = None  # repeated runs: first bar of the run they repeat

    def __str__(self) -> str:
        text = f"{self.first} .. {self.last} ({self.bars} bars)"
        return text if self.copy_of is None else f"{text} repeating the bars from {self.copy_of}"


@dataclass(frozen=True)
class Gap:
    """Bars missing between two consecutive bars."""

    after: pd.Timestamp
    before: pd.Timestamp
    missing: int

    def __str__(self) -> str:
        return f"{self.after} -> {self.before} ({self.missing} bars missing)"


@dataclass(frozen=True)
class ValidationReport:
    """What a check found (and, with repair, what it changed)."""

    source: str
    rows: int
    first: pd.Timestamp | None
    last: pd.Timestamp | None
    timeframe: pd.Timedelta | None
    repairs: tuple[str, ...] = ()
    gaps: tuple[Gap, ...] = ()
    zero_volume_runs: tuple[Run, ...] = ()
    flat_runs: tuple[Run, ...] = ()
    repeated_runs: tuple[Run, ...] = field(default=())

    def lines(self, limit: int = 10) -> list[str]:
        """Human-readable report, at most ``limit`` entries per list."""
        size = "unknown" if self.timeframe is None else format_timedelta(self.timeframe)
        out = [f"{self.source}: {self.rows} bars {self.first} .. {self.last}, bar size {size}"]
        out += [f"repaired: {r}" for r in self.repairs]
        sections = (
            ("gaps", self.gaps),
            ("zero-volume runs", self.zero_volume_runs),
            ("flat (O=H=L=C) runs", self.flat_runs),
            ("runs repeating earlier bars' OHLCV bar for bar (shifted duplicates)",
             self.repeated_runs),
        )
        for title, items in sections:
            if not items:
                continue
            detail = ""
            if title == "gaps":
                largest = max(items, key=lambda g: g.missing)
                detail = f", largest {largest}"
            out.append(f"{title}: {len(items)}{detail}")
            out += [f"  {item}" for item in items[:limit]]
            if len(items) > limit:
                out.append(f"  ... {len(items) - limit} more")
        return out


def _runs(index: pd.DatetimeIndex, mask: np.ndarray) -> tuple[Run, ...]:
    """Maximal runs of consecutive True in ``mask``."""
    if not mask.any():
        return ()
    padded = np.concatenate([[False], mask, [False]]).astype(np.int8)
    starts = np.flatnonzero(np.diff(padded) == 1)
    ends = np.flatnonzero(np.diff(padded) == -1) - 1
    return tuple(Run(index[s], index[e], int(e - s + 1)) for s, e in zip(starts, ends,
                                                                           strict=True))


def infer_timeframe(index: pd.DatetimeIndex) -> pd.Timedelta | None:
    """The most common spacing between consecutive bars (None for fewer than 2 bars)."""
    if len(index) < 2:
        return None
    steps = np.diff(index.as_unit("ns").asi8)
    values, counts = np.unique(steps, return_counts=True)
    return pd.Timedelta(int(values[np.argmax(counts)]), "ns")


def resolve_timeframe(index: pd.DatetimeIndex, timeframe: str | None, source: str) -> str:
    """The bar size of bars at ``index``: ``timeframe`` checked against their most common
    spacing, or that spacing when ``timeframe`` is None.

    Raises
    ------
    DataError
        When the bars are not ``timeframe`` apart (naming both), or there are too few bars
        to tell and none was given.
    """
    spacing = infer_timeframe(index)
    if timeframe is None:
        if spacing is None:
            raise DataError(f"{source}: one bar only, its size cannot be inferred; pass "
                            "--timeframe, e.g. -t 1d")
        return format_timedelta(spacing)
    if spacing is not None and is_monthly(timeframe):  # calendar months: 28 to 31 days each
        months = parse_timeframe(timeframe)[0]
        if pd.Timedelta(days=28 * months) <= spacing <= pd.Timedelta(days=31 * months):
            return timeframe
    if spacing is not None and spacing != timeframe_delta(timeframe):
        raise DataError(f"{source}: --timeframe {timeframe} does not match the bars, which are "
                        f"{format_timedelta(spacing)} apart (their most common spacing); pass "
                        f"-t {format_timedelta(spacing)} or leave it out to infer it")
    return timeframe


def _gaps(index: pd.DatetimeIndex, step: pd.Timedelta | None) -> tuple[Gap, ...]:
    """Missing bars between consecutive bars; daily bars of a market closed at weekends
    (no Saturday or Sunday bar at all) count only missing weekdays."""
    if step is None or step <= pd.Timedelta(0):
        return ()
    ns = index.as_unit("ns").asi8
    jumps = np.diff(ns)
    where = np.flatnonzero(jumps > step.value)
    missing = jumps[where] // step.value - 1
    if step == pd.Timedelta(days=1) and not (index.day_of_week >= 5).any():
        days = index.tz_convert("UTC").tz_localize(None).values.astype("datetime64[D]")
        missing = np.busday_count(days[where] + 1, days[where + 1])
    return tuple(Gap(index[i], index[i + 1], int(m)) for i, m in zip(where, missing,
                                                                      strict=True) if m > 0)


def _repeated(index: pd.DatetimeIndex, frame: pd.DataFrame) -> tuple[Run, ...]:
    """Runs of 2+ consecutive bars whose OHLCV repeats an earlier stretch bar for bar (a
    shifted copy); pairs of flat bars (quiet or stale quotes repeat by nature) do not count."""
    if len(frame) < 3:
        return ()
    values = frame[list(COLUMNS)].to_numpy()
    flat = _flat(frame)
    pairs = pd.DataFrame(np.hstack([values[:-1], values[1:]]))
    hashes = pd.util.hash_pandas_object(pairs, index=False).to_numpy()
    _, first_seen, inverse = np.unique(hashes, return_index=True, return_inverse=True)
    source = first_seen[inverse]  # where each pair first appeared
    repeat = (pairs.duplicated(keep="first").to_numpy() & ~(flat[:-1] & flat[1:]))
    flags = np.zeros(len(frame), dtype=bool)
    flags[:-1] |= repeat
    flags[1:] |= repeat
    return tuple(Run(r.first, r.last, r.bars, index[source[index.get_loc(r.first)]])
                 for r in _runs(index, flags))


def _flat(frame: pd.DataFrame) -> np.ndarray:
    o, h, lo, c = (frame[k].to_numpy() for k in ("open", "high", "low", "close"))
    return (o == h) & (h == lo) & (lo == c)


def _repair(frame: pd.DataFrame, timeframe: str | None, now: pd.Timestamp | None
            ) -> tuple[pd.DataFrame, list[str]]:
    """Drop exact duplicates, keep the last of duplicate timestamps, sort, drop forming bar."""
    repairs: list[str] = []
    with_time = frame.reset_index(names="__time__")
    present = [c for c in COLUMNS if c in with_time]
    empty = with_time[present].isna().all(axis=1) if present else pd.Series(False)
    if empty.any():  # Yahoo's "null" rows: a timestamp and no value at all
        repairs.append(f"dropped {int(empty.sum())} row(s) without any value, first at "
                       f"{with_time['__time__'][empty].iloc[0]}")
        with_time = with_time[~empty]
    exact = with_time.duplicated(keep="first")
    if exact.any():
        repairs.append(f"dropped {int(exact.sum())} exact duplicate row(s), first at "
                       f"{with_time['__time__'][exact].iloc[0]}")
        with_time = with_time[~exact]
    if not with_time["__time__"].is_monotonic_increasing:
        repairs.append("sorted rows by time")
        with_time = with_time.sort_values("__time__", kind="stable")
    clash = with_time["__time__"].duplicated(keep="last")
    if clash.any():
        repairs.append(f"{int(clash.sum())} timestamp(s) had differing rows, kept the last, "
                       f"first at {with_time['__time__'][clash].iloc[0]}")
        with_time = with_time[~clash]
    out = with_time.set_index("__time__").rename_axis("datetime")
    if timeframe is not None and now is not None:
        out, dropped = drop_forming(out, timeframe, now)
        repairs += dropped
    return out, repairs


def drop_forming(frame: pd.DataFrame, timeframe: str, now: pd.Timestamp
                 ) -> tuple[pd.DataFrame, list[str]]:
    """Drop the last bar if it is still forming (``open + timeframe > now``).

    Parameters
    ----------
    frame : pandas.DataFrame
        Bars sorted by their (tz-aware) open time.
    timeframe : str
        Bar size such as ``1h``.
    now : pandas.Timestamp
        The current time (tz-aware).

    Returns
    -------
    (pandas.DataFrame, list of str)
        The closed bars, and the repair made (empty when the last bar was closed).
    """
    if len(frame) and frame.index[-1] + timeframe_delta(timeframe) > now:
        return frame.iloc[:-1], [f"dropped the forming candle opened at {frame.index[-1]}"]
    return frame, []


def check_ohlcv(frame: pd.DataFrame, *, source: str = "<frame>", repair: bool = False,
                timeframe: str | None = None, now: pd.Timestamp | None = None,
                where: Callable[[np.ndarray], str] | None = None
                ) -> tuple[pd.DataFrame, ValidationReport]:
    """Validate ``frame`` (repairing first if asked) and describe it.

    Parameters
    ----------
    frame : pandas.DataFrame
        Bars with a tz-aware DatetimeIndex and OHLCV columns, in any order.
    source : str
        Named in errors and in the report.
    repair : bool
        Drop rows without any value and exact duplicates, resolve duplicate timestamps (keep
        last), sort, and drop a forming last candle (needs ``timeframe`` and ``now``). Values
        are never changed; every repair is listed in the report.
    timeframe : str, optional
        Bar size (``1h``...), for the forming-candle check and gaps; inferred otherwise.
    now : pandas.Timestamp, optional
        Current time; a last bar with ``open + timeframe > now`` is still forming.
    where : callable, optional
        Names offending rows in errors (see ``validate_ohlcv``); ignored when repairing,
        which moves rows.

    Returns
    -------
    (pandas.DataFrame, ValidationReport)
        The valid frame and the report.

    Raises
    ------
    DataError
        If the bars break the contract (after repair, when asked).
    """
    repairs: list[str] = []
    if repair and isinstance(frame.index, pd.DatetimeIndex):
        frame, repairs = _repair(frame, timeframe, now)
    valid = validate_ohlcv(frame, source=source, where=None if repair else where)
    step = timeframe_delta(timeframe) if timeframe else infer_timeframe(valid.index)
    zero = (valid["volume"] == 0).to_numpy()
    report = ValidationReport(
        source=source,
        rows=len(valid),
        first=valid.index[0],
        last=valid.index[-1],
        timeframe=step,
        repairs=tuple(repairs),
        gaps=_gaps(valid.index, step),
        zero_volume_runs=_runs(valid.index, zero),
        flat_runs=_runs(valid.index, _flat(valid)),
        repeated_runs=_repeated(valid.index, valid),
    )
    return valid, report

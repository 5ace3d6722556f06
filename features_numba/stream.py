"""Streaming engine: one closed bar in, one feature row out, for trading.

O(1) per bar and no allocation per bar: one compiled call advances every feature's state,
with exactly the arithmetic of the batch engine, so the rows are bit-identical to the batch
matrix. The state is a flat float array: JSON-serialisable, so a bot can save it and restart.

A spec reading other series (``sources``) keeps one stream per series; another market's bars
(or a series' values) are ``push``-ed as they close (are published), in any batches, and each
row takes them by the as-of rule of ``sources``, as the batch engine does.
"""
from __future__ import annotations

import math

import numpy as np
import pandas as pd

from features_numba.batch import _arrays, _bar_times, _columns, _series_values, other_market
from features_numba.errors import FeatureError
from features_numba.sources import Source
from features_numba.spec import FeatureSpec
from features_numba.steps import update_nb, warm_nb


class Bucket:
    """One source series in streaming: the bars of its bucket still forming, the stream of its
    closed buckets, and the row of the last one (what ``bucket_nb`` and the batch engine do)."""

    def __init__(self, source: Source, spec: FeatureSpec, step: int) -> None:
        self.source, self.step = source, step
        self.stream = FeatureStream(spec)
        self.start: int | None = None  # open time of the forming bucket
        self.bar = [0.0] * 5
        self.closed = -1  # open time of the last closed bucket
        self.row = self.stream._row

    def add(self, o: float, h: float, l: float, c: float, v: float, ts: int) -> None:  # noqa: E741
        """A bar of the series, after every earlier one."""
        start = ts - ts % self.step
        if start != self.start:
            self.close()
            self.start, self.bar = start, [o, h, l, c, v]
            return
        bar = self.bar
        if h > bar[1]:
            bar[1] = h
        if l < bar[2]:
            bar[2] = l
        bar[3] = c
        bar[4] = bar[4] + v

    def close(self) -> None:
        """The forming bucket is complete: advance the series' features by it."""
        if self.start is not None:
            self.stream.update(*self.bar, self.start)
            self.closed, self.start = self.start, None

    def due(self, ts: int) -> int:
        """Bars opening before this time may be added before the row of ``ts``."""
        return ts - ts % self.step

    def as_of(self, ts: int) -> np.ndarray | None:
        """The row of the bucket that closed last by ``ts``; None if that bucket is missing
        (the bars of ``ts``'s own bucket must not have been added yet)."""
        boundary = ts - ts % self.step
        if self.start is not None and self.start < boundary:
            self.close()
        return self.row if self.closed == boundary - self.step else None


class Published:
    """A series of values in streaming: each value, as it is added, advances the series'
    features (the value read as a bar); a row reads the last value known by its time."""

    def __init__(self, source: Source, spec: FeatureSpec) -> None:
        self.source = source
        self.stream = FeatureStream(spec)
        self.row = self.stream._row

    def add(self, o: float, h: float, l: float, c: float, v: float, ts: int) -> None:  # noqa: E741
        """A value (as a bar) known from ``ts``, after every earlier one."""
        self.stream.update(o, h, l, c, v, ts)

    @staticmethod
    def due(ts: int) -> int:
        """Values known at or before ``ts`` may be added before its row."""
        return ts + 1

    def as_of(self, ts: int) -> np.ndarray | None:
        """The row of the last value added (None before the first)."""
        return self.row if self.stream.n_seen else None


class _Pushed:
    """Another market's pushed bars (or a series' values) not yet taken by every bucket
    reading them."""

    def __init__(self, key: str, readers: list[Bucket | Published]) -> None:
        self.key = key
        self.bars: list[tuple[float, float, float, float, float, int]] = []
        self.taken = [0] * len(readers)  # per reader: bars taken from the list
        self.readers = readers
        self.last: int | None = None  # time of the last bar pushed

    def push(self, frame: pd.DataFrame) -> None:
        if isinstance(self.readers[0], Published):
            ts, arrays = _series_values(frame, self.key)
        else:
            arrays, ts = _arrays(*_columns(frame), _bar_times(frame))
        new = ts > self.last if self.last is not None else np.ones(len(ts), bool)  # once each
        if new.any():
            self.bars.extend(zip(*(a[new].tolist() for a in arrays), ts[new].tolist(),
                                 strict=True))
            self.last = int(ts[new][-1])

    def take(self, ts: int) -> None:
        """Add to each reader the bars due before the row of ``ts``."""
        bars = self.bars
        for k, reader in enumerate(self.readers):
            due = reader.due(ts)
            i = self.taken[k]
            while i < len(bars) and bars[i][5] < due:
                reader.add(*bars[i])
                i += 1
            self.taken[k] = i
        done = min(self.taken)
        if done > 4096:  # forget what every bucket has taken
            del bars[:done]
            self.taken = [i - done for i in self.taken]


class FeatureStream:
    """Incremental features for ``spec``.

    ``update`` returns the engine's own row buffer: it is overwritten by the next update, so
    copy it to keep it. For a spec reading other series it is a ``JoinedStream``.
    """

    def __new__(cls, spec: FeatureSpec) -> FeatureStream:
        return object.__new__(cls if spec.own_only else JoinedStream)

    def __init__(self, spec: FeatureSpec) -> None:
        self.spec = spec
        self._codes, self._params, self._offsets = spec.layout()
        self._state = np.zeros(self._offsets[-1], dtype=np.float64)
        self._row = np.empty(len(spec), dtype=np.float64)
        self._seen = 0

    @property
    def n_seen(self) -> int:
        """Bars fed so far."""
        return self._seen

    def update(self, open_: float, high: float, low: float, close: float, volume: float,
               ts_ns: int) -> np.ndarray:
        """Advance by one closed bar (open time ``ts_ns``, int ns UTC) and return its row."""
        update_nb(self._codes, self._params, self._offsets, self._state, float(open_),
                  float(high), float(low), float(close), float(volume), int(ts_ns), self._row)
        self._seen += 1
        return self._row

    def push(self, market: str, bars: pd.DataFrame) -> None:
        """Bars of another market the spec reads, as they close (this spec reads none)."""
        raise FeatureError(f"these features read no other market (got bars of {market})")

    def warm(self, ohlcv: pd.DataFrame, others: dict[str, pd.DataFrame] | None = None) -> None:
        """Feed history in one compiled pass (same steps as :meth:`update`, bar by bar);
        ``others`` is for specs reading other series (``JoinedStream``)."""
        n = len(ohlcv)
        if n == 0:
            return
        arrays, ts = _arrays(*(ohlcv[c].to_numpy() for c in ("open", "high", "low", "close",
                                                             "volume")), _bar_times(ohlcv))
        warm_nb(self._codes, self._params, self._offsets, self._state, *arrays, ts, self._row)
        self._seen += n

    def state_dict(self) -> dict:
        """The full state as JSON-ready data (floats as Python floats, NaN kept as NaN)."""
        return {"spec_hash": self.spec.hash, "n_seen": self._seen,
                "state": self._state.tolist(), "row": self._row.tolist()}

    def load_state(self, data: dict) -> None:
        """Restore a state saved by :meth:`state_dict` for the same spec."""
        if data.get("spec_hash") != self.spec.hash:
            raise FeatureError("saved feature state belongs to another feature spec "
                               f"(hash {str(data.get('spec_hash'))[:12]}, expected "
                               f"{self.spec.hash[:12]}); warm the stream from history instead")
        state = np.asarray(data["state"], dtype=np.float64)
        if state.shape != self._state.shape:
            raise FeatureError(f"saved feature state has {state.size} values, expected "
                               f"{self._state.size}")
        self._state[:] = state
        self._row[:] = np.asarray(data["row"], dtype=np.float64)
        self._seen = int(data["n_seen"])


class JoinedStream(FeatureStream):
    """The stream of a spec reading other series: a stream of the model's own features, one
    ``Bucket`` per other series, and the as-of join of their rows."""

    def __init__(self, spec: FeatureSpec) -> None:
        self.spec = spec
        self._row = np.full(len(spec), np.nan)
        self._seen = 0
        self._own: tuple[FeatureStream, np.ndarray] | None = None
        self._buckets: list[tuple[Bucket | Published, np.ndarray]] = []
        for source, sub, at in spec.sources:
            if source.own:
                self._own = FeatureStream(sub), at
            elif source.series is not None:
                self._buckets.append((Published(source, sub), at))
            else:
                self._buckets.append((Bucket(source, sub, spec.step_ns(source)), at))
        self._mine = [b for b, _ in self._buckets if b.source.input is None]
        self._pushed = {key: _Pushed(key, [b for b, _ in self._buckets
                                           if b.source.input == key])
                        for key in spec.inputs}

    def push(self, market: str, bars: pd.DataFrame) -> None:
        """Bars of another market the spec reads (or the values of a series, under its
        ``Source.input`` name), in time order; those at or before the last pushed one are
        ignored. Push each bar before the first row opening at or after its close, each value
        before the first row opening at or after it is known (a later push would leave that
        row's value older or NaN, where the batch has it)."""
        pushed = self._pushed.get(market)
        if pushed is None:
            raise FeatureError(f"these features read no {market} "
                               f"(they read {list(self.spec.inputs)})")
        pushed.push(bars)

    def update(self, open_: float, high: float, low: float, close: float, volume: float,
               ts_ns: int) -> np.ndarray:
        ts = int(ts_ns)
        for pushed in self._pushed.values():
            pushed.take(ts)
        row = self._row
        if self._own is not None:
            own, at = self._own
            row[at] = own.update(open_, high, low, close, volume, ts)
        for bucket, at in self._buckets:
            values = bucket.as_of(ts)
            row[at] = math.nan if values is None else values
        for bucket in self._mine:  # after the row: its own bar never reaches its own row
            bucket.add(float(open_), float(high), float(low), float(close), float(volume), ts)
        self._seen += 1
        return row

    def warm(self, ohlcv: pd.DataFrame, others: dict[str, pd.DataFrame] | None = None) -> None:
        """Feed history bar by bar, after pushing ``others`` (each market the spec reads, if
        not pushed before)."""
        for key, pushed in self._pushed.items():
            if others is not None and key in others or pushed.last is None:
                self.push(key, other_market(others, key))
        arrays, ts = _arrays(*_columns(ohlcv), _bar_times(ohlcv))
        for bar in zip(*(a.tolist() for a in arrays), ts.tolist(), strict=True):
            self.update(*bar)

    def state_dict(self) -> dict:
        raise FeatureError(_NOT_SAVED)

    def load_state(self, data: dict) -> None:
        raise FeatureError(_NOT_SAVED)


_NOT_SAVED = ("the state of features reading other series is not saved; warm the stream from "
              "history instead")

"""``NumpyData``: a backtrader feed over an OHLCV frame, preloaded into plain arrays.

backtrader's stock ``PandasData`` spends about 50 µs a bar on per-column ``iloc`` lookups;
this feed converts the columns once and only copies numbers in ``_load``. Bar times are the
UTC bar open times, stored exactly as ``bt.date2num`` of the naive UTC datetime would, so it
yields the same bars as ``PandasData`` on the same frame. Extra numeric columns can ride along
as extra lines.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from datafeeds.bt.compat import bt
from datafeeds.bt.dates import date2num
from datafeeds.errors import DataError
from datafeeds.timeframes import parse_timeframe

_OHLCV = ("open", "high", "low", "close", "volume")
_BT_UNITS = {"s": (bt.TimeFrame.Seconds, 1), "m": (bt.TimeFrame.Minutes, 1),
             "h": (bt.TimeFrame.Minutes, 60), "d": (bt.TimeFrame.Days, 1),
             "w": (bt.TimeFrame.Weeks, 1), "mo": (bt.TimeFrame.Months, 1)}


def bt_timeframe(timeframe: str) -> tuple[int, int]:
    """``"1h"`` -> ``(bt.TimeFrame.Minutes, 60)``: backtrader's timeframe and compression."""
    count, unit = parse_timeframe(timeframe)
    frame, scale = _BT_UNITS[unit]
    return frame, count * scale


class NumpyData(bt.feed.DataBase):
    """Preloaded feed; build it with :meth:`from_frame`."""

    params = (("extra", ()),)

    @classmethod
    def from_frame(cls, ohlcv: pd.DataFrame, *, timeframe: str | None = None,
                   name: str | None = None,
                   extra: dict[str, np.ndarray] | None = None) -> NumpyData:
        """A feed over a validated OHLCV frame.

        Parameters
        ----------
        ohlcv : pandas.DataFrame
            Bars as in the OHLCV contract. Any timezone is converted to UTC (a naive index is
            taken as UTC): ``data.datetime.datetime(0)`` is the naive UTC bar open time.
        timeframe : str, optional
            Bar size such as ``1h`` or ``1d``, so backtrader (analyzers, plots) knows it.
        name : str, optional
            Feed name shown in plots.
        extra : dict of str to numpy.ndarray, optional
            Extra per-bar values, each exposed as a line of that name.

        Returns
        -------
        NumpyData
            The feed, for ``cerebro.adddata``; open interest is NaN as with ``PandasData``.

        Raises
        ------
        DataError
            For an extra line of the wrong length or a name backtrader already uses.
        """
        extra = extra or {}
        taken = set(cls.lines.getlinealiases()) | {"openinterest"}
        for key, values in extra.items():
            if key in taken or not key.isidentifier():
                raise DataError(f"extra line name {key!r} is taken or not a Python name; "
                                f"pick another (taken: {sorted(taken)})")
            if np.ndim(values) != 1 or len(values) != len(ohlcv):
                raise DataError(f"extra line {key!r} has shape {np.shape(values)} for "
                                f"{len(ohlcv)} bars; expected one value per bar")
        feed_cls = cls
        if extra:  # backtrader lines are declared on the class: make one with these lines
            feed_cls = type(f"{cls.__name__}_{'_'.join(extra)}", (cls,),
                            {"lines": tuple(extra)})
        kwargs: dict = {"dataname": ohlcv, "extra": tuple(extra.items())}
        if timeframe is not None:
            kwargs["timeframe"], kwargs["compression"] = bt_timeframe(timeframe)
        if name is not None:
            kwargs["name"] = name
        return feed_cls(**kwargs)

    def start(self) -> None:
        super().start()
        frame: pd.DataFrame = self.p.dataname
        index = frame.index.tz_convert("UTC") if frame.index.tz else frame.index
        columns = [date2num(index.as_unit("ns").asi8)]
        columns += [frame[c].to_numpy(np.float64) for c in _OHLCV]
        lines = [self.lines.datetime, self.lines.open, self.lines.high, self.lines.low,
                 self.lines.close, self.lines.volume]
        for key, values in self.p.extra:
            columns.append(np.asarray(values, dtype=np.float64))
            lines.append(getattr(self.lines, key))
        # plain lists: indexing them is several times cheaper than indexing numpy arrays
        self._columns = [(line, column.tolist()) for line, column in zip(lines, columns,
                                                                            strict=True)]
        self._n = len(frame)
        self._i = 0

    def _load(self) -> bool:
        i = self._i
        if i >= self._n:
            return False
        for line, values in self._columns:
            line[0] = values[i]
        self._i = i + 1
        return True

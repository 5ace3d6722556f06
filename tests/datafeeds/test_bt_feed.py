from __future__ import annotations

import numpy as np
import pytest

from datafeeds import DataError
from datafeeds.bt.compat import bt
from datafeeds.bt.feed import NumpyData, bt_timeframe


class _Record(bt.Strategy):
    def __init__(self) -> None:
        self.rows = []

    def next(self) -> None:
        d = self.data
        self.rows.append((d.datetime[0], d.open[0], d.high[0], d.low[0], d.close[0],
                          d.volume[0], d.openinterest[0]))


def _run(feed):
    cerebro = bt.Cerebro(stdstats=False)
    cerebro.adddata(feed)
    cerebro.addstrategy(_Record)
    return cerebro.run()[0]


def test_numpy_feed_yields_the_bars_pandas_data_yields(btc_bars):
    bars = btc_bars.iloc[:3000]
    stock = _run(bt.feeds.PandasData(dataname=bars.tz_convert(None))).rows
    ours = _run(NumpyData.from_frame(bars, timeframe="1h")).rows
    np.testing.assert_array_equal(np.array(ours), np.array(stock))  # NaN open interest too
    assert bt.num2date(ours[0][0]) == bars.index[0].tz_convert(None).to_pydatetime()


def test_extra_lines_ride_along(btc_bars):
    bars = btc_bars.iloc[:200]
    signal = np.arange(200, dtype=float)

    class Read(bt.Strategy):
        def __init__(self) -> None:
            self.seen = []

        def next(self) -> None:
            self.seen.append(self.data.signal[0])

    cerebro = bt.Cerebro(stdstats=False)
    cerebro.adddata(NumpyData.from_frame(bars, extra={"signal": signal}))
    cerebro.addstrategy(Read)
    assert cerebro.run()[0].seen == signal.tolist()


def test_timeframes_map_to_backtrader():
    assert bt_timeframe("1h") == (bt.TimeFrame.Minutes, 60)
    assert bt_timeframe("5m") == (bt.TimeFrame.Minutes, 5)
    assert bt_timeframe("1d") == (bt.TimeFrame.Days, 1)


def test_bars_carry_the_utc_open_time_whatever_the_frame_zone(btc_bars):
    bars = btc_bars.iloc[:50]

    class Times(bt.Strategy):
        def __init__(self) -> None:
            self.seen = []

        def next(self) -> None:
            self.seen.append(self.data.datetime.datetime(0))

    for frame in (bars, bars.tz_convert("America/New_York")):
        cerebro = bt.Cerebro(stdstats=False)
        cerebro.adddata(NumpyData.from_frame(frame, timeframe="1h"))
        cerebro.addstrategy(Times)
        seen = cerebro.run()[0].seen
        assert seen == list(bars.index.tz_convert(None).to_pydatetime())


def test_bad_extra_lines_are_refused(btc_bars):
    bars = btc_bars.iloc[:10]
    with pytest.raises(DataError, match="one value per bar"):
        NumpyData.from_frame(bars, extra={"signal": np.zeros(9)})
    with pytest.raises(DataError, match="taken"):
        NumpyData.from_frame(bars, extra={"close": np.zeros(10)})

"""``LiveFeed``: a backtrader live data feed of closed candles polled from a ccxt exchange.

At start it hands out the warm-up history (status DELAYED: nothing may be traded on it), then
every bar as it closes by the exchange's clock (see ``datafeeds.exchange.candles``). Each bar's
status is put to ``notify_data`` before the bar is delivered: LIVE for the newest closed bar,
DELAYED for backfilled or late bars, DISCONNECTED while the exchange cannot be reached, so a
strategy can read ``data._laststatus`` in ``next`` and trade only on LIVE bars.

Bar times go through ``datafeeds.bt.dates``, the same conversion as the historical feed.
"""
from __future__ import annotations

import threading
import time
from collections import deque

import numpy as np

from datafeeds.bt.compat import bt
from datafeeds.bt.dates import date2num
from datafeeds.bt.feed import bt_timeframe
from datafeeds.exchange.candles import DELAYED, DISCONNECTED, LIVE, Bar, CandlePoller

_STATUS = {LIVE: bt.feed.DataBase.LIVE, DELAYED: bt.feed.DataBase.DELAYED,
           DISCONNECTED: bt.feed.DataBase.DISCONNECTED}


class LiveFeed(bt.feed.DataBase):
    """Live closed bars for Cerebro; build it with :meth:`over`.

    Params
    ------
    poller : CandlePoller
        Where bars come from.
    history : int
        Closed bars fetched at start to warm the strategy up (delivered as DELAYED).
    poll_interval : float
        Seconds between polls while waiting for the next bar.
    max_bars : int, optional
        Stop after this many bars past the history (a bounded run).
    stop : threading.Event, optional
        Set it (a signal handler) to end the run after the current bar.
    """

    params = (("poller", None), ("history", 1000), ("poll_interval", 1.0), ("max_bars", None),
              ("stop", None))

    @classmethod
    def over(cls, poller: CandlePoller, *, history: int, poll_interval: float,
             max_bars: int | None = None, stop: threading.Event | None = None,
             name: str | None = None) -> LiveFeed:
        """A feed over ``poller`` named ``name`` (default its symbol), with backtrader told
        the bar size."""
        frame, compression = bt_timeframe(poller.timeframe)
        return cls(poller=poller, history=history, poll_interval=poll_interval,
                   max_bars=max_bars, stop=stop, timeframe=frame, compression=compression,
                   name=name or poller.symbol)

    def islive(self) -> bool:
        """Tell Cerebro to run bar by bar, without preloading."""
        return True

    def haslivedata(self) -> bool:
        """Whether bars are queued for delivery (Cerebro then does not wait)."""
        return bool(self._queue)

    def start(self) -> None:
        super().start()
        self._queue: deque[tuple[Bar, str]] = deque()
        self.delivered = 0  # bars delivered after the history
        self.in_history = True
        self._next_poll = 0.0
        poller: CandlePoller = self.p.poller
        history = poller.history(self.p.history)
        self.history_bars = self._history_left = len(history)
        times = history.index.as_unit("ms").asi8
        for t, row in zip(times, history.to_numpy(), strict=True):
            self._queue.append((Bar(int(t), *map(float, row), live=False), DELAYED))

    def _done(self) -> bool:
        """Whether the run is over: stopped, or ``max_bars`` delivered past the history."""
        stop = self.p.stop
        if stop is not None and stop.is_set():
            return True
        return self._history_left == 0 and self.p.max_bars is not None and \
            self.delivered >= self.p.max_bars

    def _poll(self) -> None:
        """Wait for the next poll time (or a stop), then poll once."""
        wait = self._next_poll - time.monotonic()
        stop = self.p.stop
        if wait > 0:
            if stop is not None:
                stop.wait(wait)
            else:
                time.sleep(wait)
        if stop is not None and stop.is_set():
            return
        self._next_poll = time.monotonic() + self.p.poll_interval
        poller: CandlePoller = self.p.poller
        bars = poller.poll()
        if not bars and poller.status != LIVE:
            self.put_notification(_STATUS[poller.status])
        for bar in bars:
            self._queue.append((bar, LIVE if bar.live else DELAYED))

    def _load(self) -> bool | None:
        """Deliver the next bar; None while none has closed yet; False when the run ends."""
        if self._done():
            return False
        if not self._queue:
            self._poll()
            if not self._queue:
                return False if self._done() else None
        bar, status = self._queue.popleft()
        self.put_notification(_STATUS[status])
        lines = self.lines
        lines.datetime[0] = float(date2num(np.array([bar.time_ms * 1_000_000]))[0])
        lines.open[0], lines.high[0], lines.low[0] = bar.open, bar.high, bar.low
        lines.close[0], lines.volume[0] = bar.close, bar.volume
        lines.openinterest[0] = 0.0
        self.in_history = self._history_left > 0  # warm-up: never traded on
        if self.in_history:
            self._history_left -= 1
        else:
            self.delivered += 1
        return True

"""``LiveFeed``: a backtrader live data feed of closed candles polled from a ccxt exchange.

At start it hands out the warm-up history (status DELAYED: nothing may be traded on it), then
every bar as it closes by the exchange's clock (see ``datafeeds.exchange.candles``). Each bar's
status is put to ``notify_data`` before the bar is delivered: LIVE for the newest closed bar,
DELAYED for backfilled or late bars, DISCONNECTED while the exchange cannot be reached, so a
strategy can read ``data._laststatus`` in ``next`` and trade only on LIVE bars.

Bar times go through ``datafeeds.bt.dates``, the same conversion as the historical feed.

Several feeds in one Cerebro (a portfolio) poll in the background (``background=True``), each
in its own thread, so one market whose exchange hangs does not hold the others up; a shared
``BarSequence`` keeps the order of decisions fixed: a feed holds back a new live bar while a
feed before it still lacks a bar that old, for at most ``grace`` seconds.
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


class BarSequence:
    """The order in which several background feeds hand out bars that close together: the
    order they were registered in, unless an earlier feed is ``grace`` seconds late."""

    def __init__(self, grace: float) -> None:
        self.grace = grace
        self.arrived = threading.Condition()  # notified whenever a feed has a new bar
        self._latest: list[int] = []  # bar time (ms) each feed delivered last
        self._held: dict[tuple[int, int], float] = {}  # (feed, bar) -> when it was held

    def register(self) -> int:
        """A new feed's place in the order."""
        self._latest.append(-1)
        return len(self._latest) - 1

    def may_deliver(self, place: int, bar_ms: int) -> bool:
        """Whether the feed at ``place`` may hand out its live bar of ``bar_ms`` now."""
        if all(t >= bar_ms for t in self._latest[:place]):
            self._held.pop((place, bar_ms), None)
            return True
        since = self._held.setdefault((place, bar_ms), time.monotonic())
        if time.monotonic() - since < self.grace:
            return False
        del self._held[(place, bar_ms)]  # the earlier feed is late: go on without it
        return True

    def delivered(self, place: int, bar_ms: int) -> None:
        """The feed at ``place`` handed out its bar of ``bar_ms``."""
        self._latest[place] = max(self._latest[place], bar_ms)


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
    sequence : BarSequence, optional
        Poll in a background thread and hand out live bars in this sequence's order (one of
        several feeds); None polls in Cerebro's thread, when a bar is asked for.
    """

    params = (("poller", None), ("history", 1000), ("poll_interval", 1.0), ("max_bars", None),
              ("stop", None), ("sequence", None))

    @classmethod
    def over(cls, poller: CandlePoller, *, history: int, poll_interval: float,
             max_bars: int | None = None, stop: threading.Event | None = None,
             name: str | None = None, sequence: BarSequence | None = None) -> LiveFeed:
        """A feed over ``poller`` named ``name`` (default its symbol), with backtrader told
        the bar size."""
        frame, compression = bt_timeframe(poller.timeframe)
        return cls(poller=poller, history=history, poll_interval=poll_interval,
                   max_bars=max_bars, stop=stop, timeframe=frame, compression=compression,
                   name=name or poller.symbol, sequence=sequence)

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
        sequence: BarSequence | None = self.p.sequence
        self._ended = threading.Event()
        self._thread = None
        if sequence is not None:
            self._place = sequence.register()
            self._thread = threading.Thread(target=self._poll_loop, daemon=True,
                                            name=f"poll {self._name}")
            self._thread.start()

    def stop(self) -> None:
        """End the background poller, if any."""
        self._ended.set()
        if self._thread is not None:
            self._thread.join(timeout=self.p.poll_interval + 1.0)
        super().stop()

    def _poll_loop(self) -> None:
        """The background poller: poll until the run ends, telling the sequence of each bar."""
        sequence: BarSequence = self.p.sequence
        while not self._ended.is_set() and not self._done():
            before = len(self._queue)
            self._poll()
            if len(self._queue) != before:
                with sequence.arrived:
                    sequence.arrived.notify_all()

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
        stop = self.p.stop or self._ended
        if wait > 0:
            stop.wait(wait)
        if stop.is_set():
            return
        self._next_poll = time.monotonic() + self.p.poll_interval
        poller: CandlePoller = self.p.poller
        bars = poller.poll()
        if not bars and poller.status != LIVE:
            self.put_notification(_STATUS[poller.status])
        for bar in bars:
            self._queue.append((bar, LIVE if bar.live else DELAYED))

    def _load(self) -> bool | None:
        """Deliver the next bar; None while none has closed yet (or an earlier feed's bar of
        the same close is awaited); False when the run ends."""
        if self._done():
            return False
        sequence: BarSequence | None = self.p.sequence
        if not self._queue:
            if sequence is None:
                self._poll()
            else:  # the poller thread fills the queue: wait a moment for any feed's bar
                with sequence.arrived:
                    sequence.arrived.wait(min(self.p.poll_interval, 0.05) or 0.001)
            if not self._queue:
                return False if self._done() else None
        bar, status = self._queue[0]
        if sequence is not None and bar.live:
            if not sequence.may_deliver(self._place, bar.time_ms):
                return None
            sequence.delivered(self._place, bar.time_ms)
        self._queue.popleft()
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

"""Notifications: what a running bot tells its operator, posted as JSON to webhooks.

``Notifier`` listens to the journal (``Journal.listen``), so whatever is journaled is what is
told: fills, orders the exchange rejected or the bot refused, kill-switch trips, position
mismatches, model swaps and refusals, the operator's control actions, and a summary of each
UTC day when the next begins; a logging handler adds every error the bot logs.

Delivery never touches the trading loop: ``publish`` only queues. Each URL has its own thread
that posts in order, retrying a failed post with backoff (0.5 s doubling to 30 s) until it goes
through, so a sink that is down for a while gets everything, in order, once it is back. A
channel that fails is logged once when it starts failing and once when it recovers, never per
message. URLs (a Slack or Telegram URL holds a secret) are logged by host only.

Formats: ``json`` (kind, market, time, text, detail), ``slack`` (``{"text"}``), ``discord``
(``{"content"}``), ``telegram`` (``{"text"}``; put ``chat_id`` in the URL's query).
"""
from __future__ import annotations

import json
import logging
import queue
import threading
import time
from collections import Counter
from datetime import UTC, datetime
from urllib.parse import urlsplit

log = logging.getLogger(__name__)
FORMATS = ("json", "slack", "discord", "telegram")
KINDS = ("fill", "rejected", "refused", "error", "kill_switch", "position_mismatch",
         "model_swap", "model_refused", "control", "daily_summary", "drift",
         "drift_cleared", "drift_rollback")
BACKOFF_S = (0.5, 30.0)  # first retry delay, the longest


def host_of(url: str) -> str:
    """How a URL is logged: its scheme and host (paths and queries may hold secrets)."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.hostname or '?'}"


def _text(kind: str, market: str, detail: dict) -> str:
    """One human line for a notification."""
    where = f"[{market}] " if market else ""
    if kind == "fill":
        return (f"{where}filled: {detail['side']} {detail['amount']:.8g} at "
                f"{detail['price']:,.6g} (fee {detail['fee']:.6g} {detail['fee_currency']})")
    if kind in ("rejected", "refused"):
        return f"{where}order {kind}: {detail.get('reason', '')}"
    if kind == "kill_switch":
        return (f"{where}KILL SWITCH: the day's loss {detail['loss']:,.2f} reached "
                f"{detail['limit']:g}; no entries until the next UTC day")
    if kind == "position_mismatch":
        return f"{where}POSITION MISMATCH: {detail.get('reason', '')}"
    if kind == "model_swap":
        return f"{where}model swapped: {detail['old']} -> {detail['new']}"
    if kind == "model_refused":
        return f"{where}model {detail['model']} refused ({detail['reason']}); " \
               f"{detail['kept']} keeps trading"
    if kind == "control":
        return f"{where}operator: {detail['action']} (from {detail['source']})"
    if kind == "drift":
        return f"{where}DRIFT ({', '.join(detail['breaches'])}): {detail['message']}; " \
               f"on drift: {detail['action']}"
    if kind == "drift_cleared":
        return f"{where}drift cleared for {detail['model']}"
    if kind == "drift_rollback":
        return f"{where}drift rollback: production {detail['old']} -> {detail['new']}"
    if kind == "daily_summary":
        return (f"{where}day {detail['day']}: equity {detail['start_equity']:,.2f} -> "
                f"{detail['end_equity']:,.2f} ({detail['change_pct']:+.2f}%), "
                f"fills {detail['fills']}, rejections {detail['rejections']}")
    return f"{where}{kind}: {detail.get('message', json.dumps(detail, default=str))}"


def payload(kind: str, market: str, detail: dict, fmt: str, bot: str) -> dict:
    """The JSON body posted for one notification in format ``fmt``."""
    text = _text(kind, market, detail)
    if fmt == "slack":
        return {"text": f"{bot}: {text}"}
    if fmt == "discord":
        return {"content": f"{bot}: {text}"}
    if fmt == "telegram":
        return {"text": f"{bot}: {text}"}
    return {"bot": bot, "kind": kind, "market": market,
            "time": datetime.now(UTC).isoformat(timespec="seconds"), "text": text,
            "detail": detail}


class _Channel:
    """One URL: its queue and the thread that posts it, in order, retrying with backoff."""

    def __init__(self, url: str, timeout_s: float, backoff_s: tuple[float, float]) -> None:
        self.url = url
        self.timeout_s = timeout_s
        self.backoff_s = backoff_s
        self.queue: queue.Queue[bytes | None] = queue.Queue()
        self.queued = 0
        self.delivered = 0
        self.failures = 0
        self._closing = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"notify {host_of(url)}",
                                        daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while True:
            body = self.queue.get()
            if body is None:
                return
            delay = self.backoff_s[0]
            failing = False
            while True:
                try:
                    http_post(self.url, body, self.timeout_s)
                    break
                except OSError as exc:  # urllib's errors, HTTP statuses included
                    self.failures += 1
                    if not failing:
                        failing = True
                        log.warning("notifications to %s fail (%s); retrying with backoff "
                                    "(reported once)", host_of(self.url), _reason(exc))
                    if self._closing.wait(delay):
                        return  # closing with the channel down: the rest is dropped
                    delay = min(delay * 2, self.backoff_s[1])
            if failing:
                log.info("notifications to %s delivered again", host_of(self.url))
            self.delivered += 1

    def put(self, body: bytes) -> None:
        """Queue one body (never blocks)."""
        self.queued += 1
        self.queue.put(body)

    def close(self, wait_s: float) -> int:
        """Deliver what is queued within ``wait_s`` seconds; returns how many were left."""
        self.queue.put(None)
        self._thread.join(wait_s)
        self._closing.set()
        self._thread.join(1.0)
        return self.queued - self.delivered


def _reason(exc: Exception) -> str:
    code = getattr(exc, "code", None)  # an HTTPError's status
    return f"HTTP {code}" if code is not None else type(exc).__name__


def http_post(url: str, body: bytes, timeout_s: float) -> None:
    """POST ``body`` as JSON; raises OSError unless the answer is 2xx."""
    import urllib.request  # only once there is something to tell (keeps the CLI's start fast)

    request = urllib.request.Request(url, data=body, method="POST",
                                     headers={"Content-Type": "application/json",
                                              "User-Agent": "mlstrategy-bot"})
    with urllib.request.urlopen(request, timeout=timeout_s) as response:  # noqa: S310
        response.read()


class Notifier:
    """Posts the bot's notifications to ``urls`` in format ``fmt`` (see module doc).

    Parameters
    ----------
    urls : list of str
        Webhook URLs (http or https).
    fmt : {"json", "slack", "discord", "telegram"}
        The body's shape.
    bot : str
        How the bot names itself in each message.
    timeout_s : float
        Per post.
    backoff_s : (float, float)
        The first retry's delay and the longest (the delay doubles in between).
    """

    def __init__(self, urls: list[str], fmt: str = "json", *, bot: str = "mlstrategy",
                 timeout_s: float = 5.0,
                 backoff_s: tuple[float, float] = BACKOFF_S) -> None:
        self.fmt = fmt
        self.bot = bot
        self.channels = [_Channel(url, timeout_s, backoff_s) for url in urls]
        self.sent: Counter = Counter()  # notifications queued, by kind
        self._day: dict | None = None  # the current UTC day: its start equity, counts
        self._lock = threading.Lock()

    def publish(self, kind: str, market: str, detail: dict) -> None:
        """Queue one notification for every channel (never blocks)."""
        body = json.dumps(payload(kind, market, detail, self.fmt, self.bot),
                          default=str).encode()
        with self._lock:
            self.sent[kind] += 1
            for channel in self.channels:
                channel.put(body)

    def on_journal(self, kind: str, market: str, detail: dict) -> None:
        """``Journal.listen``'s listener: what is worth telling, told; a new UTC day sends
        the last one's summary."""
        if kind == "risk_day":
            self._new_day(detail)
            return
        if kind in ("fill", "rejected", "refused") and self._day is not None:
            self._day["fills" if kind == "fill" else "rejections"] += 1
        if kind in KINDS:
            self.publish(kind, market, detail)

    def _new_day(self, detail: dict) -> None:
        last = self._day
        if last is not None:
            start, end = last["start_equity"], float(detail["start_equity"])
            day = datetime.fromtimestamp(last["day"] * 86_400, UTC).date().isoformat()
            self.publish("daily_summary", "", {
                "day": day, "start_equity": start, "end_equity": end,
                "change_pct": (end / start - 1) * 100 if start else 0.0,
                "fills": last["fills"], "rejections": last["rejections"]})
        self._day = {"day": int(detail["day"]), "start_equity": float(detail["start_equity"]),
                     "fills": 0, "rejections": 0}

    def close(self, wait_s: float = 5.0) -> None:
        """Deliver what is queued (within ``wait_s`` seconds in all) and stop."""
        deadline = time.monotonic() + wait_s
        for channel in self.channels:
            left = channel.close(max(deadline - time.monotonic(), 0.1))
            if left:
                log.warning("%d notifications to %s could not be delivered before the bot "
                            "stopped", left, host_of(channel.url))


class ErrorsToNotifier(logging.Handler):
    """Sends every ERROR the bot logs as an ``error`` notification."""

    def __init__(self, notifier: Notifier) -> None:
        super().__init__(logging.ERROR)
        self.notifier = notifier

    def emit(self, record: logging.LogRecord) -> None:
        if record.name.startswith(__name__):
            return  # never about itself
        self.notifier.publish("error", "", {"message": record.getMessage(),
                                            "logger": record.name})

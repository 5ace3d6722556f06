"""The operator's side of a bot run: its controls, the API and dashboard, notifications.

``Operator`` says what to serve and whom to tell (the CLI builds it from ``--api-port``,
``--notify``... and a portfolio file's ``[api]`` and ``[notify]`` tables); ``operated`` runs
them for as long as the bot trades and stops them after, delivering what notifications are
still queued.
"""
from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from mlstrategy.live.api import Source, serving
from mlstrategy.live.api_settings import ApiSettings
from mlstrategy.live.controls import Controls
from mlstrategy.live.drift_settings import DriftSettings
from mlstrategy.live.journal import Journal
from mlstrategy.live.notify import BACKOFF_S, ErrorsToNotifier, Notifier


@dataclass(frozen=True)
class Operator:
    """What a run serves, tells and watches: ``api`` (None: no API), webhook URLs ``notify``
    in ``notify_format`` (a failed post retried after ``notify_backoff_s[0]`` seconds,
    doubling up to ``[1]``), the cycles directory whose latest report the dashboard shows,
    each market's ``drift`` watch, and whether decisions journal their feature vectors."""

    api: ApiSettings | None = None
    notify: tuple[str, ...] = ()
    notify_format: str = "json"
    notify_backoff_s: tuple[float, float] = BACKOFF_S
    cycles_dir: Path | None = None
    drift: DriftSettings = field(default_factory=DriftSettings)
    journal_features: bool = False


@contextlib.contextmanager
def operated(operator: Operator, journal: Journal, markets: list[str],
             stop: threading.Event, *, models_dir: Path,
             thresholds: tuple[float | None, float | None]) -> Iterator[Controls]:
    """Controls for ``markets``, the API over ``journal`` and notifications of what it
    records, while the block runs (``thresholds``: the bot's own enter/exit, if it overrides
    the model's)."""
    controls = Controls(markets, stop, journal)
    notifier = errors = None
    if operator.notify:
        notifier = Notifier(list(operator.notify), operator.notify_format,
                            bot=f"bot {journal.path.stem}", backoff_s=operator.notify_backoff_s)
        journal.listen(notifier.on_journal)
        errors = ErrorsToNotifier(notifier)
        logging.getLogger().addHandler(errors)
    source = Source(journal.path, models_dir, operator.cycles_dir, controls, thresholds)
    try:
        with serving(source, operator.api):
            yield controls
    finally:
        if notifier is not None:
            logging.getLogger().removeHandler(errors)
            notifier.close()

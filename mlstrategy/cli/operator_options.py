"""The bot's operator options (API, dashboard, notifications): passed to a bot command as one
``operator: Operator``; a portfolio file's ``[api]`` and ``[notify]`` tables fill what the
command line leaves out (``with_file``)."""
from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

import click

from mlstrategy.live.api_settings import TOKEN_ENV, ApiSettings
from mlstrategy.live.drift_settings import ON_DRIFT, DriftLimits, DriftSettings
from mlstrategy.live.notify import FORMATS

if TYPE_CHECKING:
    from mlstrategy.live.operator import Operator

F = TypeVar("F", bound=Callable)

_OPTIONS = (
    click.option("--api-port", type=click.IntRange(0, 65535),
                 help=f"Serve the control API and the dashboard (http://HOST:PORT/) while the "
                      f"bot runs. Reads are open on 127.0.0.1; pause, resume, exit, reload and "
                      f"stop need the bearer token in {TOKEN_ENV} (without it they are off)."),
    click.option("--api-host", default="127.0.0.1", show_default=True,
                 help=f"Where the API listens; anything but loopback needs {TOKEN_ENV} (then "
                      "reads need the token too)."),
    click.option("--notify", "notify", multiple=True, metavar="URL",
                 help="POST a JSON notification to this webhook on fills, rejections, errors, "
                      "kill-switch trips, position mismatches, model swaps, operator actions "
                      "and each UTC day's summary (repeatable; retried with backoff, never "
                      "blocking trading)."),
    click.option("--notify-format", type=click.Choice(FORMATS), default="json",
                 show_default=True, help="Body of the notifications: our JSON, or Slack, "
                 "Discord or Telegram webhook messages (Telegram: chat_id in the URL's query)."),
    click.option("--cycles-dir", type=click.Path(file_okay=False, path_type=Path),
                 default=Path("cycles"), show_default=True,
                 help="The dashboard shows the latest model-update cycle report found here."),
    click.option("--on-drift", type=click.Choice(ON_DRIFT), default="warn", show_default=True,
                 help="When a market's drift breaches a limit: only warn (log, journal, "
                      "notify), also pause its entries, or also roll its production model "
                      "back to the previous champion (swapped in at the next bar)."),
    click.option("--drift-window", type=click.IntRange(min=50), default=DriftLimits.window,
                 show_default=True, help="Bars over which drift is measured (figures once it "
                 "is full; the warm-up history counts)."),
    click.option("--drift-psi", type=click.FloatRange(min=0.0, min_open=True),
                 default=DriftLimits.psi, show_default=True,
                 help="Drift limit: median over the features of their population stability "
                      "index against the training data."),
    click.option("--drift-calibration", type=click.FloatRange(min=0.0, min_open=True),
                 default=DriftLimits.calibration_gap, show_default=True,
                 help="Drift limit: |mean P(up) - share of bars that went up| over the "
                      "window's labelled bars."),
    click.option("--journal-features", is_flag=True,
                 help="Journal each decision's feature vector (8 bytes a feature a bar), not "
                      "only its hash: `mlstrategy audit` then names the features that differ."),
)


def operator_options(func: F) -> F:
    """Add the operator's options to a command; it receives them as ``operator``."""

    @functools.wraps(func)
    def command(*args, **kwargs):
        from mlstrategy.live.operator import Operator  # the API's stack: only when run

        port, host = kwargs.pop("api_port"), kwargs.pop("api_host")
        window = kwargs.pop("drift_window")
        limits = DriftLimits(window=window, psi=kwargs.pop("drift_psi"),
                             calibration_gap=kwargs.pop("drift_calibration"))
        kwargs["operator"] = Operator(
            api=None if port is None else ApiSettings.from_env(port, host),
            notify=tuple(kwargs.pop("notify")), notify_format=kwargs.pop("notify_format"),
            cycles_dir=kwargs.pop("cycles_dir"),
            drift=DriftSettings(limits, kwargs.pop("on_drift")),
            journal_features=kwargs.pop("journal_features"))
        return func(*args, **kwargs)

    for option in reversed(_OPTIONS):
        command = option(command)
    return command


def with_file(operator: Operator, api: dict, notify: dict) -> Operator:
    """``operator`` with a portfolio file's ``[api]`` (port, host) and ``[notify]`` (urls,
    format) where the command line gave nothing."""
    if operator.api is None and "port" in api:
        operator = replace(operator, api=ApiSettings.from_env(
            int(api["port"]), str(api.get("host", "127.0.0.1"))))
    if not operator.notify and notify.get("urls"):
        operator = replace(operator, notify=tuple(notify["urls"]),
                           notify_format=notify.get("format", operator.notify_format))
    return operator

"""The ``mlstrategy`` command line: ``data``, ``train``, ``backtest``, ``bot``, ``models``.

Only the CLIs print. Every error a user can cause (``USER_ERRORS``) becomes one line on stderr
and exit code 2; a bot that stopped on a position mismatch exits with 3; ``--debug`` shows the
traceback instead.
"""
from __future__ import annotations

import collections
import contextlib
import logging
import sys
import warnings
from collections.abc import Iterator
from typing import NoReturn

import click

from mlstrategy.cli.audit import audit
from mlstrategy.cli.backtest import backtest
from mlstrategy.cli.bot import bot
from mlstrategy.cli.common import config_option, debug_option, is_debug
from mlstrategy.cli.cycle import cycle
from mlstrategy.cli.dashboard import dashboard
from mlstrategy.cli.data import data
from mlstrategy.cli.models import models
from mlstrategy.cli.sweep import sweep
from mlstrategy.cli.train import train
from mlstrategy.errors import USER_ERRORS, PositionMismatch


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@config_option
@debug_option
@click.version_option(package_name="mlstrategy")
def cli() -> None:
    """mlstrategy: market data -> Numba features -> CatBoost model -> backtrader backtest / bot.

    \b
    Typical flow on the embedded sample (BTC/USD hourly, no download needed):
      mlstrategy train                 train, validate, save models/<name>/<version>/
      mlstrategy backtest              backtest the production model, write report + plot
      mlstrategy cycle --config F      update, retrain, validate and promote, per market
      mlstrategy dashboard --journal J the bot's dashboard, read-only
      mlstrategy audit --journal J     recompute the bot's decisions, bar for bar
    """


for _command in (data, train, backtest, bot, models, cycle, sweep, dashboard, audit):
    cli.add_command(_command)


def run(command: click.Command, args: list[str] | None = None) -> NoReturn:
    """Run a click command with the house error policy (one line, exit 2) and exit."""
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        with summarised_warnings():
            command.main(args=args, standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        sys.exit(1)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except PositionMismatch as exc:  # the bot stopped itself: not a user error
        if is_debug():
            raise
        click.echo(f"stopped: position mismatch: {exc}", err=True)
        sys.exit(3)
    except USER_ERRORS as exc:
        if is_debug():
            raise
        click.echo(f"error: {exc}", err=True)
        sys.exit(2)
    sys.exit(0)


@contextlib.contextmanager
def summarised_warnings() -> Iterator[None]:
    """Libraries' warnings (scikit-learn's ConvergenceWarning five times, with site-packages
    paths) collected and told in one line each kind at the end; all of them with --debug."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("default")
        try:
            yield
        finally:
            kinds = collections.Counter(w.category.__name__ for w in caught)
            for kind, count in kinds.items():
                first = next(str(w.message) for w in caught if w.category.__name__ == kind)
                click.echo(f"note: {count} {kind}{'s' if count > 1 else ''} from the "
                           f"libraries, e.g. {first.splitlines()[0][:120]!r}"
                           + ("" if is_debug() else " (--debug shows them all)"), err=True)
                if is_debug():
                    for w in caught:
                        click.echo(f"  {w.filename}:{w.lineno}: {w.message}", err=True)


def main() -> NoReturn:
    """Console-script entry point of ``mlstrategy``."""
    run(cli)

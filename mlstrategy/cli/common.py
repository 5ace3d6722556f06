"""Options and helpers shared by the CLI commands."""
from __future__ import annotations

import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

import click

from datafeeds.samples import DEFAULT_SAMPLE, SAMPLES

if TYPE_CHECKING:
    import pandas as pd

    from mlstrategy.dataset import Dataset

F = TypeVar("F", bound=Callable)

_state = {"debug": False}


def _set_debug(ctx: click.Context, param: click.Parameter, value: bool) -> None:
    if value:
        _state["debug"] = True


def is_debug() -> bool:
    """Whether ``--debug`` was given anywhere on the command line."""
    return _state["debug"]


debug_option = click.option(
    "--debug",
    is_flag=True,
    expose_value=False,
    is_eager=True,
    callback=_set_debug,
    help="Show full tracebacks instead of one-line errors.",
)


def data_options(default_sample: str | None) -> Callable[[F], F]:
    """``--sample`` / ``--data`` / ``--symbol`` / ``--timeframe``: where the bars come from."""

    def decorate(func: F) -> F:
        for option in reversed((
            click.option("--sample", type=click.Choice(sorted(SAMPLES)), default=default_sample,
                         show_default=True,
                         help="Embedded real dataset to use (no download needed)."),
            click.option("--data", "data_path", type=click.Path(dir_okay=False, path_type=Path),
                         help="Read bars from this file instead (CSV/Parquet/JSON/feather; "
                              "any format `mlstrategy data import` reads)."),
            click.option("--symbol", help="Symbol of --data bars (default: the file name)."),
            click.option("--timeframe", help="Bar size of --data bars, e.g. 1h or 1d."),
        )):
            func = option(func)
        return func

    return decorate


def load_dataset(sample: str | None, data_path: Path | None, symbol: str | None,
                 timeframe: str | None) -> Dataset:
    """The dataset named by :func:`data_options` (a file wins over a sample)."""
    from mlstrategy.dataset import file_dataset, sample_dataset

    if data_path is not None:
        return file_dataset(data_path, symbol, timeframe)
    return sample_dataset(sample or DEFAULT_SAMPLE)


models_dir_option = click.option(
    "--models-dir", type=click.Path(file_okay=False, path_type=Path), default=Path("models"),
    show_default=True, help="Where model artifacts and production.json live.")


def _load_config(ctx: click.Context, param: click.Parameter, value: Path | None) -> None:
    """Feed a TOML file's ``[<command>]`` tables to click's ``default_map`` (flags still win)."""
    if value is None:
        return
    try:
        tables = tomllib.loads(value.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise click.BadParameter(f"cannot read {value}: {exc}", ctx, param) from None
    name = ctx.command.name or ""
    # a group sees every table (one per subcommand); a lone command sees its own table
    ctx.default_map = tables if isinstance(ctx.command, click.Group) else tables.get(name, {})


config_option = click.option(
    "--config", type=click.Path(exists=True, dir_okay=False, path_type=Path),
    is_eager=True, expose_value=False, callback=_load_config,
    help="TOML file of option defaults, one table per command ([train], [backtest], ...); "
         "options given on the command line win.")


def utc_time(text: str | None, option: str) -> pd.Timestamp | None:
    """An option's date or time as a UTC timestamp (naive means UTC); None when not given.

    Raises
    ------
    click.BadParameter
        When ``text`` is no date or time (exit 2, naming ``option``).
    """
    import pandas as pd

    if text is None:
        return None
    try:
        stamp = pd.Timestamp(text)
    except ValueError:
        raise click.BadParameter(f"{text!r} is not a date or time; use e.g. 2024-01-31 or "
                                 "2024-01-31T18:00", param_hint=option) from None
    return stamp.tz_localize("UTC") if stamp.tz is None else stamp.tz_convert("UTC")

"""Options and helpers shared by the CLI commands."""
from __future__ import annotations

import functools
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

import click

from datafeeds.samples import DEFAULT_SAMPLE, SAMPLES

if TYPE_CHECKING:
    import pandas as pd

    from mlstrategy.research.dataset import Dataset

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


store_option = click.option(
    "--store", default="parquet:data", show_default=True, envvar="MLSTRATEGY_STORE",
    help="Where bars are stored: parquet:DIR (or a folder), sqlite:///PATH.db, or "
         "postgresql://USER@HOST:PORT/DB (password from PGPASSWORD). Env: MLSTRATEGY_STORE.")
repair_option = click.option(
    "--repair", is_flag=True, help="Drop exact duplicates, keep the last of duplicate "
    "timestamps, sort (each repair is reported; no value is ever changed).")


@dataclass(frozen=True)
class DataRequest:
    """Which bars a command runs on: a file, a stored series, or an embedded sample."""

    sample: str | None
    data_path: Path | None
    symbol: str | None
    timeframe: str | None
    source: str | None
    store: str
    repair: bool
    market_data: tuple[tuple[str, Path], ...] = ()  # other markets' bar files (--market-data)

    @property
    def given(self) -> bool:
        """Whether any bars were named (else a command may use its model's own)."""
        return any(v is not None for v in (self.sample, self.data_path, self.source))

    @property
    def name(self) -> str:
        """A short name for the bars: the sample, the file's stem, or the stored series."""
        if self.data_path is not None:
            return self.data_path.stem
        if self.source is not None:
            return f"{self.source}-{self.symbol}-{self.timeframe}".replace("/", "")
        return self.sample or DEFAULT_SAMPLE

    def trained_on(self, manifest_source: str, model: str) -> DataRequest:
        """These bars, or the model's own training sample when none were named."""
        if self.given:
            return self
        sample = manifest_source.removeprefix("sample:")
        if not manifest_source.startswith("sample:") or sample not in SAMPLES:
            raise click.UsageError(f"model {model} was trained on {manifest_source}; name its "
                                   "bars with --data PATH or --store URL --source NAME")
        return replace(self, sample=sample)

    def load(self, inputs: tuple[str, ...] = ()) -> Dataset:
        """The bars, validated (repaired first with --repair, each repair printed), with what
        else a model's features read beside them (``FeatureSpec.inputs``: other markets'
        bars, series of values)."""
        dataset = self._load()
        return dataset.with_others({key: self._input(key, dataset)
                                    for key in inputs}) if inputs else dataset

    def _input(self, key: str, dataset: Dataset) -> pd.DataFrame:
        """Another market's bars or a series of values: its ``--market-data`` file, else
        from the store beside the traded market's bars."""
        from datafeeds.store import StoreKey
        from datafeeds.stores import open_store
        from datafeeds.values import read_values_file
        from features_numba.sources import Source
        from mlstrategy.research.dataset import file_dataset, store_dataset

        source = Source.of_input(key)
        series, market = source.series, source.market
        files = dict(self.market_data)
        if key in files:
            return read_values_file(files[key], series) if series else \
                self._repaired(file_dataset(files[key], key, None, repair=self.repair)).bars
        if self.source is not None and not series:
            return store_dataset(self.store, self.source, market, dataset.timeframe).bars
        if self.source is not None:
            stored = open_store(self.store).read_values(
                StoreKey(self.source, market or dataset.info.symbol, series))
            if stored is not None:
                return stored
        raise click.UsageError(f"the model's features read "
                               f"{source.describe(dataset.info.symbol)}: give them with "
                               f"--market-data {key}=PATH, or store them beside the traded "
                               "market's and use --source")

    def _repaired(self, loaded: tuple[Dataset, tuple[str, ...]]) -> Dataset:
        dataset, repairs = loaded
        for line in repairs:
            click.echo(f"repaired: {line}", err=True)
        return dataset

    def _load(self) -> Dataset:
        from mlstrategy.research.dataset import file_dataset, sample_dataset, store_dataset

        if self.data_path is not None:
            return self._repaired(file_dataset(self.data_path, self.symbol, self.timeframe,
                                               repair=self.repair))
        if self.source is not None:
            if self.symbol is None or self.timeframe is None:
                raise click.UsageError("--source needs --symbol and --timeframe (see "
                                       "`mlstrategy data list`)")
            return store_dataset(self.store, self.source, self.symbol, self.timeframe)
        return sample_dataset(self.sample or DEFAULT_SAMPLE)


def _market_files(ctx: click.Context, param: click.Parameter,
                  value: tuple[str, ...]) -> tuple[tuple[str, Path], ...]:
    out = []
    for item in value:
        symbol, _, path = item.partition("=")
        if not symbol.strip() or not path:
            raise click.BadParameter(f"{item!r}: write NAME=PATH, e.g. ETH/USDT=eth_1m.csv")
        if not Path(path).is_file():
            raise click.BadParameter(f"{item!r}: no file {path}")
        out.append((symbol.strip(), Path(path)))
    return tuple(out)


def data_options(default_sample: str | None) -> Callable[[F], F]:
    """Where the bars come from, passed to the command as one ``data: DataRequest``:
    ``--sample``, ``--data`` (a file) or ``--source`` (a series in ``--store``), with
    ``--symbol``, ``--timeframe`` and ``--repair``."""

    def decorate(func: F) -> F:
        @functools.wraps(func)
        def command(*args, sample, data_path, symbol, timeframe, source, store, repair,
                    market_data, **kwargs):
            request = DataRequest(sample, data_path, symbol, timeframe, source, store, repair,
                                  market_data)
            return func(*args, data=request, **kwargs)

        for option in reversed((
            click.option("--sample", type=click.Choice(sorted(SAMPLES)), default=default_sample,
                         show_default=True,
                         help="Embedded real dataset to use (no download needed)."),
            click.option("--data", "data_path", type=click.Path(dir_okay=False, path_type=Path),
                         help="Read bars from this file instead (CSV/Parquet/JSON/feather; "
                              "any format `mlstrategy data import` reads)."),
            click.option("--source", help="Read the stored series of this source (with "
                         "--symbol and --timeframe) from --store instead."),
            store_option,
            click.option("--symbol", help="Symbol of the bars (default for --data: the file "
                         "name)."),
            click.option("--timeframe", "-t", help="Bar size, e.g. 1h or 1d; checked against "
                         "the bars' spacing (default for --data: inferred from it)."),
            repair_option,
            click.option("--market-data", multiple=True, metavar="NAME=PATH",
                         callback=_market_files,
                         help="What else the model's features read: another market's bars "
                              "(ETH/USDT=eth.csv, at the traded bar size or finer) or a series "
                              "of values (funding_rate=f.csv, funding_rate@ETH/USDT=... with "
                              "columns datetime,value); repeat for each. With --source they "
                              "are read from the store by default."),
        )):
            command = option(command)
        return command

    return decorate


def _models_dir(ctx: click.Context, param: click.Parameter, value: Path) -> Path:
    """The registry folder, moved to the per-market layout first if an older version wrote it."""
    from mlstrategy.registry.migration import migrate, needs_migration

    if value.is_dir() and needs_migration(value):
        for line in migrate(value):
            click.echo(f"registry layout: {line}", err=True)
    return value


models_dir_option = click.option(
    "--models-dir", type=click.Path(file_okay=False, path_type=Path), default=Path("models"),
    show_default=True, callback=_models_dir,
    help="The model registry: models/<market>/<version>/ and each market's production.json.")


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
    if isinstance(ctx.command, click.Group):
        _check_keys(ctx.command, tables, value, ctx, param)
        ctx.default_map = tables
    else:
        ctx.default_map = tables.get(name, {})
        _check_keys(ctx.command, ctx.default_map, value, ctx, param, f"[{name}]")


def _check_keys(command: click.Command, table: dict, path: Path, ctx: click.Context,
                param: click.Parameter, where: str = "") -> None:
    """Refuse a key no command or option of ``command`` has (a misspelt option would
    silently keep its default), suggesting the nearest."""
    import difflib

    if isinstance(command, click.Group):
        known = {k: command.commands[k] for k in command.commands}
    else:
        known = {p.name: None for p in command.params if p.name and p.expose_value}
    for key, value in table.items():
        if key not in known:
            near = difflib.get_close_matches(key, list(known), n=1)
            hint = f"; did you mean {near[0]!r}?" if near else \
                f"; known: {', '.join(sorted(known))}"
            raise click.BadParameter(f"{path}: {where or 'the top level'} has no "
                                     f"{'command' if where == '' else 'option'} {key!r}{hint}",
                                     ctx, param)
        if known[key] is not None and isinstance(value, dict):
            _check_keys(known[key], value, path, ctx, param, f"{where}[{key}]")


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

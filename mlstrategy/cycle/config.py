"""``cycle.toml``: the markets a cycle looks after, their training settings and schedule.

::

    [cycle]
    store = "parquet:data"      # where bars are kept (see `mlstrategy data --help`)
    models_dir = "models"       # the registry, as `train`'s: models/<market>/<version>/
    cycles_dir = "cycles"       # reports: cycles/<time>/report.json, report.md
    sweeps_dir = "sweeps"       # `mlstrategy sweep`: sweeps/<market>/<time>/trials.jsonl
    journals = ["journals/live_binance_BTCUSDT_1h.sqlite"]  # optional: the bots' journals,
                                # whose live drift each market's report shows; a market
                                # whose live model drifts is retrained before retrain_every

    [[market]]
    name = "btc-1h"             # its model name: models/btc-1h/, its own production model
    source = "coinbase"         # a ccxt exchange id, or "yahoo"
    symbol = "BTC/USD"
    timeframe = "1h"
    bars = "sample:btcusd-1h"   # optional: take new bars from this file or sample, not online
    retrain_every = "1d"        # optional: retrain only once the newest model is this old
    max_gap = 0                 # bars missing in a row that still pass validation

    features = "examples/features_informative.toml"  # optional: a feature spec (default:
                                # the default spec); one reading other markets needs them:
    [[market.reads]]            # each other market its features read, kept in the store too
    symbol = "ETH/USD"
    source = "coinbase"
    timeframe = "1h"            # the model's bar size, or the one its features read
    bars = "data/eth_1h.csv"    # optional, as the market's own
    [[market.reads]]            # a series of values its features read (series = ...)
    symbol = "BTC/USDT:USDT"    # the market it is published for
    source = "binanceusdm"
    series = "funding_rate"     # instead of timeframe; bars = a datetime,value file

    [market.train]              # as `mlstrategy train` options (defaults as there)
    model = "catboost"
    horizon = 4
    params = { iterations = 300, depth = 6 }

    [market.sweep]              # optional: the search space of `mlstrategy sweep`
    depth = [4, 8]
    learning_rate = [0.02, 0.3]
    enter_quantile = [0.55, 0.9]
"""
from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from datafeeds.store import absolute_url
from datafeeds.timeframes import parse_timeframe, timeframe_delta
from features_numba import FeatureError, FeatureSpec
from features_numba.sources import Source
from mlstrategy.errors import ConfigError
from mlstrategy.models import parse_params
from mlstrategy.research.labels import LabelSpec
from mlstrategy.research.training import TrainConfig
from mlstrategy.trading.strategy_params import COMMISSION

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
_TRAIN_KEYS = {"model", "params", "horizon", "folds", "test_fraction", "enter_quantile",
               "cost", "promote_metric", "seed"}


@dataclass(frozen=True)
class TrainSettings:
    """A market's training settings (the `train` command's, by the same names)."""

    model: str = "catboost"
    params: dict = field(default_factory=dict)
    horizon: int = 4
    folds: int = 4
    test_fraction: float = 0.2
    enter_quantile: float = 0.7
    cost: float = COMMISSION
    promote_metric: str = "sharpe"
    seed: int | None = None

    def train_config(self, threads: int) -> TrainConfig:
        """The ``TrainConfig`` these settings describe."""
        values = dict(self.params)
        if self.seed is not None:
            values["seed"] = self.seed
        return TrainConfig(label=LabelSpec(horizon=self.horizon), model=self.model,
                           params=parse_params(self.model, values), folds=self.folds,
                           test_fraction=self.test_fraction,
                           enter_quantile=self.enter_quantile, cost=self.cost, threads=threads)


@dataclass(frozen=True)
class Series:
    """Another market's bars, or a series of values (``series``), a market's features read:
    kept up to date in the store too."""

    symbol: str
    source: str
    timeframe: str | None = None  # bars of this size, or:
    series: str | None = None  # funding_rate or open_interest (datafeeds.values)
    bars: str | None = None  # a file path or sample:NAME to take it from (offline)
    api_url: str | None = None

    def input_of(self, market: Market) -> str:
        """The name ``market``'s features read it by (``FeatureSpec.inputs``)."""
        if self.series is None:
            return self.symbol
        return Source(None if self.symbol == market.symbol else self.symbol, None,
                      self.series).input


@dataclass(frozen=True)
class Market:
    """One market of the cycle."""

    name: str
    source: str
    symbol: str
    timeframe: str
    bars: str | None = None  # a file path or sample:NAME to take bars from (offline)
    retrain_every: str | None = None
    max_gap: int = 0
    train: TrainSettings = field(default_factory=TrainSettings)
    api_url: str | None = None  # exchange requests to this base URL (testnet, test server)
    sweep: dict | None = None  # the search space of `mlstrategy sweep` (research.sweep)
    features: Path | None = None  # a feature spec (TOML); None: the default spec
    reads: tuple[Series, ...] = ()  # the other markets its features read

    def spec(self) -> FeatureSpec:
        """The features its models learn."""
        if self.features is None:
            return FeatureSpec.default(timeframe_delta(self.timeframe))
        return FeatureSpec.from_toml(self.features)


@dataclass(frozen=True)
class CycleConfig:
    """The whole file."""

    markets: tuple[Market, ...]
    store: str = "parquet:data"
    models_dir: Path = Path("models")
    cycles_dir: Path = Path("cycles")
    sweeps_dir: Path = Path("sweeps")
    journals: tuple[Path, ...] = ()  # bots' journals, read for each market's live drift


def _market(table: dict, where: str) -> Market:
    missing = [k for k in ("name", "source", "symbol", "timeframe") if k not in table]
    if missing:
        raise ConfigError(f"{where}: missing {missing}; each [[market]] needs name, source, "
                          "symbol and timeframe")
    if not _NAME.match(str(table["name"])):
        raise ConfigError(f"{where}: name {table['name']!r} must be letters, digits, '.', '_' "
                          "or '-' (it names a folder)")
    train = dict(table.get("train", {}))
    unknown = set(train) - _TRAIN_KEYS
    if unknown:
        raise ConfigError(f"{where}.train: unknown settings {sorted(unknown)}; known: "
                          f"{sorted(_TRAIN_KEYS)}")
    known = {"name", "source", "symbol", "timeframe", "bars", "retrain_every", "max_gap",
             "train", "api_url", "sweep", "features", "reads"}
    if set(table) - known:
        raise ConfigError(f"{where}: unknown keys {sorted(set(table) - known)}; known: "
                          f"{sorted(known)}")
    for key in ("timeframe", "retrain_every"):
        if table.get(key) is not None:
            try:
                parse_timeframe(table[key])
            except ValueError as exc:
                raise ConfigError(f"{where}.{key}: {exc}") from None
    reads = tuple(_series(t, f"{where}.reads #{i + 1}")
                  for i, t in enumerate(table.get("reads", [])))
    features = Path(table["features"]).absolute() if table.get("features") else None
    market = Market(**{**table, "train": TrainSettings(**train), "features": features,
                       "reads": reads})
    try:
        spec = market.spec()
    except FeatureError as exc:
        raise ConfigError(f"{where}.features: {exc}") from None
    unread = sorted(set(spec.inputs) - {r.input_of(market) for r in reads})
    if unread:
        raise ConfigError(f"{where}: its features read {', '.join(unread)}; add a "
                          "[[market.reads]] table for each (symbol, source, and timeframe "
                          "or series)")
    return market


def _series(table: dict, where: str) -> Series:
    known = {"symbol", "source", "timeframe", "series", "bars", "api_url"}
    if not isinstance(table, dict) or set(table) - known or not \
            {"symbol", "source"} <= set(table) or \
            ("timeframe" in table) == ("series" in table):
        raise ConfigError(f"{where}: each [[market.reads]] has symbol, source, and timeframe "
                          f"(bars) or series (values), optionally bars and api_url; got "
                          f"{table!r:.200}")
    return Series(**table)


def load_config(path: Path) -> CycleConfig:
    """Read and check ``path``; relative paths in it are taken from the current folder and
    made absolute.

    Raises
    ------
    ConfigError
        Naming the file, the table and what is wrong.
    """
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"cannot read cycle config {path}: {exc}") from None
    tables = data.get("market", [])
    if not tables:
        raise ConfigError(f"{path}: no [[market]] tables; see `mlstrategy cycle --help`")
    markets = tuple(_market(t, f"{path} [[market]] #{i + 1}") for i, t in enumerate(tables))
    names = [m.name for m in markets]
    if len(set(names)) != len(names):
        raise ConfigError(f"{path}: market names repeat ({names}); each needs its own")
    cycle = data.get("cycle", {})
    journals = cycle.get("journals", [])
    if not (isinstance(journals, list) and all(isinstance(j, str) for j in journals)):
        raise ConfigError(f"{path} [cycle] journals: a list of journal paths, e.g. "
                          "[\"journals/live_binance_BTCUSDT_1h.sqlite\"]")
    # absolute: worker processes (local or Dask) may start in another folder
    return CycleConfig(markets=markets, store=absolute_url(cycle.get("store", "parquet:data")),
                       models_dir=Path(cycle.get("models_dir", "models")).absolute(),
                       cycles_dir=Path(cycle.get("cycles_dir", "cycles")).absolute(),
                       sweeps_dir=Path(cycle.get("sweeps_dir", "sweeps")).absolute(),
                       journals=tuple(Path(j).absolute() for j in journals))

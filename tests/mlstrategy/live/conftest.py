"""A real model trained on real 1-minute bars, and a simulated exchange serving the bars after.

The model learns on the embedded BTC perpetual sample's first 6,000 minutes; the bots trade
the minutes after, served by ``ExchangeSimulator`` over HTTP on 127.0.0.1 on an accelerated
clock (forming candle included), through real ccxt.
"""
from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from datafeeds import load_sample
from datafeeds.exchange.sim_book import SimClock
from datafeeds.exchange.simulator import ExchangeSimulator
from features_numba import FeatureSpec
from mlstrategy.artifact import Artifact, load_artifact, save_artifact
from mlstrategy.dataset import describe
from mlstrategy.registry import ModelRef, promote
from mlstrategy.training import train
from tests.mlstrategy.conftest import FAST

TRAIN_BARS = 6000
FIRST_TRADED = 7000  # the simulator's clock starts at this bar's open: bars before are history


@dataclass(frozen=True)
class MinuteModel:
    models_dir: Path
    artifact: Artifact


@pytest.fixture(scope="session")
def minute_bars():
    return load_sample("btcperp-1m")


@pytest.fixture(scope="session")
def minute_model(minute_bars, tmp_path_factory) -> MinuteModel:
    """Trained on minutes [0, 6000), promoted in its own models directory."""
    models_dir = tmp_path_factory.mktemp("minute_models")
    dataset = describe(minute_bars.iloc[:TRAIN_BARS], "sample:btcperp-1m", "BTC/USDT", "1m")
    result = train(dataset, FeatureSpec.default(), FAST)
    path = save_artifact(models_dir, "btc1m", result.model, result.manifest)
    promote(models_dir, ModelRef("btc1m", path.name))
    return MinuteModel(models_dir, load_artifact(path))


def simulator(bars, *, speed: float | None = 600.0, start: int = FIRST_TRADED,
              balances: dict[str, float] | None = None,
              api_key: str | None = None) -> ExchangeSimulator:
    """The bars served as binance BTCUSDT 1m, the clock starting at bar ``start``'s open."""
    clock = SimClock(int(bars.index[start].value // 1_000_000), speed)
    return ExchangeSimulator(bars, interval="1m", clock=clock, balances=balances,
                             api_key=api_key)


@pytest.fixture
def market(minute_bars) -> Iterator[ExchangeSimulator]:
    with simulator(minute_bars, balances={"USDT": 10_000.0, "BTC": 0.05}) as sim:
        yield sim

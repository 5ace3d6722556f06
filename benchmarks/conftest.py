"""Benchmark bars: real BTC/USD hourly returns, chained end to end to the sizes we measure.

1M-bar (and, with ``MLSTRATEGY_BENCH_10M=1``, 10M-bar) series are longer than any real file
here, so the real sample's bar shapes (returns, ranges, volumes) are repeated in order.
"""
from __future__ import annotations

import os

import numpy as np
import pandas as pd
import pytest

from datafeeds import load_sample

SIZES = [1_000_000] + ([10_000_000] if os.environ.get("MLSTRATEGY_BENCH_10M") else [])


def long_bars(n: int) -> pd.DataFrame:
    """``n`` bars built by repeating the real sample's log returns and bar shapes."""
    real = load_sample("btcusd-1h")
    reps = n // len(real) + 1
    close0 = real["close"].to_numpy()
    log_ret = np.diff(np.log(close0), prepend=np.log(close0[0]))
    close = np.exp(np.cumsum(np.tile(log_ret, reps)[:n]) + np.log(close0[0]))
    shape = {k: np.tile((real[k] / real["close"]).to_numpy(), reps)[:n]
             for k in ("open", "high", "low")}
    index = pd.date_range("2000-01-01", periods=n, freq="h", tz="UTC", name="datetime")
    return pd.DataFrame({"open": shape["open"] * close, "high": shape["high"] * close,
                         "low": shape["low"] * close, "close": close,
                         "volume": np.tile(real["volume"].to_numpy(), reps)[:n]}, index=index)


@pytest.fixture(scope="session", params=SIZES, ids=lambda n: f"{n // 1_000_000}M")
def big(request: pytest.FixtureRequest) -> pd.DataFrame:
    """Long benchmark bars (1M; 10M when asked)."""
    return long_bars(request.param)


@pytest.fixture(scope="session")
def bench_model(tmp_path_factory):
    """A default CatBoost model (300 trees of depth 6) trained on the real hourly sample."""
    from features_numba import FeatureSpec
    from mlstrategy.registry.artifact import load_artifact, save_artifact
    from mlstrategy.research.dataset import sample_dataset
    from mlstrategy.research.training import TrainConfig, train

    result = train(sample_dataset("btcusd-1h"), FeatureSpec.default(), TrainConfig(folds=2))
    path = save_artifact(tmp_path_factory.mktemp("models"), "bench", result.model,
                         result.manifest, training_bars=result.training_bars)
    return load_artifact(path)

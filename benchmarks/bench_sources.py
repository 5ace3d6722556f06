"""Features of other series: a 1m model reading two higher timeframes of its own market and a
second market, against the same spec without them (issue target: at most 2x over 1M bars),
and the streaming update with them (target: at most 10 µs a bar).

Run: ``python -m pytest benchmarks/bench_sources.py --benchmark-only``. The 1M minutes are the
benchmark's chained real returns (``conftest.long_bars``) at one minute; the second market is
the same series 3,000 minutes earlier (the repo holds no two long real minute series that
overlap), so its bars are as real as the first market's.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from benchmarks.conftest import long_bars
from features_numba import FeatureDef, FeatureSpec, FeatureStream, compute_features

d = FeatureDef.of
OWN = FeatureSpec.default()
PER_ROUND = 500


def _read(market: str | None = None, timeframe: str | None = None) -> tuple[FeatureDef, ...]:
    return (d("rsi", n=14, market=market, timeframe=timeframe),
            d("natr", n=14, market=market, timeframe=timeframe),
            d("log_return", n=1, market=market, timeframe=timeframe),
            d("sma_ratio", n=20, market=market, timeframe=timeframe),
            d("bollinger", n=20, k=2.0, part="pctb", market=market, timeframe=timeframe))


JOINED = FeatureSpec((*OWN.features, *_read(timeframe="1h"), *_read(timeframe="4h"),
                      *_read(market="ETH/USDT"))).on_bar("1m")


@pytest.fixture(scope="module")
def minutes() -> tuple[pd.DataFrame, dict[str, pd.DataFrame]]:
    bars = long_bars(1_003_000)
    bars.index = pd.date_range("2020-01-01", periods=len(bars), freq="min", tz="UTC",
                               name="datetime")
    other = bars.iloc[:-3000].set_axis(bars.index[3000:])  # the same minutes, 3,000 later
    return bars.iloc[3000:], {"ETH/USDT": other}


@pytest.mark.parametrize("spec", ["own bars only", "+1h +4h +ETH/USDT"])
def test_features_with_other_series(benchmark, minutes, spec):
    """The default spec (39 columns) alone, then with 5 columns each of 1h, 4h and another
    market's 1m bars (54 columns): the ratio of the two is the issue's target."""
    bars, others = minutes
    benchmark.group = "1m features, 1M bars: own bars vs two timeframes and a market more"
    chosen = OWN if spec == "own bars only" else JOINED
    benchmark.pedantic(compute_features, (bars, chosen), {"others": others}, rounds=3,
                       iterations=1, warmup_rounds=1)


@pytest.mark.parametrize("spec", ["own bars only", "+1h +4h +ETH/USDT"])
def test_streaming_update_with_other_series(benchmark, minutes, spec):
    """One closed minute through the spec (the other market's minutes pushed ahead, as a
    backtest does; a bot pushes them as they close): ``PER_ROUND`` bars a round,
    ``us_per_bar`` the quickest round over its bars."""
    bars, others = minutes
    chosen = OWN if spec == "own bars only" else JOINED
    stream = FeatureStream(chosen)
    if chosen.markets:
        stream.push("ETH/USDT", others["ETH/USDT"].iloc[:30_000])
    stream.warm(bars.iloc[:20_000])
    values = bars[["open", "high", "low", "close", "volume"]].to_numpy()
    times = bars.index.as_unit("ns").asi8
    done = [20_000]  # bars streamed so far: each round the next ones

    def run() -> None:
        for i in range(done[0], done[0] + PER_ROUND):
            stream.update(*values[i].tolist(), int(times[i]))
        done[0] += PER_ROUND

    benchmark.group = "streaming update per bar: own bars vs two timeframes and a market more"
    benchmark.pedantic(run, rounds=15, iterations=1, warmup_rounds=1)
    benchmark.extra_info["us_per_bar"] = round(benchmark.stats.stats.min / PER_ROUND * 1e6, 2)
    assert np.isfinite(stream.update(*values[done[0]].tolist(), int(times[done[0]]))).all()

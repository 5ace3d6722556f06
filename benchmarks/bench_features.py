"""Feature kernels against TA-Lib and pandas, the full default spec, and the streaming update.

Run: ``python -m pytest benchmarks/bench_features.py --benchmark-only``
(``MLSTRATEGY_BENCH_10M=1`` adds 10M-bar runs). Each kernel's group holds our kernel beside
TA-Lib (same output: e.g. ``close / SMA - 1``) and pandas computing the same column.
"""
from __future__ import annotations

import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
import talib

from datafeeds import load_sample
from features_numba import FeatureDef, FeatureSpec, FeatureStream, compute_features_arrays

d = FeatureDef.of


def _a(bars: pd.DataFrame) -> tuple[np.ndarray, ...]:
    return tuple(bars[k].to_numpy() for k in ("open", "high", "low", "close", "volume"))


def _pandas_rsi(c: pd.Series, n: int) -> pd.Series:
    delta = c.diff()
    gain = delta.clip(lower=0).ewm(alpha=1 / n, adjust=False).mean()
    loss = (-delta.clip(upper=0)).ewm(alpha=1 / n, adjust=False).mean()
    return 100 * gain / (gain + loss)


def _pandas_natr(b: pd.DataFrame, n: int) -> pd.Series:
    prev = b["close"].shift()
    tr = pd.concat([b["high"] - b["low"], (b["high"] - prev).abs(), (b["low"] - prev).abs()],
                   axis=1).max(axis=1)
    return tr.ewm(alpha=1 / n, adjust=False).mean() / b["close"] * 100


# name: (definition, TA-Lib computing the same column, pandas computing the same column)
CASES = {
    "sma_ratio": (d("sma_ratio", n=20), lambda o, h, l, c, v: c / talib.SMA(c, 20) - 1,
                  lambda b: b["close"] / b["close"].rolling(20).mean() - 1),
    "ema_ratio": (d("ema_ratio", n=20), lambda o, h, l, c, v: c / talib.EMA(c, 20) - 1,
                  lambda b: b["close"] / b["close"].ewm(span=20, adjust=False).mean() - 1),
    "rsi": (d("rsi", n=14), lambda o, h, l, c, v: talib.RSI(c, 14),
            lambda b: _pandas_rsi(b["close"], 14)),
    "natr": (d("natr", n=14), lambda o, h, l, c, v: talib.NATR(h, l, c, 14),
             lambda b: _pandas_natr(b, 14)),
    "macd_hist": (d("macd", fast=12, slow=26, signal=9, part="hist"),
                  lambda o, h, l, c, v: talib.MACD(c, 12, 26, 9)[2], None),
    "stochastic_k": (d("stochastic", n=14, slow=3, d=3, part="k"),
                     lambda o, h, l, c, v: talib.STOCH(h, l, c, 14, 3, 0, 3, 0)[0], None),
    "williams_r": (d("williams_r", n=14), lambda o, h, l, c, v: talib.WILLR(h, l, c, 14),
                   lambda b: -100 * (b["high"].rolling(14).max() - b["close"])
                   / (b["high"].rolling(14).max() - b["low"].rolling(14).min())),
    "cci": (d("cci", n=20), lambda o, h, l, c, v: talib.CCI(h, l, c, 20), None),
    "adx": (d("adx", n=14), lambda o, h, l, c, v: talib.ADX(h, l, c, 14), None),
    "obv": (d("obv"), lambda o, h, l, c, v: talib.OBV(c, v),
            lambda b: (np.sign(b["close"].diff()).fillna(0) * b["volume"]).cumsum()),
    "mfi": (d("mfi", n=14), lambda o, h, l, c, v: talib.MFI(h, l, c, v, 14), None),
    "bollinger_pctb": (d("bollinger", n=20, k=2.0, part="pctb"),
                       lambda o, h, l, c, v: _talib_pctb(c), None),
    "volatility": (d("volatility", n=24), None,
                   lambda b: np.log(b["close"] / b["close"].shift()).rolling(24).std()),
    "zscore": (d("zscore", n=20, input="close"), None,
               lambda b: (b["close"] - b["close"].rolling(20).mean())
               / b["close"].rolling(20).std()),
    "skew": (d("moments", n=48, moment="skew"), None,
             lambda b: np.log(b["close"] / b["close"].shift()).rolling(48).skew()),
    "dist_high": (d("distance_extreme", n=48, side="high"), None,
                  lambda b: b["close"] / b["high"].rolling(48).max() - 1),
}


def _talib_pctb(c: np.ndarray) -> np.ndarray:
    upper, _, lower = talib.BBANDS(c, 20, 2.0, 2.0, 0)
    return (c - lower) / (upper - lower)


def _params():
    for name, (_, ta, pdf) in CASES.items():
        yield pytest.param(name, "numba", id=f"{name}-numba")
        if ta is not None:
            yield pytest.param(name, "talib", id=f"{name}-talib")
        if pdf is not None:
            yield pytest.param(name, "pandas", id=f"{name}-pandas")


@pytest.mark.parametrize(("name", "impl"), list(_params()))
def test_kernel(benchmark, big, name, impl):
    definition, ta, pdf = CASES[name]
    benchmark.group = f"kernel {name} {len(big) // 1_000_000}M bars"
    arrays = _a(big)
    ts = big.index.asi8
    if impl == "numba":
        spec = FeatureSpec((definition,))
        benchmark(compute_features_arrays, *arrays, ts, spec)
    elif impl == "talib":
        benchmark(ta, *arrays)
    else:
        benchmark(pdf, big)


TALIB_KINDS = {"sma_ratio", "ema_ratio", "rsi", "stochastic", "williams_r", "cci", "adx",
               "natr", "bollinger", "mfi"}
# the default spec's columns that TA-Lib can compute, in the default spec's order
TALIB_SUBSET = FeatureSpec(tuple(f for f in FeatureSpec.default().features
                                 if f.kind in TALIB_KINDS))


def _talib_default(o, h, l, c, v):
    """The same columns as ``TALIB_SUBSET``, one TA-Lib call each, as a TA-Lib user would
    write them."""
    out = [c / talib.SMA(c, n) - 1 for n in (10, 20, 50, 100)]
    out += [c / talib.EMA(c, n) - 1 for n in (12, 26)]
    out += [talib.RSI(c, 14), *talib.STOCH(h, l, c, 14, 3, 0, 3, 0), talib.WILLR(h, l, c, 14),
            talib.CCI(h, l, c, 20), talib.ADX(h, l, c, 14), talib.NATR(h, l, c, 14)]
    upper, middle, lower = talib.BBANDS(c, 20, 2.0, 2.0, 0)
    out += [(c - lower) / (upper - lower), (upper - lower) / middle,
            talib.MFI(h, l, c, v, 14)]
    return out


def test_talib_subset_matches_talib_column_count():
    assert len(_talib_default(*(np.linspace(1, 2, 300) for _ in range(5)))) == len(TALIB_SUBSET)


@pytest.mark.parametrize("impl", ["numba", "talib"])
def test_default_spec_talib_columns(benchmark, big, impl):
    """The default spec's TA-Lib-computable columns: our engine against TA-Lib one by one."""
    benchmark.group = f"default spec, TA-Lib columns, {len(big) // 1_000_000}M bars"
    arrays = _a(big)
    if impl == "numba":
        benchmark(compute_features_arrays, *arrays, big.index.asi8, TALIB_SUBSET)
    else:
        benchmark(_talib_default, *arrays)


@pytest.mark.parametrize("threads", [1, 2])
def test_default_spec_all_columns(benchmark, big, threads):
    """The whole default spec (39 columns; many have no TA-Lib equivalent), single-threaded
    and with its columns spread over two threads."""
    benchmark.group = f"default spec, all columns, {len(big) // 1_000_000}M bars"
    benchmark(compute_features_arrays, *_a(big), big.index.asi8, FeatureSpec.default(),
              threads=threads)


def test_streaming_update_per_bar(benchmark):
    """One closed bar through the whole default spec (the bot's per-bar cost): 2,000 real
    bars per round, so the timer's own cost (about 1 µs a call) is not counted as the
    engine's; ``us_per_bar`` is the round's minimum over its bars."""
    bars = load_sample("btcusd-1h")
    stream = FeatureStream(FeatureSpec.default())
    stream.warm(bars.iloc[:1000])
    rows = [(*map(float, bar), int(t)) for bar, t in zip(
        bars[["open", "high", "low", "close", "volume"]].to_numpy()[1000:3000],
        bars.index.as_unit("ns").asi8[1000:3000], strict=True)]

    def run() -> None:
        for row in rows:
            stream.update(*row)

    benchmark.group = "streaming update, default spec"
    benchmark.pedantic(run, rounds=20, iterations=1, warmup_rounds=1)
    benchmark.extra_info["us_per_bar"] = round(benchmark.stats.stats.min / len(rows) * 1e6, 2)


def test_warm_import_and_first_call(benchmark):
    """A new process: import the engine and compute a first matrix (numba cache warm)."""
    code = ("import time; t = time.perf_counter(); import numpy as np; "
            "from features_numba import FeatureSpec, compute_features_arrays; "
            "x = np.full(500, 100.0); "
            "compute_features_arrays(x, x * 1.01, x * 0.99, x, x, "
            "np.arange(500, dtype=np.int64) * 3_600_000_000_000, FeatureSpec.default()); "
            "print(time.perf_counter() - t)")
    subprocess.run([sys.executable, "-c", code], check=True)  # fills the cache if cold
    benchmark.group = "engine start-up (new process)"
    seconds = []
    benchmark.pedantic(lambda: seconds.append(float(subprocess.run(
        [sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout)),
        rounds=3, iterations=1)
    benchmark.extra_info["import_and_first_call_s"] = min(seconds)

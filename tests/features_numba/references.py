"""Reference implementations (TA-Lib where it has the indicator, else pandas) per feature."""
from __future__ import annotations

import numpy as np
import pandas as pd
import talib
from numpy.lib.stride_tricks import sliding_window_view
from scipy import stats

from features_numba import FeatureDef


def _lr(c: pd.Series) -> pd.Series:
    return np.log(c / c.shift())


def _where(flat: np.ndarray, fill: float, values: np.ndarray) -> np.ndarray:
    """``values``, with ``fill`` where the window is flat (NaN comparisons are never flat)."""
    return np.where(flat, fill, np.asarray(values, dtype=float))


def _windows(x: np.ndarray, n: int) -> np.ndarray:
    """Trailing windows of ``x`` aligned to their last bar (NaN-padded warm-up rows)."""
    padded = np.concatenate([np.full(n - 1, np.nan), x])
    return sliding_window_view(padded, n)


def _exact_zscore(x: np.ndarray, n: int) -> np.ndarray:
    """``(x - rolling mean) / rolling std`` computed exactly per window (pandas' rolling std
    uses running sums, which lose about 1e-9 on prices of 1e4)."""
    w = _windows(x, n)
    std = w.std(axis=1, ddof=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return _where(std == 0, 0.0, (x - w.mean(axis=1)) / std)


def reference(d: FeatureDef, bars: pd.DataFrame) -> np.ndarray:
    """The expected column for ``d`` on ``bars``."""
    o, h, l, c, v = (bars[k] for k in ("open", "high", "low", "close", "volume"))
    a = {k: bars[k].to_numpy() for k in ("open", "high", "low", "close", "volume")}
    p = d.kw
    n = p.get("n")
    kind = d.kind
    if kind == "log_return":
        return np.log(c / c.shift(n)).to_numpy()
    if kind == "pct_return":
        return (c / c.shift(n) - 1).to_numpy()
    if kind == "sma_ratio":
        return a["close"] / talib.SMA(a["close"], n) - 1
    if kind == "ema_ratio":
        return a["close"] / talib.EMA(a["close"], n) - 1
    if kind == "rsi":
        return talib.RSI(a["close"], n)
    if kind == "natr":
        return talib.NATR(a["high"], a["low"], a["close"], n)
    if kind == "volatility":
        return _lr(c).rolling(n).std().to_numpy()
    if kind == "zscore" and p["input"] == "close":
        return _exact_zscore(a["close"], n)
    if kind == "zscore":
        std = v.rolling(n).std().to_numpy()
        return _where(std == 0, 0.0, ((v - v.rolling(n).mean()) / v.rolling(n).std()))
    if kind == "bollinger":
        upper, middle, lower = talib.BBANDS(a["close"], n, p["k"], p["k"], 0)
        if p["part"] == "width":
            return (upper - lower) / middle
        with np.errstate(invalid="ignore", divide="ignore"):
            return _where(upper == lower, 0.5, (a["close"] - lower) / (upper - lower))
    if kind == "range_position":
        hi, lo = h.rolling(n).max().to_numpy(), l.rolling(n).min().to_numpy()
        with np.errstate(invalid="ignore", divide="ignore"):
            return _where(hi == lo, 0.5, (a["close"] - lo) / (hi - lo))
    if kind == "candle":
        rng = (h - l).to_numpy()
        part = {"body": c - o, "upper_wick": h - np.maximum(o, c),
                "lower_wick": np.minimum(o, c) - l}[p["part"]].to_numpy()
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(rng > 0, part / rng, 0.0)
    if kind == "cyclic_time":
        idx = bars.index
        phase = ((idx.hour * 3600 + idx.minute * 60 + idx.second) / 86400.0
                 if p["cycle"] == "hour" else idx.day_of_week / 7.0)
        angle = 2 * np.pi * np.asarray(phase, dtype=float)
        return np.sin(angle) if p["wave"] == "sin" else np.cos(angle)
    if kind == "macd":
        line, signal, hist = talib.MACD(a["close"], p["fast"], p["slow"], p["signal"])
        return {"line": line, "signal": signal, "hist": hist}[p["part"]]
    if kind == "stochastic":
        k, dd = talib.STOCH(a["high"], a["low"], a["close"], fastk_period=n,
                            slowk_period=p["slow"], slowk_matype=0, slowd_period=p["d"],
                            slowd_matype=0)
        return k if p["part"] == "k" else dd
    if kind == "williams_r":
        return talib.WILLR(a["high"], a["low"], a["close"], n)
    if kind == "cci":
        return talib.CCI(a["high"], a["low"], a["close"], n)
    if kind == "adx":
        return talib.ADX(a["high"], a["low"], a["close"], n)
    if kind == "obv":
        return talib.OBV(a["close"], a["volume"])
    if kind == "level":
        return a["close"]
    if kind == "mfi":
        return talib.MFI(a["high"], a["low"], a["close"], a["volume"], n)
    if kind == "moments":
        # pandas' rolling skew/kurt definitions, computed exactly per window with scipy
        w = _windows(_lr(c).to_numpy(), n)
        flat = np.ptp(w, axis=1) == 0
        with np.errstate(invalid="ignore", divide="ignore"):
            if p["moment"] == "skew":
                values = stats.skew(w, axis=1, bias=False)
            else:
                values = stats.kurtosis(w, axis=1, bias=False)
        return _where(flat, 0.0, values)
    if kind == "range_volatility":
        hl, co = np.log(h / l), np.log(c / o)
        if p["estimator"] == "parkinson":
            return np.sqrt((hl ** 2).rolling(n).mean() / (4 * np.log(2))).to_numpy()
        return np.sqrt((0.5 * hl ** 2 - (2 * np.log(2) - 1) * co ** 2).rolling(n).mean()
                       ).to_numpy()
    if kind == "distance_extreme":
        ext = h.rolling(n).max() if p["side"] == "high" else l.rolling(n).min()
        return (c / ext - 1).to_numpy()
    raise AssertionError(f"no reference for {kind}")

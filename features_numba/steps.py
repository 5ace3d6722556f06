"""Per-bar update steps, one per feature kind: the single definition of every feature.

Each step has the same signature ``(p, s, o, h, l, c, v, ts) -> value``: parameters ``p``,
the feature's own state slice ``s`` (updated in place), one closed bar, and returns the
feature at that bar (NaN during warm-up). The batch engine loops a step over all bars; the
streaming engine calls it once per bar: both run the very same float operations, so their
outputs are bit-identical, and a step can only see bars up to the current one.

State layout: ``s[0]`` counts bars seen; ring buffers hold the last ``n`` inputs.
"""
from __future__ import annotations

import math

from numba import njit

NAN = math.nan


@njit(cache=True, inline="always")
def _push(s, base, n, x):
    """Write ``x`` into the ring at ``s[base:base+n]`` (write position in ``s[1]``); return the
    value it replaces."""
    pos = int(s[1])
    old = s[base + pos]
    s[base + pos] = x
    pos += 1
    if pos == n:
        pos = 0
    s[1] = pos
    return old


@njit(cache=True, inline="always")
def _ring_mean_std(s, base, n, ddof):
    """Mean and standard deviation (two-pass) of the ring ``s[base:base+n]``."""
    total = 0.0
    for k in range(n):
        total += s[base + k]
    mean = total / n
    acc = 0.0
    for k in range(n):
        d = s[base + k] - mean
        acc += d * d
    return mean, math.sqrt(acc / (n - ddof))


@njit(cache=True)
def log_return_step(p, s, o, h, l, c, v, ts):
    """``log(close / close.shift(n))`` (pandas); warm-up n bars. State: count, pos, ring(n)."""
    n = int(p[0])
    s[0] += 1.0
    old = _push(s, 2, n, c)
    return math.log(c / old) if s[0] > n else NAN


@njit(cache=True)
def sma_ratio_step(p, s, o, h, l, c, v, ts):
    """``close / SMA(close, n) - 1`` (TA-Lib SMA, running sum); warm-up n-1. State: count,
    pos, sum, ring(n)."""
    n = int(p[0])
    s[0] += 1.0
    old = _push(s, 3, n, c)
    if s[0] > n:
        s[2] += c - old
    else:
        s[2] += c
    return c / (s[2] / n) - 1.0 if s[0] >= n else NAN


@njit(cache=True)
def ema_ratio_step(p, s, o, h, l, c, v, ts):
    """``close / EMA(close, n) - 1`` (TA-Lib EMA: seeded by the SMA of the first n closes,
    k = 2/(n+1)); warm-up n-1. State: count, sum, ema."""
    n = int(p[0])
    s[0] += 1.0
    if s[0] < n:
        s[1] += c
        return NAN
    if s[0] == n:
        s[1] += c
        s[2] = s[1] / n
    else:
        s[2] = (c - s[2]) * (2.0 / (n + 1)) + s[2]
    return c / s[2] - 1.0


@njit(cache=True)
def rsi_step(p, s, o, h, l, c, v, ts):
    """RSI in 0..100, as ``talib.RSI`` (Wilder smoothing seeded by the mean of the first n
    changes); warm-up n. State: count, previous close, average gain, average loss."""
    n = int(p[0])
    s[0] += 1.0
    count = s[0]
    if count == 1.0:
        s[1] = c
        return NAN
    diff = c - s[1]
    s[1] = c
    gain = diff if diff > 0.0 else 0.0
    loss = -diff if diff < 0.0 else 0.0
    if count <= n:
        s[2] += gain
        s[3] += loss
        return NAN
    if count == n + 1:
        s[2] = (s[2] + gain) / n
        s[3] = (s[3] + loss) / n
    else:
        s[2] = (s[2] * (n - 1) + gain) / n
        s[3] = (s[3] * (n - 1) + loss) / n
    total = s[2] + s[3]
    return 100.0 * (s[2] / total) if total != 0.0 else 0.0


@njit(cache=True)
def natr_step(p, s, o, h, l, c, v, ts):
    """ATR / close * 100, as ``talib.NATR`` (true range from bar 1, ATR seeded by the mean of
    the first n true ranges, then Wilder); warm-up n. State: count, previous close, sum, atr."""
    n = int(p[0])
    s[0] += 1.0
    count = s[0]
    prev = s[1]
    s[1] = c
    if count == 1.0:
        return NAN
    tr = max(h - l, abs(h - prev), abs(l - prev))
    if count <= n:
        s[2] += tr
        return NAN
    if count == n + 1:
        s[3] = (s[2] + tr) / n
    else:
        s[3] = (s[3] * (n - 1) + tr) / n
    return (s[3] / c) * 100.0


@njit(cache=True)
def volatility_step(p, s, o, h, l, c, v, ts):
    """Rolling standard deviation (ddof=1) of 1-bar log returns over n bars, as
    ``np.log(close / close.shift()).rolling(n).std()``; warm-up n. State: count, pos,
    previous close, ring(n)."""
    n = int(p[0])
    s[0] += 1.0
    prev = s[2]
    s[2] = c
    if s[0] == 1.0:
        return NAN
    _push(s, 3, n, math.log(c / prev))
    if s[0] <= n:
        return NAN
    return _ring_mean_std(s, 3, n, 1)[1]


@njit(cache=True)
def zscore_step(p, s, o, h, l, c, v, ts):
    """``(close - mean) / std`` over n closes (ddof=1, pandas rolling); warm-up n-1; 0 when
    the window is flat. State: count, pos, ring(n)."""
    n = int(p[0])
    s[0] += 1.0
    _push(s, 2, n, c)
    if s[0] < n:
        return NAN
    mean, std = _ring_mean_std(s, 2, n, 1)
    return (c - mean) / std if std > 0.0 else 0.0


@njit(cache=True)
def bollinger_pctb_step(p, s, o, h, l, c, v, ts):
    """Bollinger %b ``(close - lower) / (upper - lower)`` with ``talib.BBANDS`` bands (SMA n,
    k population standard deviations); warm-up n-1; 0.5 when flat. State: count, pos, ring(n)."""
    n = int(p[0])
    s[0] += 1.0
    _push(s, 2, n, c)
    if s[0] < n:
        return NAN
    mean, std = _ring_mean_std(s, 2, n, 0)
    width = 2.0 * p[1] * std
    return (c - (mean - p[1] * std)) / width if width > 0.0 else 0.5


@njit(cache=True)
def bollinger_width_step(p, s, o, h, l, c, v, ts):
    """Bollinger width ``(upper - lower) / middle`` (``talib.BBANDS``, SMA n, k population
    standard deviations); warm-up n-1. State: count, pos, ring(n)."""
    n = int(p[0])
    s[0] += 1.0
    _push(s, 2, n, c)
    if s[0] < n:
        return NAN
    mean, std = _ring_mean_std(s, 2, n, 0)
    return 2.0 * p[1] * std / mean


@njit(cache=True)
def volume_zscore_step(p, s, o, h, l, c, v, ts):
    """``(volume - mean) / std`` over n volumes (ddof=1, pandas rolling); warm-up n-1; 0 when
    the window is flat (e.g. zero-volume runs). State: count, pos, ring(n)."""
    n = int(p[0])
    s[0] += 1.0
    _push(s, 2, n, v)
    if s[0] < n:
        return NAN
    mean, std = _ring_mean_std(s, 2, n, 1)
    return (v - mean) / std if std > 0.0 else 0.0


@njit(cache=True)
def range_position_step(p, s, o, h, l, c, v, ts):
    """``(close - lowest low) / (highest high - lowest low)`` over n bars (pandas rolling
    max/min); warm-up n-1; 0.5 when flat. State: count, pos, ring of highs(n), ring of lows(n)."""
    n = int(p[0])
    s[0] += 1.0
    pos = int(s[1])
    s[2 + pos] = h
    s[2 + n + pos] = l
    s[1] = 0.0 if pos + 1 == n else pos + 1.0
    if s[0] < n:
        return NAN
    hi = s[2]
    lo = s[2 + n]
    for k in range(1, n):
        hi = max(hi, s[2 + k])
        lo = min(lo, s[2 + n + k])
    return (c - lo) / (hi - lo) if hi > lo else 0.5


@njit(cache=True)
def candle_step(p, s, o, h, l, c, v, ts):
    """Candle shape over its range ``high - low``: p[0] = 0 body ``(close - open)``,
    1 upper wick ``high - max(open, close)``, 2 lower wick ``min(open, close) - low``;
    0 for a flat bar; no warm-up, no state."""
    rng = h - l
    if rng <= 0.0:
        return 0.0
    part = int(p[0])
    if part == 0:
        return (c - o) / rng
    if part == 1:
        return (h - max(o, c)) / rng
    return (min(o, c) - l) / rng


@njit(cache=True)
def cyclic_time_step(p, s, o, h, l, c, v, ts):
    """Cyclic encoding of the bar's open time (UTC): p[0] = 0 hour of day, 1 day of week
    (Monday = 0); p[1] = 0 sine, 1 cosine. No warm-up, no state."""
    seconds = ts // 1_000_000_000
    if p[0] == 0.0:
        phase = (seconds % 86400) / 86400.0
    else:
        phase = ((seconds // 86400 + 3) % 7) / 7.0  # 1970-01-01 was a Thursday
    angle = 2.0 * math.pi * phase
    return math.sin(angle) if p[1] == 0.0 else math.cos(angle)

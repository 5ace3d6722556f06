"""Per-bar update steps, one per feature kind: the single definition of every feature.

Each step has the same signature ``(p, s, o, h, l, c, v, ts) -> value``: parameters ``p``,
the feature's own state slice ``s`` (updated in place), one closed bar, and returns the
feature at that bar (NaN during warm-up). The streaming engine calls it once per bar; the
batch engine runs a whole-array kernel doing the very same float operations (``kernels_1d``,
``kernels_moments``, which share this module's ``*_of`` and smoothing helpers), or loops the
step itself for the kinds without one: their outputs are bit-identical, and a step can only see
bars up to the current one.

State layout: ``s[0]`` counts bars seen; ring buffers hold the last ``n`` inputs.
"""
from __future__ import annotations

import math

from numba import njit

from features_numba.codes import (
    ADX,
    BOLLINGER,
    CANDLE,
    CCI,
    CYCLIC_TIME,
    EMA_RATIO,
    LEVEL,
    LOG_RETURN,
    MACD,
    MFI,
    MOMENTS,
    NATR,
    OBV,
    PCT_RETURN,
    RANGE_POSITION,
    RANGE_VOLATILITY,
    RSI,
    SMA_RATIO,
    STOCHASTIC,
    VOLATILITY,
    WILLIAMS_R,
    ZSCORE,
)
from features_numba.fused import fma
from features_numba.windows import _extreme_push, _moments_push, _raw_moment, mean_var

NAN = math.nan


@njit(cache=True, inline="always")
def _push(s, at, base, n, x):
    """Write ``x`` into the ring ``s[base:base+n]`` whose write position is ``s[at]``; return
    the value it replaces."""
    pos = int(s[at])
    old = s[base + pos]
    s[base + pos] = x
    pos += 1
    if pos == n:
        pos = 0
    s[at] = pos
    return old


@njit(cache=True, inline="always")
def _true_range(h, l, prev_c):
    """Wilder's true range of a bar given the previous close (selects, not ``max()``: which
    term wins is data-dependent, and a mispredicted branch costs more than the rest)."""
    hl = h - l
    up = abs(h - prev_c)
    down = abs(l - prev_c)
    top = hl if hl > up else up
    return top if top > down else down


@njit(cache=True, inline="always")
def ema_next(ema, x, k):
    """The EMA after x with smoothing k: ``(x - ema) * k + ema`` as TA-Lib writes it, the
    multiply and add fused (one rounding, half the latency of the chain)."""
    return fma(x - ema, k, ema)


@njit(cache=True, inline="always")
def wilder_next(avg, x, decay, inv):
    """Wilder's average after x: ``avg * (n-1)/n + x / n`` with ``decay`` = (n-1)/n and
    ``inv`` = 1/n, the multiply and add of the chain fused."""
    return fma(avg, decay, x * inv)


@njit(cache=True, inline="always")
def _directional_movement(h, l, prev_h, prev_l):
    """(+DM, -DM) of a bar against the previous one, as TA-Lib."""
    diff_p = h - prev_h
    diff_m = prev_l - l
    if diff_m > 0.0 and diff_p < diff_m:
        return 0.0, diff_m
    if diff_p > 0.0 and diff_p > diff_m:
        return diff_p, 0.0
    return 0.0, 0.0


@njit(cache=True, inline="always")
def _dx(plus_s, minus_s, tr_s):
    """Directional index from smoothed +DM, -DM and true range (0 when undefined); one
    division for both DIs (multiplies by 100 / TR: a last-bit change from TA-Lib's two)."""
    if tr_s == 0.0:
        return 0.0
    scale = 100.0 / tr_s
    minus_di = minus_s * scale
    plus_di = plus_s * scale
    total = minus_di + plus_di
    return 100.0 * (abs(minus_di - plus_di) / total) if total != 0.0 else 0.0


@njit(cache=True, inline="always")
def wilder_sum_next(total, x, inv):
    """A Wilder-smoothed sum after x: TA-Lib's ``total - total / n + x``, with ``inv`` = 1/n
    multiplied rather than n divided (the divisions were 40% of ADX's time)."""
    return total - total * inv + x


@njit(cache=True, inline="always")
def _high_low(s, base, n, h, l):
    """Push the bar (number ``s[0]``) into the window extremes at ``base`` (highs) and after
    it (lows); return the highest high and lowest low of the last n bars."""
    k = s[0]
    hi = _extreme_push(s, base, n, k, h, 1.0)
    lo = _extreme_push(s, base + 2 + n, n, k, l, -1.0)
    return hi, lo


@njit(cache=True, inline="always")
def _williams_r(hi, lo, c):
    """Williams %R of close c in the range hi..lo (0 for a flat range)."""
    diff = (hi - lo) * -0.01
    return (hi - c) / diff if diff != 0.0 else 0.0


@njit(cache=True, inline="always")
def _fast_k(hi, lo, c):
    """Fast stochastic %K of close c in the range hi..lo (0 for a flat range)."""
    diff = (hi - lo) / 100.0
    return (c - lo) / diff if diff != 0.0 else 0.0


@njit(cache=True, inline="always")
def _range_position(hi, lo, c):
    """Where close c sits in the range lo..hi, 0..1 (0.5 for a flat range)."""
    return (c - lo) / (hi - lo) if hi > lo else 0.5


@njit(cache=True, inline="always")
def _push_log_return(s, n, order, c):
    """Push ``log(c / previous close)`` into the moments window at ``s[2]`` (count ``s[0]``,
    previous close ``s[1]``); True once it holds n returns."""
    s[0] += 1.0
    prev = s[1]
    s[1] = c
    if s[0] == 1.0:
        return False
    return _moments_push(s, 2, n, order, math.log(c / prev))


@njit(cache=True, inline="always")
def _ring_mean(s, base, n):
    """Mean of the ring ``s[base:base+n]`` (summed in ring order)."""
    total = 0.0
    for k in range(n):
        total += s[base + k]
    return total / n


@njit(cache=True)
def log_return_step(p, s, o, h, l, c, v, ts):
    """``log(close / close.shift(n))`` (pandas); warm-up n bars. State: count, pos, ring(n)."""
    n = int(p[0])
    s[0] += 1.0
    old = _push(s, 1, 2, n, c)
    return math.log(c / old) if s[0] > n else NAN


@njit(cache=True)
def sma_ratio_step(p, s, o, h, l, c, v, ts):
    """``close / SMA(close, n) - 1`` (TA-Lib SMA, running sum); warm-up n-1. State: count,
    pos, sum, ring(n)."""
    n = int(p[0])
    s[0] += 1.0
    old = _push(s, 1, 3, n, c)
    if s[0] > n:
        s[2] += c - old
    else:
        s[2] += c
    return c / (s[2] * (1.0 / n)) - 1.0 if s[0] >= n else NAN


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
        s[2] = ema_next(s[2], c, 2.0 / (n + 1))
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
        s[2] = wilder_next(s[2], gain, (n - 1.0) / n, 1.0 / n)
        s[3] = wilder_next(s[3], loss, (n - 1.0) / n, 1.0 / n)
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
    tr = _true_range(h, l, prev)
    if count <= n:
        s[2] += tr
        return NAN
    if count == n + 1:
        s[3] = (s[2] + tr) / n
    else:
        s[3] = wilder_next(s[3], tr, (n - 1.0) / n, 1.0 / n)
    return (s[3] / c) * 100.0


@njit(cache=True)
def volatility_step(p, s, o, h, l, c, v, ts):
    """Rolling standard deviation (ddof=1) of 1-bar log returns over n bars, as
    ``np.log(close / close.shift()).rolling(n).std()``; warm-up n. State: count, previous
    close, moments window of the returns (order 2)."""
    n = int(p[0])
    if not _push_log_return(s, n, 2, c):
        return NAN
    return volatility_of(n, _raw_moment(s, 2, n, 1), _raw_moment(s, 2, n, 2))


@njit(cache=True, inline="always")
def volatility_of(n, r1, r2):
    """The sample standard deviation of a full window from its raw moments."""
    return math.sqrt(mean_var(r1, r2)[1] * (n / (n - 1.0)))


@njit(cache=True)
def zscore_step(p, s, o, h, l, c, v, ts):
    """``(x - mean) / std`` over the last n values of x = close (p[1] = 0) or volume (p[1] = 1),
    ddof=1 like pandas rolling; warm-up n-1; 0 when the window is flat (e.g. zero-volume
    runs). State: moments window of x (order 2)."""
    x = c if p[1] == 0.0 else v
    n = int(p[0])
    if not _moments_push(s, 0, n, 2, x):
        return NAN
    return zscore_of(n, s[2], _raw_moment(s, 0, n, 1), _raw_moment(s, 0, n, 2), x)


@njit(cache=True, inline="always")
def zscore_of(n, anchor, r1, r2, x):
    """The z-score of x from a full window of n values (its anchor and raw moments)."""
    mean, var = mean_var(r1, r2)
    if var == 0.0:
        return 0.0
    return ((x - anchor) - mean) / math.sqrt(var * (n / (n - 1.0)))


@njit(cache=True)
def bollinger_step(p, s, o, h, l, c, v, ts):
    """Bollinger bands as ``talib.BBANDS`` (SMA n, k population standard deviations):
    p[2] = 0 %b ``(close - lower) / (upper - lower)`` (0.5 when flat), 1 width
    ``(upper - lower) / middle``; warm-up n-1. State: moments window of the close (order 2)."""
    n = int(p[0])
    if not _moments_push(s, 0, n, 2, c):
        return NAN
    return bollinger_of(p[1], p[2], s[2], _raw_moment(s, 0, n, 1), _raw_moment(s, 0, n, 2), c)


@njit(cache=True, inline="always")
def bollinger_of(k, part, anchor, r1, r2, c):
    """%b (part 0) or width (1) of the bands k standard deviations wide, from a full window
    of the close (its anchor and raw moments)."""
    mean, var = mean_var(r1, r2)
    std = math.sqrt(var)
    width = 2.0 * k * std
    if part == 1.0:
        return width / (anchor + mean)
    return ((c - anchor) - mean + k * std) / width if width > 0.0 else 0.5


@njit(cache=True)
def range_position_step(p, s, o, h, l, c, v, ts):
    """``(close - lowest low) / (highest high - lowest low)`` over n bars (pandas rolling
    max/min); warm-up n-1; 0.5 when flat. State: count, extremes of highs and lows."""
    n = int(p[0])
    s[0] += 1.0
    hi, lo = _high_low(s, 1, n, h, l)
    if s[0] < n:
        return NAN
    return _range_position(hi, lo, c)


@njit(cache=True)
def level_step(p, s, o, h, l, c, v, ts):
    """The close itself (for a series of values such as a funding rate: the value); no
    warm-up, no state."""
    return c


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


@njit(cache=True)
def pct_return_step(p, s, o, h, l, c, v, ts):
    """``close.pct_change(n)`` (pandas) as ``close / close.shift(n) - 1``; warm-up n.
    State: count, pos, ring(n)."""
    n = int(p[0])
    s[0] += 1.0
    old = _push(s, 1, 2, n, c)
    return c / old - 1.0 if s[0] > n else NAN


@njit(cache=True)
def macd_step(p, s, o, h, l, c, v, ts):
    """``talib.MACD(close, fast, slow, signal)``: p = fast, slow, signal, part (0 line,
    1 signal, 2 histogram). Both EMAs are seeded at bar slow-1 by SMAs ending there, the signal
    EMA by the SMA of the first ``signal`` MACD values; warm-up slow + signal - 2.
    State: count, fast sum, slow sum, fast EMA, slow EMA, signal sum, signal EMA."""
    fast, slow, sig = int(p[0]), int(p[1]), int(p[2])
    s[0] += 1.0
    i = int(s[0]) - 1
    if i >= slow - fast:
        if i <= slow - 1:
            s[1] += c
        else:
            s[3] = ema_next(s[3], c, 2.0 / (fast + 1))
    if i <= slow - 1:
        s[2] += c
    else:
        s[4] = ema_next(s[4], c, 2.0 / (slow + 1))
    if i < slow - 1:
        return NAN
    if i == slow - 1:
        s[3] = s[1] / fast
        s[4] = s[2] / slow
    line = s[3] - s[4]
    j = i - (slow - 1)
    if j < sig - 1:
        s[5] += line
        return NAN
    if j == sig - 1:
        s[5] += line
        s[6] = s[5] / sig
    else:
        s[6] = ema_next(s[6], line, 2.0 / (sig + 1))
    part = int(p[3])
    if part == 0:
        return line
    if part == 1:
        return s[6]
    return line - s[6]


@njit(cache=True)
def stochastic_step(p, s, o, h, l, c, v, ts):
    """``talib.STOCH(high, low, close, n, slow, 0, d, 0)``: p = n, slow, d, part (0 slow %K,
    1 slow %D); SMA smoothing; warm-up n + slow + d - 3. State: count, smoothing position,
    extremes of highs and lows, rings of fast %K(slow) and slow %K(d)."""
    n, slow, d = int(p[0]), int(p[1]), int(p[2])
    s[0] += 1.0
    count = int(s[0])
    hi, lo = _high_low(s, 2, n, h, l)
    if count < n:
        return NAN
    fast_k = _fast_k(hi, lo, c)
    base_fk = 6 + 2 * n
    base_sk = base_fk + slow
    pos = int(s[1])  # one position drives both smoothing rings: they advance together
    s[base_fk + pos % slow] = fast_k
    if count < n + slow - 1:
        s[1] = pos + 1
        return NAN
    slow_k = _ring_mean(s, base_fk, slow)
    s[base_sk + pos % d] = slow_k
    s[1] = (pos + 1) % (slow * d)
    if count < n + slow + d - 2:
        return NAN
    if int(p[3]) == 0:
        return slow_k
    return _ring_mean(s, base_sk, d)


@njit(cache=True)
def williams_r_step(p, s, o, h, l, c, v, ts):
    """``talib.WILLR(high, low, close, n)`` in -100..0; 0 for a flat window; warm-up n-1.
    State: count, extremes of highs and lows."""
    n = int(p[0])
    s[0] += 1.0
    hi, lo = _high_low(s, 1, n, h, l)
    if s[0] < n:
        return NAN
    return _williams_r(hi, lo, c)


@njit(cache=True)
def cci_step(p, s, o, h, l, c, v, ts):
    """``talib.CCI(high, low, close, n)``: (typical price - its SMA) / (0.015 * mean absolute
    deviation); 0 when flat; warm-up n-1. State: count, pos, ring of typical prices(n)."""
    n = int(p[0])
    s[0] += 1.0
    tp = (h + l + c) / 3.0
    _push(s, 1, 2, n, tp)
    if s[0] < n:
        return NAN
    mean = _ring_mean(s, 2, n)
    dev = 0.0
    for k in range(n):
        dev += abs(s[2 + k] - mean)
    return cci_of(n, tp, mean, dev)


@njit(cache=True, inline="always")
def cci_of(n, tp, mean, dev):
    """CCI from the typical price, its n-bar mean and the sum of absolute deviations."""
    diff = tp - mean
    return diff / (0.015 * (dev / n)) if diff != 0.0 and dev != 0.0 else 0.0


@njit(cache=True)
def adx_step(p, s, o, h, l, c, v, ts):
    """``talib.ADX(high, low, close, n)``: Wilder-smoothed directional movement; warm-up 2n-1.
    State: count, previous high, low, close, +DM, -DM, TR, sum of DX, ADX."""
    n = int(p[0])
    s[0] += 1.0
    count = int(s[0])
    prev_h, prev_l, prev_c = s[1], s[2], s[3]
    s[1], s[2], s[3] = h, l, c
    if count == 1:
        return NAN
    plus_dm, minus_dm = _directional_movement(h, l, prev_h, prev_l)
    tr = _true_range(h, l, prev_c)
    if count <= n:  # bars 1 .. n-1: plain sums seed the smoothing
        s[4] += plus_dm
        s[5] += minus_dm
        s[6] += tr
        return NAN
    inv = 1.0 / n
    s[4] = wilder_sum_next(s[4], plus_dm, inv)
    s[5] = wilder_sum_next(s[5], minus_dm, inv)
    s[6] = wilder_sum_next(s[6], tr, inv)
    dx = _dx(s[4], s[5], s[6])
    if count < 2 * n:
        s[7] += dx
        return NAN
    if count == 2 * n:
        s[8] = (s[7] + dx) / n
    else:
        s[8] = wilder_next(s[8], dx, (n - 1.0) / n, inv)
    return s[8]


@njit(cache=True)
def obv_step(p, s, o, h, l, c, v, ts):
    """``talib.OBV(close, volume)``: cumulative volume signed by the close's direction, starting
    at the first bar's volume; no warm-up. State: count, previous close, OBV."""
    s[0] += 1.0
    if s[0] == 1.0:
        s[2] = v
    elif c > s[1]:
        s[2] += v
    elif c < s[1]:
        s[2] -= v
    s[1] = c
    return s[2]


@njit(cache=True)
def mfi_step(p, s, o, h, l, c, v, ts):
    """``talib.MFI(high, low, close, volume, n)``: 100 * positive / total money flow over n
    typical-price changes (a change within TA-Lib's scaled epsilon counts as none); 0 when
    total flow < 1; warm-up n. State: count, pos, previous typical
    price, positive sum, negative sum, rings of positive(n) and negative(n) flows."""
    n = int(p[0])
    s[0] += 1.0
    tp = (h + l + c) / 3.0
    prev = s[2]
    s[2] = tp
    if s[0] == 1.0:
        return NAN
    flow = tp * v
    diff = tp - prev
    # TA-Lib treats |diff| <= 1e-14 * (|tp| + |prev|) as no change (TA_IS_ZERO_SCALED)
    flat = abs(diff) <= 1e-14 * (abs(tp) + abs(prev))
    pos_flow = flow if diff > 0.0 and not flat else 0.0
    neg_flow = flow if diff < 0.0 and not flat else 0.0
    at = int(s[1])
    s[3] += pos_flow - s[5 + at]
    s[4] += neg_flow - s[5 + n + at]
    s[5 + at] = pos_flow
    s[5 + n + at] = neg_flow
    s[1] = 0.0 if at + 1 == n else at + 1.0
    if s[0] <= n:
        return NAN
    total = s[3] + s[4]
    return 100.0 * (s[3] / total) if total >= 1.0 else 0.0


@njit(cache=True)
def moments_step(p, s, o, h, l, c, v, ts):
    """Rolling skew (p[1] = 0) or excess kurtosis (p[1] = 1) of 1-bar log returns over n bars,
    bias-corrected like ``Series.rolling(n).skew()`` / ``.kurt()``; 0 when flat; warm-up n.
    State: count, previous close, moments window of the returns (order 4)."""
    n = int(p[0])
    if not _push_log_return(s, n, 4, c):
        return NAN
    return moments_of(n, p[1], _raw_moment(s, 2, n, 1), _raw_moment(s, 2, n, 2),
                      _raw_moment(s, 2, n, 3), _raw_moment(s, 2, n, 4))


@njit(cache=True, inline="always")
def moments_of(n, moment, r1, r2, r3, r4):
    """Skew (moment 0) or kurtosis (1) from a full window's raw moments 1..4 about its
    anchor."""
    r1, m2 = mean_var(r1, r2)
    if m2 == 0.0:
        return 0.0
    # central moments from the anchored raw ones (the anchor is near the mean: small r1)
    m3 = r3 - 3.0 * r1 * r2 + 2.0 * r1 ** 3
    if moment == 0.0:
        return math.sqrt(n * (n - 1.0)) / (n - 2.0) * m3 / m2 ** 1.5
    m4 = r4 - 4.0 * r1 * r3 + 6.0 * r1 * r1 * r2 - 3.0 * r1 ** 4
    g2 = m4 / (m2 * m2) - 3.0
    return (n - 1.0) / ((n - 2.0) * (n - 3.0)) * ((n + 1.0) * g2 + 6.0)


@njit(cache=True)
def range_volatility_step(p, s, o, h, l, c, v, ts):
    """Range-based volatility per bar over n bars: p[1] = 0 Parkinson
    ``sqrt(mean(ln(h/l)^2) / (4 ln 2))``, 1 Garman-Klass
    ``sqrt(mean(0.5 ln(h/l)^2 - (2 ln 2 - 1) ln(c/o)^2))`` (pandas rolling mean); warm-up n-1.
    State: moments window of the per-bar terms (order 1)."""
    n = int(p[0])
    if not _moments_push(s, 0, n, 1, range_term(p, o, h, l, c)):
        return NAN
    return range_volatility_of(p[1], s[2], _raw_moment(s, 0, n, 1))


@njit(cache=True, inline="always")
def range_term(p, o, h, l, c):
    """A bar's term of the range estimator (its window mean is the variance)."""
    hl = math.log(h / l)
    if p[1] == 0.0:
        return hl * hl
    co = math.log(c / o)
    return 0.5 * hl * hl - (2.0 * math.log(2.0) - 1.0) * co * co


@njit(cache=True, inline="always")
def range_volatility_of(estimator, anchor, r1):
    """The range estimator (0 Parkinson, 1 Garman-Klass) from a full window of its terms
    (anchor, first raw moment)."""
    mean = anchor + r1
    if estimator == 0.0:
        return math.sqrt(mean / (4.0 * math.log(2.0))) if mean > 0.0 else 0.0
    return math.sqrt(mean) if mean > 0.0 else 0.0


@njit(cache=True)
def distance_extreme_step(p, s, o, h, l, c, v, ts):
    """``close / rolling max(high, n) - 1`` (p[1] = 0) or ``close / rolling min(low, n) - 1``
    (p[1] = 1), pandas rolling; warm-up n-1. State: count, window extreme."""
    n = int(p[0])
    s[0] += 1.0
    if p[1] == 0.0:
        extreme = _extreme_push(s, 1, n, s[0], h, 1.0)
    else:
        extreme = _extreme_push(s, 1, n, s[0], l, -1.0)
    if s[0] < n:
        return NAN
    return c / extreme - 1.0


@njit(cache=True, nogil=True)
def column_nb(code, p, s, o, h, l, c, v, ts, out):
    """Feature of kind ``code`` (parameters ``p``, fresh state ``s``) at every bar, into
    ``out``, for the kinds without a whole-array kernel (``kernels_1d``, ``kernels_moments``):
    the candle shapes, the level and calendar waves, which have no window. The dispatch sits
    outside the bar loop on purpose: each loop then compiles to its step alone, about 15x
    faster than choosing the step at every bar."""
    if code == CANDLE:
        for i in range(c.shape[0]):
            out[i] = candle_step(p, s, o[i], h[i], l[i], c[i], v[i], ts[i])
    elif code == LEVEL:
        for i in range(c.shape[0]):
            out[i] = level_step(p, s, o[i], h[i], l[i], c[i], v[i], ts[i])
    else:
        for i in range(c.shape[0]):
            out[i] = cyclic_time_step(p, s, o[i], h[i], l[i], c[i], v[i], ts[i])


@njit(cache=True, inline="always")
def _step_nb(code, p, s, o, h, l, c, v, ts):
    """Advance the feature of kind ``code`` by one bar and return its value (the streaming
    engine's dispatch: one bar for each feature, so no loop to hoist it out of)."""
    if code == LOG_RETURN:
        return log_return_step(p, s, o, h, l, c, v, ts)
    if code == SMA_RATIO:
        return sma_ratio_step(p, s, o, h, l, c, v, ts)
    if code == EMA_RATIO:
        return ema_ratio_step(p, s, o, h, l, c, v, ts)
    if code == RSI:
        return rsi_step(p, s, o, h, l, c, v, ts)
    if code == NATR:
        return natr_step(p, s, o, h, l, c, v, ts)
    if code == VOLATILITY:
        return volatility_step(p, s, o, h, l, c, v, ts)
    if code == ZSCORE:
        return zscore_step(p, s, o, h, l, c, v, ts)
    if code == BOLLINGER:
        return bollinger_step(p, s, o, h, l, c, v, ts)
    if code == RANGE_POSITION:
        return range_position_step(p, s, o, h, l, c, v, ts)
    if code == CANDLE:
        return candle_step(p, s, o, h, l, c, v, ts)
    if code == CYCLIC_TIME:
        return cyclic_time_step(p, s, o, h, l, c, v, ts)
    if code == PCT_RETURN:
        return pct_return_step(p, s, o, h, l, c, v, ts)
    if code == MACD:
        return macd_step(p, s, o, h, l, c, v, ts)
    if code == STOCHASTIC:
        return stochastic_step(p, s, o, h, l, c, v, ts)
    if code == WILLIAMS_R:
        return williams_r_step(p, s, o, h, l, c, v, ts)
    if code == CCI:
        return cci_step(p, s, o, h, l, c, v, ts)
    if code == ADX:
        return adx_step(p, s, o, h, l, c, v, ts)
    if code == OBV:
        return obv_step(p, s, o, h, l, c, v, ts)
    if code == MFI:
        return mfi_step(p, s, o, h, l, c, v, ts)
    if code == MOMENTS:
        return moments_step(p, s, o, h, l, c, v, ts)
    if code == RANGE_VOLATILITY:
        return range_volatility_step(p, s, o, h, l, c, v, ts)
    if code == LEVEL:
        return level_step(p, s, o, h, l, c, v, ts)
    return distance_extreme_step(p, s, o, h, l, c, v, ts)  # DISTANCE_EXTREME


@njit(cache=True)
def update_nb(codes, params, offsets, state, o, h, l, c, v, ts, out):
    """Advance every feature by one bar, writing the row into ``out``."""
    for f in range(codes.shape[0]):
        out[f] = _step_nb(codes[f], params[f], state[offsets[f]:offsets[f + 1]],
                          o, h, l, c, v, ts)


@njit(cache=True)
def warm_nb(codes, params, offsets, state, o, h, l, c, v, ts, out):
    """Advance every feature over all the bars given, leaving the last row in ``out``."""
    for i in range(o.shape[0]):
        update_nb(codes, params, offsets, state, o[i], h[i], l[i], c[i], v[i], ts[i], out)

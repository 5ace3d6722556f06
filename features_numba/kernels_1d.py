"""Whole-array kernels for the batch engine, for the kinds where speed matters most.

Each ``<op>_1d_nb(p, o, h, l, c, v, ts, out)`` fills ``out`` (one column, allocated by the
caller) with exactly the values its step in ``steps.py`` yields bar by bar: the same float
operations in the same order, with the state held in local variables instead of a state array
(which is what makes them several times faster). The streaming engine keeps using the steps;
the tests check both give bit-identical columns on real data for every kind.
"""
from __future__ import annotations

import math

import numpy as np
from numba import njit

from features_numba.steps import (
    _directional_movement,
    _dx,
    _fast_k,
    _range_position,
    _true_range,
    _williams_r,
    cci_of,
    ema_next,
    wilder_next,
    wilder_sum_next,
)

NAN = math.nan


@njit(cache=True, inline="always")
def _returns(c, n, out, log):
    """Returns over n bars: ``log(c / c[-n])`` or ``c / c[-n] - 1``; NaN for the first n."""
    for i in range(min(n, c.shape[0])):
        out[i] = NAN
    for i in range(n, c.shape[0]):
        out[i] = math.log(c[i] / c[i - n]) if log else c[i] / c[i - n] - 1.0


@njit(cache=True, nogil=True)
def log_return_1d_nb(p, o, h, l, c, v, ts, out):
    """``log(close / close.shift(n))``; as ``log_return_step``."""
    _returns(c, int(p[0]), out, True)


@njit(cache=True, nogil=True)
def pct_return_1d_nb(p, o, h, l, c, v, ts, out):
    """``close / close.shift(n) - 1``; as ``pct_return_step``."""
    _returns(c, int(p[0]), out, False)


@njit(cache=True, nogil=True)
def sma_ratio_1d_nb(p, o, h, l, c, v, ts, out):
    """``close / SMA(close, n) - 1``; as ``sma_ratio_step`` (running sum)."""
    n = int(p[0])
    inv = 1.0 / n
    m = c.shape[0]
    total = 0.0
    for i in range(min(n, m)):  # warm-up: fill the first window
        total += c[i]
        out[i] = NAN
    if m >= n:
        out[n - 1] = c[n - 1] / (total * inv) - 1.0
    for i in range(n, m):
        total += c[i] - c[i - n]
        out[i] = c[i] / (total * inv) - 1.0


@njit(cache=True, nogil=True)
def ema_ratio_1d_nb(p, o, h, l, c, v, ts, out):
    """``close / EMA(close, n) - 1``, TA-Lib seeding; as ``ema_ratio_step``."""
    n = int(p[0])
    m = c.shape[0]
    k = 2.0 / (n + 1)
    total = 0.0
    for i in range(min(n, m)):  # warm-up: the seed is the SMA of the first n closes
        total += c[i]
        out[i] = NAN
    if m < n:
        return
    ema = total / n
    out[n - 1] = c[n - 1] / ema - 1.0
    for i in range(n, m):
        ema = ema_next(ema, c[i], k)
        out[i] = c[i] / ema - 1.0


@njit(cache=True, nogil=True)
def rsi_1d_nb(p, o, h, l, c, v, ts, out):
    """RSI as ``talib.RSI``; as ``rsi_step``."""
    n = int(p[0])
    m = c.shape[0]
    decay, inv = (n - 1.0) / n, 1.0 / n
    gain_avg = 0.0
    loss_avg = 0.0
    for i in range(min(n + 1, m)):  # warm-up: sum the first n - 1 changes
        out[i] = NAN
        if 0 < i < n:
            diff = c[i] - c[i - 1]
            gain_avg += diff if diff > 0.0 else 0.0
            loss_avg += -diff if diff < 0.0 else 0.0
    if m <= n:
        return
    diff = c[n] - c[n - 1]  # the seed: the mean of the first n changes
    gain_avg = (gain_avg + (diff if diff > 0.0 else 0.0)) / n
    loss_avg = (loss_avg + (-diff if diff < 0.0 else 0.0)) / n
    total = gain_avg + loss_avg
    out[n] = 100.0 * (gain_avg / total) if total != 0.0 else 0.0
    # slices indexed from 0: Numba handles an index it cannot prove >= 0 at every access
    closes, dst = c[n + 1:], out[n + 1:]
    prev = c[n]
    for t in range(closes.shape[0]):
        diff = closes[t] - prev
        prev = closes[t]
        gain_avg = wilder_next(gain_avg, diff if diff > 0.0 else 0.0, decay, inv)
        loss_avg = wilder_next(loss_avg, -diff if diff < 0.0 else 0.0, decay, inv)
        total = gain_avg + loss_avg
        dst[t] = 100.0 * (gain_avg / total) if total != 0.0 else 0.0


@njit(cache=True, nogil=True)
def natr_1d_nb(p, o, h, l, c, v, ts, out):
    """ATR / close * 100 as ``talib.NATR``; as ``natr_step``."""
    n = int(p[0])
    m = c.shape[0]
    decay, inv = (n - 1.0) / n, 1.0 / n
    total = 0.0
    for i in range(min(n, m)):  # warm-up: sum the first n - 1 true ranges
        out[i] = NAN
        if i > 0:
            total += _true_range(h[i], l[i], c[i - 1])
    if m <= n:
        return
    atr = (total + _true_range(h[n], l[n], c[n - 1])) / n
    out[n] = (atr / c[n]) * 100.0
    # slices indexed from 0: Numba handles an index it cannot prove >= 0 at every access
    highs, lows, closes, dst = h[n + 1:], l[n + 1:], c[n + 1:], out[n + 1:]
    prev = c[n]
    for t in range(closes.shape[0]):
        atr = wilder_next(atr, _true_range(highs[t], lows[t], prev), decay, inv)
        prev = closes[t]
        dst[t] = (atr / prev) * 100.0


@njit(cache=True, nogil=True)
def obv_1d_nb(p, o, h, l, c, v, ts, out):
    """On-balance volume as ``talib.OBV``; as ``obv_step``."""
    if c.shape[0] == 0:
        return
    acc = v[0]
    out[0] = acc
    for i in range(1, c.shape[0]):
        # branch-free: +v, -v or +0.0 give the very sums the step's branches give
        direction = (1.0 if c[i] > c[i - 1] else 0.0) - (1.0 if c[i] < c[i - 1] else 0.0)
        acc += direction * v[i]
        out[i] = acc


@njit(cache=True, nogil=True)
def macd_1d_nb(p, o, h, l, c, v, ts, out):
    """MACD line / signal / histogram as ``talib.MACD``; as ``macd_step``. In three phases
    (seed sums, signal seed, steady state) so the long last loop has no warm-up branches."""
    fast, slow, sig, part = int(p[0]), int(p[1]), int(p[2]), int(p[3])
    k_fast, k_slow, k_sig = 2.0 / (fast + 1), 2.0 / (slow + 1), 2.0 / (sig + 1)
    m = c.shape[0]
    first = slow - 1  # the first bar with a MACD line
    for i in range(min(m, first)):
        out[i] = NAN
    if m <= first:
        return
    sum_fast = 0.0  # the EMAs' seeds: the means of their first windows
    for i in range(slow - fast, slow):
        sum_fast += c[i]
    sum_slow = 0.0
    for i in range(slow):
        sum_slow += c[i]
    ema_fast = sum_fast / fast
    ema_slow = sum_slow / slow
    line = 0.0
    sum_sig = 0.0  # the signal's seed: the mean of the first sig lines
    for i in range(first, min(m, first + sig)):
        if i > first:
            ema_fast = ema_next(ema_fast, c[i], k_fast)
            ema_slow = ema_next(ema_slow, c[i], k_slow)
        line = ema_fast - ema_slow
        sum_sig += line
        out[i] = NAN
    if m < first + sig:
        return
    ema_sig = sum_sig / sig
    out[first + sig - 1] = line if part == 0 else (ema_sig if part == 1 else line - ema_sig)
    for i in range(first + sig, m):
        x = c[i]
        ema_fast = ema_next(ema_fast, x, k_fast)
        ema_slow = ema_next(ema_slow, x, k_slow)
        line = ema_fast - ema_slow
        ema_sig = ema_next(ema_sig, line, k_sig)
        out[i] = line if part == 0 else (ema_sig if part == 1 else line - ema_sig)


@njit(cache=True, inline="always")
def _range_outputs(mode, hi, lo, c, out):
    """``out[k]``: what ``mode`` reads from the range hi[k]..lo[k] and the close c[k]. One loop
    a mode, so each compiles to vector instructions (a mode chosen per bar would not)."""
    if mode == 0:
        for k in range(out.shape[0]):
            out[k] = _williams_r(hi[k], lo[k], c[k])
    elif mode == 1:
        for k in range(out.shape[0]):
            out[k] = _range_position(hi[k], lo[k], c[k])
    elif mode == 2:
        for k in range(out.shape[0]):
            out[k] = _fast_k(hi[k], lo[k], c[k])
    elif mode == 3:
        for k in range(out.shape[0]):
            out[k] = c[k] / hi[k] - 1.0
    else:
        for k in range(out.shape[0]):
            out[k] = c[k] / lo[k] - 1.0


# bars a range chunk holds (whole blocks of n): its extremes stay in the L1 cache
_RANGE_CHUNK = 1024


@njit(cache=True, inline="always")
def _over_range(mode, n, h, l, c, out):
    """``out[i]`` = ``_range_outputs`` of the highest high and lowest low of bars i-n+1..i and
    c[i]; NaN for i < n-1. van Herk / Gil-Werman: bars fall into blocks of n; the window
    ending at a bar is the tail of the previous block (its suffix extreme, kept in a buffer of
    n) plus the head of this one (its running extreme): O(1) a bar, no window rescans. Exact
    selections, so equal value for value to the streaming steps' window extremes (written
    ``a if a > b else b``, which compiles to one max instruction). The extremes of a chunk of
    blocks go to two buffers, then one vector loop turns them into outputs.
    Indices are cast to unsigned: Numba checks every signed index it cannot prove >= 0 for
    wrap-around, which here cost half as much again as the loop itself."""
    m = c.shape[0]
    span = max(1, _RANGE_CHUNK // n) * n
    # the previous block's suffix extremes; [n], read at a block's last bar, is neutral
    tail_hi = np.full(n + 1, -np.inf)
    tail_lo = np.full(n + 1, np.inf)
    hi = np.empty(span)
    lo = np.empty(span)
    for start in range(0, m, span):
        hs, ls = h[start:start + span], l[start:start + span]
        size = hs.shape[0]
        for block in range(0, size, n):
            end = min(block + n, size)
            run_hi, run_lo = hs[block], ls[block]
            for i in range(block, end):
                k, at = np.uint64(i), np.uint64(i - block + 1)
                run_hi = run_hi if run_hi > hs[k] else hs[k]
                run_lo = run_lo if run_lo < ls[k] else ls[k]
                hi[k] = tail_hi[at] if tail_hi[at] > run_hi else run_hi
                lo[k] = tail_lo[at] if tail_lo[at] < run_lo else run_lo
            run_hi, run_lo = hs[end - 1], ls[end - 1]
            for j in range(end - block):  # backwards: this block's suffix extremes
                k, at = np.uint64(end - 1 - j), np.uint64(end - 1 - j - block)
                run_hi = run_hi if run_hi > hs[k] else hs[k]
                run_lo = run_lo if run_lo < ls[k] else ls[k]
                tail_hi[at] = run_hi
                tail_lo[at] = run_lo
        first = max(0, min(n - 1 - start, size))  # warm-up bars in this chunk
        out[start:start + first] = NAN
        _range_outputs(mode, hi[first:size], lo[first:size], c[start + first:start + size],
                       out[start + first:start + size])


@njit(cache=True, nogil=True)
def range_1d_nb(mode, p, o, h, l, c, v, ts, out):
    """Where the close sits in its n-bar range, for the four kinds that read one (one kernel,
    compiled once): ``mode`` 0 Williams %R as ``talib.WILLR`` (``williams_r_step``), 1 the
    range position (``range_position_step``), 2 the fast stochastic %K, 3 the distance to the
    n-bar high, or low when p[1] = 1 (``distance_extreme_step``)."""
    if mode == 3 and p[1] != 0.0:
        mode = 4
    _over_range(mode, int(p[0]), h, l, c, out)


def stochastic_1d(p, o, h, l, c, v, ts, out):
    """Slow stochastic %K / %D as ``talib.STOCH`` (SMA smoothing); as ``stochastic_step``.
    Plain Python around two kernels, so the range kernel is the one compiled for the other
    range kinds (a call from inside a kernel would compile it a second time)."""
    fast = np.empty(c.shape[0])
    range_1d_nb(2, p, o, h, l, c, v, ts, fast)
    stochastic_smooth_nb(p, fast, out)


@njit(cache=True, nogil=True)
def stochastic_smooth_nb(p, fast, out):
    """The slow %K (SMA of ``slow`` fast %K values) or %D (SMA of ``d`` slow %K values) from
    the fast %K of every bar, with the ring-order sums of ``stochastic_step``."""
    n, slow, d, part = int(p[0]), int(p[1]), int(p[2]), int(p[3])
    fast_ring = np.zeros(slow)
    slow_ring = np.zeros(d)
    for i in range(fast.shape[0]):
        out[i] = NAN
        if i < n - 1:
            continue
        pos = i - (n - 1)
        fast_ring[pos % slow] = fast[i]
        if pos < slow - 1:
            continue
        total = 0.0
        for k in range(slow):
            total += fast_ring[k]
        slow_k = total / slow
        slow_ring[pos % d] = slow_k
        if pos < slow + d - 2:
            continue
        if part == 0:
            out[i] = slow_k
        else:
            total = 0.0
            for k in range(d):
                total += slow_ring[k]
            out[i] = total / d


@njit(cache=True, nogil=True)
def adx_1d_nb(p, o, h, l, c, v, ts, out):
    """ADX as ``talib.ADX``; as ``adx_step``."""
    n = int(p[0])
    decay, inv = (n - 1.0) / n, 1.0 / n
    plus_s = 0.0
    minus_s = 0.0
    tr_s = 0.0
    dx_sum = 0.0
    adx = 0.0
    if c.shape[0]:
        out[0] = NAN
    for i in range(1, c.shape[0]):
        plus_dm, minus_dm = _directional_movement(h[i], l[i], h[i - 1], l[i - 1])
        tr = _true_range(h[i], l[i], c[i - 1])
        out[i] = NAN
        if i < n:
            plus_s += plus_dm
            minus_s += minus_dm
            tr_s += tr
            continue
        plus_s = wilder_sum_next(plus_s, plus_dm, inv)
        minus_s = wilder_sum_next(minus_s, minus_dm, inv)
        tr_s = wilder_sum_next(tr_s, tr, inv)
        dx = _dx(plus_s, minus_s, tr_s)
        if i < 2 * n - 1:
            dx_sum += dx
            continue
        if i == 2 * n - 1:
            adx = (dx_sum + dx) / n
        else:
            adx = wilder_next(adx, dx, decay, inv)
        out[i] = adx


@njit(cache=True, nogil=True)
def mfi_1d_nb(p, o, h, l, c, v, ts, out):
    """Money flow index as ``talib.MFI``; as ``mfi_step`` (same flow rings and sums)."""
    n = int(p[0])
    pos_ring = np.zeros(n)
    neg_ring = np.zeros(n)
    pos_sum = 0.0
    neg_sum = 0.0
    prev = 0.0
    for i in range(c.shape[0]):
        tp = (h[i] + l[i] + c[i]) / 3.0
        out[i] = NAN
        if i == 0:
            prev = tp
            continue
        flow = tp * v[i]
        diff = tp - prev
        flat = abs(diff) <= 1e-14 * (abs(tp) + abs(prev))  # TA-Lib's scaled tie
        prev = tp
        pos_flow = flow if diff > 0.0 and not flat else 0.0
        neg_flow = flow if diff < 0.0 and not flat else 0.0
        at = (i - 1) % n
        pos_sum += pos_flow - pos_ring[at]
        neg_sum += neg_flow - neg_ring[at]
        pos_ring[at] = pos_flow
        neg_ring[at] = neg_flow
        if i < n:
            continue
        total = pos_sum + neg_sum
        out[i] = 100.0 * (pos_sum / total) if total >= 1.0 else 0.0


@njit(cache=True, nogil=True)
def cci_1d_nb(p, o, h, l, c, v, ts, out):
    """CCI as ``talib.CCI``; as ``cci_step`` (same ring, summed in ring order). The mean
    deviation needs its window rescanned every bar (as TA-Lib does); two bars are done per
    rescan, the second reading the ring with its own new value in place, so their sums are two
    independent chains the CPU runs side by side, each adding in the step's order."""
    n = int(p[0])
    m = c.shape[0]
    ring = np.zeros(n)
    for i in range(min(n - 1, m)):
        ring[i] = (h[i] + l[i] + c[i]) / 3.0
        out[i] = NAN
    for i in range(n - 1, m, 2):
        tp_a = (h[i] + l[i] + c[i]) / 3.0
        ring[i % n] = tp_a
        pair = i + 1 < m
        at = (i + 1) % n  # the slot bar i+1 overwrites
        tp_b = (h[i + 1] + l[i + 1] + c[i + 1]) / 3.0 if pair else 0.0
        total_a = 0.0
        total_b = 0.0
        for k in range(n):
            x = ring[k]
            total_a += x
            total_b += tp_b if k == at else x
        mean_a = total_a / n
        mean_b = total_b / n
        dev_a = 0.0
        dev_b = 0.0
        for k in range(n):
            x = ring[k]
            dev_a += abs(x - mean_a)
            dev_b += abs((tp_b if k == at else x) - mean_b)
        out[i] = cci_of(n, tp_a, mean_a, dev_a)
        if pair:
            ring[at] = tp_b
            out[i + 1] = cci_of(n, tp_b, mean_b, dev_b)

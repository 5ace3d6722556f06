"""Whole-array kernel for the kinds that read rolling moments: volatility, z-scores, Bollinger
bands, skew/kurtosis and the range estimators.

It runs the very arithmetic of ``windows._moments_push`` (anchored power sums with Neumaier's
compensation, re-anchored every n values) with the sums held in local variables and the ring
being the input array itself, then each member's value comes from the same ``*_of`` function
its step in ``steps.py`` uses: so every column is bit-identical to its step's, several times
faster. Features reading the same window (same input, same n) are computed in one pass.
"""
from __future__ import annotations

import math

import numpy as np
from numba import njit

from features_numba.codes import (
    BOLLINGER,
    MOMENTS,
    VOLATILITY,
    ZSCORE,
)
from features_numba.steps import (
    bollinger_of,
    moments_of,
    range_term,
    range_volatility_of,
    volatility_of,
    zscore_of,
)
from features_numba.windows import two_sum

NAN = math.nan


@njit(cache=True, nogil=True)
def range_terms_nb(p, o, h, l, c):
    """Every bar's term of a range estimator (``steps.range_term``)."""
    out = np.empty(c.shape[0])
    for i in range(c.shape[0]):
        out[i] = range_term(p, o[i], h[i], l[i], c[i])
    return out


CHUNK = 2048  # bars whose window moments are buffered before the members read them


@njit(cache=True, inline="always")
def _add(total, comp, x, compensated):
    """``two_sum``, or a plain add leaving the compensation alone."""
    return two_sum(total, comp, x) if compensated else (total + x, comp)


@njit(cache=True, inline="always")
def _add_powers(sums, d, sign, order, compensated):
    """``sums`` (s1, c1, .., s4, c4: sums of powers 1..4 and their compensations) after
    ``sign * d ** j`` is added to sum j, for j = 1..2, or 1..4 when ``order`` is 4;
    compensated, or plainly for the re-anchor's sums from scratch (as ``windows._reanchor``)."""
    s1, c1, s2, c2, s3, c3, s4, c4 = sums
    s1, c1 = _add(s1, c1, sign * d, compensated)
    power = d * d
    s2, c2 = _add(s2, c2, sign * power, compensated)
    if order == 4:
        power *= d
        s3, c3 = _add(s3, c3, sign * power, compensated)
        power *= d
        s4, c4 = _add(s4, c4, sign * power, compensated)
    return s1, c1, s2, c2, s3, c3, s4, c4


@njit(cache=True, inline="always")
def _window_sums(x, n, order, start, end, state, raw):
    """Push ``x[start:end]`` through the window whose sums, anchor and position are in
    ``state``; ``raw[q - start]`` gets (anchor, raw moments 1..2, or 1..4) of the window ending
    at q once it is full. The arithmetic of ``windows._moments_push`` (each sum sees the same
    adds in the same order), with the sums in locals. Called with a constant ``order`` (2 or
    4), so each compiles to its own loop without the other's branches."""
    sums = (state[0], state[1], state[2], state[3], state[4], state[5], state[6], state[7])
    anchor = state[8]
    pos = int(state[9])
    for q in range(start, end):
        pos += 1
        if pos == n:  # n more values: re-anchor at their mean and sum them from scratch
            pos = 0
            window = x[q - n + 1:q + 1]
            total = 0.0
            for k in range(n):
                total += window[k]
            anchor = total / n
            sums = (0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0)
            for k in range(n):  # plain sums, as ``windows._reanchor`` (see there)
                sums = _add_powers(sums, window[k] - anchor, 1.0, order, False)
        elif q >= n:  # the new value enters, the one n back leaves (unsigned indices:
            # Numba checks every signed index it cannot prove >= 0 for wrap-around)
            sums = _add_powers(sums, x[np.uint64(q)] - anchor, 1.0, order, True)
            sums = _add_powers(sums, x[np.uint64(q - n)] - anchor, -1.0, order, True)
        else:
            continue  # the first window is not full yet
        row = np.uint64(q - start)
        raw[row, 0] = anchor
        raw[row, 1] = (sums[0] + sums[1]) / n
        raw[row, 2] = (sums[2] + sums[3]) / n
        if order == 4:
            raw[row, 3] = (sums[4] + sums[5]) / n
            raw[row, 4] = (sums[6] + sums[7]) / n
    state[:8] = sums
    state[8] = anchor
    state[9] = pos


@njit(cache=True, nogil=True)
def moments_nb(x, lag, n, order, params, codes, c, out, columns):
    """Members reading the rolling window of the last n values of ``x``: member j has kind
    ``codes[j]`` and parameters ``params[j]``, and fills ``out[:, columns[j]]``. ``x[q]`` is
    the input of bar ``q + lag`` (lag 1: returns, which the first bar has none of); ``order``
    is the highest power any member reads (1, 2 or 4; the first two sums are always kept).

    In chunks: the window's moments of ``CHUNK`` bars go to a small buffer, then each member
    reads them in its own loop (one loop choosing the member at every bar runs 3x slower)."""
    for i in range(min(out.shape[0], n - 1 + lag)):  # before the first full window
        for j in range(columns.shape[0]):
            out[i, columns[j]] = NAN
    state = np.zeros(10)
    raw = np.empty((CHUNK, 5))
    for start in range(0, x.shape[0], CHUNK):
        end = min(start + CHUNK, x.shape[0])
        if order == 4:  # a constant each: two loops, each without the other's branches
            _window_sums(x, n, 4, start, end, state, raw)
        else:  # (order 1 runs this one too: a third variant costs more compiling than it saves)
            _window_sums(x, n, 2, start, end, state, raw)
        first = max(start, n - 1)  # the first full window in this chunk
        # slices indexed from 0: Numba checks every index it cannot prove >= 0
        rows, xs, cs = raw[first - start:end - start], x[first:end], c[first + lag:end + lag]
        for j in range(columns.shape[0]):
            dst = out[first + lag:end + lag, columns[j]]
            code = codes[j]
            if code == BOLLINGER:
                k, part = params[j, 1], params[j, 2]
                for u in range(dst.shape[0]):
                    r = rows[u]
                    dst[u] = bollinger_of(k, part, r[0], r[1], r[2], cs[u])
            elif code == ZSCORE:
                for u in range(dst.shape[0]):
                    r = rows[u]
                    dst[u] = zscore_of(n, r[0], r[1], r[2], xs[u])
            elif code == VOLATILITY:
                for u in range(dst.shape[0]):
                    r = rows[u]
                    dst[u] = volatility_of(n, r[1], r[2])
            elif code == MOMENTS:
                moment = params[j, 1]
                for u in range(dst.shape[0]):
                    r = rows[u]
                    dst[u] = moments_of(n, moment, r[1], r[2], r[3], r[4])
            else:
                estimator = params[j, 1]
                for u in range(dst.shape[0]):
                    r = rows[u]
                    dst[u] = range_volatility_of(estimator, r[0], r[1])

"""O(1) rolling windows kept in a flat state array: compensated moments and window extremes.

Both live in a slice of a feature's state (see ``steps.py``), so the streaming engine saves them
with the rest, and the batch engine runs the very same code over all bars: the two stay
bit-identical. Neither rescans its window on an ordinary bar.

**Moments** (``_moments_*``): sums of powers 1..``order`` of ``x - anchor`` over the last n
values, each with Neumaier's compensation term, updated by adding the new value and removing
the one that leaves. Every n bars, when the ring is in time order again, the anchor moves to the
window's mean and the sums are recomputed from scratch, so rounding never accumulates for more
than one window and the anchored values stay small (no cancellation on prices of 1e4). The
recomputed sums are plain: n values about their own mean lose less than n ulps of their
magnitudes, and compensating them cost a tenth of the batch Bollinger kernel's time.
Layout at ``base``: count, ring position, anchor, (sum, compensation) per power, ring(n).

**Extremes** (``_extreme_push``): van Herk / Gil-Werman blocks. Bars fall into blocks of n;
the window ending in a block is the tail of the previous block plus the head of this one, so its
extreme is the larger of the previous block's suffix extreme (kept in the ring) and this
block's running extreme. A completed block turns its ring into suffix extremes in one backward
pass: O(1) per bar amortised, three comparisons, no data-dependent loop (a monotonic deque
also is O(1) amortised, but its pops are unpredictable branches: measured 3-4x slower here).
Layout at ``base``: position in the block, the block's running extreme, ring(n).
"""
from __future__ import annotations

from numba import njit

# a variance below this fraction of the anchored second moment is rounding, not data
FLAT = 64.0 * 2.0 ** -52


def moments_size(n: int, order: int) -> int:
    """State floats a moments window of n values and ``order`` powers needs."""
    return 3 + 2 * order + n


def extreme_size(n: int) -> int:
    """State floats a window extreme over n bars needs."""
    return 2 + n


@njit(cache=True, inline="always")
def two_sum(total, comp, x):
    """Compensated summation: add x to ``total`` whose lost low-order part is ``comp``;
    returns the new (total, comp). The batch kernels keep the pair in locals, the steps in
    state.

    The rounding error of ``total + x`` is found by Knuth's TwoSum rather than Neumaier's
    test of which term is larger: both give that error exactly, so the sums are bit for bit
    Neumaier's (a test checks it), but TwoSum has no data-dependent select and runs about
    1.6x faster in the batch loops."""
    t = total + x
    back = t - total
    return t, comp + ((total - (t - back)) + (x - back))


@njit(cache=True, inline="always")
def _compensated_add(s, at, x):
    """``two_sum`` on the sum ``s[at]`` and its compensation ``s[at+1]``."""
    s[at], s[at + 1] = two_sum(s[at], s[at + 1], x)


@njit(cache=True, inline="always")
def _reanchor(s, base, n, order):
    """Anchor at the mean of the ring (in time order now) and recompute every sum from it."""
    ring = base + 3 + 2 * order
    total = 0.0
    for k in range(n):
        total += s[ring + k]
    anchor = total / n
    s[base + 2] = anchor
    for j in range(order):
        s[base + 3 + 2 * j] = 0.0
        s[base + 4 + 2 * j] = 0.0
    for k in range(n):
        d = s[ring + k] - anchor
        power = d
        for j in range(order):
            s[base + 3 + 2 * j] += power
            power *= d


@njit(cache=True, inline="always")
def _moments_push(s, base, n, order, x):
    """Add x to the window (the oldest value leaves once it holds n); True once it is full."""
    count = s[base] + 1.0
    s[base] = count
    pos = int(s[base + 1])
    ring = base + 3 + 2 * order
    old = s[ring + pos]
    s[ring + pos] = x
    pos += 1
    if pos == n:  # the ring is in time order: re-anchor (this also fills the first window)
        s[base + 1] = 0.0
        _reanchor(s, base, n, order)
        return True
    s[base + 1] = pos
    if count <= n:
        return False
    anchor = s[base + 2]
    d_new = x - anchor
    d_old = old - anchor
    p_new = d_new
    p_old = d_old
    for j in range(order):
        _compensated_add(s, base + 3 + 2 * j, p_new)
        _compensated_add(s, base + 3 + 2 * j, -p_old)
        p_new *= d_new
        p_old *= d_old
    return True


@njit(cache=True, inline="always")
def _raw_moment(s, base, n, j):
    """Mean of ``(x - anchor) ** j`` over the window (j = 1..order)."""
    return (s[base + 1 + 2 * j] + s[base + 2 + 2 * j]) / n


@njit(cache=True, inline="always")
def mean_var(r1, r2):
    """(mean of ``x - anchor``, population variance) of a full window from its first two raw
    moments about the anchor; the variance is 0.0 exactly when it is within rounding of a flat
    window."""
    var = r2 - r1 * r1
    return r1, (var if var > FLAT * r2 else 0.0)


@njit(cache=True, inline="always")
def _extreme_push(s, base, n, k, x, sign):
    """Push bar k's value x (k counts bars from 1); return the largest (``sign`` 1.0) or
    smallest (-1.0) value of bars ``k-n+1 .. k``."""
    pos = int(s[base])
    ring = base + 2
    s[ring + pos] = x
    top = x if pos == 0 else (x if sign * x >= sign * s[base + 1] else s[base + 1])
    s[base + 1] = top  # the extreme of this block so far
    if pos == n - 1:  # the block is complete: it is the window, and its suffixes are kept
        s[base] = 0.0
        for j in range(n - 2, -1, -1):
            if sign * s[ring + j + 1] > sign * s[ring + j]:
                s[ring + j] = s[ring + j + 1]
        return top
    s[base] = pos + 1.0
    if k <= n:  # the first block: no earlier bars
        return top
    # the window is the previous block after this position (its suffix extreme) + this block
    rest = s[ring + pos + 1]
    return rest if sign * rest > sign * top else top

"""The two engines' compiled loops: dispatch a feature's kind code to its step.

``_step_nb`` maps a kind code to its step function (codes are assigned in ``kinds.py``);
``batch_nb`` runs every feature over every bar into a caller-allocated matrix;
``update_nb`` advances every feature by one bar into a caller-allocated row. Both call the
same ``_step_nb``, hence the same arithmetic.
"""
from __future__ import annotations

from numba import njit

from features_numba.steps import (
    bollinger_pctb_step,
    bollinger_width_step,
    candle_step,
    cyclic_time_step,
    ema_ratio_step,
    log_return_step,
    natr_step,
    range_position_step,
    rsi_step,
    sma_ratio_step,
    volatility_step,
    volume_zscore_step,
    zscore_step,
)


@njit(cache=True)
def _step_nb(code, p, s, o, h, l, c, v, ts):
    """Advance the feature of kind ``code`` by one bar and return its value."""
    if code == 0:
        return log_return_step(p, s, o, h, l, c, v, ts)
    if code == 1:
        return sma_ratio_step(p, s, o, h, l, c, v, ts)
    if code == 2:
        return ema_ratio_step(p, s, o, h, l, c, v, ts)
    if code == 3:
        return rsi_step(p, s, o, h, l, c, v, ts)
    if code == 4:
        return natr_step(p, s, o, h, l, c, v, ts)
    if code == 5:
        return volatility_step(p, s, o, h, l, c, v, ts)
    if code == 6:
        return zscore_step(p, s, o, h, l, c, v, ts)
    if code == 7:
        return bollinger_pctb_step(p, s, o, h, l, c, v, ts)
    if code == 8:
        return bollinger_width_step(p, s, o, h, l, c, v, ts)
    if code == 9:
        return volume_zscore_step(p, s, o, h, l, c, v, ts)
    if code == 10:
        return range_position_step(p, s, o, h, l, c, v, ts)
    if code == 11:
        return candle_step(p, s, o, h, l, c, v, ts)
    return cyclic_time_step(p, s, o, h, l, c, v, ts)


@njit(cache=True)
def batch_nb(codes, params, offsets, state, o, h, l, c, v, ts, out):
    """Fill ``out[i, f]`` with feature f at bar i; ``state`` must start zeroed."""
    for f in range(codes.shape[0]):
        code = codes[f]
        p = params[f]
        s = state[offsets[f]:offsets[f + 1]]
        for i in range(o.shape[0]):
            out[i, f] = _step_nb(code, p, s, o[i], h[i], l[i], c[i], v[i], ts[i])


@njit(cache=True)
def update_nb(codes, params, offsets, state, o, h, l, c, v, ts, out):
    """Advance every feature by one bar, writing the row into ``out``."""
    for f in range(codes.shape[0]):
        out[f] = _step_nb(codes[f], params[f], state[offsets[f]:offsets[f + 1]],
                          o, h, l, c, v, ts)

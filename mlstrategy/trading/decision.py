"""The one decision rule from P(up) to a target position, shared by the strategy (backtest and
live) and the trading engine (validation metrics), so what is measured is what is traded.

It is compiled by Numba so the engine's kernel calls the very same function; Python callers
(``MLStrategy``) call the compiled function too.
"""
from __future__ import annotations

from numba import njit


@njit(cache=True, nogil=True)
def decide_nb(proba: float, current: int, enter: float, exit_: float,
              allow_short: bool) -> int:
    """The target position (1 long, 0 flat, -1 short) after a bar with model ``proba``.

    Long when P(up) reaches ``enter``; a long is kept while P(up) stays at or above ``exit``
    (hysteresis: no flapping around one level). Short, when allowed, mirrors it on P(down).
    During the warm-up (NaN) nothing changes.
    """
    if proba != proba:
        return current
    if proba >= (exit_ if current > 0 else enter):
        return 1
    if allow_short and 1.0 - proba >= (exit_ if current < 0 else enter):
        return -1
    return 0


def decide(proba: float, current: int, enter: float, exit_: float, allow_short: bool) -> int:
    """``decide_nb`` from Python (its arguments made the types it is compiled for)."""
    return decide_nb(float(proba), int(current), float(enter), float(exit_), bool(allow_short))

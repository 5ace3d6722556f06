"""The one decision rule from P(up) to a target position, shared by the strategy (backtest and
live) and the validation metrics, so what is measured is what is traded."""
from __future__ import annotations


def decide(proba: float, current: int, enter: float, exit_: float, allow_short: bool) -> int:
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

"""The catalogue of feature kinds: code, parameters, state size, warm-up and column name.

A kind's ``code`` selects its step in ``engine_nb._step_nb``; ``KERNEL_VERSION`` must be bumped
whenever any step's arithmetic changes, so models trained on the old features are refused.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from features_numba.errors import FeatureError

KERNEL_VERSION = 1

_CANDLE_PARTS = ("body", "upper_wick", "lower_wick")
_CYCLES = ("hour", "dow")
_WAVES = ("sin", "cos")


@dataclass(frozen=True)
class Kind:
    """How one kind of feature is parameterised, stored and named."""

    code: int
    params: tuple[str, ...]
    state_size: Callable[[dict], int]
    warmup: Callable[[dict], int]
    column: Callable[[str, dict], str]
    numeric: Callable[[dict], tuple[float, ...]]


def _window(p: dict) -> tuple[float, ...]:
    return (float(p["n"]),)


def _named(kind: str, p: dict) -> str:
    return f"{kind}_{p['n']}"


def _choice(value: str, options: tuple[str, ...], what: str) -> float:
    if value not in options:
        raise FeatureError(f"{what} must be one of {list(options)}, got {value!r}")
    return float(options.index(value))


KINDS: dict[str, Kind] = {
    "log_return": Kind(0, ("n",), lambda p: 2 + p["n"], lambda p: p["n"], _named, _window),
    "sma_ratio": Kind(1, ("n",), lambda p: 3 + p["n"], lambda p: p["n"] - 1, _named, _window),
    "ema_ratio": Kind(2, ("n",), lambda p: 3, lambda p: p["n"] - 1, _named, _window),
    "rsi": Kind(3, ("n",), lambda p: 4, lambda p: p["n"], _named, _window),
    "natr": Kind(4, ("n",), lambda p: 4, lambda p: p["n"], _named, _window),
    "volatility": Kind(5, ("n",), lambda p: 3 + p["n"], lambda p: p["n"], _named, _window),
    "zscore": Kind(6, ("n",), lambda p: 2 + p["n"], lambda p: p["n"] - 1, _named, _window),
    "bollinger_pctb": Kind(7, ("n", "k"), lambda p: 2 + p["n"], lambda p: p["n"] - 1,
                           lambda kind, p: f"{kind}_{p['n']}_{p['k']:g}",
                           lambda p: (float(p["n"]), float(p["k"]))),
    "bollinger_width": Kind(8, ("n", "k"), lambda p: 2 + p["n"], lambda p: p["n"] - 1,
                            lambda kind, p: f"{kind}_{p['n']}_{p['k']:g}",
                            lambda p: (float(p["n"]), float(p["k"]))),
    "volume_zscore": Kind(9, ("n",), lambda p: 2 + p["n"], lambda p: p["n"] - 1, _named,
                          _window),
    "range_position": Kind(10, ("n",), lambda p: 2 + 2 * p["n"], lambda p: p["n"] - 1, _named,
                           _window),
    "candle": Kind(11, ("part",), lambda p: 1, lambda p: 0,
                   lambda kind, p: f"candle_{p['part']}",
                   lambda p: (_choice(p["part"], _CANDLE_PARTS, "candle part"),)),
    "cyclic_time": Kind(12, ("cycle", "wave"), lambda p: 1, lambda p: 0,
                        lambda kind, p: f"{p['cycle']}_{p['wave']}",
                        lambda p: (_choice(p["cycle"], _CYCLES, "cycle"),
                                   _choice(p["wave"], _WAVES, "wave"))),
}

# smallest window each kind accepts (a window of 1 has no spread, an SMA of 1 is the price)
MIN_WINDOW = {"log_return": 1, "volatility": 2, "zscore": 2, "volume_zscore": 2,
              "bollinger_pctb": 2, "bollinger_width": 2}

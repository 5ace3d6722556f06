"""The catalogue of feature kinds: code, parameters, state size, warm-up and column name.

A kind's ``code`` (named in ``codes``) selects its step in ``steps._step_nb``;
``KERNEL_VERSION`` must be bumped whenever any step's arithmetic changes, so models trained
on the old features are refused. Parameters are integers (windows), floats (``k``) or names
from a fixed choice, which reach the compiled step as floats (a choice as its position in the
list).
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from features_numba import codes
from features_numba.errors import FeatureError
from features_numba.windows import extreme_size, moments_size

KERNEL_VERSION = 5  # 5: plain re-anchor sums, ADX by 1/n; 4: EMA and Wilder fused (fma)


@dataclass(frozen=True)
class Kind:
    """How one kind of feature is parameterised, stored and named."""

    code: int
    params: tuple[str, ...]
    state_size: Callable[[dict], int]
    warmup: Callable[[dict], int]
    column: Callable[[dict], str]
    choices: dict[str, tuple[str, ...]] = field(default_factory=dict)
    min_window: int = 1

    def numeric(self, p: dict) -> tuple[float, ...]:
        """Parameters as the floats the step reads, in ``params`` order."""
        out = []
        for name in self.params:
            if name in self.choices:
                options = self.choices[name]
                if p[name] not in options:
                    raise FeatureError(f"{name} must be one of {list(options)}, "
                                       f"got {p[name]!r}")
                out.append(float(options.index(p[name])))
            else:
                out.append(float(p[name]))
        return tuple(out)


def _windowed(code: int, prefix: str, state: Callable[[int], int], warm: Callable[[int], int],
              min_window: int = 1) -> Kind:
    """A kind whose only parameter is the window ``n``."""
    return Kind(code, ("n",), lambda p: state(p["n"]), lambda p: warm(p["n"]),
                lambda p: f"{prefix}_{p['n']}", min_window=min_window)


def _sided(code: int, choice: str, options: tuple[str, ...], state: Callable[[int], int],
           warm: Callable[[int], int], names: tuple[str, ...]) -> Kind:
    """A window ``n`` plus a choice (which output of the step); named by the choice."""
    return Kind(code, ("n", choice), lambda p: state(p["n"]), lambda p: warm(p["n"]),
                lambda p: f"{names[options.index(p[choice])]}_{p['n']}",
                choices={choice: options}, min_window=2)


KINDS: dict[str, Kind] = {
    "log_return": _windowed(codes.LOG_RETURN, "log_return", lambda n: 2 + n, lambda n: n),
    "sma_ratio": _windowed(codes.SMA_RATIO, "sma_ratio", lambda n: 3 + n, lambda n: n - 1),
    "ema_ratio": _windowed(codes.EMA_RATIO, "ema_ratio", lambda n: 3, lambda n: n - 1),
    "rsi": _windowed(codes.RSI, "rsi", lambda n: 4, lambda n: n),
    "natr": _windowed(codes.NATR, "natr", lambda n: 4, lambda n: n),
    "volatility": _windowed(codes.VOLATILITY, "volatility", lambda n: 2 + moments_size(n, 2),
                            lambda n: n, min_window=2),
    "zscore": _sided(codes.ZSCORE, "input", ("close", "volume"), lambda n: moments_size(n, 2),
                     lambda n: n - 1, ("zscore", "volume_zscore")),
    "bollinger": Kind(codes.BOLLINGER, ("n", "k", "part"), lambda p: moments_size(p["n"], 2),
                      lambda p: p["n"] - 1,
                      lambda p: f"bollinger_{p['part']}_{p['n']}_{p['k']:g}",
                      choices={"part": ("pctb", "width")}, min_window=2),
    "range_position": _windowed(codes.RANGE_POSITION, "range_position",
                                lambda n: 1 + 2 * extreme_size(n), lambda n: n - 1),
    "candle": Kind(codes.CANDLE, ("part",), lambda p: 1, lambda p: 0,
                   lambda p: f"candle_{p['part']}",
                   choices={"part": ("body", "upper_wick", "lower_wick")}),
    "cyclic_time": Kind(codes.CYCLIC_TIME, ("cycle", "wave"), lambda p: 1, lambda p: 0,
                        lambda p: f"{p['cycle']}_{p['wave']}",
                        choices={"cycle": ("hour", "dow"), "wave": ("sin", "cos")}),
    "pct_return": _windowed(codes.PCT_RETURN, "pct_return", lambda n: 2 + n, lambda n: n),
    "macd": Kind(codes.MACD, ("fast", "slow", "signal", "part"), lambda p: 7,
                 lambda p: p["slow"] + p["signal"] - 2,
                 lambda p: f"macd_{p['fast']}_{p['slow']}_{p['signal']}_{p['part']}",
                 choices={"part": ("line", "signal", "hist")}),
    "stochastic": Kind(codes.STOCHASTIC, ("n", "slow", "d", "part"),
                       lambda p: 2 + 2 * extreme_size(p["n"]) + p["slow"] + p["d"],
                       lambda p: p["n"] + p["slow"] + p["d"] - 3,
                       lambda p: f"stoch_{p['n']}_{p['slow']}_{p['d']}_{p['part']}",
                       choices={"part": ("k", "d")}),
    "williams_r": _windowed(codes.WILLIAMS_R, "williams_r", lambda n: 1 + 2 * extreme_size(n),
                            lambda n: n - 1),
    "cci": _windowed(codes.CCI, "cci", lambda n: 2 + n, lambda n: n - 1, min_window=2),
    "adx": _windowed(codes.ADX, "adx", lambda n: 9, lambda n: 2 * n - 1, min_window=2),
    "obv": Kind(codes.OBV, (), lambda p: 3, lambda p: 0, lambda p: "obv"),
    "mfi": _windowed(codes.MFI, "mfi", lambda n: 5 + 2 * n, lambda n: n),
    "moments": _sided(codes.MOMENTS, "moment", ("skew", "kurt"), lambda n: 2 + moments_size(n, 4),
                      lambda n: n, ("skew", "kurt")),
    "range_volatility": _sided(codes.RANGE_VOLATILITY, "estimator", ("parkinson", "garman_klass"),
                               lambda n: moments_size(n, 1), lambda n: n - 1,
                               ("parkinson", "garman_klass")),
    "distance_extreme": _sided(codes.DISTANCE_EXTREME, "side", ("high", "low"),
                               lambda n: 1 + extreme_size(n), lambda n: n - 1,
                               ("dist_high", "dist_low")),
    # the close as it is: not scale-free, so for series such as a funding rate
    "level": Kind(codes.LEVEL, (), lambda p: 1, lambda p: 0, lambda p: "level"),
}

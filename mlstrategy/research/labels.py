"""Labels: what the model learns to predict, defined on trades a strategy can actually make.

A decision taken on the close of bar t fills at the open of bar t+1 (DESIGN §3), so every label
starts there.

- ``fixed``: the log return from ``open[t+1]`` to ``open[t+1+horizon]``; "up" above
  ``threshold``, "down" below ``-threshold``, and in between "flat": counted as not-up, or
  dropped from training with ``drop_flat`` (a dead zone).
- ``triple_barrier`` (López de Prado): from ``open[t+1]``, a take-profit ``take_profit`` and a
  stop-loss ``stop_loss`` volatilities away (volatility: ATR or the rolling std of returns as a
  fraction of the close at t), and at most ``horizon`` bars; the label is 1 when the
  take-profit is touched first, 0 when the stop is (both in one bar: the stop, to be safe), and
  on timeout the sign of the return to that bar's close.

Each label also has its *reach*: the last bar it reads. Validation purges every training row
whose reach enters a test span, so no training label knows a test bar.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
from numba import njit

KINDS = ("fixed", "triple_barrier")


@dataclass(frozen=True)
class LabelSpec:
    """What "up" means (see module doc)."""

    kind: str = "fixed"
    horizon: int = 4  # fixed: bars held; triple barrier: at most this many bars
    threshold: float = 0.0  # fixed: half-width of the flat zone, in log return
    drop_flat: bool = False  # fixed: leave flat rows out of training
    take_profit: float = 2.0  # triple barrier: volatilities to the take-profit
    stop_loss: float = 1.0  # triple barrier: volatilities to the stop
    vol: str = "atr"  # triple barrier: "atr" or "std" (of close-to-close returns)
    vol_window: int = 14

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"label kind {self.kind!r} is not one of {KINDS}")
        if self.horizon < 1:
            raise ValueError(f"label horizon must be >= 1 bar, got {self.horizon}")
        if self.threshold < 0:
            raise ValueError(f"label threshold must be >= 0, got {self.threshold}")
        if self.kind == "triple_barrier" and not (self.take_profit > 0 and self.stop_loss > 0
                                                  and self.vol in ("atr", "std")
                                                  and self.vol_window >= 2):
            raise ValueError("triple barrier needs take_profit > 0, stop_loss > 0, vol atr or "
                             "std and vol_window >= 2")

    @property
    def overlap(self) -> int:
        """The farthest bar after t any label of bar t reads: the purge bound."""
        return self.horizon + 1

    def to_dict(self) -> dict:
        """JSON-ready description, as stored in a model manifest."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> LabelSpec:
        """Inverse of :meth:`to_dict` (manifests before label kinds read as ``fixed``)."""
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        if data.get("kind") == "forward_open_log_return_up":
            known["kind"] = "fixed"
        return cls(**known)


@dataclass(frozen=True)
class Labels:
    """Labels of every bar: ``y`` 0/1 (NaN: no label), the trade's log return, and reach."""

    y: np.ndarray
    forward: np.ndarray  # log return of the labelled trade (NaN where no label)
    reach: np.ndarray  # int64: last bar the label reads (the bar itself where no label)


@njit(cache=True)
def _volatility_nb(high, low, close, window, use_atr, out):
    """Volatility at each bar as a fraction of its close (Wilder ATR, or std of returns)."""
    n = close.shape[0]
    atr = np.nan
    for t in range(n):
        out[t] = np.nan
        if use_atr:
            tr = high[t] - low[t]
            if t > 0:
                tr = max(tr, abs(high[t] - close[t - 1]), abs(low[t] - close[t - 1]))
            atr = tr if t == 0 else atr + (tr - atr) / window
            if t >= window - 1:
                out[t] = atr / close[t]
        elif t >= window:
            mean = 0.0
            for k in range(t - window + 1, t + 1):
                mean += close[k] / close[k - 1] - 1.0
            mean /= window
            var = 0.0
            for k in range(t - window + 1, t + 1):
                d = close[k] / close[k - 1] - 1.0 - mean
                var += d * d
            out[t] = np.sqrt(var / (window - 1))


@njit(cache=True)
def _triple_barrier_nb(open_, high, low, close, vol, horizon, take, stop, y, fwd, reach):
    """First touch of the take-profit or the stop from ``open[t+1]``, within ``horizon`` bars."""
    n = open_.shape[0]
    for t in range(n):
        y[t] = np.nan
        fwd[t] = np.nan
        reach[t] = t
        if t + 1 >= n or np.isnan(vol[t]):
            continue
        entry = open_[t + 1]
        upper = entry * (1.0 + take * vol[t])
        lower = entry * (1.0 - stop * vol[t])
        touched = False
        for k in range(t + 1, min(t + horizon + 1, n)):
            if low[k] <= lower:  # the stop first when one bar touches both
                y[t], fwd[t], reach[t] = 0.0, np.log(lower / entry), k
                touched = True
                break
            if high[k] >= upper:
                y[t], fwd[t], reach[t] = 1.0, np.log(upper / entry), k
                touched = True
                break
        if not touched and t + horizon < n:  # timeout: the sign of the return to its close
            k = t + horizon
            ret = np.log(close[k] / entry)
            y[t], fwd[t], reach[t] = (1.0 if ret > 0 else 0.0), ret, k


def forward_returns(open_: np.ndarray, horizon: int) -> np.ndarray:
    """Log return from ``open[t+1]`` to ``open[t+1+horizon]`` for every bar t; NaN at the end."""
    out = np.full(open_.shape[0], np.nan)
    if open_.shape[0] > horizon + 1:
        log_open = np.log(open_)
        out[: -(horizon + 1)] = log_open[1 + horizon:] - log_open[1:-horizon]
    return out


def make_labels(open_: np.ndarray, high: np.ndarray, low: np.ndarray, close: np.ndarray,
                spec: LabelSpec) -> Labels:
    """Labels of every bar for ``spec`` (see module doc)."""
    n = open_.shape[0]
    if spec.kind == "triple_barrier":
        vol = np.empty(n)
        _volatility_nb(high, low, close, spec.vol_window, spec.vol == "atr", vol)
        y, fwd, reach = np.empty(n), np.empty(n), np.empty(n, dtype=np.int64)
        _triple_barrier_nb(open_, high, low, close, vol, spec.horizon, spec.take_profit,
                           spec.stop_loss, y, fwd, reach)
        return Labels(y, fwd, reach)
    fwd = forward_returns(open_, spec.horizon)
    known = ~np.isnan(fwd)
    y = np.where(known, (fwd > spec.threshold).astype(float), np.nan)
    if spec.drop_flat:
        y[known & (np.abs(fwd) <= spec.threshold)] = np.nan
    reach = np.where(known, np.arange(n) + spec.overlap, np.arange(n)).astype(np.int64)
    return Labels(y, fwd, reach)


def labels_of(bars, spec: LabelSpec) -> Labels:
    """``make_labels`` of an OHLCV frame."""
    cols = [np.ascontiguousarray(bars[c].to_numpy(), dtype=np.float64)
            for c in ("open", "high", "low", "close")]
    return make_labels(*cols, spec)

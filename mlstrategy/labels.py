"""Labels: what the model learns to predict, defined on returns a strategy can actually earn.

A decision taken on the close of bar t fills at the open of bar t+1 (DESIGN §3), so the label
of bar t is the log return from ``open[t+1]`` to ``open[t+1+horizon]``. The label therefore
reads bars t+1 .. t+1+horizon: training rows closer than ``overlap`` bars to a validation row
must be purged, and the last ``overlap`` bars have no label (NaN).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np


@dataclass(frozen=True)
class LabelSpec:
    """Binary "up" label: forward tradeable log return over ``horizon`` bars > ``threshold``.

    Parameters
    ----------
    horizon : int
        Holding period in bars, counted from the next bar's open.
    threshold : float
        Minimum log return counted as "up" (e.g. round-trip costs), 0.0 by default.
    """

    horizon: int = 4
    threshold: float = 0.0

    def __post_init__(self) -> None:
        if self.horizon < 1:
            raise ValueError(f"label horizon must be >= 1 bar, got {self.horizon}")

    @property
    def overlap(self) -> int:
        """Bars after t that the label of bar t reads: the purge gap for validation."""
        return self.horizon + 1

    def to_dict(self) -> dict:
        """JSON-ready description, as stored in a model manifest."""
        return {"kind": "forward_open_log_return_up", **asdict(self)}

    @classmethod
    def from_dict(cls, data: dict) -> LabelSpec:
        """Inverse of :meth:`to_dict`."""
        return cls(horizon=int(data["horizon"]), threshold=float(data["threshold"]))


def forward_returns(open_: np.ndarray, spec: LabelSpec) -> np.ndarray:
    """Log return from ``open[t+1]`` to ``open[t+1+horizon]`` for every bar t; NaN at the end."""
    out = np.full(open_.shape[0], np.nan)
    h = spec.horizon
    if open_.shape[0] > spec.overlap:
        log_open = np.log(open_)
        out[: -spec.overlap] = log_open[1 + h :] - log_open[1 : -h]
    return out


def make_labels(open_: np.ndarray, spec: LabelSpec) -> tuple[np.ndarray, np.ndarray]:
    """Return ``(y, fwd)``: the 0/1 label as float (NaN where unknown) and the forward return."""
    fwd = forward_returns(open_, spec)
    y = np.where(np.isnan(fwd), np.nan, (fwd > spec.threshold).astype(float))
    return y, fwd

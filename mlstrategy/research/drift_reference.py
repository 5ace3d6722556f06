"""What a model's data looked like when it was validated, kept in its artifact to watch drift.

Training stores, per feature, the deciles of its training rows and the share of those rows in
each decile (the population stability index compares live rows against them); the holdout's
calibration (Brier score, up-rate, mean P(up), reliability bins); and the holdout backtest's
net return per bar, from which a block bootstrap gives the band a live net return over the
same number of bars should fall in. ``mlstrategy.live.drift`` computes the live side.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from functools import cached_property

import numpy as np

BINS = 10  # deciles of each feature's training rows
RELIABILITY_BINS = 5
_EPS = 1e-4  # PSI's floor on a bin's share (an empty bin would be infinite)


@dataclass(frozen=True)
class Calibration:
    """How P(up) matched outcomes: Brier score, mean P(up), up-rate, labelled rows, and per
    reliability bin (equal widths of P(up)) the rows, mean P(up) and up-rate."""

    brier: float
    mean_proba: float
    up_rate: float
    rows: int
    bins: list[dict]

    @property
    def gap(self) -> float:
        """|mean P(up) - up-rate|: calibration in the large."""
        return abs(self.mean_proba - self.up_rate)


@dataclass(frozen=True)
class DriftReference:
    """A model's training feature deciles and holdout calibration (manifest field ``drift``);
    the holdout's per-bar net returns live in the artifact's ``holdout_returns.npy``."""

    edges: list[list[float]]  # per feature: the BINS - 1 inner edges of its deciles
    expected: list[list[float]]  # per feature: the share of training rows per bin (+ NaN)
    calibration: Calibration
    returns_bars: int
    returns_sha256: str = ""  # of holdout_returns.npy, once saved

    def to_dict(self) -> dict:
        """JSON-ready form."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> DriftReference:
        """Inverse of :meth:`to_dict`."""
        return cls(data["edges"], data["expected"], Calibration(**data["calibration"]),
                   int(data["returns_bars"]), data.get("returns_sha256", ""))

    @cached_property
    def _edges(self) -> tuple[np.ndarray, np.ndarray]:
        """The edges as one matrix (rows padded with +inf) and each feature's NaN bin."""
        matrix = np.full((len(self.edges), BINS - 1), np.inf)
        for f, edges in enumerate(self.edges):
            matrix[f, :len(edges)] = edges
        return matrix, np.array([len(e) + 1 for e in self.edges], dtype=np.int8)

    def bin_rows(self, x: np.ndarray) -> np.ndarray:
        """Each value's bin (int8, rows x features): how many of its feature's edges are at or
        below it; NaN gets the bin after the last."""
        x = np.atleast_2d(x)
        matrix, nan_bins = self._edges
        counts = (x[:, :, None] >= matrix[None, :, :]).sum(axis=2).astype(np.int8)
        return np.where(np.isnan(x), nan_bins[None, :], counts)


def calibration(proba: np.ndarray, y: np.ndarray) -> Calibration:
    """Calibration of ``proba`` against 0/1 outcomes ``y`` (rows with either NaN dropped)."""
    keep = ~(np.isnan(proba) | np.isnan(y))
    p, y = proba[keep], y[keep]
    if not len(p):
        return Calibration(math.nan, math.nan, math.nan, 0, [])
    which = np.minimum((p * RELIABILITY_BINS).astype(np.int64), RELIABILITY_BINS - 1)
    rows = np.bincount(which, minlength=RELIABILITY_BINS)
    sum_p = np.bincount(which, p, minlength=RELIABILITY_BINS)
    sum_y = np.bincount(which, y, minlength=RELIABILITY_BINS)
    bins = [{"low": k / RELIABILITY_BINS, "rows": int(rows[k]),
             "mean_proba": float(sum_p[k] / rows[k]), "up_rate": float(sum_y[k] / rows[k])}
            for k in np.flatnonzero(rows)]
    return Calibration(float(np.mean((p - y) ** 2)), float(p.mean()), float(y.mean()),
                       int(len(p)), bins)


def build(x_train: np.ndarray, proba: np.ndarray, y: np.ndarray,
          holdout_returns: np.ndarray) -> DriftReference:
    """The reference of a model trained on rows ``x_train`` whose holdout gave ``proba``
    against outcomes ``y`` and net returns ``holdout_returns`` per bar."""
    edges, expected = [], []
    for f in range(x_train.shape[1]):
        column = x_train[:, f]
        known = column[~np.isnan(column)]
        cuts = np.unique(np.quantile(known, np.arange(1, BINS) / BINS)) if len(known) else \
            np.empty(0)
        edges.append([float(c) for c in cuts])
    reference = DriftReference(edges, [], calibration(proba, y), int(len(holdout_returns)))
    binned = reference.bin_rows(x_train)
    for f, cuts in enumerate(edges):
        counts = np.bincount(binned[:, f], minlength=len(cuts) + 2)
        expected.append([float(c) for c in counts / max(len(binned), 1)])
    return DriftReference(edges, expected, reference.calibration, reference.returns_bars)


def psi(counts: np.ndarray, expected: np.ndarray) -> np.ndarray:
    """Population stability index of bin ``counts`` against ``expected`` shares, along the last
    axis (one feature, or one row per feature): sum of (actual - expected) *
    ln(actual / expected), shares floored at 1e-4."""
    actual = np.maximum(counts / counts.sum(axis=-1, keepdims=True), _EPS)
    expect = np.maximum(expected, _EPS)
    return np.sum((actual - expect) * np.log(actual / expect), axis=-1)


def return_band(returns: np.ndarray, bars: int, *, quantiles: tuple[float, float] =
                (0.005, 0.995), draws: int = 10_000, seed: int = 0) -> tuple[float, float]:
    """The ``quantiles`` of the compounded net return over ``bars`` bars, by a circular block
    bootstrap of the holdout's per-bar ``returns`` (blocks of about sqrt(bars), keeping their
    serial dependence: a position lasts several bars, a trend many)."""
    if not len(returns) or bars < 1:
        return math.nan, math.nan
    block = max(1, round(math.sqrt(bars)))
    blocks = -(-bars // block)
    rng = np.random.default_rng(seed)
    starts = rng.integers(0, len(returns), size=(draws, blocks))
    index = (starts[:, :, None] + np.arange(block)).reshape(draws, -1)[:, :bars] % len(returns)
    logs = np.log1p(np.asarray(returns, dtype=np.float64))
    total = np.expm1(logs[index].sum(axis=1))
    low, high = np.quantile(total, quantiles)
    return float(low), float(high)

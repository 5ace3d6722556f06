"""Inference, bar by bar: the one path from a closed bar to the model's P(up).

``SignalEngine`` owns a streaming feature state and a loaded artifact. A backtest and a live
bot feed it the same closed bars in the same way, so they compute the same features
(bit-identical to the batch matrix the model was trained on) and the same P(up): the model's
per-row evaluation is bit-identical to its batch call. ``batch_probas`` is the other, proven
equal way for a backtest: all bars' features and probabilities at once. What to do with P(up)
is decided in one place, ``mlstrategy.trading.strategy``. It never trains.
"""
from __future__ import annotations

import hashlib
import math
import os
from typing import Protocol

import numpy as np
import pandas as pd

from features_numba import FeatureStream, compute_features
from features_numba.batch import other_market
from mlstrategy.registry.artifact import Artifact


class OtherBars(Protocol):
    """Where a bot's engine gets the other markets' bars (``live.market_bars``)."""

    def until(self, bar_ns: int) -> dict[str, list[pd.DataFrame]]:
        """Every bar fetched of each market (in batches), those closed by ``bar_ns`` in."""


class SignalEngine:
    """Streaming features + model -> P(up) for each closed bar (NaN during warm-up).

    A model whose features read other markets takes their bars from ``others`` (a
    backtest: every bar at once) or, bar by bar, from ``follow`` (a bot).
    """

    def __init__(self, artifact: Artifact, others: dict[str, pd.DataFrame] | None = None,
                 follow: OtherBars | None = None) -> None:
        self.artifact = artifact
        self.stream = FeatureStream(artifact.spec)
        for key in artifact.spec.inputs if others is not None else ():
            self.stream.push(key, other_market(others, key))
        self.follow = follow
        self._taken = dict.fromkeys(artifact.spec.inputs, 0)  # batches of ``follow`` pushed
        self._warmup = artifact.spec.warmup
        self.row: np.ndarray | None = None  # the last bar's features (the stream's buffer)

    def _push_until(self, bar_ns: int) -> None:
        """Push the other markets' bars that closed by ``bar_ns`` (and any fetched after)."""
        if self.follow is None or not self._taken:
            return
        for market, batches in self.follow.until(bar_ns).items():
            for frame in batches[self._taken[market]:]:
                self.stream.push(market, frame)
            self._taken[market] = len(batches)

    def warm(self, bars: pd.DataFrame) -> None:
        """Feed history (bars before the first one traded) so features start warmed up."""
        if len(bars):
            self._push_until(int(bars.index[-1].value))
            self.stream.warm(bars)

    def on_bar(self, open_: float, high: float, low: float, close: float, volume: float,
               ts_ns: int) -> float:
        """Update the features with a closed bar and return the model's P(up) after it."""
        self._push_until(ts_ns)
        row = self.row = self.stream.update(open_, high, low, close, volume, ts_ns)
        if self.stream.n_seen <= self._warmup:  # the model never saw warm-up rows
            return math.nan
        return self.artifact.model.predict_row(row)


def batch_probas(bars: pd.DataFrame, artifact: Artifact,
                 others: dict[str, pd.DataFrame] | None = None) -> np.ndarray:
    """P(up) of every bar at once (batch features, batch model call); NaN during warm-up.
    ``others``: the bars of the other markets the model's features read.

    Equal, bar for bar, to feeding the same bars one by one to a fresh ``SignalEngine``.
    """
    x = compute_features(bars, artifact.spec, others=others, threads=os.cpu_count() or 1)
    out = np.full(len(bars), np.nan)
    warm = artifact.spec.warmup
    if len(bars) > warm:
        out[warm:] = artifact.model.predict_proba(x[warm:])
    return out


def row_hash(row: np.ndarray) -> str:
    """A feature vector's fingerprint (16 hex digits), equal for bit-equal vectors; -0.0 and
    every NaN are taken as 0.0 and one NaN, as the batch and streaming proofs compare them."""
    canonical = np.where(np.isnan(row), np.nan, np.asarray(row, dtype=np.float64) + 0.0)
    return hashlib.blake2b(canonical.tobytes(), digest_size=8).hexdigest()

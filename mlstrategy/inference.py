"""Inference, bar by bar: the one path from a closed bar to a trading decision.

``SignalEngine`` owns a streaming feature state and a loaded artifact. A backtest and a live
bot feed it the same closed bars in the same way, so they compute the same features
(bit-identical to the batch matrix the model was trained on) and take the same decisions.
It never trains.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import pandas as pd

from features_numba import FeatureStream
from mlstrategy.artifact import Artifact


@dataclass(frozen=True)
class Signal:
    """The model's view of one closed bar: P(up) (NaN during warm-up) and the target position."""

    proba: float
    long: bool


class SignalEngine:
    """Streaming features + model + thresholds -> a long/flat target for each closed bar."""

    def __init__(self, artifact: Artifact) -> None:
        self.artifact = artifact
        self.stream = FeatureStream(artifact.spec)

    def warm(self, bars: pd.DataFrame) -> None:
        """Feed history (bars before the first one traded) so features start warmed up."""
        if len(bars):
            self.stream.warm(bars)

    def on_bar(self, open_: float, high: float, low: float, close: float, volume: float,
               ts_ns: int, in_position: bool) -> Signal:
        """Update features with a closed bar and decide the target position after it.

        Long when P(up) reaches the enter threshold; an open long is kept until P(up) falls
        below the exit threshold (hysteresis avoids flapping around one level).
        """
        row = self.stream.update(open_, high, low, close, volume, ts_ns)
        if self.stream.n_seen <= self.artifact.spec.warmup:  # the model never saw warm-up rows
            return Signal(math.nan, in_position)
        # a (1, n) view: CatBoost flags its input read-only, which must not reach the stream
        proba = float(self.artifact.model.predict_proba(row[None, :])[0])
        thresholds = self.artifact.thresholds
        long = proba >= thresholds.exit if in_position else proba >= thresholds.enter
        return Signal(proba, long)

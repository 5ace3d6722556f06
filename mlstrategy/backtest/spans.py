"""Which bars a backtest may trade: never the bars the model trained on, unless asked.

Training bars are found by content and by time, never by path, name or symbol:

- **by content**: every bar whose fingerprint (``datafeeds.fingerprint``: time and OHLC,
  rounded so a CSV round trip matches) is one of the model's training bars, whatever the file
  is called, whatever symbol it is given, whatever rows were dropped or added;
- **by time**: every bar before the model's first clean bar (the end of its training span
  and label purge), on any instrument: markets move together, so an MSFT model traded on the
  S&P 500 over MSFT's training years is not out of sample.

The default start is the first bar after both. Trading earlier needs ``allow_in_sample``; the
span then says so, with the share of traded bars that are training bars and the share inside
the training period.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from mlstrategy.errors import MLStrategyError
from mlstrategy.registry.artifact import Artifact
from mlstrategy.research.dataset import Dataset


@dataclass(frozen=True)
class Span:
    """The bars a backtest trades and how they relate to the model's training bars."""

    start: int  # first traded bar (index into the bars; earlier bars only warm features)
    clean: int | None  # first bar after every training bar and the training period; None: none
    in_sample: bool  # whether any traded bar is a training bar or inside the training period
    matched_by: str  # how training bars were recognised among these ("" if none were)
    training_share: float = 0.0  # of the traded bars: training bars (by content)
    period_share: float = 0.0  # of the traded bars: inside the training period (by time)
    warnings: list[str] = field(default_factory=list)


def _recognised(training: np.ndarray, in_period: np.ndarray, trained: str) -> str:
    """How the training bars among these were found, in words ("" if none were)."""
    ways = []
    if training.any():
        ways.append(f"{int(training.sum())} bars are the model's training bars (by content)")
    if in_period.any():
        ways.append(f"{int(in_period.sum())} bars fall in its training period (to {trained})")
    return "; ".join(ways)


def trading_span(dataset: Dataset, artifact: Artifact, *, start: int | None = None,
                 allow_in_sample: bool = False) -> Span:
    """Where a backtest of ``artifact`` on ``dataset`` starts, and whether it is in-sample.

    Raises
    ------
    MLStrategyError
        A ``start`` before the first clean bar without ``allow_in_sample``; no bar left.
    """
    trained = artifact.manifest.training_data
    timeframe = dataset.timeframe
    warnings = []
    if timeframe != trained.timeframe:
        warnings.append(f"the model was trained on {trained.timeframe} bars, these are "
                        f"{timeframe} bars")
    if dataset.info.symbol != trained.symbol:
        warnings.append(f"the model was trained on {trained.symbol}, these bars are "
                        f"{dataset.info.symbol}")
    index = dataset.bars.index
    n = len(index)
    training = artifact.is_training_bar(dataset.bars)
    clean_time = pd.Timestamp(trained.holdout_first_bar)
    in_period = np.asarray(index < clean_time)
    last = max(int(np.flatnonzero(training)[-1]) if training.any() else -1,
               int(np.flatnonzero(in_period)[-1]) if in_period.any() else -1)
    clean = last + 1 if last >= 0 else None
    if start is None:
        start = artifact.spec.warmup if clean is None or allow_in_sample else \
            max(clean, artifact.spec.warmup)
    if clean is not None and start < clean and not allow_in_sample:
        raise MLStrategyError(
            f"bar {start} ({index[min(start, n - 1)]}) is inside the model's training data "
            f"({_recognised(training, in_period, trained.holdout_first_bar)}; clean bars "
            f"start at {clean}, {index[clean] if clean < n else 'after the data'}); start "
            "later, or pass --allow-in-sample to trade training bars knowingly")
    if not 0 <= start < n - 1:
        raise MLStrategyError(f"no bar to trade: start bar {start} of {n} bars; the model "
                              "trained on all of them or on their period (pass newer bars, or "
                              "--allow-in-sample)")
    in_sample = clean is not None and start < clean
    training_share = float(training[start:].mean())
    period_share = float(in_period[start:].mean())
    if in_sample:
        warnings.insert(0, f"IN-SAMPLE: {training_share:.1%} of the traded bars are bars the "
                           f"model trained on and {period_share:.1%} fall in its training "
                           f"period (to {trained.holdout_first_bar}); their results say "
                           "nothing about the future")
    return Span(start, clean, in_sample, _recognised(training, in_period,
                                                     trained.holdout_first_bar),
                training_share, period_share, warnings)

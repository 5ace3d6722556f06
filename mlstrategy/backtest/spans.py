"""Which bars a backtest may trade: never the bars the model trained on, unless asked.

The model's training span is found by *time*, not by path or name: the bars given are the
model's market when their symbol and timeframe are the model's, or when the bars covering the
model's training range hash to the manifest's sha256 (the same data under another path or
name). Then every bar before the manifest's first clean bar (the first bar after the training
span and its label purge) is in-sample, and the default start is that clean bar. Trading
earlier needs ``allow_in_sample`` and is reported as in-sample.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd

from mlstrategy.artifact import Artifact, TrainingData
from mlstrategy.dataset import Dataset, ohlcv_sha256
from mlstrategy.errors import MLStrategyError


@dataclass(frozen=True)
class Span:
    """The bars a backtest trades and how they relate to the model's training bars."""

    start: int  # first traded bar (index into the bars; earlier bars only warm features)
    clean: int | None  # first bar after the training span + purge; None: no overlap
    in_sample: bool  # whether any traded bar is a training bar
    matched_by: str  # how the bars were recognised as the model's market ("" if not)
    warnings: list[str] = field(default_factory=list)


def _matched_by(dataset: Dataset, trained: TrainingData, timeframe: str) -> str:
    """Why these bars are the model's market, or "" when they are not."""
    if (dataset.info.symbol, timeframe) == (trained.symbol, trained.timeframe):
        return "same symbol and timeframe"
    index = dataset.bars.index
    lo = int(index.searchsorted(pd.Timestamp(trained.first_bar)))
    hi = int(index.searchsorted(pd.Timestamp(trained.last_bar), side="right"))
    if hi - lo == trained.rows and ohlcv_sha256(dataset.bars.iloc[lo:hi]) == trained.sha256:
        return "same bars (sha256) as the training data"
    return ""


def trading_span(dataset: Dataset, artifact: Artifact, *, start: int | None = None,
                 allow_in_sample: bool = False) -> Span:
    """Where a backtest of ``artifact`` on ``dataset`` starts, and whether it is in-sample.

    Raises
    ------
    MLStrategyError
        A ``start`` inside the training span without ``allow_in_sample``; no bar left to trade.
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
    matched = _matched_by(dataset, trained, timeframe)
    index = dataset.bars.index
    clean = None
    if matched:
        first = int(index.searchsorted(pd.Timestamp(trained.first_bar)))
        clean_at = int(index.searchsorted(pd.Timestamp(trained.holdout_first_bar)))
        if first < clean_at:  # some of these bars are training bars (or their labels' reach)
            clean = clean_at
    n = len(index)
    if start is None:
        start = artifact.spec.warmup if clean is None or allow_in_sample else clean
    if clean is not None and start < clean and not allow_in_sample:
        raise MLStrategyError(
            f"bar {start} ({index[min(start, n - 1)]}) is inside the model's training span "
            f"(clean bars start at {clean}, {index[clean] if clean < n else 'after the data'})"
            "; start later, or pass --allow-in-sample to trade training bars knowingly")
    if not 0 <= start < n - 1:
        raise MLStrategyError(f"no bar to trade: start bar {start} of {n} bars; the model "
                              "trained on all of them (pass newer bars, or --allow-in-sample)")
    in_sample = clean is not None and start < clean
    if in_sample:
        warnings.insert(0, f"IN-SAMPLE: bars {start} .. {clean - 1} are bars the model "
                           "trained on; their results say nothing about the future")
    return Span(start, clean, in_sample, matched, warnings)

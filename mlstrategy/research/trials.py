"""The trial ledger: every evaluation of a model or configuration on a market, so that a deflated
Sharpe counts everything that was tried before the result it deflates.

``trials.jsonl`` beside the registry (``models/``, or a cycle market's ``models/<market>/``),
append-only, one JSON object a line: what kind of evaluation (``train``, ``backtest``,
``walk_forward``, ``sweep``), its identity (a hash of what was evaluated: the model and the
strategy options and costs, or a sweep's parameters; the same evaluation run again is the same
trial), the data (symbol, timeframe, first and last bar, rows, sha256, and the 64 smallest bar
fingerprints as a sample of its content), its annualised net Sharpe and bars a year, when, and
what it was (the model, the sweep).

A backtest's deflated Sharpe then counts the distinct trials whose data overlaps the bars it
tested: the same bars (sha256), the same symbol and timeframe over an overlapping period, or a
sampled fingerprint among its bars (a renamed or edited copy). Its variance term is the
dispersion of those trials' Sharpe ratios (Bailey and López de Prado's V[SR_n], ``ddof=1``),
once there are ``MIN_FOR_VARIANCE`` of them; before, the variance of the Sharpe estimate itself.
"""
from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd

from datafeeds.atomic import append_json_lines, read_json_lines
from datafeeds.fingerprint import fingerprints
from mlstrategy.backtest.stats import observed_periods_per_year
from mlstrategy.errors import ModelError
from mlstrategy.research.dataset import Dataset, DatasetInfo, describe
from mlstrategy.trading.strategy_params import StrategyParams

LEDGER = "trials.jsonl"
SAMPLE = 64  # bar fingerprints kept per trial to recognise its data by content
MIN_FOR_VARIANCE = 10  # trials before their Sharpe dispersion replaces the estimate's variance


@dataclass(frozen=True)
class TrialData(DatasetInfo):
    """Which bars a trial was evaluated on: their description and a sample of their content."""

    sample: list[int]  # the smallest bar fingerprints

    @classmethod
    def of(cls, bars: pd.DataFrame, symbol: str, timeframe: str, source: str = "") -> TrialData:
        """The description of ``bars``."""
        info = describe(bars, source, symbol, timeframe).info
        prints = fingerprints(bars)
        if len(prints) > 4 * SAMPLE:  # the smallest ones without sorting them all
            prints = np.partition(prints, 4 * SAMPLE)[:4 * SAMPLE]
        return cls(**info.to_dict(), sample=[int(v) for v in np.unique(prints)[:SAMPLE]])

    def overlaps(self, other: TrialData, other_prints: np.ndarray) -> bool:
        """Whether these bars and ``other`` (``other_prints``: its sorted fingerprints) share
        any: the same data, the same market over an overlapping period, or the same bars."""
        if self.sha256 == other.sha256:
            return True
        if (self.symbol, self.timeframe) == (other.symbol, other.timeframe) and \
                pd.Timestamp(self.first_bar) <= pd.Timestamp(other.last_bar) and \
                pd.Timestamp(other.first_bar) <= pd.Timestamp(self.last_bar):
            return True
        sample = np.asarray(self.sample, dtype=np.uint64)
        at = np.minimum(np.searchsorted(other_prints, sample), max(len(other_prints) - 1, 0))
        return bool(len(other_prints) and (other_prints[at] == sample).any())


@dataclass(frozen=True)
class Trial:
    """One evaluation in the ledger."""

    kind: str  # train | backtest | walk_forward | sweep
    identity: str
    data: TrialData
    sharpe: float | None  # annualised, net of costs (None when there was none)
    periods_per_year: float
    source: str  # the model (name/version) or the sweep it came from
    time: str = ""


def identity(**what: object) -> str:
    """A short hash of what an evaluation evaluated (the same things: the same trial)."""
    text = json.dumps(what, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def evaluation_identity(model: str, strategy: StrategyParams, enter: float, exit_: float,
                        costs: tuple[float, ...], **more: object) -> str:
    """The identity of trading ``model`` with ``strategy`` (thresholds resolved to ``enter``
    and ``exit_``) at ``costs``: a training's holdout and a backtest with the model's defaults
    at the same costs are one trial."""
    options = {**strategy.options(), "enter": float(enter), "exit": float(exit_)}
    return identity(model=model, strategy=options, costs=[float(c) for c in costs], **more)


def record_training(models_dir: Path, artifact: object, dataset: Dataset) -> None:
    """Record a newly trained model (``Artifact``) as a trial: its holdout's net Sharpe."""
    manifest = artifact.manifest
    ref = artifact.ref
    cost = artifact.training_cost
    thresholds = artifact.thresholds
    record(models_dir, Trial(
        "train", evaluation_identity(ref, StrategyParams(), thresholds.enter, thresholds.exit,
                                     (cost, 0.0, 0.0)),
        TrialData.of(dataset.bars, dataset.info.symbol, dataset.timeframe,
                     dataset.info.source),
        manifest.validation.holdout.get("sharpe"),
        observed_periods_per_year(dataset.bars.index), ref))


def record(models_dir: Path, trial: Trial) -> None:
    """Append ``trial`` to the ledger (one fsynced line)."""
    record_many(models_dir, [trial])


def record_many(models_dir: Path, trials: list[Trial]) -> None:
    """Append ``trials`` to the ledger (fsynced once: a grid's thousand configurations)."""
    now = datetime.now(UTC).isoformat(timespec="seconds")
    entries = []
    for trial in trials:  # shallow: asdict's deep copy is slow for a grid's thousand
        entry = {**vars(trial), "data": vars(trial.data), "time": trial.time or now}
        if entry["sharpe"] is not None and not math.isfinite(entry["sharpe"]):
            entry["sharpe"] = None
        entries.append(entry)
    append_json_lines(models_dir / LEDGER, entries)


def read(models_dir: Path) -> list[Trial]:
    """Every trial recorded, oldest first (a last line torn by a crash is left out).

    Raises
    ------
    ModelError
        For an entry that is no trial record (the ledger was edited or damaged).
    """
    path = models_dir / LEDGER
    trials = []
    for number, entry in enumerate(read_json_lines(path), start=1):
        try:
            trials.append(Trial(**{**entry, "data": TrialData(**entry["data"])}))
        except (TypeError, KeyError) as exc:
            raise ModelError(f"{path}, entry {number}, is not a trial record ({exc}); the "
                             "ledger was edited or damaged: restore it from a backup (a "
                             "deflated Sharpe that forgets trials would flatter)") from None
    return trials


@dataclass(frozen=True)
class Deflation:
    """What a deflated Sharpe discounts: how many trials, and their Sharpes' dispersion."""

    trials: int
    variance: float | None  # of the trials' per-bar Sharpe ratios; None: too few of them
    sharpes: tuple[float, ...] = ()  # the trials' annualised Sharpes (each distinct once)


def deflation(models_dir: Path, bars: pd.DataFrame, data: TrialData,
              periods_per_year: float) -> Deflation:
    """The distinct trials of the ledger whose data overlaps ``bars`` (described by ``data``),
    and the variance of their Sharpe ratios in per-bar units of ``periods_per_year``."""
    prints = np.sort(fingerprints(bars))  # duplicates do no harm to a lookup
    latest = {t.identity: t for t in read(models_dir) if t.data.overlaps(data, prints)}
    sharpes = tuple(t.sharpe for t in latest.values() if t.sharpe is not None)
    per_bar = np.asarray(sharpes) / math.sqrt(periods_per_year)
    variance = float(per_bar.var(ddof=1)) if len(per_bar) >= MIN_FOR_VARIANCE else None
    return Deflation(max(len(latest), 1), variance, sharpes)

"""Drift: is the live model still the model that was validated? Measured per market, per bar.

Over a rolling window of the bars the bot decided on (its warm-up history first, so a restarted
bot knows its drift at once), against the reference training stored in the artifact
(``mlstrategy.research.drift_reference``):

- **features**: the population stability index of each feature against its training deciles;
  the window breaches when the *median* over features exceeds ``psi`` (a few slow features,
  volatility levels, drift in any real market: the median asks whether most of them moved);
- **calibration**: P(up) against the outcomes the label defines, once known (``overlap`` bars
  later): calibration in the large (|mean P(up) - up-rate|) above ``calibration_gap``, or a
  Brier score worse than the holdout's by ``brier_margin``;
- **return**: the live net return over the window's traded bars (the journal's equity) below
  the ``band`` quantile of what the holdout backtest gives over as many bars (block bootstrap).

Figures come once the window is full; the return once a full window was traded live (the
band: the 0.5% quantile of the holdout's, bootstrapped in blocks of about sqrt(window) bars).
With the default limits (window 500, PSI 0.5, calibration gap 0.15), the sample's replay
peaks at 0.42 and 0.13, and a market of another kind spliced in breaches within about 400 bars
(``tests/mlstrategy/live/test_drift.py``). ``DriftGuard`` journals each breach and its end,
and acts as ``--on-drift`` says: only warn (the default), pause the market's entries, or roll
its production model back to the previous champion, which the bot then swaps in between bars.
"""
from __future__ import annotations

import json
import logging
import math
from collections import deque
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from mlstrategy.errors import ModelError
from mlstrategy.live.drift_settings import DRIFT_META, DriftLimits, DriftSettings
from mlstrategy.registry.artifact import Artifact
from mlstrategy.research.drift_reference import BINS, calibration, psi, return_band
from mlstrategy.research.labels import make_labels

log = logging.getLogger(__name__)
_BIN_COLUMNS = BINS + 1  # deciles and the NaN bin


@dataclass(frozen=True)
class DriftFigures:
    """One market's drift over its window, and which limits it breaches."""

    model: str
    bars: int
    psi_median: float
    psi_max: float
    psi_max_feature: str
    labelled: int
    brier: float
    holdout_brier: float
    calibration_gap: float
    up_rate: float
    mean_proba: float
    live_bars: int
    live_return: float
    band_low: float
    band_high: float
    breaches: list[str] = field(default_factory=list)
    psi_top: dict[str, float] = field(default_factory=dict)  # the 5 features that moved most
    reliability: list[dict] = field(default_factory=list)  # live bins of P(up): rows, up-rate

    def to_dict(self) -> dict:
        """JSON-ready (NaN as None)."""
        return {k: (None if isinstance(v, float) and math.isnan(v) else v)
                for k, v in asdict(self).items()}

    def describe(self) -> str:
        """One line for logs and notifications."""
        parts = [f"PSI median {self.psi_median:.3f} (max {self.psi_max:.2f} "
                 f"{self.psi_max_feature})"]
        if self.labelled:
            parts.append(f"calibration gap {self.calibration_gap:.3f}, Brier {self.brier:.4f} "
                         f"(holdout {self.holdout_brier:.4f})")
        if self.live_bars and not math.isnan(self.band_low):
            parts.append(f"return {self.live_return:+.2%} over {self.live_bars} bars (band "
                         f"{self.band_low:+.2%} .. {self.band_high:+.2%})")
        return f"{self.model} over {self.bars} bars: " + "; ".join(parts)


class DriftMonitor:
    """One model's drift figures over a rolling window of bars (see module doc)."""

    def __init__(self, artifact: Artifact, limits: DriftLimits) -> None:
        reference = artifact.drift
        if reference is None:
            raise ModelError(f"{artifact.ref} has no drift reference (trained before drift "
                             "was measured); retrain it to watch its drift")
        self.model = artifact.ref
        self.limits = limits
        self.reference = reference
        self.names = list(artifact.spec.names)
        self.label = artifact.label
        self.returns = artifact.holdout_returns
        self._expected = np.zeros((len(reference.edges), _BIN_COLUMNS))
        for f, shares in enumerate(reference.expected):
            self._expected[f, :len(shares)] = shares
        self._counts = np.zeros_like(self._expected)
        self._bins: deque[np.ndarray] = deque()
        # prices and P(up), oldest first, far enough back to label the window's first bar
        keep = limits.window + self.label.overlap + self.label.vol_window + 2
        self._prices = np.full((4, keep), np.nan)
        self._probas = np.full(keep, np.nan)
        self._equity: deque[float] = deque(maxlen=limits.window + 1)
        self._band: tuple[float, float] | None = None  # bootstrapped once the window is live

    def update(self, row: np.ndarray, proba: float, ohlc: tuple[float, float, float, float],
               equity: float | None) -> DriftFigures | None:
        """Add a decided bar (its features, P(up), prices, and the equity after it on a live
        bar); the window's figures once it is full."""
        binned = self.reference.bin_rows(row)[0]
        self._bins.append(binned)
        self._counts[np.arange(len(binned)), binned] += 1
        if len(self._bins) > self.limits.window:
            old = self._bins.popleft()
            self._counts[np.arange(len(old)), old] -= 1
        self._prices[:, :-1] = self._prices[:, 1:]
        self._prices[:, -1] = ohlc
        self._probas[:-1] = self._probas[1:]
        self._probas[-1] = proba
        if equity is not None:
            self._equity.append(equity)
        if len(self._bins) < self.limits.window:
            return None
        return self._figures()

    def _figures(self) -> DriftFigures:
        limits, n = self.limits, len(self._bins)
        psis = psi(self._counts, self._expected)
        worst, median = int(np.argmax(psis)), float(np.median(psis))
        labels = make_labels(*self._prices, self.label)  # NaN where the future is not known
        cal = calibration(self._probas[-n:], labels.y[-n:])
        held = self.reference.calibration
        live_bars = max(len(self._equity) - 1, 0)
        live_return, band = math.nan, (math.nan, math.nan)
        if live_bars >= 1:
            live_return = self._equity[-1] / self._equity[0] - 1.0
        if live_bars == limits.window:  # one band (one bootstrap) per model and window
            band = self._return_band()
        breaches = []
        if median > limits.psi:
            breaches.append("features")
        if cal.rows >= n // 2 and (cal.gap > limits.calibration_gap or
                                            cal.brier > held.brier + limits.brier_margin):
            breaches.append("calibration")
        if live_return < band[0]:  # NaN (no band yet) never breaches
            breaches.append("return")
        top = np.argsort(psis)[::-1][:5]
        return DriftFigures(self.model, n, median, float(psis[worst]),
                            self.names[worst], cal.rows, cal.brier, held.brier, cal.gap,
                            cal.up_rate, cal.mean_proba, live_bars, live_return, *band,
                            breaches, {self.names[k]: round(float(psis[k]), 4) for k in top},
                            cal.bins)

    def _return_band(self) -> tuple[float, float]:
        if self.returns is None or not len(self.returns):
            return math.nan, math.nan
        if self._band is None:
            self._band = return_band(self.returns, self.limits.window,
                                     quantiles=(self.limits.band, 1 - self.limits.band))
        return self._band


class DriftGuard:
    """One market's drift watch in a bot: figures into the journal with each bar; each limit
    breached journaled once while the drift lasts (event ``drift``), the first acted on; its
    end (no limit breached) journaled (``drift_cleared``).

    A rollback goes through the registry (``production.rollback``, recorded in its history)
    and is journaled (``drift_rollback``); the watcher reads the pointer again, so the
    restored champion decides from the next bar, measured on a fresh window. A champion this
    run restored that drifts too is not rolled back again (the registry would hand back the
    model it replaced): its entries are paused instead.
    """

    def __init__(self, settings: DriftSettings, journal, models_dir: Path, controls,
                 watcher) -> None:
        self.settings = settings
        self.journal = journal
        self.models_dir = models_dir
        self.controls = controls
        self.watcher = watcher
        self.monitor: DriftMonitor | None = None
        self.episode: set[str] = set()  # limits breached since the drift began
        self.restored: set[str] = set()  # champions this run rolled back to: never twice
        self.watch(watcher.current)

    def watch(self, artifact: Artifact) -> None:
        """Measure ``artifact`` from now on (at start, and after a swap: a fresh window)."""
        try:
            self.monitor = DriftMonitor(artifact, self.settings.limits)
        except ModelError as exc:
            self.monitor = None
            log.warning("drift not watched: %s", exc)
        self.episode = set()

    def on_bar(self, bar_ms: int, row: np.ndarray | None, proba: float,
               ohlc: tuple[float, float, float, float],
               equity: float | None) -> dict[str, str]:
        """Measure a decided bar; the journal settings to write with it (the figures)."""
        if self.monitor is None or row is None or math.isnan(proba):
            return {}
        figures = self.monitor.update(row, proba, ohlc, equity)
        if figures is None:
            return {}
        fresh = [b for b in figures.breaches if b not in self.episode]
        if fresh:
            self._breach(figures, fresh, bar_ms, act=not self.episode)
            self.episode.update(fresh)
        elif not figures.breaches and self.episode:
            log.info("drift cleared: %s", figures.describe())
            self.journal.event("drift_cleared", bar_ms=bar_ms, model=figures.model)
            self.episode = set()
        return {DRIFT_META: json.dumps(figures.to_dict())}

    def _breach(self, figures: DriftFigures, fresh: list[str], bar_ms: int, act: bool) -> None:
        """Journal limits newly breached; act on the first breach of a window."""
        action = self.settings.on_drift if act else "none (already drifting)"
        if act and action == "rollback" and figures.model in self.restored:
            action = "pause (the restored champion drifts too)"
        market = self.journal.market
        log.warning("DRIFT (%s) in %s: %s; on drift: %s", ", ".join(fresh),
                    market or "the market", figures.describe(), action)
        self.journal.event("drift", bar_ms=bar_ms, breaches=figures.breaches, new=fresh,
                           action=action,
                           message=figures.describe(), figures=figures.to_dict())
        if action.startswith("pause"):
            self._pause(market, "drift monitor")
        elif action == "rollback":
            self._rollback(market, bar_ms)

    def _pause(self, market: str, source: str) -> None:
        if self.controls is None:
            log.error("drift: entries cannot be paused in a run without controls")
            return
        self.controls.act("pause", market, source)

    def _rollback(self, market: str, bar_ms: int) -> None:
        from mlstrategy.registry.production import rollback

        current = self.watcher.current
        if not self.watcher.follow:
            log.error("drift rollback impossible: this market is pinned to %s (--model); "
                      "its entries are paused instead", current.ref)
            self._pause(market, "drift monitor (pinned model)")
            return
        try:
            previous = rollback(self.models_dir, current.name)
        except ModelError as exc:
            log.error("drift rollback impossible: %s; entries paused instead", exc)
            self._pause(market, "drift monitor (no rollback)")
            return
        self.journal.event("drift_rollback", bar_ms=bar_ms, old=current.ref,
                           new=str(previous))
        self.restored.add(str(previous))
        self.watcher.recheck()  # the next bar swaps the restored champion in

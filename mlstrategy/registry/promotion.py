"""Champion/challenger: a new model replaces production only if it is better, and sane.

The challenger (a newly trained model) and the champion (the production model) are backtested
on the same recent out-of-sample window, with the same costs: the bars after *both* models'
training spans (``backtest.spans``), by the trading engine (``mlstrategy.trading.engine``, trade for
trade the Cerebro run of ``backtest`` with the default options). The challenger is promoted only if
the sanity gate did not flag it and it beats the champion on the metric asked for (net Sharpe
by default). ``force`` promotes regardless. Every decision, kept or promoted, goes into the
registry's history with both models' figures.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from mlstrategy.backtest.spans import trading_span
from mlstrategy.backtest.stats import observed_periods_per_year, performance
from mlstrategy.errors import MLStrategyError
from mlstrategy.registry.artifact import Artifact
from mlstrategy.registry.production import ModelRef, artifact_dir, production_ref, promote, record
from mlstrategy.research.dataset import Dataset
from mlstrategy.trading.engine import run_engine
from mlstrategy.trading.inference import batch_probas
from mlstrategy.trading.strategy_params import CASH, COMMISSION, StrategyParams

METRICS = ("sharpe", "total_return", "psr", "cagr")
MIN_WINDOW = 50  # bars: fewer say nothing


@dataclass(frozen=True)
class Decision:
    """Whether the challenger took production, and why."""

    promoted: bool
    reason: str
    metric: str
    challenger: float | None = None
    champion: float | None = None
    window: tuple[str, str] | None = None  # first and last bar compared on


def _score(dataset: Dataset, artifact: Artifact, start: int, metric: str, cost: float,
           fraction: float, cash: float = CASH) -> float:
    """``metric`` of backtesting ``artifact`` from bar ``start`` with the default strategy,
    by the trading engine (trade for trade the Cerebro run, marked as a report marks it)."""
    bars = dataset.bars.iloc[start:]
    run = run_engine(bars, batch_probas(dataset.bars, artifact, dataset.others)[start:],
                     StrategyParams(fraction=fraction), enter=artifact.thresholds.enter,
                     exit_=artifact.thresholds.exit, cash=cash, commission=cost)
    value = performance(run.marked(float(bars["close"].iloc[-1]), cost), cash,
                        observed_periods_per_year(bars.index))[metric]
    return -math.inf if value is None or math.isnan(value) else float(value)


def compare(dataset: Dataset, challenger: Artifact, champion: Artifact, *,
            metric: str = "sharpe", cost: float = COMMISSION, fraction: float = 0.95
            ) -> Decision:
    """Backtest both on the bars after both training spans and compare ``metric``."""
    try:
        start = max(trading_span(dataset, challenger).start,
                    trading_span(dataset, champion).start)
    except MLStrategyError as exc:
        return Decision(False, f"no common out-of-sample window ({exc})", metric)
    bars = dataset.bars
    if len(bars) - start < MIN_WINDOW:
        return Decision(False, f"only {len(bars) - start} bars after both training spans "
                               f"(need {MIN_WINDOW})", metric)
    new = _score(dataset, challenger, start, metric, cost, fraction)
    old = _score(dataset, champion, start, metric, cost, fraction)
    window = (bars.index[start].isoformat(), bars.index[-1].isoformat())
    better = new > old
    reason = (f"{metric} {new:.4f} {'>' if better else '<='} champion's {old:.4f} on "
              f"{len(bars) - start} bars from {window[0]}")
    return Decision(better, reason, metric, new, old, window)


def promote_if_better(models_dir, dataset: Dataset, challenger: Artifact, *,
                      metric: str = "sharpe", cost: float = COMMISSION, force: bool = False
                      ) -> Decision:
    """Apply the policy (module doc) and record the decision in the registry's history."""
    from mlstrategy.registry.artifact import load_artifact

    if metric not in METRICS:
        raise MLStrategyError(f"--promote-metric {metric!r} is not one of {METRICS}")
    new_ref = ModelRef(challenger.name, challenger.version)
    champion_ref = production_ref(models_dir, challenger.name)
    flags = challenger.manifest.suspicious
    if champion_ref is None:
        decision = Decision(not flags, "no production model yet", metric)
    else:
        champion = load_artifact(artifact_dir(models_dir, champion_ref))
        other = challenger.other_market(champion)
        decision = (Decision(False, f"another market under one name: {other}; train it "
                                    "with its own --name", metric) if other else
                    compare(dataset, challenger, champion, metric=metric, cost=cost))
    if flags and not force:
        decision = Decision(False, f"flagged by the sanity gate: {flags[0]}", metric,
                            decision.challenger, decision.champion, decision.window)
    figures = {"metric": metric, "challenger": decision.challenger,
               "champion": decision.champion, "window": decision.window}
    if force and not decision.promoted:
        promote(models_dir, new_ref, action="forced", reason=f"--force ({decision.reason})",
                metrics=figures)
        return Decision(True, f"forced: {decision.reason}", metric, decision.challenger,
                        decision.champion, decision.window)
    if decision.promoted:
        promote(models_dir, new_ref, action="promoted", reason=decision.reason,
                metrics=figures)
    else:
        record(models_dir, "kept", new=new_ref, old=champion_ref, reason=decision.reason,
               metrics=figures)
    return decision

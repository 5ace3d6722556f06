"""Hyperparameter and threshold search with Optuna, scored by the purged CV after costs.

Each trial trains the market's model with sampled parameters (learner parameters and the
entry quantile) and scores it by the mean net Sharpe of its purged walk-forward folds: the
holdout is never looked at, so it stays an honest test of the winner. Trials are asked for
in batches of ``batch`` (one per worker) and told back in order, so the same seed gives the
same trials, the same best parameters and the same model whether they ran inline, in local
processes or on a Dask cluster. Every trial's parameters and scores go to
``sweeps/<market>/<time>/trials.jsonl`` and to the market's trial ledger
(``mlstrategy.research.trials``: the deflated Sharpe of its backtests discounts them all);
the console shows each trial's CV objective, never a holdout figure. The winner is retrained
with the best parameters, saved to the market's registry, and goes through champion/challenger
like any new model.

The search space is the market's ``[market.sweep]`` table: two integers are an integer range,
two floats a float range (log scale for learning rates and regularisation), anything else a
list of choices. Without one, CatBoost searches depth, learning rate and L2 and every learner
the entry quantile.
"""
from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path

from datafeeds.timeframes import timeframe_delta
from features_numba import FeatureSpec
from mlstrategy.backtest.stats import observed_periods_per_year
from mlstrategy.cycle.config import CycleConfig, Market, TrainSettings
from mlstrategy.errors import ConfigError
from mlstrategy.registry.artifact import load_artifact, save_artifact
from mlstrategy.registry.promotion import promote_if_better
from mlstrategy.research.dataset import store_dataset
from mlstrategy.research.training import train
from mlstrategy.research.trials import Trial, TrialData, identity, record, record_training

OBJECTIVE = "mean net Sharpe of the purged walk-forward folds (after costs)"
_LOG = {"learning_rate", "l2_leaf_reg", "alpha", "learning_rate_init", "l2_regularization"}
_DEFAULT = {"catboost": {"depth": [4, 8], "learning_rate": [0.02, 0.3],
                         "l2_leaf_reg": [1.0, 10.0]}}
_THRESHOLD = {"enter_quantile": [0.55, 0.9]}


def space(market: Market) -> dict:
    """Optuna distributions of the search (see the module doc)."""
    from optuna import distributions as d

    raw = (dict(market.sweep) if market.sweep
           else {**_DEFAULT.get(market.train.model, {}), **_THRESHOLD})
    out = {}
    for name, values in raw.items():
        if not isinstance(values, list) or not values:
            raise ConfigError(f"sweep of {market.name}: {name} = {values!r}; give [low, high] "
                              "or a list of choices")
        if len(values) == 2 and all(isinstance(v, int) and not isinstance(v, bool)
                                    for v in values):
            out[name] = d.IntDistribution(values[0], values[1])
        elif len(values) == 2 and all(isinstance(v, float) for v in values):
            out[name] = d.FloatDistribution(values[0], values[1], log=name in _LOG)
        else:
            out[name] = d.CategoricalDistribution(values)
    return out


def _settings(base: TrainSettings, params: dict) -> TrainSettings:
    """The market's settings with a trial's parameters put in."""
    learner = {k: v for k, v in params.items() if k != "enter_quantile"}
    return replace(base, params={**base.params, **learner},
                   enter_quantile=params.get("enter_quantile", base.enter_quantile))


@lru_cache(maxsize=4)
def _dataset(store: str, source: str, symbol: str, timeframe: str, sha256: str):
    """A worker loads the bars once per series and version, from the shared store."""
    dataset = store_dataset(store, source, symbol, timeframe)
    if dataset.info.sha256 != sha256:
        raise ConfigError(f"{source} {symbol} {timeframe} changed in {store} during the sweep; "
                          "run it again")
    return dataset


@dataclass(frozen=True)
class Job:
    """One trial, in plain values a worker process can receive."""

    number: int
    params: dict
    store: str
    market: Market
    sha256: str  # of the bars the sweep searches on: every trial sees the same ones
    threads: int


def _train(dataset, market: Market, settings: TrainSettings, threads: int):
    return train(dataset, FeatureSpec.default(timeframe_delta(market.timeframe)),
                 settings.train_config(threads), progress=_Quiet())


class _Quiet:
    """Training progress nobody reads: a trial reports its score, not its folds."""

    def __call__(self, message: str) -> None:
        pass

    def advance(self, done: int, total: int) -> None:
        pass


def evaluate(job: Job) -> dict:
    """Train one trial and score it (runs in a worker)."""
    started = time.perf_counter()
    try:
        m = job.market
        dataset = _dataset(job.store, m.source, m.symbol, m.timeframe, job.sha256)
        result = _train(dataset, m, _settings(m.train, job.params), job.threads)
    except (ValueError, ArithmeticError) as exc:  # a combination the learner refuses
        return {"number": job.number, "params": job.params, "value": None,
                "error": str(exc), "seconds": round(time.perf_counter() - started, 2)}
    sharpes = [f["sharpe"] for f in result.fold_metrics]
    value = float(sum(sharpes) / len(sharpes)) if all(map(math.isfinite, sharpes)) else None
    return {"number": job.number, "params": job.params, "value": value,
            "fold_sharpe": sharpes, "fold_auc": [f["auc"] for f in result.fold_metrics],
            "pid": os.getpid(), "seconds": round(time.perf_counter() - started, 2)}


@dataclass(frozen=True)
class SweepResult:
    """The trials, the winner and where it all went."""

    trials: list[dict]
    best: dict
    folder: Path
    model: Path
    decision: object


def run_sweep(config: CycleConfig, market: Market, *, executor,
              trials: int | None, timeout: float | None, seed: int, batch: int,
              threads: int, say: Callable[[str], None] = print) -> SweepResult:
    """Search, record every trial, save and decide the winner (module doc)."""
    try:
        import optuna
    except ImportError:
        raise ConfigError("sweeps need Optuna: pip install 'mlstrategy[sweep]'") from None

    if trials is None and timeout is None:
        raise ConfigError("give --trials N or --timeout SECONDS (or both)")
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    distributions = space(market)
    dataset = store_dataset(config.store, market.source, market.symbol, market.timeframe)
    sha256 = dataset.info.sha256
    data = TrialData.of(dataset.bars, market.symbol, market.timeframe,  # for the ledger
                        dataset.info.source)
    ppy = observed_periods_per_year(dataset.bars.index)
    study = optuna.create_study(direction="maximize",
                                sampler=optuna.samplers.TPESampler(seed=seed))
    folder = config.sweeps_dir / market.name / datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    folder.mkdir(parents=True, exist_ok=True)
    done: list[dict] = []
    deadline = None if timeout is None else time.monotonic() + timeout
    while (trials is None or len(done) < trials) and \
            (deadline is None or time.monotonic() < deadline):
        size = batch if trials is None else min(batch, trials - len(done))
        asked = [study.ask(distributions) for _ in range(size)]
        jobs = [Job(t.number, t.params, config.store, market, sha256, threads) for t in asked]
        for trial, outcome in zip(asked, executor.map(evaluate, jobs), strict=True):
            if outcome["value"] is None:
                study.tell(trial, state=optuna.trial.TrialState.FAIL)
            else:
                study.tell(trial, outcome["value"])
            done.append(outcome)
            with open(folder / "trials.jsonl", "a", encoding="utf-8") as fh:
                fh.write(json.dumps(outcome) + "\n")
            record(config.models_dir, Trial(
                "sweep", identity(market=market.name, params=outcome["params"]), data,
                outcome["value"], ppy, f"sweep {folder.name} trial {outcome['number']}"))
            shown = "failed" if outcome["value"] is None else f"{outcome['value']:.4f}"
            say(f"trial {outcome['number']}: CV objective {shown}  {outcome['params']}")
    scored = [t for t in done if t["value"] is not None]
    if not scored:
        raise ConfigError(f"sweep of {market.name}: no trial could be scored; see "
                          f"{folder / 'trials.jsonl'}")
    best = max(scored, key=lambda t: (t["value"], -t["number"]))
    search = {"trials": len(done), "objective": OBJECTIVE, "sampler": "optuna TPE",
              "seed": seed, "best_trial": best["number"], "best_value": best["value"],
              "best_params": best["params"]}
    result = _train(dataset, market, _settings(market.train, best["params"]), threads)
    result.manifest["validation"]["search"] = search
    path = save_artifact(config.models_dir, market.name, result.model, result.manifest,
                         training_bars=result.training_bars, importance=result.importance)
    record_training(config.models_dir, load_artifact(path), dataset)
    decision = promote_if_better(config.models_dir, dataset, load_artifact(path),
                                 metric=market.train.promote_metric, cost=market.train.cost)
    (folder / "best.json").write_text(json.dumps(
        {**search, "model": str(path), "executor": executor.name,
         "settings": asdict(_settings(market.train, best["params"])),
         "promotion": {"promoted": decision.promoted, "reason": decision.reason}},
        indent=2, default=str) + "\n", encoding="utf-8")
    return SweepResult(done, best, folder, path, decision)

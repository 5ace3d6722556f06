"""One model-update cycle over the configured markets.

For each market, in order: ``update`` the store, ``validate`` the stored series (a bad bar or a
gap longer than ``max_gap`` stops this market), ``drift``: the live drift of the market's model
as the bots' journals (``[cycle] journals``) last measured it, which retrains a drifting market
even before ``retrain_every``; ``train`` with the market's settings (the
purged walk-forward CV is part of training; its folds go into the report), ``backtest`` the
new model on the newest window (the bars after its training span), then ``promote``: the
sanity gate and champion/challenger against the market's production model on the same bars.

Safe to kill at any point and run again:

- every write is atomic (store transactions, artifacts published by one rename, the
  production pointer replaced by rename), and the next cycle first tidies what a kill left
  (``registry.reconcile``; temp files of the Parquet store);
- a market whose stored bars already trained a model picks up after training: if that model's
  promotion was decided, there is nothing to do; if not (killed before), it is backtested and
  decided now. So a rerun never trains the same bars twice and never promotes twice;
- the report is assembled in a hidden folder and published by one rename at the end.
"""
from __future__ import annotations

import json
import logging
import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd

from datafeeds import load_sample
from datafeeds.errors import DataError
from datafeeds.loaders import load_file
from datafeeds.quality import check_ohlcv
from datafeeds.store import StoreKey
from datafeeds.stores import open_store
from datafeeds.timeframes import timeframe_delta
from datafeeds.values import read_values_file
from mlstrategy.backtest.report import run_backtest
from mlstrategy.backtest.runner import BacktestConfig
from mlstrategy.cycle.config import CycleConfig, Market, Series
from mlstrategy.cycle.executor import InlineExecutor
from mlstrategy.cycle.lock import CycleLock
from mlstrategy.cycle.report import write_report
from mlstrategy.live.drift_settings import DRIFT_META
from mlstrategy.live.journal import Journal
from mlstrategy.registry.artifact import load_artifact, save_artifact
from mlstrategy.registry.migration import migrate, needs_migration
from mlstrategy.registry.production import (
    artifact_dir,
    history,
    list_models,
    read_manifest,
    reconcile,
)
from mlstrategy.registry.promotion import promote_if_better
from mlstrategy.research.dataset import store_dataset
from mlstrategy.research.training import train
from mlstrategy.research.trials import record_training

log = logging.getLogger(__name__)
STEPS = ("update", "validate", "train", "backtest", "promote")
Say = Callable[[str], None]


@dataclass
class MarketResult:
    """What the cycle did for one market (one table of the report)."""
    name: str
    key: str
    status: str = "pending"  # nothing to do | kept | promoted | stopped | failed
    reason: str = ""
    steps: dict = field(default_factory=dict)
    equity: str | None = None  # the backtest's equity plot, relative to the report


def _stored_series(config: CycleConfig, market: Market | Series):
    return open_store(config.store), StoreKey(market.source, market.symbol, market.timeframe)


def _update_all(config: CycleConfig, market: Market) -> dict:
    """New bars of the market and of each market or series of values its features read."""
    done = _update(config, market)
    for read in market.reads:
        done[read.input_of(market)] = _update(config, read) if read.series is None else \
            _update_values(config, read)
    return done


def _update_values(config: CycleConfig, read: Series) -> dict:
    """New values of a series into the store: from its file, else downloaded."""
    store = open_store(config.store)
    key = StoreKey(read.source, read.symbol, read.series)
    stored = store.read_values(key)
    if read.bars is not None:
        values = read_values_file(Path(read.bars), read.series)
        new = values if stored is None else values[values.index > stored.index[-1]]
        if len(new):
            store.write_values(key, new)
        return {"added": len(new), "from": read.bars}
    from datafeeds.exchange.client import make_exchange  # ccxt: only for exchange series
    from datafeeds.exchange.derivatives import update_values

    if stored is None:
        raise DataError(f"nothing stored yet for {key}: download its history first "
                        "(`mlstrategy data download ... --series ... --since DATE`)")
    added = update_values(store, key, make_exchange(read.source, api_url=read.api_url),
                          since=pd.Timestamp(0, tz="UTC"))
    return {"added": added, "from": read.source}


def _update(config: CycleConfig, market: Market | Series) -> dict:
    """New bars into the store: from the market's file or sample, else downloaded."""
    store, key = _stored_series(config, market)
    if market.bars is not None:
        bars = (load_sample(market.bars.removeprefix("sample:"))
                if market.bars.startswith("sample:") else load_file(market.bars))
        return {"added": store.append(key, bars), "from": market.bars}
    if market.source == "yahoo":
        from datafeeds.download_yfinance import update_store_yahoo

        added, _ = update_store_yahoo(store, key)
        return {"added": added, "from": "yahoo"}
    from datafeeds.exchange.client import make_exchange  # ccxt: only for exchange markets
    from datafeeds.exchange.history import update_store

    if store.last_bar(key) is None:
        raise DataError(f"nothing stored yet for {key}: download its history first "
                        "(`mlstrategy data download ... --since DATE`)")
    exchange = make_exchange(market.source, api_url=market.api_url)
    added = update_store(store, key, exchange, since=pd.Timestamp(0, tz="UTC"))
    return {"added": added, "from": market.source}


def _validate(config: CycleConfig, market: Market) -> tuple[dict, object]:
    """The stored series as a dataset, or a DataError naming the bar or gap that stops it."""
    _, key = _stored_series(config, market)
    dataset = store_dataset(config.store, market.source, market.symbol, market.timeframe)
    report = check_ohlcv(dataset.bars, source=str(key), timeframe=key.timeframe)[1]
    worst = max(report.gaps, key=lambda g: g.missing, default=None)
    if worst is not None and worst.missing > market.max_gap:
        raise DataError(f"{key}: gap of {worst.missing} bars ({worst}); more than max_gap = "
                        f"{market.max_gap}. Fill it (`mlstrategy data download`) or raise "
                        "max_gap for a market with closures")
    facts = {"bars": report.rows, "first": str(report.first), "last": str(report.last),
             "gaps": len(report.gaps), "largest_gap": 0 if worst is None else worst.missing,
             "sha256": dataset.info.sha256}
    return facts, dataset.with_others({read.input_of(market): _read(config, read)
                                       for read in market.reads})


def _read(config: CycleConfig, read: Series) -> pd.DataFrame:
    """What a market's features read besides its bars, from the store."""
    if read.series is None:
        return store_dataset(config.store, read.source, read.symbol, read.timeframe).bars
    values = open_store(config.store).read_values(StoreKey(read.source, read.symbol,
                                                           read.series))
    if values is None:
        raise DataError(f"nothing stored for {read.source} {read.symbol} {read.series} in "
                        f"{config.store}")
    return values


def _trained_on(registry: Path, market: str, sha256: str):
    """The newest model of ``market`` trained on exactly these bars, if any."""
    for ref in reversed(list_models(registry, market)):
        if read_manifest(registry, ref).get("training_data", {}).get("sha256") == sha256:
            return load_artifact(artifact_dir(registry, ref))
    return None


def _decided(registry: Path, artifact) -> dict | None:
    ref = artifact.ref
    return next((e for e in reversed(history(registry, artifact.name)) if e["new"] == ref),
                None)


def _too_soon(registry: Path, market: Market, dataset) -> str | None:
    """Why retraining waits for ``retrain_every``, or None when it is due."""
    refs = list_models(registry, market.name)
    if market.retrain_every is None or not refs:
        return None
    trained_to = pd.Timestamp(read_manifest(registry, refs[-1])["training_data"]["last_bar"])
    due = trained_to + timeframe_delta(market.retrain_every)
    if dataset.bars.index[-1] < due:
        return (f"newest model {refs[-1]} trained to {trained_to}; "
                f"retrain_every {market.retrain_every}: next once bars reach {due}")
    return None


def _live_drift(config: CycleConfig, market: Market) -> dict | None:
    """The newest drift figures a bot journaled for this market's models, if any."""
    found = []
    for path in config.journals:
        if not path.is_file():
            log.warning("cycle: journal %s not found; no live drift from it", path)
            continue
        journal = Journal.read(path)
        try:
            for name in journal.markets():
                view = journal.for_market(name)
                raw = view.meta().get(DRIFT_META)
                if raw and json.loads(raw)["model"].split("/")[0] == market.name:
                    found.append(((view.last_bar() or (0,))[0], path, json.loads(raw)))
        finally:
            journal.close()
    if not found:
        return None
    _, path, figures = max(found, key=lambda f: f[0])
    return {"journal": str(path), **figures}


def _train(config: CycleConfig, market: Market, dataset, threads: int):
    result = train(dataset, market.spec(), market.train.train_config(threads))
    path = save_artifact(config.models_dir, market.name, result.model, result.manifest,
                         training_bars=result.training_bars, importance=result.importance)
    artifact = load_artifact(path)
    record_training(config.models_dir, artifact, dataset)
    return artifact


def _train_facts(artifact) -> dict:
    """The new model and its purged-CV figures (all of them are in its manifest)."""
    validation = artifact.manifest.validation
    holdout = validation.holdout
    return {"model": artifact.ref,
            "kind": artifact.manifest.learner.kind, "cv": validation.scheme,
            "fold_auc": [round(f["auc"], 4) for f in validation.folds],
            "holdout": {k: holdout.get(k) for k in ("auc", "sharpe", "buy_hold_sharpe",
                                                    "trades")},
            "flags": list(artifact.manifest.suspicious)}


def _backtest(config: CycleConfig, market: Market, dataset, artifact, out: Path) -> dict:
    result = run_backtest(dataset, artifact, BacktestConfig(plot=False, engine="numba"), out,
                          ledger=config.models_dir)
    summary = result.report["summary"]
    return {"strategy": {k: summary["strategy"].get(k) for k in
                         ("total_return", "sharpe", "max_drawdown", "dsr", "trades")},
            "buy_and_hold": {k: summary.get("buy_and_hold", {}).get(k) for k in
                             ("total_return", "sharpe", "max_drawdown")},
            "window": [result.report["data"]["traded_first_bar"],
                       result.report["data"]["traded_last_bar"]]}


def _promote(config: CycleConfig, market: Market, dataset, artifact) -> dict:
    decision = promote_if_better(config.models_dir, dataset, artifact,
                                 metric=market.train.promote_metric, cost=market.train.cost)
    return {"promoted": decision.promoted, "reason": decision.reason,
            "challenger": decision.challenger, "champion": decision.champion}


def run_market(config: CycleConfig, market: Market, out: Path, say: Say,
               threads: int) -> MarketResult:
    """The steps of one market (module doc); never raises for the market's own problems."""
    _, key = _stored_series(config, market)
    result = MarketResult(market.name, str(key))
    registry = config.models_dir
    step = "update"
    try:
        say(f"step update: {market.name}")
        result.steps["update"] = _update_all(config, market)
        step = "validate"
        say(f"step validate: {market.name}")
        result.steps["validate"], dataset = _validate(config, market)
        drift = _live_drift(config, market)
        if drift is not None:
            result.steps["drift"] = drift
        artifact = _trained_on(registry, market.name, dataset.info.sha256)
        if artifact is not None and (entry := _decided(registry, artifact)) is not None:
            result.status, result.reason = "nothing to do", (
                f"no new bars since {artifact.ref} (decided: "
                f"{entry['action']})")
            return result
        if artifact is None:
            wait = _too_soon(registry, market, dataset)
            if wait is not None and drift is not None and drift["breaches"]:
                say(f"{market.name}: live model {drift['model']} drifts "
                    f"({', '.join(drift['breaches'])}): retrained before retrain_every")
            elif wait is not None:
                result.status, result.reason = "nothing to do", wait
                return result
            step = "train"
            say(f"step train: {market.name}")
            artifact = _train(config, market, dataset, threads)
        result.steps["train"] = _train_facts(artifact)
        step = "backtest"
        say(f"step backtest: {market.name}")
        result.steps["backtest"] = _backtest(config, market, dataset, artifact,
                                             out / market.name)
        result.equity = f"{market.name}/equity.png"
        step = "promote"
        say(f"step promote: {market.name}")
        decision = _promote(config, market, dataset, artifact)
        result.steps["promote"] = decision
        result.status = "promoted" if decision["promoted"] else "kept"
        result.reason = decision["reason"]
    except DataError as exc:
        result.status, result.reason = "stopped", f"{step}: {exc}"
    except Exception as exc:  # one market's failure (offline exchange, bug) spares the others
        log.exception("market %s failed at %s", market.name, step)
        result.status, result.reason = "failed", f"{step}: {type(exc).__name__}: {exc}"
    return result


def tidy(config: CycleConfig) -> list[str]:
    """Remove what killed runs left: registry leftovers, store temp files, unpublished
    reports."""
    done = []
    if config.models_dir.is_dir():
        if needs_migration(config.models_dir):
            done += migrate(config.models_dir)
        done += reconcile(config.models_dir)
    done += open_store(config.store).tidy()
    junk = list(config.cycles_dir.glob(".*.partial")) if config.cycles_dir.is_dir() else []
    for path in junk:
        shutil.rmtree(path) if path.is_dir() else path.unlink()
        done.append(f"removed {path}, left by an interrupted run")
    return done


def exit_code(results: list[MarketResult]) -> int:
    """1 if a market failed or was stopped, else 10 if one was promoted, else 0."""
    if any(r.status in ("failed", "stopped") for r in results):
        return 1
    return 10 if any(r.status == "promoted" for r in results) else 0


@dataclass(frozen=True)
class CycleRun:
    """A finished cycle: its results, exit code and report folder."""
    results: list[MarketResult]
    code: int
    folder: Path


@dataclass(frozen=True)
class MarketJob:
    """One market's steps, in plain values a worker process can receive."""
    config: CycleConfig
    market: Market
    out: Path
    threads: int


def _say(line: str) -> None:
    print(line, flush=True)  # from a worker process too, in order


def run_market_job(job: MarketJob) -> MarketResult:
    """:func:`run_market` as an executor's job."""
    return run_market(job.config, job.market, job.out, _say, job.threads)


def run_cycle(config: CycleConfig, *, say: Say = print, threads: int | None = None,
              executor=None) -> CycleRun:
    """Run every market (under the cycle lock) and publish the report.

    ``executor`` (``mlstrategy.cycle.executor``) runs the markets; by default one after another in
    this process.
    """
    threads = threads or os.cpu_count() or 1
    executor = executor or InlineExecutor()
    started = datetime.now(UTC)
    with CycleLock(config.cycles_dir / "cycle.lock"):
        for line in tidy(config):
            say(f"tidied: {line}")
        name = started.strftime("%Y%m%dT%H%M%SZ")
        staging = config.cycles_dir / f".{name}.partial"
        staging.mkdir(parents=True)
        results = executor.map(run_market_job, [MarketJob(config, market, staging, threads)
                                                for market in config.markets])
        code = exit_code(results)
        write_report(staging, results, started=started, code=code, store=config.store)
        folder = config.cycles_dir / name
        for n in range(2, 100):  # a rerun within the same second
            if not folder.exists():
                break
            folder = config.cycles_dir / f"{name}-{n}"
        os.replace(staging, folder)
    for result in results:
        say(f"{result.name}: {result.status}: {result.reason}")
    say(f"report: {folder / 'report.md'}")
    return CycleRun(results, code, folder)

"""Grids: every combination of strategy options backtested in one call by the trading engine.

``--grid enter=0.50:0.70:0.01 --grid exit=0.40,0.45,0.50`` gives each option a range
(``LO:HI:STEP``, both ends included) or a list; every combination is run by the engine over the
same bars and the same P(up) (computed once), in parallel over the cores
(``engine.grid_nb``). Each one is a trial: all go to the trial ledger, so the deflated Sharpe of
the best counts them all. Written to the output folder:

- ``grid.csv``: one row per configuration (its options, return, Sharpe, max drawdown, trades,
  refused entries);
- ``grid.png``: the Sharpe over the first two options (a heatmap; with one option, a line; other
  options at their best value);
- the best configuration's full report (``backtest.json`` and the rest, as ``backtest``
  writes it), its deflated Sharpe counting every trial on these bars.
"""
from __future__ import annotations

import csv
import itertools
import math
from dataclasses import dataclass, fields, replace
from pathlib import Path

from mlstrategy.backtest.plots import plot_grid
from mlstrategy.backtest.report import BacktestResult, write_report
from mlstrategy.backtest.runner import BacktestConfig, simulate
from mlstrategy.backtest.spans import trading_span
from mlstrategy.backtest.stats import observed_periods_per_year
from mlstrategy.errors import ConfigError
from mlstrategy.registry.artifact import Artifact
from mlstrategy.research.dataset import Dataset
from mlstrategy.research.trials import Trial, TrialData, evaluation_identity, record_many
from mlstrategy.trading.engine import EngineBars, run_grid_configurations
from mlstrategy.trading.inference import batch_probas
from mlstrategy.trading.strategy_params import COSTS, StrategyParams

_NUMERIC = {f.name: f.type for f in fields(StrategyParams)
            if f.name not in ("allow_short", "sizing", *COSTS)}
_INTEGER = {"atr_period", "max_bars_held", "cooldown"}


def parse_axes(specs: tuple[str, ...]) -> dict[str, list]:
    """``NAME=LO:HI:STEP`` or ``NAME=A,B,C`` options -> the values of each.

    Raises
    ------
    ConfigError
        For an unknown option, a malformed range or list, or an empty one.
    """
    axes: dict[str, list] = {}
    for spec in specs:
        name, _, text = spec.partition("=")
        name = name.strip().replace("-", "_")
        if name not in _NUMERIC and name not in ("allow_short", "sizing"):
            raise ConfigError(f"--grid {spec!r}: no strategy option {name!r}; use one of "
                              f"{', '.join(sorted([*_NUMERIC, 'allow_short', 'sizing']))}")
        try:
            axes[name] = _values(name, text)
        except ValueError as exc:
            raise ConfigError(f"--grid {spec!r}: {exc}; give LO:HI:STEP (e.g. "
                              "enter=0.5:0.7:0.01) or a list (e.g. cooldown=0,2,4)") from None
    return axes


def _values(name: str, text: str) -> list:
    if name == "allow_short":
        return [part.strip().lower() in ("1", "true", "yes") for part in text.split(",")]
    if name == "sizing":
        return [part.strip() for part in text.split(",")]
    cast = int if name in _INTEGER else float
    if ":" in text:
        lo, hi, step = (float(x) for x in text.split(":"))
        if not step > 0 or hi < lo:
            raise ValueError("a range needs LO <= HI and a positive STEP")
        count = int(math.floor((hi - lo) / step + 1e-9)) + 1
        return [cast(round(lo + k * step, 12)) for k in range(count)]
    values = [cast(part) for part in text.split(",") if part.strip()]
    if not values:
        raise ValueError("no values")
    return values


@dataclass(frozen=True)
class GridResult:
    """The grid's rows, the best configuration and its full report."""

    rows: list[dict]
    best: dict
    table: Path
    picture: Path
    report: BacktestResult


def run_grid(dataset: Dataset, artifact: Artifact, config: BacktestConfig,
             axes: dict[str, list], out_dir: Path, *, ledger: Path,
             threads: int | None = None) -> GridResult:
    """Backtest every combination of ``axes`` over ``config.strategy`` (module doc)."""
    config = config.for_model(artifact)
    span = trading_span(dataset, artifact, start=config.start,
                        allow_in_sample=config.allow_in_sample)
    bars = dataset.bars.iloc[span.start:]
    proba = batch_probas(dataset.bars, artifact, dataset.others)[span.start:]
    columns = EngineBars.of(bars)
    ppy = config.periods_per_year or observed_periods_per_year(bars.index)
    names = list(axes)
    combos = [dict(zip(names, values, strict=True))
              for values in itertools.product(*axes.values())]

    configs = []
    for options in combos:
        params = replace(config.strategy, **options)
        configs.append((params,
                        artifact.thresholds.enter if params.enter is None else params.enter,
                        artifact.thresholds.exit if params.exit is None else params.exit))
    costs = config.strategy
    out = run_grid_configurations(columns, proba, configs, cash=costs.cash,
                                  commission=costs.commission, slippage=costs.slippage,
                                  borrow_rate=costs.borrow_rate, threads=threads)
    n = len(bars)
    rows = []
    for options, (params, enter, exit_), (last, sum_r, sum_r2, drawdown, fills, refused) in \
            zip(combos, configs, out, strict=True):
        mean = sum_r / n
        variance = (sum_r2 - n * mean * mean) / (n - 1) if n > 1 else math.nan
        rows.append({**options, "return": last / config.strategy.cash - 1.0,
                     "sharpe": mean / math.sqrt(variance) * math.sqrt(ppy)
                     if variance > 0 else math.nan,
                     "max_drawdown": drawdown, "trades": int(fills) // 2,
                     "refused": int(refused), "_params": params, "_enter": enter,
                     "_exit": exit_})
    ref = artifact.ref
    data = TrialData.of(bars, dataset.info.symbol, dataset.timeframe, dataset.info.source)
    costs = config.strategy.costs
    record_many(ledger, [Trial("backtest", evaluation_identity(ref, r["_params"], r["_enter"],
                                                               r["_exit"], costs),
                               data, r["sharpe"], ppy, f"{ref} grid") for r in rows])
    scored = [r for r in rows if not math.isnan(r["sharpe"])] or rows
    best = max(scored, key=lambda r: -math.inf if math.isnan(r["sharpe"]) else r["sharpe"])
    out_dir.mkdir(parents=True, exist_ok=True)
    table = _write_table(rows, names, out_dir / "grid.csv")
    picture = plot_grid(rows, names, best, out_dir / "grid.png",
                        title=f"{ref}: net Sharpe over {len(rows)} configurations")
    best_config = replace(config, strategy=best["_params"], engine="numba", plot=False)
    best_run = simulate(dataset, artifact, best_config, lines={"p_up": proba})
    report = write_report(best_run, artifact, best_config,
                          out_dir, extra={"grid": {"axes": axes, "configurations": len(rows),
                                                   "best": _public(best)}}, ledger=ledger)
    return GridResult([_public(r) for r in rows], _public(best), table, picture, report)


def _public(row: dict) -> dict:
    return {k: v for k, v in row.items() if not k.startswith("_")}


def _write_table(rows: list[dict], names: list[str], path: Path) -> Path:
    columns = [*names, "return", "sharpe", "max_drawdown", "trades", "refused"]
    with open(path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=columns, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    return path

"""The backtest report: what was traded, how it did against buy-and-hold, and whether it could
be luck. Written to ``reports/<market>/<version>/<run>/`` (``run_dirs``), with the options
that made it (``config``: the strategy's options and costs, the span, the engine):

- ``backtest.json``: ``in_sample`` and warnings first (the model's sanity-gate flags among
  them, and in ``model_flags``); strategy and buy-and-hold rows (return,
  CAGR, volatility, Sharpe, max drawdown) on the same bars and costs; fees, exposure, turnover;
  trade statistics (win rate, profit factor, SQN); significance (probabilistic and deflated
  Sharpe with the number of trials, a bootstrap 95% interval of the Sharpe, the trade count);
  rejected and margin orders with their reasons; backtrader's own analyzers when asked for;
- ``trades.csv``: each round trip (entry and exit time and price, size, fees, PnL, bars held);
- ``equity.png``: the strategy against buy-and-hold, drawdown below;
- ``backtest.png``: backtrader's own plot (when asked).

Costs are always against the trader: commission on every fill, slippage in full, shorts
paying ``borrow_rate``, and a position still open at the end (the strategy's, and
buy-and-hold's) is marked net of what selling it would cost (``final_exit_cost``).
Annualisation uses the bars a year the traded data actually holds, unless the market's
calendar is given (``periods_per_year``).
"""
from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from datafeeds.bt.dates import EPOCH_ORDINAL as _EPOCH_ORDINAL
from mlstrategy.backtest.plots import plot_backtrader, plot_equity
from mlstrategy.backtest.runner import BacktestConfig, Simulation, probas_of, simulate
from mlstrategy.backtest.stats import annual_sharpe, observed_periods_per_year, performance
from mlstrategy.registry.artifact import Artifact
from mlstrategy.research.dataset import Dataset
from mlstrategy.research.trials import (
    Deflation,
    Trial,
    TrialData,
    deflation,
    evaluation_identity,
    record,
)
from mlstrategy.trading.engine import buy_and_hold, exit_cost

_TRADE_COLUMNS = ("data", "side", "entry_time", "entry_price", "exit_time", "exit_price",
                  "size", "fees", "pnl", "pnl_net", "bars_held")


@dataclass(frozen=True)
class BacktestResult:
    """The report and where its files went."""

    report: dict
    report_path: Path
    trades_path: Path
    equity_path: Path
    plot_path: Path | None
    probas: np.ndarray


def plain(value: object) -> object:
    """JSON-ready values: NaN/inf -> None, backtrader's ``sys.maxsize`` sentinels -> None."""
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if isinstance(value, (float, np.floating)):
        return None if math.isnan(value) or math.isinf(value) else float(value)
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        return None if abs(int(value)) >= 2 ** 62 else int(value)  # "no value yet" in bt
    return value


def marked_values(sim: Simulation, config: BacktestConfig) -> tuple[np.ndarray, float]:
    """The strategy's value after each bar, the last one net of closing what is still open
    (its exit fee and slippage, at the last close), and that cost."""
    values = np.asarray(sim.strategy.values, dtype=np.float64).copy()
    cost = sum(exit_cost(size, close, config.strategy.commission, config.strategy.slippage)
               for size, close in sim.open_positions)
    if len(values):
        values[-1] -= cost
    return values, cost


_FILL_COLUMNS = ("time", "data", "size", "price", "value", "fee")


def fills_frame(strategy: object) -> pd.DataFrame:
    """Every fill of a run as columns (``MLStrategy.executions``' dicts, or the engine's)."""
    frame = pd.DataFrame(strategy.executions, columns=list(_FILL_COLUMNS))
    return frame.astype({k: np.float64 for k in _FILL_COLUMNS if k != "data"})


def trades_frame(strategy: object) -> pd.DataFrame:
    """Every closed round trip of a run as columns (``MLStrategy.trades``' dicts, or the
    engine's)."""
    frame = pd.DataFrame(strategy.trades, columns=list(_TRADE_COLUMNS))
    return frame.astype({k: np.float64 for k in _TRADE_COLUMNS
                         if k not in ("data", "side", "bars_held")} | {"bars_held": np.int64})


def bt_ns(num: np.ndarray) -> np.ndarray:
    """``dates.num2ns`` of many backtrader dates at once (the same rounding)."""
    seconds = np.round((np.asarray(num, dtype=np.float64) - _EPOCH_ORDINAL) * 86400.0)
    return seconds.astype(np.int64) * 1_000_000_000


def bt_iso(num: np.ndarray) -> list[str]:
    """Backtrader dates as ISO-8601 UTC strings (``2019-05-12T19:00:00+00:00``)."""
    seconds = (bt_ns(num) // 1_000_000_000).astype("datetime64[s]")
    return [f"{t}+00:00" for t in np.datetime_as_string(seconds, unit="s").tolist()]


def exposure(index: pd.DatetimeIndex, fills: pd.DataFrame) -> float:
    """Fraction of bars after which a position was open (from the fills, per feed)."""
    if fills.empty:
        return 0.0
    times = index.as_unit("ns").asi8
    open_after = np.zeros(len(index), dtype=bool)
    for _, feed in fills.groupby("data", sort=False):
        at = np.searchsorted(times, bt_ns(feed["time"].to_numpy()))
        delta = np.zeros(len(index) + 1)
        np.add.at(delta, at, feed["size"].to_numpy(dtype=np.float64))
        open_after |= np.abs(np.cumsum(delta[:-1])) > 1e-12
    return float(open_after.mean())


def trade_stats(pnl: np.ndarray) -> dict:
    """Win rate, average win and loss, profit factor and SQN of the closed trades' net PnL."""
    pnl = np.asarray(pnl, dtype=np.float64)
    if not len(pnl):
        return {"win_rate": None, "avg_win": None, "avg_loss": None, "profit_factor": None,
                "sqn": None}
    wins, losses = pnl[pnl > 0], pnl[pnl <= 0]
    return {"win_rate": len(wins) / len(pnl),
            "avg_win": float(wins.mean()) if len(wins) else None,
            "avg_loss": float(losses.mean()) if len(losses) else None,
            "profit_factor": float(wins.sum() / -losses.sum()) if losses.sum() < 0 else None,
            "sqn": float(np.sqrt(len(pnl)) * pnl.mean() / pnl.std(ddof=1))
            if len(pnl) > 1 and pnl.std(ddof=1) > 0 else None}


def build_report(sim: Simulation, artifact: Artifact, config: BacktestConfig,
                 hold_values: np.ndarray, extra: dict | None = None,
                 deflation: Deflation | None = None) -> dict:
    """The report of a simulation (see module doc) beside buy-and-hold's value after each
    bar (``buy_and_hold``), with ``extra`` sections appended; the deflated Sharpe discounts
    ``deflation`` (from the trial ledger), else ``config.trials`` tries."""
    strategy, bars = sim.strategy, sim.bars
    values, closing = marked_values(sim, config)
    observed = observed_periods_per_year(bars.index)
    ppy = config.periods_per_year or observed
    deflation = deflation or Deflation(config.trials, None)
    strat = performance(values, config.strategy.cash, ppy, trials=deflation.trials,
                        trial_variance=deflation.variance)
    hold = performance(hold_values, config.strategy.cash, ppy)
    fills, trades = fills_frame(strategy), trades_frame(strategy)
    traded_value = float(fills["value"].sum())
    years = len(bars) / ppy if ppy > 0 else math.nan
    strat.update({
        "final_value": float(values[-1]), "trades": len(trades),
        "fees": float(fills["fee"].sum()),
        "exposure": exposure(bars.index, fills),
        "turnover": traded_value / float(values.mean()) if len(values) else math.nan,
        "turnover_per_year": traded_value / float(values.mean()) / years
        if len(values) and years > 0 else math.nan,
        "fills": len(fills), "final_exit_cost": closing})
    hold.update({"final_value": float(hold_values[-1]), "trades": 1, "exposure": 1.0})
    strat.update(trade_stats(trades["pnl_net"].to_numpy()))
    info = sim.span
    probas = probas_of(sim)
    analyzers = {a.__class__.__name__: a.get_analysis() for a in strategy.analyzers}
    flags = list(artifact.manifest.suspicious)
    first = 1 if info.in_sample else 0  # the IN-SAMPLE warning stays the very first
    warnings = [*info.warnings[:first], *(f"MODEL FLAGGED by the sanity gate: {f}"
                                          for f in flags), *info.warnings[first:]]
    return plain({
        "in_sample": info.in_sample,
        "warnings": warnings,
        "model_flags": flags,
        "model": {"name": artifact.name, "version": artifact.version,
                  "path": str(artifact.path), "thresholds": {"enter": strategy.enter,
                                                             "exit": strategy.exit}},
        "data": {**sim.info.to_dict(), "timeframe": sim.timeframe,
                 "traded_first_bar": bars.index[0].isoformat(),
                 "traded_last_bar": bars.index[-1].isoformat(), "traded_bars": len(bars),
                 "warmup_bars": info.start, "first_clean_bar": info.clean,
                 "matched_training_data_by": info.matched_by or None},
        "config": asdict(config),
        "annualisation": {"periods_per_year": ppy, "observed_periods_per_year": observed,
                          "source": "given" if config.periods_per_year else "observed bars"},
        "summary": {"strategy": strat, "buy_and_hold": hold},
        "significance": {"sharpe": strat["sharpe"], "psr": strat["psr"], "dsr": strat["dsr"],
                         "trials": deflation.trials,
                         "trials_counted_from": "the trial ledger" if deflation.sharpes
                         else "the configuration",
                         "sharpe_variance_from": "the trials' Sharpes"
                         if deflation.variance is not None else "this Sharpe's estimate",
                         "sharpe_needed_for_dsr": strat["sharpe_needed_for_dsr"],
                         "sharpe_ci95": strat["sharpe_ci95"], "trades": len(trades)},
        "orders": {"fills": len(fills), "refused": strategy.refused},
        "backtrader_analyzers": analyzers or "not run (pass --analyzers)",
        "bars_long_signal": int(np.nansum(probas >= strategy.enter)),
        **(extra or {}),
    })


def run_backtest(dataset: Dataset, artifact: Artifact, config: BacktestConfig,
                 out_dir: Path, *, ledger: Path | None = None):
    """Backtest and write the report files to ``out_dir`` (see ``backtest.report``); with
    ``ledger``, record it there as a trial and deflate its Sharpe by the ledger's."""
    config = config.for_model(artifact)
    return write_report(simulate(dataset, artifact, config), artifact, config, out_dir,
                        ledger=ledger)


def write_report(sim: Simulation, artifact: Artifact, config: BacktestConfig,
                 out_dir: Path, extra: dict | None = None, *, ledger: Path | None = None,
                 kind: str = "backtest", **identity: object) -> BacktestResult:
    """Build the report and write every file of it into ``out_dir``.

    With ``ledger`` (a registry directory) the run is first recorded there as a trial of
    ``kind`` (``identity``: what else makes it distinct, e.g. a walk-forward's window), and
    its deflated Sharpe counts the ledger's trials on overlapping data.
    """
    config = config.for_model(artifact)
    deflation = record_run(ledger, sim, artifact, config, kind, identity) \
        if ledger is not None else None
    params = config.strategy
    hold = buy_and_hold(sim.bars, params.cash, params.fraction, params.commission,
                        params.slippage)
    report = build_report(sim, artifact, config, hold, extra, deflation)
    out_dir.mkdir(parents=True, exist_ok=True)
    report_path = out_dir / "backtest.json"
    report_path.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    trades_path = write_trades(trades_frame(sim.strategy), out_dir / "trades.csv")
    equity_path = plot_equity(sim.bars.index, marked_values(sim, config)[0], hold,
                              config.strategy.cash, out_dir / "equity.png",
                              title=artifact.ref
                                    + ("  (IN-SAMPLE)" if sim.span.in_sample else ""))
    plot_path = plot_backtrader(sim.cerebro, sim.bars.index, out_dir / "backtest.png") \
        if config.plot and sim.cerebro is not None else None
    return BacktestResult(report, report_path, trades_path, equity_path, plot_path,
                          probas_of(sim))


def write_trades(trades: pd.DataFrame, path: Path) -> Path:
    """``trades.csv``: every round trip, times in ISO-8601 UTC, numbers exact (Arrow's writer:
    a hundred thousand trades in a fifth of a second, where Python's csv takes seconds)."""
    import pyarrow as pa
    import pyarrow.csv as pa_csv

    table = pa.table({c: bt_iso(trades[c].to_numpy()) if c.endswith("_time")
                      else trades[c].to_numpy() for c in _TRADE_COLUMNS})
    pa_csv.write_csv(table, str(path))
    return path


def record_run(ledger: Path, sim: Simulation, artifact: Artifact, config: BacktestConfig,
               kind: str, more: dict) -> Deflation:
    """Record this run in the trial ledger; what its deflated Sharpe must then discount."""
    values, _ = marked_values(sim, config)
    ppy = config.periods_per_year or observed_periods_per_year(sim.bars.index)
    data = TrialData.of(sim.bars, sim.info.symbol, sim.timeframe, sim.info.source)
    ref = artifact.ref
    costs = config.strategy.costs
    record(ledger, Trial(kind, evaluation_identity(ref, config.strategy, sim.strategy.enter,
                                                   sim.strategy.exit, costs, **more),
                         data, annual_sharpe(values, config.strategy.cash, ppy), ppy, ref))
    return deflation(ledger, sim.bars, data, ppy)


def summary_lines(report: dict) -> list[str]:
    """The table printed at the end of a backtest."""
    rows = report["summary"]
    flags = report["model_flags"]
    lines = [f"MODEL FLAGGED by the sanity gate ({len(flags)}): {'; '.join(flags)}"] \
        if flags else []
    config = report["config"]["strategy"]
    lines.append(f"starting cash {config['cash']:,.2f}; costs: commission "
                 f"{config['commission']} per side, slippage {config['slippage']}, borrow "
                 f"rate {config['borrow_rate']}")
    lines.append(f"{'':<14}{'return':>10}{'CAGR':>9}{'Sharpe':>8}{'max DD':>8}{'trades':>8}"
                 f"{'fees':>11}{'exposure':>10}{'final value':>15}")
    for name, key in (("strategy", "strategy"), ("buy & hold", "buy_and_hold")):
        r = rows[key]
        drawdown = None if r["max_drawdown"] is None else -abs(r["max_drawdown"])
        lines.append(f"{name:<14}{_pct(r['total_return']):>10}{_pct(r['cagr']):>9}"
                     f"{_num(r['sharpe']):>8}{_pct(drawdown):>8}{r['trades']:>8}"
                     f"{_num(r.get('fees'), 2):>11}{_pct(r['exposure']):>10}"
                     f"{r['final_value']:>15,.2f}")
    if "walk_forward" in report:
        lines += _window_lines(report["walk_forward"]["windows"])
    s = report["significance"]
    lo, hi = s["sharpe_ci95"]
    lines.append(f"significance: PSR {_num(s['psr'])}, deflated Sharpe {_num(s['dsr'])} "
                 f"({s['trials']} trial{'s' if s['trials'] != 1 else ''}), Sharpe 95% CI "
                 f"[{_num(lo)}, {_num(hi)}], {s['trades']} trades")
    refused = report["orders"]["refused"]
    if refused:
        lines.append(f"orders refused: {len(refused)} (first: {refused[0]['reason']})")
    return lines


def _window_lines(windows: list[dict]) -> list[str]:
    """A walk-forward's table: each window's bars, its model's thresholds and how it did."""
    lines = [f"{'window':>6}  {'first bar':<26}{'bars':>7}{'enter':>7}{'exit':>7}"
             f"{'return':>9}{'fills':>7}{'AUC':>7}"]
    for w in windows:
        lines.append(f"{w['window']:>6}  {w['first_bar']:<26}{w['bars'][1] - w['bars'][0]:>7}"
                     f"{w['enter']:>7.3f}{w['exit']:>7.3f}{_pct(w['return']):>9}"
                     f"{w['fills']:>7}{_num(w['window_auc'], 3):>7}")
    return lines


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{value * 100:+.1f}%"


def _num(value: float | None, digits: int = 2) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"

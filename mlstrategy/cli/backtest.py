"""``mlstrategy backtest`` (= ``python trading_bot.py backtest``): the model over history."""
from __future__ import annotations

from pathlib import Path

import click

from mlstrategy.cli.common import DataRequest, data_options, debug_option, models_dir_option


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--model", help="Market NAME (its production model) or NAME/VERSION under "
              "--models-dir. Default: the market named like the bars, or the only one.")
@models_dir_option
@data_options(default_sample=None)
@click.option("--start", type=click.IntRange(min=0), help="First bar to trade (index in the "
              "data; earlier bars only warm the features). Default: the first bar after the "
              "model's training span (found by time), else the bar after the feature warm-up.")
@click.option("--allow-in-sample", is_flag=True, help="Allow trading bars the model trained "
              "on; the report then says in_sample: true.")
@click.option("--cash", type=click.FloatRange(min=0, min_open=True), default=100_000.0,
              show_default=True, help="Starting cash.")
@click.option("--commission", type=click.FloatRange(0.0, 0.1), default=0.001,
              show_default=True, help="Commission per side as a fraction of traded value.")
@click.option("--slippage", type=click.FloatRange(0.0, 0.1), default=0.0, show_default=True,
              help="Slippage as a fraction of price, always against the order and in full "
                   "(beyond the bar's high or low if need be).")
@click.option("--borrow-rate", type=click.FloatRange(0.0, 5.0), default=0.0,
              show_default=True, help="Annual rate shorts pay on their value, per calendar "
              "day held (e.g. 0.05 for 5%%).")
@click.option("--enter", type=click.FloatRange(0.0, 1.0), help="P(up) to go long "
              "(default: the model's threshold).")
@click.option("--exit", "exit_", type=click.FloatRange(0.0, 1.0), help="P(up) below which a "
              "long is closed (default: the model's threshold).")
@click.option("--allow-short", is_flag=True, help="Also go short when P(down) reaches the "
              "enter threshold.")
@click.option("--sizing", type=click.Choice(["fraction", "units", "vol_target"]),
              default="fraction", show_default=True, help="Position size: a fraction of the "
              "value, a fixed number of units, or a volatility target by ATR.")
@click.option("--fraction", type=click.FloatRange(0.01, 1.0), default=0.95, show_default=True,
              help="Fraction of portfolio value held (the cap for vol_target).")
@click.option("--units", type=click.FloatRange(min=0, min_open=True), default=1.0,
              show_default=True, help="Units per position for --sizing units.")
@click.option("--vol-target", type=click.FloatRange(min=0, min_open=True), default=0.01,
              show_default=True, help="For --sizing vol_target: a one-ATR move is this "
              "fraction of the value.")
@click.option("--stop-loss", type=click.FloatRange(0.0, 1.0, min_open=True),
              help="Stop-loss as a fraction of the price (a bracket order).")
@click.option("--take-profit", type=click.FloatRange(0.0, 10.0, min_open=True),
              help="Take-profit as a fraction of the price (a bracket order).")
@click.option("--max-bars-held", type=click.IntRange(min=1), help="Close a position after "
              "this many bars.")
@click.option("--cooldown", type=click.IntRange(min=0), default=0, show_default=True,
              help="Bars to wait after closing before entering again.")
@click.option("--streaming", is_flag=True, help="Compute P(up) bar by bar as a live bot does "
              "(default: precomputed by the batch engine; both give the same P(up)).")
@click.option("--periods-per-year", type=click.FloatRange(min=1.0), help="Bars per year for "
              "annualising, for markets with a known calendar (e.g. 252 for daily equities). "
              "Default: as observed in the data.")
@click.option("--walk-forward", is_flag=True, help="Retrain and trade window after window: "
              "each window is traded by a model trained only on the bars before it.")
@click.option("--retrain-every", type=click.IntRange(min=50), default=1000, show_default=True,
              help="Bars per walk-forward window.")
@click.option("--engine", type=click.Choice(["backtrader", "numba"]),
              help="Who runs the trades: backtrader's Cerebro (the default for a backtest), "
                   "or the Numba trading engine, trade for trade the same and far faster (the "
                   "default for --walk-forward and --grid); the same report files, but "
                   "backtrader's own plot.")
@click.option("--grid", "grid", multiple=True, metavar="OPTION=LO:HI:STEP|A,B,...",
              help="Backtest every combination of these strategy options (repeatable, e.g. "
                   "--grid enter=0.5:0.7:0.01 --grid exit=0.4,0.45,0.5): writes grid.csv, "
                   "grid.png and the best configuration's report; every configuration is a "
                   "trial the deflated Sharpe counts.")
@click.option("--threads", type=click.IntRange(min=1), help="Threads for a grid (default: "
              "all cores).")
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path),
              help="Directory for the report files (default: reports/<name>/<version>/, "
                   "with /streaming, /walk-forward or /grid for those runs).")
@click.option("--plot/--no-plot", default=True, show_default=True,
              help="Write backtrader's plot as backtest.png (adds its observers; the "
                   "backtrader engine only).")
@click.option("--analyzers", is_flag=True, help="Also run backtrader's analyzers (trades, SQN, "
              "drawdown, Sharpe, returns) and put their results in the report; slower, the "
              "report's own statistics come from the equity curve.")
@debug_option
def backtest(model: str | None, models_dir: Path, data: DataRequest, start: int | None,
             allow_in_sample: bool, cash: float, commission: float, slippage: float,
             borrow_rate: float,
             enter: float | None, exit_: float | None, allow_short: bool, sizing: str,
             fraction: float, units: float, vol_target: float, stop_loss: float | None,
             take_profit: float | None, max_bars_held: int | None, cooldown: int,
             streaming: bool, periods_per_year: float | None, walk_forward: bool,
             retrain_every: int, engine: str | None, grid: tuple[str, ...],
             threads: int | None, out_dir: Path | None, plot: bool, analyzers: bool) -> None:
    """Backtest a trained model with backtrader on history (inference only, never trains).

    Without --data or --sample, the model's own training data is used if it is an embedded
    sample. Trading starts after the model's training span, found by time whatever the file
    is called. Writes backtest.json (strategy and buy-and-hold rows, significance, refused
    orders, analyzers), trades.csv, equity.png and backtrader's backtest.png, and prints a
    summary table.
    """
    from mlstrategy.backtest.report import summary_lines
    from mlstrategy.backtest.runner import BacktestConfig, StrategyParams, run_backtest
    from mlstrategy.registry import resolve

    artifact = resolve(models_dir, model, market=data.name if data.given else None,
                       newest_if_no_production=True)
    dataset = data.trained_on(artifact.manifest.training_data.source,
                              f"{artifact.ref}").load()
    params = StrategyParams(enter=enter, exit=exit_, allow_short=allow_short, sizing=sizing,
                            fraction=fraction, units=units, vol_target=vol_target,
                            stop_loss=stop_loss, take_profit=take_profit,
                            max_bars_held=max_bars_held, cooldown=cooldown)
    config = BacktestConfig(cash=cash, commission=commission, slippage=slippage,
                            borrow_rate=borrow_rate, start=start,
                            allow_in_sample=allow_in_sample, strategy=params,
                            streaming=streaming, plot=plot, analyzers=analyzers,
                            periods_per_year=periods_per_year,
                            engine=engine or ("numba" if walk_forward or grid
                                              else "backtrader"))
    kind = "grid" if grid else "walk-forward" if walk_forward else \
        "streaming" if streaming else None
    out = out_dir or Path("reports") / artifact.name / artifact.version / (kind or "")
    click.echo(f"model: {artifact.ref}  data: {dataset.info.source} "
               f"{dataset.info.symbol} {dataset.info.timeframe}")
    if grid:
        result = _grid(dataset, artifact, config, grid, out, models_dir, threads, walk_forward)
    elif walk_forward:
        from mlstrategy.backtest.walkforward import run_walk_forward

        result = run_walk_forward(dataset, artifact, config, out, every=retrain_every,
                                  ledger=models_dir,
                                  progress=lambda msg: click.echo(f"  {msg}", err=True))
    else:
        result = run_backtest(dataset, artifact, config, out, ledger=models_dir)
    report = result.report
    for warning in report["warnings"]:
        click.echo(f"warning: {warning}", err=True)
    data = report["data"]
    click.echo(f"bars traded: {data['traded_bars']} ({data['traded_first_bar']} .. "
               f"{data['traded_last_bar']}){'  IN-SAMPLE' if report['in_sample'] else ''}")
    for line in summary_lines(report):
        click.echo(line)
    for path in (result.report_path, result.trades_path, result.equity_path,
                 result.plot_path):
        if path is not None:
            click.echo(f"wrote {path}")


def _grid(dataset, artifact, config, specs: tuple[str, ...], out: Path, models_dir: Path,
          threads: int | None, walk_forward: bool):
    """Run a grid, print its best configurations; the best one's report for the caller."""
    from mlstrategy.backtest.grid import parse_axes, run_grid
    from mlstrategy.errors import ConfigError

    if walk_forward or config.engine != "numba":
        raise ConfigError("--grid runs on the trading engine alone: drop --walk-forward and "
                          "--engine backtrader")
    axes = parse_axes(specs)
    total = 1
    for values in axes.values():
        total *= len(values)
    click.echo(f"grid: {total} configurations of {', '.join(axes)}", err=True)
    result = run_grid(dataset, artifact, config, axes, out, ledger=models_dir, threads=threads)
    ranked = sorted((r for r in result.rows if r["sharpe"] == r["sharpe"]),
                    key=lambda r: -r["sharpe"])
    click.echo(f"best of {len(result.rows)} (net Sharpe):")
    for row in ranked[:5]:
        options = ", ".join(f"{name}={row[name]}" for name in axes)
        click.echo(f"  {options}: Sharpe {row['sharpe']:.3f}, return "
                   f"{row['return'] * 100:+.1f}%, {row['trades']} trades")
    click.echo(f"wrote {result.table}")
    click.echo(f"wrote {result.picture}")
    return result.report

"""``mlstrategy backtest`` (= ``python trading_bot.py backtest``): the model over history."""
from __future__ import annotations

from pathlib import Path

import click

from mlstrategy.cli.bot_portfolio import portfolio_option
from mlstrategy.cli.common import DataRequest, data_options, debug_option, models_dir_option
from mlstrategy.cli.strategy_options import strategy_options
from mlstrategy.trading.strategy_params import StrategyParams


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
@strategy_options
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
              help="Directory for the report files (default: a new folder per run, "
                   "reports/<market>/<version>/<time>-<kind>/, and a `latest` link to it).")
@click.option("--plot/--no-plot", default=True, show_default=True,
              help="Write backtrader's plot as backtest.png (adds its observers; the "
                   "backtrader engine only).")
@click.option("--analyzers", is_flag=True, help="Also run backtrader's analyzers (trades, SQN, "
              "drawdown, Sharpe, returns) and put their results in the report; slower, the "
              "report's own statistics come from the equity curve.")
@portfolio_option
@debug_option
def backtest(model: str | None, models_dir: Path, data: DataRequest, start: int | None,
             allow_in_sample: bool, params: StrategyParams, streaming: bool,
             periods_per_year: float | None, walk_forward: bool, retrain_every: int,
             engine: str | None, grid: tuple[str, ...], threads: int | None,
             out_dir: Path | None, plot: bool, analyzers: bool,
             portfolio: Path | None) -> None:
    """Backtest a trained model with backtrader on history (inference only, never trains).

    Without --data or --sample, the model's own training data is used if it is an embedded
    sample. Trading starts after the model's training span, found by time whatever the file
    is called. Writes backtest.json (strategy and buy-and-hold rows, significance, refused
    orders, analyzers), trades.csv, equity.png and backtrader's backtest.png, and prints a
    summary table. With --config, every market of a bot's portfolio file in one Cerebro
    (one pot of cash, the account's limits), as `trading_bot.py replay --config` trades it.
    """
    if portfolio is not None:
        _portfolio(portfolio, models_dir, params, out_dir)
        return
    from mlstrategy.backtest.report import run_backtest, summary_lines
    from mlstrategy.backtest.run_dirs import link_latest, new_run_dir
    from mlstrategy.backtest.runner import BacktestConfig
    from mlstrategy.registry.production import resolve

    artifact = resolve(models_dir, model, market=data.name if data.given else None,
                       newest_if_no_production=True)
    dataset = data.trained_on(artifact.manifest.training_data.source,
                              f"{artifact.ref}").load(artifact.spec.inputs)
    config = BacktestConfig(start=start, allow_in_sample=allow_in_sample, strategy=params,
                            streaming=streaming, plot=plot, analyzers=analyzers,
                            periods_per_year=periods_per_year,
                            engine=engine or ("numba" if walk_forward or grid
                                              else "backtrader"))
    kind = "grid" if grid else "walk-forward" if walk_forward else \
        "streaming" if streaming else None
    out = out_dir or new_run_dir(Path("reports") / artifact.name / artifact.version,
                                 kind or "backtest")
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
    if out_dir is None:
        click.echo(f"linked {link_latest(out)} -> {out.name}")


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


def _portfolio(portfolio: Path, models_dir: Path, params: StrategyParams,
               out_dir: Path | None) -> None:
    """``backtest --config``: the portfolio's report, per market and for the account."""
    import json
    from dataclasses import replace

    import pandas as pd

    from mlstrategy.backtest.portfolio import portfolio_start, run_portfolio_backtest
    from mlstrategy.backtest.report import plain, write_trades
    from mlstrategy.backtest.run_dirs import link_latest, new_run_dir
    from mlstrategy.cli.bot_portfolio import account_limits, historical_markets
    from mlstrategy.live.modes import WARM_UP_BARS
    from mlstrategy.live.portfolio_file import read_portfolio

    file = read_portfolio(portfolio)
    _, markets = historical_markets(file, models_dir)
    cash = file.account.cash if file.account.cash is not None else params.cash
    start = portfolio_start(markets, WARM_UP_BARS)
    run = run_portfolio_backtest(markets, replace(params, cash=cash),
                                 account_limits(file.account), start)
    report = run.report
    out = out_dir or new_run_dir(Path("reports") / "portfolio" / portfolio.stem, "backtest")
    out.mkdir(parents=True, exist_ok=True)
    (out / "portfolio.json").write_text(json.dumps(plain(report), indent=2))
    write_trades(pd.DataFrame(run.strategy.trades), out / "trades.csv")
    p = report["portfolio"]
    click.echo(f"portfolio {portfolio}: {len(markets)} markets, {report['start']} .. "
               f"{report['end']}")
    click.echo(f"  value {report['cash']:,.2f} -> {report['final_value']:,.2f} "
               f"({p['total_return'] * 100:+.2f}%), max drawdown "
               f"{p['max_drawdown'] * 100:.2f}%, Sharpe {p['sharpe']:.2f}; equal-weight "
               f"basket {report['basket_return'] * 100:+.2f}%")
    for name, row in report["markets"].items():
        click.echo(f"  {name} ({row['symbol']}, {row['model']}): {row['trades']} trades, "
                   f"net PnL {row['pnl_net']:+,.2f}, fees {row['fees']:,.2f}; "
                   f"buy-and-hold {row['buy_and_hold_return'] * 100:+.2f}%")
    click.echo(f"wrote {out / 'portfolio.json'}")
    click.echo(f"wrote {out / 'trades.csv'}")
    if out_dir is None:
        click.echo(f"linked {link_latest(out)} -> {out.name}")

"""``mlstrategy backtest`` (= ``python trading_bot.py backtest``): the model over history."""
from __future__ import annotations

from pathlib import Path

import click

from datafeeds import SAMPLES
from mlstrategy.backtest import BacktestConfig, run_backtest
from mlstrategy.cli.common import data_options, debug_option, load_dataset, models_dir_option
from mlstrategy.registry import resolve


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--model", help="NAME or NAME/VERSION under --models-dir "
              "(default: the production model).")
@models_dir_option
@data_options(default_sample=None)
@click.option("--start", type=click.IntRange(min=0), help="First bar to trade (index in the "
              "data). Default: the model's holdout start on its own training data, else the "
              "first bar after the feature warm-up. Earlier bars only warm the features.")
@click.option("--cash", type=click.FloatRange(min=0, min_open=True), default=100_000.0,
              show_default=True, help="Starting cash.")
@click.option("--commission", type=click.FloatRange(0.0, 0.1), default=0.001,
              show_default=True, help="Commission per side as a fraction of traded value.")
@click.option("--slippage", type=click.FloatRange(0.0, 0.1), default=0.0, show_default=True,
              help="Slippage as a fraction of price, always against the order.")
@click.option("--stake", type=click.FloatRange(0.01, 1.0), default=0.95, show_default=True,
              help="Fraction of portfolio value held when long.")
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path),
              help="Directory for backtest.json and backtest.png "
                   "(default: reports/<model name>/<version>/).")
@click.option("--plot/--no-plot", default=True, show_default=True,
              help="Write backtrader's plot as PNG.")
@debug_option
def backtest(model: str | None, models_dir: Path, sample: str | None, data_path: Path | None,
             symbol: str | None, timeframe: str | None, start: int | None, cash: float,
             commission: float, slippage: float, stake: float, out_dir: Path | None,
             plot: bool) -> None:
    """Backtest a trained model with backtrader on history (inference only, never trains).

    Without --data or --sample, the model's own training data is used if it is an embedded
    sample, and the trades start at its holdout: bars the model never saw in training.
    Writes backtrader's analyzers (Sharpe, drawdown, returns, trades, SQN) to backtest.json
    and backtrader's plot to backtest.png.
    """
    artifact = resolve(models_dir, model)
    if data_path is None and sample is None:
        trained_on = artifact.manifest["training_data"]["source"]
        sample = trained_on.removeprefix("sample:") if trained_on.startswith("sample:") else None
        if sample not in SAMPLES:
            raise click.UsageError(f"model {artifact.name}/{artifact.version} was trained on "
                                   f"{trained_on}; pass its bars with --data PATH")
    dataset = load_dataset(sample, data_path, symbol, timeframe)
    config = BacktestConfig(cash=cash, commission=commission, slippage=slippage, stake=stake,
                            start=start, plot=plot)
    out = out_dir or Path("reports") / artifact.name / artifact.version
    click.echo(f"model: {artifact.name}/{artifact.version}  data: {dataset.info.source} "
               f"{dataset.info.symbol} {dataset.info.timeframe}")
    result = run_backtest(dataset, artifact, config, out)
    report = result.report
    analyzers = report["analyzers"]
    trades = analyzers["trades"].get("total", {}).get("closed", 0)
    click.echo(f"bars traded: {report['data']['traded_bars']} "
               f"({report['data']['traded_first_bar']} .. {report['data']['traded_last_bar']})")
    click.echo(f"final value: {report['final_value']:.2f} (start {report['start_value']:.2f}), "
               f"return {analyzers['returns'].get('rtot', 0.0):+.4f} log, "
               f"max drawdown {analyzers['drawdown']['max']['drawdown']:.2f}%, "
               f"Sharpe {_fmt(analyzers['sharpe'].get('sharperatio'))}, trades {trades}")
    click.echo(f"report: {result.report_path}")
    if result.plot_path is not None:
        click.echo(f"plot:   {result.plot_path}")


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f}"

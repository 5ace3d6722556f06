"""``mlstrategy sweep``: hyperparameter and threshold search, locally or on a Dask cluster."""
from __future__ import annotations

import os
from pathlib import Path

import click

from mlstrategy.cli.common import debug_option


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--config", "config_path", required=True,
              type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="The cycle's TOML file; its [[market]] settings are the base of each trial "
                   "and its [market.sweep] table the search space.")
@click.option("--market", "market_name", help="Market of the file to search (default: its "
              "first).")
@click.option("--trials", type=click.IntRange(min=1), help="Number of trials.")
@click.option("--timeout", type=click.FloatRange(min=0, min_open=True),
              help="Stop asking for trials after this many seconds.")
@click.option("--seed", type=int, default=0, show_default=True,
              help="Sampler seed: the same seed, data and trials give the same winner.")
@click.option("--workers", type=click.IntRange(min=1), default=2, show_default=True,
              help="Trials run at once: local processes, or batches on the cluster.")
@click.option("--threads", type=click.IntRange(min=1), help="Threads per trial (default: the "
              "cores divided by --workers).")
@click.option("--scheduler", metavar="tcp://HOST:PORT",
              help="Run the trials on this Dask scheduler's workers instead (the store and "
                   "models folder must be shared with them).")
@debug_option
def sweep(config_path: Path, market_name: str | None, trials: int | None,
          timeout: float | None, seed: int, workers: int, threads: int | None,
          scheduler: str | None) -> None:
    """Search a market's learner parameters and entry threshold with Optuna.

    Each trial is scored by the purged walk-forward CV after costs (the holdout stays unseen).
    Every trial is recorded in sweeps_dir/<market>/<time>/trials.jsonl; the winner is retrained,
    saved with the number of trials in its manifest (for the deflated Sharpe), and promoted
    only if it beats the market's production model.
    """
    from mlstrategy.cycle.config import load_config
    from mlstrategy.cycle.executor import open_executor
    from mlstrategy.errors import ConfigError
    from mlstrategy.research.sweep import run_sweep

    config = load_config(config_path)
    markets = {m.name: m for m in config.markets}
    if market_name is not None and market_name not in markets:
        raise ConfigError(f"--market {market_name!r} is not in {config_path} "
                          f"({', '.join(markets)})")
    market = markets[market_name] if market_name else config.markets[0]
    threads = threads or max(1, (os.cpu_count() or 1) // workers)
    with open_executor(scheduler, workers, threads) as executor:
        click.echo(f"sweep of {market.name} on {executor.name}, {threads} thread(s) a trial")
        result = run_sweep(config, market, executor=executor, trials=trials, timeout=timeout,
                           seed=seed, batch=workers, threads=threads,
                           say=lambda line: click.echo(line))
    best = result.best
    click.echo(f"best of {len(result.trials)} trials: #{best['number']} {best['value']:.4f} "
               f"{best['params']}")
    click.echo(f"model: {result.model}  ({'promoted' if result.decision.promoted else 'kept'}: "
               f"{result.decision.reason})")
    click.echo(f"trials: {result.folder / 'trials.jsonl'}")

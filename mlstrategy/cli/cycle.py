"""``mlstrategy cycle``: the whole model-update cycle, safe to run from cron or a timer."""
from __future__ import annotations

import sys
from pathlib import Path

import click

from mlstrategy.cli.common import debug_option

EXIT_CODES = """\b
Exit codes (for a scheduler):
   0  nothing to do, or every new model was kept out
  10  a new model was promoted to production
   1  a market failed or its data stopped it (see the report), or
      another cycle is running
   2  user error (bad config file or option)"""


@click.command(context_settings={"help_option_names": ["-h", "--help"]},
               epilog=EXIT_CODES)
@click.option("--config", "config_path", required=True,
              type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="The cycle's TOML file: [cycle] store/models_dir/cycles_dir and one "
                   "[[market]] table per market (see README, 'Automating the cycle').")
@click.option("--threads", type=click.IntRange(min=1),
              help="Threads for training (default: all cores, divided among --workers).")
@click.option("--workers", type=click.IntRange(min=1), default=2, show_default=True,
              help="Markets run at once, in local worker processes (killed with the cycle); "
                   "1: one after another in this process.")
@click.option("--scheduler", metavar="tcp://HOST:PORT",
              help="Run the markets on this Dask scheduler's workers instead (the store, "
                   "models and cycles folders must be shared with them).")
@debug_option
def cycle(config_path: Path, threads: int | None, workers: int,
          scheduler: str | None) -> None:
    """Update data, validate, retrain, backtest and promote, for every market in --config.

    Per market: append new bars to the store; validate them (a bad bar or a gap longer than
    the market's max_gap stops it); retrain with its settings (purged walk-forward CV); backtest
    the new model on the bars after its training span; apply the sanity gate; compare it with
    the market's production model (models_dir/<market>/) on the same bars and promote it if
    better. Writes cycles_dir/<time>/report.json and report.md (a table per market, the equity
    plots). Killed at any point, the next run tidies up and picks up where it stopped.
    """
    import os

    from mlstrategy.cycle.config import load_config
    from mlstrategy.cycle.executor import open_executor
    from mlstrategy.cycle.lock import CycleLocked
    from mlstrategy.cycle.run import run_cycle

    config = load_config(config_path)
    threads = threads or max(1, (os.cpu_count() or 1) // workers)
    try:
        with open_executor(scheduler, workers, threads) as executor:
            run = run_cycle(config, say=lambda line: click.echo(line), threads=threads,
                            executor=executor)
    except CycleLocked as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(1)
    sys.exit(run.code)

"""``mlstrategy bot`` (= ``python trading_bot.py``): run a trained model; it never trains."""
from __future__ import annotations

import click

from mlstrategy.cli.backtest import backtest
from mlstrategy.cli.common import config_option, debug_option


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@config_option
@debug_option
def bot() -> None:
    """Run the production model: inference only, the model is loaded at start-up."""


bot.add_command(backtest)

"""The trading bot: the same as ``mlstrategy bot``. It loads a trained model and only predicts.

``python trading_bot.py backtest`` runs the production model over history.
Run ``python trading_bot.py --help`` for the commands.
"""
from mlstrategy.cli import run
from mlstrategy.cli.bot import bot

if __name__ == "__main__":
    run(bot)

"""Train, validate and save a model: the same as ``mlstrategy train``.

Run ``python train_ml_strategy.py --help`` for the options.
"""
from mlstrategy.cli import run
from mlstrategy.cli.train import train

if __name__ == "__main__":
    run(train)

"""Backtests of a trained model: ``runner`` wires Cerebro, ``spans`` keeps training bars out,
``report`` and ``plots`` say what happened, ``stats`` whether it could be luck, and
``walkforward`` retrains and trades window after window."""
from __future__ import annotations

from mlstrategy.backtest.report import BacktestResult
from mlstrategy.backtest.runner import BacktestConfig, StrategyParams, run_backtest, simulate

__all__ = ["BacktestConfig", "BacktestResult", "StrategyParams", "run_backtest", "simulate"]

"""Backtests of a trained model: ``runner`` wires Cerebro, ``spans`` keeps training bars out,
``report`` and ``plots`` say what happened, ``stats`` whether it could be luck, and
``walkforward`` retrains and trades window after window. Import the module you need (this
package imports nothing, so ``stats`` stays light for training)."""

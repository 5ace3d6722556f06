"""The model-update cycle: update data, validate, retrain, backtest, gate, promote (``cycle``)."""

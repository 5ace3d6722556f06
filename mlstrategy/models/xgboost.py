"""XGBoost (the ``xgboost`` extra), saved in XGBoost's own JSON format, never pickle.

Early stopping watches a later, chronological slice of the training rows, as for CatBoost.
"""
from __future__ import annotations

from pathlib import Path
from typing import ClassVar

import numpy as np

from mlstrategy.errors import ConfigError
from mlstrategy.models.params import XGBoostParams
from mlstrategy.models.sklearn import SklearnModel

FILENAME = "model.json"


def _xgb():
    try:
        import xgboost
    except ImportError:
        raise ConfigError("the xgboost model needs XGBoost: pip install "
                          "'mlstrategy[xgboost]'") from None
    return xgboost


class XGBoostModel(SklearnModel):
    """A binary XGBoost classifier (``models.protocol.Model``): scikit-learn's API, its own
    file format."""

    kind: ClassVar[str] = "xgboost"
    filename: ClassVar[str] = FILENAME

    @classmethod
    def fit(cls, x: np.ndarray, y: np.ndarray, params: XGBoostParams, *, threads: int = 1,
            eval_set: tuple[np.ndarray, np.ndarray] | None = None) -> XGBoostModel:
        xgb = _xgb()
        labels = y.astype(np.int64)
        positive = labels.sum()
        weight = (len(labels) - positive) / positive \
            if params.class_weights == "balanced" and positive else 1.0
        stop = params.early_stopping_rounds if eval_set is not None else None
        model = xgb.XGBClassifier(
            n_estimators=params.n_estimators, max_depth=params.max_depth,
            learning_rate=params.learning_rate, subsample=params.subsample,
            random_state=params.seed, n_jobs=threads, scale_pos_weight=weight,
            early_stopping_rounds=stop or None, tree_method="hist", eval_metric="logloss")
        if stop:
            model.fit(x, labels, eval_set=[(eval_set[0], eval_set[1].astype(np.int64))],
                      verbose=False)
        else:
            model.fit(x, labels, verbose=False)
        return cls(model)

    def save(self, directory: Path) -> Path:
        path = directory / FILENAME
        self._estimator.save_model(str(path))
        return path

    @classmethod
    def load(cls, path: Path) -> XGBoostModel:
        model = _xgb().XGBClassifier()
        model.load_model(str(path))
        return cls(model)

"""CatBoost, the default model: ``.cbm`` files, Numba tree evaluation on the per-bar path.

Saved as CatBoost's own ``.cbm`` format (never pickle). CatBoost stamps a finish time and a
random GUID into the model metadata; both are removed before saving, so the same data and seed
give a byte-identical file (reproducible artifacts, meaningful sha256). Early stopping watches
a later, chronological slice of the training rows (``eval_set``) and keeps the best iteration.
"""
from __future__ import annotations

from pathlib import Path
from typing import ClassVar

import numpy as np
from catboost import CatBoostClassifier

from mlstrategy.models.catboost_nb import TreeEvaluator
from mlstrategy.models.params import CatBoostParams

MODEL_FILENAME = "model.cbm"
_NONDETERMINISTIC_METADATA = ("train_finish_time", "model_guid")

__all__ = ["MODEL_FILENAME", "CatBoostModel", "CatBoostParams"]


class CatBoostModel:
    """A binary CatBoost classifier (``models.protocol.Model``)."""

    kind: ClassVar[str] = "catboost"
    filename: ClassVar[str] = MODEL_FILENAME

    def __init__(self, model: CatBoostClassifier) -> None:
        self._model = model
        self._evaluator: TreeEvaluator | None = None
        self._one = np.empty(1, dtype=np.float64)

    @classmethod
    def fit(cls, x: np.ndarray, y: np.ndarray, params: CatBoostParams, *, threads: int = 1,
            eval_set: tuple[np.ndarray, np.ndarray] | None = None) -> CatBoostModel:
        """Train on rows ``x`` (float64, NaN allowed) with 0/1 labels ``y``."""
        stop = params.early_stopping_rounds if eval_set is not None else 0
        model = CatBoostClassifier(
            iterations=params.iterations, depth=params.depth,
            learning_rate=params.learning_rate, l2_leaf_reg=params.l2_leaf_reg,
            random_seed=params.seed, loss_function="Logloss", verbose=False,
            allow_writing_files=False, thread_count=threads,
            auto_class_weights="Balanced" if params.class_weights == "balanced" else None,
            early_stopping_rounds=stop or None, use_best_model=bool(stop))
        if stop:
            model.fit(x, y.astype(np.int64),
                      eval_set=(eval_set[0], eval_set[1].astype(np.int64)))
        else:
            model.fit(x, y.astype(np.int64))
        return cls(model)

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        """P(up) for each row of ``x`` (2-D) as a 1-D float64 array (CatBoost's own call)."""
        return self._model.predict_proba(x)[:, 1].astype(np.float64)

    def predict_row(self, row: np.ndarray) -> float:
        """P(up) of one feature row through the Numba tree evaluator (the per-bar path).

        Bit-identical to :meth:`predict_proba`, about 5 µs instead of about 150 µs.
        """
        if self._evaluator is None:
            self._evaluator = TreeEvaluator.from_catboost(self._model)
        self._evaluator.predict_into(row.reshape(1, -1), self._one)
        return float(self._one[0])

    @property
    def n_features(self) -> int:
        """Width of the rows the model was trained on."""
        return len(self._model.feature_names_)

    def feature_importance(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """CatBoost's own importance (prediction values change), normalised."""
        values = np.asarray(self._model.get_feature_importance(), dtype=np.float64)
        return values / values.sum() if values.sum() > 0 else values

    def save(self, directory: Path) -> Path:
        """Write ``model.cbm`` into ``directory`` reproducibly and return its path."""
        metadata = self._model.get_metadata()
        for key in _NONDETERMINISTIC_METADATA:
            if key in metadata:
                del metadata[key]
        path = directory / MODEL_FILENAME
        self._model.save_model(str(path), format="cbm")
        return path

    @classmethod
    def load(cls, path: Path) -> CatBoostModel:
        """Load a model written by :meth:`save` (integrity is checked by the artifact loader)."""
        model = CatBoostClassifier()
        model.load_model(str(path), format="cbm")
        return cls(model)

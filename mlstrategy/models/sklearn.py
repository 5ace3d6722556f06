"""scikit-learn models (random forest, histogram gradient boosting, MLP), saved with skops.

skops writes a zip of a JSON schema and numpy arrays, never a pickle. Its files name arrays
and objects by memory address and carry timestamps, so ``save`` renumbers them in schema
order with fixed timestamps: the same data and seed give a byte-identical file. ``load`` trusts
only the types this module lists (``ALLOWED_TYPES``), never the list a file reports about
itself: a file asking for any other type is refused.
"""
from __future__ import annotations

import io
import re
import zipfile
from pathlib import Path
from typing import ClassVar

import numpy as np
import skops.io as sio
from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier
from sklearn.impute import SimpleImputer
from sklearn.inspection import permutation_importance
from sklearn.neural_network import MLPClassifier
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from mlstrategy.errors import ModelError
from mlstrategy.models.params import HistGBParams, MLPParams, RandomForestParams

FILENAME = "model.skops"
# what our own estimators need beyond skops' defaults (checked against each file at load)
ALLOWED_TYPES = ("sklearn.tree._tree.Tree",
                 "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",
                 "sklearn.ensemble._hist_gradient_boosting.binning._BinMapper",
                 "sklearn._loss.loss.HalfBinomialLoss", "sklearn._loss.link.LogitLink",
                 "sklearn._loss.link.Interval", "sklearn._loss._loss.CyHalfBinomialLoss",
                 "sklearn.neural_network._stochastic_optimizers.AdamOptimizer",
                 "numpy.dtype", "numpy.random.mtrand.RandomState")
_FIXED_TIME = (1980, 1, 1, 0, 0, 0)
_IDS = re.compile(r'"__id__": (\d+)|"(\d+)\.npy"')


def deterministic_skops(data: bytes) -> bytes:
    """A skops file with addresses renumbered in schema order and fixed timestamps."""
    source = zipfile.ZipFile(io.BytesIO(data))
    schema = source.read("schema.json").decode()
    numbers: dict[str, str] = {}
    for match in _IDS.finditer(schema):
        numbers.setdefault(match.group(1) or match.group(2), str(len(numbers) + 1))
    schema = _IDS.sub(lambda m: f'"__id__": {numbers[m.group(1)]}' if m.group(1)
                      else f'"{numbers[m.group(2)]}.npy"', schema)
    arrays = sorted((numbers[name[:-4]] + ".npy", source.read(name))
                    for name in source.namelist() if name != "schema.json")
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as target:
        for name, payload in [("schema.json", schema.encode()), *arrays]:
            info = zipfile.ZipInfo(name, date_time=_FIXED_TIME)
            info.compress_type = zipfile.ZIP_DEFLATED
            target.writestr(info, payload)
    return out.getvalue()


class SklearnModel:
    """Shared behaviour of the scikit-learn kinds; subclasses build the estimator."""

    kind: ClassVar[str] = ""
    filename: ClassVar[str] = FILENAME

    def __init__(self, estimator: object) -> None:
        self._estimator = estimator

    @classmethod
    def build(cls, params: object, threads: int) -> object:
        """The unfitted estimator for ``params``."""
        raise NotImplementedError

    @classmethod
    def fit(cls, x: np.ndarray, y: np.ndarray, params: object, *, threads: int = 1,
            eval_set: tuple[np.ndarray, np.ndarray] | None = None) -> SklearnModel:
        """Train on rows ``x`` with 0/1 labels ``y`` (``eval_set`` is not used)."""
        estimator = cls.build(params, threads)
        estimator.fit(x, y.astype(np.int64))
        if hasattr(estimator, "n_jobs"):
            estimator.n_jobs = None  # predicting is single-threaded: same order, same sums
        return cls(estimator)

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        return self._estimator.predict_proba(x)[:, 1].astype(np.float64)

    def predict_row(self, row: np.ndarray) -> float:
        return float(self._estimator.predict_proba(row.reshape(1, -1))[0, 1])

    @property
    def n_features(self) -> int:
        return int(self._estimator.n_features_in_)

    def feature_importance(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        native = getattr(self._estimator, "feature_importances_", None)
        if native is None:  # by permutation on (at most) 2,000 rows, reproducibly
            rows = slice(max(len(x) - 2000, 0), None)
            native = permutation_importance(self._estimator, x[rows], y[rows].astype(np.int64),
                                            n_repeats=3, random_state=0,
                                            scoring="roc_auc").importances_mean
        values = np.clip(np.asarray(native, dtype=np.float64), 0.0, None)
        return values / values.sum() if values.sum() > 0 else values

    def save(self, directory: Path) -> Path:
        path = directory / FILENAME
        path.write_bytes(deterministic_skops(sio.dumps(self._estimator)))
        return path

    @classmethod
    def load(cls, path: Path) -> SklearnModel:
        data = path.read_bytes()
        asked = set(sio.get_untrusted_types(data=data))
        unknown = sorted(asked - set(ALLOWED_TYPES))
        if unknown:
            raise ModelError(f"{path}: the file asks to load types this code does not trust "
                             f"({', '.join(unknown)}); refusing it. Retrain the model with "
                             "this version of mlstrategy")
        return cls(sio.loads(data, trusted=sorted(asked)))


def _weights(params: object) -> str | None:
    return "balanced" if params.class_weights == "balanced" else None


class RandomForestModel(SklearnModel):
    """scikit-learn RandomForestClassifier."""

    kind: ClassVar[str] = "random_forest"

    @classmethod
    def build(cls, params: RandomForestParams, threads: int) -> object:
        return RandomForestClassifier(
            n_estimators=params.n_estimators, max_depth=params.max_depth,
            min_samples_leaf=params.min_samples_leaf, max_features=params.max_features,
            class_weight=_weights(params), random_state=params.seed, n_jobs=threads)


class HistGBModel(SklearnModel):
    """scikit-learn HistGradientBoostingClassifier (NaN handled natively)."""

    kind: ClassVar[str] = "hist_gb"

    @classmethod
    def build(cls, params: HistGBParams, threads: int) -> object:
        return HistGradientBoostingClassifier(
            max_iter=params.max_iter, learning_rate=params.learning_rate,
            max_depth=params.max_depth, l2_regularization=params.l2_regularization,
            class_weight=_weights(params), early_stopping=False, random_state=params.seed)


class MLPModel(SklearnModel):
    """An MLP behind a median imputer and a standard scaler (it cannot take NaN or scale)."""

    kind: ClassVar[str] = "mlp"

    @classmethod
    def build(cls, params: MLPParams, threads: int) -> object:
        layers = tuple(int(n) for n in params.hidden.split(",") if n.strip())
        return Pipeline([("impute", SimpleImputer(strategy="median")),
                         ("scale", StandardScaler()),
                         ("mlp", MLPClassifier(hidden_layer_sizes=layers, alpha=params.alpha,
                                               learning_rate_init=params.learning_rate_init,
                                               max_iter=params.max_iter,
                                               random_state=params.seed))])

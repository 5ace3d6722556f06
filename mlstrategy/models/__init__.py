"""Model wrappers behind one small contract (``protocol.Model``), and the Numba evaluator of
CatBoost's trees. ``model_class(kind)`` picks the class a manifest's ``learner.kind`` names."""
from __future__ import annotations

from mlstrategy.errors import ModelError
from mlstrategy.models.params import PARAMS, parse_params

KINDS = tuple(PARAMS)

__all__ = ["KINDS", "model_class", "parse_params"]


def model_class(kind: str) -> type:
    """The class of model ``kind`` (imports scikit-learn or XGBoost only when needed)."""
    if kind == "catboost":
        from mlstrategy.models.catboost import CatBoostModel

        return CatBoostModel
    if kind in ("random_forest", "hist_gb", "mlp"):
        from mlstrategy.models import sklearn

        return {"random_forest": sklearn.RandomForestModel, "hist_gb": sklearn.HistGBModel,
                "mlp": sklearn.MLPModel}[kind]
    if kind == "xgboost":
        from mlstrategy.models.xgboost import XGBoostModel

        return XGBoostModel
    raise ModelError(f"unknown learner kind {kind!r}; this mlstrategy knows "
                     f"{', '.join(KINDS)} (retrain the model, or upgrade mlstrategy)")

"""Parameters of each model kind as frozen dataclasses, and ``key=value`` parsing for them.

``--param depth=8`` (repeatable) or the ``[train]`` table of ``--config`` set them; an unknown
key or a value of the wrong type is a ``ConfigError`` naming the kind's parameters.
"""
from __future__ import annotations

import dataclasses
import typing
from dataclasses import dataclass

from mlstrategy.errors import ConfigError


@dataclass(frozen=True)
class CatBoostParams:
    """CatBoost (the default): oblivious trees, early stopping on a later slice of the rows."""

    iterations: int = 300
    depth: int = 6
    learning_rate: float = 0.05
    l2_leaf_reg: float = 3.0
    early_stopping_rounds: int = 50  # 0: off
    class_weights: str = "none"  # none | balanced
    seed: int = 42


@dataclass(frozen=True)
class RandomForestParams:
    """scikit-learn RandomForestClassifier."""

    n_estimators: int = 300
    max_depth: int = 8
    min_samples_leaf: int = 20
    max_features: str = "sqrt"
    class_weights: str = "none"
    seed: int = 42


@dataclass(frozen=True)
class HistGBParams:
    """scikit-learn HistGradientBoostingClassifier."""

    max_iter: int = 300
    learning_rate: float = 0.05
    max_depth: int = 6
    l2_regularization: float = 1.0
    class_weights: str = "none"
    seed: int = 42


@dataclass(frozen=True)
class MLPParams:
    """scikit-learn MLPClassifier behind a median imputer and a standard scaler."""

    hidden: str = "64,32"  # layer sizes
    alpha: float = 1e-4
    learning_rate_init: float = 1e-3
    max_iter: int = 200
    seed: int = 42


@dataclass(frozen=True)
class XGBoostParams:
    """XGBoost (``pip install mlstrategy[xgboost]``), early stopping on a later slice."""

    n_estimators: int = 300
    max_depth: int = 6
    learning_rate: float = 0.05
    subsample: float = 1.0
    early_stopping_rounds: int = 50
    class_weights: str = "none"
    seed: int = 42


PARAMS: dict[str, type] = {"catboost": CatBoostParams, "random_forest": RandomForestParams,
                           "hist_gb": HistGBParams, "mlp": MLPParams,
                           "xgboost": XGBoostParams}


def parse_params(kind: str, values: dict[str, object]) -> object:
    """The params dataclass of ``kind`` with ``values`` (strings from the CLI, or TOML values).

    Raises
    ------
    ConfigError
        For an unknown kind, key, or a value that is not of the key's type.
    """
    if kind not in PARAMS:
        raise ConfigError(f"unknown model {kind!r}; choose one of {', '.join(PARAMS)}")
    cls = PARAMS[kind]
    hints = typing.get_type_hints(cls)
    fields = {f.name for f in dataclasses.fields(cls)}
    converted = {}
    for key, value in values.items():
        if key not in fields:
            raise ConfigError(f"{kind} has no parameter {key!r}; its parameters are "
                              f"{', '.join(sorted(fields))}")
        try:
            converted[key] = hints[key](value) if not isinstance(value, hints[key]) else value
        except (TypeError, ValueError):
            raise ConfigError(f"{kind} parameter {key}={value!r} is not a "
                              f"{hints[key].__name__}") from None
    params = cls(**converted)
    weights = getattr(params, "class_weights", "none")
    if weights not in ("none", "balanced"):
        raise ConfigError(f"class_weights must be none or balanced, got {weights!r}")
    return params


def split_pairs(pairs: tuple[str, ...]) -> dict[str, str]:
    """``("depth=8", "seed=1")`` -> ``{"depth": "8", "seed": "1"}``."""
    out = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise ConfigError(f"--param {pair!r} is not key=value, e.g. --param depth=8")
        out[key.strip()] = value.strip()
    return out

"""Numba feature kernels: the single source of every feature the model sees.

Contract (DESIGN §3): a ``FeatureSpec`` lists features; ``compute_features`` (batch, training)
and ``FeatureStream`` (one bar at a time, trading) produce bit-identical rows, NaN during
warm-up, and row t never depends on bars after t. Imports nothing else of mlstrategy.
"""
from __future__ import annotations

from features_numba.batch import compute_features, compute_features_arrays, features_frame
from features_numba.errors import FeatureError
from features_numba.kinds import KERNEL_VERSION, KINDS
from features_numba.spec import FeatureDef, FeatureSpec
from features_numba.stream import FeatureStream

__all__ = [
    "KERNEL_VERSION",
    "KINDS",
    "FeatureDef",
    "FeatureError",
    "FeatureSpec",
    "FeatureStream",
    "compute_features",
    "compute_features_arrays",
    "features_frame",
]

"""Numba feature kernels: the single source of every feature the model sees.

Contract (DESIGN §3): a ``FeatureSpec`` lists features; ``compute_features`` (batch, training)
and ``FeatureStream`` (one bar at a time, trading) produce bit-identical rows, NaN during
warm-up, and row t never depends on bars after t. Imports nothing else of mlstrategy.
Importing it first drops any cached machine code compiled from other sources
(``cache_guard``).
"""
from __future__ import annotations

from features_numba.cache_guard import guard

guard()  # before any kernel is imported: compiled code never outlives its sources

import importlib  # noqa: E402

from features_numba.errors import FeatureError  # noqa: E402

_LAZY = {"compute_features": "batch", "compute_features_arrays": "batch",
         "features_frame": "batch", "KERNEL_VERSION": "kinds", "KINDS": "kinds",
         "FeatureDef": "spec", "FeatureSpec": "spec", "FeatureStream": "stream"}

__all__ = ["FeatureError", *_LAZY]


def __getattr__(name: str) -> object:
    """Load a public name's module (and numba) on first use (PEP 562)."""
    if name not in _LAZY:
        raise AttributeError(f"module 'features_numba' has no attribute {name!r}")
    return getattr(importlib.import_module(f"features_numba.{_LAZY[name]}"), name)

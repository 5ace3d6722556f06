"""Errors raised by features_numba."""
from __future__ import annotations


class FeatureError(ValueError):
    """An invalid feature specification, parameter, or input to the feature engines."""

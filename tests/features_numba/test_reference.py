"""Every kernel against its reference (TA-Lib where it has the indicator, else pandas/scipy)."""
from __future__ import annotations

import numpy as np
import pytest

from features_numba import KINDS, FeatureSpec, compute_features
from tests.features_numba.conftest import ALL_KINDS
from tests.features_numba.references import reference


def test_every_kind_is_covered():
    assert {f.kind for f in ALL_KINDS} == set(KINDS)


@pytest.mark.parametrize("definition", ALL_KINDS, ids=lambda f: f.name)
def test_kernel_matches_reference(definition, bars):
    got = compute_features(bars, FeatureSpec((definition,)))[:, 0]
    want = np.asarray(reference(definition, bars), dtype=float)
    np.testing.assert_array_equal(np.isnan(got), np.isnan(want), err_msg="warm-up differs")
    assert np.isnan(got).sum() == min(definition.warmup, len(bars))
    known = ~np.isnan(want)
    # 1e-9 relative; ratios that cross zero are compared at 1e-9 of the column's magnitude
    scale = np.abs(want[known]).max() if known.any() else 0.0
    np.testing.assert_allclose(got[known], want[known], rtol=1e-9, atol=1e-9 * scale)

"""The O(1) rolling windows against exact two-pass computations of every window."""
from __future__ import annotations

import numpy as np
import pytest

from features_numba import FeatureDef, FeatureSpec, compute_features
from tests.features_numba.references import _windows

d = FeatureDef.of


def _two_pass_std(x: np.ndarray, n: int, ddof: int) -> np.ndarray:
    """Standard deviation of each trailing window, mean first then squared deviations."""
    return _windows(x, n).std(axis=1, ddof=ddof)


def _column(bars, definition) -> np.ndarray:
    return compute_features(bars, FeatureSpec((definition,)))[:, 0]


def _assert_close(got: np.ndarray, want: np.ndarray) -> None:
    """1e-9 relative, or 1e-9 of the column's scale where a value is near 0 (a near-flat
    window's variance is a difference of much larger sums)."""
    known = ~np.isnan(want)
    scale = np.abs(want[known]).max()
    np.testing.assert_allclose(got[known], want[known], rtol=1e-9, atol=1e-9 * scale)


@pytest.mark.parametrize("n", [2, 24, 96])
def test_volatility_equals_the_two_pass_std(bars, n):
    returns = np.log(bars["close"].to_numpy()[1:] / bars["close"].to_numpy()[:-1])
    want = np.concatenate([[np.nan], _two_pass_std(returns, n, 1)])
    _assert_close(_column(bars, d("volatility", n=n)), want)


def test_bollinger_width_equals_the_two_pass_bands(bars):
    close = bars["close"].to_numpy()
    w = _windows(close, 20)
    want = 4.0 * w.std(axis=1) / w.mean(axis=1)
    _assert_close(_column(bars, d("bollinger", n=20, k=2.0, part="width")), want)


def test_moments_stay_exact_far_from_zero():
    """Running sums of raw values would lose most digits here (level 1e6, moves of 1e-2); the
    anchored, compensated, re-anchored sums keep 1e-9. The prices are multiples of 2**-10, so
    they are exact in float64, and the reference is computed in extended precision. A
    property only a synthetic series shows plainly."""
    import pandas as pd

    rng = np.random.default_rng(7)
    n_bars = 5000
    close = 1e6 + np.cumsum(rng.integers(-20, 21, n_bars)) * 2.0 ** -10
    index = pd.date_range("2024-01-01", periods=n_bars, freq="min", tz="UTC")
    bars = pd.DataFrame({"open": close, "high": close + 0.5, "low": close - 0.5,
                         "close": close, "volume": 1.0}, index=index)
    w = _windows(close, 50).astype(np.longdouble)
    mean = w.mean(axis=1)
    std = np.sqrt(((w - mean[:, None]) ** 2).sum(axis=1) / 49)
    with np.errstate(invalid="ignore", divide="ignore"):
        want = np.where(std == 0, 0.0, (close - mean) / std).astype(float)
    _assert_close(_column(bars, d("zscore", n=50, input="close")), want)


def test_a_flat_window_after_a_moving_one_is_exactly_flat():
    """Zero-volume runs after trading: the anchor is far from the flat value, yet the window
    reads as flat (z-score 0), not as rounding noise divided by rounding noise."""
    import pandas as pd

    volume = np.concatenate([np.linspace(100.0, 300.0, 60), np.zeros(60)])
    index = pd.date_range("2024-01-01", periods=len(volume), freq="h", tz="UTC")
    bars = pd.DataFrame({"open": 1.0, "high": 1.0, "low": 1.0, "close": 1.0,
                         "volume": volume}, index=index)
    got = _column(bars, d("zscore", n=24, input="volume"))
    assert np.all(got[60 + 24:] == 0.0)


def _neumaier(total: float, comp: float, x: float) -> tuple[float, float]:
    """Neumaier's compensated add, as published: the error term from the larger operand."""
    t = total + x
    return t, comp + ((total - t) + x if abs(total) >= abs(x) else (x - t) + total)


def test_two_sum_compensates_exactly_as_neumaier():
    """``two_sum`` finds the rounding error with Knuth's TwoSum; it must give Neumaier's
    compensated sums bit for bit, over values of wildly different magnitudes and signs."""
    from features_numba.windows import two_sum

    rng = np.random.default_rng(7)
    values = rng.standard_normal(20_000) * np.exp(rng.uniform(-40, 40, 20_000))
    ours = reference = (0.0, 0.0)
    for x in values:
        ours = two_sum(ours[0], ours[1], x)
        reference = _neumaier(*reference, float(x))
        assert ours == reference

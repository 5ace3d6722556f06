"""DESIGN §3 invariants on real data: streaming == batch bit for bit; no look-ahead."""
from __future__ import annotations

import json

import numpy as np
import pytest

from features_numba import FeatureDef, FeatureSpec, FeatureStream, compute_features
from tests.features_numba.conftest import ALL_KINDS


def _stream_rows(bars, spec: FeatureSpec) -> np.ndarray:
    stream = FeatureStream(spec)
    ts = bars.index.as_unit("ns").asi8
    values = bars[["open", "high", "low", "close", "volume"]].to_numpy()
    return np.array([stream.update(*row, t).copy() for row, t in zip(values, ts, strict=True)])


def test_streaming_equals_batch_for_the_default_spec(bars):
    spec = FeatureSpec.default()
    assert np.array_equal(_stream_rows(bars, spec), compute_features(bars, spec), equal_nan=True)


@pytest.mark.parametrize("definition", ALL_KINDS, ids=lambda f: f.name)
def test_streaming_equals_batch_for_each_kernel(definition, btc_bars):
    spec = FeatureSpec((definition,))
    assert np.array_equal(_stream_rows(btc_bars, spec), compute_features(btc_bars, spec),
                          equal_nan=True)


def test_features_sharing_a_window_equal_their_own_steps(bars):
    """One moments pass serves every feature of the same input and n, whatever power each
    reads (volatility: 2, skew and kurtosis: 4); each column still equals its own step's."""
    d = FeatureDef.of
    spec = FeatureSpec((d("moments", n=5, moment="kurt"), d("volatility", n=5),
                        d("moments", n=5, moment="skew"), d("zscore", n=3, input="volume"),
                        d("bollinger", n=3, k=1.5, part="width"), d("zscore", n=3, input="close"),
                        d("range_volatility", n=7, estimator="garman_klass")))
    assert np.array_equal(_stream_rows(bars, spec), compute_features(bars, spec), equal_nan=True)


def test_removing_later_bars_never_changes_earlier_rows(bars):
    spec = FeatureSpec.default()
    full = compute_features(bars, spec)
    for t in (0, spec.warmup - 1, spec.warmup, len(bars) // 3, len(bars) - 2):
        cut = compute_features(bars.iloc[: t + 1], spec)
        assert np.array_equal(cut, full[: t + 1], equal_nan=True), f"row {t} saw the future"


def test_warm_then_stream_equals_streaming_from_the_start(btc_bars):
    spec = FeatureSpec.default()
    full = compute_features(btc_bars, spec)
    stream = FeatureStream(spec)
    stream.warm(btc_bars.iloc[:5000])
    bar = btc_bars.iloc[5000]
    row = stream.update(*bar[["open", "high", "low", "close", "volume"]],
                        btc_bars.index[5000:5001].as_unit("ns").asi8[0])
    assert np.array_equal(row, full[5000], equal_nan=True)
    assert stream.n_seen == 5001


def test_saved_state_restores_exactly_through_json(btc_bars):
    spec = FeatureSpec.default()
    full = compute_features(btc_bars, spec)
    first = FeatureStream(spec)
    first.warm(btc_bars.iloc[:3000])
    restored = FeatureStream(spec)
    restored.load_state(json.loads(json.dumps(first.state_dict())))
    ts = btc_bars.index.as_unit("ns").asi8
    values = btc_bars[["open", "high", "low", "close", "volume"]].to_numpy()
    for i in range(3000, 3200):
        assert np.array_equal(restored.update(*values[i], ts[i]), full[i], equal_nan=True)


def test_state_of_another_spec_is_refused():
    from features_numba import FeatureDef, FeatureError

    stream = FeatureStream(FeatureSpec((FeatureDef.of("rsi", n=14),)))
    other = FeatureStream(FeatureSpec((FeatureDef.of("rsi", n=7),)))
    with pytest.raises(FeatureError, match="another feature spec"):
        other.load_state(stream.state_dict())


def test_columns_in_threads_are_bit_identical(bars):
    spec = FeatureSpec.default()
    one = compute_features(bars, spec)
    assert np.array_equal(one, compute_features(bars, spec, threads=2), equal_nan=True)

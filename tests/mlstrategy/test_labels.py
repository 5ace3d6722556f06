from __future__ import annotations

import numpy as np
import pytest

from mlstrategy.labels import LabelSpec, forward_returns, make_labels


def test_forward_return_is_next_open_to_open_h_bars_later(btc_bars):
    open_ = btc_bars["open"].to_numpy()
    spec = LabelSpec(horizon=3)
    fwd = forward_returns(open_, spec)
    for t in (0, 100, 5000, len(open_) - spec.overlap - 1):
        assert fwd[t] == pytest.approx(np.log(open_[t + 4]) - np.log(open_[t + 1]), rel=1e-12)
    assert np.isnan(fwd[-spec.overlap:]).all()
    assert not np.isnan(fwd[: -spec.overlap]).any()


def test_label_reads_no_bar_beyond_its_overlap(btc_bars):
    open_ = btc_bars["open"].to_numpy()
    spec = LabelSpec(horizon=5)
    full, _ = make_labels(open_, spec)
    t = 7000
    cut, _ = make_labels(open_[: t + spec.overlap + 1], spec)
    np.testing.assert_array_equal(cut[: t + 1], full[: t + 1])


def test_label_threshold_and_unknown_tail(btc_bars):
    open_ = btc_bars["open"].to_numpy()
    y, fwd = make_labels(open_, LabelSpec(horizon=2, threshold=0.01))
    known = ~np.isnan(fwd)
    np.testing.assert_array_equal(y[known], (fwd[known] > 0.01).astype(float))
    assert np.isnan(y[~known]).all()


def test_horizon_must_be_positive():
    with pytest.raises(ValueError, match="horizon"):
        LabelSpec(horizon=0)

"""Labels read only the bars they say they read, from the next bar's open."""
from __future__ import annotations

import numpy as np
import pytest

from mlstrategy.research.labels import LabelSpec, labels_of


@pytest.mark.parametrize("spec", [
    LabelSpec(horizon=4),
    LabelSpec(kind="triple_barrier", horizon=12, take_profit=1.5, stop_loss=1.0),
    LabelSpec(kind="triple_barrier", horizon=12, vol="std", vol_window=20),
], ids=["fixed", "triple-atr", "triple-std"])
def test_a_label_reads_no_bar_beyond_its_reach(btc_bars, spec):
    bars = btc_bars.iloc[:3000]
    full = labels_of(bars, spec)
    known = np.flatnonzero(~np.isnan(full.y))
    assert len(known) > 2000
    assert np.all(full.reach[known] > known)  # always from the next bar on
    assert np.all(full.reach[known] <= known + spec.overlap)
    for t in known[::97]:  # cut every bar after the label's reach: the label stands
        cut = labels_of(bars.iloc[:full.reach[t] + 1], spec)
        assert cut.y[t] == full.y[t] and cut.forward[t] == full.forward[t]


def test_fixed_label_is_the_next_open_trade(btc_bars):
    spec = LabelSpec(horizon=2)
    labels = labels_of(btc_bars, spec)
    o = btc_bars["open"].to_numpy()
    np.testing.assert_allclose(labels.forward[:-3], np.log(o[3:] / o[1:-2]))
    assert np.isnan(labels.y[-3:]).all()


def test_the_dead_zone_drops_flat_rows_only_when_asked(btc_bars):
    kept = labels_of(btc_bars, LabelSpec(horizon=2, threshold=0.002))
    dropped = labels_of(btc_bars, LabelSpec(horizon=2, threshold=0.002, drop_flat=True))
    flat = ~np.isnan(kept.forward) & (np.abs(kept.forward) <= 0.002)
    assert flat.sum() > 1000
    assert (kept.y[flat] == 0).all() and np.isnan(dropped.y[flat]).all()
    np.testing.assert_array_equal(kept.y[~flat], dropped.y[~flat])


def test_triple_barrier_by_hand():
    import pandas as pd

    index = pd.date_range("2024-01-01", periods=8, freq="1h", tz="UTC")
    close = np.array([100, 100, 100, 100, 100, 100, 100, 100.0])
    bars = pd.DataFrame({"open": close, "high": close + [1, 1, 1, 3, 1, 1, 1, 1],
                         "low": close - [1, 1, 1, 1, 1, 4, 1, 1], "close": close,
                         "volume": 1.0}, index=index)
    spec = LabelSpec(kind="triple_barrier", horizon=3, take_profit=1.0, stop_loss=1.0,
                     vol_window=2)
    labels = labels_of(bars, spec)
    # from bar 1 on the ATR is about 2 (a fraction 0.02 of 100): barriers near 102 and 98
    assert labels.y[1] == 1.0 and labels.reach[1] == 3  # high 103 at bar 3 touches first
    assert labels.y[2] == 1.0 and labels.reach[2] == 3
    assert labels.y[3] == 0.0 and labels.reach[3] == 5  # low 96 at bar 5
    assert np.isnan(labels.y[6:]).all()  # untouched, fewer than 3 bars left

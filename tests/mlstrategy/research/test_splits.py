"""No training label's reach enters a test block, and embargoed bars stay out, in every
validation scheme and for triple-barrier labels."""
from __future__ import annotations

import numpy as np
import pytest

from mlstrategy.research.labels import LabelSpec, labels_of
from mlstrategy.research.splits import holdout_split, splits

SPECS = [LabelSpec(horizon=4),
         LabelSpec(kind="triple_barrier", horizon=24, take_profit=2.0, stop_loss=1.0)]


def test_holdout_purges_labels_that_reach_the_test_span():
    fold = holdout_split(1000, 0.2, overlap=5)
    assert fold.test_start == 800 and fold.test_end == 1000
    assert fold.train_index()[-1] + 5 < fold.test_start


@pytest.mark.parametrize("fraction", [0.0, 1.0, -0.1])
def test_holdout_fraction_out_of_range(fraction):
    with pytest.raises(ValueError, match="test fraction"):
        holdout_split(100, fraction, overlap=2)


@pytest.mark.parametrize("scheme", ["walk_forward", "rolling", "cpcv"])
@pytest.mark.parametrize("spec", SPECS, ids=["fixed", "triple-barrier"])
def test_no_label_reaches_a_test_block_and_the_embargo_holds(btc_bars, scheme, spec):
    labels = labels_of(btc_bars.iloc[:6000], spec)
    rows = np.flatnonzero(~np.isnan(labels.y))
    rows = rows[rows >= 100]
    embargo = 10
    folds = splits(scheme, rows, labels.reach, folds=5, embargo=embargo, min_train=1500,
                   rolling_window=1500, test_groups=2)
    assert len(folds) == (10 if scheme == "cpcv" else 5)
    for split in folds:
        assert not np.intersect1d(split.train, split.test).size
        for start, end in split.blocks:
            before = split.train[split.train < start]
            assert (labels.reach[before] < start).all()  # purged by the label's reach
            after = split.train[split.train >= end]
            assert (after >= end + embargo).all()  # embargoed
        if scheme == "rolling":
            assert split.train.min() >= split.blocks[0][0] - 1500
        if scheme != "cpcv":
            assert split.train.max() < split.blocks[0][0]  # walk-forward: only the past
    if spec.kind == "triple_barrier":  # purging by reach keeps more rows than the bound
        split = folds[-1]
        start = split.blocks[0][0]
        kept_near = split.train[(split.train >= start - spec.overlap) & (split.train < start)]
        assert len(kept_near) > 0


def test_too_few_rows_for_folds():
    with pytest.raises(ValueError, match="too few"):
        splits("walk_forward", np.arange(5), np.arange(5) + 10, folds=3, embargo=0,
               min_train=10)

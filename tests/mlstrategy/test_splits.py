from __future__ import annotations

import pytest

from mlstrategy.splits import holdout_split, walk_forward_folds


def test_holdout_purges_labels_that_reach_the_test_span():
    fold = holdout_split(1000, 0.2, overlap=5)
    assert fold.test_start == 800 and fold.test_end == 1000
    # the last training row's label reads bars up to row + overlap: all before the test span
    assert fold.train_index()[-1] + 5 < fold.test_start


def test_walk_forward_is_expanding_contiguous_and_purged():
    folds = walk_forward_folds(1000, 4, overlap=3, min_train=400)
    assert len(folds) == 4
    assert folds[0].test_start == 400 and folds[-1].test_end == 1000
    for before, after in zip(folds, folds[1:], strict=False):
        assert after.test_start == before.test_end
        assert after.train_end > before.train_end
    for fold in folds:
        assert fold.train_end + 3 == fold.test_start


@pytest.mark.parametrize("fraction", [0.0, 1.0, -0.1])
def test_holdout_fraction_out_of_range(fraction):
    with pytest.raises(ValueError, match="test fraction"):
        holdout_split(100, fraction, overlap=2)


def test_too_few_rows_for_folds():
    with pytest.raises(ValueError, match="too few"):
        walk_forward_folds(10, 3, overlap=20, min_train=5)

"""Chronological splits with purging: no training row's label may overlap a test row.

All splits are index ranges over bars in time order. A training row i is kept only if its
label window (bars i+1 .. i+overlap) ends before the first test bar.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Fold:
    """A fold: train on rows ``[0, train_end)``, test on ``[test_start, test_end)``."""

    train_end: int
    test_start: int
    test_end: int

    def train_index(self) -> np.ndarray:
        """Training row indices."""
        return np.arange(self.train_end)

    def test_index(self) -> np.ndarray:
        """Test row indices."""
        return np.arange(self.test_start, self.test_end)


def holdout_split(n_rows: int, test_fraction: float, overlap: int) -> Fold:
    """The last ``test_fraction`` of rows as test set, training rows purged by ``overlap``.

    Parameters
    ----------
    n_rows : int
        Number of rows (bars) in time order.
    test_fraction : float
        Fraction of rows, at the end, held out for testing (0 < f < 1).
    overlap : int
        Bars a label reads after its own bar (``LabelSpec.overlap``).
    """
    if not 0.0 < test_fraction < 1.0:
        raise ValueError(f"test fraction must be between 0 and 1, got {test_fraction}")
    test_start = int(round(n_rows * (1.0 - test_fraction)))
    return Fold(train_end=max(test_start - overlap, 0), test_start=test_start, test_end=n_rows)


def walk_forward_folds(n_rows: int, n_folds: int, overlap: int, min_train: int) -> list[Fold]:
    """Expanding-window walk-forward folds over ``n_rows``, each purged by ``overlap``.

    The rows after ``min_train`` are cut into ``n_folds`` consecutive test blocks; fold k trains
    on every row before its block, less the ``overlap`` rows whose labels reach into it.
    """
    if n_folds < 1:
        raise ValueError(f"need at least one fold, got {n_folds}")
    bounds = np.linspace(min_train, n_rows, n_folds + 1).astype(int)
    folds = [
        Fold(train_end=int(start) - overlap, test_start=int(start), test_end=int(end))
        for start, end in zip(bounds[:-1], bounds[1:], strict=True)
        if end > start and start - overlap > 0
    ]
    if not folds:
        raise ValueError(
            f"{n_rows} rows are too few for {n_folds} walk-forward folds after {min_train} "
            "training rows; use more data or fewer folds"
        )
    return folds

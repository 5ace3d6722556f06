"""Chronological splits with purging and embargo: no training label may know a test bar.

Rows are bars in time order. Each label reads bars up to its *reach* (``labels.Labels.reach``).
A training row is kept only if its label's reach ends before every test block it precedes
(purging), and it does not start within ``embargo`` bars after a test block (embargo: the
serial correlation right after a test span would leak it back).

Schemes (``--cv``):

- ``walk_forward``: expanding window; test blocks in order, each trained on everything before.
- ``rolling``: the same with a training window of fixed length.
- ``cpcv``: combinatorial purged k-fold (López de Prado): the rows cut into ``groups`` blocks,
  every choice of ``test_groups`` of them is a test set, the rest (purged and embargoed) trains.
"""
from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np

SCHEMES = ("walk_forward", "rolling", "cpcv")


@dataclass(frozen=True)
class Fold:
    """A chronological train/test split: train on ``[0, train_end)``, test on
    ``[test_start, test_end)`` (the final holdout and the old walk-forward folds)."""

    train_end: int
    test_start: int
    test_end: int

    def train_index(self) -> np.ndarray:
        """Training row indices."""
        return np.arange(self.train_end)

    def test_index(self) -> np.ndarray:
        """Test row indices."""
        return np.arange(self.test_start, self.test_end)


@dataclass(frozen=True)
class Split:
    """Training and test rows of one validation split."""

    name: str
    train: np.ndarray
    test: np.ndarray
    blocks: tuple[tuple[int, int], ...]  # the test blocks [start, end)


def holdout_split(n_rows: int, test_fraction: float, overlap: int) -> Fold:
    """The last ``test_fraction`` of rows as test set, training rows purged by ``overlap``.

    Parameters
    ----------
    n_rows : int
        Number of rows (bars) in time order.
    test_fraction : float
        Fraction of rows, at the end, held out for testing (0 < f < 1).
    overlap : int
        The farthest bar a label reads after its own (``LabelSpec.overlap``).
    """
    if not 0.0 < test_fraction < 1.0:
        raise ValueError(f"test fraction must be between 0 and 1, got {test_fraction}")
    test_start = int(round(n_rows * (1.0 - test_fraction)))
    return Fold(train_end=max(test_start - overlap, 0), test_start=test_start, test_end=n_rows)


def clean_train(rows: np.ndarray, blocks: tuple[tuple[int, int], ...], reach: np.ndarray,
                embargo: int) -> np.ndarray:
    """``rows`` without test rows, rows whose label reaches into a test block (purge), and
    rows starting less than ``embargo`` bars after a test block (embargo)."""
    keep = np.ones(len(rows), dtype=bool)
    for start, end in blocks:
        keep &= ~((rows >= start) & (rows < end))  # test rows
        keep &= ~((rows < start) & (reach[rows] >= start))  # labels reading into the block
        keep &= ~((rows >= end) & (rows < end + embargo))  # just after the block
    return rows[keep]


def splits(scheme: str, rows: np.ndarray, reach: np.ndarray, *, folds: int, embargo: int,
           min_train: int, rolling_window: int | None = None,
           test_groups: int = 2) -> list[Split]:
    """The validation splits of ``rows`` (usable training-span rows, sorted) for ``scheme``.

    Raises
    ------
    ValueError
        For an unknown scheme, or too few rows for the folds asked for.
    """
    if scheme not in SCHEMES:
        raise ValueError(f"cv scheme {scheme!r} is not one of {SCHEMES}")
    if folds < 1:
        raise ValueError(f"need at least one fold, got {folds}")
    if scheme == "cpcv":
        return _cpcv(rows, reach, folds, test_groups, embargo)
    first, last = rows[0], rows[-1] + 1
    bounds = np.linspace(min(first + min_train, last - 1), last, folds + 1).astype(int)
    out = []
    for k, (start, end) in enumerate(zip(bounds[:-1], bounds[1:], strict=True), start=1):
        if end <= start:
            continue
        before = rows[rows < start]
        if scheme == "rolling" and rolling_window:
            before = before[before >= start - rolling_window]
        train = clean_train(before, ((int(start), int(end)),), reach, embargo)
        test = rows[(rows >= start) & (rows < end)]
        if len(train) and len(test):
            out.append(Split(f"fold {k}", train, test, ((int(start), int(end)),)))
    if not out:
        raise ValueError(f"{len(rows)} rows are too few for {folds} {scheme} folds after "
                         f"{min_train} training rows; use more data or fewer folds")
    return out


def _cpcv(rows: np.ndarray, reach: np.ndarray, groups: int, test_groups: int,
          embargo: int) -> list[Split]:
    """Combinatorial purged k-fold: every ``test_groups`` of ``groups`` blocks is tested."""
    if not 1 <= test_groups < groups:
        raise ValueError(f"cpcv needs 1 <= test groups < groups, got {test_groups} of "
                         f"{groups}; raise --folds")
    edges = np.linspace(rows[0], rows[-1] + 1, groups + 1).astype(int)
    out = []
    for chosen in itertools.combinations(range(groups), test_groups):
        blocks = tuple((int(edges[g]), int(edges[g + 1])) for g in chosen)
        in_test = np.zeros(len(rows), dtype=bool)
        for start, end in blocks:
            in_test |= (rows >= start) & (rows < end)
        train = clean_train(rows[~in_test], blocks, reach, embargo)
        name = "groups " + "+".join(str(g + 1) for g in chosen)
        out.append(Split(name, train, rows[in_test], blocks))
    return out

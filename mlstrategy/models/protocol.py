"""The contract every model kind meets, so training, artifacts and inference need no branches.

A model is a binary classifier of feature rows (float64, NaN possible in warm-up rows, which
training never uses): ``fit`` on rows and 0/1 labels, ``predict_proba`` of many rows (the batch
path), ``predict_row`` of one row (the per-bar path; equal to the batch call: bit for bit for
the tree models, within 1e-12 for the MLP), ``save`` into a directory in the kind's own
non-pickle format and ``load`` back, and ``feature_importance``. ``kind`` goes into the
manifest and picks the class at load.
"""
from __future__ import annotations

from pathlib import Path
from typing import ClassVar, Protocol

import numpy as np


class Model(Protocol):
    """A trained binary classifier (see module doc)."""

    kind: ClassVar[str]
    filename: ClassVar[str]  # the file ``save`` writes in the artifact directory

    @classmethod
    def fit(cls, x: np.ndarray, y: np.ndarray, params: object, *, threads: int,
            eval_set: tuple[np.ndarray, np.ndarray] | None = None) -> Model:
        """Train on rows ``x`` with 0/1 labels ``y``; ``eval_set`` (later rows) for early
        stopping where the kind supports it."""

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        """P(label 1) of each row of ``x`` (2-D), float64."""

    def predict_row(self, row: np.ndarray) -> float:
        """P(label 1) of one row (1-D), as the batch call would give it."""

    def save(self, directory: Path) -> Path:
        """Write the model into ``directory`` reproducibly; returns the file."""

    @classmethod
    def load(cls, path: Path) -> Model:
        """Read a file written by ``save``."""

    def feature_importance(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Importance of each feature (native where the kind has it, else by permutation on
        ``x``, ``y``), normalised to sum to 1."""

    @property
    def n_features(self) -> int:
        """Width of the rows the model was trained on."""

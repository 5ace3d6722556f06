"""Streaming engine: one closed bar in, one feature row out, for trading.

O(1) per bar and no allocation per bar: one compiled call advances every feature's state,
with exactly the arithmetic of the batch engine, so the rows are bit-identical to the batch
matrix. The state is a flat float array: JSON-serialisable, so a bot can save it and restart.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from features_numba.batch import _arrays, _bar_times
from features_numba.errors import FeatureError
from features_numba.spec import FeatureSpec
from features_numba.steps import update_nb, warm_nb


class FeatureStream:
    """Incremental features for ``spec``.

    ``update`` returns the engine's own row buffer: it is overwritten by the next update, so
    copy it to keep it.
    """

    def __init__(self, spec: FeatureSpec) -> None:
        self.spec = spec
        self._codes, self._params, self._offsets = spec.layout()
        self._state = np.zeros(self._offsets[-1], dtype=np.float64)
        self._row = np.empty(len(spec), dtype=np.float64)
        self._seen = 0

    @property
    def n_seen(self) -> int:
        """Bars fed so far."""
        return self._seen

    def update(self, open_: float, high: float, low: float, close: float, volume: float,
               ts_ns: int) -> np.ndarray:
        """Advance by one closed bar (open time ``ts_ns``, int ns UTC) and return its row."""
        update_nb(self._codes, self._params, self._offsets, self._state, float(open_),
                  float(high), float(low), float(close), float(volume), int(ts_ns), self._row)
        self._seen += 1
        return self._row

    def warm(self, ohlcv: pd.DataFrame) -> None:
        """Feed history in one compiled pass (same steps as :meth:`update`, bar by bar)."""
        n = len(ohlcv)
        if n == 0:
            return
        arrays, ts = _arrays(*(ohlcv[c].to_numpy() for c in ("open", "high", "low", "close",
                                                             "volume")), _bar_times(ohlcv))
        warm_nb(self._codes, self._params, self._offsets, self._state, *arrays, ts, self._row)
        self._seen += n

    def state_dict(self) -> dict:
        """The full state as JSON-ready data (floats as Python floats, NaN kept as NaN)."""
        return {"spec_hash": self.spec.hash, "n_seen": self._seen,
                "state": self._state.tolist(), "row": self._row.tolist()}

    def load_state(self, data: dict) -> None:
        """Restore a state saved by :meth:`state_dict` for the same spec."""
        if data.get("spec_hash") != self.spec.hash:
            raise FeatureError("saved feature state belongs to another feature spec "
                               f"(hash {str(data.get('spec_hash'))[:12]}, expected "
                               f"{self.spec.hash[:12]}); warm the stream from history instead")
        state = np.asarray(data["state"], dtype=np.float64)
        if state.shape != self._state.shape:
            raise FeatureError(f"saved feature state has {state.size} values, expected "
                               f"{self._state.size}")
        self._state[:] = state
        self._row[:] = np.asarray(data["row"], dtype=np.float64)
        self._seen = int(data["n_seen"])

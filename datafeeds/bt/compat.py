"""backtrader, made to work on Python 3.10+ and without a display. Import ``bt`` from here.

backtrader 1.9.78 still reads ``collections.Iterable`` (moved to ``collections.abc`` in 3.10),
and its plot module forces the TkAgg backend on import, which fails headless: we import it once
here and switch matplotlib back to Agg.
"""
from __future__ import annotations

import collections
import collections.abc

for _name in ("Iterable", "Mapping", "MutableMapping", "Sequence"):
    if not hasattr(collections, _name):
        setattr(collections, _name, getattr(collections.abc, _name))

import backtrader as bt  # noqa: E402
import backtrader.plot  # noqa: E402,F401  (forces TkAgg; undone below)
import matplotlib  # noqa: E402

matplotlib.use("Agg", force=True)

__all__ = ["bt"]

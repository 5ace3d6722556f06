"""Bar fingerprints: one 64-bit number per bar, from its time and its open, high, low and close.

Two copies of the same bar give the same fingerprint whatever file, symbol or name they come
under, and whatever rows were dropped or added around them. A CSV round trip must not change
it, so the time counts to the millisecond and each price to six significant digits: a CSV
at full precision (pandas' default) matches exactly, one with six decimals (Yahoo's) matches
unless its rounding crosses a six-digit boundary (a few prices in ten thousand, at most).
Different instruments at the same times differ in at least one of four prices at that
precision. Volume is left out: it is the column most often revised or missing.

``fingerprints`` is vectorised numpy (about 0.1 s for a million bars); a sorted unique array
of them is 8 bytes a bar, and ``np.isin`` against it finds training bars among any bars.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

_DIGITS = 6  # significant digits of each price that count
_PRICES = ("open", "high", "low", "close")


def _mix(x: np.ndarray) -> np.ndarray:
    """splitmix64's finaliser: every input bit moves about half the output bits."""
    x = x ^ (x >> np.uint64(30))
    x = x * np.uint64(0xBF58476D1CE4E5B9)
    x = x ^ (x >> np.uint64(27))
    x = x * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


def _rounded(prices: np.ndarray) -> np.ndarray:
    """Each positive price as ``mantissa * 256 + exponent`` of its six significant digits."""
    exponent = np.floor(np.log10(prices))
    mantissa = np.rint(prices * 10.0 ** (_DIGITS - 1 - exponent))
    carry = mantissa >= 10.0 ** _DIGITS  # 999999.7 rounds to the next decade
    mantissa = np.where(carry, np.rint(mantissa / 10.0), mantissa)
    exponent = exponent + carry
    return (mantissa.astype(np.int64) * 256 + (exponent.astype(np.int64) + 128)).astype(
        np.uint64)


def fingerprints(bars: pd.DataFrame) -> np.ndarray:
    """One uint64 per bar of an OHLCV frame (prices > 0, as the OHLCV contract has them)."""
    with np.errstate(over="ignore"):
        h = _mix(np.asarray(bars.index.as_unit("ms").asi8, dtype=np.int64).astype(np.uint64))
        for column in _PRICES:
            h = _mix(h ^ _rounded(bars[column].to_numpy(dtype=np.float64)))
    return h


def fingerprint_set(bars: pd.DataFrame) -> np.ndarray:
    """The sorted, unique fingerprints of ``bars``: what an artifact stores of its training."""
    return np.unique(fingerprints(bars))


def matches(bars: pd.DataFrame, known: np.ndarray) -> np.ndarray:
    """Per bar of ``bars``, whether its fingerprint is in the sorted array ``known``."""
    if not len(known):
        return np.zeros(len(bars), dtype=bool)
    mine = fingerprints(bars)
    at = np.minimum(np.searchsorted(known, mine), len(known) - 1)
    return known[at] == mine

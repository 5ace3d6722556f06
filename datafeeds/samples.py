"""The market data shipped inside the package (see ``samples/PROVENANCE.md``).

``load_sample(name)`` returns a validated OHLCV frame; the default dataset is Coinbase BTC/USD
hourly, so a fresh install can train and backtest with no download.
"""
from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING

from datafeeds.errors import DataError

if TYPE_CHECKING:
    import pandas as pd


@dataclass(frozen=True)
class Sample:
    """One embedded dataset: its file, layout and what it holds."""

    name: str
    filename: str
    symbol: str
    timeframe: str
    source: str


SAMPLES: dict[str, Sample] = {
    s.name: s
    for s in (
        Sample("btcusd-1h", "coinbase_btcusd_1h.csv.gz", "BTC/USD", "1h", "coinbase"),
        Sample("orcl-1d", "orcl_1d_yahoo.csv.gz", "ORCL", "1d", "yahoo"),
        Sample("btcperp-1m", "btcperp_1m.csv.gz", "BTC/USDT", "1m", "ftx"),
    )
}
DEFAULT_SAMPLE = "btcusd-1h"


def sample_path(name: str) -> Path:
    """Path of an embedded sample file inside the installed package."""
    return Path(str(resources.files("datafeeds") / "samples" / _get(name).filename))


def _get(name: str) -> Sample:
    try:
        return SAMPLES[name]
    except KeyError:
        raise DataError(f"unknown sample {name!r}; choose one of {sorted(SAMPLES)}") from None


def load_sample(name: str = DEFAULT_SAMPLE) -> pd.DataFrame:
    """Load an embedded sample as a validated OHLCV frame (UTC bar open times).

    Parameters
    ----------
    name : str
        One of ``SAMPLES`` (``btcusd-1h`` by default, ``orcl-1d``, ``btcperp-1m``).
    """
    from datafeeds.loaders import load_file  # pandas: only when bars are really loaded

    # Yahoo daily rows carry a date only: each bar is labelled 00:00 UTC of its day
    return load_file(sample_path(name))

"""A dataset: a validated OHLCV frame plus what it is (source, symbol, timeframe, fingerprint),
and the bars of the other markets its features read (``others``).

The description goes into every model manifest, so a model always says what it was trained on.
"""
from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np
import pandas as pd

from datafeeds import SAMPLES, DataError, load_sample
from datafeeds.timeframes import format_timedelta


@dataclass(frozen=True)
class DatasetInfo:
    """Where bars came from and a fingerprint of exactly which bars they are."""

    source: str
    symbol: str
    timeframe: str
    first_bar: str
    last_bar: str
    rows: int
    sha256: str

    def to_dict(self) -> dict:
        """JSON-ready form for manifests and reports."""
        return asdict(self)


@dataclass(frozen=True)
class Dataset:
    """Validated bars and their description; ``others``: other markets' bars, by symbol."""

    bars: pd.DataFrame
    info: DatasetInfo
    others: dict[str, pd.DataFrame] = field(default_factory=dict)

    def with_others(self, others: dict[str, pd.DataFrame]) -> Dataset:
        """This dataset with the bars of other markets beside it."""
        return replace(self, others=dict(others))

    def others_info(self) -> dict[str, dict]:
        """Each other market's bars described (range, rows, fingerprint), for manifests."""
        return {symbol: {"first_bar": bars.index[0].isoformat(),
                         "last_bar": bars.index[-1].isoformat(), "rows": int(len(bars)),
                         "sha256": ohlcv_sha256(bars)}
                for symbol, bars in sorted(self.others.items())}

    @property
    def timeframe(self) -> str:
        """The bar size: as described, else inferred from the median bar spacing."""
        if self.info.timeframe not in (None, "unknown"):
            return self.info.timeframe
        spacing = pd.Series(self.bars.index).diff().median()
        return format_timedelta(spacing) if pd.notna(spacing) else "unknown"

    def slice(self, start: int, stop: int | None = None) -> Dataset:
        """The bars ``[start, stop)`` as a dataset of its own (fingerprint recomputed)."""
        part = describe(self.bars.iloc[start:stop], self.info.source, self.info.symbol,
                        self.info.timeframe)
        return part.with_others(self.others)


def ohlcv_sha256(bars: pd.DataFrame) -> str:
    """sha256 over the bar times (int64 ns) and the float64 OHLCV values, in order."""
    digest = hashlib.sha256()
    digest.update(np.ascontiguousarray(bars.index.asi8).tobytes())
    digest.update(np.ascontiguousarray(bars.to_numpy(dtype=np.float64)).tobytes())
    return digest.hexdigest()


def describe(bars: pd.DataFrame, source: str, symbol: str, timeframe: str) -> Dataset:
    """Wrap validated ``bars`` with their description and fingerprint."""
    info = DatasetInfo(
        source=source,
        symbol=symbol,
        timeframe=timeframe,
        first_bar=bars.index[0].isoformat(),
        last_bar=bars.index[-1].isoformat(),
        rows=int(len(bars)),
        sha256=ohlcv_sha256(bars),
    )
    return Dataset(bars=bars, info=info)


def sample_dataset(name: str) -> Dataset:
    """One of the embedded samples (``datafeeds.SAMPLES``) as a dataset."""
    bars = load_sample(name)  # raises DataError naming the choices for an unknown name
    sample = SAMPLES[name]
    return describe(bars, f"sample:{name}", sample.symbol, sample.timeframe)


def file_dataset(path: Path, symbol: str | None, timeframe: str | None, *,
                 repair: bool = False) -> tuple[Dataset, tuple[str, ...]]:
    """Bars from a file in any format ``datafeeds`` reads, and the repairs made (``repair``).

    ``timeframe`` is checked against the bars' spacing; inferred from it when None.
    """
    from datafeeds.loaders import load_file_checked
    from datafeeds.quality import resolve_timeframe

    bars, report = load_file_checked(path, repair=repair)
    timeframe = resolve_timeframe(bars.index, timeframe, str(path))
    return describe(bars, f"file:{path}", symbol or path.stem, timeframe), report.repairs


def store_dataset(url: str, source: str, symbol: str, timeframe: str) -> Dataset:
    """The stored series ``(source, symbol, timeframe)`` of the store at ``url``.

    The description names the series, not the store: the same bars train the same model
    whichever backend holds them.
    """
    from datafeeds.store import StoreKey
    from datafeeds.stores import open_store

    store = open_store(url)
    bars = store.read(StoreKey(source, symbol, timeframe))
    if bars is None:
        raise DataError(f"nothing stored for {source} {symbol} {timeframe} in {store.url}; "
                        "see `mlstrategy data list` and `mlstrategy data import --help`")
    return describe(bars, f"store:{source}", symbol, timeframe)

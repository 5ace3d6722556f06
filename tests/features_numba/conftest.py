"""Real bar sets for the feature tests: the embedded samples, plus shared files when present."""
from __future__ import annotations

import pandas as pd
import pytest

from datafeeds import load_sample
from datafeeds.loaders import load_file
from features_numba import FeatureDef, FeatureSpec
from tests.conftest import SHARED_DATA

# one or more definitions of every kind, with non-default parameters where they matter
d = FeatureDef.of
ALL_KINDS: tuple[FeatureDef, ...] = (
    *FeatureSpec.default().features,
    d("log_return", n=3), d("pct_return", n=1), d("pct_return", n=5), d("sma_ratio", n=7),
    d("ema_ratio", n=50), d("rsi", n=7), d("natr", n=5), d("volatility", n=2),
    d("bollinger", n=10, k=1.5, part="pctb"), d("williams_r", n=5), d("cci", n=5), d("adx", n=5),
    d("mfi", n=5), d("obv"), d("moments", n=10, moment="kurt"),
    *(d("macd", fast=12, slow=26, signal=9, part=p) for p in ("line", "signal", "hist")),
    d("macd", fast=5, slow=8, signal=3, part="hist"),
    d("stochastic", n=5, slow=2, d=4, part="d"), d("level"),
)


def _shared(relative: str, rows: int) -> pd.DataFrame:
    path = SHARED_DATA / relative
    if not path.is_file():
        pytest.skip(f"{path} is absent (../shared/data sits beside the repo in CI)")
    return load_file(path).iloc[:rows]


BAR_SETS = {
    "btcusd-1h": lambda: load_sample("btcusd-1h"),
    "orcl-1d": lambda: load_sample("orcl-1d"),
    "btc-perp-1m": lambda: _shared("nautilus_trader/btc-perp-20211231-20220201_1m.csv", 20000),
    "eth-btc-5m": lambda: _shared("freqtrade/ETH_BTC-5m.csv", 6000),
}


@pytest.fixture(scope="session", params=sorted(BAR_SETS))
def bars(request: pytest.FixtureRequest) -> pd.DataFrame:
    """Each real bar set in turn."""
    return BAR_SETS[request.param]()

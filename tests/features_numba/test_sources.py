"""Features of other series (a higher timeframe, another market) on real bars: streaming
equals batch bit for bit, no row sees a bar that has not closed by its open time, and a
changed bar reaches exactly the rows from the one where it has closed."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from datafeeds import load_sample
from features_numba import FeatureDef, FeatureError, FeatureSpec, FeatureStream, compute_features
from tests.features_numba.conftest import _shared

d = FeatureDef.of
HOUR = pd.Timedelta("1h")


def _informative(market: str | None = None, timeframe: str | None = None) -> tuple:
    return (d("rsi", n=14, market=market, timeframe=timeframe),
            d("log_return", n=1, market=market, timeframe=timeframe),
            d("natr", n=14, market=market, timeframe=timeframe),
            d("bollinger", n=20, k=2.0, part="pctb", market=market, timeframe=timeframe),
            d("cyclic_time", cycle="hour", wave="sin", market=market, timeframe=timeframe))


def _btcperp_timeframes() -> tuple[FeatureSpec, pd.DataFrame, dict]:
    """A 1m model with 15m, 1h and 4h features of its own market (the embedded sample)."""
    spec = FeatureSpec((*FeatureSpec.default().features[:12], *_informative(timeframe="15m"),
                        *_informative(timeframe="1h"), d("rsi", n=6, timeframe="4h")))
    return spec.on_bar("1m"), load_sample("btcperp-1m"), {}


def _ethbtc_with_btcusd() -> tuple[FeatureSpec, pd.DataFrame, dict]:
    """A 5m ETH/BTC model with a 1h feature of its own and BTC/USD's hourly bars."""
    spec = FeatureSpec((*FeatureSpec.default().features[:12], *_informative(timeframe="1h"),
                        *_informative(market="BTC/USD", timeframe="1h")))
    return (spec.on_bar("5m"), _shared("freqtrade/ETH_BTC-5m.csv", 6000),
            {"BTC/USD": load_sample("btcusd-1h")})


def _btcusd_with_ethbtc() -> tuple[FeatureSpec, pd.DataFrame, dict]:
    """An hourly BTC/USD model reading ETH/BTC's 5m bars (grouped into hours) and its own 4h."""
    bars = load_sample("btcusd-1h")
    eth = _shared("freqtrade/ETH_BTC-5m.csv", 6000)
    window = (bars.index >= eth.index[0] - 40 * HOUR) & (bars.index <= eth.index[-1] + 9 * HOUR)
    spec = FeatureSpec((*FeatureSpec.default().features[:12], *_informative(market="ETH/BTC"),
                        d("rsi", n=3, timeframe="4h")))
    return spec.on_bar("1h"), bars[window], {"ETH/BTC": eth}


CASES = {"btcperp-1m+15m,1h,4h": _btcperp_timeframes, "ethbtc-5m+btcusd-1h": _ethbtc_with_btcusd,
         "btcusd-1h+ethbtc-5m": _btcusd_with_ethbtc,
         "btcperp-1m+funding": lambda: _with_funding()}


@pytest.fixture(scope="module", params=sorted(CASES))
def case(request: pytest.FixtureRequest) -> tuple[FeatureSpec, pd.DataFrame, dict, np.ndarray]:
    spec, bars, others = CASES[request.param]()
    return spec, bars, others, compute_features(bars, spec, others=others)


def _same(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a == b) | (np.isnan(a) & np.isnan(b))


def _stream(spec: FeatureSpec, bars: pd.DataFrame, others: dict, warm: int) -> np.ndarray:
    """Warm on ``warm`` bars, then stream the rest, pushing each other market's bars in
    uneven batches: some as they close, some well ahead."""
    stream = FeatureStream(spec)
    first = bars.index[warm]
    stream.warm(bars.iloc[:warm], {m: f[f.index < first] for m, f in others.items()})
    rng = np.random.default_rng(7)
    pushed = dict.fromkeys(others, first)
    rows = []
    for i in range(warm, len(bars)):
        t = bars.index[i]
        for market, frame in others.items():
            if pushed[market] <= t:  # the next batch reaches up to 0..30 bars past t
                until = t + rng.integers(0, 30) * (bars.index[1] - bars.index[0])
                stream.push(market, frame[(frame.index >= pushed[market])
                                          & (frame.index <= until)])
                pushed[market] = until + pd.Timedelta(1, "ns")
        bar = bars.iloc[i]
        rows.append(stream.update(bar.open, bar.high, bar.low, bar.close, bar.volume,
                                  t.value).copy())
    return np.array(rows)


def test_streaming_equals_batch_bit_for_bit(case):
    spec, bars, others, x = case
    warm = len(bars) // 3
    rows = _stream(spec, bars, others, warm)
    assert _same(rows, x[warm:]).all()
    assert np.isfinite(x[warm:]).any(axis=0).all()  # every column has values to compare


def _later_removed(bars: pd.DataFrame, others: dict, t: pd.Timestamp) -> tuple:
    return bars[bars.index <= t], {m: f[f.index <= t] for m, f in others.items()}


def test_a_row_never_changes_when_every_later_bar_of_every_series_is_removed(case):
    spec, bars, others, x = case
    rows = np.random.default_rng(3).choice(np.arange(spec.warmup, len(bars)), 25,
                                           replace=False)
    for i in rows:
        cut, cut_others = _later_removed(bars, others, bars.index[i])
        assert _same(compute_features(cut, spec, others=cut_others)[-1], x[i]).all(), i


def _altered(frame: pd.DataFrame, at: pd.Timestamp) -> pd.DataFrame:
    out = frame.copy()
    out.loc[at, ["high", "close"]] = out.loc[at, "high"] * 1.05
    return out


def _check_reach(spec, x, source_columns, closes_at, bars, others) -> None:
    """With ``bars`` and ``others`` altered: the source's columns of every row opening
    before ``closes_at`` are unchanged, those of the first row opening at or after it
    change."""
    y = compute_features(bars, spec, others=others)
    before = bars.index < closes_at
    assert _same(y[before][:, source_columns], x[before][:, source_columns]).all()
    first = int(np.argmax(~before))
    assert not _same(y[first, source_columns], x[first, source_columns]).all()


def _columns_of(spec: FeatureSpec, **source) -> np.ndarray:
    return np.array([i for i, f in enumerate(spec.features)
                     if (f.market, f.timeframe, f.series) == (
                         source.get("market"), source.get("timeframe"), source.get("series"))])


def test_a_higher_timeframe_bar_reaches_rows_only_once_it_has_closed():
    spec, bars, others = _btcperp_timeframes()
    x = compute_features(bars, spec)
    hour = bars.index[3000].floor("1h") + pd.Timedelta("59min")  # the hour's last minute
    assert hour in bars.index
    _check_reach(spec, x, _columns_of(spec, timeframe="1h"), hour + pd.Timedelta("1min"),
                 _altered(bars, hour), others)
    # the row of that minute itself still reads the hour before: 10:59 sees 09:00-10:00
    row = bars.index.get_loc(hour)
    assert _same(x[row, _columns_of(spec, timeframe="1h")],
                 x[row - 59, _columns_of(spec, timeframe="1h")]).all()


def test_another_markets_bar_reaches_rows_only_once_it_has_closed(shared_data):
    spec, bars, others = _btcusd_with_ethbtc()
    x = compute_features(bars, spec, others=others)
    eth = others["ETH/BTC"]
    at = eth.index[2000]  # a 5m bar inside an hour: that hour closes at the next full hour
    _check_reach(spec, x, _columns_of(spec, market="ETH/BTC"), at.floor("1h") + HOUR, bars,
                 {"ETH/BTC": _altered(eth, at)})


def test_a_missing_bar_of_another_market_gives_nan_not_an_older_value(shared_data):
    spec, bars, others = _ethbtc_with_btcusd()
    btc = others["BTC/USD"]
    gone = pd.Timestamp("2018-01-20 10:00", tz="UTC")
    x = compute_features(bars, spec, others={"BTC/USD": btc.drop(gone)})
    columns = _columns_of(spec, market="BTC/USD", timeframe="1h")
    reads_gone = (bars.index >= gone + HOUR) & (bars.index < gone + 2 * HOUR)
    assert reads_gone.sum() == 12
    assert np.isnan(x[reads_gone][:, columns]).all()
    assert np.isfinite(x[bars.index == gone + 2 * HOUR][:, columns]).all()


def test_spec_round_trips_and_plain_specs_keep_their_hash(tmp_path):
    plain = FeatureSpec.default()
    assert plain.on_bar("1h") is plain and plain.on_bar("1h").hash == plain.hash
    assert "bar" not in plain.to_dict() and "market" not in str(plain.to_dict())
    spec = FeatureSpec((d("rsi", n=14, timeframe="1h"),
                        d("rsi", n=14, market="BTC/USD", timeframe="1h"))).on_bar("5m")
    assert spec.names == ("rsi_14@1h", "rsi_14@BTC/USD,1h")
    assert spec.markets == ("BTC/USD",)
    assert spec.warmup == 15 * 12
    assert FeatureSpec.from_dict(spec.to_dict()) == spec
    path = tmp_path / "spec.toml"
    path.write_text('bar = "5m"\n[[feature]]\nkind = "rsi"\nn = 14\ntimeframe = "1h"\n'
                    '[[feature]]\nkind = "rsi"\nn = 14\nmarket = "BTC/USD"\ntimeframe = "1h"\n')
    assert FeatureSpec.from_toml(path).hash == spec.hash
    assert FeatureSpec(spec.features).on_bar("5m").hash == spec.hash != \
        FeatureSpec(spec.features).on_bar("15m").hash


@pytest.mark.parametrize(("build", "message"), [
    (lambda: d("rsi", n=14, timeframe="1w"), "minutes, hours or days"),
    (lambda: d("rsi", n=14, timeframe="soon"), "not understood"),
    (lambda: d("rsi", n=14, market=""), "name a market"),
    (lambda: FeatureSpec((d("rsi", n=14, timeframe="45m"),), "1h"), "whole number"),
    (lambda: FeatureSpec((d("rsi", n=14, timeframe="1h"),), "1h").on_bar("5m"), "not 5m"),
    (lambda: FeatureSpec((d("rsi", n=14, timeframe="1h"),)).warmup, "on_bar"),
])
def test_bad_sources_are_refused_with_the_fix(build, message):
    with pytest.raises(FeatureError, match=message):
        build()


def test_features_of_a_market_not_given_are_refused():
    spec = FeatureSpec((d("rsi", n=14), d("rsi", n=14, market="ETH/USDT"))).on_bar("1m")
    bars = load_sample("btcperp-1m")
    with pytest.raises(FeatureError, match="ETH/USDT, which were not given"):
        compute_features(bars, spec)
    with pytest.raises(FeatureError, match="read no SOL"):
        FeatureStream(spec).push("SOL", bars)
    with pytest.raises(FeatureError, match="read no other market"):
        FeatureStream(FeatureSpec.default()).push("ETH/USDT", bars)


def _funding(bars: pd.DataFrame, every: str = "8h") -> pd.DataFrame:
    """Funding rates published every 8 hours over ``bars`` (synthetic: the repo holds no
    recorded funding; sign changes and long decimals as real rates have), indexed by the time
    each became known."""
    times = pd.date_range(bars.index[0].floor(every) - pd.Timedelta(every), bars.index[-1],
                          freq=every, name="datetime")
    rates = 1e-4 * np.sin(np.arange(len(times)) / 3.0) + 1e-5 / 3
    return pd.DataFrame({"value": rates}, index=times)


def _with_funding() -> tuple[FeatureSpec, pd.DataFrame, dict]:
    """The real BTC perpetual minutes with their funding rate (and another market's, the
    same minutes' rate shifted by 4 hours) as features: its level, z-score and change."""
    bars = load_sample("btcperp-1m")
    read = (d("level", series="funding_rate"), d("zscore", n=6, input="close",
                                                  series="funding_rate"),
            d("level", market="ETH/USDT", series="funding_rate"))
    spec = FeatureSpec((*FeatureSpec.default().features[:8], *read)).on_bar("1m")
    funding = _funding(bars)
    other = funding.set_axis(funding.index + pd.Timedelta("4h")) * 2.0
    return spec, bars, {"funding_rate": funding, "funding_rate@ETH/USDT": other}


def test_a_funding_rate_reaches_rows_from_the_one_opening_when_it_is_published():
    spec, bars, others = _with_funding()
    x = compute_features(bars, spec, others=others)
    funding = others["funding_rate"]
    published = funding.index[3]  # inside the minutes
    assert bars.index[0] < published < bars.index[-1] and published in bars.index
    columns = _columns_of(spec, series="funding_rate")
    changed = funding.copy()
    changed.iloc[3] = 0.5
    _check_reach(spec, x, columns, published, bars, {**others, "funding_rate": changed})
    row = bars.index.get_loc(published)
    assert x[row, spec.names.index("level@funding_rate")] == funding["value"].iloc[3]
    assert x[row - 1, spec.names.index("level@funding_rate")] == funding["value"].iloc[2]

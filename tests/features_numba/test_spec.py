from __future__ import annotations

import numpy as np
import pytest

from features_numba import FeatureDef, FeatureError, FeatureSpec, compute_features, features_frame


def test_default_spec_is_a_sensible_complete_set(btc_bars):
    spec = FeatureSpec.default()
    assert 30 <= len(spec) <= 40
    assert len(set(spec.names)) == len(spec)
    x = compute_features(btc_bars, spec)
    assert x.shape == (len(btc_bars), len(spec)) and x.dtype == np.float64
    assert not np.isnan(x[spec.warmup:]).any(), "rows past the warm-up must be complete"
    assert np.isnan(x[spec.warmup - 1]).any(), "warm-up is the smallest complete start"


@pytest.mark.parametrize(("sample", "bar", "dropped"), [
    ("btcusd-1h", "1h", set()), ("orcl-1d", "1D", {"hour"}), (None, "7D", {"hour", "dow"})])
def test_calendar_columns_constant_at_the_bar_size_are_left_out(sample, bar, dropped):
    import pandas as pd

    from datafeeds import load_sample

    spec = FeatureSpec.default(pd.Timedelta(bar))
    cycles = {dict(f.params)["cycle"] for f in spec.features if f.kind == "cyclic_time"}
    assert cycles == {"hour", "dow"} - dropped
    if sample is not None:  # every calendar column kept varies on real bars of that size
        x = compute_features(load_sample(sample), spec)
        calendar = [i for i, f in enumerate(spec.features) if f.kind == "cyclic_time"]
        assert all(np.nanstd(x[:, i]) > 0.1 for i in calendar)
        full = FeatureSpec.default()  # and what was dropped was constant there
        x = compute_features(load_sample(sample), full)
        gone = [i for i, f in enumerate(full.features) if f.kind == "cyclic_time"
                and dict(f.params)["cycle"] in dropped]
        assert all(np.nanstd(x[:, i]) == 0.0 for i in gone)


def test_hash_covers_parameters_order_and_is_stable():
    a = FeatureSpec((FeatureDef.of("rsi", n=14), FeatureDef.of("natr", n=14)))
    b = FeatureSpec((FeatureDef.of("rsi", n=14), FeatureDef.of("natr", n=14)))
    assert a.hash == b.hash and a == b and hash(a) == hash(b)
    assert a.hash != FeatureSpec((FeatureDef.of("rsi", n=15), FeatureDef.of("natr", n=14))).hash
    assert a.hash != FeatureSpec((FeatureDef.of("natr", n=14), FeatureDef.of("rsi", n=14))).hash


def test_dict_and_toml_round_trip(tmp_path):
    spec = FeatureSpec.default()
    assert FeatureSpec.from_dict(spec.to_dict()) == spec
    path = tmp_path / "features.toml"
    path.write_text('[[feature]]\nkind = "rsi"\nn = 7\n\n'
                    '[[feature]]\nkind = "bollinger"\nn = 20\nk = 2.5\npart = "pctb"\n\n'
                    '[[feature]]\nkind = "candle"\npart = "body"\n')
    loaded = FeatureSpec.from_toml(path)
    assert loaded.names == ("rsi_7", "bollinger_pctb_20_2.5", "candle_body")
    assert loaded.warmup == 19


def test_features_frame_names_columns(btc_bars):
    frame = features_frame(btc_bars.iloc[:200], FeatureSpec.default())
    assert list(frame.columns) == list(FeatureSpec.default().names)
    assert frame.index.equals(btc_bars.index[:200])


@pytest.mark.parametrize(("kind", "params", "message"), [
    ("nope", {}, "unknown feature kind"),
    ("rsi", {}, "takes parameters"),
    ("rsi", {"n": 0}, "integer >= 1"),
    ("rsi", {"n": 2.5}, "integer >= 1"),
    ("volatility", {"n": 1}, "integer >= 2"),
    ("candle", {"part": "tail"}, "part must be one of"),
    ("macd", {"fast": 26, "slow": 12, "signal": 9, "part": "hist"}, "shorter than"),
    ("bollinger", {"n": 20, "k": -1, "part": "pctb"}, "positive"),
])
def test_bad_definitions_name_the_problem(kind, params, message):
    with pytest.raises(FeatureError, match=message):
        FeatureDef.of(kind, **params)


def test_duplicate_columns_and_bad_toml_are_refused(tmp_path):
    with pytest.raises(FeatureError, match="more than once"):
        FeatureSpec((FeatureDef.of("rsi", n=14), FeatureDef.of("rsi", n=14)))
    path = tmp_path / "f.toml"
    path.write_text("[other]\n")
    with pytest.raises(FeatureError, match=r"\[\[feature\]\]"):
        FeatureSpec.from_toml(path)


def test_frame_without_timezone_is_refused(btc_bars):
    with pytest.raises(FeatureError, match="tz-aware"):
        compute_features(btc_bars.tz_convert(None), FeatureSpec.default())

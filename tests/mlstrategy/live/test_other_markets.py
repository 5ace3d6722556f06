"""A model reading an hourly RSI of its own market and another market's bars, from training to
a bot: the manifest names the market, a backtest and a replay need its bars, and the bot's
P(up) equals the backtest's at every bar on the very bars the bot read (ETH/BTC 5m traded,
BTC/USD hourly beside it: real bars, 20 days in common)."""
from __future__ import annotations

import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from datafeeds import ExchangeError, load_sample
from datafeeds.loaders import load_file
from execution.sim_book import SimClock
from execution.sim_futures import FuturesAccount
from execution.simulator import ExchangeSimulator
from features_numba import FeatureDef, FeatureSpec, compute_features
from mlstrategy.backtest.report import run_backtest
from mlstrategy.backtest.runner import BacktestConfig
from mlstrategy.errors import ConfigError
from mlstrategy.live.audit import audit
from mlstrategy.live.journal import Journal
from mlstrategy.live.market_bars import journal_key, values_of
from mlstrategy.live.replay import served_others, simulated_market
from mlstrategy.live.runner import BotConfig, run_bot
from mlstrategy.registry.artifact import load_artifact, save_artifact
from mlstrategy.research.dataset import describe
from mlstrategy.research.training import train
from tests.conftest import REPO_ROOT
from tests.mlstrategy.conftest import FAST

SPEC = REPO_ROOT / "examples" / "features_informative.toml"
TRAIN_BARS, START, RUN = 4000, 4600, 120


@pytest.fixture(scope="module")
def eth_btc(shared_data):
    return load_file(shared_data / "freqtrade" / "ETH_BTC-5m.csv")


@pytest.fixture(scope="module")
def model(eth_btc, tmp_path_factory):
    dataset = describe(eth_btc.iloc[:TRAIN_BARS], "file:ETH_BTC-5m", "ETH/BTC", "5m")
    result = train(dataset.with_others({"BTC/USD": load_sample("btcusd-1h")}),
                   FeatureSpec.from_toml(SPEC), FAST)
    models_dir = tmp_path_factory.mktemp("models")
    return load_artifact(save_artifact(models_dir, "ethbtc", result.model, result.manifest,
                                       training_bars=result.training_bars))


def test_the_manifest_names_the_other_market_and_its_bars(model):
    assert model.spec.markets == ("BTC/USD",) and model.spec.bar == "5m"
    assert model.manifest.features.inputs == ["BTC/USD"]
    assert "rsi_14@1h" in model.spec.names and "rsi_14@BTC/USD,1h" in model.spec.names
    described = model.manifest.training_data.inputs["BTC/USD"]
    assert described["rows"] == len(load_sample("btcusd-1h")) and len(described["sha256"]) == 64


def _bot(sim_url: str, journal, models_dir, **overrides) -> BotConfig:
    settings = dict(mode="replay", exchange="binance", symbol="ETH/BTC", timeframe="5m",
                    journal=journal, models_dir=models_dir, api_url=sim_url,
                    exchange_broker=False, simulator_keys=True, max_bars=RUN, history=1000,
                    poll_interval=0.0, rate_limit=False, timeout_ms=5_000)
    settings.update(overrides)
    return BotConfig(**settings)


def test_a_replay_has_the_backtests_p_up_at_every_bar(eth_btc, model, tmp_path):
    dataset = describe(eth_btc, "file:ETH_BTC-5m", "ETH/BTC", "5m").with_others(
        {"BTC/USD": load_sample("btcusd-1h")})
    journal = tmp_path / "bot.sqlite"
    with simulated_market(dataset, START, speed=None,
                          others=served_others(dataset, model.spec)) as market:
        result = run_bot(_bot(market.url, journal, model.path.parent.parent), model)
    assert result.summary.bars - result.summary.history_bars == RUN
    held = Journal.read(journal)
    bars, signals = held.bars(), held.signals()
    btc = held.for_market(journal_key("", "BTC/USD")).bars()
    held.close()
    # the hourly bars the bot read are the recorded ones, bit for bit, up to its last bar
    recorded = load_sample("btcusd-1h")
    assert btc.index[-1] >= bars.index[-1].floor("1h") - np.timedelta64(1, "h")
    np.testing.assert_array_equal(btc.to_numpy(), recorded.loc[btc.index].to_numpy())
    traded = signals[signals.action != "history"]
    same = describe(bars, "bot bars", "ETH/BTC", "5m").with_others({"BTC/USD": btc})
    backtest = run_backtest(same, model, BacktestConfig(start=len(bars) - len(traded),
                                                        plot=False), tmp_path / "report")
    bot = traded.proba.to_numpy(dtype=float)
    assert np.isfinite(compute_features(bars, model.spec, others={"BTC/USD": btc})[-RUN:]).all()
    np.testing.assert_array_equal(bot, backtest.probas)  # bit for bit, both series joined
    [session] = audit(journal, model.path.parent.parent)  # and the audit replays it all
    assert session.ok and session.decisions == len(signals)


def test_the_bot_refuses_to_start_without_the_other_markets_bars(eth_btc, model, tmp_path):
    dataset = describe(eth_btc, "file:ETH_BTC-5m", "ETH/BTC", "5m")
    with simulated_market(dataset, START, speed=None) as market:  # no BTC/USD listed
        with pytest.raises(ExchangeError, match="features read BTC/USD, which the bot follows"):
            run_bot(_bot(market.url, tmp_path / "bot.sqlite", model.path.parent.parent), model)


def test_backtest_walk_forward_and_replay_clis_need_the_other_markets_bars(eth_btc, model, tmp_path,
                                                              shared_data):
    data = str(shared_data / "freqtrade" / "ETH_BTC-5m.csv")
    common = ["--models-dir", str(model.path.parent.parent), "--model", model.ref,
              "--data", data, "--symbol", "ETH/BTC"]
    for command in (["backtest", "--out", str(tmp_path / "bt")],
                    ["replay", "--journal", str(tmp_path / "j.sqlite"), "--max-bars", "5"]):
        run = subprocess.run([sys.executable, str(REPO_ROOT / "trading_bot.py"), *command,
                              *common], capture_output=True, text=True, timeout=600)
        assert run.returncode == 2, run.stderr
        assert "--market-data BTC/USD=PATH" in run.stderr and "Traceback" not in run.stderr
    market = f"BTC/USD={REPO_ROOT / 'datafeeds' / 'samples' / 'coinbase_btcusd_1h.csv.gz'}"
    for kind in ("plain", "--walk-forward"):
        out = tmp_path / kind
        run = subprocess.run([sys.executable, str(REPO_ROOT / "trading_bot.py"), "backtest",
                              "--out", str(out), *common, "--market-data", market,
                              *([kind] if kind != "plain" else [])],
                             capture_output=True, text=True, timeout=600)
        assert run.returncode == 0, run.stderr
        assert (out / "backtest.json").is_file()


def _hourly_funding(bars) -> pd.DataFrame:
    """A funding rate settled every hour over ``bars`` (synthetic: the repo holds no recorded
    funding; sign changes and long decimals as real rates have)."""
    times = pd.date_range(bars.index[0].ceil("1h"), bars.index[-1], freq="1h",
                          name="datetime")
    return pd.DataFrame({"value": 1e-4 * np.sin(np.arange(len(times)) / 4.0) + 1e-5 / 3},
                        index=times)


def test_a_perpetual_bot_follows_its_funding_rate_with_the_backtests_p_up(minute_bars,
                                                                          tmp_path):
    """A model of the BTC perpetual's minutes reading its own funding rate, trained with the
    rates beside the bars; the bot (binanceusdm through ccxt, the simulator's fapi) fetches
    the rates settled before its history, one poll per live bar after, and decides exactly as
    the backtest and the audit do on what it journaled."""
    from tests.mlstrategy.live.conftest import FIRST_TRADED, TRAIN_BARS

    funding = _hourly_funding(minute_bars)
    spec = FeatureSpec((*FeatureSpec.default().features[:12], FeatureDef.of(
        "level", series="funding_rate"), FeatureDef.of("zscore", n=6, input="close",
                                                       series="funding_rate")))
    dataset = describe(minute_bars.iloc[:TRAIN_BARS], "sample:btcperp-1m", "BTC/USDT:USDT",
                       "1m").with_others({"funding_rate": funding})
    result = train(dataset, spec, FAST)
    models_dir = tmp_path / "models"
    model = load_artifact(save_artifact(models_dir, "perp", result.model, result.manifest,
                                        training_bars=result.training_bars))
    clock = SimClock(int(minute_bars.index[FIRST_TRADED].value // 1_000_000), None)
    journal = tmp_path / "bot.sqlite"
    with ExchangeSimulator(minute_bars, interval="1m", clock=clock,
                           futures=FuturesAccount(20_000.0)) as sim:
        sim.publish("BTCUSDT", "funding_rate", funding.index.as_unit("ms").asi8.tolist(),
                    funding["value"].tolist())
        config = _bot(sim.url, journal, models_dir, mode="live", exchange="binanceusdm",
                      symbol="BTC/USDT:USDT", timeframe="1m", exchange_broker=True,
                      max_bars=RUN, recv_window_ms=2_000)
        result = run_bot(config, model)
        asked = sim.count("/fapi/v1/fundingRate")
    assert result.summary.bars - result.summary.history_bars == RUN
    assert asked <= RUN + 3  # the history once, then one poll per live bar
    held = Journal.read(journal)
    bars, signals = held.bars(), held.signals()
    rates = values_of(held.for_market(journal_key("", "funding_rate")).bars())
    held.close()
    assert rates.index[0] <= bars.index[0] - pd.Timedelta("48h")  # history before its bars
    assert rates.index[-1] >= bars.index[-1] - pd.Timedelta("1h")  # and up to its last bar
    expected = funding[(funding.index >= rates.index[0]) & (funding.index <= rates.index[-1])]
    pd.testing.assert_frame_equal(rates, expected, check_freq=False)  # every rate, exactly
    traded = signals[signals.action != "history"]
    same = describe(bars, "bot bars", "BTC/USDT:USDT", "1m").with_others({"funding_rate": rates})
    backtest = run_backtest(same, model, BacktestConfig(start=len(bars) - len(traded),
                                                        plot=False), tmp_path / "report")
    x = compute_features(bars, model.spec, others={"funding_rate": rates})
    assert np.isfinite(x[-RUN:]).all() and len(np.unique(x[-RUN:, -2])) > 1  # rates moved
    np.testing.assert_array_equal(traded.proba.to_numpy(dtype=float), backtest.probas)
    [session] = audit(journal, models_dir)
    assert session.ok


def test_a_spot_bot_refuses_a_model_reading_a_funding_rate(minute_bars, tmp_path):
    spec = FeatureSpec((FeatureDef.of("rsi", n=14), FeatureDef.of("level",
                                                                  series="funding_rate")))
    dataset = describe(minute_bars.iloc[:3000], "sample:btcperp-1m", "BTC/USDT", "1m")
    result = train(dataset.with_others({"funding_rate": _hourly_funding(minute_bars)}), spec,
                   FAST)
    model = load_artifact(save_artifact(tmp_path, "spot", result.model, result.manifest,
                                        training_bars=result.training_bars))
    with simulated_market(describe(minute_bars, "x", "BTC/USDT", "1m"), 4000,
                          speed=None) as market:
        with pytest.raises(ConfigError, match="BTC/USDT, which binance lists as no perp"):
            run_bot(_bot(market.url, tmp_path / "j.sqlite", tmp_path, timeframe="1m",
                         symbol="BTC/USDT"), model)

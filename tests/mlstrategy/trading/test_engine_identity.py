"""The trading engine and the Cerebro run give the same trades, for every strategy option.

Every combination of the options (long or long/short, the three sizings, no bracket, a stop, a
take-profit or both, a holding limit, a cooldown) on windows of every real data set (the
embedded samples, and ``../shared/data`` when present), and random configurations and P(up)
sequences drawn by hypothesis: the fills (bar, side, size, price) are equal, the fees and each
bar's value equal to 1e-9, the refusals (bar, size) equal.
"""
from __future__ import annotations

import itertools
from dataclasses import replace

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from datafeeds import load_sample
from datafeeds.loaders import load_file
from mlstrategy.backtest.report import bt_ns, fills_frame, trades_frame
from mlstrategy.backtest.runner import BacktestConfig, simulate
from mlstrategy.research.dataset import describe
from mlstrategy.trading.strategy_params import StrategyParams

WINDOW = 500
SHARED = {"btc-perp-1m": "nautilus_trader/btc-perp-20211231-20220201_1m.csv",
          "eurusd-fut-1m": "nautilus_trader/6EH4.XCME_1min_bars_20240101_20240131.csv",
          "eth-btc-5m": "freqtrade/ETH_BTC-5m.csv",
          "nvda-1d": "backtrader/nvda-1999-2014.txt"}


def _walk(n: int, seed: int) -> np.ndarray:
    """A P(up) that wanders and persists, as a model's does, with a NaN warm-up."""
    rng = np.random.default_rng(seed)
    proba = np.clip(0.5 + np.cumsum(rng.normal(0, 0.05, n)) * 0.3 % 0.6 - 0.25, 0.0, 1.0)
    proba[: rng.integers(0, 20)] = np.nan
    return proba


def _both(bars, artifact, config: BacktestConfig, proba: np.ndarray, enter: float,
          exit_: float):
    """The same trading run by Cerebro and by the engine (P(up) and thresholds as lines)."""
    dataset = describe(bars, "test", "X", "unknown")
    n = len(bars) - 1  # bar 0 only opens the span
    lines = {"p_up": proba[:n], "p_enter": np.full(n, enter), "p_exit": np.full(n, exit_)}
    config = replace(config, start=1, allow_in_sample=True, plot=False)
    return (simulate(dataset, artifact, config, lines=dict(lines)),
            simulate(dataset, artifact, replace(config, engine="numba"), lines=dict(lines)))


def _assert_same(cerebro, engine) -> None:
    a, b = cerebro.strategy, engine.strategy
    fa, fb = fills_frame(a), fills_frame(b)
    exact = ["time", "size", "price"]
    assert fa[exact].values.tolist() == fb[exact].values.tolist()
    np.testing.assert_allclose(fa["fee"], fb["fee"], rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(a.values, b.values, rtol=1e-9)
    assert [(r["time"], r["size"], r["status"]) for r in a.refused] == \
        [(r["time"], r["size"], r["status"]) for r in b.refused]
    ta, tb = trades_frame(a), trades_frame(b)
    timing = ["entry_time", "exit_time", "bars_held", "side"]
    assert ta[timing].values.tolist() == tb[timing].values.tolist()
    np.testing.assert_allclose(ta["pnl_net"], tb["pnl_net"], rtol=1e-9, atol=1e-9)
    assert cerebro.open_positions == engine.open_positions


def _windows(shared_dir) -> dict:
    windows = {name: load_sample(name).iloc[-WINDOW:] for name in
               ("btcusd-1h", "orcl-1d", "btcperp-1m")}
    if shared_dir is not None:
        for name, path in SHARED.items():
            windows[name] = load_file(shared_dir / path).iloc[-WINDOW:]
    return windows


OPTIONS = list(itertools.product([False, True], ["fraction", "units", "vol_target"],
                                 [(None, None), (0.004, None), (None, 0.006), (0.004, 0.006)],
                                 [None, 4], [0, 2]))


@pytest.fixture(scope="module")
def windows(request):
    from tests.conftest import SHARED_DATA

    return _windows(SHARED_DATA if SHARED_DATA.is_dir() else None)


def test_every_combination_of_options_on_every_real_set(trained, windows):
    if len(windows) == 3:
        pytest.skip("../shared/data is absent: the embedded samples only (run in CI)")
    for k, (name, bars) in enumerate(windows.items()):
        unit = float(bars["close"].iloc[0])
        for j, (short, sizing, (stop, take), held, cooldown) in enumerate(OPTIONS):
            params = StrategyParams(allow_short=short, sizing=sizing, units=30_000 / unit,
                                    vol_target=0.02, stop_loss=stop, take_profit=take,
                                    max_bars_held=held, cooldown=cooldown, cash=100_000.0,
                                    commission=0.001, slippage=0.0005, borrow_rate=0.2)
            config = BacktestConfig(strategy=params)
            cerebro, engine = _both(bars, trained.artifact, config, _walk(len(bars), k * 97 + j),
                                    0.55, 0.5)
            try:
                _assert_same(cerebro, engine)
            except AssertionError as exc:
                raise AssertionError(f"{name}, {params}: {exc}") from None


def test_the_options_on_the_embedded_samples(trained, windows):
    """The same as above on the embedded samples alone (a clone without ../shared)."""
    for k, name in enumerate(("btcusd-1h", "orcl-1d", "btcperp-1m")):
        bars = windows[name]
        for j, (short, sizing, (stop, take), held, cooldown) in enumerate(OPTIONS[::5]):
            params = StrategyParams(allow_short=short, sizing=sizing,
                                    units=30_000 / float(bars["close"].iloc[0]),
                                    stop_loss=stop, take_profit=take, max_bars_held=held,
                                    cooldown=cooldown, slippage=0.001, borrow_rate=0.1)
            config = BacktestConfig(strategy=params)
            _assert_same(*_both(bars, trained.artifact, config,
                                _walk(len(bars), 1000 + k * 31 + j), 0.55, 0.5))


@st.composite
def _configs(draw):
    stop = draw(st.one_of(st.none(), st.floats(0.0005, 0.05)))
    take = draw(st.one_of(st.none(), st.floats(0.0005, 0.08)))
    enter = draw(st.floats(0.4, 0.8))
    params = StrategyParams(
        allow_short=draw(st.booleans()),
        sizing=draw(st.sampled_from(["fraction", "units", "vol_target"])),
        fraction=draw(st.floats(0.05, 1.0)), units=draw(st.floats(0.01, 40.0)),
        vol_target=draw(st.floats(0.001, 0.2)), atr_period=draw(st.integers(1, 30)),
        stop_loss=stop, take_profit=take,
        max_bars_held=draw(st.one_of(st.none(), st.integers(1, 30))),
        cooldown=draw(st.integers(0, 6)), cash=draw(st.floats(500.0, 1e6)),
        commission=draw(st.floats(0.0, 0.005)),
        slippage=draw(st.sampled_from([0.0, 0.0002, 0.003])),
        borrow_rate=draw(st.floats(0.0, 1.0)))
    config = BacktestConfig(strategy=params)
    return (config, enter, draw(st.floats(0.2, enter)), draw(st.integers(0, 2 ** 31)),
            draw(st.sampled_from(["btcusd-1h", "orcl-1d", "btcperp-1m"])),
            draw(st.integers(0, 3000)), draw(st.integers(30, 400)))


@settings(max_examples=200, deadline=None, derandomize=False,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(case=_configs())
def test_random_configurations_and_p_up_sequences(trained, case):
    config, enter, exit_, seed, name, offset, length = case
    bars = load_sample(name).iloc[offset:offset + length]
    _assert_same(*_both(bars, trained.artifact, config, _walk(len(bars), seed), enter, exit_))


def test_no_fill_up_to_a_bar_changes_when_later_bars_are_removed(trained):
    """The engine's truncation test: its fills and values up to a bar depend on no later bar."""
    from mlstrategy.trading.engine import run_engine
    from mlstrategy.trading.inference import batch_probas

    bars = trained.dataset.bars.iloc[-3000:]
    proba = batch_probas(trained.dataset.bars, trained.artifact)[-3000:]
    params = StrategyParams(allow_short=True, stop_loss=0.01, take_profit=0.02,
                            sizing="vol_target", max_bars_held=12, cooldown=1)
    costs = {"enter": 0.55, "exit_": 0.5, "cash": 100_000.0, "commission": 0.001,
             "slippage": 0.0005, "borrow_rate": 0.2}
    full = run_engine(bars, proba, params, **costs)
    for end in (500, 1234, 2999):
        cut = run_engine(bars.iloc[:end], proba[:end], params, **costs)
        np.testing.assert_array_equal(cut.values, full.values[:end])
        kept = full.fill_bars < end
        np.testing.assert_array_equal(cut.fill_bars, full.fill_bars[kept])
        np.testing.assert_array_equal(cut.fill_sizes, full.fill_sizes[kept])
        np.testing.assert_array_equal(cut.fill_prices, full.fill_prices[kept])


def test_protection_is_active_from_the_entrys_fill(trained):
    """A bracket's stop and take-profit act from the entry's fill on, that bar included, as
    protective orders resting on an exchange do (backtrader's own brackets wait a bar): some
    trades close on the bar they opened, in Cerebro and in the engine alike, inside its range."""
    bars = load_sample("btcperp-1m").iloc[:2000]
    params = StrategyParams(stop_loss=0.0005, take_profit=0.001)
    cerebro, engine = _both(bars, trained.artifact, BacktestConfig(strategy=params),
                            _walk(len(bars), 7), 0.55, 0.45)
    _assert_same(cerebro, engine)
    trades = trades_frame(cerebro.strategy)
    same_bar = trades[trades["entry_time"] == trades["exit_time"]]
    assert len(same_bar) > 0, "a 5 bp stop should be touched on some entry's fill bar"
    assert (same_bar["bars_held"] == 0).all()
    index = bars.index.as_unit("ns").asi8
    for trade in same_bar.itertuples():
        bar = bars.iloc[int(np.searchsorted(index, bt_ns(np.array([trade.exit_time]))[0]))]
        assert bar["low"] <= trade.exit_price <= bar["high"]
        assert trade.entry_price == pytest.approx(bar["open"], rel=1e-12)  # filled at its open

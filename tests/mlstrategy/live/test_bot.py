"""The bot end to end, in process: real ccxt -> simulator over HTTP -> live feed -> Cerebro.

Paper and live runs of 30 bars on an accelerated clock give, at every bar, exactly the P(up)
the backtest gives on the same bars; live fills reach the journal and the bot's position is the
exchange's; holdings the bot did not buy are never sold; a newly promoted model takes over
within one bar and a wrong one is refused while the old one keeps trading.
"""
from __future__ import annotations

import time

import numpy as np
import pytest

from datafeeds.exchange.simulator import ORDER, Fault
from features_numba import FeatureSpec
from mlstrategy.artifact import save_artifact
from mlstrategy.backtest.runner import BacktestConfig, run_backtest
from mlstrategy.dataset import describe, sample_dataset
from mlstrategy.labels import LabelSpec
from mlstrategy.live.journal import Journal
from mlstrategy.live.runner import BotConfig, run_bot
from mlstrategy.models.catboost import CatBoostParams
from mlstrategy.registry import ModelRef, promote
from mlstrategy.training import TrainConfig, train
from tests.mlstrategy.live.conftest import FAST, TRAIN_BARS, simulator

BARS_RUN = 30


def _config(sim, journal, models_dir, *, live: bool, **overrides) -> BotConfig:
    settings = dict(mode="live" if live else "paper", exchange="binance", symbol="BTC/USDT",
                    timeframe="1m", journal=journal, models_dir=models_dir, api_url=sim.url,
                    exchange_broker=live, simulator_keys=True, max_bars=BARS_RUN,
                    poll_interval=0.01, rate_limit=False, timeout_ms=1_000, settle_s=0.3)
    settings.update(overrides)
    return BotConfig(**settings)


def _backtest_probas(minute_bars, journal_path, artifact, tmp_path) -> tuple:
    """The bot's P(up) of its traded bars, and the backtest's on exactly the same bars."""
    journal = Journal.read(journal_path)
    bars, signals = journal.bars(), journal.signals()
    journal.close()
    traded = signals[signals.action != "history"]
    first = int(minute_bars.index.searchsorted(bars.index[0]))
    same = describe(minute_bars.iloc[first:first + len(bars)], "bot bars", "BTC/USDT", "1m")
    result = run_backtest(same, artifact, BacktestConfig(start=len(bars) - len(traded),
                                                         plot=False), tmp_path / "report")
    return traded.proba.to_numpy(dtype=float), result.probas


@pytest.mark.parametrize("live", [False, True], ids=["paper", "live"])
def test_thirty_bars_with_the_backtests_p_up_at_every_bar(live, market, minute_model,
                                                          minute_bars, tmp_path):
    journal = tmp_path / "bot.sqlite"
    result = run_bot(_config(market, journal, minute_model.models_dir, live=live),
                     minute_model.artifact)
    assert result.summary.bars - result.summary.history_bars == BARS_RUN
    bot, backtest = _backtest_probas(minute_bars, journal, minute_model.artifact, tmp_path)
    assert len(bot) == BARS_RUN
    np.testing.assert_array_equal(bot, backtest)  # bit for bit: one path from bar to P(up)
    assert result.summary.orders["Completed"] >= 1, "the model should trade in 30 minutes"
    if live:
        held = Journal.read(journal)
        own = held.position()
        held.close()
        account = market.account
        assert own == pytest.approx(account.total("BTC") - 0.05, abs=1e-12)
        assert account.min_base_total >= 0.05 - 1e-12  # the 0.05 BTC it found were never sold
        assert len(set(market.order_requests)) == len(market.order_requests)


def test_a_partial_fill_is_the_position(market, minute_model, tmp_path):
    market.fail(Fault(200, "", partial=0.4, path=ORDER))  # the first order fills 40%, expires
    journal = tmp_path / "bot.sqlite"
    result = run_bot(_config(market, journal, minute_model.models_dir, live=True),
                     minute_model.artifact)
    assert result.summary.orders["Expired"] == 1
    first = market.account.orders[1]
    assert float(first["executedQty"]) == pytest.approx(0.4 * float(first["origQty"]),
                                                        abs=1e-5)
    held = Journal.read(journal)
    assert held.position() == pytest.approx(market.account.total("BTC") - 0.05, abs=1e-12)
    held.close()


def test_orders_below_the_market_minimum_are_refused_not_sent(minute_bars, minute_model,
                                                              tmp_path):
    with simulator(minute_bars, balances={"USDT": 4.0}) as sim:  # 95% of 4 USDT < 5 minimum
        journal = tmp_path / "bot.sqlite"
        result = run_bot(_config(sim, journal, minute_model.models_dir, live=True),
                         minute_model.artifact)
        assert sim.order_requests == []
    assert result.summary.orders["Rejected"] >= 1
    held = Journal.read(journal)
    reasons = [e[3]["reason"] for e in held.events("refused")]
    held.close()
    assert reasons and all("minimum" in r for r in reasons)


def _second_model(minute_bars, models_dir, seed: int):
    dataset = describe(minute_bars.iloc[:TRAIN_BARS], "sample:btcperp-1m", "BTC/USDT", "1m")
    config = TrainConfig(label=FAST.label, params=CatBoostParams(iterations=30, depth=3,
                                                                    early_stopping_rounds=0,
                                                                    seed=seed), folds=2)
    result = train(dataset, FeatureSpec.default(), config)
    return save_artifact(models_dir, "btc1m-next", result.model,
                         {**result.manifest, "version": f"v{seed}"})


def test_hot_swap_within_one_bar_and_refusals_keep_the_old_model(minute_bars, minute_model,
                                                                 tmp_path):
    models_dir = tmp_path / "models"
    current = minute_model.artifact
    save_artifact(models_dir, current.name, current.model,
                  {k: v for k, v in current.manifest.to_dict().items()
                   if k not in ("schema_version", "name", "created", "libraries",
                                "model_file", "model_sha256")})
    promote(models_dir, ModelRef(current.name, current.version))
    compatible = _second_model(minute_bars, models_dir, seed=7)
    hourly = train(sample_dataset("btcusd-1h"), FeatureSpec.default(),
                   TrainConfig(label=LabelSpec(horizon=4),
                               params=CatBoostParams(iterations=10, depth=2), folds=2))
    wrong = save_artifact(models_dir, "btc1h", hourly.model, hourly.manifest)
    plan = {5: ModelRef("btc1h", wrong.name), 10: ModelRef("btc1m-next", compatible.name)}
    seen = []

    def on_status(status) -> None:
        seen.append(status)
        if len(seen) in plan:  # promoted while the bot runs, between two bars
            promote(models_dir, plan[len(seen)])

    with simulator(minute_bars, balances={"USDT": 10_000.0}) as sim:
        result = run_bot(_config(sim, tmp_path / "bot.sqlite", models_dir, live=True),
                         current, on_status=on_status)
    models = [s.model for s in seen]
    old, new = f"{current.name}/{current.version}", f"btc1m-next/{compatible.name}"
    assert models[:10] == [old] * 10  # the hourly model was refused: the old one traded on
    assert models[10:] == [new] * (BARS_RUN - 10)  # the next bar after promotion is the new
    assert result.summary.swaps == 1 and result.summary.refused_models == 1
    held = Journal.read(tmp_path / "bot.sqlite")
    (refusal,) = [e[3] for e in held.events("model_refused")]
    (swap,) = [e[3] for e in held.events("model_swap")]
    held.close()
    assert "trained on '1h' bars" in refusal["reason"] and refusal["kept"] == old
    assert swap == {"old": old, "new": new, "warm_bars": 1000 + 10}


def test_until_ends_the_run_after_that_bar(market, minute_model, minute_bars, tmp_path):
    until = minute_bars.index[7010]
    result = run_bot(_config(market, tmp_path / "bot.sqlite", minute_model.models_dir,
                             live=False, max_bars=None, until=until), minute_model.artifact)
    assert result.summary.last_bar == until.tz_localize(None).isoformat()


def _bot_orders(sim) -> list[dict]:
    """The exchange's orders that carry a bot client id (``ml...``), oldest first."""
    with sim.state.lock:
        return [dict(o) for o in sim.account.orders.values()
                if o["clientOrderId"].startswith("ml")]


def _decision(client_id: str) -> str:
    """The decision a client id carries out: the id without its attempt number."""
    return client_id.rsplit("-", 1)[0]


def test_slow_answers_executed_late_never_execute_a_decision_twice(minute_bars, minute_model,
                                                                   tmp_path):
    # the 2nd and 4th order requests: the exchange sits on them past the client's timeout,
    # then executes them; the answer never reaches the bot in time
    late = dict(status=200, body="", delay=1.6, path=ORDER, method="POST", late=True)
    with simulator(minute_bars, speed=None, balances={"USDT": 10_000.0, "BTC": 0.05}) as sim:
        sim.fail(Fault(**late, after=1), Fault(**late, after=3))
        journal = tmp_path / "bot.sqlite"
        run_bot(_config(sim, journal, minute_model.models_dir, live=True, max_bars=120),
                minute_model.artifact)
        time.sleep(2.0)  # anything still in the exchange's hands has executed by now
        orders = _bot_orders(sim)
        with sim.state.lock:
            exchange_btc = sim.account.total("BTC")
            lowest_btc = sim.account.min_base_total
            trades = {str(t["id"]) for t in sim.account.trades}
    assert len(sim.order_requests) >= 4, "the run should place at least four orders"
    executed = [_decision(o["clientOrderId"]) for o in orders if float(o["executedQty"]) > 0]
    assert len(executed) == len(set(executed)), "a decision was executed twice"
    bought = sum(float(o["executedQty"]) for o in orders if o["side"] == "BUY")
    sold = sum(float(o["executedQty"]) for o in orders if o["side"] == "SELL")
    assert sold <= bought + 1e-12 and lowest_btc >= 0.05 - 1e-12
    held = Journal.read(journal)
    assert {f.trade_id for f in held.fills()} == trades
    assert held.position() == pytest.approx(exchange_btc - 0.05, abs=1e-12)
    held.close()

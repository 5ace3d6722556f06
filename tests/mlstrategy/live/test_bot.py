"""The bot end to end, in process: real ccxt -> simulator over HTTP -> live feed -> Cerebro.

Paper and live runs of 30 bars on an accelerated clock give, at every bar, exactly the P(up)
the backtest gives on the same bars; live fills reach the journal and the bot's position is the
exchange's; holdings the bot did not buy are never sold; a newly promoted model takes over
within one bar and a wrong one is refused while the old one keeps trading.
"""
from __future__ import annotations

import time
from dataclasses import replace

import numpy as np
import pytest

from datafeeds.bt.dates import num2ns
from execution.simulator import ORDER, Fault
from features_numba import FeatureSpec
from mlstrategy.backtest.report import run_backtest
from mlstrategy.backtest.runner import BacktestConfig, simulate
from mlstrategy.errors import ConfigError
from mlstrategy.live.journal import Journal
from mlstrategy.live.risk import RiskLimits
from mlstrategy.live.runner import BotConfig, run_bot
from mlstrategy.live.status import journal_status
from mlstrategy.models.catboost import CatBoostParams
from mlstrategy.registry.artifact import save_artifact
from mlstrategy.registry.production import ModelRef, promote
from mlstrategy.research.dataset import describe, sample_dataset
from mlstrategy.research.labels import LabelSpec
from mlstrategy.research.training import TrainConfig, train
from mlstrategy.trading.strategy_params import StrategyParams
from tests.mlstrategy.live.conftest import FAST, TRAIN_BARS, books_agree, simulator

BARS_RUN = 30


def _config(sim, journal, models_dir, *, live: bool, **overrides) -> BotConfig:
    settings = dict(mode="live" if live else "paper", exchange="binance", symbol="BTC/USDT",
                    timeframe="1m", journal=journal, models_dir=models_dir, api_url=sim.url,
                    exchange_broker=live, simulator_keys=True, max_bars=BARS_RUN,
                    poll_interval=0.01, rate_limit=False, timeout_ms=1_000, recv_window_ms=2_000)
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
    assert result.summary.orders["closed"] >= 1, "the model should trade in 30 minutes"
    if live:
        held = Journal.read(journal)
        own = held.position()
        held.close()
        account = market.account
        assert own == pytest.approx(account.total("BTC") - 0.05, abs=1e-12)
        assert account.lowest_total("BTC") >= 0.05 - 1e-12  # the 0.05 BTC it found were never sold
        assert len(set(market.order_requests)) == len(market.order_requests)


def test_a_partial_fill_is_the_position(market, minute_model, tmp_path):
    market.fail(Fault(200, "", partial=0.4, path=ORDER))  # the first order fills 40%, expires
    journal = tmp_path / "bot.sqlite"
    result = run_bot(_config(market, journal, minute_model.models_dir, live=True),
                     minute_model.artifact)
    assert result.summary.orders["expired"] == 1
    first = market.account.order("BTCUSDT", 1)
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
    assert result.summary.orders["refused"] >= 1
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
    return save_artifact(models_dir, "btc1m", result.model,
                         {**result.manifest, "version": f"v{seed}"},
                         training_bars=result.training_bars)


def test_hot_swap_within_one_bar_and_refusals_keep_the_old_model(minute_bars, minute_model,
                                                                 tmp_path):
    models_dir = tmp_path / "models"
    current = minute_model.artifact
    save_artifact(models_dir, current.name, current.model,
                  {k: v for k, v in current.manifest.to_dict().items()
                   if k not in ("schema_version", "name", "created", "libraries",
                                "model_file", "model_sha256")},
                  training_bars=current.training_bars)
    promote(models_dir, ModelRef(current.name, current.version))
    compatible = _second_model(minute_bars, models_dir, seed=7)
    hourly = train(sample_dataset("btcusd-1h"), FeatureSpec.default(),
                   TrainConfig(label=LabelSpec(horizon=4),
                               params=CatBoostParams(iterations=10, depth=2), folds=2))
    other_market = save_artifact(models_dir, "btc1h", hourly.model, hourly.manifest,
                                 training_bars=hourly.training_bars)
    # the same hourly model filed under the bot's market name by mistake
    wrong = save_artifact(models_dir, current.name, hourly.model,
                          {**hourly.manifest, "version": "hourly"},
                          training_bars=hourly.training_bars)
    plan = {3: ModelRef("btc1h", other_market.name), 5: ModelRef(current.name, wrong.name),
            10: ModelRef(current.name, compatible.name)}
    seen = []

    def on_status(status) -> None:
        seen.append(status)
        if len(seen) in plan:  # promoted while the bot runs, between two bars
            promote(models_dir, plan[len(seen)])

    with simulator(minute_bars, balances={"USDT": 10_000.0}) as sim:
        result = run_bot(_config(sim, tmp_path / "bot.sqlite", models_dir, live=True),
                         current, on_status=on_status)
    models = [s.model for s in seen]
    old, new = current.ref, f"{current.name}/{compatible.name}"
    # another market's promotion is not the bot's business; the hourly model was refused
    assert models[:10] == [old] * 10
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
        books = books_agree(sim, journal, held=0.05)
    assert len(books.requests) >= 4, "the run should place at least four orders"


def test_a_late_execution_past_the_deadline_is_adopted_during_the_run(minute_bars,
                                                                      minute_model, tmp_path):
    # an exchange that breaks its receive-window promise: the first order executes 6 s after
    # it was sent, when the bot (deadline 4 s) has settled it absent and decided again (30%
    # of the account a trade: the cash is there for both buys)
    with simulator(minute_bars, speed=None, balances={"USDT": 10_000.0, "BTC": 0.05}) as sim:
        sim.honour_recv_window = False
        sim.fail(Fault(200, "", delay=6.0, path=ORDER, method="POST", late=True))
        journal = tmp_path / "bot.sqlite"
        result = run_bot(_config(sim, journal, minute_model.models_dir, live=True,
                                 max_bars=600,
                                 strategy=StrategyParams(fraction=0.3)), minute_model.artifact)
        books = books_agree(sim, journal, held=0.05)
    held = Journal.read(journal)
    (late,) = [e[3] for e in held.events("late_execution")]
    held.close()
    assert late["was"] == "absent" and late["client_id"] == books.requests[0]
    assert result.summary.fills == len(books.trades)


def test_a_kill_switch_tripped_today_holds_after_a_restart(minute_bars, minute_model,
                                                           tmp_path):
    journal = tmp_path / "bot.sqlite"
    limits = RiskLimits(max_daily_loss=1.0)  # one round trip's fees trip it
    with simulator(minute_bars, speed=None, balances={"USDT": 10_000.0}) as sim:
        run_bot(_config(sim, journal, minute_model.models_dir, live=True, max_bars=100,
                        limits=limits), minute_model.artifact)
        held = Journal.read(journal)
        assert held.events("kill_switch"), "the first run should trip the kill switch"
        held.close()
        before = len(sim.order_requests)
        again = run_bot(_config(sim, journal, minute_model.models_dir, live=True,
                                max_bars=100, limits=limits), minute_model.artifact)
        sent_again = sim.order_requests[before:]
    assert again.summary.first_bar[:10] == again.summary.last_bar[:10]  # the same UTC day
    assert again.summary.blocked["kill switch: daily loss limit reached"] >= 1
    assert not [c for c in sent_again if "-enter-" in c]  # exits only
    assert any(line.startswith("kill switch tripped on UTC day 2022-01-05")
               for line in journal_status(journal))


def test_orders_per_minute_are_counted_on_the_wall_clock(minute_bars, minute_model, tmp_path):
    with simulator(minute_bars, speed=None, balances={"USDT": 10_000.0}) as sim:
        result = run_bot(_config(sim, tmp_path / "bot.sqlite", minute_model.models_dir,
                                 live=True, max_bars=150,
                                 limits=RiskLimits(max_orders_per_minute=1)),
                         minute_model.artifact)  # 150 bars in a few seconds
    assert len(sim.order_requests) == 1
    assert result.summary.blocked["1 orders sent in the last minute"] >= 1


def test_an_order_on_the_last_bar_is_in_the_summary(minute_bars, minute_model, tmp_path):
    with simulator(minute_bars, speed=None, balances={"USDT": 10_000.0}) as sim:
        probe = run_bot(_config(sim, tmp_path / "probe.sqlite", minute_model.models_dir,
                                live=True, max_bars=60), minute_model.artifact)
    assert probe.summary.orders["closed"] >= 1
    held = Journal.read(tmp_path / "probe.sqlite")
    actions = held.signals().query("action != 'history'").action.tolist()
    held.close()
    first_order = next(i for i, a in enumerate(actions) if a.startswith("enter"))
    with simulator(minute_bars, speed=None, balances={"USDT": 10_000.0}) as sim:
        journal = tmp_path / "bot.sqlite"
        result = run_bot(_config(sim, journal, minute_model.models_dir, live=True,
                                 max_bars=first_order + 1), minute_model.artifact)
        books = books_agree(sim, journal, held=0.0)
    s = result.summary
    assert dict(s.orders) == {"closed": 1} and s.fills == 1 and s.sold == 0
    assert s.position == pytest.approx(books.base_total) and s.position > 0
    assert s.bought == pytest.approx(s.position)


def test_on_mismatch_continue_buys_nothing_and_sells_only_what_is_provably_its_own(
        minute_bars, minute_model, tmp_path):
    with simulator(minute_bars, speed=None, balances={"USDT": 10_000.0, "BTC": 0.05}) as sim:
        after = []

        def sell_behind_the_bots_back(order: dict) -> None:
            if after or order["side"] != "BUY":
                return
            amount = 0.05 + float(order["executedQty"]) / 2
            price = sim.state.candles(sim.state.interval).price(sim.state.now_ms())
            sim.account.place({"side": "SELL", "type": "MARKET", "quantity": f"{amount:.5f}",
                               "newClientOrderId": "web_manual_1"}, sim.state.symbol, price,
                              sim.state.now_ms())
            after.append(len(sim.account.orders))

        sim.on_booked = sell_behind_the_bots_back
        result = run_bot(_config(sim, tmp_path / "bot.sqlite", minute_model.models_dir,
                                 live=True, max_bars=200, on_mismatch="continue"),
                         minute_model.artifact)
        with sim.state.lock:
            later = [o for o in sim.account.orders.values() if o["orderId"] > after[0]]
            left = sim.account.total("BTC")
    assert result.summary.mismatch is not None
    assert result.summary.bars - result.summary.history_bars == 200  # it went on
    assert all(o["side"] == "SELL" for o in later)  # no buy once the coins were in doubt
    assert left >= 0.05 - 1e-9  # what the account held before the bot is still there


BRACKETS = StrategyParams(fraction=0.5, stop_loss=0.0008, take_profit=0.0015, cooldown=1,
                          max_bars_held=6, cash=20_000.0, slippage=0.0002)


def test_one_strategy_params_give_the_backtest_and_the_bots_orders(market, minute_model,
                                                                    minute_bars, tmp_path):
    """The same StrategyParams, stop-loss and take-profit included, through a paper bot on
    the simulated exchange and through `backtest` on the bars the bot saw: the same fills."""
    journal = tmp_path / "bot.sqlite"
    run_bot(_config(market, journal, minute_model.models_dir, live=False, max_bars=90,
                    strategy=BRACKETS), minute_model.artifact)
    held = Journal.read(journal)
    bars, signals, fills = held.bars(), held.signals(), held.fills()
    held.close()
    traded = int((signals.action != "history").sum())
    first = int(minute_bars.index.searchsorted(bars.index[0]))
    same = describe(minute_bars.iloc[first:first + len(bars)], "bot bars", "BTC/USDT", "1m")
    sim = simulate(same, minute_model.artifact, BacktestConfig(
        start=len(bars) - traded, plot=False, strategy=BRACKETS))
    backtest = [(num2ns(e["time"]) // 1_000_000, e["size"], e["price"])
                for e in sim.strategy.executions]
    bot = [(f.time_ms, f.base_delta, f.price) for f in fills]
    opens = dict(zip(same.bars.index.as_unit("ms").asi8.tolist(), same.bars["open"], strict=True))
    slip = BRACKETS.slippage  # a market order fills at the open, slipped; a bracket elsewhere
    brackets = [t for t, size, price in backtest
                if not np.isclose(price, opens[t] * (1 + slip if size > 0 else 1 - slip),
                                  rtol=1e-12)]
    assert len(backtest) >= 6 and brackets, "stops or targets should fill in 90 minutes"
    assert bot == backtest


def test_the_live_broker_refuses_shorts_on_spot(market, minute_model, tmp_path):
    with pytest.raises(ConfigError, match="--allow-short"):
        run_bot(_config(market, tmp_path / "bot.sqlite", minute_model.models_dir,
                        live=True, strategy=StrategyParams(allow_short=True)),
                minute_model.artifact)
    assert market.order_requests == []


def test_stops_and_take_profits_rest_on_the_exchange_and_exit_as_in_the_backtest(
        market, minute_model, minute_bars, tmp_path):
    """The same brackets through the live broker: after each entry fills, its stop and
    take-profit rest on the exchange as one OCO list; the leg the price reaches is the exit,
    on the bar and at the price the backtest of the same bars has it."""
    params = replace(BRACKETS, slippage=0.0)  # the exchange fills at its price
    journal = tmp_path / "live.sqlite"
    result = run_bot(_config(market, journal, minute_model.models_dir, live=True, max_bars=90,
                             strategy=params, limits=RiskLimits(max_orders_per_minute=None)),
                     minute_model.artifact)
    books = books_agree(market, journal, 0.05)
    held = Journal.read(journal)
    bars, signals, fills = held.bars(), held.signals(), held.fills()
    kinds = {o.client_id: o.kind for o in held.orders()}
    held.close()
    with market.state.lock:
        lists = list(market.account.lists.values())
    assert lists and all(len(lst["orders"]) == 2 for lst in lists)  # one OCO per entry
    assert result.closing.mismatch is None and books.sold <= books.bought
    traded = int((signals.action != "history").sum())
    first = int(minute_bars.index.searchsorted(bars.index[0]))
    same = describe(minute_bars.iloc[first:first + len(bars)], "bot bars", "BTC/USDT", "1m")
    sim = simulate(same, minute_model.artifact, BacktestConfig(
        start=len(bars) - traded, plot=False, strategy=params))
    backtest = [(num2ns(e["time"]) // 1_000_000, e["size"] > 0, e["price"])
                for e in sim.strategy.executions]
    bot = [(f.time_ms, f.side == "buy", f.price) for f in fills]
    protective = [f for f in fills if kinds[f.client_id] in ("stop", "take")]
    print(f"{len(bot)} fills as the backtest's, {len(protective)} by a resting stop or "
          "take-profit")
    assert protective, "a stop or a take-profit should fill on the exchange in 90 minutes"
    assert [(t, buy) for t, buy, _ in bot] == [(t, buy) for t, buy, _ in backtest]
    np.testing.assert_allclose([p for *_, p in bot], [p for *_, p in backtest], rtol=1e-6)


def test_a_replay_has_no_wall_clock_order_limit_unless_asked(minute_bars, minute_model,
                                                              tmp_path):
    """A replay serves 150 minutes in about a second: the default limit of 6 orders a
    wall-clock minute would block most entries; it applies only when given."""
    from click.testing import CliRunner

    from mlstrategy.cli import cli

    path = tmp_path / "minutes.csv"
    minute_bars.iloc[:7200].to_csv(path, index_label="datetime")
    args = ["bot", "replay", "--data", str(path), "--symbol", "BTC/USDT", "--timeframe", "1m",
            "--model", minute_model.artifact.ref, "--models-dir",
            str(minute_model.models_dir), "--start", "7000", "--max-bars", "150", "--quiet"]
    runs = {}
    for name, extra in (("default", []), ("given", ["--max-orders-per-minute", "1"])):
        result = CliRunner().invoke(cli, [*args, *extra, "--journal", str(tmp_path / name)])
        assert result.exit_code == 0, result.output
        runs[name] = result.output
    assert "blocked none" in runs["default"] and "orders {'closed'" in runs["default"]
    assert "orders sent in the last minute" in runs["given"]


def test_a_stop_that_fills_while_the_bot_is_down_is_its_exit_at_restart(market, minute_model,
                                                                        tmp_path):
    """The bot stops while its position's stop and take-profit rest on the exchange (a clean
    stop keeps them: they guard the position); time passes, one leg fills; the restarted bot
    books that fill as the position's exit and sends nothing for it again."""
    params = replace(BRACKETS, slippage=0.0, max_bars_held=None)
    journal = tmp_path / "live.sqlite"
    config = _config(market, journal, minute_model.models_dir, live=True, max_bars=1,
                     strategy=params, limits=RiskLimits(max_orders_per_minute=None))
    for _ in range(60):  # bar by bar until the bot stops holding a protected position
        run_bot(config, minute_model.artifact)
        with market.state.lock:
            resting = [lst for lst in market.account.lists.values()
                       if lst["listOrderStatus"] == "EXECUTING"]
        if resting:
            break
    assert resting, "the bot should enter within 60 minutes"
    legs = [leg["clientOrderId"] for leg in resting[0]["orders"]]
    held = Journal.read(journal)
    assert held.position() > 0 and {o.state for o in held.orders()
                                    if o.client_id in legs} == {"open"}
    held.close()
    market.state.clock.step_to(market.state.now_ms() + 60 * 60_000)  # an hour while it is down
    again = run_bot(config, minute_model.artifact)
    assert again.reconciliation.resolved >= 2  # both legs looked up
    held = Journal.read(journal)
    states = {o.client_id: o.state for o in held.orders() if o.client_id in legs}
    exits = [f for f in held.fills() if f.client_id in legs]
    held.close()
    assert sorted(states.values()) in (["closed", "expired"],), states
    assert len(exits) >= 1 and all(f.side == "sell" for f in exits)
    books = books_agree(market, journal, 0.05)
    assert books.requests.count(legs[0]) == books.requests.count(legs[1]) == 1

"""Notifications, delivered to a webhook on 127.0.0.1 over real HTTP.

What the journal records is what is told: every kind reaches the sink once (a fill written
twice is told once), each UTC day ends with its summary, an error logged anywhere in the bot is
told. A sink that fails ten times, then recovers, gets everything in order, and the bot trades
exactly the bars it trades with a healthy sink.
"""
from __future__ import annotations

import logging

import pytest

from execution.orders import REFUSED, REJECTED, Fill, OrderIntent
from mlstrategy.live.controls import CONTROL
from mlstrategy.live.journal import Journal
from mlstrategy.live.notify import KINDS, ErrorsToNotifier, Notifier, payload
from mlstrategy.live.operator import Operator
from mlstrategy.live.risk import DAY_START, KILL_SWITCH
from mlstrategy.live.runner import BotConfig, run_bot
from tests.mlstrategy.live.conftest import Sink, simulator

FAST_RETRY = (0.01, 0.05)


def test_every_kind_is_told_once(tmp_path):
    sink = Sink()
    notifier = Notifier([sink.url], backoff_s=FAST_RETRY)
    journal = Journal.open(tmp_path / "bot.sqlite", {"mode": "live", "exchange": "binance",
                                                     "symbol": "BTC/USDT", "timeframe": "1m"})
    errors = ErrorsToNotifier(notifier)
    logging.getLogger().addHandler(errors)
    try:
        journal.start_session("btc1m/1")
        journal.listen(notifier.on_journal)
        day = 20_000
        journal.event(DAY_START, day=day, start_equity=1_000.0)
        journal.order_attempt(OrderIntent("ml-x-enter", "buy", 0.01), "ml-x-enter-0", 0)
        fill = Fill("t1", "ml-x-enter-0", day * 86_400_000, "buy", 0.01, 60_000.0, 0.6,
                    "USDT", 0.01, -600.6)
        assert journal.fill(fill) and not journal.fill(fill)  # the second is no news
        journal.order_attempt(OrderIntent("ml-y-exit", "sell", 0.01), "ml-y-exit-0", 0)
        journal.order_state("ml-y-exit-0", REJECTED, reason="-2010 insufficient balance")
        journal.event(REFUSED, key="ml-z-enter", reason="below the market's minimum cost")
        journal.event(KILL_SWITCH, day=day, loss=60.0, limit=50.0)
        journal.event("position_mismatch", reason="the account holds 0.01 BTC less")
        journal.event("model_swap", old="btc1m/1", new="btc1m/2", warm_bars=500)
        journal.event("model_refused", model="btc1m/3", reason="other symbol", kept="btc1m/2")
        journal.event(CONTROL, action="pause", source="api 127.0.0.1")
        journal.event("drift", bar_ms=0, breaches=["features"], new=["features"],
                      action="rollback", message="btc1m/2 over 500 bars: PSI median 0.9",
                      figures={})
        journal.event("drift_rollback", bar_ms=0, old="btc1m/2", new="btc1m/1")
        journal.event("drift_cleared", bar_ms=60_000, model="btc1m/1")
        logging.getLogger("execution.broker").error("the exchange answered garbage")
        journal.event("feed", status="DELAYED")  # not worth a message
        journal.event(DAY_START, day=day + 1, start_equity=950.0)
    finally:
        logging.getLogger().removeHandler(errors)
        journal.close()
        notifier.close()
        sink.close()
    kinds = sink.kinds()
    assert sorted(kinds) == sorted(KINDS), kinds
    summary = next(b for b in sink.bodies if b["kind"] == "daily_summary")["detail"]
    assert summary == {"day": "2024-10-04", "start_equity": 1_000.0, "end_equity": 950.0,
                       "change_pct": pytest.approx(-5.0), "fills": 1, "rejections": 2}
    fill_text = next(b for b in sink.bodies if b["kind"] == "fill")["text"]
    assert fill_text == "filled: buy 0.01 at 60,000 (fee 0.6 USDT)"
    drift_text = next(b for b in sink.bodies if b["kind"] == "drift")["text"]
    assert drift_text == "DRIFT (features): btc1m/2 over 500 bars: PSI median 0.9; on drift: " \
                         "rollback"


def test_chat_formats_carry_one_line():
    detail = {"old": "a/1", "new": "a/2", "warm_bars": 10}
    assert payload("model_swap", "btc", detail, "slack", "bot x") == \
        {"text": "bot x: [btc] model swapped: a/1 -> a/2"}
    assert payload("model_swap", "btc", detail, "discord", "bot x") == \
        {"content": "bot x: [btc] model swapped: a/1 -> a/2"}
    assert set(payload("model_swap", "", detail, "json", "bot x")) == \
        {"bot", "kind", "market", "time", "text", "detail"}


def _run(minute_bars, minute_model, tmp_path, name: str, sink: Sink):
    """A live bot of 40 bars on a stepped clock, telling ``sink``; its journal's bars and
    signals."""
    with simulator(minute_bars, speed=None, balances={"USDT": 10_000.0}) as sim:
        config = BotConfig(
            mode="live", exchange="binance", symbol="BTC/USDT", timeframe="1m",
            journal=tmp_path / f"{name}.sqlite", models_dir=minute_model.models_dir,
            api_url=sim.url, exchange_broker=True, simulator_keys=True, max_bars=40,
            poll_interval=0.01, rate_limit=False, timeout_ms=1_000, recv_window_ms=2_000,
            operator=Operator(notify=(sink.url,), notify_backoff_s=FAST_RETRY))
        run_bot(config, minute_model.artifact)
    journal = Journal.read(config.journal)
    try:
        return journal.bars(), journal.signals()[["time_ms", "proba", "action", "position"]]
    finally:
        journal.close()


def test_a_sink_down_for_ten_posts_gets_everything_and_trading_is_unchanged(
        minute_bars, minute_model, tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="mlstrategy.live.notify")
    healthy, flaky = Sink(), Sink(fail_first=10)
    try:
        bars, signals = _run(minute_bars, minute_model, tmp_path, "healthy", healthy)
        bars_flaky, signals_flaky = _run(minute_bars, minute_model, tmp_path, "flaky", flaky)
    finally:
        healthy.close()
        flaky.close()
    assert bars.equals(bars_flaky) and signals.equals(signals_flaky)
    assert flaky.refused == 10
    told = [(b["kind"], b["text"]) for b in healthy.bodies]
    assert [k for k, _ in told].count("fill") >= 2, "the bot should trade in 40 minutes"
    assert [(b["kind"], b["text"]) for b in flaky.bodies] == told  # all, in order, once
    down = [r for r in caplog.records if r.name == "mlstrategy.live.notify"]
    assert [r.levelname for r in down] == ["WARNING", "INFO"]  # failing, back: told once
    assert "/hook" not in caplog.text  # a webhook's path may hold its secret

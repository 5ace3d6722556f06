"""Two perpetuals as a user runs them: ``python trading_bot.py live --config bot.toml`` with
``binanceusdm`` markets, against the simulator's ``/fapi`` on an accelerated clock.

Each step of a protected position, the bot killed there with SIGKILL and restarted on the same
journal: the entry pending, the stop being placed, the stop triggering while the bot is down;
and chaos across both markets. Every run ends with ``futures_books_agree``: no client id sent
twice, no decision executed twice, the journal's fills and position the exchange's, the
position the bot did not open untouched.
"""
from __future__ import annotations

import time

import pytest

from execution.sim_fapi import ALGO_ORDER, FAPI_ORDER
from execution.sim_futures import FuturesAccount
from execution.simulator import Fault
from mlstrategy.live.journal import Journal
from tests.mlstrategy.live.conftest import eth_bars, simulator
from tests.mlstrategy.live.test_bot_process import (
    KEY,
    SEEDS,
    SLOW,
    UNTHROTTLED,
    _killed_then_restarted,
    _portfolio_bot,
)
from tests.mlstrategy.live.test_futures import FOREIGN, futures_books_agree

PERPETUALS = """
[account]
quote = "USDT"
max_leverage = 3

[[market]]
name = "btc"
exchange = "binanceusdm"
symbol = "BTC/USDT:USDT"
model = "btc1m"
stake = 0.3
leverage = 2

[[market]]
name = "eth"
exchange = "binanceusdm"
symbol = "ETH/USDT:USDT"
model = "btc1m"
stake = 0.3
leverage = 3
"""
SHORTS = ("--allow-short", "--enter", "0.5", "--exit", "0.5", *UNTHROTTLED)  # both sides
STOPS = ("--stop-loss", "0.002", "--take-profit", "0.004")
MARKETS = (("btc", "BTCUSDT"), ("eth", "ETHUSDT"))


@pytest.fixture
def exchange(minute_bars):
    """The two perpetuals on an accelerated clock, and someone else's short in a third."""
    account = FuturesAccount(20_000.0, funding_every_ms=600_000)
    with simulator(minute_bars, api_key=KEY, futures=account) as sim:
        sim.add_market(eth_bars(minute_bars), base="ETH", quote="USDT")
        sim.add_market(eth_bars(minute_bars) * 0.05, base="SOL", quote="USDT")
        now = sim.state.now_ms()
        account.place({"side": "SELL", "type": "MARKET", "quantity": "3.00000"}, FOREIGN,
                      sim.state.candles("1m", FOREIGN).price(now), now)
        yield sim


def _bot(tmp_path):
    toml = tmp_path / "bot.toml"
    toml.write_text(PERPETUALS)
    return _portfolio_bot(toml)


def _agree(sim, journal):
    time.sleep(SLOW + 0.2)  # a late execution still in the exchange's hands lands now
    return {name: futures_books_agree(sim, journal, name, symbol) for name, symbol in MARKETS}


@pytest.mark.parametrize("seed", SEEDS)
def test_perpetuals_under_faults_and_sigkill_keep_each_markets_books(seed, exchange,
                                                                     minute_model, tmp_path):
    journal = tmp_path / "futures.sqlite"
    chaos = exchange.chaos(0.10, seed, slow=SLOW, order_rate=0.30)
    second = _killed_then_restarted(exchange, journal, minute_model.models_dir, tmp_path,
                                    kill_on="booking", bars_after=60, bot=_bot(tmp_path),
                                    extra=(*SHORTS, *STOPS), path=FAPI_ORDER)
    books = _agree(exchange, journal)
    assert "summary of btc:" in second.stdout and "summary of eth:" in second.stdout
    with exchange.state.lock:
        algos = len(exchange.state.futures.algos)
    print(f"\nfutures seed {seed}: faults {dict(sorted(chaos.counts.items()))}; order "
          f"requests {len(exchange.order_requests)}, executed BTC {len(books['btc'].executed)}"
          f" ETH {len(books['eth'].executed)}, fills BTC {len(books['btc'].trades)} ETH "
          f"{len(books['eth'].trades)}, stops and take-profits {algos}")


@pytest.mark.parametrize("moment", ["request", "booking"])
def test_sigkill_while_a_stop_is_being_placed_then_restart(moment, exchange, minute_model,
                                                           tmp_path):
    """Killed as the exchange receives (or books) the first stop: the restart finds it by
    client id and keeps it; none is sent twice."""
    journal = tmp_path / "futures.sqlite"
    second = _killed_then_restarted(exchange, journal, minute_model.models_dir, tmp_path,
                                    kill_on=moment, bars_after=20, bot=_bot(tmp_path),
                                    extra=(*SHORTS, *STOPS), path=ALGO_ORDER)
    _agree(exchange, journal)
    with exchange.state.lock:
        first = list(exchange.state.futures.algos.values())[0]["clientAlgoId"]
    assert exchange.order_requests.count(first) == 1, second.stdout[-2000:]
    held = Journal.read(journal)
    (state,) = [o.state for o in held.for_market("btc").orders() + held.for_market(
        "eth").orders() if o.client_id == first]
    held.close()
    assert state != "absent"


def test_sigkill_while_an_entry_is_pending_then_restart(exchange, minute_model, tmp_path):
    """The first entry booked, its answer lost, the bot killed before it asked again: the
    restart adopts it (and protects it), it is never sent again."""
    journal = tmp_path / "futures.sqlite"
    exchange.fail(Fault(0, path=FAPI_ORDER, method="POST", book=True))
    _killed_then_restarted(exchange, journal, minute_model.models_dir, tmp_path,
                           kill_on="request", bars_after=20, bot=_bot(tmp_path),
                           extra=(*SHORTS, *STOPS), path=FAPI_ORDER)
    books = _agree(exchange, journal)
    first = exchange.order_requests[0]
    assert exchange.order_requests.count(first) == 1
    assert sum(b.executed.count(first.rsplit("-", 1)[0]) for b in books.values()) == 1


def test_a_stop_triggered_while_the_bot_is_down_is_its_exit(exchange, minute_model,
                                                            tmp_path):
    """Killed once a stop rests that the recorded prices reach within two hours (a stop
    the market never reaches again proves nothing); the clock runs on until that stop
    triggers; the restart books the stop's execution as the position's exit."""
    journal = tmp_path / "futures.sqlite"
    stop_only = ("--stop-loss", "0.001")
    account = exchange.state.futures
    triggered = []

    def wait_for_the_stop() -> None:  # the bot is down: the exchange goes on
        deadline = time.monotonic() + 150  # the rest of the bars at 600x
        while time.monotonic() < deadline:
            with exchange.state.lock:
                account.advance(exchange.state.markets, "1m", exchange.state.now_ms())
                done = [a for a in account.algos.values() if a["actualOrderId"]]
            if done:
                triggered.extend(done)
                return
            time.sleep(0.05)

    def soon_triggered(booked: dict) -> bool:  # a stop the recorded path reaches soon
        now = exchange.state.now_ms()  # (called under the exchange's lock)
        candles = exchange.state.markets[booked["symbol"]].candles("1m")
        price = float(booked["triggerPrice"])
        reach = {"below": price} if booked["side"] == "SELL" else {"above": price}
        return candles.first_touch(now, now + 120 * 60_000, **reach) is not None

    _killed_then_restarted(exchange, journal, minute_model.models_dir, tmp_path,
                           kill_on="booking", bars_after=5, bot=_bot(tmp_path),
                           extra=(*SHORTS, *stop_only), path=ALGO_ORDER,
                           between=wait_for_the_stop, chosen=soon_triggered)
    assert triggered, "the stop should trigger while the bot is down"
    _agree(exchange, journal)
    stop = triggered[0]
    held = Journal.read(journal)
    market = "btc" if stop["symbol"] == "BTCUSDT" else "eth"
    record = next(o for o in held.for_market(market).orders()
                  if o.client_id == stop["clientAlgoId"])
    fills = [f for f in held.for_market(market).fills() if f.client_id == record.client_id]
    held.close()
    assert record.state == "closed" and record.exchange_id == stop["actualOrderId"]
    assert fills and sum(f.amount for f in fills) == pytest.approx(float(stop["quantity"]))

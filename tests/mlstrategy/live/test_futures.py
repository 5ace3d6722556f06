"""Perpetual futures, in process: real ccxt ``binanceusdm`` -> the simulator's ``/fapi`` over
HTTP -> one Cerebro trading two perpetuals, long and short, with stops on the exchange.

The markets serve real bars (the BTC sample, and the ETH-like series of ``eth_bars``). The
account also holds a position the bot never opened, in a third perpetual: it must never be
touched. What every run must end with is ``futures_books_agree``.
"""
from __future__ import annotations

import threading
from dataclasses import dataclass, replace

import pytest

from execution.broker import RESIZED
from execution.sim_book import SimClock
from execution.sim_fapi import FAPI_ORDER
from execution.sim_futures import FuturesAccount
from execution.simulator import ExchangeSimulator, Fault
from mlstrategy.errors import ConfigError, PositionMismatch
from mlstrategy.live.journal import Journal
from mlstrategy.live.risk import RiskLimits
from mlstrategy.live.runner import BotConfig, MarketConfig, run_portfolio
from mlstrategy.live.status import journal_status
from mlstrategy.trading.strategy_params import StrategyParams
from tests.mlstrategy.live.conftest import FIRST_TRADED, decision, eth_bars

BARS_RUN = 40
WALLET = 20_000.0
FOREIGN = "SOLUSDT"  # the account's own position, opened before the bot: never touched
# both sides, stops and take-profits; the model's thresholds, eased so both sides trade
SHORTS = StrategyParams(allow_short=True, stop_loss=0.003, take_profit=0.004, enter=0.5,
                        exit=0.5)
UNLIMITED = RiskLimits(max_orders_per_minute=None)
MARKETS = (("btc", "BTC/USDT:USDT"), ("eth", "ETH/USDT:USDT"))


@pytest.fixture
def perpetuals(minute_bars):
    """Two perpetuals the bot trades and a third holding someone else's short."""
    clock = SimClock(int(minute_bars.index[FIRST_TRADED].value // 1_000_000), None)
    account = FuturesAccount(WALLET, funding_every_ms=600_000)  # funding every 10 minutes
    with ExchangeSimulator(minute_bars, interval="1m", clock=clock, futures=account) as sim:
        sim.add_market(eth_bars(minute_bars), base="ETH", quote="USDT")
        sim.add_market(eth_bars(minute_bars) * 0.05, base="SOL", quote="USDT", awaited=False)
        now = clock.now_ms()
        account.place({"side": "SELL", "type": "MARKET", "quantity": "3.00000"}, FOREIGN,
                      sim.state.candles("1m", FOREIGN).price(now), now)
        yield sim


def _run(sim, journal, model, *, params: StrategyParams = SHORTS, leverage: int = 2,
         **overrides):
    settings = dict(mode="live", exchange="", symbol="", timeframe="", journal=journal,
                    models_dir=model.models_dir, exchange_broker=True, simulator_keys=True,
                    max_bars=BARS_RUN, poll_interval=0.0, rate_limit=False, timeout_ms=1_000,
                    recv_window_ms=2_000, limits=UNLIMITED, strategy=params,
                    background_polls=False)  # a stepped clock
    config = BotConfig(**{**settings, **overrides})
    markets = [MarketConfig(name, "binanceusdm", symbol, "1m", model.artifact, stake=0.3,
                            api_url=sim.url, leverage=leverage) for name, symbol in MARKETS]
    return run_portfolio(config, markets)


@dataclass(frozen=True)
class ContractBooks:
    """The exchange's side of the bot's run in one perpetual."""

    executed: list[str]  # the decision of each executed order (a triggered stop: its own)
    trades: set[str]
    position: float


def contract_books(sim: ExchangeSimulator, symbol: str) -> ContractBooks:
    """The bot's orders (client ids ``ml...``; a triggered conditional order's market order
    counts as the conditional order's) and their trades, and the exchange's position."""
    with sim.state.lock:
        account = sim.state.futures
        own = {o["orderId"]: o["clientOrderId"] for o in account.orders.values()
               if o["symbol"] == symbol and o["clientOrderId"].startswith("ml")}
        own.update({int(a["actualOrderId"]): a["clientAlgoId"] for a in account.algos.values()
                    if a["symbol"] == symbol and a["actualOrderId"]})
        executed = [decision(own[o["orderId"]]) for o in account.orders.values()
                    if o["symbol"] == symbol and o["orderId"] in own
                    and float(o["executedQty"]) > 0]
        trades = {str(t["id"]) for t in account.trades
                  if t["symbol"] == symbol and t["orderId"] in own}
        return ContractBooks(executed, trades, account.position(symbol).amount)


def futures_books_agree(sim: ExchangeSimulator, journal, market: str,
                        symbol: str) -> ContractBooks:
    """No client id sent twice, no decision executed twice, the journal's fills and position
    the exchange's, and the position the bot never opened as it was.

    Except for the fills of a stop or take-profit the bot left resting, journaled open: the
    exchange may execute one after the bot's closing reconciliation looked (the simulator
    moves its clock on any request, another market's closing included); the next run's
    reconciliation books it (``test_a_stop_triggered_while_the_bot_is_down_is_its_exit``)."""
    books = contract_books(sim, symbol)
    assert len(sim.order_requests) == len(set(sim.order_requests)), "a client id was sent twice"
    assert len(books.executed) == len(set(books.executed)), "a decision executed twice"
    reader = Journal.read(journal)
    try:
        kept = reader.for_market(market)
        journaled = {f.trade_id for f in kept.fills()}
        late = _left_resting_and_filled(sim, symbol, kept, books.trades - journaled)
        assert journaled == books.trades - set(late), _differences(sim, symbol, journaled,
                                                                   books.trades, kept)
        assert kept.position() + sum(late.values()) == pytest.approx(books.position, abs=1e-9)
    finally:
        reader.close()
    foreign = sim.state.futures.position(FOREIGN)
    assert foreign.amount == pytest.approx(-3.0), "a position the bot did not open moved"
    assert not any(r.query.get("symbol") == FOREIGN for r in sim.requests if r.method != "GET")
    return books


def _left_resting_and_filled(sim, symbol: str, kept, unjournaled: set[str]) -> dict[str, float]:
    """Of the exchange's trades the journal lacks, those of a stop or take-profit journaled
    open (left resting at the end): trade id -> signed amount."""
    resting = {r.client_id for r in kept.orders() if r.state == "open"}
    with sim.state.lock:
        account = sim.state.futures
        legs = {int(a["actualOrderId"]): a["clientAlgoId"] for a in account.algos.values()
                if a["symbol"] == symbol and a["actualOrderId"]}
        return {str(t["id"]): float(t["qty"]) * (1 if t["side"] == "BUY" else -1)
                for t in account.trades if t["symbol"] == symbol
                and str(t["id"]) in unjournaled and legs.get(t["orderId"]) in resting}


def _differences(sim, symbol: str, journaled: set[str], traded: set[str], kept) -> str:
    """Which trades the journal and the exchange disagree on, with their orders."""
    with sim.state.lock:
        account = sim.state.futures
        trades = {str(t["id"]): t for t in account.trades if t["symbol"] == symbol}
        orders = {t["orderId"]: account.orders[(symbol, t["orderId"])] for t in trades.values()}
        algos = {a["actualOrderId"]: a["clientAlgoId"] for a in account.algos.values()
                 if a["symbol"] == symbol}
    missing = [(i, trades[i]["orderId"], orders[trades[i]["orderId"]]["clientOrderId"],
                algos.get(str(trades[i]["orderId"]))) for i in sorted(traded - journaled)]
    records = [(r.client_id, r.state, r.exchange_id, r.filled) for r in kept.orders()]
    return (f"the journal's fills differ: exchange only {missing}, journal only "
            f"{sorted(journaled - traded)}; journal orders {records}")


def test_two_perpetuals_trade_long_and_short_with_stops_on_the_exchange(
        perpetuals, minute_model, tmp_path):
    journal = tmp_path / "futures.sqlite"
    results = _run(perpetuals, journal, minute_model)
    for name, symbol in MARKETS:
        assert results[name].closing.mismatch is None, name
        futures_books_agree(perpetuals, journal, name, symbol.replace("/", "")[:-5])
    account = perpetuals.state.futures
    sides = {o["side"] for o in account.orders.values() if o["clientOrderId"].startswith("ml")
             and not o["reduceOnly"]}
    assert sides == {"BUY", "SELL"}, "entries on both sides: long and short"
    triggered = [a for a in account.algos.values() if a["actualOrderId"]]
    assert triggered and all(a["reduceOnly"] for a in account.algos.values())
    assert all(o["reduceOnly"] for o in account.orders.values()
               if o["clientOrderId"].startswith("ml") and "-exit-" in o["clientOrderId"])
    assert {p.leverage for s, p in account.positions.items() if s != FOREIGN} == {2}
    assert {p.margin_type for s, p in account.positions.items() if s != FOREIGN} == \
        {"ISOLATED"}
    reader = Journal.read(journal)
    paid = {name: reader.for_market(name).funding_total() for name, _ in MARKETS}
    reader.close()
    assert any(count for _, count in paid.values()), "funding was paid on open positions"
    income = {r["tranId"] for r in account.income if r["symbol"] in ("BTCUSDT", "ETHUSDT")}
    assert sum(count for _, count in paid.values()) == len(income)
    lines = journal_status(journal)
    assert any(line.startswith("funding ") for line in lines)
    # a restart on the same journal finds its stops and sends nothing twice
    again = _run(perpetuals, journal, minute_model, max_bars=10)
    assert all(r.reconciliation.mismatch is None for r in again.values())
    for name, symbol in MARKETS:
        futures_books_agree(perpetuals, journal, name, symbol.replace("/", "")[:-5])


def test_leverage_whose_liquidation_lies_near_opens_nothing(perpetuals, minute_model,
                                                            tmp_path):
    results = _run(perpetuals, tmp_path / "near.sqlite", minute_model, leverage=20,
                   max_bars=10)
    assert not [o for o in perpetuals.state.futures.orders.values()
                if o["clientOrderId"].startswith("ml")]
    refused = sum(r.summary.orders.get("refused", 0) for r in results.values())
    assert refused, "the entries are refused, with the reason journaled"


def test_a_position_the_bot_did_not_open_in_its_market_stops_it(perpetuals, minute_model,
                                                                tmp_path):
    account, now = perpetuals.state.futures, perpetuals.state.now_ms()
    account.place({"side": "BUY", "type": "MARKET", "quantity": "0.01000"}, "BTCUSDT",
                  perpetuals.state.candles("1m").price(now), now)
    with pytest.raises(PositionMismatch, match="did not open"):
        _run(perpetuals, tmp_path / "shared.sqlite", minute_model, max_bars=5)
    assert account.position("BTCUSDT").amount == pytest.approx(0.01)
    assert not [r for r in perpetuals.requests if r.method in ("POST", "DELETE")
                and r.path.endswith(("/order", "/algoOrder"))]


def test_shorts_on_a_spot_market_are_refused(minute_bars, minute_model, tmp_path):
    with ExchangeSimulator(minute_bars, interval="1m", balances={"USDT": 1000.0}) as sim:
        config = BotConfig(mode="live", exchange="binance", symbol="BTC/USDT", timeframe="1m",
                           journal=tmp_path / "spot.sqlite", models_dir=minute_model.models_dir,
                           exchange_broker=True, simulator_keys=True, rate_limit=False,
                           api_url=sim.url, strategy=StrategyParams(allow_short=True))
        with pytest.raises(ConfigError, match="perpetual"):
            run_portfolio(config, [MarketConfig("", "binance", "BTC/USDT", "1m",
                                                minute_model.artifact, api_url=sim.url)])


def test_a_late_execution_grows_the_position_and_its_stops_follow(minute_bars, minute_model,
                                                                 tmp_path):
    """The first entry executes only after the bot gave up on it (an exchange breaking its
    receive window): adopted on a later bar, it changes the position the legs of the
    entry since then rest for; they are cancelled and placed again for the position."""
    clock = SimClock(int(minute_bars.index[FIRST_TRADED].value // 1_000_000), 60.0)
    with ExchangeSimulator(minute_bars, interval="1m", clock=clock,
                           futures=FuturesAccount(WALLET)) as sim:
        sim.honour_recv_window = False
        release = threading.Event()  # the first entry executes once a later one is protected
        sim.fail(Fault(200, "", delay=60.0, path=FAPI_ORDER, method="POST", late=True,
                       release=release))
        sim.on_booked = lambda booked: "algoId" in booked and release.set()
        journal = tmp_path / "late.sqlite"
        config = BotConfig(mode="live", exchange="binanceusdm", symbol="BTC/USDT:USDT",
                           timeframe="1m", journal=journal, models_dir=minute_model.models_dir,
                           exchange_broker=True, simulator_keys=True, rate_limit=False,
                           api_url=sim.url, max_bars=12, poll_interval=0.05, timeout_ms=1_000,
                           recv_window_ms=1_000, limits=UNLIMITED,
                           strategy=replace(SHORTS, stop_loss=0.02, take_profit=0.04))
        run_portfolio(config, [MarketConfig("", "binanceusdm", "BTC/USDT:USDT", "1m",
                                            minute_model.artifact, api_url=sim.url,
                                            leverage=2)])
        with sim.state.lock:
            algos = {a["clientAlgoId"]: a for a in sim.state.futures.algos.values()}
    reader = Journal.read(journal)
    resized = reader.events(RESIZED)
    late = reader.events("late_execution")
    reader.close()
    assert late and resized, "the late execution is adopted and the legs follow it"
    event = resized[0][3]
    assert all(algos[leg]["algoStatus"] == "CANCELED" for leg in event["legs"])
    again = [a for a in algos.values() if a["createTime"] > max(
        algos[leg]["createTime"] for leg in event["legs"])]
    assert {a["orderType"] for a in again[:2]} == {"STOP_MARKET", "TAKE_PROFIT_MARKET"}
    assert all(float(a["quantity"]) == pytest.approx(event["position"]) for a in again[:2])

"""A real model trained on real 1-minute bars, and a simulated exchange serving the bars after.

The model learns on the embedded BTC perpetual sample's first 6,000 minutes; the bots trade
the minutes after, served by ``ExchangeSimulator`` over HTTP on 127.0.0.1 on an accelerated
clock (forming candle included), through real ccxt. ``books_agree`` holds what every live run
must end with, whatever went wrong on the way.
"""
from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from datafeeds import load_sample
from execution.sim_book import SimClock
from execution.sim_futures import FuturesAccount
from execution.simulator import ExchangeSimulator
from features_numba import FeatureSpec
from mlstrategy.live.journal import Journal
from mlstrategy.registry.artifact import Artifact, load_artifact, save_artifact
from mlstrategy.registry.production import ModelRef, promote
from mlstrategy.research.dataset import describe
from mlstrategy.research.training import train
from tests.mlstrategy.conftest import FAST

TRAIN_BARS = 6000
FIRST_TRADED = 7000  # the simulator's clock starts at this bar's open: bars before are history


@dataclass(frozen=True)
class MinuteModel:
    models_dir: Path
    artifact: Artifact


@pytest.fixture(scope="session")
def minute_bars():
    return load_sample("btcperp-1m")


@pytest.fixture(scope="session")
def minute_model(minute_bars, tmp_path_factory) -> MinuteModel:
    """Trained on minutes [0, 6000), promoted in its own models directory."""
    models_dir = tmp_path_factory.mktemp("minute_models")
    dataset = describe(minute_bars.iloc[:TRAIN_BARS], "sample:btcperp-1m", "BTC/USDT", "1m")
    result = train(dataset, FeatureSpec.default(), FAST)
    path = save_artifact(models_dir, "btc1m", result.model, result.manifest,
                         training_bars=result.training_bars)
    promote(models_dir, ModelRef("btc1m", path.name))
    return MinuteModel(models_dir, load_artifact(path))


def simulator(bars, *, speed: float | None = 600.0, start: int = FIRST_TRADED,
              balances: dict[str, float] | None = None, api_key: str | None = None,
              futures: FuturesAccount | None = None) -> ExchangeSimulator:
    """The bars served as binance BTCUSDT 1m (and its perpetual, with a ``futures``
    account), the clock starting at bar ``start``'s open."""
    clock = SimClock(int(bars.index[start].value // 1_000_000), speed)
    return ExchangeSimulator(bars, interval="1m", clock=clock, balances=balances,
                             api_key=api_key, futures=futures)


def eth_bars(bars):
    """A second market on the same clock: real bars (the sample's BTC minutes of 3,000
    minutes earlier, the sample holding one real 1-minute series) at an ETH-like price."""
    shift = 3000
    eth = bars.iloc[:len(bars) - shift] / [12.0, 12.0, 12.0, 12.0, 1.0]
    eth.index = bars.index[shift:]
    return eth


@pytest.fixture
def market(minute_bars) -> Iterator[ExchangeSimulator]:
    """A stepped clock: the next bar closes once the bot has read the last, so every bar is
    LIVE however slowly the bot runs (a cold Numba cache included)."""
    with simulator(minute_bars, speed=None, balances={"USDT": 10_000.0, "BTC": 0.05}) as sim:
        yield sim


@dataclass(frozen=True)
class Books:
    """The exchange's side of a bot's run: its orders (client ids ``ml...``) and their trades."""

    requests: list[str]  # client id of every order request that reached the exchange
    executed: list[str]  # the decision (client id less its attempt) of each executed order
    bought: float
    sold: float
    trades: set[str]  # trade ids of the bot's orders
    base_total: float
    lowest_base: float  # the lowest base balance the account ever had


def decision(client_id: str) -> str:
    """The decision a client id carries out: the id without its attempt number."""
    return client_id.rsplit("-", 1)[0]


def exchange_books(sim: ExchangeSimulator, base: str = "BTC", quote: str = "USDT") -> Books:
    """What the simulated exchange holds of the bot's orders in one market (read under its
    lock); the requests are every market's."""
    symbol = base + quote
    with sim.state.lock:
        account = sim.account
        orders = [o for o in account.orders.values()
                  if o["clientOrderId"].startswith("ml") and o["symbol"] == symbol]
        ids = {o["orderId"] for o in orders}
        executed = [o for o in orders if float(o["executedQty"]) > 0]
        return Books(list(sim.order_requests), [decision(o["clientOrderId"]) for o in executed],
                     sum(float(o["executedQty"]) for o in executed if o["side"] == "BUY"),
                     sum(float(o["executedQty"]) for o in executed if o["side"] == "SELL"),
                     {str(t["id"]) for t in account.trades
                      if t["orderId"] in ids and t["symbol"] == symbol},
                     account.total(base), account.lowest_total(base))


def books_agree(sim: ExchangeSimulator, journal: Path, held: float, market: str = "",
                base: str = "BTC") -> Books:
    """Assert what every live run must end with in a market; returns the exchange's books.

    No client id reached the exchange twice, no decision executed twice, the bot sold no more
    than it bought, the ``held`` coins the account had before were never touched, and the
    journal's fills and position are the exchange's.
    """
    books = exchange_books(sim, base)
    assert len(books.requests) == len(set(books.requests)), "a client id was sent twice"
    assert len(books.executed) == len(set(books.executed)), "a decision executed twice"
    assert books.sold <= books.bought + 1e-9, "the bot sold more than it bought"
    assert books.lowest_base >= held - 1e-9, "holdings the bot did not buy were sold"
    reader = Journal.read(journal)
    kept = reader.for_market(market)
    try:
        assert {f.trade_id for f in kept.fills()} == books.trades, "the journal's fills differ"
        assert kept.position() == pytest.approx(books.base_total - held, abs=1e-9)
    finally:
        reader.close()
    return books


def free_port() -> int:
    """A port free on 127.0.0.1 now (for a server the test starts next)."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Sink:
    """A webhook on 127.0.0.1 that records each JSON body it accepts; it answers 500 to the
    first ``fail_first`` posts."""

    def __init__(self, fail_first: int = 0) -> None:
        import json
        import threading
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        sink = self
        self.bodies: list[dict] = []
        self.refused = 0
        self.fail_first = fail_first
        self.lock = threading.Lock()

        class Handler(BaseHTTPRequestHandler):
            disable_nagle_algorithm = True

            def do_POST(self) -> None:  # noqa: N802 (http.server's name)
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                with sink.lock:
                    failing = sink.refused < sink.fail_first
                    if failing:
                        sink.refused += 1
                    else:
                        sink.bodies.append(json.loads(body))
                self.send_response(500 if failing else 204)
                self.end_headers()

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def kinds(self) -> list[str]:
        with self.lock:
            return [b["kind"] for b in self.bodies]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

"""The bot's bar-to-order time with its API idle, and under 100 requests/s from a local client.

Run: ``python -m pytest benchmarks/bench_bot_api.py --benchmark-only``. Each round is a live
bot (the exchange broker, real ccxt) trading 300 real minutes served by the local simulator on
a stepped clock: a bar closes as soon as the bot has read the last, so the time between two
bars' decisions is one bar cycle of poll -> streaming features -> P(up) -> decision -> order
over HTTP. A round's time includes the start (warm-up history, reconciliation);
``extra_info`` has the bar cycle itself: its median and 95th percentile in ms over the rounds'
bars. Group ``bot bar to order``: baseline without the API beside the API serving a client that
asks for the status, the decisions and the equity curve 100 times a second from another
process (``extra_info["api_requests_per_s"]`` is the rate it got).
"""
from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from datafeeds import load_sample
from execution.sim_book import SimClock
from execution.simulator import ExchangeSimulator
from features_numba import FeatureSpec
from mlstrategy.live.api import ApiSettings
from mlstrategy.live.operator import Operator
from mlstrategy.live.runner import BotConfig, run_bot
from mlstrategy.models.catboost import CatBoostParams
from mlstrategy.registry.artifact import load_artifact, save_artifact
from mlstrategy.registry.production import ModelRef, promote
from mlstrategy.research.dataset import describe
from mlstrategy.research.training import TrainConfig, train

BARS = load_sample("btcperp-1m")
TRAIN, START, ROUND_BARS = 6_000, 7_000, 300
RATE = 100.0  # API requests per second


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    models_dir = tmp_path_factory.mktemp("models")
    result = train(describe(BARS.iloc[:TRAIN], "sample:btcperp-1m", "BTC/USDT", "1m"),
                   FeatureSpec.default(),
                   TrainConfig(params=CatBoostParams(iterations=60, depth=4), folds=2))
    path = save_artifact(models_dir, "btc1m", result.model, result.manifest,
                         training_bars=result.training_bars)
    promote(models_dir, ModelRef("btc1m", path.name))
    return models_dir, load_artifact(path)


# the local client: another process (an operator's browser or script is not in the bot's)
_CLIENT = """
import sys, time, httpx
url, rate = sys.argv[1], float(sys.argv[2])
pages = ("/api/status", "/api/decisions", "/api/equity")
with httpx.Client(timeout=5) as http:
    while True:  # wait for the API, which starts with the bot
        try:
            http.get(url + pages[0])
            break
        except httpx.HTTPError:
            time.sleep(0.01)
    start, n, ok = time.monotonic(), 0, 0
    try:
        while True:
            try:
                ok += http.get(url + pages[n % 3]).status_code == 200
            except httpx.HTTPError:
                pass
            n += 1
            time.sleep(max(start + n / rate - time.monotonic(), 0.0))
    except KeyboardInterrupt:
        print(ok / (time.monotonic() - start))
"""


@pytest.mark.parametrize("api", ["api off", "api on, 100 req/s"])
def test_bar_to_order(benchmark, model, api, tmp_path):
    models_dir, artifact = model
    rates: list[float] = []  # API requests answered a second, per round
    cycles: list[float] = []  # seconds between two bars' decisions

    def one_round(n: list[int]) -> None:
        clock = SimClock(int(BARS.index[START].value // 1_000_000), None)
        port = _free_port()
        journal = Path(tmp_path / f"bot-{n[0]}.sqlite")
        n[0] += 1
        with ExchangeSimulator(BARS, interval="1m", clock=clock,
                               balances={"USDT": 10_000.0}) as sim:
            config = BotConfig(
                mode="live", exchange="binance", symbol="BTC/USDT", timeframe="1m",
                journal=journal, models_dir=models_dir, api_url=sim.url,
                exchange_broker=True, simulator_keys=True, max_bars=ROUND_BARS,
                poll_interval=0.0, rate_limit=False, timeout_ms=2_000, recv_window_ms=2_000,
                operator=Operator(api=ApiSettings(port) if api != "api off" else None))
            client = None if api == "api off" else subprocess.Popen(
                [sys.executable, "-c", _CLIENT, f"http://127.0.0.1:{port}", str(RATE)],
                stdout=subprocess.PIPE, text=True)
            seen: list[float] = []
            run_bot(config, artifact, on_status=lambda status: seen.append(time.perf_counter()))
            cycles.extend(np.diff(seen))
            if client is not None:
                client.send_signal(signal.SIGINT)
                rates.append(float(client.communicate(timeout=30)[0] or 0.0))

    benchmark.group = "bot bar to order"
    benchmark.pedantic(one_round, args=([0],), rounds=3, iterations=1, warmup_rounds=1)
    benchmark.extra_info["bar_cycle_median_ms"] = round(float(np.median(cycles)) * 1e3, 3)
    benchmark.extra_info["bar_cycle_p95_ms"] = round(float(np.percentile(cycles, 95)) * 1e3, 3)
    benchmark.extra_info["api_requests_per_s"] = round(float(np.mean(rates)), 1) \
        if rates else 0.0


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]

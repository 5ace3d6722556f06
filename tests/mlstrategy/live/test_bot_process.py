"""The bot as a user runs it: ``python trading_bot.py ...`` processes against the simulator.

The hard case of live trading: faults on about 10% of all requests (429, 500, 503, answers past
the client's timeout, dropped connections, garbled bodies, rejected orders, partial fills), and
the bot killed with SIGKILL right after the exchange booked one of its orders, before it saw
the answer. After a restart: no client order id reached the exchange twice, no fill is missing
from the journal, and the bot's position is the exchange's. Run with more seeds by setting
``MLSTRATEGY_CHAOS_SEEDS`` (e.g. 20); ``-s`` prints the counts of each seed.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from mlstrategy.live.journal import Journal
from tests.conftest import REPO_ROOT
from tests.mlstrategy.live.conftest import simulator

KEY, SECRET = "mls-test-key-7f3a9c", "mls-test-secret-e1b2d4c8"
SEEDS = range(int(os.environ.get("MLSTRATEGY_CHAOS_SEEDS", "4")))
HELD_BTC = 0.05  # on the account before the bot starts: never to be sold


def _bot(mode: str, url: str, journal: Path, models_dir: Path, *extra: str) -> list[str]:
    return [sys.executable, str(REPO_ROOT / "trading_bot.py"), mode, "--exchange", "binance",
            "--symbol", "BTC/USDT", "--timeframe", "1m", "--api-url", url, "--journal",
            str(journal), "--models-dir", str(models_dir), "--poll-interval", "0.01",
            "--timeout", "400", "--no-rate-limit", "--history", "300", *extra]


def _env() -> dict[str, str]:
    return {**os.environ, "MLSTRATEGY_API_KEY": KEY, "MLSTRATEGY_API_SECRET": SECRET}


@pytest.mark.parametrize("seed", SEEDS)
def test_faults_and_sigkill_after_submit_never_place_twice(seed, minute_bars, minute_model,
                                                           tmp_path):
    journal = tmp_path / "live.sqlite"
    live = ("--confirm-live", "--settle", "0.3")
    with simulator(minute_bars, balances={"USDT": 10_000.0, "BTC": HELD_BTC},
                   api_key=KEY) as sim:
        chaos = sim.chaos(0.10, seed, slow=0.6)
        killed = threading.Event()
        log = tmp_path / "first.log"
        with open(log, "w") as out:
            # up to 150 bars: the kill comes with the first order booked, whenever that is
            first = subprocess.Popen(_bot("live", sim.url, journal, minute_model.models_dir,
                                          "--max-bars", "150", *live),
                                     env=_env(), stdout=out, stderr=subprocess.STDOUT)

        def kill_on_booking(order: dict) -> None:  # the exchange acted; the answer is lost
            if not killed.is_set():
                os.kill(first.pid, signal.SIGKILL)
                killed.set()

        sim.on_booked = kill_on_booking
        first.wait(timeout=180)
        sim.on_booked = None
        assert killed.is_set() and first.returncode == -signal.SIGKILL, log.read_text()[-3000:]
        second = subprocess.run(_bot("live", sim.url, journal, minute_model.models_dir,
                                     "--max-bars", "15", *live),
                                env=_env(), capture_output=True, text=True, timeout=180)
        assert second.returncode == 0, second.stderr[-2000:]
        with sim.state.lock:
            requests = list(sim.order_requests)
            trades = {str(t["id"]) for t in sim.account.trades}
            exchange_btc = sim.account.total("BTC")
            lowest_btc = sim.account.min_base_total
            booked = len(sim.account.orders)
    held = Journal.read(journal)
    fills = {f.trade_id for f in held.fills()}
    position = held.position()
    states = [o.state for o in held.orders()]
    held.close()
    assert len(requests) == len(set(requests)), "a client order id reached the exchange twice"
    assert fills == trades, "a fill is missing from the journal (or one was invented)"
    assert position == pytest.approx(exchange_btc - HELD_BTC, abs=1e-12)
    assert lowest_btc >= HELD_BTC - 1e-12, "holdings the bot did not buy were sold"
    assert "reconciled at start" in second.stdout
    print(f"\nseed {seed}: faults {dict(sorted(chaos.counts.items()))}; order requests "
          f"{len(requests)}, booked {booked}, fills {len(fills)}, journal states "
          f"{ {s: states.count(s) for s in sorted(set(states))} }, position {position:.5f}")


def test_secrets_never_reach_any_output_log_or_journal(minute_bars, minute_model, tmp_path):
    journal = tmp_path / "live.sqlite"
    with simulator(minute_bars, balances={"USDT": 10_000.0}, api_key=KEY) as sim:
        sim.chaos(0.10, seed=99, slow=0.6)
        runs = [subprocess.run(_bot("live", sim.url, journal, minute_model.models_dir,
                                    "--max-bars", "15", "--confirm-live", "--settle", "0.3",
                                    *extra, "--debug"),
                               env=_env(), capture_output=True, text=True, timeout=180)
                for extra in ((), ("--log-json",))]
    status = subprocess.run([sys.executable, str(REPO_ROOT / "trading_bot.py"), "status",
                             "--journal", str(journal)], capture_output=True, text=True,
                            env=_env(), timeout=120)
    assert all(r.returncode == 0 for r in runs), runs[-1].stderr[-2000:]
    outputs = [r.stdout + r.stderr for r in runs] + [status.stdout + status.stderr]
    stored = b"".join(p.read_bytes() for p in tmp_path.iterdir() if p.is_file())
    for secret in (KEY, SECRET):
        assert all(secret not in text for text in outputs)
        assert secret.encode() not in stored
    assert '"p_up"' in runs[1].stdout and "position" in status.stdout


def test_live_needs_confirmation_and_keys(minute_model, tmp_path):
    base = [sys.executable, str(REPO_ROOT / "trading_bot.py"), "live", "--models-dir",
            str(minute_model.models_dir), "--journal", str(tmp_path / "j.sqlite"),
            "--api-url", "http://127.0.0.1:9"]
    unconfirmed = subprocess.run(base, capture_output=True, text=True, env=_env(),
                                 timeout=120)
    no_keys_env = {k: v for k, v in os.environ.items() if not k.startswith("MLSTRATEGY_API")}
    no_keys = subprocess.run([*base, "--confirm-live"], capture_output=True, text=True,
                             env=no_keys_env, timeout=120)
    for result, said in ((unconfirmed, "--confirm-live"), (no_keys, "MLSTRATEGY_API_KEY")):
        assert result.returncode == 2
        assert said in result.stderr and len(result.stderr.strip().splitlines()) == 1
        assert "Traceback" not in result.stderr


def test_offline_exchange_is_a_fast_one_line_error(minute_model, tmp_path):
    result = subprocess.run(_bot("paper", "http://127.0.0.1:9", tmp_path / "p.sqlite",
                                 minute_model.models_dir), capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 2 and "cannot connect" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_a_model_for_other_bars_is_refused_at_start(minute_model, tmp_path):
    command = _bot("paper", "http://127.0.0.1:9", tmp_path / "p.sqlite",
                   minute_model.models_dir)
    command[command.index("1m")] = "1h"
    result = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert result.returncode == 2 and "trained on '1m' bars" in result.stderr


def test_sigterm_stops_after_the_current_bar_and_status_reads_the_journal(
        minute_bars, minute_model, tmp_path):
    journal = tmp_path / "paper.sqlite"
    with simulator(minute_bars, speed=120.0) as sim:  # a bar every half second
        bot = subprocess.Popen(_bot("paper", sim.url, journal, minute_model.models_dir),
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 120
        lines = []
        while len(lines) < 3 and time.monotonic() < deadline:  # three bars traded
            lines.append(bot.stdout.readline())
        bot.send_signal(signal.SIGTERM)
        out, err = bot.communicate(timeout=60)
    assert bot.returncode == 0, err[-2000:]
    assert "summary:" in out and "SIGTERM" in err
    status = subprocess.run([sys.executable, str(REPO_ROOT / "trading_bot.py"), "status",
                             "--journal", str(journal)], capture_output=True, text=True,
                            timeout=120)
    assert status.returncode == 0
    assert "paper binance BTC/USDT 1m" in status.stdout and "paper equity" in status.stdout
    assert "last 10 signals" in status.stdout

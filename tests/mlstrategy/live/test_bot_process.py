"""The bot as a user runs it: ``python trading_bot.py ...`` processes against the simulator.

The hard cases of live trading, each ending with the books in agreement (``books_agree``: no
decision executed twice, nothing sold that the bot did not buy, the journal's fills and
position the exchange's):

- chaos: faults on about 10% of all requests and 30% of order placements (429, 500, 503,
  answers past the client's timeout, orders the exchange executes only after the client gave
  up, dropped connections, garbled bodies, rejected orders, partial fills), and the bot killed
  with SIGKILL right after the exchange booked one of its orders, then restarted;
- each fault placed on the first order request, the bot killed while it is pending, then
  restarted on the same journal;
- someone else's order taking coins the journal counts as the bot's: the bot stops, exit 3;
- a portfolio (``--config bot.toml``) of two markets on one account: chaos and SIGKILL across
  both, each market's books in agreement after the restart.

Run the chaos test with more seeds by setting ``MLSTRATEGY_CHAOS_SEEDS`` (e.g. 24); ``-s``
prints the counts of each seed.
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

from execution.sim_fapi import ALGO_ORDER
from execution.simulator import OCO, ORDER, Fault
from mlstrategy.live.journal import Journal
from tests.conftest import REPO_ROOT
from tests.mlstrategy.live.conftest import books_agree, decision, eth_bars, simulator

KEY, SECRET = "mls-test-key-7f3a9c", "mls-test-secret-e1b2d4c8"
SEEDS = range(int(os.environ.get("MLSTRATEGY_CHAOS_SEEDS", "4")))
HELD_BTC = 0.05  # on the account before the bot starts: never to be sold
HELD_ETH = 1.0
LIVE = ("--confirm-live", "--recv-window", "1000")  # settled 2.4 s after sending
SLOW = 0.6  # seconds a slow answer or a late execution takes (past the 0.4 s timeout)
BRACKETS = ("--stop-loss", "0.002", "--take-profit", "0.004")  # resting on the exchange
# the order limit of a wall minute raised where a test needs its first stop to rest: refused
# legs count as orders, and a wall minute of this clock holds ten hours of bars
UNTHROTTLED = ("--max-orders-per-minute", "1000")


def _bot(mode: str, url: str, journal: Path, models_dir: Path, *extra: str) -> list[str]:
    return [sys.executable, str(REPO_ROOT / "trading_bot.py"), mode, "--exchange", "binance",
            "--symbol", "BTC/USDT", "--timeframe", "1m", "--api-url", url, "--journal",
            str(journal), "--models-dir", str(models_dir), "--poll-interval", "0.01",
            "--timeout", "400", "--no-rate-limit", "--history", "300", *extra]


def _portfolio_bot(toml: Path):
    """``_bot`` for the two markets of ``toml`` (BTC/USDT and ETH/USDT) instead of one."""
    def command(mode: str, url: str, journal: Path, models_dir: Path, *extra: str) -> list[str]:
        return [sys.executable, str(REPO_ROOT / "trading_bot.py"), mode, "--config", str(toml),
                "--api-url", url, "--journal", str(journal), "--models-dir", str(models_dir),
                "--poll-interval", "0.01", "--timeout", "400", "--no-rate-limit", "--history",
                "300", *extra]
    return command


PORTFOLIO = """
[account]
quote = "USDT"
max_open_positions = 2

[[market]]
name = "btc"
symbol = "BTC/USDT"
model = "btc1m"
stake = 0.45

[[market]]
name = "eth"
symbol = "ETH/USDT"
model = "btc1m"
stake = 0.45
"""


def _env() -> dict[str, str]:
    return {**os.environ, "MLSTRATEGY_API_KEY": KEY, "MLSTRATEGY_API_SECRET": SECRET}


def _booked_on(booked: dict, path: str) -> bool:
    """Whether the exchange's answer ``booked`` is to a placement on ``path``."""
    if path == OCO:
        return "contingencyType" in booked
    if path == ALGO_ORDER:
        return "algoId" in booked
    return "contingencyType" not in booked and "algoId" not in booked


def _killed_then_restarted(sim, journal: Path, models_dir: Path, tmp_path: Path, *,
                           kill_on: str, bars_after: int, bot=_bot, extra: tuple = (),
                           path: str = ORDER, between=lambda: None,
                           chosen=lambda booked: True) -> subprocess.CompletedProcess:
    """Run the bot until the exchange sees (``kill_on="request"``) or books (``"booking"``)
    its first order (to ``path``; of those booked, the first ``chosen`` one), SIGKILL it
    there, call ``between()`` (the exchange goes on meanwhile), then run it again on the same
    journal."""
    killed = threading.Event()
    log = tmp_path / "first.log"
    with open(log, "w") as out:  # up to 150 bars: the kill comes with the first order
        first = subprocess.Popen(bot("live", sim.url, journal, models_dir, "--max-bars",
                                     "150", *LIVE, *extra), env=_env(), stdout=out,
                                 stderr=subprocess.STDOUT)

    def kill(what: object) -> None:
        on_path = what.path == path if kill_on == "request" else \
            _booked_on(what, path) and chosen(what)
        if on_path and not killed.is_set():
            os.kill(first.pid, signal.SIGKILL)
            killed.set()

    if kill_on == "request":
        sim.on_order_request = kill
    else:
        sim.on_booked = kill
    first.wait(timeout=180)
    sim.on_order_request = sim.on_booked = None
    assert killed.is_set() and first.returncode == -signal.SIGKILL, log.read_text()[-3000:]
    between()
    second = subprocess.run(bot("live", sim.url, journal, models_dir, "--max-bars",
                                str(bars_after), *LIVE, *extra),
                            env=_env(), capture_output=True, text=True, timeout=180)
    assert second.returncode == 0, second.stderr[-3000:]
    assert "reconciled at start" in second.stdout
    return second


@pytest.mark.parametrize("seed", SEEDS)
def test_faults_and_sigkill_after_submit_never_place_twice(seed, minute_bars, minute_model,
                                                           tmp_path):
    journal = tmp_path / "live.sqlite"
    with simulator(minute_bars, balances={"USDT": 10_000.0, "BTC": HELD_BTC},
                   api_key=KEY) as sim:
        chaos = sim.chaos(0.10, seed, slow=SLOW, order_rate=0.30)
        _killed_then_restarted(sim, journal, minute_model.models_dir, tmp_path,
                               kill_on="booking", bars_after=60)
        time.sleep(SLOW + 0.2)  # a late execution still in the exchange's hands lands now
        books = books_agree(sim, journal, HELD_BTC)
    held = Journal.read(journal)
    states = [o.state for o in held.orders()]
    position = held.position()
    late = len(held.events("late_execution"))
    held.close()
    print(f"\nseed {seed}: faults {dict(sorted(chaos.counts.items()))}; order requests "
          f"{len(books.requests)}, executed {len(books.executed)}, fills "
          f"{len(books.trades)}, journal states "
          f"{ {s: states.count(s) for s in sorted(set(states))} }, late executions adopted "
          f"{late}, position {position:.5f}")


# each fault on the first order request, and what the exchange does with that order
PENDING_FAULTS = {
    "late": (Fault(200, "", delay=SLOW, path=ORDER, method="POST", late=True), 1),
    "lost": (Fault(0, path=ORDER, method="POST", book=True), 1),  # booked, answer dropped
    "dropped": (Fault(0, path=ORDER, method="POST"), 0),  # dropped before it was booked
    "503": (Fault(503, '{"code": -1006, "msg": "Execution status unknown."}', path=ORDER,
                  method="POST", book=True), 1),
    "500": (Fault(500, path=ORDER, method="POST"), 0),
    "429": (Fault(429, '{"code": -1003, "msg": "Too many requests."}', path=ORDER,
                  method="POST"), 0),
}


@pytest.mark.parametrize("seed", SEEDS)
def test_a_portfolio_under_faults_and_sigkill_keeps_each_markets_books(
        seed, minute_bars, minute_model, tmp_path):
    toml = tmp_path / "bot.toml"
    toml.write_text(PORTFOLIO)
    journal = tmp_path / "portfolio.sqlite"
    with simulator(minute_bars, balances={"USDT": 20_000.0, "BTC": HELD_BTC, "ETH": HELD_ETH},
                   api_key=KEY) as sim:
        sim.add_market(eth_bars(minute_bars), base="ETH", quote="USDT")
        chaos = sim.chaos(0.10, seed, slow=SLOW, order_rate=0.30)
        second = _killed_then_restarted(sim, journal, minute_model.models_dir, tmp_path,
                                        kill_on="booking", bars_after=60,
                                        bot=_portfolio_bot(toml), extra=BRACKETS)
        time.sleep(SLOW + 0.2)  # a late execution still in the exchange's hands lands now
        btc = books_agree(sim, journal, HELD_BTC, "btc", "BTC")
        eth = books_agree(sim, journal, HELD_ETH, "eth", "ETH")
    assert "summary of btc:" in second.stdout and "summary of eth:" in second.stdout
    with sim.state.lock:
        lists = len(sim.account.lists)
    print(f"\nportfolio seed {seed}: faults {dict(sorted(chaos.counts.items()))}; order "
          f"requests {len(btc.requests)}, executed BTC {len(btc.executed)} ETH "
          f"{len(eth.executed)}, fills BTC {len(btc.trades)} ETH {len(eth.trades)}, "
          f"stop/take-profit lists {lists}")


@pytest.mark.parametrize("moment", ["request", "booking"])
def test_sigkill_while_the_stop_is_being_placed_then_restart(moment, minute_bars,
                                                             minute_model, tmp_path):
    """Killed as the exchange receives (or books) the stop and take-profit of the first
    entry: the restart finds them by client id and keeps them; none is sent twice."""
    journal = tmp_path / "live.sqlite"
    with simulator(minute_bars, balances={"USDT": 10_000.0, "BTC": HELD_BTC},
                   api_key=KEY) as sim:
        second = _killed_then_restarted(sim, journal, minute_model.models_dir, tmp_path,
                                        kill_on=moment, bars_after=20, path=OCO,
                                        extra=(*BRACKETS, *UNTHROTTLED))
        books = books_agree(sim, journal, HELD_BTC)
        with sim.state.lock:
            first = list(sim.account.lists.values())[0]
    legs = [leg["clientOrderId"] for leg in first["orders"]]
    assert all(books.requests.count(leg) == 1 for leg in legs), second.stdout[-2000:]
    held = Journal.read(journal)
    states = {o.client_id: o.state for o in held.orders() if o.client_id in legs}
    held.close()
    assert set(states) == set(legs) and "absent" not in states.values()


@pytest.mark.parametrize("kind", PENDING_FAULTS)
def test_sigkill_while_an_order_is_pending_then_restart(kind, minute_bars, minute_model,
                                                       tmp_path):
    fault, executions = PENDING_FAULTS[kind]
    journal = tmp_path / "live.sqlite"
    with simulator(minute_bars, balances={"USDT": 10_000.0, "BTC": HELD_BTC},
                   api_key=KEY) as sim:
        sim.fail(fault)
        second = _killed_then_restarted(sim, journal, minute_model.models_dir, tmp_path,
                                        kill_on="request", bars_after=20)
        books = books_agree(sim, journal, HELD_BTC)
    first = decision(books.requests[0])
    assert books.executed.count(first) == executions, second.stdout[-2000:]
    held = Journal.read(journal)
    attempts = [o for o in held.orders() if decision(o.client_id) == first]
    held.close()
    # the bot died before any answer: the restart finds the order, or settles it absent
    assert [o.state for o in attempts] == (["closed"] if executions else ["absent"])


def test_someone_elses_order_below_the_position_stops_the_market(minute_bars, minute_model,
                                                                 tmp_path):
    journal = tmp_path / "live.sqlite"
    with simulator(minute_bars, balances={"USDT": 10_000.0, "BTC": HELD_BTC},
                   api_key=KEY) as sim:
        taken = []

        def sell_behind_the_bots_back(order: dict) -> None:  # right after the bot's first buy
            if taken or order["side"] != "BUY":
                return
            amount = HELD_BTC + float(order["executedQty"]) / 2  # the balance drops below it
            price = sim.state.candles(sim.state.interval).price(sim.state.now_ms())
            sim.account.place({"side": "SELL", "type": "MARKET", "quantity": f"{amount:.5f}",
                               "newClientOrderId": "web_manual_1"}, sim.state.symbol, price,
                              sim.state.now_ms())
            taken.append(sim.account.total("BTC"))

        sim.on_booked = sell_behind_the_bots_back
        run = subprocess.run(_bot("live", sim.url, journal, minute_model.models_dir,
                                  "--max-bars", "150", *LIVE),
                             env=_env(), capture_output=True, text=True, timeout=180)
        with sim.state.lock:
            bot_orders = [o for o in sim.account.orders.values()
                          if o["clientOrderId"].startswith("ml")]
            left = sim.account.total("BTC")
    assert taken, "the bot should have bought"
    assert run.returncode == 3, run.stderr[-2000:]
    assert run.stderr.strip().splitlines()[-1].startswith("stopped: position mismatch")
    assert "POSITION MISMATCH" in run.stderr and "Traceback" not in run.stderr
    assert len(bot_orders) == 1, "nothing may be traded once the coins are not provably its own"
    assert left == pytest.approx(taken[0])
    held = Journal.read(journal)
    (event,) = [e[3] for e in held.events("position_mismatch")]
    held.close()
    assert "held before the bot's first order" in event["reason"]
    status = subprocess.run([sys.executable, str(REPO_ROOT / "trading_bot.py"), "status",
                             "--journal", str(journal)], capture_output=True, text=True,
                            timeout=120)
    assert "POSITION MISMATCH at" in status.stdout


def test_secrets_never_reach_any_output_log_or_journal(minute_bars, minute_model, tmp_path):
    journal = tmp_path / "live.sqlite"
    with simulator(minute_bars, balances={"USDT": 10_000.0}, api_key=KEY) as sim:
        sim.chaos(0.10, seed=99, slow=SLOW)
        runs = [subprocess.run(_bot("live", sim.url, journal, minute_model.models_dir,
                                    "--max-bars", "15", *LIVE, *extra, "--debug"),
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

"""The control API of a running bot, over real HTTP (uvicorn on 127.0.0.1), and its security.

A paper bot trades the simulator's minutes while the test, at chosen bars, pauses its entries,
resumes them, asks it to exit and stops it, each through ``POST /api/control/...`` with the
bearer token; the journal shows every action with its time and source, and the bars after
each show its effect. Without the token control is refused (401, 403), without a token set it
is off, nothing listens beyond loopback without one, and no response holds a secret.
"""
from __future__ import annotations

import subprocess
import sys
import threading

import httpx
import pytest

from mlstrategy.errors import ConfigError
from mlstrategy.live.api import TOKEN_ENV, ApiServer, ApiSettings, Source, make_app
from mlstrategy.live.controls import CONTROL, Controls
from mlstrategy.live.journal import Journal
from mlstrategy.live.operator import Operator
from mlstrategy.live.runner import BotConfig, run_bot
from mlstrategy.live.session import PAUSED
from tests.mlstrategy.live.conftest import free_port

TOKEN = "t0ken-for-the-tests-only-9f8e7d6c5b4a"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def _config(sim, journal, models_dir, **overrides) -> BotConfig:
    settings = dict(mode="paper", exchange="binance", symbol="BTC/USDT", timeframe="1m",
                    journal=journal, models_dir=models_dir, api_url=sim.url, max_bars=300,
                    poll_interval=0.01, rate_limit=False, timeout_ms=1_000)
    settings.update(overrides)
    return BotConfig(**settings)


def test_pause_resume_exit_and_stop_through_the_api(market, minute_model, tmp_path):
    journal = tmp_path / "bot.sqlite"
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    seen: list = []  # (bar time, action, position) of every traded bar
    asked: dict[str, int] = {}  # control action -> index of the bar it was asked at

    def post(action: str) -> None:
        answer = httpx.post(f"{url}/api/control/{action}", json={"market": ""}, headers=AUTH)
        assert answer.status_code == 200, answer.text
        asked[action] = len(seen) - 1

    def on_status(status) -> None:  # on the trading thread, between its bars
        seen.append((status.time, status.action, status.position))
        if "pause" not in asked and len(seen) == 3:
            post("pause")
        elif "resume" not in asked and PAUSED in status.action:
            post("resume")  # an entry was skipped: let the next one go
        elif "resume" in asked and "exit" not in asked and status.position != 0:
            post("exit")
        elif "exit" in asked and "stop" not in asked and status.position == 0 and \
                len(seen) > asked["exit"] + 1:
            post("stop")

    config = _config(market, journal, minute_model.models_dir,
                     operator=Operator(api=ApiSettings(port, token=TOKEN)))
    result = run_bot(config, minute_model.artifact, on_status=on_status)

    assert list(asked) == ["pause", "resume", "exit", "stop"], f"only {asked} in {len(seen)} bars"
    actions = [a for _, a, _ in seen]
    # paused: from the bar after the pause until the resume, no entry went out
    paused = actions[asked["pause"] + 1:asked["resume"] + 1]
    assert not [a for a in paused if a.startswith("enter") and PAUSED not in a]
    assert PAUSED in actions[asked["resume"]]
    # resumed: an entry was made again, then the exit asked for went out at the next bar
    assert any(a.startswith("enter ") for a in actions[asked["resume"] + 1:asked["exit"] + 1])
    assert actions[asked["exit"] + 1].startswith("exit ")
    assert not [a for a in actions[asked["exit"] + 1:] if a.startswith("enter ")]
    # stopped after the bar it was asked at
    assert len(seen) == asked["stop"] + 1 < 300
    assert result.summary.last_bar == seen[-1][0].tz_localize(None).isoformat()
    reader = Journal.read(journal)
    controls = reader.events(CONTROL)
    reader.close()
    assert [d["action"] for *_, d in controls] == ["pause", "resume", "exit", "stop"]
    assert all(d["source"] == "api 127.0.0.1" and t for t, _, _, d in controls)


@pytest.fixture
def traded_journal(market, minute_model, tmp_path):
    """A paper bot's journal of 20 bars, and the models it traded."""
    journal = tmp_path / "bot.sqlite"
    run_bot(_config(market, journal, minute_model.models_dir, max_bars=20),
            minute_model.artifact)
    return journal, minute_model.models_dir


def _serve(journal_path, models_dir, token, **settings):
    """The API over a bot's journal (opened for writing, as the running bot has it)."""
    journal = Journal.open(journal_path, {"mode": "paper", "exchange": "binance",
                                          "symbol": "BTC/USDT", "timeframe": "1m"})
    controls = Controls([""], threading.Event(), journal)
    app = make_app(Source(journal_path, models_dir, None, controls), token,
                   protect_reads=settings.pop("protect_reads", False))
    return journal, ApiServer(app, ApiSettings(0, token=token, **settings)).start()


def test_control_needs_the_right_token_and_is_off_without_one(traded_journal):
    path, models_dir = traded_journal
    journal, server = _serve(path, models_dir, TOKEN)
    try:
        pause = f"{server.url}/api/control/pause"
        missing = httpx.post(pause)
        assert missing.status_code == 401
        assert missing.headers["www-authenticate"] == "Bearer"
        assert httpx.post(pause, headers={"Authorization": "Bearer wrong"}).status_code == 403
        assert httpx.post(pause, headers={"Authorization": TOKEN}).status_code == 401
        assert journal.events(CONTROL) == []  # nothing refused was done
        assert httpx.post(pause, headers=AUTH).status_code == 200
        assert httpx.get(f"{server.url}/api/status").json()["markets"][0]["paused"] is True
        unknown = httpx.post(f"{server.url}/api/control/sell-everything", headers=AUTH)
        assert unknown.status_code == 400
    finally:
        server.stop()
        journal.close()
    journal, server = _serve(path, models_dir, None)
    try:
        off = httpx.post(f"{server.url}/api/control/resume", headers=AUTH)
        assert off.status_code == 403 and TOKEN_ENV in off.json()["error"]
        assert httpx.get(f"{server.url}/api/control").json()["enabled"] is False
        assert httpx.get(f"{server.url}/api/status").status_code == 200  # reads stay open
    finally:
        server.stop()
        journal.close()


def test_paused_entries_are_still_paused_after_a_restart(traded_journal):
    path, models_dir = traded_journal
    journal, server = _serve(path, models_dir, TOKEN)
    httpx.post(f"{server.url}/api/control/pause", headers=AUTH)
    server.stop()
    journal.close()
    again = Journal.open(path, {"mode": "paper", "exchange": "binance", "symbol": "BTC/USDT",
                                "timeframe": "1m"})
    try:
        controls = Controls([""], threading.Event(), again)
        assert controls.paused("")
        controls.act("resume", "", "test")
        assert not Controls([""], threading.Event(), again).paused("")
    finally:
        again.close()


def test_nothing_listens_beyond_loopback_without_a_token(traded_journal, tmp_path):
    path, models_dir = traded_journal
    app = make_app(Source(path, models_dir), None)
    with pytest.raises(ConfigError, match=TOKEN_ENV):
        ApiServer(app, ApiSettings(0, "0.0.0.0"))
    server = ApiServer(make_app(Source(path, models_dir), TOKEN, protect_reads=True),
                       ApiSettings(0, "0.0.0.0", TOKEN)).start()
    try:  # beyond loopback, reads need the token too
        status = f"http://127.0.0.1:{server.port}/api/status"
        assert httpx.get(status).status_code == 401
        assert httpx.get(status, headers=AUTH).status_code == 200
    finally:
        server.stop()
    env = {k: v for k, v in __import__("os").environ.items() if k != TOKEN_ENV}
    cli = subprocess.run([sys.executable, "-m", "mlstrategy.cli", "dashboard", "--journal",
                          str(path), "--host", "0.0.0.0", "--port", "0"], cwd=tmp_path,
                         env=env, capture_output=True, text=True, timeout=120,
                         stdin=subprocess.DEVNULL)
    assert cli.returncode == 2
    assert TOKEN_ENV in cli.stderr and "Traceback" not in cli.stderr


def test_no_response_holds_a_secret(traded_journal, monkeypatch, caplog):
    secrets = {"MLSTRATEGY_API_KEY": "k3y-abcdef-123456", "MLSTRATEGY_API_SECRET":
               "s3cret-ghijkl-789012", TOKEN_ENV: TOKEN}
    for name, value in secrets.items():
        monkeypatch.setenv(name, value)
    path, models_dir = traded_journal
    journal, server = _serve(path, models_dir, TOKEN)
    try:
        answers = [httpx.get(f"{server.url}{p}") for p in (
            "/", "/assets/app.js", "/assets/style.css", "/api/status", "/api/orders",
            "/api/decisions", "/api/equity", "/api/models", "/api/cycle", "/api/control",
            "/api/status?market=nope", "/api/orders?limit=x", "/nowhere")]
        answers += [httpx.post(f"{server.url}/api/control/{a}", headers=h, json=b)
                    for a, h, b in (("pause", AUTH, {"market": ""}), ("pause", {}, {}),
                                    ("resume", {"Authorization": "Bearer no"}, {}),
                                    ("exit", AUTH, {"market": "eth"}))]
    finally:
        server.stop()
        journal.close()
    assert [a.status_code for a in answers] == [200] * 10 + [400, 400, 404, 200, 401, 403, 400]
    assert answers[3].json()["markets"][0]["symbol"] == "BTC/USDT"
    for answer in answers:
        for value in secrets.values():
            assert value not in answer.text
    for value in secrets.values():
        assert value not in caplog.text


def test_the_status_is_the_journals(traded_journal, minute_model):
    path, models_dir = traded_journal
    reader = Journal.read(path)
    last = reader.signals(limit=1).iloc[-1]
    position = reader.position()
    orders = reader.orders()
    reader.close()
    server = ApiServer(make_app(Source(path, models_dir), None), ApiSettings(0)).start()
    try:
        status = httpx.get(f"{server.url}/api/status").json()
        book = httpx.get(f"{server.url}/api/orders").json()
        decisions = httpx.get(f"{server.url}/api/decisions?limit=5").json()["decisions"]
        curve = httpx.get(f"{server.url}/api/equity").json()
        models = httpx.get(f"{server.url}/api/models").json()
        read_only = httpx.post(f"{server.url}/api/control/pause", headers=AUTH)
    finally:
        server.stop()
    shown = status["markets"][0]
    assert shown["position"] == position and shown["equity"] == last.equity
    assert shown["model"] == last.model and shown["last_bar"] == last.time_ms
    assert [o["client_id"] for o in book["orders"]] == [o.client_id for o in orders][::-1]
    assert decisions[0]["time"] == last.time_ms and len(decisions) == 5
    thresholds = minute_model.artifact.thresholds  # the bot's: the model's
    assert (decisions[0]["enter"], decisions[0]["exit"]) == (thresholds.enter, thresholds.exit)
    assert len(curve["equity"]) == 20 and curve["equity"][-1] == last.equity
    assert curve["buy_and_hold"][0] == curve["equity"][0]
    assert models["markets"][0]["production"] is not None
    assert read_only.status_code == 403 and "read-only" in read_only.json()["error"]

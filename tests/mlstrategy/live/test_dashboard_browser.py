"""The dashboard in a real browser: headless Chromium (Debian's ``chromium``) driven by
Playwright, against a replay bot serving its API on 127.0.0.1.

Once the bot has traded, the operator enters the token, clicks pause and sees the next entry
skipped in the decisions,
clicks "stop after bar"; the page, now fed by ``mlstrategy dashboard``'s read-only server over
the same journal, shows the journal's position and equity. A screenshot is saved.
"""
from __future__ import annotations

import shutil
import threading

import pytest

from mlstrategy.live.api import ApiServer, ApiSettings, Source, make_app
from mlstrategy.live.journal import Journal
from mlstrategy.live.operator import Operator
from mlstrategy.live.runner import BotConfig, run_bot
from mlstrategy.live.session import PAUSED
from tests.mlstrategy.live.conftest import free_port, simulator

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
TOKEN = "browser-test-token-5a4b3c2d1e"
# as root, offline: no sandbox, and no background connections for the closed network to refuse
FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]

pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="no chromium on PATH: install "
                                "Debian's (apt-get install chromium) to run the browser test")


def test_the_dashboard_shows_the_journal_and_pauses_entries(minute_bars, minute_model,
                                                            tmp_path):
    sync_api = pytest.importorskip("playwright.sync_api", reason="pip install playwright")
    journal = tmp_path / "bot.sqlite"
    port = free_port()
    url = f"http://127.0.0.1:{port}/"
    stop = threading.Event()
    failure: list[BaseException] = []
    with simulator(minute_bars, speed=240.0) as sim:  # a bar every 0.25 s
        config = BotConfig(
            mode="replay", exchange="binance", symbol="BTC/USDT", timeframe="1m",
            journal=journal, models_dir=minute_model.models_dir, api_url=sim.url,
            max_bars=1_000, poll_interval=0.02, rate_limit=False, timeout_ms=1_000,
            operator=Operator(api=ApiSettings(port, token=TOKEN)))

        def trade() -> None:
            try:
                run_bot(config, minute_model.artifact, stop=stop)
            except BaseException as exc:  # noqa: BLE001 (reported by the test)
                failure.append(exc)

        bot = threading.Thread(target=trade)
        bot.start()
        try:
            with sync_api.sync_playwright() as playwright:
                browser = playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
                page = browser.new_page(viewport={"width": 1280, "height": 1100})
                _open(page, url)
                page.get_by_test_id("token").fill(TOKEN)
                page.get_by_test_id("token").dispatch_event("change")
                page.locator("#fills tbody tr").first.wait_for(timeout=120_000)  # it traded
                page.get_by_test_id("pause").click()
                page.get_by_test_id("message").filter(has_text="at the next bar").wait_for()
                skipped = page.get_by_test_id("decision-action").filter(has_text=PAUSED)
                skipped.first.wait_for(timeout=120_000)
                page.get_by_test_id("paused").wait_for()
                page.get_by_test_id("stop").click()
                bot.join(60)
                assert not bot.is_alive() and not failure, failure
                # the bot is gone: the same page, now read from the files by the read-only
                # dashboard, shows where the journal ended
                reader = Journal.read(journal)
                position, last = reader.position(), reader.signals(limit=1).iloc[-1]
                reader.close()
                server = ApiServer(make_app(Source(journal, minute_model.models_dir), None),
                                   ApiSettings(port)).start()
                try:
                    page.get_by_test_id("run").filter(has_text="read-only").wait_for()
                    shown = {k: page.get_by_test_id(k).inner_text()
                             for k in ("position", "equity", "last-bar")}
                    page.screenshot(path=str(tmp_path / "dashboard.png"), full_page=True)
                finally:
                    server.stop()
                browser.close()
        finally:
            stop.set()
            bot.join(60)
    assert shown["position"] == f"{position:,.8f}"
    assert shown["equity"] == f"{last.equity:,.2f}"
    assert (tmp_path / "dashboard.png").stat().st_size > 20_000


def _open(page, url: str) -> None:
    """Load the page once the bot's API answers (it starts with the bot)."""
    for _ in range(100):
        try:
            page.goto(url)
            page.get_by_test_id("position").wait_for(timeout=10_000)
            return
        except Exception:  # noqa: BLE001 (not up yet)
            page.wait_for_timeout(200)
    raise AssertionError(f"the dashboard never came up at {url}")

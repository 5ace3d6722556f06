"""Soak: the full bot (``trading_bot.py replay``, paper broker, API on, a client reading it)
over many bars, its memory watched from outside.

After warm-up the process's RSS may grow by at most 50 MB, and the journal must grow by the
same bytes per bar in the run's second half as in its first. The suite runs a short soak
(``MLSTRATEGY_SOAK_BARS``, default 3,000 bars); the long one the README gives runs 100,000:

    MLSTRATEGY_SOAK_BARS=100000 pytest tests/mlstrategy/live/test_soak.py -s

Bars: the real BTC perpetual minutes of ``../shared/data`` (45,031), else the embedded sample's
(10,000), laid end to end as often as needed, each lap's prices scaled to open where the last
closed (memory is the property here, not the market).
"""
from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import threading
import time

import httpx
import numpy as np
import pandas as pd
import pytest

from datafeeds import load_sample
from datafeeds.loaders import load_file
from features_numba import FeatureSpec
from mlstrategy.registry.artifact import save_artifact
from mlstrategy.registry.production import ModelRef, promote
from mlstrategy.research.dataset import describe
from mlstrategy.research.training import train
from tests.conftest import REPO_ROOT, SHARED_DATA
from tests.mlstrategy.conftest import FAST
from tests.mlstrategy.live.conftest import free_port

psutil = pytest.importorskip("psutil", reason="pip install psutil")
SOAK_BARS = int(os.environ.get("MLSTRATEGY_SOAK_BARS", "3000"))
TRAIN, HISTORY = 6_000, 1_000
RSS_GROWTH_MB = 50.0


def laps(bars: pd.DataFrame, n: int) -> pd.DataFrame:
    """``n`` bars: ``bars`` end to end, each lap's time shifted past the last and its prices
    scaled to open at the last lap's close."""
    parts, scale, shift = [], 1.0, pd.Timedelta(0)
    step = bars.index[1] - bars.index[0]
    while sum(len(p) for p in parts) < n:
        lap = bars * [scale, scale, scale, scale, 1.0]
        lap.index = bars.index + shift
        parts.append(lap)
        scale *= float(bars.close.iloc[-1] / bars.open.iloc[0])
        shift += bars.index[-1] - bars.index[0] + step
    return pd.concat(parts).iloc[:n]


def _minutes() -> pd.DataFrame:
    real = SHARED_DATA / "nautilus_trader/btc-perp-20211231-20220201_1m.csv"
    bars = load_file(real) if real.is_file() else load_sample("btcperp-1m")
    step = bars.index.to_series().diff()
    run = step.ne(step.mode()[0]).cumsum()  # the longest stretch without a gap
    return bars[run == run.value_counts().idxmax()].iloc[1:]


def _journal_pages(path) -> int:
    """The journal's size as SQLite sees it (the WAL's frames included)."""
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return db.execute("PRAGMA page_count").fetchone()[0]
    finally:
        db.close()


def test_a_long_run_keeps_its_memory_and_grows_its_journal_linearly(tmp_path):
    bars = laps(_minutes(), TRAIN + SOAK_BARS)
    data = tmp_path / "btc-minutes.parquet"
    bars.to_parquet(data)
    models_dir = tmp_path / "models"
    result = train(describe(bars.iloc[:TRAIN], "soak", "BTC/USDT", "1m"),
                   FeatureSpec.default(), FAST)
    path = save_artifact(models_dir, "soak", result.model, result.manifest,
                         training_bars=result.training_bars)
    promote(models_dir, ModelRef("soak", path.name))
    journal = tmp_path / "soak.sqlite"
    port = free_port()
    bot = subprocess.Popen(
        [sys.executable, str(REPO_ROOT / "trading_bot.py"), "replay", "--data", str(data),
         "--symbol", "BTC/USDT", "--models-dir", str(models_dir), "--model", "soak",
         "--broker", "paper", "--start", str(TRAIN), "--history", str(HISTORY),
         "--journal", str(journal), "--api-port", str(port), "--quiet"],
        cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    api = f"http://127.0.0.1:{port}"
    first_ms = int(bars.index[TRAIN].value // 1_000_000)
    step_ms = 60_000
    samples: list[tuple[int, float, int]] = []  # (bars traded, RSS MB, journal pages)
    reads = [0]
    done = threading.Event()

    def client() -> None:  # an operator's dashboard, reading while the bot trades
        with httpx.Client(timeout=10) as http:
            while not done.is_set():
                for page in ("/api/status", "/api/decisions", "/api/equity", "/api/orders"):
                    try:
                        reads[0] += http.get(api + page).status_code == 200
                    except httpx.HTTPError:
                        pass
                time.sleep(0.2)

    reader = threading.Thread(target=client, daemon=True)
    reader.start()
    process = psutil.Process(bot.pid)
    try:
        while bot.poll() is None:
            time.sleep(1.0)
            try:
                status = httpx.get(f"{api}/api/status", timeout=10).json()
                rss = process.memory_info().rss / 2**20
            except (httpx.HTTPError, psutil.NoSuchProcess, ValueError):
                continue
            last = status["markets"][0]["last_bar"]
            if last is not None and last >= first_ms:
                samples.append(((last - first_ms) // step_ms + 1, rss,
                                _journal_pages(journal)))
    finally:
        done.set()
        if bot.poll() is None:
            bot.kill()
        output = bot.communicate(timeout=60)[0]
    assert bot.returncode == 0, output[-3000:]
    assert reads[0] > 0
    traded = np.array([s[0] for s in samples])
    assert len(samples) >= 5 and traded[-1] >= 0.9 * SOAK_BARS, (len(samples), output[-2000:])
    warm = int(np.argmax(traded >= 0.1 * SOAK_BARS))  # warm-up: the first tenth of the run
    rss = np.array([s[1] for s in samples])
    growth = float(rss[warm:].max() - rss[warm])
    pages = np.array([s[2] for s in samples])
    half = int(np.argmax(traded >= traded[warm] + (traded[-1] - traded[warm]) / 2))
    first = (pages[half] - pages[warm]) / (traded[half] - traded[warm])
    second = (pages[-1] - pages[half]) / (traded[-1] - traded[half])
    tenths = [int(np.argmax(traded >= traded[-1] * k / 10)) for k in range(1, 11)]
    print(f"\nsoak: {traded[-1]} bars, RSS {rss[warm]:.1f} MB after warm-up -> max "
          f"{rss[warm:].max():.1f} MB (+{growth:.1f} MB), journal {first * 4096:.0f} then "
          f"{second * 4096:.0f} bytes per bar, {reads[0]} API reads; RSS at each tenth: "
          f"{', '.join(f'{rss[i]:.0f}' for i in tenths)} MB")
    assert growth <= RSS_GROWTH_MB
    assert 0.7 <= second / first <= 1.3

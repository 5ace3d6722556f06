"""Shared fixtures: the embedded real sample, ../shared/data when present, network opt-in."""
from __future__ import annotations

from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO_ROOT.parent / "shared" / "data"


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--network", action="store_true", help="run tests that need the internet")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if config.getoption("--network"):
        return
    skip = pytest.mark.skip(reason="needs the internet; run with --network")
    for item in items:
        if "network" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """``../shared/data`` beside the repo; tests using it skip where it is absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real data folder {SHARED_DATA} is absent (it sits beside the repo in CI)")
    return SHARED_DATA


@pytest.fixture(scope="session")
def btc_bars():
    """The embedded Coinbase BTC/USD hourly sample, validated."""
    from datafeeds import load_sample

    return load_sample("btcusd-1h")


def _postgres_runner() -> list[str]:
    """How to run the PostgreSQL binaries: as we are, or (as root, which initdb refuses) as
    the ``postgres`` user. Skips, saying how to install them, where they are absent."""
    import os
    import pwd
    import shutil

    if not (shutil.which("initdb") and shutil.which("pg_ctl")):
        pytest.skip("PostgreSQL server binaries (initdb, pg_ctl) not on PATH; install them, "
                    "e.g. `apt install postgresql` or `brew install postgresql`, and add their "
                    "bin folder to PATH")
    if os.geteuid() != 0:
        return []
    try:
        pwd.getpwnam("postgres")
    except KeyError:
        pytest.skip("running as root, which initdb refuses, and no 'postgres' user to run "
                    "the test server as")
    return ["runuser", "-u", "postgres", "--"]


@pytest.fixture(scope="session")
def postgres_server():
    """A throwaway PostgreSQL server (initdb + pg_ctl in a temp folder, a free port on
    127.0.0.1, trust auth), stopped after the session. Yields its base URL."""
    import os
    import shutil
    import socket
    import subprocess
    import tempfile

    runner = _postgres_runner()
    # not under pytest's temp root: that is private to us, and the server may run as postgres
    folder = Path(tempfile.mkdtemp(prefix="mlstrategy-pg-"))
    if runner:
        shutil.chown(folder, "postgres")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    data = folder / "db"
    subprocess.run([*runner, "initdb", "-D", str(data), "-A", "trust", "-U", "mls",
                    "--no-sync"], check=True, capture_output=True)
    subprocess.run([*runner, "pg_ctl", "-D", str(data), "-l", str(folder / "log"), "-w",
                    "-o", f"-p {port} -k {folder} -c listen_addresses=127.0.0.1", "start"],
                   check=True, capture_output=True, env={**os.environ, "LC_ALL": "C"})
    try:
        yield f"postgresql://mls@127.0.0.1:{port}"
    finally:
        subprocess.run([*runner, "pg_ctl", "-D", str(data), "-m", "immediate", "stop"],
                       capture_output=True)
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def postgres_url(postgres_server, request):
    """A fresh, empty database on the test server for one test."""
    import re

    psycopg = pytest.importorskip("psycopg", reason="psycopg 3 not installed: pip install "
                                  "'mlstrategy[postgres]'")
    name = "t_" + re.sub(r"\W", "_", request.node.name).lower()[:50]
    with psycopg.connect(f"{postgres_server}/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
        conn.execute(f'CREATE DATABASE "{name}"')
    return f"{postgres_server}/{name}"


@pytest.fixture(params=["parquet", "csv", "json", "sqlite", "postgresql"])
def store_url(request, tmp_path):
    """Each backend in turn: a Parquet, CSV or JSON folder, a SQLite file, a PostgreSQL
    database."""
    if request.param in ("parquet", "csv", "json"):
        return f"{request.param}:{tmp_path / 'bars'}"
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'bars.db'}"
    return request.getfixturevalue("postgres_url")

"""The decision audit: a replay's journal recomputed offline, equal bit for bit; an edited bar
named, with exactly the later decisions its difference reaches."""
from __future__ import annotations

import json
import sqlite3
import subprocess
import sys

import numpy as np
import pandas as pd
from click.testing import CliRunner

from features_numba import compute_features
from mlstrategy.cli import cli
from mlstrategy.live.journal import Journal
from mlstrategy.trading.inference import batch_probas

REPLAYED = 300


def _replay(trained, journal, *extra) -> None:
    result = CliRunner().invoke(cli, [
        "bot", "replay", "--models-dir", str(trained.models_dir), "--model", "btc",
        "--broker", "paper", "--max-bars", str(REPLAYED), "--journal", str(journal), "--quiet",
        *extra])
    assert result.exit_code == 0, result.output


def _audit(trained, journal) -> tuple[int, list[dict]]:
    result = CliRunner().invoke(cli, ["audit", "--journal", str(journal), "--models-dir",
                                      str(trained.models_dir), "--json"])
    assert result.exit_code in (0, 1), result.output
    return result.exit_code, json.loads(result.output)


def test_a_replays_decisions_are_equal_and_an_edited_bar_is_named_with_its_reach(
        trained, tmp_path):
    journal = tmp_path / "replay.sqlite"
    _replay(trained, journal, "--journal-features")
    code, (session,) = _audit(trained, journal)
    read = Journal.read(journal)
    bars, signals = read.bars(), read.signals()
    read.close()
    assert code == 0 and session["ok"] and session["differences"] == []
    assert session["decisions"] == len(signals) > REPLAYED  # the warm-up history included
    assert session["models"] == [trained.artifact.ref]
    text = CliRunner().invoke(cli, ["audit", "--journal", str(journal), "--models-dir",
                                    str(trained.models_dir)]).output
    assert f"{len(signals)} decisions by {trained.artifact.ref}: all equal, bit for bit" in text

    # edit one bar of the traded span in the journal: its close, 1% higher
    edited = len(bars) - REPLAYED // 2
    when = bars.index[edited]
    with sqlite3.connect(journal) as db:
        db.execute("UPDATE bars SET close = close * 1.01 WHERE time_ms = ?",
                   (when.value // 1_000_000,))
    code, (session,) = _audit(trained, journal)
    assert code == 1 and not session["ok"]
    first, *rest = session["differences"]
    assert first["first"] == first["last"] == when.isoformat()
    assert "this bar differs" in first["cause"] and first["features"]
    # what the edit reaches, computed independently: rows whose features or P(up) change
    changed = bars.copy()
    changed.iloc[edited, changed.columns.get_loc("close")] *= 1.01
    art = trained.artifact
    differ = ~np.all((compute_features(bars, art.spec) == compute_features(changed, art.spec))
                     | np.isnan(compute_features(bars, art.spec)), axis=1)
    p0, p1 = batch_probas(bars, art), batch_probas(changed, art)
    differ |= ~((p0 == p1) | (np.isnan(p0) & np.isnan(p1)))
    reached = bars.index[np.flatnonzero(differ)]
    assert reached[0] == when and len(reached) > 1
    assert [r["cause"] for r in rest] == [f"reached by the difference at {when.isoformat()}"]
    assert rest[0]["first"] == reached[1].isoformat()
    assert rest[0]["last"] == reached[-1].isoformat()
    assert session["decisions"] - session["equal"] == len(reached) == \
        sum(r["decisions"] for r in session["differences"])


def test_a_bar_rewritten_by_a_later_session_is_named_as_such(trained, tmp_path):
    journal = tmp_path / "replay.sqlite"
    _replay(trained, journal)
    with sqlite3.connect(journal) as db:
        (last,) = db.execute("SELECT MAX(time_ms) FROM bars").fetchone()
        db.execute("UPDATE bars SET close = close * 0.99, session = 7 WHERE time_ms = ?",
                   (last,))
    code, (session,) = _audit(trained, journal)
    (difference,) = session["differences"]
    assert code == 1
    assert difference["first"] == pd.Timestamp(last, unit="ms", tz="UTC").isoformat()
    assert difference["cause"].startswith("the bar was rewritten by session 7")


def test_audit_refuses_bad_input_with_exit_2(trained, tmp_path):
    def audit(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "mlstrategy.cli", "audit", *args],
                              capture_output=True, text=True, check=False)

    missing = audit("--journal", str(tmp_path / "none.sqlite"))
    assert missing.returncode == 2 and "no journal at" in missing.stderr
    not_journal = tmp_path / "notes.txt"
    not_journal.write_text("hello", encoding="utf-8")
    refused = audit("--journal", str(not_journal))
    assert refused.returncode == 2 and "is not a bot journal" in refused.stderr
    journal = tmp_path / "replay.sqlite"
    _replay(trained, journal)
    other = audit("--journal", str(journal), "--market", "ETH")
    assert other.returncode == 2 and "no market 'ETH'" in other.stderr
    assert "Traceback" not in missing.stderr + refused.stderr + other.stderr

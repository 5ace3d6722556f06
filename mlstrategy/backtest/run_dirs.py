"""Where a backtest's files go: ``reports/<market>/<model version>/<run>/``, one folder per
run (``<UTC time>-<kind>``: backtest, streaming, walk-forward, grid) so no run overwrites
another, and a ``latest`` link beside them to the newest."""
from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path

LATEST = "latest"


def new_run_dir(parent: Path, kind: str) -> Path:
    """A fresh folder name under ``parent`` for a run of ``kind`` (not created yet)."""
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    path = parent / f"{stamp}-{kind}"
    n = 2
    while path.exists():  # two runs in one second
        path = parent / f"{stamp}-{kind}-{n}"
        n += 1
    return path


def link_latest(run_dir: Path) -> Path:
    """Point ``latest`` beside ``run_dir`` at it (replaced atomically); returns the link."""
    link = run_dir.parent / LATEST
    temporary = run_dir.parent / f".{LATEST}.{os.getpid()}.tmp"
    temporary.unlink(missing_ok=True)
    temporary.symlink_to(run_dir.name, target_is_directory=True)
    os.replace(temporary, link)
    return link

"""Atomic file and directory writes: a reader sees the old content or the new, never half."""
from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_json_atomic(path: Path, payload: dict) -> None:
    """Write ``payload`` as JSON to ``path`` via temp file + fsync + rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(payload, fh, indent=2, sort_keys=False)
            fh.write("\n")
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)


def publish_directory(staging: Path, final: Path) -> None:
    """Move a fully written ``staging`` directory to ``final`` in one rename."""
    if final.exists():
        raise FileExistsError(f"{final} already exists")
    for item in staging.rglob("*"):
        if item.is_file():
            with open(item, "rb") as fh:
                os.fsync(fh.fileno())
    os.replace(staging, final)
    _fsync_dir(final.parent)


def staging_directory(parent: Path, name: str) -> Path:
    """A fresh hidden directory under ``parent`` to assemble ``name`` in before publishing."""
    parent.mkdir(parents=True, exist_ok=True)
    staging = parent / f".{name}.partial"
    if staging.exists():  # left over by a crash: never published, safe to discard
        shutil.rmtree(staging)
    staging.mkdir()
    return staging

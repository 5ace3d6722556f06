"""Atomic file and directory writes: a reader sees the old content or the new, never half;
and append-only JSON-lines logs whose only possible damage is a torn last line.

Used by the bar store here and by mlstrategy's artifacts and registry (which may import
datafeeds; never the other way round). Each write goes to a temporary file in the target's
folder, is fsynced, renamed over the target, and the folder is fsynced so the rename survives
a power cut.
"""
from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path


def _fsync_dir(directory: Path) -> None:
    """Make a rename in ``directory`` durable (skipped where folders cannot be opened)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:  # Windows
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_atomic(path: Path, write: Callable[[Path], None]) -> Path:
    """Replace ``path`` with what ``write(tmp)`` writes to a temporary path beside it.

    On any error (or interruption) the temporary file is removed and ``path`` is untouched.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp = Path(name)
    try:
        write(tmp)
        with open(tmp, "rb") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)
    return path


def write_json_atomic(path: Path, payload: dict) -> None:
    """Write ``payload`` as indented JSON to ``path`` atomically."""
    text = json.dumps(payload, indent=2, sort_keys=False) + "\n"
    write_atomic(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))


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


def append_json_lines(path: Path, entries: list[dict]) -> None:
    """Append JSON objects as lines to ``path`` and fsync them once (an append-only log)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a", encoding="utf-8") as fh:
        fh.write("".join(json.dumps(entry) + "\n" for entry in entries))
        fh.flush()
        os.fsync(fh.fileno())


def append_json_line(path: Path, entry: dict) -> None:
    """Append one JSON object as a line to ``path`` and fsync it."""
    append_json_lines(path, [entry])


def read_json_lines(path: Path) -> list[dict]:
    """The objects of an append-only JSON-lines log, oldest first ([] when there is none); a
    last line torn by a crash is left out (every earlier one was fsynced whole)."""
    if not path.is_file():
        return []
    entries = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            entries.append(json.loads(line))
        except json.JSONDecodeError:
            break
    return entries

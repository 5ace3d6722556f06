"""One cycle at a time: a lock file holding the owner's PID, host and start time.

The file is created exclusively (``O_EXCL``), so two cycles starting together cannot both get
it. A lock whose process is gone (killed, crashed, machine rebooted) is stale: the next cycle
takes it over, with a warning, instead of waiting for a human.
"""
from __future__ import annotations

import json
import logging
import os
import socket
from datetime import UTC, datetime
from pathlib import Path

from mlstrategy.errors import MLStrategyError

log = logging.getLogger(__name__)


class CycleLocked(MLStrategyError):
    """Another cycle holds the lock and is alive."""


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


class CycleLock:
    """``with CycleLock(path):`` holds the lock for the block, removes it after."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def _create(self) -> bool:
        try:
            fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError:
            return False
        owner = {"pid": os.getpid(), "host": socket.gethostname(),
                 "started": datetime.now(UTC).isoformat(timespec="seconds")}
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(owner, fh)
            fh.flush()
            os.fsync(fh.fileno())
        return True

    def __enter__(self) -> CycleLock:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if self._create():
            return self
        try:
            owner = json.loads(self.path.read_text(encoding="utf-8"))
            pid, started = int(owner["pid"]), owner.get("started")
            same_host = owner.get("host") == socket.gethostname()
        except (OSError, ValueError, KeyError, TypeError):  # torn by a crash while writing it
            pid, started, same_host = None, None, True
        if pid is not None and (_alive(pid) or not same_host):
            raise CycleLocked(f"another cycle is running (pid {pid} on "
                              f"{owner.get('host')}, started {started}; lock {self.path}); "
                              "wait for it, or delete the lock if that machine is gone")
        log.warning("taking over the stale lock of a cycle that is gone (pid %s, started %s)",
                    pid, started)
        self.path.unlink(missing_ok=True)
        if not self._create():
            raise CycleLocked(f"another cycle took {self.path} at the same moment; run later")
        return self

    def __exit__(self, *exc: object) -> None:
        self.path.unlink(missing_ok=True)

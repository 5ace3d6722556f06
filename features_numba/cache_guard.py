"""No stale compiled code: Numba's cache is dropped whenever any kernel source changes.

Numba keys a function's cache on its own source file only, so a kernel that calls an ``@njit``
helper from another file (``kernels_1d`` uses ``steps``' true range and directional movement)
would keep running the old helper's machine code after the helper is edited. At import, the
sha256 of every source file of this package is compared with the one stored beside the cache;
when they differ, this package's cached machine code is deleted (Numba recompiles it on first
use) and the new hash is stored. It costs one hash of a few small files per process.
"""
from __future__ import annotations

import hashlib
import os
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent
STAMP = "sources.sha256"


def sources_hash(package: Path = PACKAGE) -> str:
    """sha256 over the names and bytes of the package's Python sources, in name order."""
    digest = hashlib.sha256()
    for path in sorted(package.glob("*.py")):
        digest.update(path.name.encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


def cache_dirs(package: Path = PACKAGE) -> list[Path]:
    """Where Numba caches this package: ``__pycache__`` beside it, or under NUMBA_CACHE_DIR."""
    dirs = [package / "__pycache__"]
    root = os.environ.get("NUMBA_CACHE_DIR")
    if root:  # numba mirrors the source's absolute path below its cache root
        dirs.append(Path(root) / str(package).lstrip(os.sep))
    return dirs


def guard(package: Path = PACKAGE) -> bool:
    """Drop stale compiled kernels of ``package``; True when they were dropped."""
    current = sources_hash(package)
    dropped = False
    for directory in cache_dirs(package):
        stamp = directory / STAMP
        try:
            if stamp.read_text(encoding="ascii") == current:
                continue
        except OSError:
            pass  # no stamp yet: whatever is cached may predate it
        for stale in [*directory.glob("*.nbi"), *directory.glob("*.nbc")]:
            stale.unlink(missing_ok=True)
            dropped = True
        try:
            directory.mkdir(parents=True, exist_ok=True)
            stamp.write_text(current, encoding="ascii")
        except OSError:  # a read-only install: Numba cannot cache there either
            pass
    return dropped

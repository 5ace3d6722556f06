"""The model registry: the artifacts under ``models/`` and which one is in production.

``models/production.json`` names the production artifact. It is replaced atomically (temp
file, fsync, rename), so a running bot polling it never reads half a file. Every change of it
(and every challenger kept out) is appended to ``models/history.jsonl``: who replaced whom,
why, the metrics of both, when; ``rollback`` restores the production model before the current
one from it. ``index.json`` (written by ``artifact``) holds each manifest's sha256 and the
figures ``list`` shows.
"""
from __future__ import annotations

import json
import logging
import shutil
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from datafeeds.atomic import append_json_line, read_json_lines, write_atomic, write_json_atomic
from mlstrategy.artifact import (
    MANIFEST,
    Artifact,
    index_artifact,
    load_artifact,
    read_index,
)
from mlstrategy.errors import ModelError

log = logging.getLogger(__name__)
PRODUCTION = "production.json"
HISTORY = "history.jsonl"
NO_MODEL_HINT = "train one first: python train_ml_strategy.py"


@dataclass(frozen=True, order=True)
class ModelRef:
    """A name and version of an artifact under a models directory."""

    name: str
    version: str

    def __str__(self) -> str:
        return f"{self.name}/{self.version}"


def artifact_dir(models_dir: Path, ref: ModelRef) -> Path:
    """Directory of the artifact ``ref``."""
    return models_dir / ref.name / ref.version


def list_models(models_dir: Path) -> list[ModelRef]:
    """Every published artifact under ``models_dir``, sorted by name then version."""
    if not models_dir.is_dir():
        return []
    return sorted(
        ModelRef(manifest.parent.parent.name, manifest.parent.name)
        for manifest in models_dir.glob(f"*/*/{MANIFEST}")
        if not manifest.parent.name.startswith(".")
    )


def production_ref(models_dir: Path) -> ModelRef | None:
    """The production artifact named by ``production.json``, or None when there is none."""
    path = models_dir / PRODUCTION
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return ModelRef(str(data["name"]), str(data["version"]))
    except (json.JSONDecodeError, KeyError, TypeError) as exc:
        raise ModelError(f"{path} is unreadable ({exc}); promote a model again with "
                         "`mlstrategy models promote NAME/VERSION`") from None


def promote(models_dir: Path, ref: ModelRef, *, action: str = "promoted", reason: str = "",
            metrics: dict | None = None) -> Path:
    """Make ``ref`` the production model (verifying it loads first); returns production.json.

    The change is appended to ``history.jsonl`` with ``action``, ``reason`` and ``metrics``.
    """
    load_artifact(artifact_dir(models_dir, ref))  # refuse to promote a broken artifact
    old = production_ref(models_dir)
    path = models_dir / PRODUCTION
    write_json_atomic(path, {
        "name": ref.name,
        "version": ref.version,
        "path": f"{ref.name}/{ref.version}",
        "promoted": datetime.now(UTC).isoformat(timespec="seconds"),
    })
    record(models_dir, action, new=ref, old=old, reason=reason, metrics=metrics)
    return path


def record(models_dir: Path, action: str, *, new: ModelRef | None, old: ModelRef | None,
           reason: str = "", metrics: dict | None = None) -> None:
    """Append one decision to ``history.jsonl`` (one JSON object per line, fsynced)."""
    append_json_line(models_dir / HISTORY, {
        "time": datetime.now(UTC).isoformat(timespec="seconds"), "action": action,
        "new": None if new is None else str(new), "old": None if old is None else str(old),
        "reason": reason, "metrics": metrics or {}})


def history(models_dir: Path) -> list[dict]:
    """Every recorded decision, oldest first (a last line torn by a crash is left out)."""
    return read_json_lines(models_dir / HISTORY)


_CHANGES = ("promoted", "forced", "rollback", "recovered")


def reconcile(models_dir: Path) -> list[str]:
    """Bring the registry back to one consistent state after a process was killed in it.

    Removes half-built artifact folders and temp files, indexes artifacts published just
    before a kill, cuts a torn last history line, and records a production change whose
    history line a kill prevented. Returns what was done, one line each. Run it while nothing
    else writes to ``models_dir`` (the cycle holds its lock).
    """
    done = []
    for junk in [*models_dir.glob("*/.*.partial"), *models_dir.glob("**/.*.tmp")]:
        shutil.rmtree(junk) if junk.is_dir() else junk.unlink()
        done.append(f"removed {junk}, left by an interrupted write")
    indexed = read_index(models_dir)
    for ref in list_models(models_dir):
        if str(ref) not in indexed:  # loading verifies the model before it is vouched for
            path = artifact_dir(models_dir, ref)
            index_artifact(models_dir, path, load_artifact(path).manifest)
            done.append(f"indexed {ref}, published just before an interruption")
    path = models_dir / HISTORY
    entries = history(models_dir)
    if path.is_file() and len(path.read_text(encoding="utf-8").splitlines()) > len(entries):
        write_lines = "".join(json.dumps(e) + "\n" for e in entries)
        write_atomic(path, lambda tmp: tmp.write_text(write_lines, encoding="utf-8"))
        done.append(f"cut a torn last line from {path}")
    current = production_ref(models_dir)
    changes = [e for e in entries if e["action"] in _CHANGES]
    recorded = changes[-1]["new"] if changes else None
    if current is not None and str(current) != recorded:
        record(models_dir, "recovered", new=current, old=None if recorded is None else
               parse_ref(recorded, models_dir), reason="production.json was changed by a "
               "promotion interrupted before it was recorded")
        done.append(f"recorded the interrupted promotion of {current}")
    return done


def rollback(models_dir: Path) -> ModelRef:
    """Restore the production model that the current one replaced (atomically).

    Raises
    ------
    ModelError
        When there is no production model or no earlier one to go back to.
    """
    current = production_ref(models_dir)
    if current is None:
        raise ModelError(f"no production model in {models_dir}/ to roll back")
    for entry in reversed(history(models_dir)):
        if entry["action"] in ("promoted", "forced", "rollback") and \
                entry["new"] == str(current) and entry["old"]:
            name, _, version = entry["old"].partition("/")
            previous = ModelRef(name, version)
            promote(models_dir, previous, action="rollback", reason=f"rolled back {current}")
            return previous
    raise ModelError(f"{current} replaced no earlier production model: nothing to roll "
                     "back to (`mlstrategy models promote NAME/VERSION` picks one)")


def parse_ref(text: str, models_dir: Path) -> ModelRef:
    """``NAME/VERSION``, or ``NAME`` for its newest version."""
    name, _, version = text.partition("/")
    if version:
        return ModelRef(name, version)
    versions = [ref for ref in list_models(models_dir) if ref.name == name]
    if not versions:
        raise ModelError(f"no model named {name!r} in {models_dir}; "
                         f"`mlstrategy models list` shows what there is, or {NO_MODEL_HINT}")
    return versions[-1]


def resolve(models_dir: Path, model: str | None, *, newest_if_no_production: bool = False
            ) -> Artifact:
    """Load the artifact the user asked for (``NAME[/VERSION]``), or the production one.

    With ``newest_if_no_production`` (evaluations: backtests, replays; never live trading),
    the newest trained model stands in when nothing is in production yet, with a warning.
    """
    if model is None:
        ref = production_ref(models_dir)
        if ref is None and newest_if_no_production and list_models(models_dir):
            ref = max(list_models(models_dir), key=lambda r: (r.version, r.name))
            log.warning("no production model in %s/: using the newest trained model, %s "
                        "(not promoted; see `mlstrategy models list`)", models_dir, ref)
        if ref is None:
            raise ModelError(f"no production model in {models_dir}/; {NO_MODEL_HINT}")
    else:
        ref = parse_ref(model, models_dir)
    path = artifact_dir(models_dir, ref)
    if not path.is_dir():
        raise ModelError(f"model {ref} not found in {models_dir}/; {NO_MODEL_HINT}")
    return load_artifact(path)


def read_manifest(models_dir: Path, ref: ModelRef) -> dict:
    """The manifest of ``ref`` as plain JSON, unverified ({} when unreadable): for scanning
    the registry without loading every model."""
    try:
        return json.loads((artifact_dir(models_dir, ref) / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return {}

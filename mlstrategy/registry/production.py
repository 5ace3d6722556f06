"""The model registry: the artifacts under ``models/`` and each market's production model.

A market is a model name (``btcusd-1h``: the dataset's name unless ``--name`` gives another);
``train`` and the cycle both write ``models/<market>/<version>/``. Each market has its own
production pointer, ``models/<market>/production.json``, replaced atomically (temp file,
fsync, rename) so a running bot polling it never reads half a file, and its own
``models/<market>/history.jsonl``: every change of it (and every challenger kept out), who
replaced whom, why, the metrics of both, when; ``rollback`` restores the production model
before the current one from it. ``index.json`` (written by ``artifact``) holds each
manifest's sha256 and the figures ``list`` shows. ``registry.migration`` moves a registry
of earlier versions (one production pointer for every market) to this layout.
"""
from __future__ import annotations

import json
import logging
import shutil
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from datafeeds.atomic import append_json_line, read_json_lines, write_atomic, write_json_atomic
from mlstrategy.errors import ModelError
from mlstrategy.registry.artifact import (
    MANIFEST,
    Artifact,
    index_artifact,
    load_artifact,
    read_index,
)

log = logging.getLogger(__name__)
PRODUCTION = "production.json"
HISTORY = "history.jsonl"
NO_MODEL_HINT = "train one first: python train_ml_strategy.py"


@dataclass(frozen=True, order=True)
class ModelRef:
    """A name (its market) and version of an artifact under a models directory."""

    name: str
    version: str

    def __str__(self) -> str:
        return f"{self.name}/{self.version}"

    @classmethod
    def parse(cls, text: str) -> ModelRef:
        """``NAME/VERSION`` as written by ``str``."""
        name, _, version = text.partition("/")
        return cls(name, version)


def artifact_dir(models_dir: Path, ref: ModelRef) -> Path:
    """Directory of the artifact ``ref``."""
    return models_dir / ref.name / ref.version


def production_path(models_dir: Path, market: str) -> Path:
    """The production pointer of ``market``."""
    return models_dir / market / PRODUCTION


def list_models(models_dir: Path, market: str | None = None) -> list[ModelRef]:
    """Every published artifact under ``models_dir`` (of ``market`` only, when given),
    sorted by name then version."""
    if not models_dir.is_dir():
        return []
    return sorted(
        ModelRef(manifest.parent.parent.name, manifest.parent.name)
        for manifest in models_dir.glob(f"{market or '*'}/*/{MANIFEST}")
        if not manifest.parent.name.startswith("."))


def markets(models_dir: Path) -> list[str]:
    """Every market with at least one model, sorted."""
    return sorted({ref.name for ref in list_models(models_dir)})


def production_ref(models_dir: Path, market: str) -> ModelRef | None:
    """The production artifact of ``market``, or None when it has none."""
    path = production_path(models_dir, market)
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return ModelRef(str(data["name"]), str(data["version"]))
    except (json.JSONDecodeError, KeyError, TypeError) as exc:
        raise ModelError(f"{path} is unreadable ({exc}); promote a model again with "
                         "`mlstrategy models promote NAME/VERSION`") from None


def productions(models_dir: Path) -> dict[str, ModelRef]:
    """Each market's production model (markets without one left out)."""
    found = {market: production_ref(models_dir, market) for market in markets(models_dir)}
    return {market: ref for market, ref in found.items() if ref is not None}


def promote(models_dir: Path, ref: ModelRef, *, action: str = "promoted", reason: str = "",
            metrics: dict | None = None) -> Path:
    """Make ``ref`` its market's production model (verifying it loads first); returns the
    pointer's path. The change is appended to the market's history with ``action``,
    ``reason`` and ``metrics``.
    """
    load_artifact(artifact_dir(models_dir, ref))  # refuse to promote a broken artifact
    old = production_ref(models_dir, ref.name)
    path = production_path(models_dir, ref.name)
    write_json_atomic(path, {
        "name": ref.name,
        "version": ref.version,
        "path": str(ref),
        "promoted": datetime.now(UTC).isoformat(timespec="seconds"),
    })
    record(models_dir, action, new=ref, old=old, reason=reason, metrics=metrics)
    return path


def record(models_dir: Path, action: str, *, new: ModelRef | None, old: ModelRef | None,
           reason: str = "", metrics: dict | None = None) -> None:
    """Append one decision to its market's ``history.jsonl`` (one JSON object per line,
    fsynced)."""
    market = (new or old).name
    append_json_line(models_dir / market / HISTORY, {
        "time": datetime.now(UTC).isoformat(timespec="seconds"), "action": action,
        "new": None if new is None else str(new), "old": None if old is None else str(old),
        "reason": reason, "metrics": metrics or {}})


def history(models_dir: Path, market: str | None = None) -> list[dict]:
    """Every recorded decision of ``market`` (of every market when None), oldest first (a
    last line torn by a crash is left out)."""
    names = [market] if market is not None else markets(models_dir)
    entries = [e for name in names for e in read_json_lines(models_dir / name / HISTORY)]
    return sorted(entries, key=lambda e: e["time"]) if market is None else entries


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
    for market in markets(models_dir):
        done += _reconcile_market(models_dir, market)
    return done


def _reconcile_market(models_dir: Path, market: str) -> list[str]:
    """``reconcile``'s work on one market's history and production pointer."""
    done = []
    path = models_dir / market / HISTORY
    entries = history(models_dir, market)
    if path.is_file() and len(path.read_text(encoding="utf-8").splitlines()) > len(entries):
        write_lines = "".join(json.dumps(e) + "\n" for e in entries)
        write_atomic(path, lambda tmp: tmp.write_text(write_lines, encoding="utf-8"))
        done.append(f"cut a torn last line from {path}")
    current = production_ref(models_dir, market)
    changes = [e for e in entries if e["action"] in _CHANGES]
    recorded = changes[-1]["new"] if changes else None
    if current is not None and str(current) != recorded:
        record(models_dir, "recovered", new=current, old=None if recorded is None else
               ModelRef.parse(recorded), reason="production.json was changed by a "
               "promotion interrupted before it was recorded")
        done.append(f"recorded the interrupted promotion of {current}")
    return done


def rollback(models_dir: Path, market: str) -> ModelRef:
    """Restore ``market``'s production model that the current one replaced (atomically).

    Raises
    ------
    ModelError
        When the market has no production model or no earlier one to go back to.
    """
    current = production_ref(models_dir, market)
    if current is None:
        raise ModelError(f"{market} has no production model in {models_dir}/ to roll back")
    for entry in reversed(history(models_dir, market)):
        if entry["action"] in ("promoted", "forced", "rollback") and \
                entry["new"] == str(current) and entry["old"]:
            previous = ModelRef.parse(entry["old"])
            promote(models_dir, previous, action="rollback", reason=f"rolled back {current}")
            return previous
    raise ModelError(f"{current} replaced no earlier production model: nothing to roll "
                     "back to (`mlstrategy models promote NAME/VERSION` picks one)")


def parse_ref(text: str, models_dir: Path) -> ModelRef:
    """``NAME/VERSION``, or ``NAME`` for its newest version."""
    ref = ModelRef.parse(text)
    if ref.version:
        return ref
    versions = list_models(models_dir, ref.name)
    if not versions:
        raise ModelError(f"no model named {ref.name!r} in {models_dir}; "
                         f"`mlstrategy models list` shows what there is, or {NO_MODEL_HINT}")
    return versions[-1]


def choose_market(models_dir: Path, hint: str | None = None) -> str:
    """The market a command means when it names no model: ``hint`` (the bars' name) when it
    is a market of the registry, else the only market there is.

    Raises
    ------
    ModelError
        When the registry is empty, or has several markets and ``hint`` is none of them.
    """
    found = markets(models_dir)
    if hint in found:
        return hint
    if len(found) == 1:
        return found[0]
    if not found:
        raise ModelError(f"no models in {models_dir}/; {NO_MODEL_HINT}")
    named = "" if hint is None else f" and none is named {hint!r}"
    raise ModelError(f"{models_dir}/ holds {len(found)} markets ({', '.join(found)}){named}: "
                     "choose one with --model NAME")


def market_of(models_dir: Path, symbol: str, timeframe: str) -> str | None:
    """The market whose production model was trained on ``symbol`` ``timeframe`` bars (the
    first by name when several were), or None."""
    for market, ref in productions(models_dir).items():
        trained = read_manifest(models_dir, ref).get("training_data", {})
        if (trained.get("symbol"), trained.get("timeframe")) == (symbol, timeframe):
            return market
    return None


def resolve(models_dir: Path, model: str | None, *, market: str | None = None,
            newest_if_no_production: bool = False) -> Artifact:
    """Load the artifact the user asked for: ``NAME/VERSION``, or the production model of the
    market ``NAME`` (of ``choose_market(models_dir, market)`` when ``model`` is None).

    With ``newest_if_no_production`` (evaluations: backtests, replays; never live trading),
    the market's newest trained model stands in when it has none in production, with a
    warning saying why.
    """
    ref = ModelRef.parse(model) if model else None
    if ref is None or not ref.version:
        name = ref.name if ref else choose_market(models_dir, market)
        ref = production_ref(models_dir, name)
        if ref is None:
            ref = _stand_in(models_dir, name, newest_if_no_production)
    path = artifact_dir(models_dir, ref)
    if not path.is_dir():
        raise ModelError(f"model {ref} not found in {models_dir}/; {NO_MODEL_HINT}")
    return load_artifact(path)


def _stand_in(models_dir: Path, market: str, allowed: bool) -> ModelRef:
    """The newest model of a market with no production model, when ``allowed``; else an
    error that says what was trained and how to promote it."""
    versions = list_models(models_dir, market)
    if not versions:
        raise ModelError(f"no model named {market!r} in {models_dir}/; {NO_MODEL_HINT}")
    newest = versions[-1]
    kept = next((e for e in reversed(history(models_dir, market))
                 if e["new"] == str(newest) and e["action"] == "kept"), None)
    why = f"it was kept out: {kept['reason']}" if kept else "it was never promoted"
    if not allowed:
        raise ModelError(f"{market} has no production model: {newest} was trained but {why}; "
                         f"promote it with `mlstrategy models promote {newest}` (add --force "
                         "if the sanity gate flagged it), or name it with --model")
    log.warning("%s has no production model: using its newest, %s (%s; see `mlstrategy "
                "models list`)", market, newest, why)
    return newest


def read_manifest(models_dir: Path, ref: ModelRef) -> dict:
    """The manifest of ``ref`` as plain JSON, unverified ({} when unreadable): for scanning
    the registry without loading every model."""
    try:
        return json.loads((artifact_dir(models_dir, ref) / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return {}


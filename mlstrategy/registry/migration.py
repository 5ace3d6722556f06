"""Move a registry of earlier versions to the per-market layout of ``registry``.

Two older layouts exist:

- ``train``'s: one ``models/production.json`` and one ``models/history.jsonl`` for every
  market. The pointer moves to ``models/<its market>/production.json`` and each history line
  to the history of the market it names.
- the cycle's: a registry per market nested in ``models/<market>/`` (versions in
  ``models/<market>/<market>/<version>/``, its own ``index.json`` and ``trials.jsonl``). Its
  pointer and history are already where the new layout keeps them; its versions move up one
  level, its index and trial ledger are merged into ``models/``'s.

Every step is a rename or an atomic rewrite, and each is done before its source is removed,
so a migration killed half-way is finished by the next run (nothing is lost or duplicated:
index entries are keyed, and a merged line is added only where it is not already).
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path

from datafeeds.atomic import read_json_lines, write_atomic, write_json_atomic
from mlstrategy.errors import ModelError
from mlstrategy.registry.artifact import INDEX, MANIFEST, read_index
from mlstrategy.registry.production import HISTORY, PRODUCTION, ModelRef
from mlstrategy.research.trials import LEDGER


def needs_migration(models_dir: Path) -> bool:
    """Whether ``models_dir`` holds anything of an older layout (two stats and a glob)."""
    return ((models_dir / PRODUCTION).exists() or (models_dir / HISTORY).exists()
            or bool(_nested(models_dir)))


def _nested(models_dir: Path) -> list[Path]:
    """The cycle's per-market registries: ``models/<m>/`` holding ``models/<m>/<m>/``."""
    return sorted(inner.parent for inner in models_dir.glob("*/*")
                  if inner.is_dir() and inner.name == inner.parent.name)


def migrate(models_dir: Path) -> list[str]:
    """Move ``models_dir`` to the per-market layout; returns what was done, one line each.

    Raises
    ------
    ModelError
        When a version exists in both layouts (the same market trained by ``train`` and by
        the cycle in the same second): the user has to say which one stays.
    """
    done = [line for outer in _nested(models_dir) for line in _flatten(models_dir, outer)]
    if (models_dir / HISTORY).exists():
        done.append(_split_history(models_dir))
    if (models_dir / PRODUCTION).exists():
        done.append(_move_pointer(models_dir))
    return done


def _flatten(models_dir: Path, outer: Path) -> list[str]:
    """Lift a cycle registry's versions, index and ledger into ``models_dir``."""
    inner = outer / outer.name
    for version in sorted(p for p in inner.iterdir() if p.is_dir()):
        target = outer / version.name
        if target.exists():
            raise ModelError(f"{outer.name}/{version.name} exists twice ({version} and "
                             f"{target}); remove one of them, then run again")
        version.rename(target)
    index = read_index(outer)
    if index:
        merged = {**index, **read_index(models_dir)}
        write_json_atomic(models_dir / INDEX, merged)
        (outer / INDEX).unlink()
    ledger = outer / LEDGER
    if ledger.exists():
        _merge_lines(models_dir / LEDGER, read_json_lines(ledger))
        ledger.unlink()
    (outer / f"{INDEX}.lock").unlink(missing_ok=True)
    shutil.rmtree(inner)  # empty but for temp leftovers of killed writes
    return [f"moved the cycle's registry {inner}/ up into {outer}/"]


def _split_history(models_dir: Path) -> str:
    """Give each market the lines of the shared history that concern it."""
    path = models_dir / HISTORY
    entries = read_json_lines(path)
    by_market: dict[str, list[dict]] = {}
    for entry in entries:
        market = ModelRef.parse(entry["new"] or entry["old"]).name
        by_market.setdefault(market, []).append(entry)
    for market, lines in by_market.items():
        _merge_lines(models_dir / market / HISTORY, lines, key=lambda e: e["time"])
    path.unlink()
    return f"split {path} into the histories of {', '.join(sorted(by_market))}"


def _merge_lines(target: Path, lines: list[dict], key=None) -> None:
    """Rewrite the JSON-lines file ``target`` (atomically) with ``lines`` added, each line
    once: a rerun after a kill adds nothing twice. Sorted by ``key`` when given."""
    present = read_json_lines(target)
    seen = {json.dumps(e, sort_keys=True) for e in present}
    merged = [*present, *(e for e in lines if json.dumps(e, sort_keys=True) not in seen)]
    text = "".join(json.dumps(e) + "\n" for e in (sorted(merged, key=key) if key else merged))
    target.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(target, lambda tmp: tmp.write_text(text, encoding="utf-8"))


def _move_pointer(models_dir: Path) -> str:
    """Move the shared production pointer to its market, unless that market's own pointer
    (written by a cycle) is newer."""
    path = models_dir / PRODUCTION
    try:
        pointer = json.loads(path.read_text(encoding="utf-8"))
        market = str(pointer["name"])
    except (json.JSONDecodeError, KeyError, TypeError) as exc:
        raise ModelError(f"{path} is unreadable ({exc}); delete it and promote a model again "
                         "with `mlstrategy models promote NAME/VERSION`") from None
    if not (models_dir / market / pointer["version"] / MANIFEST).is_file():
        raise ModelError(f"{path} names {market}/{pointer['version']}, which is not in "
                         f"{models_dir}/; delete it and promote a model again")
    target = models_dir / market / PRODUCTION
    if target.exists() and json.loads(target.read_text(encoding="utf-8")).get(
            "promoted", "") >= pointer.get("promoted", ""):
        path.unlink()
        return f"{target} is newer than {path}, which was removed"
    write_json_atomic(target, pointer)
    path.unlink()
    return f"moved {path} to {target} ({market}'s production model)"

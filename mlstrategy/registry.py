"""The model registry: the artifacts under ``models/`` and which one is in production.

``models/production.json`` names the production artifact. It is replaced atomically (temp
file, fsync, rename), so a running bot polling it never reads half a file.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from mlstrategy.artifact import MANIFEST, Artifact, load_artifact
from mlstrategy.atomic import write_json_atomic
from mlstrategy.errors import ModelError

PRODUCTION = "production.json"
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


def promote(models_dir: Path, ref: ModelRef) -> Path:
    """Make ``ref`` the production model (verifying it loads first); returns production.json."""
    load_artifact(artifact_dir(models_dir, ref))  # refuse to promote a broken artifact
    path = models_dir / PRODUCTION
    write_json_atomic(path, {
        "name": ref.name,
        "version": ref.version,
        "path": f"{ref.name}/{ref.version}",
        "promoted": datetime.now(UTC).isoformat(timespec="seconds"),
    })
    return path


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


def resolve(models_dir: Path, model: str | None) -> Artifact:
    """Load the artifact the user asked for (``NAME[/VERSION]``), or the production one."""
    if model is None:
        ref = production_ref(models_dir)
        if ref is None:
            raise ModelError(f"no production model in {models_dir}/; {NO_MODEL_HINT}")
    else:
        ref = parse_ref(model, models_dir)
    path = artifact_dir(models_dir, ref)
    if not path.is_dir():
        raise ModelError(f"model {ref} not found in {models_dir}/; {NO_MODEL_HINT}")
    return load_artifact(path)


def trials_on_same_data(models_dir: Path, artifact: Artifact) -> int:
    """How many models were trained on the same bars as ``artifact`` (itself included).

    Each is one configuration tried on these data: the deflated Sharpe of a backtest
    discounts the best of that many tries.
    """
    sha = artifact.manifest["training_data"]["sha256"]
    count = 0
    for ref in list_models(models_dir):
        try:
            manifest = json.loads((artifact_dir(models_dir, ref) / MANIFEST)
                                  .read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError):
            continue
        count += manifest.get("training_data", {}).get("sha256") == sha
    return max(count, 1)

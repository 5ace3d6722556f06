"""Model artifacts: ``models/<name>/<version>/`` = model file + ``manifest.json`` (DESIGN §3).

Saving assembles the directory under a hidden name and publishes it with one rename, so a
half-written artifact is never visible. Loading verifies the model file's sha256 and that the
feature spec (including the kernel version) is the one this code computes: a model trained on
other features is refused.
"""
from __future__ import annotations

import hashlib
import json
import platform
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path

from features_numba import KERNEL_VERSION, FeatureSpec
from mlstrategy.atomic import publish_directory, staging_directory
from mlstrategy.errors import ModelError
from mlstrategy.labels import LabelSpec
from mlstrategy.models.catboost import CatBoostModel

SCHEMA_VERSION = 1
MANIFEST = "manifest.json"
_LIBRARIES = ("mlstrategy", "catboost", "numba", "numpy", "pandas", "scikit-learn", "backtrader")


@dataclass(frozen=True)
class Thresholds:
    """Decision thresholds on P(up): go long at or above ``enter``, exit below ``exit``."""

    enter: float
    exit: float

    def to_dict(self) -> dict:
        """JSON-ready form."""
        return {"enter": self.enter, "exit": self.exit}


@dataclass(frozen=True)
class Artifact:
    """A loaded, verified model with everything needed to use it on new bars."""

    path: Path
    name: str
    version: str
    model: CatBoostModel
    spec: FeatureSpec
    label: LabelSpec
    thresholds: Thresholds
    manifest: dict


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def library_versions() -> dict[str, str]:
    """Versions of Python and the libraries a model's behaviour depends on."""
    versions = {"python": platform.python_version()}
    for lib in _LIBRARIES:
        try:
            versions[lib] = metadata.version(lib)
        except metadata.PackageNotFoundError:
            versions[lib] = "not installed"
    return versions


def new_version() -> str:
    """A sortable, unique-per-second version string: ``YYYYMMDDTHHMMSSZ``."""
    return datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")


def save_artifact(models_dir: Path, name: str, model: CatBoostModel, manifest: dict) -> Path:
    """Write the model and its manifest to ``models_dir/name/<version>/`` atomically.

    ``manifest`` carries the training description (features, label, thresholds, data,
    validation); this adds schema, name, version, creation time, library versions and the
    model file's sha256. Returns the published directory.
    """
    version = manifest.get("version") or new_version()
    parent = models_dir / name
    final = parent / version
    if final.exists():
        raise ModelError(f"model {name}/{version} already exists in {models_dir}; "
                         "wait a second or pass another --name")
    staging = staging_directory(parent, version)
    model_path = model.save(staging)
    full = {
        "schema_version": SCHEMA_VERSION,
        "name": name,
        "version": version,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        **{k: v for k, v in manifest.items() if k != "version"},
        "libraries": library_versions(),
        "model_file": model_path.name,
        "model_sha256": sha256_file(model_path),
    }
    (staging / MANIFEST).write_text(json.dumps(full, indent=2) + "\n", encoding="utf-8")
    publish_directory(staging, final)
    return final


def load_artifact(path: Path) -> Artifact:
    """Load and verify the artifact in directory ``path``.

    Raises
    ------
    ModelError
        If the manifest is missing or unreadable, the model file's sha256 differs, or the
        feature spec does not match what this version of the feature kernels computes.
    """
    manifest_path = path / MANIFEST
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ModelError(f"{manifest_path} not found: {path} is not a model directory "
                         "(train one with `python train_ml_strategy.py`)") from None
    except json.JSONDecodeError as exc:
        raise ModelError(f"{manifest_path} is not valid JSON ({exc}); retrain the model") from None
    if manifest.get("schema_version") != SCHEMA_VERSION:
        raise ModelError(f"{manifest_path}: schema version {manifest.get('schema_version')!r}, "
                         f"this mlstrategy reads {SCHEMA_VERSION}; retrain the model")
    model_path = path / manifest["model_file"]
    if not model_path.is_file():
        raise ModelError(f"{model_path} is missing; the artifact is incomplete, retrain it")
    actual = sha256_file(model_path)
    if actual != manifest["model_sha256"]:
        raise ModelError(f"{model_path}: sha256 {actual[:12]}... differs from the manifest's "
                         f"{manifest['model_sha256'][:12]}...: the file was modified or "
                         "corrupted; retrain or restore it")
    spec = FeatureSpec.from_dict(manifest["features"]["spec"])
    if spec.hash != manifest["features"]["hash"]:
        raise ModelError(
            f"{path}: the model was trained with feature hash {manifest['features']['hash'][:12]}"
            f" (kernel version {manifest['features'].get('kernel_version')}), but these features "
            f"now hash to {spec.hash[:12]} (kernel version {KERNEL_VERSION}); retrain the model"
        )
    thresholds = manifest["thresholds"]
    return Artifact(
        path=path,
        name=manifest["name"],
        version=manifest["version"],
        model=CatBoostModel.load(model_path),
        spec=spec,
        label=LabelSpec.from_dict(manifest["label"]),
        thresholds=Thresholds(enter=float(thresholds["enter"]), exit=float(thresholds["exit"])),
        manifest=manifest,
    )

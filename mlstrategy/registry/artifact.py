"""Model artifacts: ``models/<name>/<version>/`` = model file + ``manifest.json`` (DESIGN §3).

The manifest is one typed dataclass (``Manifest``), written and read here only, with a schema
version that is checked. Saving assembles the directory under a hidden name (model file,
manifest, ``training_bars.npy``, ``metrics.json``, ``feature_importance.png``, ``report.md``)
and publishes it with one rename, then records the manifest's sha256 in the registry's
``index.json``. ``training_bars.npy`` holds the fingerprint of every training bar
(``datafeeds.fingerprint``: 8 bytes a bar), so a backtest finds them by content whatever the
file is called. Loading refuses, each with a one-line reason: an unknown schema or learner
kind, a pickle, a model or fingerprint file whose sha256 differs, features that now hash
differently, a model whose input width is not the spec's, and a manifest edited after
publishing.
"""
from __future__ import annotations

import fcntl
import hashlib
import json
import os
import platform
from dataclasses import MISSING, asdict, dataclass, field, fields
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path

import numpy as np
import pandas as pd

from datafeeds.atomic import publish_directory, staging_directory, write_json_atomic
from datafeeds.fingerprint import matches
from features_numba import KERNEL_VERSION, FeatureSpec
from mlstrategy.errors import ModelError
from mlstrategy.research.dataset import DatasetInfo
from mlstrategy.research.drift_reference import DriftReference
from mlstrategy.research.labels import LabelSpec

SCHEMA_VERSION = 3
MANIFEST = "manifest.json"
TRAINING_BARS = "training_bars.npy"  # sorted unique fingerprints of the training bars
HOLDOUT_RETURNS = "holdout_returns.npy"  # the holdout backtest's net return per bar (drift)
INDEX = "index.json"  # models_dir/index.json: "name/version" -> manifest sha256 and metrics
_PICKLE_SUFFIXES = (".pkl", ".pickle", ".joblib", ".dill")
_LIBRARIES = ("mlstrategy", "catboost", "scikit-learn", "skops", "xgboost", "numba", "numpy",
              "pandas", "backtrader")


@dataclass(frozen=True)
class Thresholds:
    """Decision thresholds on P(up): go long at or above ``enter``, exit below ``exit`` (in a
    manifest, with the rule that chose them)."""

    enter: float
    exit: float
    enter_quantile: float | None = None
    rule: str = ""

    def to_dict(self) -> dict:
        """JSON-ready form."""
        return {"enter": self.enter, "exit": self.exit}


@dataclass(frozen=True)
class FeatureInfo:
    """The features a model reads: their spec and hash (checked at load), column names, the
    kernel version that computed them, the bars they need to warm up and what else they read
    (other markets' bars, series of values: a backtest and a bot need those too)."""

    spec: dict
    hash: str
    names: list[str]
    kernel_version: int
    warmup: int
    inputs: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Validation:
    """How the model was validated, and how it did: the scheme and its purge and embargo, the
    costs, each fold's and the holdout's metrics (dicts of figures), the sanity gate's limits,
    each feature's AUC alone, and a sweep's search when one chose the model."""

    scheme: str
    folds_asked: int
    test_groups: int | None
    purge: str
    purge_bars: int
    embargo_bars: int
    test_fraction: float
    cost_per_side: float
    folds: list[dict]
    holdout: dict
    gate: dict
    single_feature_auc: dict
    search: dict | None = None


@dataclass(frozen=True)
class Learner:
    """Which model kind, with which parameters."""

    kind: str
    params: dict


@dataclass(frozen=True)
class TrainingData(DatasetInfo):
    """The bars a model was trained on, and where its holdout (its first clean bar) starts.

    ``fingerprint_*`` describe ``training_bars.npy``: the fingerprints of the bars before the
    first clean bar (the training span and its label purge).
    """

    train_bars: list[int]
    holdout_bars: list[int]
    holdout_first_bar: str
    fingerprint_bars: int
    fingerprint_sha256: str
    inputs: dict = field(default_factory=dict)  # other markets' bars and series, described


@dataclass(frozen=True)
class Manifest:
    """Everything known about an artifact (see DESIGN §3)."""

    schema_version: int
    name: str
    version: str
    created: str
    learner: Learner
    features: FeatureInfo
    label: LabelSpec
    thresholds: Thresholds
    training_data: TrainingData
    validation: Validation
    suspicious: list[str]
    libraries: dict
    model_file: str
    model_sha256: str
    drift: dict | None = None  # DriftReference (models trained before it have none)

    def to_dict(self) -> dict:
        """JSON-ready form (field order kept; no ``search`` unless a sweep chose the model,
        no ``drift`` reference unless training made one)."""
        data = asdict(self)
        if data["validation"]["search"] is None:
            del data["validation"]["search"]
        if data["drift"] is None:
            del data["drift"]
        return data

    @classmethod
    def from_dict(cls, data: dict, source: str) -> Manifest:
        """Read a manifest's JSON object, refusing a missing or unknown schema."""
        if data.get("schema_version") != SCHEMA_VERSION:
            raise ModelError(f"{source}: manifest schema {data.get('schema_version')!r}, this "
                             f"mlstrategy reads schema {SCHEMA_VERSION}; retrain the model")
        missing = [f.name for f in fields(cls) if f.name not in data and f.default is MISSING]
        if missing:
            raise ModelError(f"{source}: manifest lacks {', '.join(missing)}; retrain the "
                             "model")
        try:
            return cls(**{**data, "learner": Learner(**data["learner"]),
                          "features": FeatureInfo(**data["features"]),
                          "label": LabelSpec.from_dict(data["label"]),
                          "thresholds": Thresholds(**data["thresholds"]),
                          "validation": Validation(**data["validation"]),
                          "training_data": TrainingData(**data["training_data"])})
        except TypeError as exc:
            raise ModelError(f"{source}: malformed manifest ({exc}); retrain the model") \
                from None

    @property
    def ref(self) -> str:
        """``name/version``: how the registry names the artifact."""
        return f"{self.name}/{self.version}"

    def summary(self) -> dict:
        """The few figures a listing shows."""
        holdout = self.validation.holdout
        return {"kind": self.learner.kind, "holdout_auc": holdout.get("auc"),
                "holdout_sharpe": holdout.get("sharpe"),
                "buy_hold_sharpe": holdout.get("buy_hold_sharpe"),
                "suspicious": len(self.suspicious)}


@dataclass(frozen=True)
class Artifact:
    """A loaded, verified model with everything needed to use it on new bars."""

    path: Path
    name: str
    version: str
    model: object  # models.protocol.Model
    spec: FeatureSpec
    label: LabelSpec
    thresholds: Thresholds
    manifest: Manifest
    training_bars: np.ndarray  # sorted fingerprints of the training bars
    drift: DriftReference | None = None  # what drift is measured against (None: older model)
    holdout_returns: np.ndarray | None = None  # per bar, for the live return's band

    def is_training_bar(self, bars: pd.DataFrame) -> np.ndarray:
        """Per bar of ``bars``: whether it is one of this model's training bars (by content)."""
        return matches(bars, self.training_bars)

    @property
    def training_cost(self) -> float:
        """The cost per side the model was validated with (a backtest's default
        commission)."""
        return float(self.manifest.validation.cost_per_side)

    @property
    def ref(self) -> str:
        """``name/version``."""
        return self.manifest.ref

    def other_market(self, other: Artifact) -> str | None:
        """Why ``other`` trades another market than this model (symbol or timeframe), or
        None when it trades the same."""
        mine, theirs = self.manifest.training_data, other.manifest.training_data
        if (mine.symbol, mine.timeframe) == (theirs.symbol, theirs.timeframe):
            return None
        return (f"{other.ref} was trained on {theirs.symbol} {theirs.timeframe} bars, "
                f"{self.ref} on {mine.symbol} {mine.timeframe}")


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


# --- the registry's index: manifest checksums and listing figures -------------------------
def read_index(models_dir: Path) -> dict:
    """``models_dir/index.json`` ({} when there is none)."""
    try:
        return json.loads((models_dir / INDEX).read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except json.JSONDecodeError as exc:
        raise ModelError(f"{models_dir / INDEX} is unreadable ({exc}); restore it from a "
                         "backup or delete it to stop checking manifests") from None


def _record_in_index(models_dir: Path, ref: str, entry: dict) -> None:
    """Add ``ref`` to the index atomically, one writer at a time."""
    lock = os.open(models_dir / f"{INDEX}.lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(lock, fcntl.LOCK_EX)
        index = read_index(models_dir)
        index[ref] = entry
        write_json_atomic(models_dir / INDEX, index)
    finally:
        fcntl.flock(lock, fcntl.LOCK_UN)
        os.close(lock)


# --- saving -----------------------------------------------------------------------------
def save_artifact(models_dir: Path, name: str, model: object, draft: dict, *,
                  training_bars: np.ndarray, importance: np.ndarray | None = None) -> Path:
    """Write the model and its manifest to ``models_dir/name/<version>/`` atomically.

    ``draft`` carries the training description (``TrainResult.manifest``: features, label,
    thresholds, learner, data, validation, suspicious); this adds schema, name, version,
    creation time, library versions and the model file's sha256, checks it as a ``Manifest``,
    and writes ``training_bars.npy`` (``training_bars``: the sorted fingerprints of the
    training bars, ``TrainResult.training_bars``), ``metrics.json``,
    ``feature_importance.png`` and ``report.md`` beside it. Returns the published directory.
    """
    version = draft.get("version") or new_version()
    parent = models_dir / name
    final = parent / version
    if final.exists():
        raise ModelError(f"model {name}/{version} already exists in {models_dir}; "
                         "wait a second or pass another --name")
    staging = staging_directory(parent, version)
    model_path = model.save(staging)
    np.save(staging / TRAINING_BARS, np.asarray(training_bars, dtype=np.uint64),
            allow_pickle=False)
    body = {k: v for k, v in draft.items() if k != "version"}
    if body.get("drift") is not None and "returns" not in body["drift"]:
        body["drift"] = None  # a draft copied from a saved manifest: its returns file is not here
    if body.get("drift") is not None:
        returns = np.asarray(body["drift"]["returns"], dtype=np.float64)
        np.save(staging / HOLDOUT_RETURNS, returns, allow_pickle=False)
        body["drift"] = {**{k: v for k, v in body["drift"].items() if k != "returns"},
                         "returns_bars": len(returns),
                         "returns_sha256": sha256_file(staging / HOLDOUT_RETURNS)}
    body["training_data"] = {**body["training_data"], "fingerprint_bars": len(training_bars),
                             "fingerprint_sha256": sha256_file(staging / TRAINING_BARS)}
    manifest = Manifest.from_dict({
        "schema_version": SCHEMA_VERSION, "name": name, "version": version,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "suspicious": [], **body, "libraries": library_versions(),
        "model_file": model_path.name, "model_sha256": sha256_file(model_path)}, str(final))
    (staging / MANIFEST).write_text(json.dumps(manifest.to_dict(), indent=2, default=_plain)
                                    + "\n", encoding="utf-8")
    _write_extras(staging, manifest, importance)
    publish_directory(staging, final)
    index_artifact(models_dir, final, manifest)
    return final


def index_artifact(models_dir: Path, path: Path, manifest: Manifest) -> None:
    """Record the published artifact at ``path`` (its manifest's sha256 and listing figures)
    in the registry's index."""
    _record_in_index(models_dir, manifest.ref,
                     {"manifest_sha256": sha256_file(path / MANIFEST), **manifest.summary()})


def _plain(value: object) -> object:
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"{type(value).__name__} is not JSON")


def _write_extras(directory: Path, manifest: Manifest, importance: np.ndarray | None) -> None:
    """``metrics.json``, ``feature_importance.png`` and ``report.md`` of a new artifact."""
    from mlstrategy.registry.model_report import importance_plot, markdown_report

    names = manifest.features.names
    ranked = [] if importance is None else sorted(
        zip(names, (float(v) for v in importance), strict=True), key=lambda p: -p[1])
    metrics = {"validation": manifest.to_dict()["validation"], "suspicious": manifest.suspicious,
               "feature_importance": dict(ranked)}
    (directory / "metrics.json").write_text(json.dumps(metrics, indent=2, default=_plain)
                                            + "\n", encoding="utf-8")
    if ranked:
        importance_plot(ranked[:20], directory / "feature_importance.png",
                        title=f"{manifest.ref} ({manifest.learner.kind})")
    (directory / "report.md").write_text(markdown_report(manifest, ranked[:20]),
                                         encoding="utf-8")


# --- loading ----------------------------------------------------------------------------
def load_artifact(path: Path) -> Artifact:
    """Load and verify the artifact in directory ``path`` (refusals: see module doc).

    Raises
    ------
    ModelError
        One line saying what is wrong and what to do.
    """
    from mlstrategy.models import model_class

    manifest_path = path / MANIFEST
    try:
        raw = manifest_path.read_bytes()
        data = json.loads(raw)
    except FileNotFoundError:
        raise ModelError(f"{manifest_path} not found: {path} is not a model directory "
                         "(train one with `python train_ml_strategy.py`)") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ModelError(f"{manifest_path} is not valid JSON ({exc}); retrain the model") \
            from None
    manifest = Manifest.from_dict(data, str(manifest_path))
    _check_unedited(path, manifest, hashlib.sha256(raw).hexdigest())
    cls = model_class(manifest.learner.kind)
    model_path = path / manifest.model_file
    if model_path.suffix.lower() in _PICKLE_SUFFIXES:
        raise ModelError(f"{model_path}: pickle files are never loaded (they run code); "
                         "retrain the model, which saves it in its own safe format")
    if not model_path.is_file():
        raise ModelError(f"{model_path} is missing; the artifact is incomplete, retrain it")
    with open(model_path, "rb") as fh:
        if fh.read(1) == b"\x80":
            raise ModelError(f"{model_path} is a pickle; pickles are never loaded (they run "
                             "code); retrain the model")
    actual = sha256_file(model_path)
    if actual != manifest.model_sha256:
        raise ModelError(f"{model_path}: sha256 {actual[:12]}... differs from the manifest's "
                         f"{manifest.model_sha256[:12]}...: the file was modified or "
                         "corrupted; retrain or restore it")
    spec = FeatureSpec.from_dict(manifest.features.spec)
    if spec.hash != manifest.features.hash:
        raise ModelError(
            f"{path}: the model was trained with feature hash {manifest.features.hash[:12]}"
            f" (kernel version {manifest.features.kernel_version}), but these features "
            f"now hash to {spec.hash[:12]} (kernel version {KERNEL_VERSION}); retrain the model")
    model = cls.load(model_path)
    if model.n_features != len(spec):
        raise ModelError(f"{model_path}: the model takes {model.n_features} features but its "
                         f"spec has {len(spec)}; the artifact is inconsistent, retrain it")
    thresholds = manifest.thresholds
    drift = None if manifest.drift is None else DriftReference.from_dict(manifest.drift)
    return Artifact(path=path, name=manifest.name, version=manifest.version, model=model,
                    spec=spec, label=manifest.label,
                    thresholds=Thresholds(float(thresholds.enter), float(thresholds.exit)),
                    manifest=manifest, training_bars=_training_bars(path, manifest),
                    drift=drift, holdout_returns=None if drift is None else
                    _verified_array(path / HOLDOUT_RETURNS, drift.returns_sha256))


def _training_bars(path: Path, manifest: Manifest) -> np.ndarray:
    """The verified fingerprints of the artifact's training bars."""
    return _verified_array(path / TRAINING_BARS, manifest.training_data.fingerprint_sha256)


def _verified_array(file: Path, sha256: str) -> np.ndarray:
    """The array in ``file``, whose sha256 the manifest recorded."""
    if not file.is_file():
        raise ModelError(f"{file} is missing; the artifact is incomplete, retrain it")
    if sha256_file(file) != sha256:
        raise ModelError(f"{file}: sha256 differs from the manifest's: the file was modified "
                         "or corrupted; retrain or restore it")
    try:
        return np.load(file, allow_pickle=False)
    except ValueError as exc:
        raise ModelError(f"{file} is unreadable ({exc}); retrain the model") from None


def _check_unedited(path: Path, manifest: Manifest, sha: str) -> None:
    """Refuse a manifest whose bytes differ from what the registry recorded at publishing."""
    models_dir = path.parent.parent
    entry = read_index(models_dir).get(manifest.ref)
    if entry is not None and entry.get("manifest_sha256") != sha:
        raise ModelError(f"{path / MANIFEST} was edited after publishing (its sha256 is not "
                         f"the one recorded in {models_dir / INDEX}); restore it or retrain")

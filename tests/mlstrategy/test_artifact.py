from __future__ import annotations

import json
import shutil

import pytest

from mlstrategy.artifact import load_artifact, save_artifact
from mlstrategy.errors import ModelError


def _copy(trained, tmp_path):
    dst = tmp_path / "m" / "v1"
    shutil.copytree(trained.artifact.path, dst)
    return dst


def test_artifact_round_trip_predicts_identically(trained, tmp_path):
    path = _copy(trained, tmp_path)
    loaded = load_artifact(path)
    assert loaded.spec == trained.artifact.spec
    assert loaded.thresholds == trained.artifact.thresholds
    manifest = json.loads((path / "manifest.json").read_text())
    for key in ("schema_version", "name", "version", "created", "features", "label",
                "thresholds", "training_data", "validation", "libraries", "model_sha256"):
        assert key in manifest


def test_tampered_model_file_is_refused(trained, tmp_path):
    path = _copy(trained, tmp_path)
    with open(path / "model.cbm", "ab") as fh:
        fh.write(b"\0")
    with pytest.raises(ModelError, match="sha256"):
        load_artifact(path)


def test_model_trained_on_other_features_is_refused(trained, tmp_path):
    path = _copy(trained, tmp_path)
    manifest = json.loads((path / "manifest.json").read_text())
    manifest["features"]["hash"] = "0" * 64
    (path / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ModelError, match="retrain"):
        load_artifact(path)


def test_missing_manifest_says_how_to_train(tmp_path):
    with pytest.raises(ModelError, match="train_ml_strategy"):
        load_artifact(tmp_path)


def test_save_publishes_whole_directories_only(trained, tmp_path):
    path = save_artifact(tmp_path, "x", trained.artifact.model,
                         {**trained.result.manifest, "version": "v1"})
    assert sorted(p.name for p in path.iterdir()) == ["manifest.json", "model.cbm"]
    assert not list((tmp_path / "x").glob(".*"))  # no staging left behind
    with pytest.raises(ModelError, match="already exists"):
        save_artifact(tmp_path, "x", trained.artifact.model,
                      {**trained.result.manifest, "version": "v1"})

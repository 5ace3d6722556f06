"""Artifacts: round trip, and every refusal in one line with what to do."""
from __future__ import annotations

import json
import pickle
import shutil

import pytest

from mlstrategy.errors import ModelError
from mlstrategy.registry.artifact import load_artifact, save_artifact


def _copy(trained, tmp_path):
    dst = tmp_path / "m" / "v1"
    shutil.copytree(trained.artifact.path, dst)
    return dst


def _edit_manifest(path, change) -> None:
    manifest = json.loads((path / "manifest.json").read_text())
    change(manifest)
    (path / "manifest.json").write_text(json.dumps(manifest))


def test_artifact_round_trip_predicts_identically(trained, tmp_path):
    path = _copy(trained, tmp_path)
    loaded = load_artifact(path)
    assert loaded.spec == trained.artifact.spec
    assert loaded.thresholds == trained.artifact.thresholds
    manifest = json.loads((path / "manifest.json").read_text())
    for key in ("schema_version", "name", "version", "created", "features", "label",
                "thresholds", "training_data", "validation", "libraries", "model_sha256",
                "learner", "suspicious"):
        assert key in manifest


@pytest.mark.parametrize(("change", "said"), [
    (lambda p: open(p / "model.cbm", "ab").write(b"\0"), "sha256"),
    (lambda p: _edit_manifest(p, lambda m: m["features"].update(hash="0" * 64)), "retrain"),
    (lambda p: _edit_manifest(p, lambda m: m.update(schema_version=99)), "schema"),
    (lambda p: _edit_manifest(p, lambda m: m["learner"].update(kind="svm")),
     "unknown learner kind"),
    (lambda p: _edit_manifest(p, lambda m: m.update(model_file="model.pkl")), "pickle"),
], ids=["model-file-modified", "feature-hash", "schema", "learner-kind", "pickle-name"])
def test_refusals_name_the_problem_in_one_line(trained, tmp_path, change, said):
    path = _copy(trained, tmp_path)
    change(path)
    with pytest.raises(ModelError, match=said) as err:
        load_artifact(path)
    assert "\n" not in str(err.value)


def test_a_pickle_in_place_of_the_model_is_refused(trained, tmp_path):
    path = _copy(trained, tmp_path)
    (path / "model.cbm").write_bytes(pickle.dumps({"not": "a model"}))
    _edit_manifest(path, lambda m: None)
    with pytest.raises(ModelError, match="pickle"):
        load_artifact(path)


def _narrower(trained) -> dict:
    """The manifest's features less the last column, consistently hashed."""
    from features_numba import FeatureSpec

    spec = trained.artifact.manifest.features.spec
    narrower = {**trained.artifact.manifest.to_dict()["features"],
                "spec": {**spec, "features": spec["features"][:-1]}}
    narrower["hash"] = FeatureSpec.from_dict(narrower["spec"]).hash
    return narrower


def test_a_model_whose_width_is_not_its_specs_is_refused(trained, tmp_path):
    path = _copy(trained, tmp_path)
    _edit_manifest(path, lambda m: m.update(features=_narrower(trained)))
    with pytest.raises(ModelError, match="takes 39 features but its spec has 38"):
        load_artifact(path)


def test_a_manifest_edited_after_publishing_is_refused(trained, tmp_path):
    version = save_artifact(tmp_path, "btc", trained.artifact.model,
                            {**_draft(trained), "version": "v1"},
                            training_bars=trained.artifact.training_bars)
    load_artifact(version)  # as published: fine
    _edit_manifest(version, lambda m: m["thresholds"].update(enter=0.01))
    with pytest.raises(ModelError, match="edited after publishing"):
        load_artifact(version)


def _draft(trained) -> dict:
    return {k: v for k, v in trained.artifact.manifest.to_dict().items()
            if k not in ("schema_version", "name", "created", "libraries", "model_file",
                         "model_sha256")}


def test_missing_manifest_says_how_to_train(tmp_path):
    with pytest.raises(ModelError, match="train_ml_strategy"):
        load_artifact(tmp_path)


def test_save_publishes_whole_directories_only(trained, tmp_path):
    path = save_artifact(tmp_path, "x", trained.artifact.model, {**_draft(trained),
                                                                 "version": "v1"},
                         training_bars=trained.artifact.training_bars)
    assert sorted(p.name for p in path.iterdir()) == ["manifest.json", "metrics.json",
                                                      "model.cbm", "report.md",
                                                      "training_bars.npy"]
    assert not list((tmp_path / "x").glob(".*"))  # no staging left behind
    with pytest.raises(ModelError, match="already exists"):
        save_artifact(tmp_path, "x", trained.artifact.model, {**_draft(trained),
                                                              "version": "v1"},
                      training_bars=trained.artifact.training_bars)


@pytest.mark.parametrize("refusal", ["model-file", "feature-hash", "schema", "learner-kind",
                                     "pickle", "width", "edited", "training-bars"])
def test_each_refusal_is_exit_2_and_one_line_from_the_cli(trained, tmp_path, refusal):
    import subprocess
    import sys

    models = tmp_path / "models"
    path = save_artifact(models, "btc", trained.artifact.model, {**_draft(trained),
                                                                 "version": "v1"},
                         training_bars=trained.artifact.training_bars)
    changes = {
        "model-file": lambda: open(path / "model.cbm", "ab").write(b"\0"),
        "feature-hash": lambda: _edit_manifest(path, lambda m: m["features"].update(
            hash="0" * 64)),
        "schema": lambda: _edit_manifest(path, lambda m: m.update(schema_version=1)),
        "learner-kind": lambda: _edit_manifest(path, lambda m: m["learner"].update(
            kind="svm")),
        "pickle": lambda: (path / "model.cbm").write_bytes(pickle.dumps([1])),
        "edited": lambda: _edit_manifest(path, lambda m: m["thresholds"].update(enter=0.1)),
        "width": lambda: _edit_manifest(path, lambda m: m.update(features=_narrower(trained))),
        "training-bars": lambda: open(path / "training_bars.npy", "ab").write(b"\0"),
    }
    changes[refusal]()
    if refusal != "edited":  # the others are refused for what they say, not for the edit
        (models / "index.json").unlink()
    result = subprocess.run([sys.executable, "-m", "mlstrategy.cli", "models", "show",
                             "btc/v1", "--models-dir", str(models)], capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == 2, result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.stderr

"""The registry: production pointer, champion/challenger, history, rollback, refusals."""
from __future__ import annotations

import json
import shutil

import pytest

from mlstrategy.errors import ModelError
from mlstrategy.registry.artifact import load_artifact, save_artifact
from mlstrategy.registry.production import (
    ModelRef,
    history,
    list_models,
    parse_ref,
    production_ref,
    promote,
    resolve,
    rollback,
)
from mlstrategy.registry.promotion import promote_if_better


def test_production_model_resolves(trained):
    ref = production_ref(trained.models_dir, "btc")
    assert ref == ModelRef("btc", trained.artifact.version)
    assert resolve(trained.models_dir, None).version == trained.artifact.version
    assert parse_ref("btc", trained.models_dir) == ref
    assert list_models(trained.models_dir) == [ref]


def test_no_production_model_says_how_to_train(tmp_path):
    with pytest.raises(ModelError, match="python train_ml_strategy.py"):
        resolve(tmp_path, None)


def test_promote_replaces_production_json_whole(trained, tmp_path):
    shutil.copytree(trained.models_dir, tmp_path, dirs_exist_ok=True)
    path = promote(tmp_path, ModelRef("btc", trained.artifact.version))
    data = json.loads(path.read_text())
    assert data["name"] == "btc" and data["version"] == trained.artifact.version
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_promoting_a_missing_model_fails_and_keeps_production(trained, tmp_path):
    shutil.copytree(trained.models_dir, tmp_path, dirs_exist_ok=True)
    before = (tmp_path / "btc" / "production.json").read_text()
    with pytest.raises(ModelError):
        promote(tmp_path, ModelRef("btc", "nope"))
    assert (tmp_path / "btc" / "production.json").read_text() == before


def test_corrupt_production_json_is_a_clear_error(tmp_path):
    (tmp_path / "btc").mkdir()
    (tmp_path / "btc" / "production.json").write_text("{not json")
    with pytest.raises(ModelError, match="promote"):
        production_ref(tmp_path, "btc")


def _clone(trained, models_dir, version: str, **changes):
    """The trained model saved again as another version (its manifest changed as asked)."""
    draft = {k: v for k, v in trained.artifact.manifest.to_dict().items()
             if k not in ("schema_version", "name", "created", "libraries", "model_file",
                          "model_sha256")}
    draft.update(changes, version=version)
    return load_artifact(save_artifact(models_dir, "btc", trained.artifact.model, draft,
                                       training_bars=trained.artifact.training_bars))


def test_champion_challenger_force_and_rollback(trained, tmp_path):
    models = tmp_path / "models"
    champion = _clone(trained, models, "v1")
    promote(models, ModelRef("btc", "v1"))
    # a worse challenger: the same model with thresholds that never enter
    worse = _clone(trained, models, "v2", thresholds={
        **trained.artifact.manifest.to_dict()["thresholds"], "enter": 1.0, "exit": 1.0})
    kept = promote_if_better(models, trained.dataset, worse)
    assert not kept.promoted and kept.challenger < kept.champion
    assert production_ref(models, "btc") == ModelRef("btc", "v1")
    forced = promote_if_better(models, trained.dataset, worse, force=True)
    assert forced.promoted and production_ref(models, "btc") == ModelRef("btc", "v2")
    assert rollback(models, "btc") == ModelRef("btc", "v1")
    assert production_ref(models, "btc") == ModelRef("btc", champion.version)
    actions = [(e["action"], e["new"], e["old"]) for e in history(models, "btc")]
    assert actions == [("promoted", "btc/v1", None), ("kept", "btc/v2", "btc/v1"),
                       ("forced", "btc/v2", "btc/v1"), ("rollback", "btc/v1", "btc/v2")]
    entry = history(models)[1]
    assert entry["metrics"]["challenger"] < entry["metrics"]["champion"]


def test_reconcile_repairs_what_a_kill_can_leave(trained, tmp_path):
    """Each state a SIGKILL inside a registry write can leave, made by hand, then reconciled."""
    from mlstrategy.registry.artifact import INDEX, read_index
    from mlstrategy.registry.production import HISTORY, PRODUCTION, reconcile

    models = tmp_path / "models"
    shutil.copytree(trained.models_dir, models)
    ref = list_models(models)[0]
    assert reconcile(models) == []  # a consistent registry is left alone
    # killed while assembling an artifact, and while replacing a JSON file
    (models / ref.name / ".20990101T000000Z.partial").mkdir()
    (models / "btc" / f".{PRODUCTION}.abc.tmp").write_text("{")
    # killed between publishing an artifact and indexing it
    index = read_index(models)
    (models / INDEX).write_text(json.dumps({k: v for k, v in index.items() if k != str(ref)}))
    # killed between replacing production.json and recording why, inside that record's write
    entries = history(models, "btc")
    (models / "btc" / HISTORY).write_text("".join(json.dumps(e) + "\n" for e in entries[:-1])
                                  + '{"time": "2026-')
    done = reconcile(models)
    assert len(done) == 5, done
    assert not list(models.rglob("*.partial")) and not list(models.rglob("*.tmp"))
    assert read_index(models)[str(ref)] == index[str(ref)]
    repaired = history(models, "btc")
    assert repaired[:-1] == entries[:-1] and repaired[-1]["action"] == "recovered"
    assert repaired[-1]["new"] == str(production_ref(models, "btc"))
    assert reconcile(models) == []  # and once is enough

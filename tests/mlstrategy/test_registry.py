from __future__ import annotations

import json

import pytest

from mlstrategy.errors import ModelError
from mlstrategy.registry import ModelRef, list_models, parse_ref, production_ref, promote, resolve


def test_production_model_resolves(trained):
    ref = production_ref(trained.models_dir)
    assert ref == ModelRef("btc", trained.artifact.version)
    assert resolve(trained.models_dir, None).version == trained.artifact.version
    assert parse_ref("btc", trained.models_dir) == ref
    assert list_models(trained.models_dir) == [ref]


def test_no_production_model_says_how_to_train(tmp_path):
    with pytest.raises(ModelError, match="python train_ml_strategy.py"):
        resolve(tmp_path, None)


def test_promote_replaces_production_json_whole(trained, tmp_path):
    import shutil

    shutil.copytree(trained.models_dir, tmp_path, dirs_exist_ok=True)
    path = promote(tmp_path, ModelRef("btc", trained.artifact.version))
    data = json.loads(path.read_text())
    assert data["name"] == "btc" and data["version"] == trained.artifact.version
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_promoting_a_missing_model_fails_and_keeps_production(trained, tmp_path):
    import shutil

    shutil.copytree(trained.models_dir, tmp_path, dirs_exist_ok=True)
    before = (tmp_path / "production.json").read_text()
    with pytest.raises(ModelError):
        promote(tmp_path, ModelRef("btc", "nope"))
    assert (tmp_path / "production.json").read_text() == before


def test_corrupt_production_json_is_a_clear_error(tmp_path):
    (tmp_path / "production.json").write_text("{not json")
    with pytest.raises(ModelError, match="promote"):
        production_ref(tmp_path)

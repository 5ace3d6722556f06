"""``mlstrategy models``: list, show and promote trained artifacts."""
from __future__ import annotations

import json
from pathlib import Path

import click

from mlstrategy.artifact import load_artifact
from mlstrategy.cli.common import models_dir_option
from mlstrategy.registry import artifact_dir, list_models, parse_ref, production_ref, promote


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def models() -> None:
    """List, inspect and promote trained models (models/<name>/<version>/)."""


@models.command("list")
@models_dir_option
def list_cmd(models_dir: Path) -> None:
    """List every model artifact; '*' marks the production model."""
    production = production_ref(models_dir)
    refs = list_models(models_dir)
    if not refs:
        click.echo(f"no models in {models_dir}/ (train one: python train_ml_strategy.py)")
    for ref in refs:
        mark = "*" if ref == production else " "
        click.echo(f"{mark} {ref}")


@models.command()
@click.argument("model")
@models_dir_option
def show(model: str, models_dir: Path) -> None:
    """Verify MODEL (NAME or NAME/VERSION) and print its manifest."""
    artifact = load_artifact(artifact_dir(models_dir, parse_ref(model, models_dir)))
    click.echo(json.dumps(artifact.manifest, indent=2))


@models.command("promote")
@click.argument("model")
@models_dir_option
def promote_cmd(model: str, models_dir: Path) -> None:
    """Make MODEL (NAME or NAME/VERSION) the production model, atomically."""
    ref = parse_ref(model, models_dir)
    path = promote(models_dir, ref)
    click.echo(f"{path} -> {ref}")

"""``mlstrategy train`` (= ``python train_ml_strategy.py``): train, validate, save, promote."""
from __future__ import annotations

from pathlib import Path

import click

from features_numba import FeatureSpec
from mlstrategy.artifact import save_artifact
from mlstrategy.cli.common import (
    config_option,
    data_options,
    debug_option,
    load_dataset,
    models_dir_option,
)
from mlstrategy.labels import LabelSpec
from mlstrategy.models.catboost import CatBoostParams
from mlstrategy.registry import ModelRef
from mlstrategy.registry import promote as promote_model
from mlstrategy.training import TrainConfig
from mlstrategy.training import train as train_model


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@data_options(default_sample="btcusd-1h")
@models_dir_option
@click.option("--name", help="Model name: models/<name>/<version>/ (default: the dataset's "
              "name, e.g. btcusd-1h).")
@click.option("--features", "features_path", type=click.Path(dir_okay=False, path_type=Path),
              help="Feature spec TOML file (default: the built-in default spec).")
@click.option("--horizon", type=click.IntRange(min=1), default=4, show_default=True,
              help="Label: holding period in bars, from the next bar's open.")
@click.option("--label-threshold", type=float, default=0.0, show_default=True,
              help="Label: minimum forward log return that counts as 'up' (e.g. costs).")
@click.option("--test-fraction", type=click.FloatRange(0.05, 0.5), default=0.2,
              show_default=True, help="Last fraction of bars held out for the final test "
              "and the default backtest span.")
@click.option("--folds", type=click.IntRange(1, 20), default=4, show_default=True,
              help="Walk-forward validation folds inside the training span.")
@click.option("--iterations", type=click.IntRange(min=1), default=300, show_default=True,
              help="CatBoost boosting iterations.")
@click.option("--depth", type=click.IntRange(1, 10), default=6, show_default=True,
              help="CatBoost tree depth.")
@click.option("--learning-rate", type=click.FloatRange(0.0, 1.0, min_open=True), default=0.05,
              show_default=True, help="CatBoost learning rate.")
@click.option("--seed", type=int, default=42, show_default=True,
              help="Random seed (same data + seed = byte-identical model file).")
@click.option("--enter-quantile", type=click.FloatRange(0.5, 0.99), default=0.7,
              show_default=True, help="Enter long when P(up) reaches this quantile of the "
              "out-of-fold probabilities; exit below their median.")
@click.option("--promote/--no-promote", default=True, show_default=True,
              help="Make the new model the production model (models/production.json).")
@config_option
@debug_option
def train(sample: str | None, data_path: Path | None, symbol: str | None,
          timeframe: str | None, models_dir: Path, name: str | None,
          features_path: Path | None, horizon: int, label_threshold: float,
          test_fraction: float, folds: int, iterations: int, depth: int,
          learning_rate: float, seed: int, enter_quantile: float, promote: bool) -> None:
    """Train a CatBoost model on market history, validate it without leakage, save it.

    Features come from the Numba feature engine, the label is the forward return from the next
    bar's open, validation is purged walk-forward plus a final holdout (the backtest span).
    The artifact goes to MODELS_DIR/<name>/<version>/ (model.cbm + manifest.json).
    """
    dataset = load_dataset(sample, data_path, symbol, timeframe)
    spec = FeatureSpec.from_toml(features_path) if features_path else FeatureSpec.default()
    config = TrainConfig(
        label=LabelSpec(horizon=horizon, threshold=label_threshold),
        catboost=CatBoostParams(iterations=iterations, depth=depth,
                                learning_rate=learning_rate, seed=seed),
        test_fraction=test_fraction,
        folds=folds,
        enter_quantile=enter_quantile,
    )
    info = dataset.info
    click.echo(f"data: {info.source} {info.symbol} {info.timeframe}, {info.rows} bars "
               f"{info.first_bar} .. {info.last_bar}")
    result = train_model(dataset, spec, config, progress=lambda msg: click.echo(f"  {msg}"))
    for fold in result.fold_metrics:
        click.echo(f"  fold {fold['fold']}: AUC {fold['auc']:.3f}  accuracy "
                   f"{fold['accuracy']:.3f}  log loss {fold['log_loss']:.4f}")
    h = result.holdout_metrics
    click.echo(f"holdout: AUC {h['auc']:.3f}  accuracy {h['accuracy']:.3f}  signals "
               f"{h['signals']}  hit rate {h['hit_rate']:.3f}  edge {h['edge_bps']:.1f} bps")
    model_name = name or (sample if data_path is None else data_path.stem)
    path = save_artifact(models_dir, model_name, result.model, result.manifest)
    click.echo(f"model saved: {path / 'model.cbm'}")
    click.echo(f"manifest:    {path / 'manifest.json'}")
    if promote:
        production = promote_model(models_dir, ModelRef(model_name, path.name))
        click.echo(f"production:  {production} -> {model_name}/{path.name}")


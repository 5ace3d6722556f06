"""``mlstrategy train`` (= ``python train_ml_strategy.py``): train, validate, save, promote."""
from __future__ import annotations

import json
from pathlib import Path

import click

from mlstrategy.cli.common import (
    DataRequest,
    config_option,
    data_options,
    debug_option,
    models_dir_option,
)
from mlstrategy.trading.strategy_params import COMMISSION

MODELS = ("catboost", "random_forest", "hist_gb", "mlp", "xgboost")


class TrainProgress:
    """Stage lines on stderr and a tqdm bar over the validation fits. Plain and picklable:
    the bar is made in the process that draws it."""

    def __init__(self) -> None:
        self._bar = None

    def __call__(self, message: str) -> None:
        if self._bar is None:
            click.echo(f"  {message}", err=True)

    def advance(self, done: int, total: int) -> None:
        from tqdm import tqdm

        if self._bar is None:
            self._bar = tqdm(total=total, desc="  validation", unit="fold", leave=False)
        self._bar.update(done - self._bar.n)
        if done >= total:
            self._bar.close()
            self._bar = None

    def __getstate__(self) -> dict:
        return {"_bar": None}


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@data_options(default_sample="btcusd-1h")
@models_dir_option
@click.option("--name", help="Model name, its market with its own production model: "
              "models/<name>/<version>/ (default: the dataset's "
              "name, e.g. btcusd-1h).")
@click.option("--features", "features_path", type=click.Path(dir_okay=False, path_type=Path),
              help="Feature spec TOML file (default: the built-in default spec).")
@click.option("--model", "kind", type=click.Choice(MODELS), default="catboost",
              show_default=True, help="Learner: CatBoost, scikit-learn random forest, "
              "histogram gradient boosting or MLP, or XGBoost (the xgboost extra).")
@click.option("--param", "params", multiple=True, metavar="KEY=VALUE",
              help="A learner parameter, repeatable (e.g. --param depth=8); see the README "
              "for each model's parameters.")
@click.option("--label", "label_kind", type=click.Choice(["fixed", "triple_barrier"]),
              default="fixed", show_default=True, help="fixed: the forward return over "
              "--horizon bars; triple_barrier: take-profit/stop-loss/time, first touched.")
@click.option("--horizon", type=click.IntRange(min=1), default=4, show_default=True,
              help="Label: holding period in bars from the next bar's open (the maximum "
                   "holding for triple_barrier).")
@click.option("--label-threshold", type=click.FloatRange(min=0.0), default=0.0,
              show_default=True, help="fixed: returns within +-this log return are 'flat' "
              "(not up; dropped with --drop-flat).")
@click.option("--drop-flat", is_flag=True, help="fixed: leave flat rows out of training.")
@click.option("--take-profit", type=click.FloatRange(min=0.0, min_open=True), default=2.0,
              show_default=True, help="triple_barrier: take-profit in volatilities.")
@click.option("--stop-loss", type=click.FloatRange(min=0.0, min_open=True), default=1.0,
              show_default=True, help="triple_barrier: stop-loss in volatilities.")
@click.option("--vol", type=click.Choice(["atr", "std"]), default="atr", show_default=True,
              help="triple_barrier: volatility measure (ATR or std of returns).")
@click.option("--cv", type=click.Choice(["walk_forward", "rolling", "cpcv"]),
              default="walk_forward", show_default=True, help="Validation: expanding or "
              "rolling walk-forward, or combinatorial purged k-fold.")
@click.option("--folds", type=click.IntRange(1, 20), default=4, show_default=True,
              help="Walk-forward folds; for cpcv the number of groups.")
@click.option("--test-groups", type=click.IntRange(min=1), default=2, show_default=True,
              help="cpcv: groups tested together.")
@click.option("--embargo", type=click.IntRange(min=0), help="Bars after each test block left "
              "out of training (default: the label's reach).")
@click.option("--test-fraction", type=click.FloatRange(0.05, 0.5), default=0.2,
              show_default=True, help="Last fraction of bars held out for the final test "
              "and the default backtest span.")
@click.option("--enter-quantile", type=click.FloatRange(0.5, 0.99), default=0.7,
              show_default=True, help="Enter long when P(up) reaches this quantile of the "
              "out-of-fold probabilities; exit below their median.")
@click.option("--cost", type=click.FloatRange(0.0, 0.1), default=COMMISSION, show_default=True,
              help="Cost per side for the trading metrics and the promotion backtest.")
@click.option("--gate-max-sharpe", type=click.FloatRange(min=0.0), default=3.0,
              show_default=True, help="Sanity gate: flag an annualised net Sharpe above this "
              "on any fold or the holdout.")
@click.option("--gate-max-feature-auc", type=click.FloatRange(0.5, 1.0), default=0.60,
              show_default=True, help="Sanity gate: flag any single feature that predicts "
              "the label alone with this AUC (either way round) on the training rows.")
@click.option("--gate-max-profit-factor", type=click.FloatRange(min=1.0), default=2.5,
              show_default=True, help="Sanity gate: flag a profit factor above this over 20+ "
              "trades on any fold or the holdout.")
@click.option("--threads", type=click.IntRange(min=1), help="Threads for the learner and "
              "the feature columns (default: all cores).")
@click.option("--seed", type=int, help="Random seed (same data + seed = byte-identical model "
              "file); default the learner's (42).")
@click.option("--promote/--no-promote", default=True, show_default=True,
              help="Make the new model production if it passes the sanity gate and beats "
                   "the production model on the same recent bars.")
@click.option("--promote-metric", type=click.Choice(["sharpe", "total_return", "psr", "cagr"]),
              default="sharpe", show_default=True, help="What 'beats' means (net of costs).")
@click.option("--force", is_flag=True, help="Promote even if flagged or not better.")
@click.option("--json", "as_json", is_flag=True, help="Print the full training report as "
              "JSON on stdout (everything else goes to stderr).")
@config_option
@debug_option
def train(data: DataRequest, models_dir: Path, name: str | None,
          features_path: Path | None, kind: str, params: tuple[str, ...], label_kind: str,
          horizon: int, label_threshold: float, drop_flat: bool, take_profit: float,
          stop_loss: float, vol: str, cv: str, folds: int, test_groups: int,
          embargo: int | None, test_fraction: float, enter_quantile: float, cost: float,
          gate_max_sharpe: float, gate_max_feature_auc: float, gate_max_profit_factor: float,
          threads: int | None, seed: int | None, promote: bool, promote_metric: str,
          force: bool, as_json: bool) -> None:
    """Train a model on market history, validate it without leakage, save it, promote it.

    Features come from the Numba feature engine; labels from the next bar's open; validation
    is purged by each label's reach and embargoed, plus a final holdout (the backtest span).
    The artifact goes to MODELS_DIR/<name>/<version>/ with metrics.json, report.md and
    feature_importance.png. Results too good to be true, or without skill, are flagged and
    never promoted automatically.
    """
    import os

    from datafeeds.timeframes import timeframe_delta
    from features_numba import FeatureSpec
    from mlstrategy.models import parse_params
    from mlstrategy.models.params import split_pairs
    from mlstrategy.registry.artifact import load_artifact, save_artifact
    from mlstrategy.registry.model_report import fold_table
    from mlstrategy.research.gate import GateLimits
    from mlstrategy.research.labels import LabelSpec
    from mlstrategy.research.training import TrainConfig
    from mlstrategy.research.training import train as train_model
    from mlstrategy.research.trials import record_training

    say = (lambda text: click.echo(text, err=True)) if as_json else click.echo
    spec = FeatureSpec.from_toml(features_path) if features_path else None
    dataset = data.load(spec.inputs if spec else ())
    spec = spec or FeatureSpec.default(timeframe_delta(dataset.timeframe))
    values = split_pairs(params)
    if seed is not None:
        values["seed"] = str(seed)
    config = TrainConfig(
        label=LabelSpec(kind=label_kind, horizon=horizon, threshold=label_threshold,
                        drop_flat=drop_flat, take_profit=take_profit, stop_loss=stop_loss,
                        vol=vol),
        model=kind, params=parse_params(kind, values), cv=cv, folds=folds,
        test_groups=test_groups, embargo=embargo, test_fraction=test_fraction,
        enter_quantile=enter_quantile, cost=cost, threads=threads or os.cpu_count() or 1,
        gate=GateLimits(max_sharpe=gate_max_sharpe, max_feature_auc=gate_max_feature_auc,
                        max_profit_factor=gate_max_profit_factor))
    info = dataset.info
    say(f"data: {info.source} {info.symbol} {info.timeframe}, {info.rows} bars "
        f"{info.first_bar} .. {info.last_bar}; model {kind}, cv {cv}")
    result = train_model(dataset, spec, config, progress=TrainProgress())
    for line in fold_table(result.fold_metrics, result.holdout_metrics):
        say(line)
    for flag in result.flags:
        click.echo(f"WARNING, sanity gate: {flag}", err=True)
    model_name = name or data.name
    path = save_artifact(models_dir, model_name, result.model, result.manifest,
                         training_bars=result.training_bars, importance=result.importance)
    record_training(models_dir, load_artifact(path), dataset)
    say(f"model saved: {path / result.model.filename}")
    say(f"manifest:    {path / 'manifest.json'} (report.md, metrics.json, "
        "feature_importance.png beside it)")
    decision = None
    if promote:
        from mlstrategy.registry.promotion import promote_if_better

        decision = promote_if_better(models_dir, dataset, load_artifact(path),
                                     metric=promote_metric, cost=cost, force=force)
        verdict = "promoted to production" if decision.promoted else "kept out of production"
        say(f"{verdict}: {decision.reason}")
        if not decision.promoted:
            say("  (promote it anyway with --force, or `mlstrategy models promote "
                f"{model_name}/{path.name} --force`)")
    if as_json:
        click.echo(json.dumps({"path": str(path), "manifest": load_artifact(path).manifest
                               .to_dict(), "promotion": None if decision is None
                               else vars(decision)}, default=str))

"""``mlstrategy models``: list, show, promote and roll back trained artifacts."""
from __future__ import annotations

import json
from pathlib import Path

import click

from mlstrategy.cli.common import models_dir_option


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def models() -> None:
    """List, inspect, promote and roll back trained models (models/<market>/<version>/; each
    market has its own production model)."""


def _fmt(value: object) -> str:
    return "n/a" if value is None else f"{value:.3f}" if isinstance(value, float) else str(value)


@models.command("list")
@models_dir_option
def list_cmd(models_dir: Path) -> None:
    """List every market and its models with their holdout figures; '*' marks each market's
    production model."""
    from mlstrategy.registry.artifact import read_index
    from mlstrategy.registry.production import list_models, markets, production_ref

    if not list_models(models_dir):
        click.echo(f"no models in {models_dir}/ (train one: python train_ml_strategy.py)")
        return
    index = read_index(models_dir)
    for market in markets(models_dir):
        production = production_ref(models_dir, market)
        click.echo(f"{market}: production {production.version if production else 'none'}")
        for ref in list_models(models_dir, market):
            entry = index.get(str(ref), {})
            mark = "*" if ref == production else " "
            figures = "" if not entry else (
                f"  {entry.get('kind')}  holdout AUC {_fmt(entry.get('holdout_auc'))}  net "
                f"Sharpe {_fmt(entry.get('holdout_sharpe'))} (B&H "
                f"{_fmt(entry.get('buy_hold_sharpe'))})"
                + (f"  FLAGGED x{entry['suspicious']}" if entry.get("suspicious") else ""))
            click.echo(f"  {mark} {ref}{figures}")


@models.command()
@click.argument("model")
@models_dir_option
def show(model: str, models_dir: Path) -> None:
    """Verify MODEL (NAME or NAME/VERSION) and print its manifest."""
    from mlstrategy.registry.artifact import load_artifact
    from mlstrategy.registry.production import artifact_dir, parse_ref

    artifact = load_artifact(artifact_dir(models_dir, parse_ref(model, models_dir)))
    click.echo(json.dumps(artifact.manifest.to_dict(), indent=2))


@models.command("promote")
@click.argument("model")
@click.option("--force", is_flag=True, help="Promote even a model the sanity gate flagged.")
@models_dir_option
def promote_cmd(model: str, force: bool, models_dir: Path) -> None:
    """Make MODEL (NAME or NAME/VERSION) the production model of its market, atomically."""
    from mlstrategy.errors import ModelError
    from mlstrategy.registry.artifact import load_artifact
    from mlstrategy.registry.production import artifact_dir, parse_ref, promote

    ref = parse_ref(model, models_dir)
    flags = load_artifact(artifact_dir(models_dir, ref)).manifest.suspicious
    if flags and not force:
        raise ModelError(f"{ref} was flagged by the sanity gate ({flags[0]}); add --force to "
                         "promote it anyway")
    path = promote(models_dir, ref, action="forced" if flags else "promoted",
                   reason="by hand" + (" despite flags" if flags else ""))
    click.echo(f"{path} -> {ref}")


@models.command()
@click.argument("market", required=False)
@models_dir_option
def rollback(market: str | None, models_dir: Path) -> None:
    """Restore MARKET's production model that the current one replaced (MARKET may be left
    out when the registry has one market)."""
    from mlstrategy.registry.production import choose_market
    from mlstrategy.registry.production import rollback as roll_back

    market = market or choose_market(models_dir)
    click.echo(f"{market} production -> {roll_back(models_dir, market)}")


@models.command("history")
@click.argument("market", required=False)
@models_dir_option
def history_cmd(market: str | None, models_dir: Path) -> None:
    """Every promotion, rollback and kept-out challenger of MARKET (default: of every
    market), oldest first."""
    from mlstrategy.registry.production import history

    for entry in history(models_dir, market):
        click.echo(f"{entry['time']}  {entry['action']:<9} {entry['new']} (was "
                   f"{entry['old']}): {entry['reason']}")


@models.command("trials")
@models_dir_option
def trials_cmd(models_dir: Path) -> None:
    """Every evaluation recorded in the trial ledger (trainings, backtests with distinct
    options, walk-forwards, sweep trials), oldest first: what a deflated Sharpe counts."""
    from mlstrategy.research.trials import LEDGER, read

    recorded = read(models_dir)
    if not recorded:
        click.echo(f"no trials in {models_dir / LEDGER} (training and backtests record them)")
        return
    for t in recorded:
        d = t.data
        click.echo(f"{t.time}  {t.kind:<12} {t.identity}  Sharpe {_fmt(t.sharpe):>7}  "
                   f"{d.symbol} {d.timeframe} {d.first_bar[:10]} .. {d.last_bar[:10]} "
                   f"({d.rows} bars)  {t.source}")
    click.echo(f"{len(recorded)} recorded, {len({t.identity for t in recorded})} distinct")

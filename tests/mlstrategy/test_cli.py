"""The two scripts a user runs, as a user runs them: real subprocesses, real sample data."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import click
import numpy as np
import pytest

from mlstrategy.cli.backtest import backtest
from mlstrategy.cli.bot import live, paper, replay, status
from mlstrategy.cli.train import train
from tests.conftest import REPO_ROOT


def _run(script: str, *args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(REPO_ROOT / script), *args], cwd=cwd,
                          capture_output=True, text=True, timeout=600)


def _options(command: click.Command) -> list[str]:
    return [opt for p in command.params if isinstance(p, click.Option) for opt in p.opts]


@pytest.mark.parametrize(("script", "args", "command"), [
    ("train_ml_strategy.py", [], train),
    ("trading_bot.py", ["backtest"], backtest),
    ("trading_bot.py", ["paper"], paper),
    ("trading_bot.py", ["live"], live),
    ("trading_bot.py", ["replay"], replay),
    ("trading_bot.py", ["status"], status),
])
def test_help_explains_every_option(script, args, command, tmp_path):
    result = _run(script, *args, "--help", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    for option in _options(command):
        assert option in result.stdout
    for param in command.params:
        if isinstance(param, click.Option) and param.name != "debug":
            assert param.help, f"{param.name} has no help text"


def test_bot_help_lists_every_command(tmp_path):
    result = _run("trading_bot.py", "--help", cwd=tmp_path)
    assert result.returncode == 0
    for command in ("paper", "live", "replay", "status", "backtest"):
        assert f"  {command}" in result.stdout


def bars_of_sample():
    from datafeeds import load_sample

    return load_sample("btcusd-1h")


def test_backtest_without_a_model_says_how_to_train_and_exits_2(tmp_path):
    result = _run("trading_bot.py", "backtest", cwd=tmp_path)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "python train_ml_strategy.py" in lines[0]
    assert "Traceback" not in result.stderr


def test_a_leaky_feature_is_flagged_and_never_promoted(tmp_path):
    """The canary: volume carries the future label, so volume features see the future."""
    from datafeeds import load_sample
    from mlstrategy.research.labels import LabelSpec, labels_of

    bars = load_sample("btcusd-1h").iloc[:6000].copy()
    future_up = labels_of(bars, LabelSpec(horizon=4)).y
    bars["volume"] = 1000.0 + 1000.0 * np.nan_to_num(future_up)
    path = tmp_path / "leaky.csv"
    bars.to_csv(path)
    result = _run("train_ml_strategy.py", "--data", str(path), "--timeframe", "1h",
                  "--param", "iterations=60", "--folds", "2", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "too good" in result.stderr and "kept out of production" in result.stdout
    assert not (tmp_path / "models" / "leaky" / "production.json").exists()
    history = (tmp_path / "models" / "leaky" / "history.jsonl").read_text()
    assert '"action": "kept"' in history and "too good" in history


def test_unreadable_data_file_is_one_line_exit_2(tmp_path):
    bad = tmp_path / "bars.csv"
    bad.write_text("datetime,open,high,low,close,volume\n2020-01-01T00:00:00Z,1,2,0.5,x,3\n")
    result = _run("train_ml_strategy.py", "--data", str(bad), cwd=tmp_path)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr and len(result.stderr.strip().splitlines()) == 1
    debug = _run("train_ml_strategy.py", "--data", str(bad), "--debug", cwd=tmp_path)
    assert "Traceback" in debug.stderr


def test_train_then_backtest_leaves_model_report_and_plot(tmp_path):
    trained = _run("train_ml_strategy.py", "--param", "iterations=30", "--folds", "2",
                   cwd=tmp_path)
    assert trained.returncode == 0, trained.stderr
    [model_dir] = [p.parent for p in (tmp_path / "models").glob("btcusd-1h/*/manifest.json")]
    # the sample model has no skill after costs: flagged, kept out of production, and the
    # backtest and the bot session fall back to it with a warning
    promoted = (tmp_path / "models" / "btcusd-1h" / "production.json").is_file()
    assert promoted != ("kept out of production" in trained.stdout)
    assert (model_dir / "model.cbm").is_file()
    assert str(Path("models") / "btcusd-1h" / model_dir.name / "model.cbm") in trained.stdout
    ran = _run("trading_bot.py", "backtest", cwd=tmp_path)
    assert ran.returncode == 0, ran.stderr
    latest = tmp_path / "reports" / "btcusd-1h" / model_dir.name / "latest"
    report = latest.resolve() / "backtest.json"
    assert report.parent.name.endswith("-backtest")
    for name in ("backtest.json", "trades.csv", "equity.png", "backtest.png"):
        assert report.with_name(name).is_file()
        assert str(report.with_name(name).relative_to(tmp_path)) in ran.stdout
    assert "buy & hold" in ran.stdout and "deflated Sharpe" in ran.stdout
    # the training's holdout row and the backtest print the same return, Sharpe and trades
    holdout = next(line for line in trained.stdout.splitlines() if "**holdout**" in line)
    cells = [c.strip() for c in holdout.split("|")]
    strategy = next(line for line in ran.stdout.splitlines() if line.startswith("strategy"))
    figures = strategy.split()
    assert (cells[7], cells[9], cells[11]) == (figures[1], figures[3], figures[5])
    inside = _run("trading_bot.py", "backtest", "--model", f"btcusd-1h/{model_dir.name}",
                  "--start", "500", cwd=tmp_path)
    assert inside.returncode == 2 and "--allow-in-sample" in inside.stderr
    assert len(inside.stderr.strip().splitlines()) == 1
    allowed = _run("trading_bot.py", "backtest", "--start", "500", "--allow-in-sample",
                   "--no-plot", "--out", "in-sample", cwd=tmp_path)
    assert allowed.returncode == 0 and "IN-SAMPLE" in allowed.stderr
    assert json.loads((tmp_path / "in-sample" / "backtest.json").read_text())["in_sample"]
    example = subprocess.run([sys.executable, str(REPO_ROOT / "examples" / "own_cerebro.py")],
                             cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert example.returncode == 0, example.stderr
    assert "csv:" in example.stdout and "pandas:" in example.stdout
    # no arguments: an offline paper session replaying the holdout, ending with its summary
    session = _run("trading_bot.py", cwd=tmp_path)
    assert session.returncode == 0, session.stderr
    traded = int(session.stdout.split("from bar ")[1].split()[0])
    lines = session.stdout.splitlines()
    assert lines[0].startswith("offline paper session") and "summary:" in lines
    status_lines = [line for line in lines if " P(up) " in line]
    assert len(status_lines) == len(bars_of_sample()) - traded  # one status line per bar
    assert (tmp_path / "journals" / "replay_btcusd-1h.sqlite").is_file()


def test_config_file_feeds_option_defaults_and_flags_win(tmp_path):
    from click.testing import CliRunner

    config = tmp_path / "mlstrategy.toml"
    config.write_text("[train]\nhorizon = 0\n")
    runner = CliRunner()
    refused = runner.invoke(train, ["--config", str(config)])
    assert refused.exit_code == 2 and "--horizon" in refused.output  # the file's value was used
    # --horizon is checked before --folds: with the flag given, only --folds is wrong
    flag_wins = runner.invoke(train, ["--config", str(config), "--horizon", "2", "--folds", "0"])
    assert flag_wins.exit_code == 2
    assert "--folds" in flag_wins.output and "--horizon" not in flag_wins.output


def test_models_list_show_and_promote(trained, tmp_path):
    import json
    import shutil

    from click.testing import CliRunner

    from mlstrategy.cli import cli

    models_dir = tmp_path / "models"
    shutil.copytree(trained.models_dir, models_dir)
    version = trained.artifact.version
    shutil.copytree(models_dir / "btc" / version, models_dir / "btc" / "20990101T000000Z")
    runner = CliRunner()
    listed = runner.invoke(cli, ["models", "list", "--models-dir", str(models_dir)]).output
    market, first, second = listed.splitlines()
    assert market == f"btc: production {version}"
    assert first.startswith(f"  * btc/{version}  catboost  holdout AUC")
    assert second == "    btc/20990101T000000Z"  # a copy the registry never published
    shown = runner.invoke(cli, ["models", "show", f"btc/{version}", "--models-dir",
                                str(models_dir)])
    assert json.loads(shown.output)["version"] == version
    flagged = trained.artifact.manifest.suspicious
    refused = runner.invoke(cli, ["models", "promote", "btc", "--models-dir", str(models_dir)])
    assert (refused.exit_code != 0) == bool(flagged)
    promoted = runner.invoke(cli, ["models", "promote", "btc", "--force", "--models-dir",
                                   str(models_dir)])
    assert promoted.exit_code == 0 and "btc/20990101T000000Z" in promoted.output
    listed = runner.invoke(cli, ["models", "list", "--models-dir", str(models_dir)])
    assert listed.output.splitlines()[2] == "  * btc/20990101T000000Z"
    rolled = runner.invoke(cli, ["models", "rollback", "--models-dir", str(models_dir)])
    assert rolled.exit_code == 0 and f"btc/{version}" in rolled.output
    log = runner.invoke(cli, ["models", "history", "--models-dir", str(models_dir)]).output
    assert "rollback" in log and "btc/20990101T000000Z" in log

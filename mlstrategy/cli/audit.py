"""``mlstrategy audit``: recompute a bot's journaled decisions offline, bar for bar."""
from __future__ import annotations

import json
import sys
from dataclasses import asdict
from pathlib import Path

import click

from mlstrategy.cli.common import config_option, debug_option, models_dir_option
from mlstrategy.errors import ConfigError


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--journal", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="The bot's SQLite journal (read-only; the bot may be running).")
@models_dir_option
@click.option("--market", help="Only this market of a portfolio's journal (default: all).")
@click.option("--json", "as_json", is_flag=True, help="The report as one JSON document.")
@config_option
@debug_option
def audit(journal: Path, models_dir: Path, market: str | None, as_json: bool) -> None:
    """Recompute every journaled decision from the journaled bars with the model that made
    it (features and P(up)), and report per session that they are equal bit for bit, or
    which bars differ, by how much, and the likely cause.

    Exit status: 0 when every decision is equal, 1 when some differ, 2 on bad input.
    """
    from mlstrategy.live.audit import audit as run_audit

    if not journal.is_file():
        raise ConfigError(f"no journal at {journal}; a bot run writes one (see --journal)")
    sessions = run_audit(journal, models_dir, market)
    if as_json:
        click.echo(json.dumps([{**asdict(s), "ok": s.ok} for s in sessions], indent=2))
    else:
        for s in sessions:
            where = f"market {s.market!r}, " if s.market else ""
            verdict = "all equal, bit for bit" if s.ok else \
                f"{s.decisions - s.equal} differ"
            click.echo(f"{where}session {s.session}: {s.decisions} decisions by "
                       f"{', '.join(s.models)}: {verdict}")
            for difference in s.differences:
                click.echo(f"  {difference.describe()}")
        if not sessions:
            click.echo(f"{journal} holds no decisions")
    if not all(s.ok for s in sessions):
        sys.exit(1)

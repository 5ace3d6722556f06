"""``mlstrategy dashboard``: the bot's dashboard over its files, read-only, for a bot or a
cycle run by cron (a running bot serves the same page itself with ``--api-port``)."""
from __future__ import annotations

import time
from pathlib import Path

import click

from mlstrategy.cli.common import config_option, debug_option, models_dir_option
from mlstrategy.errors import ConfigError


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--journal", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="The bot's SQLite journal (read-only; the bot may be running).")
@models_dir_option
@click.option("--cycles-dir", type=click.Path(file_okay=False, path_type=Path),
              default=Path("cycles"), show_default=True,
              help="Where `mlstrategy cycle` writes its reports (the latest is shown).")
@click.option("--port", type=click.IntRange(0, 65535), default=8080, show_default=True,
              help="Port to serve on (0: any free port).")
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Where to listen; anything but loopback needs MLSTRATEGY_API_TOKEN, which "
                   "every read then needs.")
@config_option
@debug_option
def dashboard(journal: Path, models_dir: Path, cycles_dir: Path, port: int,
              host: str) -> None:
    """Serve the dashboard of a bot's journal, its model registry and the latest cycle
    report at http://HOST:PORT/ until Ctrl-C. Read-only: it has no controls."""
    from mlstrategy.live.api import ApiSettings, Source, serving

    if not journal.is_file():
        raise ConfigError(f"no journal at {journal}; a bot run writes one (see --journal)")
    with serving(Source(journal, models_dir, cycles_dir), ApiSettings.from_env(port, host)) \
            as server:
        click.echo(f"dashboard of {journal} on {server.url}/ (read-only; Ctrl-C stops it)")
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            click.echo("stopped")

"""``mlstrategy data``: import, download, update, check, list and resample market data."""
from __future__ import annotations

import click


@click.group()
def data() -> None:
    """Import, download, check and store market data (OHLCV)."""

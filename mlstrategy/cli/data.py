"""``mlstrategy data``: import, download, update, check, list, resample and export market
data."""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click

import datafeeds  # its names load their modules (and pandas) on first use: --help stays quick
from datafeeds.errors import DataError
from mlstrategy.cli.common import repair_option, store_option, utc_time

if TYPE_CHECKING:
    import pandas as pd

    from datafeeds.quality import ValidationReport

YAHOO = "yahoo"

tz_option = click.option("--tz", default="UTC", show_default=True,
                         help="Timezone of naive timestamps in the file, e.g. Europe/Berlin.")
adjusted_option = click.option("--adjusted", is_flag=True,
                               help="Yahoo data: use split- and dividend-adjusted prices "
                                    "(O/H/L/C scaled by Adj Close / Close).")
timeframe_option = click.option("--timeframe", "-t", default="1h", show_default=True,
                                help="Bar size: 1m, 5m, 15m, 1h, 4h, 1d ...")


def _echo_report(report: ValidationReport, limit: int = 10) -> None:
    for line in report.lines(limit):
        click.echo(line)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def data() -> None:
    """Import, download, check and store market data (OHLCV bars).

    Every way in ends in one validator; bad data is refused with the file, rows and rule.
    """


@data.command()
@click.argument("path", type=click.Path(dir_okay=False, path_type=Path))
@tz_option
@adjusted_option
@repair_option
@click.option("--timeframe", "-t", help="Bar size, for gap reports (default: inferred).")
@click.option("--limit", type=click.IntRange(min=1), default=10, show_default=True,
              help="Entries shown per section of the report.")
def check(path: Path, tz: str, adjusted: bool, repair: bool, timeframe: str | None,
          limit: int) -> None:
    """Validate the bars in PATH and report gaps, zero-volume, flat and repeated runs.

    Strict by default: exits with code 2 when the file breaks the OHLCV contract, after
    printing what a --repair run would find and do (when repairing can fix it). With --repair,
    every repair made is listed.
    """
    try:
        bars, report = datafeeds.load_file_checked(path, tz=tz, adjusted=adjusted,
                                                   repair=repair, timeframe=timeframe)
    except DataError as exc:
        if repair:
            raise
        try:
            _, preview = datafeeds.load_file_checked(path, tz=tz, adjusted=adjusted, repair=True,
                                           timeframe=timeframe)
        except DataError:
            raise exc from None
        click.echo(f"INVALID: {exc}")
        click.echo("with --repair:")
        _echo_report(preview, limit)
        raise exc from None
    from datafeeds.quality import resolve_timeframe

    resolve_timeframe(bars.index, timeframe, str(path))  # a given -t must match the bars
    _echo_report(report, limit)
    click.echo("valid")


@data.command("import")
@click.argument("path", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--symbol", required=True, help="Symbol to store the bars under, e.g. BTC/USD.")
@click.option("--timeframe", "-t", help="Bar size to store the bars under (1m, 1h, 1d ...); "
                                        "default: inferred from the bars.")
@click.option("--source", default="file", show_default=True,
              help="Source name to store the bars under.")
@tz_option
@adjusted_option
@repair_option
@click.option("--replace", is_flag=True,
              help="Replace a series already stored under this source, symbol and timeframe "
                   "(default: keep it and add only the bars newer than its last one).")
@store_option
def import_cmd(path: Path, symbol: str, timeframe: str | None, source: str, tz: str,
               adjusted: bool, repair: bool, replace: bool, store: str) -> None:
    """Read bars from PATH (CSV, Parquet, JSON, feather; layout detected) into the store.

    Layouts: plain datetime,open,high,low,close,volume; Yahoo (Adj Close); backtrader generic
    CSV (separate Date and Time columns); CryptoDataDownload; freqtrade JSON/feather; ccxt
    [ms, o, h, l, c, v] lists. Epoch seconds/milliseconds are detected.
    """
    bars, report = datafeeds.load_file_checked(path, tz=tz, adjusted=adjusted, repair=repair,
                                     timeframe=timeframe)
    from datafeeds.quality import resolve_timeframe

    timeframe = resolve_timeframe(bars.index, timeframe, str(path))
    _echo_report(report, 3)
    key = datafeeds.StoreKey(source, symbol, timeframe)
    bar_store = datafeeds.open_store(store)
    if replace or bar_store.last_bar(key) is None:
        click.echo(f"{key}: stored {len(bars)} bars -> {bar_store.replace(key, bars)}")
    else:
        added = bar_store.append(key, bars)
        click.echo(f"{key}: {added} new bars after the stored ones -> {bar_store.where(key)} "
                   "(--replace to overwrite)")


def _download(source: str, symbol: str, timeframe: str, since: pd.Timestamp | None,
              until: pd.Timestamp | None, adjusted: bool, store: str,
              api_url: str | None, limit: int) -> None:
    import pandas as pd

    bar_store = datafeeds.open_store(store)
    key = datafeeds.StoreKey(source, symbol, timeframe)
    if source == YAHOO:
        from datafeeds.download_yfinance import update_store_yahoo

        added, report = update_store_yahoo(bar_store, key, since=since, until=until,
                                           adjusted=adjusted)
        _echo_report(report, 3)
    else:
        from datafeeds.exchange.client import make_exchange
        from datafeeds.exchange.history import update_store

        if since is None and bar_store.last_bar(key) is None:
            raise DataError(f"nothing stored yet for {key}: give --since DATE for the first bar")
        exchange = make_exchange(source, api_url=api_url)

        def progress(count: int, last: pd.Timestamp) -> None:
            click.echo(f"  {count} bars, up to {last}", err=True)

        added = update_store(bar_store, key, exchange, since=since or pd.Timestamp(0, tz="UTC"),
                             until=until, limit=limit, progress=progress)
    click.echo(f"{key}: {added} new bars -> {bar_store.where(key)}")


api_url_option = click.option("--api-url", help="Send exchange requests to this base URL "
                              "instead (testnet, proxy or test server).")
limit_option = click.option("--limit", type=click.IntRange(1, 5000), default=1000,
                            show_default=True, help="Bars requested per page from the exchange.")


@data.command()
@click.argument("source")
@click.argument("symbol")
@timeframe_option
@click.option("--since", help="First bar to fetch (date, UTC) when nothing is stored yet.")
@click.option("--until", help="Stop before this date (default: now; the forming bar is "
                              "never stored).")
@adjusted_option
@api_url_option
@limit_option
@click.option("--series", type=click.Choice(["bars", "funding_rate", "open_interest"]),
              default="bars", show_default=True,
              help="What to download: the bars, or a perpetual future's funding rates or open "
                   "interest (ccxt exchanges offering them, e.g. binanceusdm with symbol "
                   "BTC/USDT:USDT; --timeframe is then the open interest's period), stored "
                   "beside the bars.")
@store_option
def download(source: str, symbol: str, timeframe: str, since: str | None, until: str | None,
             adjusted: bool, api_url: str | None, limit: int, series: str,
             store: str) -> None:
    """Download SYMBOL bars from SOURCE into the store, resuming after the last stored bar.

    SOURCE is 'yahoo' (stocks, via yfinance) or a ccxt exchange id such as binance (crypto;
    paginated, rate limited, transient errors retried). A funding rate is stored at the time
    it was settled, an open interest at the end of its period: when each became known.
    """
    if series != "bars":
        _download_values(source, symbol, series, timeframe, utc_time(since, "--since"),
                         utc_time(until, "--until"), store, api_url, limit)
        return
    _download(source, symbol, timeframe, utc_time(since, "--since"),
              utc_time(until, "--until"), adjusted, store, api_url, limit)


def _download_values(source: str, symbol: str, series: str, period: str,
                     since: pd.Timestamp | None, until: pd.Timestamp | None, store: str,
                     api_url: str | None, limit: int) -> None:
    import pandas as pd

    from datafeeds.exchange.client import make_exchange
    from datafeeds.exchange.derivatives import update_values

    if source == YAHOO:
        raise DataError(f"yahoo has no {series}; download it from a ccxt exchange with "
                        "perpetual futures, e.g. binanceusdm")
    bar_store = datafeeds.open_store(store)
    key = datafeeds.StoreKey(source, symbol, series)
    if since is None and bar_store.read_values(key) is None:
        raise DataError(f"nothing stored yet for {key}: give --since DATE for the first value")

    def progress(count: int, last: pd.Timestamp) -> None:
        click.echo(f"  {count} values, up to {last}", err=True)

    added = update_values(bar_store, key, make_exchange(source, api_url=api_url),
                          since=since or pd.Timestamp(0, tz="UTC"), until=until,
                          period=period, limit=min(limit, 1000), progress=progress)
    click.echo(f"{key}: {added} new values -> {bar_store.where_values(key)}")


@data.command()
@click.argument("source")
@click.argument("symbol")
@timeframe_option
@adjusted_option
@api_url_option
@limit_option
@store_option
def update(source: str, symbol: str, timeframe: str, adjusted: bool, api_url: str | None,
           limit: int, store: str) -> None:
    """Append the bars newer than the last stored SOURCE SYMBOL bar (nothing else changes)."""
    bar_store = datafeeds.open_store(store)
    if bar_store.last_bar(datafeeds.StoreKey(source, symbol, timeframe)) is None:
        raise DataError(f"nothing stored for {source} {symbol} {timeframe} in {bar_store.url}; "
                        "start with `mlstrategy data download ... --since DATE`")
    _download(source, symbol, timeframe, None, None, adjusted, store, api_url, limit)


@data.command("list")
@store_option
def list_cmd(store: str) -> None:
    """Show every stored series: bars, range and gaps."""
    bar_store = datafeeds.open_store(store)
    series = bar_store.describe()
    if not series:
        click.echo(f"nothing stored in {bar_store.url} (see `mlstrategy data import --help`)")
    for item in series:
        r = item.report
        click.echo(f"{item.key}: {r.rows} bars {r.first} .. {r.last}, {len(r.gaps)} gap(s) "
                   f"({sum(g.missing for g in r.gaps)} bars missing)  {item.where}")


@data.command()
@click.argument("source")
@click.argument("symbol")
@click.option("--from", "from_tf", required=True, help="Stored bar size, e.g. 1m.")
@click.option("--to", "to_tf", required=True, help="Larger bar size to make, e.g. 1h, 1d, "
              "1w (calendar weeks) or 1mo (calendar months, opening on the 1st).")
@click.option("--week-start", type=click.Choice(["mon", "tue", "wed", "thu", "fri", "sat",
                                                  "sun"]), default="mon", show_default=True,
              help="Weekday weekly bars open on (00:00 UTC).")
@store_option
def resample(source: str, symbol: str, from_tf: str, to_tf: str, week_start: str,
             store: str) -> None:
    """Aggregate stored SOURCE SYMBOL bars into a larger timeframe, stored beside them.

    Bins follow the UTC calendar: days from 00:00, weeks from --week-start, months from the
    1st. A first bin the data starts inside and a last bin not yet complete are left out.
    """
    bar_store = datafeeds.open_store(store)
    bars = bar_store.read(datafeeds.StoreKey(source, symbol, from_tf))
    if bars is None:
        raise DataError(f"nothing stored for {source} {symbol} {from_tf} in {bar_store.url}")
    out = datafeeds.resample(bars, to_tf, source_timeframe=from_tf, week_start=week_start)
    where = bar_store.replace(datafeeds.StoreKey(source, symbol, to_tf), out)
    click.echo(f"{len(bars)} {from_tf} bars -> {len(out)} {to_tf} bars: {where}")


@data.command()
@click.argument("source")
@click.argument("symbol")
@click.option("--timeframe", "-t", required=True, help="Stored bar size, e.g. 1h.")
@click.option("--format", "fmt", type=click.Choice(["csv", "json", "parquet"]), default="csv",
              show_default=True, help="csv: datetime,open,high,low,close,volume; json: "
              "[[ms, open, high, low, close, volume], ...] (freqtrade/ccxt); parquet.")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path),
              help="File to write (default: SOURCE_SYMBOL_TIMEFRAME.FORMAT here).")
@click.option("--force", is_flag=True, help="Overwrite --out if it exists.")
@store_option
def export(source: str, symbol: str, timeframe: str, fmt: str, out: Path | None, force: bool,
           store: str) -> None:
    """Write the stored SOURCE SYMBOL series to a file that `data import` reads back bit for
    bit (every float in its shortest exact form; the file is written whole, then renamed)."""
    from datafeeds.bar_files import write_bars

    bar_store = datafeeds.open_store(store)
    key = datafeeds.StoreKey(source, symbol, timeframe)
    bars = bar_store.read(key)
    if bars is None:
        raise DataError(f"nothing stored for {key} in {bar_store.url}; see `mlstrategy data "
                        "list`")
    path = out or Path(f"{source}_{symbol.replace('/', '-').replace(':', '-')}_{timeframe}"
                       f".{fmt}")
    if path.exists() and not force:
        raise DataError(f"{path} exists; choose another --out or add --force to overwrite it")
    write_bars(path, bars, fmt)
    click.echo(f"{key}: {len(bars)} bars -> {path}")

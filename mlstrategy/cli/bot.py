"""``mlstrategy bot`` (= ``python trading_bot.py``): run a trained model; it never trains.

``paper`` and ``live`` trade an exchange's candles (simulated broker / the real account),
``replay`` streams a file through the same machinery, ``status`` reads a bot's journal, and
``backtest`` runs the model over history. With no command it replays the production model's
holdout on its embedded sample, as a paper session, and prints the summary.
"""
from __future__ import annotations

import json
import logging
import math
import shutil
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TypeVar

import click
from click.core import ParameterSource

from mlstrategy.cli.backtest import backtest
from mlstrategy.cli.bot_portfolio import (
    follows_production,
    portfolio_option,
    replayed_markets,
    run_portfolio_bot,
)
from mlstrategy.cli.common import (
    DataRequest,
    config_option,
    data_options,
    debug_option,
    models_dir_option,
    utc_time,
)
from mlstrategy.cli.operator_options import operator_options, with_file
from mlstrategy.cli.strategy_options import strategy_options
from mlstrategy.errors import ConfigError
from mlstrategy.live.modes import WARM_UP_BARS, Mode
from mlstrategy.trading.strategy_params import StrategyParams

F = TypeVar("F", bound=Callable)
_CONTEXT = {"help_option_names": ["-h", "--help"]}


class _JsonLogs(logging.Formatter):
    """Log records as JSON lines (``--log-json``)."""

    def format(self, record: logging.LogRecord) -> str:
        return json.dumps({"time": datetime.fromtimestamp(record.created, UTC).isoformat(),
                           "level": record.levelname, "logger": record.name,
                           "message": record.getMessage()})


def _options(*options: Callable[[F], F]) -> Callable[[F], F]:
    def decorate(func: F) -> F:
        for option in reversed(options):
            func = option(func)
        return func
    return decorate


model_options = _options(
    click.option("--model", help="Market NAME (its production model; a newly promoted one "
                 "is swapped in between bars) or NAME/VERSION (pinned) under --models-dir. "
                 "Default: the market trained on these bars, or the registry's only one."),
    models_dir_option,
)
run_options = _options(
    click.option("--journal", type=click.Path(dir_okay=False, path_type=Path),
                 help="SQLite journal of bars, signals, orders and fills (default: "
                      "journals/<mode>_<exchange>_<symbol>_<timeframe>.sqlite). A restart "
                      "with the same journal continues its book."),
    click.option("--max-bars", type=click.IntRange(min=1),
                 help="Stop after this many bars past the warm-up history."),
    click.option("--until", help="Stop after the bar at or after this UTC time "
                 "(e.g. 2025-01-31T18:00)."),
    click.option("--history", type=click.IntRange(min=1), default=WARM_UP_BARS, show_default=True,
                 help="Closed bars fetched at start to warm the features up (at least the "
                      "model's warm-up)."),
    click.option("--poll-interval", type=click.FloatRange(min=0.0),
                 help="Seconds between candle polls (default: a sixtieth of the bar, "
                      "0.5 to 10 s)."),
    click.option("--max-position", type=click.FloatRange(min=0.0),
                 help="Risk: largest position, as quote-currency notional (e.g. USDT)."),
    click.option("--max-daily-loss", type=click.FloatRange(min=0.0),
                 help="Risk: equity loss in a UTC day after which no new entries are made "
                      "until the next day (a kill switch; exits still go)."),
    click.option("--max-orders-per-minute", type=click.IntRange(min=1), default=6,
                 show_default=True, help="Risk: orders sent to the exchange in any minute, at "
                 "most (a paper broker's orders reach no exchange and are not counted; a "
                 "replay has no limit unless this is given: its minutes are not the "
                 "clock's)."),
    click.option("--log-json", is_flag=True,
                 help="Status lines (stdout) and logs (stderr) as JSON lines."),
    click.option("--quiet", "display", flag_value="quiet",
                 help="No status per bar: only the summary at the end."),
    click.option("--verbose", "display", flag_value="verbose",
                 help="A status line per bar even on a terminal (the default there is one "
                      "line updated in place; piped output gets a line per bar)."),
)
exchange_options = _options(
    click.option("--exchange", default="binance", show_default=True,
                 help="ccxt exchange id."),
    click.option("--symbol", default="BTC/USDT", show_default=True,
                 help="Market to trade, unified ccxt symbol."),
    click.option("--timeframe", default="1m", show_default=True,
                 help="Bar size; must be the one the model was trained on."),
    click.option("--api-url", help="Send every REST request of the exchange to this base URL "
                 "instead (testnet, proxy, local simulator)."),
    click.option("--sandbox", is_flag=True, help="Use the exchange's testnet (ccxt sandbox "
                 "mode)."),
    click.option("--timeout", type=click.IntRange(min=100), default=10_000, show_default=True,
                 help="Per-request timeout in milliseconds. An order whose answer is lost is "
                      "declared absent only after this + the exchange's receive window + 1 s "
                      "(binance's engine itself times out at 10 s: keep at least that)."),
    click.option("--rate-limit/--no-rate-limit", default=True, show_default=True,
                 help="Let ccxt space requests by the exchange's published rate limit (turn "
                      "it off only against a local simulator)."),
)


@click.group(context_settings=_CONTEXT, invoke_without_command=True)
@config_option
@debug_option
@click.pass_context
def bot(ctx: click.Context) -> None:
    """The trading bot: loads a trained model at start-up and only predicts.

    \b
    Commands:
      paper     live candles from an exchange, simulated broker (no keys needed)
      live      the real account; keys from MLSTRATEGY_API_KEY / MLSTRATEGY_API_SECRET,
                and --confirm-live
      replay    a file or sample served by a local exchange simulator, same machinery
      status    position, open orders, last signals and PnL of a journal
      backtest  the model over history with backtrader's analyzers

    With no command: replays the production model's holdout on its embedded sample as a
    paper session (offline) and prints the summary.
    """
    if ctx.invoked_subcommand is None:
        ctx.invoke(replay, broker="paper", default_session=True)


def _configure_logs(log_json: bool) -> None:
    if log_json:
        for handler in logging.getLogger().handlers:
            handler.setFormatter(_JsonLogs())


class _Printer:
    """The per-bar status: a JSON line (``--log-json``), a line per bar (``--verbose``, or
    output that is no terminal), one line redrawn in place on a terminal, or nothing
    (``--quiet``)."""

    def __init__(self, log_json: bool, display: str | None) -> None:
        self.log_json = log_json
        self.mode = display or ("line" if sys.stdout.isatty() and not log_json else "verbose")
        self.drawn = False

    def __call__(self, status, market: str = "") -> None:
        if self.mode == "quiet":
            return
        proba = None if math.isnan(status.proba) else round(status.proba, 4)
        if self.log_json:
            named = {"market": market} if market else {}
            click.echo(json.dumps({**named, "time": status.time.isoformat(),
                                   "close": status.close,
                                   "p_up": proba, "signal": status.signal,
                                   "action": status.action, "position": status.position,
                                   "equity": round(status.equity, 2), "model": status.model,
                                   "feed": status.feed}))
            return
        shown = "  n/a" if proba is None else f"{proba:.3f}"
        line = (f"{market + '  ' if market else ''}"
                f"{status.time:%Y-%m-%d %H:%M} close {status.close:>12.2f}  P(up) {shown}"
                f"  {status.signal:<5}  pos {status.position:.6f}  equity "
                f"{status.equity:,.2f}  {status.model}  [{status.feed}] {status.action}")
        if self.mode == "line":  # carriage return, the line, clear what a longer one left
            click.echo(f"\r{line[:_width()]}\x1b[K", nl=False)
            self.drawn = True
        else:
            click.echo(line)

    def done(self) -> None:
        """End the line redrawn in place, before the summary."""
        if self.drawn:
            click.echo()


def _width() -> int:
    return shutil.get_terminal_size().columns - 1


def _stop_on_mismatch(result, on_mismatch: str) -> None:
    """Exit non-zero (code 3) when the run stopped on a position mismatch."""
    from mlstrategy.errors import PositionMismatch

    problem = result.summary.mismatch
    if problem is not None and on_mismatch == "stop":
        raise PositionMismatch(f"{problem}; trading stopped after the bar (journal "
                               f"{result.journal}). Find out who moved the coins; see "
                               "--on-mismatch")


def _summary(result, log_json: bool, printer: _Printer, market: str = "") -> None:
    printer.done()
    s = result.summary.to_dict()
    if log_json:
        named = {"market": market} if market else {}
        click.echo(json.dumps({**named, "summary": s, "journal": str(result.journal),
                               "reconciliation": None if result.reconciliation is None
                               else vars(result.reconciliation),
                               "closing": None if result.closing is None
                               else vars(result.closing)}))
        return
    start, end = s["start_equity"], s["end_equity"]
    change = "" if not start or end is None else f" ({(end / start - 1) * 100:+.2f}%)"
    click.echo(f"summary of {market}:" if market else "summary:")
    if s["model_flags"]:
        click.echo(f"  MODEL FLAGGED by the sanity gate ({len(s['model_flags'])}): "
                   f"{'; '.join(s['model_flags'])}")
    click.echo(f"  model {s['model']}; bars {s['history_bars']} warm-up + "
               f"{s['bars'] - s['history_bars']} traded ({s['live_bars']} LIVE), "
               f"{s['first_bar'] or '-'} .. {s['last_bar'] or '-'}")
    click.echo(f"  orders {s['orders'] or 'none'}; blocked {s['blocked'] or 'none'}")
    click.echo(f"  fills {s['fills']}: bought {s['bought']:.8g}, sold {s['sold']:.8g}")
    click.echo(f"  equity {start if start is not None else float('nan'):,.2f} -> "
               f"{end if end is not None else float('nan'):,.2f}{change}; position "
               f"{s['position']:.8f}")
    click.echo(f"  model swaps {s['swaps']}, refused {s['refused_models']}; feed "
               f"{s['feed'] or 'steady'}")
    if result.reconciliation is not None:
        click.echo(f"  reconciled at start: {vars(result.reconciliation)}")
    if result.closing is not None:
        click.echo(f"  reconciled at stop:  {vars(result.closing)}")
    if s["mismatch"] is not None:
        click.echo(f"  POSITION MISMATCH: {s['mismatch']}")
    click.echo(f"  journal {result.journal}")


def _limits(max_position: float | None, max_daily_loss: float | None,
            per_minute: int | None):
    from mlstrategy.live.risk import RiskLimits

    return RiskLimits(max_position, max_daily_loss, per_minute)


def _default_journal(mode: str, exchange: str, symbol: str, timeframe: str) -> Path:
    safe = symbol.replace("/", "-").replace(":", "-")
    return Path("journals") / f"{mode}_{exchange}_{safe}_{timeframe}.sqlite"


def _replay_order_limit(given: int) -> int | None:
    """A replay's order limit: none unless --max-orders-per-minute was given (it counts
    wall-clock minutes, and a replay serves an hour of bars in a fraction of a second: the
    default would block most entries and part from the backtest of the same bars)."""
    ctx = click.get_current_context(silent=True)
    source = ctx and ctx.get_parameter_source("max_orders_per_minute")
    given_by = (ParameterSource.COMMANDLINE, ParameterSource.ENVIRONMENT,
                ParameterSource.DEFAULT_MAP)
    return given if ctx is None or source in given_by else None


def _run_exchange_bot(mode: Mode, *, exchange_broker: bool, model: str | None,
                      models_dir: Path, exchange: str, symbol: str, timeframe: str,
                      api_url: str | None, sandbox: bool, timeout: int, rate_limit: bool,
                      journal: Path | None,
                      max_bars: int | None, until: str | None, history: int,
                      poll_interval: float | None, params: StrategyParams,
                      max_position: float | None, max_daily_loss: float | None,
                      max_orders_per_minute: int, log_json: bool, display: str | None,
                      recv_window: int | None = None, on_mismatch: str = "stop",
                      portfolio: Path | None = None, operator=None) -> None:
    from mlstrategy.live.runner import BotConfig, default_poll_interval, run_bot
    from mlstrategy.registry.production import market_of, resolve

    _configure_logs(log_json)
    if portfolio is not None:
        from mlstrategy.live.portfolio_file import read_portfolio

        _refuse_with_portfolio("exchange", "symbol", "timeframe", "model")
        printer = _Printer(log_json, display)
        file = read_portfolio(portfolio)
        results = run_portfolio_bot(
            mode, file, exchange_broker=exchange_broker, models_dir=models_dir,
            api_url=api_url, sandbox=sandbox, timeout=timeout, rate_limit=rate_limit,
            journal=journal, max_bars=max_bars, until=utc_time(until, "--until"),
            history=history, poll_interval=poll_interval, params=params,
            max_position=max_position, max_daily_loss=max_daily_loss,
            max_orders_per_minute=max_orders_per_minute, printer=printer,
            recv_window=recv_window, on_mismatch=on_mismatch,
            operator=with_file(operator, file.api, file.notify))
        _summaries(results, log_json, printer, on_mismatch)
        return
    artifact = resolve(models_dir, model, market=market_of(models_dir, symbol, timeframe))
    config = BotConfig(
        mode=mode, exchange=exchange, symbol=symbol, timeframe=timeframe,
        journal=journal or _default_journal(mode, exchange, symbol, timeframe),
        models_dir=models_dir, follow_production=follows_production(model), api_url=api_url,
        sandbox=sandbox, exchange_broker=exchange_broker, max_bars=max_bars,
        until=utc_time(until, "--until"), history=history,
        poll_interval=poll_interval if poll_interval is not None
        else default_poll_interval(timeframe),
        strategy=params, limits=_limits(max_position, max_daily_loss, max_orders_per_minute),
        timeout_ms=timeout, recv_window_ms=recv_window, on_mismatch=on_mismatch,
        rate_limit=rate_limit, operator=operator)
    printer = _Printer(log_json, display)
    result = run_bot(config, artifact, on_status=printer)
    _summary(result, log_json, printer)
    _stop_on_mismatch(result, on_mismatch)


@bot.command(context_settings=_CONTEXT)
@exchange_options
@model_options
@portfolio_option
@run_options
@operator_options
@strategy_options
@debug_option
def paper(**options) -> None:
    """Trade an exchange's live candles with backtrader's simulated broker (no keys).

    The model predicts on each closed bar; orders fill at the next bar's open as in a
    backtest. The journal keeps the paper book, so a restart continues it.
    """
    _run_exchange_bot(Mode.PAPER, exchange_broker=False, **options)


@bot.command(context_settings=_CONTEXT)
@exchange_options
@model_options
@portfolio_option
@run_options
@operator_options
@strategy_options
@click.option("--confirm-live", is_flag=True,
              help="Required: confirms that real orders may be placed with real money.")
@click.option("--recv-window", type=click.IntRange(1, 60_000),
              help="binance: milliseconds after its timestamp during which the exchange may "
                   "act on a signed request, after which it refuses it (default ccxt's 10,000)."
                   " Shorter means an order whose answer is lost is settled sooner.")
@click.option("--on-mismatch", type=click.Choice(["stop", "continue"]), default="stop",
              show_default=True,
              help="When the journal's position is more than the account holds above what it "
                   "held before the bot's first order: stop after the bar and exit with code "
                   "3, or go on with buying halted (sells limited to what both hold).")
@debug_option
def live(confirm_live: bool, **options) -> None:
    """Trade the real account (keys from MLSTRATEGY_API_KEY / MLSTRATEGY_API_SECRET).

    Needs --confirm-live. At start the journal is reconciled with the exchange (orders left
    unresolved by a crash are looked up by client id, fills recovered) before any new order.
    An order whose answer is lost is never sent again: the bot waits until the exchange can no
    longer execute it (--timeout + the receive window + 1 s), and adopts any execution it finds
    later in the trade history. Only the bot's own position is ever sold; what the account held
    before its first order is never touched.
    """
    if not confirm_live:
        raise ConfigError("live trading places real orders with real money: add "
                          "--confirm-live to confirm, or use `paper` to try without")
    _run_exchange_bot(Mode.LIVE, exchange_broker=True, **options)


@bot.command(context_settings=_CONTEXT)
@data_options(default_sample=None)
@model_options
@click.option("--speed", type=click.FloatRange(min=0.0, min_open=True),
              help="Clock speed of the replayed exchange, x real time (default: as fast as "
                   "the bot reads: one bar each time it is caught up).")
@click.option("--start", type=click.IntRange(min=1), help="First bar traded (index in the "
              "data; the bars before it are the exchange's history). Default: the model's "
              "holdout on its own training data, else the bar after --history bars.")
@click.option("--broker", type=click.Choice(["exchange", "paper"]), default="exchange",
              show_default=True, help="exchange: orders go to the simulated exchange's account "
              "through the live broker; paper: backtrader's simulated broker.")
@portfolio_option
@run_options
@operator_options
@strategy_options
@debug_option
def replay(model: str | None, models_dir: Path, data: DataRequest, speed: float | None,
           start: int | None, broker: str, journal: Path | None, max_bars: int | None,
           until: str | None, history: int, poll_interval: float | None,
           max_position: float | None, max_daily_loss: float | None,
           max_orders_per_minute: int, log_json: bool, display: str | None,
           params: StrategyParams, portfolio: Path | None = None,
           default_session: bool = False, operator=None) -> None:
    """Stream bars from a file (or sample) through a local exchange simulator, as if live.

    The simulator speaks the exchange's REST API on 127.0.0.1; the bot reads it through ccxt,
    the live feed and the chosen broker, exactly as in `paper` or `live`. A replay starts a
    fresh journal (default journals/replay_<data>.sqlite).
    """
    from mlstrategy.backtest.spans import trading_span
    from mlstrategy.live.operator import Operator
    from mlstrategy.live.replay import market_symbol, served_others, simulated_market
    from mlstrategy.live.runner import BotConfig, run_bot
    from mlstrategy.registry.production import resolve

    _configure_logs(log_json)
    if portfolio is not None:
        _refuse_with_portfolio("model", "data_path", "sample", "source", "start")
        _replay_portfolio(portfolio, models_dir, speed, broker, journal, max_bars, until,
                          history, poll_interval, max_position, max_daily_loss,
                          max_orders_per_minute, log_json, display, params, operator)
        return
    artifact = resolve(models_dir, model, market=data.name if data.given else None,
                       newest_if_no_production=True)
    data = data.trained_on(artifact.manifest.training_data.source,
                           f"{artifact.ref}")
    dataset = data.load(artifact.spec.inputs)
    if start is None:  # the first bar the model never trained on
        start = max(trading_span(dataset, artifact).start, min(history, len(dataset.bars) - 1))
    name = data.name
    path = journal or Path("journals") / f"replay_{name}.sqlite"
    for stale in (path, Path(f"{path}-wal"), Path(f"{path}-shm")):
        stale.unlink(missing_ok=True)  # a replay is a fresh session
    _, quote = market_symbol(dataset.info.symbol)
    exchange_broker = broker == "exchange"
    with simulated_market(dataset, start, speed=speed,
                          balances={quote: params.cash} if exchange_broker else None,
                          others=served_others(dataset, artifact.spec)) as market:
        if not default_session:
            click.echo(f"replay: {name} {market.symbol} {market.timeframe}, bars {start} .. "
                       f"{len(dataset.bars) - 1} served by a local exchange at {market.url}")
        else:
            click.echo(f"offline paper session: model {artifact.ref} "
                       f"replaying {name} from bar {start} ({market.bars_left} bars)")
        config = BotConfig(
            mode=Mode.REPLAY, exchange="binance", symbol=market.symbol,
            timeframe=market.timeframe, journal=path, models_dir=models_dir,
            follow_production=follows_production(model), api_url=market.url,
            exchange_broker=exchange_broker, simulator_keys=True,
            max_bars=min(max_bars or market.bars_left, market.bars_left),
            until=utc_time(until, "--until"), history=min(history, start),
            poll_interval=poll_interval if poll_interval is not None
            else (0.0 if speed is None else 0.05),
            strategy=params, limits=_limits(max_position, max_daily_loss,
                                            _replay_order_limit(max_orders_per_minute)),
            timeout_ms=5_000, recv_window_ms=1_000, rate_limit=False,
            operator=operator or Operator())
        printer = _Printer(log_json, display)
        result = run_bot(config, artifact, on_status=printer)
    _summary(result, log_json, printer)
    _stop_on_mismatch(result, config.on_mismatch)


def _replay_portfolio(portfolio: Path, models_dir: Path, speed: float | None, broker: str,
                      journal: Path | None, max_bars: int | None, until: str | None,
                      history: int, poll_interval: float | None,
                      max_position: float | None, max_daily_loss: float | None,
                      max_orders_per_minute: int, log_json: bool, display: str | None,
                      params: StrategyParams, operator) -> None:
    """``replay --config``: every market of the file from one simulator, a fresh journal."""
    from mlstrategy.live.portfolio_file import read_portfolio

    file = read_portfolio(portfolio)
    cash = file.account.cash if file.account.cash is not None else params.cash
    path = journal or Path("journals") / f"replay_{portfolio.stem}.sqlite"
    for stale in (path, Path(f"{path}-wal"), Path(f"{path}-shm")):
        stale.unlink(missing_ok=True)  # a replay is a fresh session
    exchange_broker = broker == "exchange"
    with replayed_markets(file, models_dir, speed=speed, history=history,
                          funded=exchange_broker, cash=cash) as (url, markets, left):
        click.echo(f"replay: {len(markets)} markets ({', '.join(m.symbol for m in markets)}),"
                   f" {left} bars served by a local exchange at {url}")
        printer = _Printer(log_json, display)
        results = run_portfolio_bot(
            Mode.REPLAY, file, exchange_broker=exchange_broker, models_dir=models_dir,
            api_url=url, sandbox=False, timeout=5_000, rate_limit=False, journal=path,
            max_bars=min(max_bars or left, left), until=utc_time(until, "--until"),
            history=history, poll_interval=poll_interval if poll_interval is not None
            else (0.0 if speed is None else 0.05), params=params, max_position=max_position,
            max_daily_loss=max_daily_loss,
            max_orders_per_minute=_replay_order_limit(max_orders_per_minute),
            printer=printer, recv_window=1_000, simulator_keys=True, markets=markets,
            background_polls=speed is not None,  # a stepped clock waits for the bot
            operator=with_file(operator, file.api, file.notify))
    _summaries(results, log_json, printer, "stop")


def _refuse_with_portfolio(*names: str) -> None:
    """Refuse one-market options given with --config (its markets replace them)."""
    ctx = click.get_current_context()
    given = [n for n in names if ctx.get_parameter_source(n) == ParameterSource.COMMANDLINE]
    if given:
        raise click.UsageError(f"--{given[0]} names one market; with --config the markets "
                               f"come from {ctx.params.get('portfolio')}: set it there")


def _summaries(results: dict, log_json: bool, printer: _Printer, on_mismatch: str) -> None:
    """Each market's summary; exit 3 when one stopped on a position mismatch."""
    for name, result in results.items():
        _summary(result, log_json, printer, name)
    for result in results.values():
        _stop_on_mismatch(result, on_mismatch)


@bot.command(context_settings=_CONTEXT)
@click.option("--journal", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="The bot's SQLite journal.")
@click.option("--signals", type=click.IntRange(min=0), default=10, show_default=True,
              help="How many of the last signals to show.")
@debug_option
def status(journal: Path, signals: int) -> None:
    """Position, open orders, last signals and PnL from a bot's journal (safe while it runs)."""
    from mlstrategy.live.status import journal_status

    for line in journal_status(journal, signals):
        click.echo(line)


bot.add_command(backtest)

"""``trading_bot.py paper|live|replay --config bot.toml``: one bot for every market of a file.

The file (``mlstrategy.live.portfolio_file``) names the markets and the account's limits; the
command line still gives what they share (journal, run length, strategy options, timeouts).
A replay serves each market's ``data`` from one local exchange simulator on one clock.
"""
from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import click

from mlstrategy.errors import ConfigError
from mlstrategy.live.modes import Mode
from mlstrategy.live.portfolio_file import MarketEntry, PortfolioFile
from mlstrategy.live.risk import RiskLimits
from mlstrategy.trading.strategy_params import StrategyParams

portfolio_option = click.option(
    "--config", "portfolio", type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Trade several markets in one bot: a TOML file with an [account] table (quote, cash, "
         "max_open_positions, max_exposure, max_daily_loss, max_position, max_leverage, "
         "min_liquidation_distance) and one [[market]] table per market (name, exchange, "
         "symbol, timeframe, model, stake, leverage for a perpetual; data for a replay). "
         "Replaces --exchange, --symbol, --timeframe and --model; see the README.")


def account_limits(account, max_position: float | None = None,
                   max_daily_loss: float | None = None,
                   per_minute: int | None = None) -> RiskLimits:
    """The account's limits from the file; a limit given on the command line wins."""
    return RiskLimits(max_position if max_position is not None else account.max_position,
                      max_daily_loss if max_daily_loss is not None else account.max_daily_loss,
                      per_minute, account.max_open_positions, account.max_exposure)


def follows_production(model: str | None) -> bool:
    """Whether a market follows its production pointer: unless ``model`` pins a version
    (NAME/VERSION)."""
    return model is None or "/" not in model


def _markets(file: PortfolioFile, models_dir: Path, api_url: str | None,
             replay: bool = False) -> list:
    """The file's markets with their models resolved (a replay takes a market's newest
    model while none is in production)."""
    from mlstrategy.live.runner import MarketConfig
    from mlstrategy.registry.production import market_of, resolve

    markets = []
    for m in file.markets:
        registry_market = m.model.split("/")[0] if m.model else \
            market_of(models_dir, m.symbol, m.timeframe)
        artifact = resolve(models_dir, m.model, market=registry_market,
                           newest_if_no_production=replay)
        markets.append(MarketConfig(m.name, m.exchange, m.symbol, m.timeframe, artifact,
                                    follow_production=follows_production(m.model),
                                    stake=m.stake, api_url=api_url or m.api_url,
                                    leverage=m.leverage or 1))
    return markets


def run_portfolio_bot(mode: Mode, file: PortfolioFile, *, exchange_broker: bool,
                      models_dir: Path, api_url: str | None, sandbox: bool, timeout: int,
                      rate_limit: bool, journal: Path | None, max_bars: int | None,
                      until, history: int, poll_interval: float | None,
                      params: StrategyParams, max_position: float | None,
                      max_daily_loss: float | None, max_orders_per_minute: int | None,
                      printer, recv_window: int | None = None, on_mismatch: str = "stop",
                      simulator_keys: bool = False, markets: list | None = None,
                      background_polls: bool = True, operator=None):
    """Run the markets of ``file`` (``markets``: already resolved, a replay's); returns each
    market's ``BotResult`` by name."""
    from mlstrategy.live.runner import BotConfig, default_poll_interval, run_portfolio

    markets = markets or _markets(file, models_dir, api_url)
    cash = file.account.cash if file.account.cash is not None else params.cash
    config = BotConfig(
        mode=mode, exchange="", symbol="", timeframe="",
        journal=journal or Path("journals") / f"{mode}_{file.path.stem}.sqlite",
        models_dir=models_dir, sandbox=sandbox, exchange_broker=exchange_broker,
        max_bars=max_bars, until=until, history=history,
        poll_interval=poll_interval if poll_interval is not None
        else default_poll_interval(markets[0].timeframe),
        strategy=replace(params, cash=cash),
        limits=account_limits(file.account, max_position, max_daily_loss, max_orders_per_minute),
        timeout_ms=timeout, recv_window_ms=recv_window, on_mismatch=on_mismatch,
        rate_limit=rate_limit, simulator_keys=simulator_keys,
        background_polls=background_polls,
        min_liquidation_distance=file.account.min_liquidation_distance or 0.1,
        **({} if operator is None else {"operator": operator}))
    return run_portfolio(config, markets, on_status=lambda name, status: printer(status, name))


def historical_markets(file: PortfolioFile, models_dir: Path) -> tuple[list, list]:
    """The file's markets with their models resolved (a market's newest while none is in
    production), and each with its bars (its ``data``), as a replay and a backtest trade
    them: ``(MarketConfig list, PortfolioMarket list)``."""
    from mlstrategy.backtest.portfolio import PortfolioMarket

    configs = _markets(file, models_dir, None, replay=True)
    return configs, [PortfolioMarket(entry.name, _dataset(entry, config.model, file.path),
                                     config.model, entry.stake)
                     for entry, config in zip(file.markets, configs, strict=True)]


@contextlib.contextmanager
def replayed_markets(file: PortfolioFile, models_dir: Path, *, speed: float | None,
                     history: int, funded: bool, cash: float) -> Iterator[tuple]:
    """Serve every market's ``data`` from one simulator whose clock starts where the
    portfolio's backtest starts (``portfolio_start``; bars before it are history).

    Yields ``(url, the markets as served, bars left)``.
    """
    from execution.sim_book import SimClock
    from execution.sim_futures import FuturesAccount
    from execution.simulator import ExchangeSimulator
    from mlstrategy.backtest.portfolio import portfolio_start
    from mlstrategy.live.replay import market_symbol

    portfolio = file.path
    configs, loaded = historical_markets(file, models_dir)
    timeframes = {m.dataset.timeframe for m in loaded}
    if len(timeframes) > 1:
        raise ConfigError(f"{portfolio}: a replay serves one bar size, the markets' data "
                          f"have {', '.join(sorted(timeframes))}")
    start = portfolio_start(loaded, history)
    quote = file.account.quote
    simulator = None
    served: dict[str, tuple[str, str]] = {}  # market name -> (ccxt exchange id, symbol)
    for market, entry in zip(loaded, file.markets, strict=True):
        base, _ = market_symbol(entry.symbol)
        if any(f"{base}/{quote}" == s.partition(":")[0] for _, s in served.values()):
            raise ConfigError(f"{portfolio}: two markets trade {base}/{quote}; a replay lists "
                              "each symbol once")
        served[market.name] = ("binanceusdm", f"{base}/{quote}:{quote}") if entry.perpetual \
            else ("binance", f"{base}/{quote}")
        bars = market.dataset.bars
        if simulator is None:
            simulator = ExchangeSimulator(
                bars, base=base, quote=quote, interval=market.dataset.timeframe,
                clock=SimClock(int(start.value // 1_000_000), speed),
                balances={quote: cash} if funded else None,
                futures=FuturesAccount(cash) if funded and any(
                    m.perpetual for m in file.markets) else None)
        else:
            simulator.add_market(bars, base=base, quote=quote)
    left = min(int((m.dataset.bars.index >= start).sum()) for m in loaded)
    if left == 0:
        raise ConfigError(f"{portfolio}: the markets' data have no bar in common after "
                          f"{start}; replay bars of the same period")
    with simulator:
        yield simulator.url, [
            replace(c, exchange=served[c.name][0], symbol=served[c.name][1],
                    timeframe=m.dataset.timeframe, api_url=simulator.url)
            for c, m in zip(configs, loaded, strict=True)], left


def _dataset(market: MarketEntry, artifact, portfolio: Path):
    """A market's replay bars: ``data`` (``sample:NAME`` or a file, relative to the portfolio
    file), else the model's own training sample."""
    from mlstrategy.research.dataset import file_dataset, sample_dataset

    source = market.data or artifact.manifest.training_data.source
    if source.startswith("sample:"):
        return sample_dataset(source.removeprefix("sample:"))
    path = Path(source)
    if not path.is_absolute():
        path = portfolio.parent / path
    if not path.is_file():
        raise ConfigError(f"{portfolio}: market {market.name!r} replays data {source!r}, "
                          "which is no file; give data = \"sample:NAME\" or a path to bars")
    dataset, _ = file_dataset(path, market.symbol, market.timeframe)
    return dataset

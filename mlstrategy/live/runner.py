"""Run the trading bot: live candles -> ``MLStrategy`` -> a broker, through backtrader's Cerebro.

The same ``MLStrategy`` and per-bar path as the backtest; only the feed and the broker differ:

- ``paper``: candles from the exchange, backtrader's simulated broker (no keys needed), its book
  kept in the journal so a restart continues it;
- ``live``: the exchange's own account through ``CcxtBroker`` (keys from the environment), after
  reconciling the journal with the exchange, and reconciling again when the run ends (no
  order is left unresolved or working but the stop and take-profit guarding the position,
  every fill is in the journal). A position that is not
  provably the bot's stops the run (``PositionMismatch``) unless ``on_mismatch="continue"``;
- ``replay``: a file served by the local ``ExchangeSimulator`` on its own clock, traded with
  either broker, so a recorded market runs through exactly the live machinery.

The model is loaded once at start and only predicts; a newly promoted one is swapped in
between bars. SIGINT/SIGTERM end the run after the current bar. While it runs, the operator's
side (``BotConfig.operator``: the control API and dashboard, notifications) is served beside
the trading loop, and what the operator asks (pause, exit, reload, stop) is applied at the next
bar.
"""
from __future__ import annotations

import contextlib
import logging
import signal
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from datafeeds.bt.compat import bt
from datafeeds.bt.live_feed import BarSequence, LiveFeed
from datafeeds.exchange.candles import CandlePoller
from datafeeds.exchange.client import make_exchange, serialize_requests
from datafeeds.timeframes import timeframe_delta
from execution.account_broker import AccountBroker
from execution.broker import CcxtBroker
from execution.deadline import set_recv_window
from execution.futures import FuturesGateway, is_contract, market_gateway
from execution.futures_broker import FuturesBroker
from execution.orders import OrderGateway, strategy_tag
from execution.protection import has_oco
from mlstrategy.errors import ConfigError, PositionMismatch
from mlstrategy.live.controls import Controls
from mlstrategy.live.hot_swap import ModelWatcher
from mlstrategy.live.journal import Journal
from mlstrategy.live.market_bars import MarketBars
from mlstrategy.live.modes import WARM_UP_BARS, Mode
from mlstrategy.live.operator import Operator, operated
from mlstrategy.live.reconcile import Reconciliation, reconcile
from mlstrategy.live.risk import RiskGuard, RiskLimits
from mlstrategy.live.session import BarStatus, LiveSession, SessionSummary
from mlstrategy.registry.artifact import Artifact
from mlstrategy.trading.strategy import MLStrategy, paper_broker
from mlstrategy.trading.strategy_params import StrategyParams

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class BotConfig:
    """Everything a bot run is told (the CLI builds it from its options). A one-market bot
    names its market here; a portfolio passes its ``MarketConfig``s to ``run_portfolio``."""

    mode: Mode  # the journal's
    exchange: str
    symbol: str
    timeframe: str
    journal: Path
    models_dir: Path = Path("models")
    follow_production: bool = True  # hot-swap to newly promoted models
    api_url: str | None = None
    sandbox: bool = False
    exchange_broker: bool = False  # trade the exchange's account (live; replay optional)
    max_bars: int | None = None
    until: pd.Timestamp | None = None
    history: int = WARM_UP_BARS
    poll_interval: float = 1.0
    strategy: StrategyParams = field(default_factory=StrategyParams)  # as a backtest's
    limits: RiskLimits = field(default_factory=RiskLimits)
    timeout_ms: int = 10_000
    recv_window_ms: int | None = None  # binance: refuse our signed requests older than this
    on_mismatch: str = "stop"  # a position not provably the bot's: "stop" or "continue"
    rate_limit: bool = True
    simulator_keys: bool = False  # sign with throwaway keys (our local simulator)
    # several markets: each polls in its own thread; False polls them in turn between bars
    # (a replay on a stepped clock: its bars close only once the bot read them all)
    background_polls: bool = True
    # perpetual futures: no entry whose liquidation lies nearer than this fraction of price
    min_liquidation_distance: float = 0.1
    operator: Operator = field(default_factory=Operator)  # API, dashboard, notifications


@dataclass(frozen=True)
class MarketConfig:
    """One market of a bot: where, what, with which model and stake."""

    name: str  # the journal's name of the market ("" for a one-market bot)
    exchange: str
    symbol: str
    timeframe: str
    model: Artifact
    follow_production: bool = True
    stake: float | None = None  # fraction of the account's value per entry (None: strategy's)
    api_url: str | None = None
    leverage: int = 1  # a perpetual's, set on the exchange at start (isolated margin)

    @property
    def label(self) -> str:
        """How logs and errors name the market."""
        return f"{self.name} ({self.symbol})" if self.name else self.symbol


@dataclass(frozen=True)
class BotResult:
    """What a run did (in one market of a portfolio)."""

    summary: SessionSummary
    journal: Path
    reconciliation: Reconciliation | None  # at start, before the first new order
    closing: Reconciliation | None  # at the end: outstanding orders resolved, fills fetched
    probas: list[float]


def check_options(params: StrategyParams, gateway: OrderGateway, label: str) -> None:
    """Refuse the strategy options a market's exchange broker cannot honour (backtrader's
    paper broker honours every one, as a backtest does)."""
    contract = is_contract(gateway.market)
    if params.allow_short and not contract:
        raise ConfigError(f"--allow-short: {label} is a spot market, whose account cannot sell "
                          "what it does not hold; trade its perpetual (e.g. exchange "
                          "binanceusdm, symbol BTC/USDT:USDT), drop --allow-short, or try it "
                          "with `paper` or `replay --broker paper`")
    if params.stop_loss and params.take_profit and not contract and not has_oco(gateway):
        raise ConfigError(f"{gateway.exchange.id} takes no OCO order: a resting take-profit "
                          "would lock the coins its stop-loss needs; drop --take-profit or "
                          "--stop-loss")


def check_model(artifact: Artifact, symbol: str, timeframe: str) -> None:
    """Refuse a model trained on another bar size; warn about another symbol."""
    trained = artifact.manifest.training_data
    if trained.timeframe != timeframe:
        raise ConfigError(f"model {artifact.ref} was trained on "
                          f"{trained.timeframe!r} bars, the bot is asked to trade "
                          f"{timeframe!r}; pass --timeframe {trained.timeframe} or "
                          "train a model on these bars")
    if trained.symbol != symbol:
        log.warning("model %s/%s was trained on %s, trading it on %s", artifact.name,
                    artifact.version, trained.symbol, symbol)


@contextlib.contextmanager
def stop_on_signals(stop: threading.Event) -> Iterator[None]:
    """SIGINT/SIGTERM set ``stop`` (the run ends after the current bar); a second one aborts."""
    def handler(signum: int, frame: object) -> None:
        if stop.is_set():
            raise KeyboardInterrupt
        log.warning("%s: stopping after the current bar", signal.Signals(signum).name)
        stop.set()

    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for s, h in previous.items():
            signal.signal(s, h)


def run_bot(config: BotConfig, artifact: Artifact, *,
            on_status: Callable[[BarStatus], None] = lambda status: None,
            stop: threading.Event | None = None) -> BotResult:
    """Run ``artifact`` as a bot on ``config``'s market until ``max_bars``, ``until`` or a
    stop signal (``run_portfolio`` with one market, named ``""``).

    Raises
    ------
    ConfigError, ModelError, ExchangeError, DataError
        Bad options, a model for other bars, an unreachable exchange (fast when offline),
        bad candles, a journal in use or of another bot.
    """
    market = MarketConfig("", config.exchange, config.symbol, config.timeframe, artifact,
                          config.follow_production, api_url=config.api_url)
    return run_portfolio(config, [market], on_status=lambda name, status: on_status(status),
                         stop=stop)[""]


def run_portfolio(config: BotConfig, markets: list[MarketConfig], *,
                  on_status: Callable[[str, BarStatus], None] = lambda name, status: None,
                  stop: threading.Event | None = None) -> dict[str, BotResult]:
    """Run several markets in one process: one Cerebro with a feed per market (bars that
    close together are decided in ``markets``' order), one journal, one exchange client per
    exchange, one risk guard for the account, each market its own model (hot-swapped from its
    own production pointer), stake and live broker.

    ``config`` gives what the markets share (mode, journal, broker kind, limits, strategy
    options, timeouts); its exchange, symbol and timeframe are a one-market bot's only.
    Returns each market's result by name.
    """
    for market in markets:
        check_model(market.model, market.symbol, market.timeframe)
    params = config.strategy.costed(markets[0].model.training_cost)
    stop = stop or threading.Event()
    portfolio = len(markets) > 1 or markets[0].name != ""
    identity = {"mode": config.mode} if portfolio else {
        "mode": config.mode, "exchange": config.exchange, "symbol": config.symbol,
        "timeframe": config.timeframe}
    clients: dict[tuple[str, str | None], object] = {}
    for market in markets:  # one client (one rate limiter) per exchange
        key = (market.exchange, market.api_url)
        if key not in clients:
            clients[key] = _exchange(config, market)
    # several markets poll in their own threads, so one whose exchange hangs holds no other up
    sequence = BarSequence(grace=2 * config.poll_interval + 1.0) \
        if len(markets) > 1 and config.background_polls else None
    if sequence is not None:
        for client in clients.values():
            serialize_requests(client)
    journal = Journal.open(config.journal, identity, {
        m.name: {"exchange": m.exchange, "symbol": m.symbol, "timeframe": m.timeframe}
        for m in markets} if portfolio else None)
    try:
        journal.start_session(", ".join(f"{m.name}={m.model.ref}" if m.name else
                                        f"{m.model.ref}" for m in markets))
        with operated(config.operator, journal, [m.name for m in markets], stop,
                      models_dir=config.models_dir,
                      thresholds=(params.enter, params.exit)) as controls:
            return _run_markets(config, markets, journal, clients, sequence, params, stop,
                                controls, portfolio, on_status)
    finally:
        journal.close()


def _run_markets(config: BotConfig, markets: list[MarketConfig], journal: Journal,
                 clients: dict, sequence: BarSequence | None, params: StrategyParams,
                 stop: threading.Event, controls: Controls, portfolio: bool,
                 on_status: Callable[[str, BarStatus], None]) -> dict[str, BotResult]:
    """One Cerebro over every market until the run ends; each market's result."""
    guard = RiskGuard(config.limits, journal)  # the account's: one for every market
    cerebro = bt.Cerebro(stdstats=False, quicknotify=True)
    runs = [_MarketRun(config, m, clients[(m.exchange, m.api_url)], journal, stop,
                       sequence) for m in markets]
    for run in runs:  # no model starts without the other markets its features read
        if run.other_bars is not None:
            run.other_bars.check()
    for run in runs:
        cerebro.adddata(run.feed)
    if config.exchange_broker:
        for run in runs:
            run.connect(config)
        brokers = {run.feed: run.broker for run in runs}
        cerebro.setbroker(runs[0].broker if not portfolio else AccountBroker(brokers))
    else:
        cerebro.setbroker(paper_broker(params))
    sessions = {}
    for run in runs:
        watcher = ModelWatcher(config.models_dir, run.market.model,
                               timeframe=run.market.timeframe, journal=run.journal,
                               follow=run.market.follow_production, markets=run.other_bars)
        run.session = LiveSession(
            run.journal, guard, watcher, stop=stop, until=config.until,
            on_status=lambda status, name=run.market.name: on_status(name, status),
            paper_cash=None if config.exchange_broker else params.cash,
            label=f"{config.mode} bot: {run.market.exchange} {run.market.label} "
                  f"{run.market.timeframe}, journal {config.journal}",
            on_mismatch=config.on_mismatch, account=journal, broker=run.broker,
            controls=controls, drift=config.operator.drift,
            journal_features=config.operator.journal_features)
        sessions[run.feed._name] = run.session
    cerebro.addstrategy(
        MLStrategy, models={r.feed._name: r.market.model for r in runs}, sessions=sessions,
        stakes={r.feed._name: r.market.stake for r in runs if r.market.stake is not None},
        keep_records=False, **params.options())
    with stop_on_signals(stop):
        strategy = cerebro.run()[0]
    results = {run.market.name: run.finish(strategy) for run in runs}
    journal.end_session({name: r.summary.to_dict() for name, r in results.items()}
                        if portfolio else results[""].summary.to_dict())
    return results


def _exchange(config: BotConfig, market: MarketConfig) -> object:
    """The ccxt client of ``market``'s exchange, set up as ``config`` says."""
    exchange = make_exchange(market.exchange, api_url=market.api_url,
                             rate_limit=config.rate_limit, timeout_ms=config.timeout_ms,
                             sandbox=config.sandbox,
                             credentials=config.exchange_broker and not config.simulator_keys)
    if config.recv_window_ms is not None:
        set_recv_window(exchange, config.recv_window_ms)
    if config.simulator_keys:  # our local simulator accepts any key: nothing secret here
        exchange.apiKey = exchange.secret = "replay-simulator"
    return exchange


class _MarketRun:
    """One market's part of a run: its journal view, feed, live broker and session."""

    def __init__(self, config: BotConfig, market: MarketConfig, exchange: object,
                 journal: Journal, stop: threading.Event,
                 sequence: BarSequence | None) -> None:
        self.market = market
        self.journal = journal.for_market(market.name)
        self.exchange = exchange
        poller = CandlePoller(exchange, market.symbol, market.timeframe)
        self.feed = LiveFeed.over(poller, history=max(config.history,
                                                      market.model.spec.warmup + 1),
                                  poll_interval=config.poll_interval,
                                  max_bars=config.max_bars, stop=stop,
                                  name=market.name or None, sequence=sequence)
        self.broker: CcxtBroker | None = None
        self.reconciliation: Reconciliation | None = None
        self.session: LiveSession | None = None
        spec = market.model.spec  # the other markets its features read, followed too
        self.other_bars = MarketBars(exchange, spec, self.journal, market.symbol) \
            if spec.inputs else None

    def connect(self, config: BotConfig) -> None:
        """Reconcile the market's journal with the exchange (before any new order) and set
        up its live broker."""
        market = self.market
        self.gateway = market_gateway(self.exchange, market.symbol)
        contract = isinstance(self.gateway, FuturesGateway)
        log.info("%s: an order whose answer is lost is declared absent only after %s",
                 market.label, self.gateway.deadline.describe())
        check_options(config.strategy, self.gateway, market.label)
        self.tag = strategy_tag(market.exchange, market.symbol, market.timeframe,
                                str(config.journal.resolve()))
        self.reconciliation = reconcile(self.gateway, self.journal, self.tag)
        _check_start(self.reconciliation, self.journal, config, market)
        if contract:
            self.gateway.set_up(market.leverage, "isolated")
            self.journal.event("contract_set_up", leverage=market.leverage, margin="isolated")
            self.broker = FuturesBroker(
                self.gateway, self.journal, self.tag, self.feed, leverage=market.leverage,
                min_liquidation_distance=config.min_liquidation_distance)
        else:
            self.broker = CcxtBroker(self.gateway, self.journal, self.tag, self.feed,
                                     held_before=self.reconciliation.held_before)
        self.broker.mismatch = self.reconciliation.mismatch

    def finish(self, strategy: MLStrategy) -> BotResult:
        """After the run: reconcile again (no order left unresolved, none working but the
        position's stop and take-profit) and sum up."""
        closing = None
        session = self.session
        if self.broker is not None:
            closing = reconcile(self.gateway, self.journal, self.tag)
            if isinstance(self.broker, FuturesBroker):
                self.broker.record_funding()  # paid since the last bar, into the PnL
            self.broker.reload()
            if closing.mismatch is not None and session.summary.mismatch is None:
                session.summary.mismatch = closing.mismatch
                self.journal.event("position_mismatch", reason=closing.mismatch, at="stop")
        summary = session.summarize(strategy.broker.getvalue())
        return BotResult(summary, self.journal.path, self.reconciliation, closing,
                         strategy.books[self.feed].probas)


def _check_start(reconciliation: Reconciliation, journal: Journal, config: BotConfig,
                 market: MarketConfig) -> None:
    """Refuse to trade a market whose position is not provably the bot's (unless told to go
    on with entries halted)."""
    problem = reconciliation.mismatch
    if problem is None:
        return
    journal.event("position_mismatch", reason=problem, on_mismatch=config.on_mismatch,
                  at="start")
    if config.on_mismatch == "stop":
        raise PositionMismatch(f"{market.label}: {problem}; nothing was traded. Find out who "
                               "moved the coins; if they are settled, start a new --journal "
                               "(it takes the account as it is), or pass --on-mismatch "
                               "continue to run with buying halted")
    log.error("POSITION MISMATCH at start in %s: %s; going on with buying halted "
              "(--on-mismatch continue)", market.label, problem)


def default_poll_interval(timeframe: str) -> float:
    """Seconds between polls: a sixtieth of the bar, between 0.5 s and 10 s."""
    return min(max(timeframe_delta(timeframe).total_seconds() / 60.0, 0.5), 10.0)

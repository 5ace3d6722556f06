"""Run the trading bot: live candles -> ``MLStrategy`` -> a broker, through backtrader's Cerebro.

The same ``MLStrategy`` and per-bar path as the backtest; only the feed and the broker differ:

- ``paper``: candles from the exchange, backtrader's simulated broker (no keys needed), its book
  kept in the journal so a restart continues it;
- ``live``: the exchange's own account through ``CcxtBroker`` (keys from the environment), after
  reconciling the journal with the exchange, and reconciling again when the run ends (no
  order is left unresolved or working, every fill is in the journal). A position that is not
  provably the bot's stops the run (``PositionMismatch``) unless ``on_mismatch="continue"``;
- ``replay``: a file served by the local ``ExchangeSimulator`` on its own clock, traded with
  either broker, so a recorded market runs through exactly the live machinery.

The model is loaded once at start and only predicts; a newly promoted one is swapped in
between bars. SIGINT/SIGTERM end the run after the current bar.
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
from datafeeds.bt.live_feed import LiveFeed
from datafeeds.exchange.candles import CandlePoller
from datafeeds.exchange.client import make_exchange
from datafeeds.timeframes import timeframe_delta
from execution.broker import CcxtBroker
from execution.deadline import set_recv_window
from execution.orders import OrderGateway, strategy_tag
from mlstrategy.errors import ConfigError, PositionMismatch
from mlstrategy.live.hot_swap import ModelWatcher
from mlstrategy.live.journal import Journal
from mlstrategy.live.modes import Mode
from mlstrategy.live.reconcile import Reconciliation, reconcile
from mlstrategy.live.risk import RiskGuard, RiskLimits
from mlstrategy.live.session import BarStatus, LiveSession, SessionSummary
from mlstrategy.registry.artifact import Artifact
from mlstrategy.trading.strategy import MLStrategy, setup_broker
from mlstrategy.trading.strategy_params import StrategyParams

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class BotConfig:
    """Everything a bot run is told (the CLI builds it from its options)."""

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
    history: int = 1000
    poll_interval: float = 1.0
    strategy: StrategyParams = field(default_factory=StrategyParams)  # as a backtest's
    limits: RiskLimits = field(default_factory=RiskLimits)
    timeout_ms: int = 10_000
    recv_window_ms: int | None = None  # binance: refuse our signed requests older than this
    on_mismatch: str = "stop"  # a position not provably the bot's: "stop" or "continue"
    rate_limit: bool = True
    simulator_keys: bool = False  # sign with throwaway keys (our local simulator)


@dataclass(frozen=True)
class BotResult:
    """What a run did."""

    summary: SessionSummary
    journal: Path
    reconciliation: Reconciliation | None  # at start, before the first new order
    closing: Reconciliation | None  # at the end: outstanding orders resolved, fills fetched
    probas: list[float]


def check_options(params: StrategyParams, exchange_broker: bool) -> None:
    """Refuse the strategy options the exchange broker cannot honour yet (backtrader's paper
    broker honours every one, as a backtest does)."""
    if not exchange_broker:
        return
    brackets = [name for name in ("stop_loss", "take_profit") if getattr(params, name)]
    if brackets:
        raise ConfigError(f"--{brackets[0].replace('_', '-')}: the bot does not place stop "
                          "or take-profit orders on an exchange yet (they come with the "
                          "portfolio bot); drop it, or try it with `paper` or `replay --broker "
                          "paper`")
    if params.allow_short:
        raise ConfigError("--allow-short: a spot account cannot sell what it does not hold; "
                          "drop it, or try it with `paper` or `replay --broker paper`")


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
    """Run ``artifact`` as a bot until ``max_bars``, ``until`` or a stop signal.

    Raises
    ------
    ConfigError, ModelError, ExchangeError, DataError
        Bad options, a model for other bars, an unreachable exchange (fast when offline),
        bad candles, a journal in use or of another bot.
    """
    check_model(artifact, config.symbol, config.timeframe)
    check_options(config.strategy, config.exchange_broker)
    params = config.strategy.costed(artifact.training_cost)
    stop = stop or threading.Event()
    identity = {"mode": config.mode, "exchange": config.exchange, "symbol": config.symbol,
                "timeframe": config.timeframe}
    exchange = make_exchange(config.exchange, api_url=config.api_url,
                             rate_limit=config.rate_limit, timeout_ms=config.timeout_ms,
                             sandbox=config.sandbox,
                             credentials=config.exchange_broker and not config.simulator_keys)
    if config.recv_window_ms is not None:
        set_recv_window(exchange, config.recv_window_ms)
    if config.simulator_keys:  # our local simulator accepts any key: nothing secret here
        exchange.apiKey = exchange.secret = "replay-simulator"
    journal = Journal.open(config.journal, identity)
    try:
        journal.start_session(f"{artifact.ref}")
        poller = CandlePoller(exchange, config.symbol, config.timeframe)
        feed = LiveFeed.over(poller, history=max(config.history, artifact.spec.warmup + 1),
                             poll_interval=config.poll_interval, max_bars=config.max_bars,
                             stop=stop)
        cerebro = bt.Cerebro(stdstats=False, quicknotify=True)
        cerebro.adddata(feed)
        reconciliation = broker = None
        if config.exchange_broker:
            gateway = OrderGateway(exchange, config.symbol)
            gateway.load()
            log.info("an order whose answer is lost is declared absent only after %s",
                     gateway.deadline.describe())
            tag = strategy_tag(config.exchange, config.symbol, config.timeframe,
                               str(config.journal.resolve()))
            reconciliation = reconcile(gateway, journal, tag)  # before the first new order
            _check_start(reconciliation, journal, config)
            broker = CcxtBroker(gateway, journal, tag, feed,
                                held_before=reconciliation.held_before)
            broker.mismatch = reconciliation.mismatch
            cerebro.setbroker(broker)
        else:
            setup_broker(cerebro.broker, params)
        watcher = ModelWatcher(config.models_dir, artifact, timeframe=config.timeframe,
                               journal=journal, follow=config.follow_production)
        session = LiveSession(journal, RiskGuard(config.limits, journal), watcher,
                              on_status=on_status, stop=stop, until=config.until,
                              paper_cash=None if config.exchange_broker else params.cash,
                              label=f"{config.mode} bot: {config.exchange} {config.symbol} "
                                    f"{config.timeframe}, journal {config.journal}",
                              on_mismatch=config.on_mismatch)
        cerebro.addstrategy(MLStrategy, model=artifact, session=session, **params.options())
        with stop_on_signals(stop):
            strategy = cerebro.run()[0]
        closing = None
        if broker is not None:  # a clean stop leaves no order unresolved or working
            closing = reconcile(gateway, journal, tag)
            broker.reload()
            if closing.mismatch is not None and session.summary.mismatch is None:
                session.summary.mismatch = closing.mismatch
                journal.event("position_mismatch", reason=closing.mismatch, at="stop")
        summary = session.summarize(strategy.broker.getvalue())
        return BotResult(summary, config.journal, reconciliation, closing, strategy.probas)
    finally:
        journal.close()


def _check_start(reconciliation: Reconciliation, journal: Journal, config: BotConfig) -> None:
    """Refuse to trade a market whose position is not provably the bot's (unless told to go
    on with entries halted)."""
    problem = reconciliation.mismatch
    if problem is None:
        return
    journal.event("position_mismatch", reason=problem, on_mismatch=config.on_mismatch,
                  at="start")
    if config.on_mismatch == "stop":
        raise PositionMismatch(f"{config.symbol}: {problem}; nothing was traded. Find out who "
                               "moved the coins; if they are settled, start a new --journal "
                               "(it takes the account as it is), or pass --on-mismatch "
                               "continue to run with buying halted")
    log.error("POSITION MISMATCH at start: %s; going on with buying halted "
              "(--on-mismatch continue)", problem)


def default_poll_interval(timeframe: str) -> float:
    """Seconds between polls: a sixtieth of the bar, between 0.5 s and 10 s."""
    return min(max(timeframe_delta(timeframe).total_seconds() / 60.0, 0.5), 10.0)

"""Several markets in one bot, in process: real ccxt -> one simulator over HTTP -> one Cerebro.

The second market (ETHUSDT) serves real bars too: the sample's BTC minutes of three thousand
minutes earlier, scaled to an ETH-like price and stamped on the same clock (the sample holds
one real 1-minute series). Both markets trade one account; each keeps its own book in the one
journal, with the guarantees of a one-market bot.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from datafeeds.bt.dates import num2ns
from execution.sim_book import SimClock
from execution.simulator import ExchangeSimulator
from mlstrategy.live.journal import Journal
from mlstrategy.live.risk import RiskLimits
from mlstrategy.live.runner import BotConfig, MarketConfig, run_portfolio
from mlstrategy.live.status import journal_status
from tests.mlstrategy.live.conftest import FIRST_TRADED, books_agree, eth_bars

BARS_RUN = 30


@pytest.fixture
def two_markets(minute_bars):
    clock = SimClock(int(minute_bars.index[FIRST_TRADED].value // 1_000_000), None)
    with ExchangeSimulator(minute_bars, interval="1m", clock=clock,
                           balances={"USDT": 20_000.0, "BTC": 0.05, "ETH": 1.0}) as sim:
        sim.add_market(eth_bars(minute_bars), base="ETH", quote="USDT")
        yield sim


UNLIMITED = RiskLimits(max_orders_per_minute=None)  # a stepped clock's minutes fly by


def _run(sim, journal, model, *, live: bool, limits: RiskLimits = UNLIMITED, **overrides):
    settings = dict(mode="live" if live else "paper", exchange="", symbol="", timeframe="",
                    journal=journal, models_dir=model.models_dir, exchange_broker=live,
                    simulator_keys=True, max_bars=BARS_RUN, poll_interval=0.0,
                    rate_limit=False, timeout_ms=1_000, recv_window_ms=2_000, limits=limits)
    config = BotConfig(**{**settings, **overrides})
    markets = [MarketConfig(name, "binance", symbol, "1m", model.artifact, stake=0.45,
                            api_url=sim.url)
               for name, symbol in (("btc", "BTC/USDT"), ("eth", "ETH/USDT"))]
    return run_portfolio(config, markets)


def test_two_spot_markets_trade_one_account_each_with_its_own_book(two_markets, minute_model,
                                                                   tmp_path):
    journal = tmp_path / "bot.sqlite"
    results = _run(two_markets, journal, minute_model, live=True)
    assert set(results) == {"btc", "eth"}
    for name, result in results.items():
        assert result.summary.bars - result.summary.history_bars == BARS_RUN, name
        assert result.closing is not None and result.closing.mismatch is None
    traded = {name: sum(r.summary.orders.values()) for name, r in results.items()}
    assert all(traded.values()), f"each market should trade in {BARS_RUN} minutes: {traded}"
    books_agree(two_markets, journal, 0.05, "btc", "BTC")
    books_agree(two_markets, journal, 1.0, "eth", "ETH")
    lines = journal_status(journal)
    assert any("market btc: live binance BTC/USDT 1m" in line for line in lines)
    assert any("market eth: live binance ETH/USDT 1m" in line for line in lines)
    # a restart on the same journal continues both books and sends nothing twice
    again = _run(two_markets, journal, minute_model, live=True, max_bars=10)
    assert all(r.reconciliation.mismatch is None for r in again.values())
    books_agree(two_markets, journal, 0.05, "btc", "BTC")
    books_agree(two_markets, journal, 1.0, "eth", "ETH")


def test_paper_markets_share_the_cash_and_the_accounts_limits(two_markets, minute_model,
                                                              tmp_path):
    journal = tmp_path / "paper.sqlite"
    results = _run(two_markets, journal, minute_model, live=False,
                   limits=RiskLimits(max_orders_per_minute=None, max_open_positions=1))
    reader = Journal.read(journal)
    positions = {name: reader.for_market(name).position() for name in ("btc", "eth")}
    blocked = sum(r.summary.blocked["the account's limit of 1 open position is reached"]
                  for r in results.values())
    holding = [name for name, signals in
               ((n, reader.for_market(n).signals()) for n in ("btc", "eth"))
               if (signals.position.fillna(0) != 0).any()]
    reader.close()
    assert blocked > 0, "both models want in at once: the second entry waits"
    assert sum(p != 0 for p in positions.values()) <= 1
    assert holding, "one market should have held a position"
    assert two_markets.order_requests == []  # paper orders never reach the exchange


def _portfolio_file(tmp_path, minute_bars, btc_data: str = "sample:btcperp-1m",
                    **account) -> object:
    """A two-market ``bot.toml`` whose ETH market replays a file of bars beside it."""
    eth_bars(minute_bars).to_csv(tmp_path / "eth.csv")
    limits = "".join(f"{k} = {v}\n" for k, v in account.items())
    path = tmp_path / "bot.toml"
    path.write_text(f"""[account]
quote = "USDT"
cash = 20000
{limits}
[[market]]
name = "btc"
symbol = "BTC/USDT"
model = "btc1m"
data = "{btc_data}"
stake = 0.45

[[market]]
name = "eth"
symbol = "ETH/USDT"
model = "btc1m"
data = "eth.csv"
stake = 0.45
""")
    return path


def test_replay_of_a_portfolio_file_decides_both_markets_bar_by_bar(minute_model, minute_bars,
                                                                    tmp_path):
    from click.testing import CliRunner

    from mlstrategy.cli import cli

    toml = _portfolio_file(tmp_path, minute_bars, max_open_positions=2)
    journal = tmp_path / "replay.sqlite"
    result = CliRunner().invoke(cli, ["bot", "replay", "--config", str(toml), "--models-dir",
                                      str(minute_model.models_dir), "--max-bars", "40",
                                      "--journal", str(journal), "--quiet"])
    assert result.exit_code == 0, result.output
    assert "replay: 2 markets (BTC/USDT, ETH/USDT)" in result.output
    assert "summary of btc:" in result.output and "summary of eth:" in result.output
    reader = Journal.read(journal)
    signals = {name: reader.for_market(name).signals() for name in ("btc", "eth")}
    reader.close()
    traded = {name: s[s.action != "history"] for name, s in signals.items()}
    assert len(traded["btc"]) == len(traded["eth"]) == 40
    # one clock: both markets decide the same bars, in the file's order
    assert traded["btc"].time_ms.tolist() == traded["eth"].time_ms.tolist()
    assert any((t.action != "hold").any() for t in traded.values()), "no market traded"
    # one account: on each bar both markets see its value (the second after the first's order)
    np.testing.assert_allclose(traded["btc"].equity, traded["eth"].equity, rtol=1e-3)


@pytest.mark.parametrize("text, error", [
    ("", "names no market"),
    ('[[market]]\nsymbol = "BTC/USDT"\nstak = 0.5\n', "no key 'stak'; did you mean 'stake'"),
    ('[[market]]\nsymbol = "BTC/USDT"\nstake = 1.5\n', "stake 1.5 is a fraction"),
    ('[[market]]\nsymbol = "BTC/USDT"\n[[market]]\nsymbol = "BTC/USDT"\n',
     "market name 'BTC/USDT' is given twice"),
    ('[account]\nquote = "USDT"\n[[market]]\nsymbol = "ETH/BTC"\n', "not quoted in the "
     "account's USDT"),
    ('[account]\nmax_open_positions = 1.5\n[[market]]\nsymbol = "BTC/USDT"\n',
     "must be a whole number"),
    ("[account\n", "cannot read the portfolio file"),
    ('[api]\nprot = 8080\n[[market]]\nsymbol = "BTC/USDT"\n', "[api] has no key 'prot'"),
    ('[api]\nport = 70000\n[[market]]\nsymbol = "BTC/USDT"\n', "port must be a whole"),
    ('[notify]\nurls = "http://x"\n[[market]]\nsymbol = "BTC/USDT"\n', "urls must be a list"),
    ('[notify]\nurls = ["http://x"]\nformat = "irc"\n[[market]]\nsymbol = "BTC/USDT"\n',
     "format 'irc' is not one of"),
])
def test_a_bad_portfolio_file_is_one_clear_error(text, error, tmp_path, capsys):
    from mlstrategy.cli import cli, run

    toml = tmp_path / "bot.toml"
    toml.write_text(text)
    with pytest.raises(SystemExit) as exit_:
        run(cli, ["bot", "paper", "--config", str(toml), "--models-dir",
                  str(tmp_path / "models")])
    err = capsys.readouterr().err
    assert exit_.value.code == 2, err
    assert error in err and "Traceback" not in err


def test_the_example_portfolio_file_reads():
    from mlstrategy.live.portfolio_file import read_portfolio
    from tests.conftest import REPO_ROOT

    file = read_portfolio(REPO_ROOT / "examples" / "bot.toml")
    assert [(m.name, m.symbol, m.stake) for m in file.markets] == [
        ("btc", "BTC/USDT", 0.45), ("eth", "ETH/USDT", 0.45)]
    assert (file.account.quote, file.account.max_open_positions) == ("USDT", 2)


def test_the_files_api_and_notify_tables_fill_what_the_command_line_left_out(tmp_path):
    from mlstrategy.cli.operator_options import with_file
    from mlstrategy.live.api import ApiSettings
    from mlstrategy.live.operator import Operator
    from mlstrategy.live.portfolio_file import read_portfolio

    toml = tmp_path / "bot.toml"
    toml.write_text('[api]\nport = 8123\n[notify]\nurls = ["http://127.0.0.1:9/hook"]\n'
                    'format = "discord"\n[[market]]\nsymbol = "BTC/USDT"\n')
    file = read_portfolio(toml)
    from_file = with_file(Operator(), file.api, file.notify)
    assert (from_file.api.port, from_file.api.host) == (8123, "127.0.0.1")
    assert (from_file.notify, from_file.notify_format) == (("http://127.0.0.1:9/hook",),
                                                           "discord")
    given = Operator(api=ApiSettings(9000), notify=("http://127.0.0.1:10/",))
    assert with_file(given, file.api, file.notify) == given  # flags win


def test_replay_and_backtest_of_a_portfolio_make_the_same_orders_and_exits(
        minute_model, minute_bars, tmp_path):
    """A two-market file with a stop-loss and a take-profit, replayed through the simulator
    (backtrader's broker, then the exchange's account with the protection resting there) and
    backtested: the same decisions, and the same fills (bar, side, price; with backtrader's
    broker the very same), protective exits included."""
    from click.testing import CliRunner

    from mlstrategy.backtest.portfolio import portfolio_start, run_portfolio_backtest
    from mlstrategy.cli import cli
    from mlstrategy.cli.bot_portfolio import account_limits, historical_markets
    from mlstrategy.live.modes import WARM_UP_BARS
    from mlstrategy.live.portfolio_file import read_portfolio
    from mlstrategy.trading.strategy_params import StrategyParams

    toml = _portfolio_file(tmp_path, minute_bars, btc_data="btc.csv", max_open_positions=1)
    minute_bars.to_csv(tmp_path / "btc.csv")
    _, markets = historical_markets(read_portfolio(toml), minute_model.models_dir)
    end = portfolio_start(markets, WARM_UP_BARS) + pd.Timedelta(minutes=120)
    for name, bars in (("btc", minute_bars), ("eth", eth_bars(minute_bars))):
        bars[bars.index < end].to_csv(tmp_path / f"{name}.csv")  # 120 bars to trade
    file = read_portfolio(toml)
    _, markets = historical_markets(file, minute_model.models_dir)
    params = StrategyParams(cash=20_000.0, stop_loss=0.002, take_profit=0.004)
    run = run_portfolio_backtest(markets, params, account_limits(file.account),
                                 portfolio_start(markets, WARM_UP_BARS))
    expected = {name: [("buy" if e["size"] > 0 else "sell", abs(e["size"]), e["price"],
                        num2ns(e["time"]) // 1_000_000)
                       for e in run.strategy.executions if e["data"] == name]
                for name in ("btc", "eth")}
    backtest = [(ns // 1_000_000, name, intent) for ns, name, intent, _, _ in
                run.strategy.decisions]
    assert len({d[1] for d in backtest}) == 2, "both markets should trade in 120 bars"
    assert run.report["markets"]["btc"]["bars"] == 120
    for broker in ("paper", "exchange"):
        journal = tmp_path / f"replay-{broker}.sqlite"
        result = CliRunner().invoke(cli, ["bot", "replay", "--config", str(toml), "--broker",
                                          broker, "--models-dir", str(minute_model.models_dir),
                                          "--journal", str(journal), "--quiet", "--cash",
                                          "20000", "--stop-loss", "0.002", "--take-profit",
                                          "0.004"])
        assert result.exit_code == 0, result.output
        reader = Journal.read(journal)
        replay = sorted(
            (int(row.time_ms), name, row.action.split()[0])
            for name in ("btc", "eth") for row in reader.for_market(name).signals().itertuples()
            if row.action.split()[0] in ("enter", "exit") and "blocked" not in row.action)
        blocked = sum("open position is reached" in a for name in ("btc", "eth")
                      for a in reader.for_market(name).signals().action)
        fills = {name: [(f.side, f.amount, f.price, f.time_ms)
                        for f in reader.for_market(name).fills()] for name in ("btc", "eth")}
        kinds = {o.kind for name in ("btc", "eth") for o in reader.for_market(name).orders()
                 if o.filled}
        late = sum(((s.action != "history") & (s.status != "LIVE")).sum() for s in
                   (reader.for_market(name).signals() for name in ("btc", "eth")))
        assert late == 0, "every bar of both markets should reach the bot LIVE"
        reader.close()
        if broker == "paper":  # backtrader's broker in both: the very same fills
            assert fills == expected
        else:  # the exchange's: at the same bars and prices, sizes in its lot steps
            assert {"stop", "take"} & kinds, "a protective order should fill on the exchange"
            for name in ("btc", "eth"):
                assert [(f[0], f[3]) for f in fills[name]] == \
                    [(e[0], e[3]) for e in expected[name]], name
                np.testing.assert_allclose([f[2] for f in fills[name]],
                                           [e[2] for e in expected[name]], rtol=1e-6)
        order = {name: i for i, name in enumerate(("btc", "eth"))}
        assert replay == sorted(backtest, key=lambda d: (d[0], order[d[1]])), broker
        print(f"{broker}: {len(replay)} decisions as the backtest's, {blocked} blocked")
        assert blocked > 0, "the account's limit of one position should bind"


def test_a_slow_exchange_does_not_hold_the_other_markets_up(minute_bars, minute_model,
                                                            tmp_path):
    """ETH on an exchange that takes 1.5 s per answer, first in the file's order; BTC on
    another: BTC's bars are decided as they close, waiting at most the sequence's grace for
    ETH's, not for ETH's slow polls."""
    import time

    clock = SimClock(int(minute_bars.index[FIRST_TRADED].value // 1_000_000), None)
    seen: dict[str, list[float]] = {"btc": [], "eth": []}
    with ExchangeSimulator(minute_bars, interval="1m", clock=clock) as fast, \
            ExchangeSimulator(eth_bars(minute_bars), base="ETH", interval="1m",
                              clock=SimClock(clock.now_ms(), None)) as slow:
        config = BotConfig(mode="paper", exchange="", symbol="", timeframe="",
                           journal=tmp_path / "j.sqlite", models_dir=minute_model.models_dir,
                           max_bars=5, history=300, poll_interval=0.0, rate_limit=False,
                           timeout_ms=5_000, limits=UNLIMITED)
        markets = [MarketConfig(name, "binance", symbol, "1m", minute_model.artifact,
                                api_url=url) for name, symbol, url in
                   (("eth", "ETH/USDT", slow.url), ("btc", "BTC/USDT", fast.url))]
        slow.latency = 1.5
        run_portfolio(config, markets,
                      on_status=lambda name, status: seen[name].append(time.monotonic()))
    assert len(seen["btc"]) == len(seen["eth"]) == 5
    assert seen["btc"][-1] < seen["eth"][2], "BTC waited for ETH's slow exchange"

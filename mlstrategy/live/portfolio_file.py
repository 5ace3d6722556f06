"""The portfolio file (``bot.toml``): which markets one bot trades, and the account's limits.

::

    [account]
    quote = "USDT"             # every market is quoted in it: one pot of cash
    cash = 10000               # a paper or replay account's opening cash
    max_open_positions = 2     # markets holding a position at once
    max_exposure = 9000        # notional of all positions together, in the quote currency
    max_daily_loss = 500       # the account's kill switch: no entries for the rest of the day
    max_position = 5000        # notional of any one market's position
    max_leverage = 5           # perpetuals: no market's leverage above it (default 5)
    min_liquidation_distance = 0.1  # perpetuals: no entry liquidated within 10% (default)

    [[market]]
    name = "btc"               # default: the symbol; the journal keeps each market's book
    exchange = "binance"
    symbol = "BTC/USDT"
    timeframe = "1m"
    model = "btc1m"            # a registry market (its production model, followed) or
                               # NAME/VERSION (pinned); default: the one trained on these bars
    stake = 0.45               # fraction of the account's value per entry
    data = "sample:btcperp-1m" # replay only: the bars served for this market

    [[market]]                 # a USDⓈ-M perpetual: long and short, isolated margin
    name = "eth-perp"
    exchange = "binanceusdm"
    symbol = "ETH/USDT:USDT"   # ccxt's perpetual symbol: BASE/QUOTE:SETTLE
    leverage = 2               # set on the exchange at start; at most max_leverage

    [api]                      # the control API and dashboard (--api-port, --api-host)
    port = 8080
    host = "127.0.0.1"

    [notify]                   # webhooks (--notify, --notify-format)
    urls = ["https://hooks.slack.com/services/..."]
    format = "slack"           # json | slack | discord | telegram

Unknown keys are refused with the nearest known one, so a misspelt limit never goes unnoticed.
"""
from __future__ import annotations

import difflib
import tomllib
from dataclasses import dataclass, field, fields
from pathlib import Path

from mlstrategy.errors import ConfigError
from mlstrategy.live.notify import FORMATS


@dataclass(frozen=True)
class AccountEntry:
    """The ``[account]`` table."""

    quote: str | None = None
    cash: float | None = None
    max_open_positions: int | None = None
    max_exposure: float | None = None
    max_daily_loss: float | None = None
    max_position: float | None = None
    max_leverage: int | None = None
    min_liquidation_distance: float | None = None


DEFAULT_MAX_LEVERAGE = 5


@dataclass(frozen=True)
class MarketEntry:
    """One ``[[market]]`` table."""

    symbol: str
    name: str = ""
    exchange: str = "binance"
    timeframe: str = "1m"
    model: str | None = None
    stake: float | None = None
    api_url: str | None = None
    data: str | None = None
    leverage: int | None = None

    @property
    def perpetual(self) -> bool:
        """Whether the symbol names a perpetual contract (ccxt's ``BASE/QUOTE:SETTLE``)."""
        return ":" in self.symbol


@dataclass(frozen=True)
class PortfolioFile:
    """A parsed ``bot.toml``."""

    path: Path
    account: AccountEntry
    markets: list[MarketEntry]
    api: dict = field(default_factory=dict)  # port, host
    notify: dict = field(default_factory=dict)  # urls, format


def read_portfolio(path: Path) -> PortfolioFile:
    """Parse and check ``path``.

    Raises
    ------
    ConfigError
        Unreadable TOML, an unknown key, no market, two markets of one name, a stake outside
        (0, 1], or a market quoted in another currency than the account's.
    """
    try:
        tables = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read the portfolio file {path}: {exc}") from None
    _known(tables, {"account", "market", "api", "notify"}, f"{path}: the top level")
    api, notify = tables.get("api", {}), tables.get("notify", {})
    _known(api, {"port", "host"}, f"{path} [api]")
    _known(notify, {"urls", "format"}, f"{path} [notify]")
    if "port" in api and (not isinstance(api["port"], int) or not 0 <= api["port"] <= 65535):
        raise ConfigError(f"{path} [api]: port must be a whole number 0..65535")
    urls = notify.get("urls", [])
    if not isinstance(urls, list) or not all(isinstance(u, str) for u in urls):
        raise ConfigError(f"{path} [notify]: urls must be a list of strings")
    if notify.get("format", "json") not in FORMATS:
        raise ConfigError(f"{path} [notify]: format {notify['format']!r} is not one of "
                          f"{', '.join(FORMATS)}")
    account = _entry(AccountEntry, tables.get("account", {}), f"{path} [account]")
    rows = tables.get("market", [])
    if not isinstance(rows, list) or not rows:
        raise ConfigError(f"{path} names no market: add one [[market]] table per market "
                          "(symbol = \"BTC/USDT\", ...)")
    markets = []
    for i, row in enumerate(rows, 1):
        where = f"{path} [[market]] #{i}"
        if "symbol" not in row:
            raise ConfigError(f"{where} has no symbol; add e.g. symbol = \"BTC/USDT\"")
        entry = _entry(MarketEntry, row, where)
        if not entry.name:
            entry = MarketEntry(**{**vars(entry), "name": entry.symbol})
        if entry.stake is not None and not 0 < entry.stake <= 1:
            raise ConfigError(f"{where}: stake {entry.stake:g} is a fraction of the account's "
                              "value per entry, in (0, 1]")
        _check_leverage(entry, account, where)
        markets.append(entry)
    names = [m.name for m in markets]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise ConfigError(f"{path}: market name {twice[0]!r} is given twice; give each "
                          "[[market]] its own name = \"...\"")
    quote = account.quote or _quote(markets[0].symbol)
    other = [m for m in markets if _quote(m.symbol) != quote]
    if other:
        raise ConfigError(f"{path}: market {other[0].name!r} ({other[0].symbol}) is not quoted "
                          f"in the account's {quote}; one account pools one quote currency")
    return PortfolioFile(path, AccountEntry(**{**vars(account), "quote": quote}), markets,
                         api, notify)


def _check_leverage(market: MarketEntry, account: AccountEntry, where: str) -> None:
    """A leverage only for a perpetual, and within the account's cap."""
    if market.leverage is None:
        return
    if not market.perpetual:
        raise ConfigError(f"{where}: leverage is for perpetual futures; {market.symbol} is a "
                          "spot symbol (a perpetual's reads BASE/QUOTE:SETTLE, e.g. "
                          "BTC/USDT:USDT)")
    cap = account.max_leverage or DEFAULT_MAX_LEVERAGE
    if market.leverage > cap:
        raise ConfigError(f"{where}: leverage {market.leverage} is above the account's "
                          f"max_leverage {cap}; lower it, or raise max_leverage in [account]")


def _quote(symbol: str) -> str:
    """``BTC/USDT`` -> ``USDT`` (and ``BTC/USDT:USDT`` too)."""
    return symbol.partition("/")[2].partition(":")[0].upper()


def _known(table: dict, keys: set[str], where: str) -> None:
    """Refuse a key not in ``keys``, naming the nearest one."""
    for key in table:
        if key not in keys:
            near = difflib.get_close_matches(key, sorted(keys), n=1)
            hint = f"did you mean {near[0]!r}?" if near else f"known: {', '.join(sorted(keys))}"
            raise ConfigError(f"{where} has no key {key!r}; {hint}")


def _entry(cls: type, table: object, where: str) -> object:
    """``table`` as a ``cls`` (a dataclass), its keys checked and numbers typed."""
    if not isinstance(table, dict):
        raise ConfigError(f"{where} must be a table of keys")
    _known(table, {f.name for f in fields(cls)}, where)
    values = {}
    for f in fields(cls):
        if f.name not in table:
            continue
        value, wanted = table[f.name], str(f.type)
        number = "float" in wanted or "int" in wanted
        if number and (isinstance(value, bool) or not isinstance(value, (int, float))):
            raise ConfigError(f"{where}: {f.name} must be a number, not {value!r}")
        if number and not value > 0:
            raise ConfigError(f"{where}: {f.name} must be above 0, not {value!r}")
        if "int" in wanted and not isinstance(value, int):
            raise ConfigError(f"{where}: {f.name} must be a whole number, not {value!r}")
        if not number and not isinstance(value, str):
            raise ConfigError(f"{where}: {f.name} must be a string, not {value!r}")
        values[f.name] = value
    return cls(**values)

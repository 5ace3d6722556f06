"""Perpetual futures through ccxt (binance USDⓈ-M, and any exchange with the same unified
methods): the order gateway of a contract market.

What differs from spot, and only that:

- **set-up**: ``set_up`` puts the market in isolated margin and sets its leverage on the
  exchange, before the first order (both are idempotent: a restart sets them again);
- **exits are reduce-only**: an order flagged ``reduce_only`` can only shrink the position, so
  a lost answer retried by nobody, or an exit racing a stop, can never open a position the
  other way;
- **protective orders** are binance's conditional (algo) orders: a ``STOP_MARKET`` and a
  ``TAKE_PROFIT_MARKET``, reduce-only, each its own order (no OCO: a reduce-only leg left
  over when the other filled cannot open anything, and the broker cancels it). Looked up and
  cancelled by their client algo id; once triggered, the market order they sent
  (``actualOrderId``) is what they are: its fills are theirs;
- **the position** comes from the exchange's position endpoint (``position``), with its
  entry, mark and liquidation price, instead of a base-asset balance;
- **funding** payments are read from the account's income history (``funding``).
"""
from __future__ import annotations

from dataclasses import dataclass

import ccxt

from datafeeds.errors import ExchangeError, OrderNotFound
from datafeeds.exchange.client import request_lock
from execution import contract_holdings
from execution.orders import (
    STOP,
    TAKE,
    Balance,
    OrderGateway,
    OrderIntent,
    OrderState,
    key_intent,
)

_ALGO = "algo-"  # exchange ids of conditional orders (numbered apart from orders)


@dataclass(frozen=True)
class ContractPosition:
    """The exchange's position in one contract market."""

    amount: float  # signed: a short is negative
    entry: float
    mark: float
    liquidation: float | None  # None when flat or not given


@dataclass(frozen=True)
class Funding:
    """One funding payment (negative: paid)."""

    id: str
    time_ms: int
    amount: float
    currency: str


def _actual_order(raw: dict) -> str | None:
    """The id of the order a triggered conditional order sent, or None."""
    actual = str((raw.get("info") or {}).get("actualOrderId") or "")
    return actual if actual not in ("", "0") else None


def is_contract(market: dict) -> bool:
    """Whether a ccxt market is a linear perpetual (a USDⓈ-M future)."""
    return bool(market.get("contract")) and bool(market.get("linear"))


def market_gateway(exchange: object, symbol: str) -> OrderGateway:
    """The loaded gateway of ``symbol``: a ``FuturesGateway`` for a linear perpetual, an
    ``OrderGateway`` (spot) otherwise."""
    gateway = OrderGateway(exchange, symbol)
    gateway.load()
    if not is_contract(gateway.market):
        return gateway
    contract = FuturesGateway(exchange, symbol)
    contract.market = gateway.market  # loaded once
    return contract


class FuturesGateway(OrderGateway):
    """``OrderGateway`` of a linear perpetual (see the module doc)."""

    holdings = contract_holdings  # one net position per symbol: the bot's is all of it
    last_position: ContractPosition | None = None  # as the position endpoint last said

    def load(self) -> None:
        super().load()
        if not is_contract(self.market):
            raise ExchangeError(f"{self.symbol} on {self.exchange.id} is not a linear "
                                "perpetual; name one such as BTC/USDT:USDT")

    def set_up(self, leverage: int, margin_mode: str = "isolated") -> None:
        """Put the market in ``margin_mode`` and ``leverage`` on the exchange.

        Raises
        ------
        ExchangeError
            When the exchange refuses (a position open under another margin mode, leverage
            above the market's most) or cannot be asked.
        """
        def margin() -> object:
            try:
                return self.exchange.set_margin_mode(margin_mode, self.symbol)
            except ccxt.MarginModeAlreadySet:  # binance's -4046: it is so already
                return {"code": -4046}

        # a garbled answer (no JSON object, or binance's fields saying otherwise) is no
        # "done": set again
        def margin_set(answer: object) -> None:
            if not isinstance(answer, dict) or \
                    str(answer.get("code", "200")) not in ("200", "-4046"):
                raise ValueError(f"no confirmation that the margin mode is {margin_mode}")

        def leverage_set(answer: object) -> None:
            if not isinstance(answer, dict) or \
                    str(answer.get("leverage", leverage)) != str(leverage):
                raise ValueError(f"no confirmation that the leverage is {leverage}")

        self._read(f"set_margin_mode {margin_mode}", margin, parse=margin_set)
        self._read(f"set_leverage {leverage}", self.exchange.set_leverage, leverage,
                   self.symbol, parse=leverage_set)

    def maintenance_rate(self) -> float:
        """The market's maintenance margin rate for small positions (its first bracket)."""
        # reloaded on every try: ccxt keeps what it parsed, a garbled answer's nothing too
        return self._read("load_leverage_brackets", self.exchange.load_leverage_brackets,
                          True, parse=lambda brackets: float(brackets[self.symbol][0][1]))

    def order_request(self, intent: OrderIntent) -> tuple[str, float | None, dict]:
        params = {"reduceOnly": True} if intent.reduce_only else {}
        if intent.kind in (STOP, TAKE):  # conditional: a market order once triggered
            kind = "STOP_MARKET" if intent.kind == STOP else "TAKE_PROFIT_MARKET"
            return kind, None, {**params, "stopPrice": float(intent.price)}
        return intent.kind, None if intent.price is None else float(intent.price), params

    def by_client_id(self, client_id: str) -> dict:
        if key_intent(client_id) in (STOP, TAKE):
            return {"clientAlgoId": client_id, "trigger": True}
        return super().by_client_id(client_id)

    def lookup(self, client_id: str) -> OrderState | None:
        """As ``OrderGateway.lookup``; a triggered protective order is the market order it
        sent (its id, state and fills) under the protective order's client id."""
        if key_intent(client_id) not in (STOP, TAKE):
            return super().lookup(client_id)
        try:
            state, actual = self._read(
                f"fetch_order {client_id}", self.exchange.fetch_order, None, self.symbol,
                self.by_client_id(client_id),
                parse=lambda raw: (self._order_state(raw), _actual_order(raw)))
        except OrderNotFound:
            return None
        if actual is None:
            return state
        try:
            sent = self.order_by_id(actual)
        except OrderNotFound:
            return state  # not listed yet: the conditional order is what is known
        return OrderState(client_id, sent.exchange_id, sent.status, state.side,
                          state.amount, sent.filled, sent.average)

    @staticmethod
    def _order_state(raw: object) -> OrderState:
        state = OrderGateway._order_state(raw)
        info = raw.get("info") or {}
        if "algoId" not in info:
            return state
        # a conditional order itself fills nothing (the order it sends does)
        status = "open" if info.get("algoStatus") in ("NEW", "TRIGGERING") else state.status
        return OrderState(state.client_id, f"{_ALGO}{info['algoId']}", status, state.side,
                          state.amount, 0.0, None)

    def position(self) -> ContractPosition:
        """The account's position in this market (flat when the exchange lists none)."""
        def positions_now() -> tuple[object, object]:
            with request_lock(self.exchange):  # the body read is this request's
                return (self.exchange.fetch_positions([self.symbol]),
                        self.exchange.last_json_response)

        def parse(answer: tuple[object, object]) -> ContractPosition:
            raw, body = answer  # a garbled body parses into no positions: "flat"
            if body is None or not isinstance(raw, list):
                raise ValueError("a positions answer that is no JSON list")
            for p in raw:
                if p.get("symbol") == self.symbol and p.get("contracts"):
                    sign = -1.0 if p.get("side") == "short" else 1.0
                    size = float(p["contracts"]) * float(p.get("contractSize") or 1.0)
                    liquidation = p.get("liquidationPrice")
                    return ContractPosition(sign * size, float(p.get("entryPrice") or 0.0),
                                            float(p.get("markPrice") or 0.0),
                                            float(liquidation) if liquidation else None)
            return ContractPosition(0.0, 0.0, 0.0, None)

        self.last_position = self._read("fetch_positions", positions_now, parse=parse)
        return self.last_position

    def balance(self) -> Balance:
        """The margin wallet (quote: free is what new positions may use, total the wallet)
        and, as the base, the signed position from the position endpoint."""
        def parse(raw: dict) -> tuple[float, float]:
            info = raw.get("info")
            if not isinstance(info, dict) or not isinstance(info.get("assets"), list):
                raise ValueError("a balance answer without the account's assets")
            quote = raw.get(self.quote) or {}
            return float(quote.get("free") or 0.0), float(quote.get("total") or 0.0)

        free, total = self._read("fetch_balance", self.exchange.fetch_balance, parse=parse)
        amount = self.position().amount
        return Balance(amount, amount, free, total)

    def funding(self, since_ms: int) -> list[Funding]:
        """Funding payments of this market from ``since_ms`` on, oldest first."""
        def parse(raw: object) -> list[Funding]:
            if not isinstance(raw, list):
                raise TypeError("funding history is not a list")
            return sorted((Funding(str(r["id"]), int(r["timestamp"]), float(r["amount"]),
                                   str(r.get("code") or self.quote)) for r in raw),
                          key=lambda f: (f.time_ms, f.id))

        return self._read(f"fetch_funding_history since {since_ms}",
                          self.exchange.fetch_funding_history, self.symbol, since_ms,
                          parse=parse)

"""``FuturesBroker``: ``CcxtBroker`` for a linear perpetual, long and short.

Every guarantee of the spot broker holds (client ids, journal first, lookup before resubmit,
reconciliation, the history sweep, protective orders resting on the exchange); what changes
is what a position is:

- the position is signed (a short is negative) and must equal the exchange's
  (``contract_holdings``): one net position per symbol leaves no room for someone else's;
- an order against the position is an exit: reduce-only, at most the position;
- an entry is refused when its liquidation would lie within ``min_liquidation_distance`` of
  the price (isolated margin at the market's ``leverage`` and maintenance rate);
- cash is the margin wallet and the position adds its unrealised PnL to the value;
- on each live bar the funding payments are read into the journal (they are PnL), and the
  exchange's position (entry, mark, liquidation price) is journaled when it changes, for
  ``status``.
"""
from __future__ import annotations

import logging
from typing import Protocol

from datafeeds.errors import ExchangeError
from execution.broker import BrokerJournal, CcxtBroker
from execution.futures import ContractPosition, Funding, FuturesGateway

log = logging.getLogger(__name__)
CONTRACT_POSITION = "contract_position"  # journal event: the exchange's position changed


class FundingJournal(BrokerJournal, Protocol):
    """The broker journal plus funding payments."""

    def funding(self, payment: Funding) -> bool:
        """Record a funding payment; False when it was recorded before (same id)."""

    def last_funding_ms(self) -> int | None:
        """Time of the newest funding payment recorded, if any."""


def _book(position: ContractPosition | None) -> tuple | None:
    """What of the exchange's position is worth journaling again when it changes."""
    return None if position is None else (position.amount, position.entry,
                                          position.liquidation)


def liquidation_distance(leverage: int, maintenance: float) -> float:
    """How far (a fraction of the entry price) the price may move against a new isolated
    position before it is liquidated: ``(1/leverage - mm) / (1 + mm)`` for a short, the
    nearer side (a long's is ``/ (1 - mm)``)."""
    return (1.0 / leverage - maintenance) / (1.0 + maintenance)


class FuturesBroker(CcxtBroker):
    """Live broker of one linear perpetual market.

    Parameters
    ----------
    gateway : FuturesGateway
        The market's gateway (loaded, its leverage and margin mode set).
    leverage : int
        The market's leverage on the exchange.
    min_liquidation_distance : float
        Entries whose liquidation would lie nearer than this fraction of the price are
        refused.
    **kwargs
        As ``CcxtBroker`` (no ``held_before``: nothing is held before).
    """

    def __init__(self, gateway: FuturesGateway, journal: FundingJournal, tag: str,
                 data: object, *, leverage: int, min_liquidation_distance: float,
                 **kwargs: object) -> None:
        self.leverage = leverage
        self.min_liquidation_distance = min_liquidation_distance
        self.maintenance = gateway.maintenance_rate()
        self.contract: ContractPosition | None = None  # the exchange's, last journaled
        super().__init__(gateway, journal, tag, data, held_before=0.0, **kwargs)

    def getcash(self) -> float:
        return self.balance().quote_total  # the wallet: margin in use is still the account's

    def market_value(self) -> float:
        """The own position's unrealised PnL at the last close."""
        return self.position_size() * (float(self.data.close[0]) - self._position.price)

    def _reduces(self, side: str) -> bool:
        position = self.position_size()
        return position != 0 and (side == "sell") == (position > 0)

    def _exit_room(self) -> float:
        return abs(self.position_size())

    def _entry_refusal(self, side: str, amount: float, price: float) -> str | None:
        distance = liquidation_distance(self.leverage, self.maintenance)
        if distance < self.min_liquidation_distance:
            return (f"at leverage {self.leverage} the position would be liquidated "
                    f"{distance:.1%} from its entry, nearer than the "
                    f"{self.min_liquidation_distance:.1%} allowed; lower the leverage")
        return None

    def check_holdings(self) -> None:
        """As ``CcxtBroker``, then read new funding payments and journal the exchange's
        position when it changed."""
        super().check_holdings()
        try:
            self.record_funding()
        except ExchangeError as exc:
            log.warning("funding not read this bar (%s)", exc)
        seen = self.gateway.last_position
        if seen is not None and _book(seen) != _book(self.contract):  # not every mark move
            self.contract = seen
            self.journal.event(CONTRACT_POSITION, amount=seen.amount, entry=seen.entry,
                               mark=seen.mark, liquidation=seen.liquidation,
                               leverage=self.leverage)

    def record_funding(self) -> None:
        """Journal the funding paid or received since the last one recorded (from the first
        fill on).

        Raises
        ------
        ExchangeError
            When the exchange cannot be asked (nothing is lost: asked again later).
        """
        fills = self.journal.fills()
        if not fills:
            return
        last = self.journal.last_funding_ms()
        since = fills[0].time_ms if last is None else last + 1
        for payment in self.gateway.funding(since):
            if self.journal.funding(payment):
                self._balance_at = -1e18  # the wallet moved

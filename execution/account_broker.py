"""``AccountBroker``: one backtrader broker over several markets' ``CcxtBroker``s.

A portfolio bot runs one Cerebro with a feed per market; backtrader gives it one broker. This
one hands each order, cancel and position question to the broker of the order's market, so
every guarantee of ``CcxtBroker`` (journal first, never twice, own holdings only) holds per
market, and adds up the account: its cash is the free quote balance of each exchange account
the markets trade (counted once per account), its value that cash plus what every market's own
position adds at its last close (a spot holding its value, a contract its unrealised PnL).
"""
from __future__ import annotations

from datafeeds.bt.compat import bt
from execution.broker import CcxtBroker


class AccountBroker(bt.BrokerBase):
    """Route backtrader's broker calls to ``brokers[data]`` (one ``CcxtBroker`` per feed)."""

    def __init__(self, brokers: dict[object, CcxtBroker]) -> None:
        super().__init__()
        self.brokers = brokers
        accounts: dict[int, CcxtBroker] = {}
        for broker in brokers.values():  # markets of one exchange share its account
            accounts.setdefault(id(broker.gateway.exchange), broker)
        self._accounts = list(accounts.values())

    def start(self) -> None:
        super().start()
        for broker in self.brokers.values():
            broker.start()
        self.startingcash = self.getcash()

    def getcash(self) -> float:
        return sum(broker.getcash() for broker in self._accounts)

    def getvalue(self, datas: object = None) -> float:
        return self.getcash() + sum(broker.market_value() for broker in self.brokers.values())

    def getposition(self, data: object, clone: bool = True) -> bt.Position:
        return self.brokers[data].getposition(data, clone)

    def buy(self, owner, data, size, price=None, plimit=None, **kwargs):
        return self.brokers[data].buy(owner, data, size, price, plimit, **kwargs)

    def sell(self, owner, data, size, price=None, plimit=None, **kwargs):
        return self.brokers[data].sell(owner, data, size, price, plimit, **kwargs)

    def cancel(self, order: bt.Order) -> None:
        self.brokers[order.data].cancel(order)

    def get_notification(self) -> bt.Order | None:
        for broker in self.brokers.values():
            order = broker.get_notification()
            if order is not None:
                return order
        return None

    def next(self) -> None:
        for broker in self.brokers.values():
            broker.next()

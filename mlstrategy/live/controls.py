"""``Controls``: what an operator asked a running bot to do, shared by the API and the loop.

The control API (another thread) writes here; the trading loop reads it at each bar, so an
action takes effect at the next closed bar, the only place the bot decides anything:

- ``pause`` / ``resume`` a market's entries (exits and the position's stops still go);
- ``exit``: the market's position is closed at the next bar (as any exit: a market order
  decided on a closed bar), and its entries are paused until resumed;
- ``reload``: the market's production pointer is read again at the next bar, the new model
  checked and swapped in as a promotion would be;
- ``stop``: the run ends after the current bar (as SIGTERM).

Every action is journaled (event ``control``: action, market, source) the moment it is asked,
through the journal's own connection under its lock, so a crash cannot lose it. Paused markets
survive a restart: they are read back from those events.
"""
from __future__ import annotations

import threading
from collections.abc import Iterable

from mlstrategy.errors import ConfigError

CONTROL = "control"  # the journal's event kind
ACTIONS = ("pause", "resume", "exit", "reload", "stop")
_PAUSING = ("pause", "exit")  # an exit also pauses the market's entries


def paused_since(journal) -> str | None:
    """When the operator last paused the entries of ``journal``'s market (a pause or an
    exit not resumed since), from its ``control`` events; None when they are not paused."""
    last = None
    for when, _, _, detail in journal.events(CONTROL):
        action = detail.get("action")
        if action in _PAUSING:
            last = when
        elif action == "resume":
            last = None
    return last


class Controls:
    """The operator's requests to one bot (see module doc).

    Parameters
    ----------
    markets : iterable of str
        The bot's market names (``""`` for a one-market bot).
    stop : threading.Event
        The run's stop event (``stop`` sets it).
    journal : object
        The bot's journal (``event``, ``events``): control actions are written there and
        paused markets read back at start.
    """

    def __init__(self, markets: Iterable[str], stop: threading.Event, journal) -> None:
        self.markets = list(markets)
        self.stop = stop
        self._journal = journal
        self._lock = threading.Lock()
        # a restart keeps what the operator paused
        self._paused = {m for m in self.markets if paused_since(journal.for_market(m))}
        self._exits: set[str] = set()
        self._reloads: set[str] = set()

    def act(self, action: str, market: str | None, source: str) -> dict:
        """Apply ``action`` to ``market`` (every market when None; ``stop`` is the bot's),
        journal it, and return what was done.

        Raises
        ------
        ConfigError
            An unknown action or market.
        """
        if action not in ACTIONS:
            raise ConfigError(f"unknown control action {action!r}; one of {', '.join(ACTIONS)}")
        if market is not None and market not in self.markets:
            raise ConfigError(f"no market {market!r} in this bot; its markets: "
                              f"{', '.join(repr(m) for m in self.markets)}")
        targets = [""] if action == "stop" and "" in self.markets else \
            self.markets if market is None or action == "stop" else [market]
        with self._lock:
            for name in targets:
                self._journal.for_market(name).event(CONTROL, action=action, source=source)
                if action in _PAUSING:
                    self._paused.add(name)
                if action == "resume":
                    self._paused.discard(name)
                    self._exits.discard(name)
                if action == "exit":
                    self._exits.add(name)
                if action == "reload":
                    self._reloads.add(name)
        if action == "stop":
            self.stop.set()
        return {"action": action, "markets": targets,
                "effective": "after the current bar" if action == "stop" else "at the next bar"}

    def paused(self, market: str) -> bool:
        """Whether ``market``'s entries are paused by the operator."""
        with self._lock:
            return market in self._paused

    def exit_wanted(self, market: str) -> bool:
        """Whether the operator asked to close ``market``'s position."""
        with self._lock:
            return market in self._exits

    def exit_done(self, market: str) -> None:
        """``market`` is flat: its exit request is done (entries stay paused)."""
        with self._lock:
            self._exits.discard(market)

    def take_reload(self, market: str) -> bool:
        """Whether a reload of ``market``'s model was asked since the last call."""
        with self._lock:
            if market in self._reloads:
                self._reloads.discard(market)
                return True
            return False

    def state(self) -> dict:
        """JSON-ready: paused markets, pending exits, whether the run is stopping."""
        with self._lock:
            return {"paused": sorted(self._paused), "exits": sorted(self._exits),
                    "stopping": self.stop.is_set()}

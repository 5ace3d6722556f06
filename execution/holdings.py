"""What of the account's base balance is provably the bot's, and when it is not.

The journal's position is what the bot's own fills add up to. The account may hold more:
what it held before the bot's first order (``held_before``, recorded once per journal) and
deposits since. The bot sells at most its position, and never so much that the balance would
drop below ``held_before``: holdings it did not buy are never sold.

A mismatch is a journal position larger than what the account holds above ``held_before``
(someone else's order or a withdrawal took coins the journal counts as the bot's, or
executions are missing from the journal), or a negative one (the exchange executed an exit
twice, selling coins the bot never bought). The bot cannot tell which coins are its own then,
so it stops trading the market (``mismatch`` says why, with the numbers).
"""
from __future__ import annotations


def attributable(balance_total: float, held_before: float) -> float:
    """The most of ``balance_total`` that can be the bot's: what is above ``held_before``."""
    return max(balance_total - held_before, 0.0)


def own(position: float, balance_total: float, held_before: float) -> float:
    """The bot's position as far as the account bears it out (never what it did not buy)."""
    return min(position, attributable(balance_total, held_before))


def first_held_before(balance_total: float, position: float) -> float:
    """What the account holds that is not the bot's, at the first reconciliation of a
    journal: all it holds beyond the journal's position."""
    return max(balance_total - position, 0.0)


def mismatch(position: float, balance_total: float, held_before: float,
             asset: str) -> str | None:
    """Why ``position`` (the journal's) cannot be the bot's, or None when it can."""
    tolerance = 1e-9 * max(1.0, abs(balance_total))
    if position < -tolerance:
        return (f"the bot's own fills sold {-position:.8f} {asset} more than they bought (the "
                "exchange executed an exit twice): holdings the bot did not buy were sold")
    room = balance_total - held_before
    if position <= room + tolerance:
        return None
    return (f"the journal's position is {position:.8f} {asset}, but the account holds "
            f"{balance_total:.8f} {asset}, only {max(room, 0.0):.8f} above the "
            f"{held_before:.8f} it held before the bot's first order")

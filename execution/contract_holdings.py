"""What of a perpetual contract's position is provably the bot's, and when it is not.

The counterpart of ``holdings`` for a contract market, with the same three functions. The
exchange keeps one net position per symbol (one-way mode): a position someone else opened
would merge with the bot's, and the bot could no longer tell its own part, nor exit it
without touching theirs. So nothing is ever held before: the bot's position (the sum of its
own fills, signed, a short negative) must equal the exchange's, and any difference (a
position the bot did not open, one closed behind its back, missing executions) halts
trading in the market (``mismatch`` says why, with the numbers).
"""
from __future__ import annotations


def own(position: float, exchange_position: float, held_before: float) -> float:
    """The bot's position as far as the exchange bears it out: on the same side, at most
    the exchange's size."""
    if position * exchange_position <= 0:
        return 0.0
    size = min(abs(position), abs(exchange_position))
    return size if position > 0 else -size


def first_held_before(exchange_position: float, position: float) -> float:
    """Nothing: a position the bot did not open is a mismatch, never a part to leave."""
    return 0.0


def mismatch(position: float, exchange_position: float, held_before: float,
             asset: str) -> str | None:
    """Why ``position`` (the journal's, signed) cannot be the bot's, or None when it can."""
    if abs(position - exchange_position) <= 1e-9 * max(1.0, abs(exchange_position)):
        return None
    return (f"the exchange's {asset} position is {exchange_position:+.8f}, the bot's own "
            f"fills add up to {position:+.8f}: a position the bot did not open (or one "
            "changed behind its back) shares this one-way market, so the bot leaves it alone")

"""What a bot's journal says now: position, open orders, last signals, PnL and risk state.

Read-only, so it can be asked while the bot runs (SQLite WAL readers never block the writer).
PnL is that of the bot's own fills marked at the last bar's close: the quote it paid or got,
fees included, plus its position's value.
"""
from __future__ import annotations

import json
import math
from pathlib import Path

import pandas as pd

from execution.futures_broker import CONTRACT_POSITION
from mlstrategy.live.controls import paused_since
from mlstrategy.live.drift_settings import DRIFT_META
from mlstrategy.live.journal import Journal
from mlstrategy.live.risk import KILL_SWITCH

_SIDES = {1: "long", 0: "flat", -1: "short"}  # a signal's target (older journals: 1 or 0)


def journal_status(path: Path, signals: int = 10) -> list[str]:
    """Lines describing the journal at ``path``: every market it trades, one after another.

    Raises
    ------
    ConfigError
        When there is no journal there, or the file is not one.
    """
    journal = Journal.read(path)
    try:
        names = list(journal.markets()) or [""]
        lines = []
        for name in names:
            lines += _market_lines(path, journal.for_market(name), signals)
        return lines
    finally:
        journal.close()


def _market_lines(path: Path, journal: Journal, signals: int) -> list[str]:
    """One market's position, orders, signals, PnL and risk state."""
    meta = journal.meta()
    bars = journal.bars(limit=1)
    last_close = float(bars["close"].iloc[-1]) if len(bars) else math.nan
    last_time = bars.index[-1].isoformat() if len(bars) else "-"
    position = journal.position()
    flow = journal.cash_flow()
    pnl = flow + position * last_close if position else flow
    fills = journal.fills()
    working = journal.unresolved()
    market = f" market {journal.market}:" if journal.market else ""
    lines = [
        f"journal {path}:{market} {meta.get('mode')} {meta.get('exchange')} "
        f"{meta.get('symbol')} {meta.get('timeframe')}",
        f"last bar {last_time} close {last_close:.2f}",
        f"position {position:.8f} (own fills: {len(fills)})",
        f"PnL {pnl:+,.2f} quote (realised and marked at the last close, fees included)",
    ]
    if "paper_cash" in meta:
        opening = float(meta["paper_cash"])
        lines.append(f"paper equity {opening + pnl:,.2f} (opened with {opening:,.2f})")
    lines += _contract_lines(journal)
    lines.append(f"open or unresolved orders: {len(working)}")
    lines += [f"  {o.client_id} {o.side} {o.amount:g} {o.kind} [{o.state}] filled "
              f"{o.filled:g}" for o in working]
    recent = journal.signals(limit=signals)
    lines.append(f"last {len(recent)} signals:")
    for row in recent.itertuples():
        proba = "  n/a" if row.proba is None or pd.isna(row.proba) else f"{row.proba:.3f}"
        lines.append(f"  {pd.Timestamp(row.time_ms, unit='ms'):%Y-%m-%d %H:%M}  P(up) "
                     f"{proba}  {_SIDES.get(int(row.long), 'flat')}  [{row.status}] "
                     f"{row.action}  model {row.model}")
    swaps = journal.events("model_swap")
    if swaps:
        lines.append(f"model swaps: {len(swaps)}, last {json.dumps(swaps[-1][3])}")
    return lines + _risk_lines(journal)


def _contract_lines(journal: Journal) -> list[str]:
    """A perpetual's position as the exchange last showed it (liquidation price included)
    and the funding paid or received."""
    lines = []
    seen = journal.events(CONTRACT_POSITION)
    if seen:
        when, _, _, p = seen[-1]
        liquidation = f"{p['liquidation']:.2f}" if p.get("liquidation") else "-"
        lines.append(f"exchange position {p['amount']:+.8f} at {when}: entry {p['entry']:.2f}, "
                     f"mark {p['mark']:.2f}, liquidation price {liquidation}, leverage "
                     f"{p['leverage']}x isolated")
    funding, payments = journal.funding_total()
    if payments:
        lines.append(f"funding {funding:+,.2f} quote in {payments} payments (in the PnL)")
    return lines


def _drift_lines(journal: Journal) -> list[str]:
    """The market's latest drift figures and its last breach."""
    lines = []
    figures = journal.meta().get(DRIFT_META)
    if figures is not None:
        d = json.loads(figures)
        line = (f"drift of {d['model']} over {d['bars']} bars: PSI median "
                f"{d['psi_median']:.3f} (max {d['psi_max']:.2f} {d['psi_max_feature']})")
        if d["labelled"]:
            line += (f", calibration gap {d['calibration_gap']:.3f}, Brier {d['brier']:.4f} "
                     f"(holdout {d['holdout_brier']:.4f})")
        if d["band_low"] is not None and d["live_bars"]:
            line += (f", return {d['live_return']:+.2%} over {d['live_bars']} live bars (band "
                     f"{d['band_low']:+.2%} .. {d['band_high']:+.2%})")
        lines.append(line + (f"; BREACHED: {', '.join(d['breaches'])}" if d["breaches"]
                             else "; within limits"))
    breaches = journal.events("drift")
    if breaches:
        when, _, _, detail = breaches[-1]
        lines.append(f"last drift breach at {when} ({', '.join(detail['breaches'])}), on "
                     f"drift: {detail['action']}")
    return lines


def _risk_lines(journal: Journal) -> list[str]:
    """Kill-switch trips, late executions adopted, entries paused by the operator and
    position mismatches, newest last."""
    lines = []
    trips = journal.events(KILL_SWITCH)
    if trips:
        day = pd.Timestamp(trips[-1][3]["day"] * 86_400_000, unit="ms")
        lines.append(f"kill switch tripped on UTC day {day:%Y-%m-%d} (loss "
                     f"{trips[-1][3]['loss']:.2f} >= {trips[-1][3]['limit']:g}): no entries "
                     "that day")
    late = journal.events("late_execution")
    if late:
        lines.append(f"late executions adopted: {len(late)}, last {json.dumps(late[-1][3])}")
    paused = paused_since(journal)
    if paused is not None:
        lines.append(f"entries paused by the operator since {paused}; resume them through "
                     "the API")
    lines.extend(_drift_lines(journal))
    mismatches = journal.events("position_mismatch")
    if mismatches:
        when, _, _, detail = mismatches[-1]
        lines.append(f"POSITION MISMATCH at {when}: {detail['reason']}")
    return lines

"""What the control API and the dashboard show: a bot's journal, registry and cycle as JSON.

Everything is read from the files a bot and a cycle write (the journal, read-only; the models
directory; the cycles directory), so a running bot's API and ``mlstrategy dashboard`` over the
same files show the same thing. Nothing secret is in those files (API keys and tokens never
are), so nothing secret can be in a snapshot.
"""
from __future__ import annotations

import functools
import json
import math
from pathlib import Path

from execution.futures_broker import CONTRACT_POSITION
from mlstrategy.live.controls import paused_since
from mlstrategy.live.drift_settings import DRIFT_META
from mlstrategy.live.journal import Journal
from mlstrategy.live.risk import KILL_SWITCH
from mlstrategy.registry.production import (
    ModelRef,
    history,
    list_models,
    markets,
    production_ref,
    read_manifest,
)

_DAY_MS = 86_400_000


def _number(value: object) -> float | None:
    """A float for JSON: None for a missing or NaN value."""
    if value is None:
        return None
    value = float(value)
    return None if math.isnan(value) else value


def bot_status(journal: Journal, controls: dict | None = None) -> dict:
    """The bot's mode, last session and each market's state (``controls``: the running
    bot's ``Controls.state()``; without one, paused markets are read from the journal)."""
    names = list(journal.markets()) or [""]
    meta = journal.meta()
    return {"mode": meta.get("mode"), "journal": str(journal.path),
            "session": journal.last_session(),
            "paper_cash": _number(meta.get("paper_cash")),
            "running": controls is not None, "stopping": bool(controls and controls["stopping"]),
            "markets": [market_status(journal.for_market(name), controls) for name in names]}


def market_status(journal: Journal, controls: dict | None = None) -> dict:
    """One market: its last bar, position, PnL, equity, feed, model, risk and control state."""
    meta = journal.meta()
    last_ms, close = journal.last_bar() or (None, math.nan)
    position = journal.position()
    flow = journal.cash_flow()
    signal = journal.decisions(limit=1)
    last = signal[-1] if signal else None
    feed = journal.last_event("feed")
    trip = journal.last_event(KILL_SWITCH)
    mismatch = journal.last_event("position_mismatch")
    contract = journal.last_event(CONTRACT_POSITION)
    funding, payments = journal.funding_total()
    name = journal.market
    paused = name in controls["paused"] if controls is not None else \
        paused_since(journal) is not None
    return {
        "name": name, "exchange": meta.get("exchange"), "symbol": meta.get("symbol"),
        "timeframe": meta.get("timeframe"),
        "last_bar": None if last_ms is None else last_ms, "close": _number(close),
        "position": position, "own_fills": journal.fill_count(),
        "pnl": flow + (position * close if position else 0.0),
        "equity": None if last is None else _number(last["equity"]),
        "proba": None if last is None else _number(last["proba"]),
        "action": None if last is None else last["action"],
        "model": None if last is None else last["model"],
        "feed": feed[3].get("status") if feed else
        (None if last is None else last["status"]),
        "open_orders": len(journal.unresolved()),
        "paused": paused,
        "kill_switch": bool(trip and last_ms is not None and
                            trip[3]["day"] == last_ms // _DAY_MS),
        "mismatch": mismatch[3].get("reason") if mismatch else None,
        "contract": contract[3] if contract else None,
        "funding": {"total": funding, "payments": payments},
        "drift": json.loads(meta[DRIFT_META]) if DRIFT_META in meta else None,
    }


def orders(journal: Journal, limit: int = 50) -> dict:
    """A market's newest order attempts and fills."""
    records = journal.orders(limit=limit)
    fills = journal.fills(limit=limit)
    return {"market": journal.market,
            "orders": [{"client_id": o.client_id, "side": o.side, "kind": o.kind,
                        "amount": o.amount, "price": _number(o.price), "state": o.state,
                        "filled": max(o.filled, journal.filled_amount(o.client_id)),
                        "reason": o.reason, "created": o.created}
                       for o in reversed(records)],
            "fills": [{"trade_id": f.trade_id, "client_id": f.client_id, "time": f.time_ms,
                       "side": f.side, "amount": f.amount, "price": f.price, "fee": f.fee,
                       "fee_currency": f.fee_currency} for f in reversed(fills)]}


@functools.lru_cache(maxsize=64)
def _thresholds(models_dir: Path, model: str) -> dict:
    """A model version's thresholds from its manifest (a version never changes: read once)."""
    return read_manifest(models_dir, ModelRef.parse(model)).get("thresholds", {})


def decisions(journal: Journal, models_dir: Path | None, limit: int = 50,
              thresholds: tuple[float | None, float | None] = (None, None)) -> dict:
    """A market's newest decisions past the warm-up: P(up) and the thresholds it was held
    against (the model's, unless the bot was given its own), the target and what was done."""
    out = []
    for row in journal.decisions(limit):
        model = _thresholds(models_dir, row["model"]) if models_dir else {}
        out.append({"time": row["time_ms"], "proba": _number(row["proba"]),
                    "enter": thresholds[0] if thresholds[0] is not None else model.get("enter"),
                    "exit": thresholds[1] if thresholds[1] is not None else model.get("exit"),
                    "target": row["long"], "action": row["action"], "model": row["model"],
                    "feed": row["status"], "position": _number(row["position"]),
                    "equity": _number(row["equity"])})
    return {"market": journal.market, "decisions": out[::-1]}


def equity_curve(journal: Journal, points: int = 600) -> dict:
    """The bot's equity at each traded bar of a market (at most about ``points``, evenly
    spread, the last included) beside buy-and-hold of the market from the same start."""
    rows = journal.equity_points(points)
    first_close = rows[0][2] if rows else None
    first_equity = rows[0][1] if rows else None
    return {"market": journal.market, "time": [t for t, _, _ in rows],
            "equity": [e for _, e, _ in rows],
            "buy_and_hold": [None if c is None or not first_close else
                             first_equity * c / first_close for _, _, c in rows]}


def registry(models_dir: Path | None, limit: int = 20) -> dict:
    """Each market's production model, its versions and its newest champion/challenger
    decisions (promotions, refusals, rollbacks)."""
    if models_dir is None or not models_dir.is_dir():
        return {"markets": []}
    found = []
    for market in markets(models_dir):
        production = production_ref(models_dir, market)
        found.append({"market": market,
                      "production": None if production is None else str(production),
                      "versions": [str(r) for r in list_models(models_dir, market)][-limit:],
                      "history": history(models_dir, market)[-limit:][::-1]})
    return {"markets": found}


def latest_cycle(cycles_dir: Path | None) -> dict | None:
    """The newest finished cycle's report (``report.json``), or None."""
    if cycles_dir is None or not cycles_dir.is_dir():
        return None
    reports = sorted(cycles_dir.glob("*/report.json"), key=lambda p: p.stat().st_mtime)
    for path in reversed(reports):
        try:
            return {"folder": path.parent.name, **json.loads(path.read_text("utf-8"))}
        except (OSError, json.JSONDecodeError):
            continue
    return None

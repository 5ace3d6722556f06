"""The cycle's report: ``report.json`` (everything) and ``report.md`` (a table per market)."""
from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

from datafeeds.atomic import write_json_atomic
from datafeeds.store import redact
from mlstrategy.backtest.report import plain


def _fmt(value: object) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, list):
        return ", ".join(_fmt(v) for v in value) or "none"
    return "" if value is None else str(value)


def _market_lines(result) -> list[str]:
    lines = [f"## {result.name} ({result.key}): {result.status}", "", result.reason, "",
             "| step | facts |", "|---|---|"]
    for step, facts in result.steps.items():
        shown = "; ".join(f"{k} {_fmt(v)}" for k, v in facts.items()
                          if not isinstance(v, dict))
        nested = "; ".join(f"{k}: " + ", ".join(f"{kk} {_fmt(vv)}" for kk, vv in v.items())
                           for k, v in facts.items() if isinstance(v, dict))
        lines.append(f"| {step} | {'; '.join(x for x in (shown, nested) if x)} |")
    if result.equity:
        lines += ["", f"![equity of {result.name}]({result.equity})"]
    return [*lines, ""]


def as_json(results: list) -> list[dict]:
    """The market results as JSON-ready dicts."""
    return [plain(json.loads(json.dumps(vars(r), default=str))) for r in results]


def write_report(folder: Path, results: list, *, started: datetime, code: int,
                 store: str) -> None:
    """Write ``report.json`` and ``report.md`` of a cycle into ``folder``."""
    finished = datetime.now(UTC)
    write_json_atomic(folder / "report.json", {
        "started": started.isoformat(timespec="seconds"),
        "finished": finished.isoformat(timespec="seconds"),
        "seconds": round((finished - started).total_seconds(), 1),
        "exit_code": code, "store": redact(store), "markets": as_json(results)})
    lines = [f"# Cycle {started:%Y-%m-%d %H:%M:%S} UTC", "",
             f"exit code {code}; {(finished - started).total_seconds():.0f} s; store "
             f"{redact(store)}", "", "| market | status | reason |", "|---|---|---|",
             *(f"| {r.name} | {r.status} | {r.reason} |" for r in results), ""]
    for result in results:
        lines += _market_lines(result)
    (folder / "report.md").write_text("\n".join(lines), encoding="utf-8")

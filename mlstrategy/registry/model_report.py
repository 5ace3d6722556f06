"""What a trained model's directory tells a reader: ``report.md`` and ``feature_importance.png``.

The report gives the data, features, label, validation scheme, the per-fold table with each
metric beside its baseline (majority class; buy-and-hold), the holdout, and the sanity flags.
"""
from __future__ import annotations

import math
from pathlib import Path


def importance_plot(ranked: list[tuple[str, float]], path: Path, *, title: str) -> Path:
    """The top features as horizontal bars, most important on top."""
    import matplotlib.pyplot as plt

    from datafeeds.bt.compat import bt  # noqa: F401  (matplotlib on the Agg backend)

    names = [name for name, _ in ranked][::-1]
    values = [value for _, value in ranked][::-1]
    fig, ax = plt.subplots(figsize=(9, 0.32 * len(names) + 1.2))
    ax.barh(names, values, color="#3a6ea5")
    ax.set_xlabel("importance (share)")
    ax.set_title(f"top {len(names)} features: {title}")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def _f(value: object, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    return f"{value:.{digits}f}" if isinstance(value, float) else str(value)


def fold_table(folds: list[dict], holdout: dict) -> list[str]:
    """Markdown rows: each fold and the holdout, metrics beside their baselines."""
    head = ("| split | rows | AUC | bal. acc | log loss (base) | Brier (base) | return | "
            "buy & hold | Sharpe | B&H Sharpe | trades |")
    rows = [head, "|" + "---|" * 11]
    for name, m in [*((f.get("name", f"fold {f.get('fold')}"), f) for f in folds),
                    ("**holdout**", holdout)]:
        rows.append(f"| {name} | {m.get('rows')} | {_f(m.get('auc'))} | "
                    f"{_f(m.get('balanced_accuracy'))} | {_f(m.get('log_loss'), 4)} "
                    f"({_f(m.get('baseline_log_loss'), 4)}) | {_f(m.get('brier'), 4)} "
                    f"({_f(m.get('baseline_brier'), 4)}) | {_pct(m.get('return'))} | "
                    f"{_pct(m.get('buy_hold_return'))} | {_f(m.get('sharpe'), 2)} | "
                    f"{_f(m.get('buy_hold_sharpe'), 2)} | {m.get('trades')} |")
    return rows


def _pct(value: float | None) -> str:
    """A return as ``backtest`` prints it (the same figure, the same way)."""
    return "n/a" if value is None or value != value else f"{value * 100:+.1f}%"


def markdown_report(manifest: object, top: list[tuple[str, float]]) -> str:
    """``report.md`` of an artifact (``manifest``: ``artifact.Manifest``)."""
    data, v = manifest.training_data, manifest.validation
    lines = [f"# {manifest.ref}", "",
             f"- model: {manifest.learner.kind} {manifest.learner.params}",
             f"- data: {data.source} {data.symbol} {data.timeframe}, {data.rows} bars "
             f"{data.first_bar} .. {data.last_bar} (sha256 {data.sha256[:12]}...)",
             f"- features: {len(manifest.features.names)} columns, warm-up "
             f"{manifest.features.warmup} bars, hash {manifest.features.hash[:12]}...",
             f"- label: {manifest.label.to_dict()}",
             f"- validation: {v.scheme}, purged by each label's reach, embargo "
             f"{v.embargo_bars} bars, holdout from bar {data.holdout_bars[0]} "
             f"({data.holdout_first_bar}), costs {v.cost_per_side} per side",
             f"- thresholds: enter {manifest.thresholds.enter:.4f}, exit "
             f"{manifest.thresholds.exit:.4f} ({manifest.thresholds.rule})", "",
             "## Folds and holdout (baselines in brackets and beside)", "",
             *fold_table(v.folds, v.holdout), "",
             "## Sanity flags", ""]
    lines += [f"- {flag}" for flag in manifest.suspicious] or ["- none"]
    lines += ["", "## Top features", ""]
    lines += [f"{k + 1}. {name}: {value:.4f}" for k, (name, value) in enumerate(top)] or \
        ["(not available)"]
    return "\n".join(lines) + "\n"

"""The backtest's pictures: equity against buy-and-hold with drawdown, and backtrader's plot."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from datafeeds.bt.compat import bt  # noqa: F401  (puts matplotlib on the Agg backend first)

_MAX_POINTS = 4000


def plot_equity(index: pd.DatetimeIndex, values: np.ndarray, hold: np.ndarray, cash: float,
                path: Path, *, title: str) -> Path:
    """Strategy and buy-and-hold value over time, drawdowns below; dates on the time axis."""
    import matplotlib.dates as mdates
    import matplotlib.pyplot as plt

    step = max(1, len(values) // _MAX_POINTS)  # a picture needs no more points than pixels
    times = index.tz_convert("UTC").tz_localize(None)[::step]
    peak_v = np.maximum.accumulate(np.concatenate(([cash], values)))[1:][::step]
    peak_h = np.maximum.accumulate(np.concatenate(([cash], hold)))[1:][::step]
    values, hold = values[::step], hold[::step]
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(14, 8), sharex=True,
                                      gridspec_kw={"height_ratios": [3, 1]})
    top.plot(times, values, label="strategy", linewidth=1.2)
    top.plot(times, hold, label="buy & hold", linewidth=1.0, alpha=0.8)
    top.axhline(cash, color="grey", linewidth=0.6, linestyle=":")
    top.set_ylabel("portfolio value")
    top.set_title(title)
    top.legend(loc="upper left")
    for series, peak, label in ((values, peak_v, "strategy"), (hold, peak_h, "buy & hold")):
        bottom.fill_between(times, -(1 - series / peak) * 100, 0, alpha=0.4, label=label)
    bottom.set_ylabel("drawdown %")
    bottom.xaxis.set_major_formatter(mdates.ConciseDateFormatter(
        mdates.AutoDateLocator()))
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def plot_backtrader(cerebro, path: Path) -> Path:
    """Save backtrader's own plot of the run (with its date axis) to ``path``."""
    import matplotlib.pyplot as plt

    figures = cerebro.plot(iplot=False, volume=False, style="line", fmt_x_ticks="%Y-%m-%d",
                           fmt_x_data="%Y-%m-%d %H:%M")
    figure = figures[0][0]
    figure.set_size_inches(16, 9)
    figure.savefig(path, dpi=100)
    for group in figures:
        for fig in group:
            plt.close(fig)
    return path

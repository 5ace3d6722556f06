"""The backtest's pictures: equity against buy-and-hold with drawdown, backtrader's plot, and a
grid's Sharpe over its options."""
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


def _named(observer: type, name: str) -> type:
    """``observer`` with a plain legend (backtrader appends its params: "Value (None)")."""
    return type(observer.__name__, (observer,), {"plotinfo": {"plotname": name},
                                                 "_plotlabel": lambda self: []})


# what backtrader's plot shows of a run (each costs per bar: added only for the plot)
OBSERVERS = (_named(bt.observers.Value, "portfolio value"),
             _named(bt.observers.DrawDown, "drawdown %"),
             _named(bt.observers.Trades, "closed trades, net PnL"),
             _named(bt.observers.BuySell, "fills"))


def plot_backtrader(cerebro, index: pd.DatetimeIndex, path: Path) -> Path:
    """Save backtrader's own plot of the run to ``path``, its time axis labelled with the
    dates of ``index`` (the traded bars)."""
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FuncFormatter, MaxNLocator

    figures = cerebro.plot(iplot=False, volume=False, style="line")
    figure = figures[0][0]
    figure.set_size_inches(16, 9)
    # backtrader's own date labels come out blank with today's matplotlib: set them here
    bottom = min(figure.axes, key=lambda ax: ax.get_position().y0)
    days = index.strftime("%Y-%m-%d" if len(index) > 1 and
                          (index[-1] - index[0]).days > 3 else "%m-%d %H:%M")
    bottom.xaxis.set_major_locator(MaxNLocator(10, integer=True))
    bottom.xaxis.set_major_formatter(FuncFormatter(
        lambda x, _: days[int(x)] if 0 <= int(x) < len(days) else ""))
    bottom.tick_params(axis="x", labelbottom=True, labelrotation=0)
    figure.canvas.draw()  # the labels exist from the first draw: show the bottom axis's
    plt.setp(bottom.get_xticklabels(), visible=True)
    figure.savefig(path, dpi=100)
    for group in figures:
        for fig in group:
            plt.close(fig)
    return path


def plot_grid(rows: list[dict], names: list[str], best: dict, path: Path, *,
              title: str) -> Path:
    """A grid's net Sharpe over its first two options (a heatmap; one option: a line), the
    other options held at the best configuration's values."""
    import matplotlib.pyplot as plt

    shown = [r for r in rows if all(r[n] == best[n] for n in names[2:])]
    fig, ax = plt.subplots(figsize=(12, 8))
    if len(names) == 1:
        ax.plot([_label(r[names[0]]) for r in shown], [r["sharpe"] for r in shown],
                marker="o")
        ax.set_ylabel("net Sharpe")
    else:
        xs = sorted({r[names[0]] for r in shown})
        ys = sorted({r[names[1]] for r in shown})
        grid = np.full((len(ys), len(xs)), np.nan)
        for r in shown:
            grid[ys.index(r[names[1]]), xs.index(r[names[0]])] = r["sharpe"]
        image = ax.imshow(grid, origin="lower", aspect="auto", cmap="RdYlGn")
        ax.set_xticks(range(len(xs)), [_label(x) for x in xs], rotation=90)
        ax.set_yticks(range(len(ys)), [_label(y) for y in ys])
        ax.set_ylabel(names[1])
        fig.colorbar(image, ax=ax, label="net Sharpe")
    ax.set_xlabel(names[0])
    held = ", ".join(f"{n}={_label(best[n])}" for n in names[2:])
    ax.set_title(title + (f" ({held})" if held else ""))
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def _label(value: object) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)

"""Performance and significance over an equity curve, in numpy.

Per-bar simple returns of the portfolio value, annualised by the bars a year holds (observed
from the data unless a market calendar says otherwise). Significance after Bailey and López de
Prado: the probabilistic Sharpe ratio (the chance the true Sharpe is above 0 given the track
record's length, skew and kurtosis), the deflated Sharpe ratio (the same against the best
Sharpe expected from ``trials`` tries of pure noise, whose Sharpes vary as the trials of the
ledger did, ``mlstrategy.research.trials``), and a block-bootstrap 95% interval.
"""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
from numba import njit
from scipy.stats import norm

_EULER_GAMMA = 0.5772156649015329
_YEAR_S = 365.25 * 86400.0


def observed_periods_per_year(index: pd.DatetimeIndex) -> float:
    """Bars per year as the data holds them (weekends, holidays and gaps included)."""
    if len(index) < 2:
        return math.nan
    years = (index[-1] - index[0]).total_seconds() / _YEAR_S
    return (len(index) - 1) / years if years > 0 else math.nan


def bar_returns(values: np.ndarray, start_value: float) -> np.ndarray:
    """Simple return of each bar, the first against the starting value."""
    prev = np.concatenate(([start_value], values[:-1]))
    return values / prev - 1.0


def _moments(r: np.ndarray) -> tuple[float, float, float, float]:
    """Mean, std (ddof=1), skewness and (non-excess) kurtosis of ``r``."""
    mean, std = float(r.mean()), float(r.std(ddof=1))
    if not std > 0:
        return mean, std, 0.0, 3.0
    z = (r - mean) / r.std(ddof=0)
    z2 = z * z  # products, not powers: numpy's float power is several times slower
    return mean, std, float((z2 * z).mean()), float((z2 * z2).mean())


def probabilistic_sharpe(sharpe: float, n: int, skew: float, kurt: float,
                         benchmark: float = 0.0) -> float:
    """P(true per-bar Sharpe > ``benchmark``) for an observed per-bar ``sharpe`` over n bars."""
    if n < 3 or not math.isfinite(sharpe):
        return math.nan
    spread = 1.0 - skew * sharpe + (kurt - 1.0) / 4.0 * sharpe ** 2
    if not spread > 0:
        return math.nan
    return float(norm.cdf((sharpe - benchmark) * math.sqrt(n - 1) / math.sqrt(spread)))


def expected_max_sharpe(trials: int, variance: float) -> float:
    """The best per-bar Sharpe ``trials`` strategies without skill are expected to show."""
    if trials <= 1:
        return 0.0
    return math.sqrt(variance) * ((1 - _EULER_GAMMA) * norm.ppf(1 - 1 / trials)
                                  + _EULER_GAMMA * norm.ppf(1 - 1 / (trials * math.e)))


def deflated_sharpe(sharpe: float, n: int, skew: float, kurt: float, trials: int,
                    variance: float) -> float:
    """P(true per-bar Sharpe > the best of ``trials`` skill-less tries), Bailey and López de
    Prado (2014), eq. 1: PSR against ``expected_max_sharpe(trials, variance)``, ``variance``
    being V[SR_n] of the trials' per-bar Sharpe ratios."""
    return probabilistic_sharpe(sharpe, n, skew, kurt, expected_max_sharpe(trials, variance))


def bootstrap_sharpe_interval(r: np.ndarray, periods_per_year: float, *, resamples: int = 1000,
                              seed: int = 0) -> tuple[float, float]:
    """95% interval of the annualised Sharpe by a circular block bootstrap (keeps runs)."""
    n = len(r)
    if n < 10:
        return math.nan, math.nan
    block = max(1, round(n ** (1 / 3)))
    blocks = math.ceil(n / block)
    wrapped = np.concatenate((r, r[:block]))
    s1 = np.concatenate(([0.0], np.cumsum(wrapped)))
    s2 = np.concatenate(([0.0], np.cumsum(wrapped * wrapped)))
    sums1, sums2 = s1[block:block + n] - s1[:n], s2[block:block + n] - s2[:n]
    starts = np.random.default_rng(seed).integers(0, n, size=(resamples, blocks))
    sharpe = _resampled_sharpes(sums1, sums2, starts, blocks * block)
    lo, hi = np.percentile(sharpe * math.sqrt(periods_per_year), [2.5, 97.5])
    return float(lo), float(hi)


@njit(cache=True, nogil=True)
def _resampled_sharpes(sums1, sums2, starts, m):
    """The per-bar Sharpe of each resample: blocks starting at ``starts`` (one row each)."""
    out = np.empty(starts.shape[0])
    for k in range(starts.shape[0]):
        a = b = 0.0
        for j in range(starts.shape[1]):
            a += sums1[starts[k, j]]
            b += sums2[starts[k, j]]
        mean = a / m
        var = (b - m * mean ** 2) / (m - 1)
        out[k] = mean / np.sqrt(var) if var > 0 else 0.0
    return out


def annual_sharpe(values: np.ndarray, start_value: float, periods_per_year: float) -> float:
    """The annualised Sharpe of an equity curve, as ``performance`` gives it (no statistics
    around it: for recording a trial)."""
    r = bar_returns(np.asarray(values, dtype=np.float64), start_value)
    std = float(r.std(ddof=1)) if len(r) > 1 else math.nan
    return float(r.mean()) / std * math.sqrt(periods_per_year) if std > 0 else math.nan


def performance(values: np.ndarray, start_value: float, periods_per_year: float, *,
                trials: int = 1, trial_variance: float | None = None) -> dict[str, float]:
    """Return, risk and significance of an equity curve (one value per bar).

    Parameters
    ----------
    values : numpy.ndarray
        Portfolio value after each bar.
    start_value : float
        Value before the first bar.
    periods_per_year : float
        Bars in a year, for annualising.
    trials : int
        Strategies and configurations tried on these bars, this one included (for the
        deflated Sharpe).
    trial_variance : float, optional
        Variance of those trials' per-bar Sharpe ratios (V[SR_n]); default the variance of
        this curve's Sharpe estimate.
    """
    r = bar_returns(np.asarray(values, dtype=np.float64), start_value)
    n = len(r)
    mean, std, skew, kurt = _moments(r) if n > 1 else (math.nan, math.nan, 0.0, 3.0)
    sharpe = mean / std if std > 0 else math.nan
    peak = np.maximum.accumulate(np.concatenate(([start_value], values)))
    drawdown = 1.0 - np.concatenate(([start_value], values)) / peak
    years = n / periods_per_year if periods_per_year > 0 else math.nan
    total = float(values[-1] / start_value - 1.0) if n else math.nan
    variance = trial_variance if trial_variance is not None else \
        (1 - skew * sharpe + (kurt - 1) / 4 * sharpe ** 2) / (n - 1) \
        if n > 1 and math.isfinite(sharpe) else math.nan
    deflated_bar = expected_max_sharpe(trials, variance) if math.isfinite(variance) else math.nan
    lo, hi = bootstrap_sharpe_interval(r, periods_per_year)
    root = math.sqrt(periods_per_year)
    return {
        "total_return": total,
        "cagr": (1 + total) ** (1 / years) - 1 if years and years > 0 and total > -1
        else math.nan,
        "volatility": std * root,
        "sharpe": sharpe * root,
        "max_drawdown": float(drawdown.max()),
        "psr": probabilistic_sharpe(sharpe, n, skew, kurt),
        "dsr": deflated_sharpe(sharpe, n, skew, kurt, trials, variance)
        if math.isfinite(variance) else math.nan,
        "sharpe_needed_for_dsr": deflated_bar * root if math.isfinite(deflated_bar)
        else math.nan,
        "sharpe_ci95": [lo, hi],
        "skew": skew,
        "kurtosis": kurt,
        "bars": n,
    }

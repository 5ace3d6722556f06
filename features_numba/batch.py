"""Batch engine: every feature over every bar at once, for training.

Returns a float64 ``(n_bars, n_features)`` matrix written into one preallocated (column-major)
array, NaN during each column's warm-up. Row t depends on bars ``<= t`` only. Kinds with a
whole-array kernel (``kernels_1d``) use it; the kinds reading rolling moments go through
``kernels_moments``, one pass per window (features of the same input and n, such as Bollinger
%b and width and the close z-score, or the volatility, skew and kurtosis of one n, share it);
the others loop their per-bar step (``column_nb``).

Features of other series (``sources``) are computed over that series' bars, bucketed to their
timeframe, and joined to the rows by the as-of rule of ``sources``.
"""
from __future__ import annotations

from functools import partial

import numpy as np
import pandas as pd

from features_numba.errors import FeatureError
from features_numba.kernels_1d import (
    adx_1d_nb,
    cci_1d_nb,
    ema_ratio_1d_nb,
    log_return_1d_nb,
    macd_1d_nb,
    mfi_1d_nb,
    natr_1d_nb,
    obv_1d_nb,
    pct_return_1d_nb,
    range_1d_nb,
    rsi_1d_nb,
    sma_ratio_1d_nb,
    stochastic_1d,
)
from features_numba.kernels_moments import moments_nb, range_terms_nb
from features_numba.sources import Source, align_nb, as_of_nb, bucket_nb
from features_numba.spec import FeatureDef, FeatureSpec
from features_numba.steps import column_nb

_COLUMNS = ("open", "high", "low", "close", "volume")

# kinds with a whole-array kernel; the others run their per-bar step over the bars
WHOLE_ARRAY = {
    "log_return": log_return_1d_nb,
    "pct_return": pct_return_1d_nb,
    "sma_ratio": sma_ratio_1d_nb,
    "ema_ratio": ema_ratio_1d_nb,
    "rsi": rsi_1d_nb,
    "natr": natr_1d_nb,
    "obv": obv_1d_nb,
    "macd": macd_1d_nb,
    "adx": adx_1d_nb,
    "mfi": mfi_1d_nb,
    "cci": cci_1d_nb,
    "williams_r": partial(range_1d_nb, 0),
    "stochastic": stochastic_1d,
    "range_position": partial(range_1d_nb, 1),
    "distance_extreme": partial(range_1d_nb, 3),
}


def readonly(array: np.ndarray) -> np.ndarray:
    """A read-only view: Numba compiles a kernel once per argument type and read-only is part
    of the type, so every input goes in read-only (pandas hands out read-only arrays, numpy
    writable ones), and each kernel is compiled once, not twice."""
    view = array.view()
    view.flags.writeable = False
    return view


def _f64(name: str, values: np.ndarray, n: int) -> np.ndarray:
    array = np.ascontiguousarray(values, dtype=np.float64)
    if array.shape != (n,):
        raise FeatureError(f"{name} has shape {array.shape}, expected ({n},) like the others")
    return readonly(array)


def _arrays(open_: np.ndarray, high: np.ndarray, low: np.ndarray, close: np.ndarray,
            volume: np.ndarray, ts_ns: np.ndarray) -> tuple[list[np.ndarray], np.ndarray]:
    """The bar arrays as the contiguous float64 (and int64 times) the kernels take."""
    n = len(close)
    arrays = [_f64(name, a, n) for name, a in zip(_COLUMNS, (open_, high, low, close, volume),
                                                   strict=True)]
    ts = np.ascontiguousarray(ts_ns, dtype=np.int64)
    if ts.shape != (n,):
        raise FeatureError(f"ts_ns has shape {ts.shape}, expected ({n},)")
    return arrays, readonly(ts)


def compute_features_arrays(open_: np.ndarray, high: np.ndarray, low: np.ndarray,
                            close: np.ndarray, volume: np.ndarray, ts_ns: np.ndarray,
                            spec: FeatureSpec, *, threads: int = 1,
                            out: np.ndarray | None = None) -> np.ndarray:
    """Feature matrix from OHLCV arrays and bar open times (int64 ns since the epoch, UTC).

    ``threads`` > 1 computes columns in that many threads at once (the kernels release the
    GIL); every column is computed the same way, so the matrix is bit-identical. ``out``: a
    column-major ``(n_bars, len(spec))`` array to write into (a block of a larger matrix).

    Returns
    -------
    numpy.ndarray
        float64 ``(n_bars, len(spec))``; NaN during warm-up.
    """
    arrays, ts = _arrays(open_, high, low, close, volume, ts_ns)
    # column-major: each feature's column is contiguous for its kernel
    if out is None:
        out = np.empty((len(ts), len(spec)), dtype=np.float64, order="F")
    codes, params, offsets = spec.layout()

    jobs = _jobs(spec)
    # each window input once: the log returns serve every window of returns
    sources = {window[0]: params[members[0]] for window, members in jobs if window is not None}
    inputs: dict[str, tuple[np.ndarray, int]] = {}

    def window_input(source: str) -> None:
        inputs[source] = _window_input(source, sources[source], arrays, ts)

    def compute(job: tuple[tuple[str, int] | None, list[int]]) -> None:
        window, members = job
        f = members[0]
        if window is not None:
            x, lag = inputs[window[0]]
            order = max(_ORDER[spec.features[g].kind] for g in members)
            moments_nb(x, lag, window[1], order, params[members], codes[members], arrays[3],
                       out, np.array(members, dtype=np.int64))
            return
        kernel = WHOLE_ARRAY.get(spec.features[f].kind)
        if kernel is not None:
            kernel(params[f], *arrays, ts, out[:, f])
        else:  # the kind's step looped over the bars
            state = np.zeros(offsets[f + 1] - offsets[f])  # fresh: the window starts empty
            column_nb(codes[f], params[f], state, *arrays, ts, out[:, f])

    if threads > 1:
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(threads) as pool:
            list(pool.map(window_input, sources))
            list(pool.map(compute, jobs))
    else:
        for source in sources:
            window_input(source)
        for job in jobs:
            compute(job)
    return out


# the highest power of the window's values each moments kind reads
_ORDER = {"volatility": 2, "zscore": 2, "bollinger": 2, "moments": 4, "range_volatility": 1}


def _window(definition: FeatureDef) -> tuple[str, int] | None:
    """(input, n) of the rolling-moments window a feature reads; None for other kinds.
    Features with the same window are computed in one pass over it."""
    if definition.kind not in _ORDER:
        return None
    params = dict(definition.params)
    if definition.kind in ("volatility", "moments"):
        source = "log_return"
    elif definition.kind == "range_volatility":
        source = params["estimator"]
    else:
        source = params.get("input", "close")
    return source, int(params["n"])


def _window_input(source: str, p: np.ndarray, arrays: list[np.ndarray],
                  ts: np.ndarray) -> tuple[np.ndarray, int]:
    """The values a window of ``source`` rolls over, and the bar its first value belongs to."""
    o, h, l, c, v = arrays
    if source == "log_return":  # the 1-bar log return kind's own kernel, bar 0 (NaN) dropped
        returns = np.empty(len(c))
        log_return_1d_nb(np.array([1.0]), o, h, l, c, v, ts, returns)
        return readonly(returns[1:]), 1
    if source in ("parkinson", "garman_klass"):
        return readonly(range_terms_nb(p, o, h, l, c)), 0
    return (c if source == "close" else v), 0


def _jobs(spec: FeatureSpec) -> list[tuple[tuple[str, int] | None, list[int]]]:
    """The features to compute together, each job with its moments window (None for the
    other kinds): those sharing a window together, every other alone."""
    jobs, shared = [], {}
    for f, definition in enumerate(spec.features):
        window = _window(definition)
        if window is None:
            jobs.append((None, [f]))
        else:
            shared.setdefault(window, []).append(f)
    return jobs + list(shared.items())


def _bar_times(ohlcv: pd.DataFrame) -> np.ndarray:
    index = ohlcv.index
    if not isinstance(index, pd.DatetimeIndex) or index.tz is None:
        raise FeatureError("features need an OHLCV frame indexed by tz-aware bar open times "
                           "(validate it with datafeeds.validate_ohlcv first)")
    return index.tz_convert("UTC").as_unit("ns").asi8


def _columns(ohlcv: pd.DataFrame) -> list[np.ndarray]:
    missing = [c for c in _COLUMNS if c not in ohlcv.columns]
    if missing:
        raise FeatureError(f"OHLCV frame lacks columns {missing}")
    return [ohlcv[c].to_numpy() for c in _COLUMNS]


def other_market(others: dict[str, pd.DataFrame] | None, key: str) -> pd.DataFrame:
    """The data ``key`` (``Source.input``) among ``others``, or an error naming it."""
    frame = (others or {}).get(key)
    if frame is None:
        raise FeatureError(f"the features read {Source.of_input(key).describe()}, which were "
                           f"not given; load them beside the traded market's bars (as {key!r})")
    return frame


def _series_values(frame: pd.DataFrame, key: str) -> tuple[np.ndarray, list[np.ndarray]]:
    """A series of values (``datafeeds.values``) as bars: the times each value became known,
    and open = high = low = close = the value, volume 0."""
    if "value" not in frame.columns:
        raise FeatureError(f"{key}: expected a frame with a 'value' column indexed by the "
                           "time each value became known")
    value = _f64(key, frame["value"].to_numpy(), len(frame))
    return _bar_times(frame), [value, value, value, value, readonly(np.zeros(len(frame)))]


def source_bars(source: Source, step: int, ohlcv: pd.DataFrame,
                others: dict[str, pd.DataFrame] | None) -> tuple[np.ndarray, list[np.ndarray]]:
    """The bars of ``source`` (its market's bars in buckets of ``step`` ns): open times and
    [open, high, low, close, volume]."""
    frame = ohlcv if source.market is None else other_market(others, source.input)
    arrays, ts = _arrays(*_columns(frame), _bar_times(frame))
    opens, values = bucket_nb(ts, *arrays, step)
    return opens, list(values)


def bucketed(ohlcv: pd.DataFrame, step: int) -> pd.DataFrame:
    """``ohlcv`` in buckets of ``step`` ns, as the features read it (a frame of bars whose
    buckets are what a feature of that bar size reads, bit for bit)."""
    opens, values = source_bars(Source(), step, ohlcv, None)
    index = pd.DatetimeIndex(pd.to_datetime(opens, utc=True), name="datetime")
    return pd.DataFrame(np.column_stack(values), index=index, columns=list(_COLUMNS))


def compute_features(ohlcv: pd.DataFrame, spec: FeatureSpec, *,
                     others: dict[str, pd.DataFrame] | None = None, threads: int = 1
                     ) -> np.ndarray:
    """Feature matrix of a validated OHLCV frame (DESIGN §3), float64 ``(n_bars, len(spec))``;
    ``others`` maps each other market the spec reads to its bars (at the spec's bar size or
    finer); ``threads`` as in :func:`compute_features_arrays`."""
    columns, ts = _columns(ohlcv), _bar_times(ohlcv)
    if spec.own_only:
        return compute_features_arrays(*columns, ts, spec, threads=threads)
    out = np.empty((len(ts), len(spec)), dtype=np.float64, order="F")
    for source, sub, at in spec.sources:
        if source.own and (np.diff(at) == 1).all():  # a block of columns: written in place
            compute_features_arrays(*columns, ts, sub, threads=threads,
                                    out=out[:, at[0]:at[-1] + 1])
            continue
        if source.own:
            out[:, at] = compute_features_arrays(*columns, ts, sub, threads=threads)
            continue
        if source.series is not None:
            known, values = _series_values(other_market(others, source.input), source.input)
            x = compute_features_arrays(*values, known, sub, threads=threads)
            _join(out, at, x, as_of_nb(ts, known))
            continue
        step = spec.step_ns(source)
        opens, values = source_bars(source, step, ohlcv, others)
        x = compute_features_arrays(*values, opens, sub, threads=threads)
        _join(out, at, x, align_nb(ts, opens, step))
    return out


def _join(out: np.ndarray, at: np.ndarray, x: np.ndarray, rows: np.ndarray) -> None:
    """Columns ``at`` of ``out``: row i gets ``x[rows[i]]``, NaN where ``rows[i]`` is -1."""
    found = rows >= 0
    out[:, at] = np.nan
    out[np.ix_(found, at)] = x[rows[found]]


def features_frame(ohlcv: pd.DataFrame, spec: FeatureSpec, *,
                   others: dict[str, pd.DataFrame] | None = None) -> pd.DataFrame:
    """:func:`compute_features` as a DataFrame with ``spec.names`` columns and the bar index."""
    return pd.DataFrame(compute_features(ohlcv, spec, others=others), index=ohlcv.index,
                        columns=list(spec.names))

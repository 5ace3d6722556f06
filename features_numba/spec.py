"""``FeatureSpec``: the ordered, hashable list of features a model is trained on.

Declared in code, from a dict or from TOML (``[[feature]]`` tables with ``kind`` and its
parameters). ``hash`` covers every definition and ``KERNEL_VERSION``, so a model artifact
can refuse features that are computed differently from the ones it learnt.

A feature may read another series than the model's own bars: a higher ``timeframe`` of the
same market (``timeframe = "1h"`` in a 1m spec) and/or another ``market``
(``market = "ETH/USDT"``), or a ``series`` of values published for a market
(``series = "funding_rate"``). Such a spec is bound to the bar size of the rows it makes
(``bar``, see :meth:`FeatureSpec.on_bar`); ``sources`` explains how its values are joined.
"""
from __future__ import annotations

import hashlib
import json
import tomllib
from dataclasses import dataclass
from datetime import timedelta
from functools import cached_property
from pathlib import Path

import numpy as np

from features_numba.errors import FeatureError
from features_numba.kinds import KERNEL_VERSION, KINDS
from features_numba.sources import Source, bar_ns


@dataclass(frozen=True)
class FeatureDef:
    """One output column: a feature kind and its parameters (sorted name/value pairs), read
    from the model's own bars or, with ``market``, ``timeframe`` or ``series``, from another
    series (``sources``)."""

    kind: str
    params: tuple[tuple[str, int | float | str], ...] = ()
    market: str | None = None  # None: the model's own market
    timeframe: str | None = None  # None: the model's own bar size
    series: str | None = None  # None: bars; else a series of values (``sources.SERIES``)

    @classmethod
    def of(cls, kind: str, *, market: str | None = None, timeframe: str | None = None,
           series: str | None = None, **params: int | float | str) -> FeatureDef:
        """Build and check a definition, e.g. ``FeatureDef.of("rsi", n=14)``,
        ``FeatureDef.of("rsi", n=14, timeframe="1h", market="ETH/USDT")`` or
        ``FeatureDef.of("level", series="funding_rate")``."""
        source = Source(market, timeframe, series)  # validates them
        if kind not in KINDS:
            raise FeatureError(f"unknown feature kind {kind!r}; known kinds: {sorted(KINDS)}")
        expected = set(KINDS[kind].params)
        if set(params) != expected:
            raise FeatureError(f"feature {kind!r} takes parameters {sorted(expected)}, "
                               f"got {sorted(params)}")
        for key in ("n", "fast", "slow", "signal", "d"):
            value = params.get(key)
            low = KINDS[kind].min_window if key == "n" else 1
            if key in params and (isinstance(value, bool) or not isinstance(value, int)
                                  or value < low):
                raise FeatureError(f"feature {kind!r}: {key} must be an integer >= {low}, "
                                   f"got {value!r}")
        if kind == "macd" and params["fast"] >= params["slow"]:
            raise FeatureError(f"feature 'macd': fast ({params['fast']}) must be shorter than "
                               f"slow ({params['slow']})")
        if "k" in params and not (isinstance(params["k"], (int, float)) and params["k"] > 0):
            raise FeatureError(f"feature {kind!r}: k must be a positive number, "
                               f"got {params['k']!r}")
        definition = cls(kind, tuple(sorted(params.items())), source.market, source.timeframe,
                         source.series)
        definition.numeric()  # validates choice parameters
        return definition

    @property
    def source(self) -> Source:
        """The series this column is computed from."""
        return Source(self.market, self.timeframe, self.series)

    @property
    def own(self) -> FeatureDef:
        """The same feature of the series it reads (no market, timeframe or series)."""
        return FeatureDef(self.kind, self.params)

    @property
    def kw(self) -> dict:
        """Parameters as a dict."""
        return dict(self.params)

    @property
    def name(self) -> str:
        """Column name, e.g. ``rsi_14``, ``rsi_14@1h``, ``rsi_14@ETH/USDT,1h``,
        ``level@funding_rate``."""
        return KINDS[self.kind].column(self.kw) + self.source.suffix

    @property
    def warmup(self) -> int:
        """Leading bars (of the series it reads) for which this column is NaN."""
        return KINDS[self.kind].warmup(self.kw)

    @property
    def state_size(self) -> int:
        """Floats of streaming state this column needs."""
        return KINDS[self.kind].state_size(self.kw)

    def numeric(self) -> tuple[float, ...]:
        """Parameters as the floats the step function reads."""
        return KINDS[self.kind].numeric(self.kw)


@dataclass(frozen=True)
class FeatureSpec:
    """An ordered set of feature definitions; one output column each. ``bar`` is the bar
    size of the rows (needed, and only kept, when a feature reads another series)."""

    features: tuple[FeatureDef, ...]
    bar: str | None = None

    def __post_init__(self) -> None:
        if not self.features:
            raise FeatureError("a feature spec needs at least one feature")
        names = [f.name for f in self.features]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise FeatureError(f"feature spec lists {dup} more than once")
        if self.bar is not None:
            if self.own_only:  # a plain spec is the same whatever its bar: one hash
                object.__setattr__(self, "bar", None)
                return
            step = bar_ns(self.bar)
            for f in self.features:
                if f.timeframe is not None and bar_ns(f.timeframe) % step:
                    raise FeatureError(
                        f"feature {f.name}: its timeframe {f.timeframe} is not a whole number "
                        f"of the model's {self.bar} bars; use a multiple of {self.bar}")

    @cached_property
    def own_only(self) -> bool:
        """Whether every feature reads the model's own bars (no other series)."""
        return all(f.source.own for f in self.features)

    @cached_property
    def markets(self) -> tuple[str, ...]:
        """The other markets whose bars the features read, sorted."""
        return tuple(sorted({f.market for f in self.features
                             if f.market is not None and f.series is None}))

    @cached_property
    def inputs(self) -> tuple[str, ...]:
        """Everything the features read besides the model's own bars, by the names the
        engines take it under (``Source.input``): other markets' bars and series of values."""
        return tuple(sorted({f.source.input for f in self.features} - {None}))

    def on_bar(self, bar: str) -> FeatureSpec:
        """This spec for rows of ``bar`` (e.g. ``"1m"``): how many rows a higher timeframe
        spans. A plain spec is returned as it is; one bound to another bar is refused."""
        if self.own_only or self.bar == bar:
            return self
        if self.bar is not None:
            raise FeatureError(f"this feature spec is for {self.bar} bars, not {bar}; "
                               f"train a model on {bar} bars")
        return FeatureSpec(self.features, bar)

    @cached_property
    def sources(self) -> tuple[tuple[Source, FeatureSpec, np.ndarray], ...]:
        """Each series read, with the plain spec of its columns and their positions; the
        model's own bars first."""
        groups: dict[Source, list[int]] = {}
        for i, f in enumerate(self.features):
            groups.setdefault(f.source, []).append(i)
        order = sorted(groups, key=lambda s: (not s.own, s.market or "", s.timeframe or "",
                                              s.series or ""))
        return tuple((s, FeatureSpec(tuple(self.features[i].own for i in groups[s])),
                      np.array(groups[s], dtype=np.int64)) for s in order)

    def step_ns(self, source: Source) -> int:
        """Duration of one bar of ``source`` in ns (needs ``bar``)."""
        if self.bar is None:
            raise FeatureError("this feature spec reads other series: bind it to the "
                               "model's bar size first (spec.on_bar('1m'))")
        return bar_ns(source.timeframe or self.bar)

    def __len__(self) -> int:
        return len(self.features)

    @property
    def names(self) -> tuple[str, ...]:
        """Column names, in order."""
        return tuple(f.name for f in self.features)

    @cached_property
    def warmup(self) -> int:
        """Bars until every column can be non-NaN: rows ``>= warmup`` are complete (for
        another series: once its warm-up bars have closed, if its bars have no gaps)."""
        if self.own_only:
            return max(f.warmup for f in self.features)
        own = bar_ns(self.bar) if self.bar else 0
        # a series of values comes when it is published: its warm-up is not counted in bars
        return max(sub.warmup if source.own else 0 if source.series else
                   (sub.warmup + 1) * (self.step_ns(source) // own)
                   for source, sub, _ in self.sources)

    @cached_property
    def hash(self) -> str:
        """sha256 over the definitions and ``KERNEL_VERSION``."""
        payload = json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(payload.encode()).hexdigest()

    def to_dict(self) -> dict:
        """JSON-ready form: ``{"kernel_version": .., "features": [{"kind": .., ...}]}``."""
        out = {"kernel_version": KERNEL_VERSION,
               "features": [{"kind": f.kind, **f.kw, **f.source.to_dict()}
                            for f in self.features]}
        return out if self.bar is None else {**out, "bar": self.bar}

    @classmethod
    def from_dict(cls, data: dict) -> FeatureSpec:
        """Inverse of :meth:`to_dict` (``kernel_version`` is informational: the hash uses the
        running code's version, so stale specs hash differently)."""
        try:
            items = data["features"]
            return cls(tuple(FeatureDef.of(**dict(item)) for item in items), data.get("bar"))
        except (KeyError, TypeError) as exc:
            raise FeatureError(f"invalid feature spec {data!r:.200}: {exc}; expected "
                               "{'features': [{'kind': 'rsi', 'n': 14}, ...]}") from None

    @classmethod
    def from_toml(cls, path: Path) -> FeatureSpec:
        """Read ``[[feature]]`` tables (``kind = "rsi"``, ``n = 14``) from a TOML file."""
        try:
            data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise FeatureError(f"cannot read feature spec {path}: {exc}") from None
        if "feature" not in data:
            raise FeatureError(f"{path}: no [[feature]] tables; write e.g.\n"
                               '[[feature]]\nkind = "rsi"\nn = 14')
        return cls.from_dict({"features": data["feature"], "bar": data.get("bar")})

    @classmethod
    def default(cls, bar: timedelta | None = None) -> FeatureSpec:
        """A general-purpose set of scale-free columns (no raw prices, so it transfers across
        price levels): returns, trend, momentum, volatility, volume, candle shape and calendar;
        39 columns, warm-up 99 bars.

        Given the bar size ``bar``, calendar columns that would be constant are left out: the
        hour of day for bars of a day or more, the weekday for bars of a week or more.
        """
        cycles = [c for c, span in (("hour", timedelta(days=1)), ("dow", timedelta(days=7)))
                  if bar is None or bar < span]
        d = FeatureDef.of
        return cls((
            *(d("log_return", n=n) for n in (1, 2, 4, 8, 24)),
            *(d("sma_ratio", n=n) for n in (10, 20, 50, 100)),
            *(d("ema_ratio", n=n) for n in (12, 26)),
            d("rsi", n=14),
            *(d("stochastic", n=14, slow=3, d=3, part=p) for p in ("k", "d")),
            d("williams_r", n=14),
            d("cci", n=20),
            d("adx", n=14),
            d("natr", n=14),
            *(d("volatility", n=n) for n in (24, 96)),
            *(d("range_volatility", n=24, estimator=e) for e in ("parkinson", "garman_klass")),
            *(d("moments", n=48, moment=m) for m in ("skew", "kurt")),
            d("zscore", n=20, input="close"),
            *(d("bollinger", n=20, k=2.0, part=p) for p in ("pctb", "width")),
            d("zscore", n=24, input="volume"),
            d("mfi", n=14),
            d("range_position", n=24),
            *(d("distance_extreme", n=48, side=s) for s in ("high", "low")),
            *(d("candle", part=p) for p in ("body", "upper_wick", "lower_wick")),
            *(d("cyclic_time", cycle=c, wave=w) for c in cycles for w in ("sin", "cos")),
        ))

    def layout(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Kind codes, parameter matrix and state offsets the compiled engines take (for the
        features read; the engines split a spec by ``sources`` first)."""
        codes = np.array([KINDS[f.kind].code for f in self.features], dtype=np.int64)
        params = np.zeros((len(self), 4), dtype=np.float64)
        for i, f in enumerate(self.features):
            values = f.numeric()
            params[i, : len(values)] = values
        offsets = np.zeros(len(self) + 1, dtype=np.int64)
        offsets[1:] = np.cumsum([f.state_size for f in self.features])
        return codes, params, offsets

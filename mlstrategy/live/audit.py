"""The decision audit: recompute every journaled decision offline and say whether it is equal.

A bot journals, per decision, the bar, the model (its ref; the journal's ``models`` table has
its sha256 and feature spec hash), the feature vector's hash (the vector too with
``--journal-features``), P(up), the thresholds and the action. Each session streamed its
features from its first journaled bar (the warm-up history it fetched), and a model swapped in
was warmed on the same session's bars, so the batch features of a session's bars, taken from
its first, are the vectors the bot saw (batch = streaming, bit for bit) and the model's batch
call gives its P(up). Where they differ the report names the bars, by how much, and the likely
cause: a bar rewritten by a later session (a backfilled or revised candle), a bar missing, a
gap before it, a model file that is not the one that decided, or, when the journaled bar itself
differs from what the bot saw, that bar and the later ones its difference reaches.
"""
from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from datafeeds.timeframes import timeframe_delta
from features_numba import FeatureError, FeatureSpec, compute_features
from mlstrategy.errors import ConfigError, ModelError
from mlstrategy.live.journal import Journal
from mlstrategy.live.market_bars import journal_key, values_of
from mlstrategy.registry.artifact import Artifact, load_artifact
from mlstrategy.registry.production import ModelRef, artifact_dir
from mlstrategy.trading.inference import row_hash

_COLUMNS = ["open", "high", "low", "close", "volume"]


@dataclass(frozen=True)
class Difference:
    """A run of consecutive decisions that differ for one cause."""

    first: str  # bar open times, ISO UTC
    last: str
    decisions: int
    max_abs_dp: float  # largest |P(up) journaled - recomputed| (NaN: only features differ)
    cause: str
    features: list[str] = field(default_factory=list)  # differing ones (journaled vectors)

    def describe(self) -> str:
        """One line."""
        span = self.first if self.first == self.last else f"{self.first} .. {self.last}"
        dp = "" if math.isnan(self.max_abs_dp) else f", max |dP| {self.max_abs_dp:.3g}"
        named = f" (features {', '.join(self.features[:6])})" if self.features else ""
        return f"{span}: {self.decisions} decision(s) differ{dp}{named}: {self.cause}"


@dataclass(frozen=True)
class SessionAudit:
    """One market's decisions in one session of the journal."""

    market: str
    session: int
    decisions: int
    equal: int
    models: list[str]
    differences: list[Difference]

    @property
    def ok(self) -> bool:
        """Every decision equal."""
        return self.equal == self.decisions


def audit(journal_path: Path, models_dir: Path, market: str | None = None
          ) -> list[SessionAudit]:
    """Audit every session of ``market`` (every market when None) in the journal.

    Raises
    ------
    ConfigError
        Not a journal, one written before decisions were journaled for audit, or no such
        market.
    """
    journal = Journal.read(journal_path)
    try:
        names = list(journal.markets())
        if market is not None and market not in names:
            raise ConfigError(f"no market {market!r} in {journal_path}; its markets: "
                             f"{', '.join(repr(n) for n in names)}")
        used = journal.models_used()
        loader = _Models(models_dir, used)
        out = []
        for name in names if market is None else [market]:
            view = journal.for_market(name)
            step = timeframe_delta(journal.markets()[name]["timeframe"])
            for session in view.sessions():
                out.append(_audit_session(name, session, view.audit_rows(session), loader,
                                          step, _others(journal, name, session)))
        return out
    finally:
        journal.close()


class _Models:
    """The artifacts that decided, loaded once, checked against what the journal recorded."""

    def __init__(self, models_dir: Path, used: dict[str, dict]) -> None:
        self.models_dir = models_dir
        self.used = used
        self._loaded: dict[str, Artifact | str] = {}

    def get(self, ref: str) -> Artifact | str:
        """The artifact, or why it cannot be the one that decided."""
        if ref not in self._loaded:
            self._loaded[ref] = self._load(ref)
        return self._loaded[ref]

    def _load(self, ref: str) -> Artifact | str:
        try:
            artifact = load_artifact(artifact_dir(self.models_dir, ModelRef.parse(ref)))
        except (ModelError, ValueError) as exc:
            return f"model {ref} cannot be loaded from {self.models_dir} ({exc})"
        recorded = self.used.get(ref)
        if recorded is None:
            return artifact  # journaled before models were recorded: trust the ref
        if recorded["model_sha256"] != artifact.manifest.model_sha256:
            return f"model {ref} in {self.models_dir} is not the file that decided (sha256 " \
                   f"{artifact.manifest.model_sha256[:12]}, journaled " \
                   f"{recorded['model_sha256'][:12]})"
        if recorded["features_hash"] != artifact.spec.hash:
            return f"model {ref}'s feature spec differs from the one that decided"
        return artifact


def _others(journal: Journal, market: str, session: int
            ) -> Callable[[FeatureSpec], dict[str, pd.DataFrame]]:
    """What else a model's features read in ``session``: each other market's bars and funding
    rates the bot journaled, from the first it fetched in that session (its history) on."""

    def of(spec: FeatureSpec) -> dict[str, pd.DataFrame]:
        out = {}
        for key in spec.inputs:
            view = journal.for_market(journal_key(market, key))
            fetched = view.bars(session=session)
            if len(fetched):
                bars = view.bars().loc[fetched.index[0]:]
                out[key] = bars if key in spec.markets else values_of(bars)
        return out

    return of


def _audit_session(market: str, session: int, rows: pd.DataFrame, models: _Models,
                   step: pd.Timedelta,
                   others: Callable[[FeatureSpec], dict[str, pd.DataFrame]]) -> SessionAudit:
    n = len(rows)
    missing = rows["close"].isna().to_numpy()
    bars = pd.DataFrame(rows[_COLUMNS].to_numpy(dtype=np.float64), columns=_COLUMNS,
                        index=pd.to_datetime(rows["time_ms"], unit="ms", utc=True))
    bars = bars.ffill()  # a missing bar: its neighbours still compute (and it is named)
    journaled_p = rows["proba"].to_numpy(dtype=np.float64)  # None (warm-up) -> NaN
    recomputed_p = np.full(n, np.nan)
    hashes = np.full(n, None, dtype=object)
    problem = np.full(n, None, dtype=object)
    vectors: dict[str, np.ndarray] = {}
    for ref in rows["model"].unique():
        mine = (rows["model"] == ref).to_numpy()
        artifact = models.get(ref)
        if isinstance(artifact, str):
            problem[mine] = artifact
            continue
        try:
            x = compute_features(bars, artifact.spec, others=others(artifact.spec), threads=1)
        except FeatureError as exc:  # what else it read was not journaled
            problem[mine] = f"model {ref}: {exc}"
            continue
        vectors[ref] = x
        warm = artifact.spec.warmup
        p = np.full(n, np.nan)
        if n > warm:
            p[warm:] = artifact.model.predict_proba(x[warm:])
        recomputed_p[mine] = p[mine]
        hashes[mine] = [row_hash(x[i]) for i in np.flatnonzero(mine)]
    same_p = (journaled_p == recomputed_p) | (np.isnan(journaled_p) & np.isnan(recomputed_p))
    journaled_hash = rows["x_hash"].to_numpy(dtype=object)
    same_x = (journaled_hash == hashes) | pd.isna(rows["x_hash"]).to_numpy()
    loaded = np.array([why is None for why in problem], dtype=bool)
    equal = same_p & same_x & loaded & ~missing
    causes = _causes(rows, equal, same_x, missing, problem, step, session)
    differences = _runs(rows, equal, causes, journaled_p, recomputed_p, vectors, models)
    return SessionAudit(market, session, n, int(equal.sum()), list(rows["model"].unique()),
                        differences)


def _causes(rows: pd.DataFrame, equal: np.ndarray, same_x: np.ndarray, missing: np.ndarray,
            problem: np.ndarray, step: pd.Timedelta, session: int) -> list[str]:
    """The likely cause of each differing decision ("" where equal)."""
    times = rows["time_ms"].to_numpy()
    gaps = np.r_[False, np.diff(times) > step.total_seconds() * 1000]
    rewritten = (rows["bar_session"].fillna(session).to_numpy() != session)
    out, origin = [], None
    for i in range(len(rows)):
        if equal[i]:
            out.append("")
            continue
        if problem[i] is not None:
            cause = problem[i]
        elif missing[i]:
            cause = "the bar is missing from the journal"
        elif rewritten[i]:
            cause = (f"the bar was rewritten by session {int(rows['bar_session'].iloc[i])} "
                     "(a backfilled or revised candle)")
        elif gaps[i]:
            cause = "a gap in the journaled bars just before it"
        elif same_x[i]:
            cause = "same features, another P(up): the model is not the one that decided"
        elif origin is not None and not equal[i - 1]:
            cause = f"reached by the difference at {origin}"
        else:
            origin = _iso(times[i])
            cause = "this bar differs from the one the bot decided on (edited or replaced " \
                    "in the journal)"
        out.append(cause)
    return out


def _runs(rows: pd.DataFrame, equal: np.ndarray, causes: list[str], journaled: np.ndarray,
          recomputed: np.ndarray, vectors: dict[str, np.ndarray],
          models: _Models) -> list[Difference]:
    """Consecutive differing decisions of one cause, as ``Difference``s."""
    out: list[Difference] = []
    times = rows["time_ms"].to_numpy()
    i, n = 0, len(rows)
    while i < n:
        if equal[i]:
            i += 1
            continue
        j = i
        while j + 1 < n and not equal[j + 1] and causes[j + 1] == causes[i]:
            j += 1
        dp = np.abs(journaled[i:j + 1] - recomputed[i:j + 1])
        dp = dp[~np.isnan(dp)]
        out.append(Difference(_iso(times[i]), _iso(times[j]), j - i + 1,
                              float(dp.max()) if len(dp) else math.nan, causes[i],
                              _differing_features(rows, i, vectors, models)))
        i = j + 1
    return out


def _differing_features(rows: pd.DataFrame, i: int, vectors: dict[str, np.ndarray],
                        models: _Models) -> list[str]:
    """The features whose journaled value (``--journal-features``) differs at row ``i``."""
    blob, ref = rows["features"].iloc[i], rows["model"].iloc[i]
    if blob is None or ref not in vectors:
        return []
    journaled = np.frombuffer(blob, dtype=np.float64)
    now = vectors[ref][i]
    differ = ~((journaled == now) | (np.isnan(journaled) & np.isnan(now)))
    names = models.get(ref).spec.names
    return [names[k] for k in np.flatnonzero(differ)]


def _iso(time_ms: int) -> str:
    return pd.Timestamp(int(time_ms), unit="ms", tz="UTC").isoformat()

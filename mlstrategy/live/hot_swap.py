"""Hot model swap: a newly promoted model takes over between bars, or is refused.

``ModelWatcher.check`` runs before each bar. When ``models/<market>/production.json`` (the
running model's market) names another version it loads and verifies it (sha256, feature hash,
learner kind), checks it is meant for this market (same symbol and timeframe as the model
trading), warms its streaming features on the bars the journal holds for this session, and
hands over the new engine. Anything wrong is logged and journaled with the reason, and the old
model keeps trading. It never trains.
"""
from __future__ import annotations

import logging
from pathlib import Path

from mlstrategy.errors import ModelError
from mlstrategy.live.journal import Journal
from mlstrategy.registry.artifact import Artifact, load_artifact
from mlstrategy.registry.production import ModelRef, artifact_dir, production_path, production_ref
from mlstrategy.trading.inference import OtherBars, SignalEngine

log = logging.getLogger(__name__)


def incompatibility(new: Artifact, current: Artifact, timeframe: str) -> str | None:
    """Why ``new`` may not replace ``current`` on a ``timeframe`` feed, or None.

    (Its learner kind, sha256 and feature hash were verified when it loaded.)
    """
    trained = new.manifest.training_data
    if trained.timeframe != timeframe:
        return f"trained on {trained.timeframe!r} bars, the bot trades {timeframe!r}"
    unfollowed = sorted(set(new.spec.inputs) - set(current.spec.inputs))
    if unfollowed:
        return (f"its features read {', '.join(unfollowed)}, which this bot does not follow; "
                "restart the bot with it")
    return current.other_market(new)


class ModelWatcher:
    """Follows the production pointer of the running model's market for a running bot."""

    def __init__(self, models_dir: Path, current: Artifact, *, timeframe: str,
                 journal: Journal, follow: bool = True,
                 markets: OtherBars | None = None) -> None:
        self.models_dir = models_dir
        self.current = current
        self.markets = markets  # the other markets' bars the bot follows, if any
        self.timeframe = timeframe
        self.journal = journal
        self.follow = follow
        self.swaps = 0
        self.refusals = 0
        self._stamp = self._pointer_stamp()

    def _pointer_stamp(self) -> tuple[int, int, int] | None:
        try:
            st = production_path(self.models_dir, self.current.name).stat()
        except FileNotFoundError:
            return None
        return st.st_ino, st.st_mtime_ns, st.st_size

    def recheck(self) -> None:
        """Read the production pointer again at the next ``check`` (an operator's reload)."""
        self._stamp = (-1, -1, -1)  # no file has it

    def check(self, before_ms: int) -> SignalEngine | None:
        """A warmed engine for a newly promoted, compatible model; None to keep the current.

        ``before_ms``: open time of the bar about to be processed; the new model is warmed on
        the session's bars before it.
        """
        if not self.follow:
            return None
        stamp = self._pointer_stamp()
        if stamp == self._stamp:  # one stat() per bar while nothing changes
            return None
        self._stamp = stamp
        ref: ModelRef | None = None
        try:
            ref = production_ref(self.models_dir, self.current.name)
            if ref is None or ref == ModelRef(self.current.name, self.current.version):
                return None
            new = load_artifact(artifact_dir(self.models_dir, ref))
        except ModelError as exc:
            return self._refuse(str(ref or production_path(self.models_dir, self.current.name)),
                                str(exc))
        reason = incompatibility(new, self.current, self.timeframe)
        if reason is None:
            bars = self.journal.bars(until_ms=before_ms - 1, session=self.journal.session)
            if len(bars) <= new.spec.warmup:
                reason = (f"needs {new.spec.warmup + 1} bars to warm its features, the "
                          f"session has {len(bars)}")
        if reason is not None:
            return self._refuse(new.ref, reason)
        engine = SignalEngine(new, follow=self.markets)
        engine.warm(bars)
        log.info("model swap: %s -> %s (warmed on %d bars)", self.current.ref,
                 new.ref, len(bars))
        self.journal.event("model_swap", old=self.current.ref, new=new.ref,
                           warm_bars=len(bars))
        self.current = new
        self.swaps += 1
        return engine

    def _refuse(self, label: str, reason: str) -> None:
        log.warning("model %s refused, %s keeps trading: %s", label,
                    self.current.ref, reason)
        self.journal.event("model_refused", model=label, reason=reason,
                           kept=self.current.ref)
        self.refusals += 1
        return None

"""What a bot's drift watch is told (light: the CLI reads it before anything heavy loads);
``mlstrategy.live.drift`` measures and acts."""
from __future__ import annotations

from dataclasses import dataclass, field

ON_DRIFT = ("warn", "pause", "rollback")
DRIFT_META = "drift"  # the journal's setting holding a market's latest figures (JSON)


@dataclass(frozen=True)
class DriftLimits:
    """When a window of ``window`` bars counts as drifting (``mlstrategy.live.drift``)."""

    window: int = 500
    psi: float = 0.5
    calibration_gap: float = 0.15
    brier_margin: float = 0.02
    band: float = 0.005  # the lower quantile of the holdout's bootstrapped return

    def __post_init__(self) -> None:
        if self.window < 50:
            raise ValueError(f"a drift window of {self.window} bars is too short (>= 50)")
        if not (self.psi > 0 and self.calibration_gap > 0 and self.brier_margin > 0
                and 0 < self.band < 0.5):
            raise ValueError("drift limits psi, calibration_gap and brier_margin must be > 0, "
                             "band between 0 and 0.5")


@dataclass(frozen=True)
class DriftSettings:
    """A bot's drift watch: its limits and what a breach does (``ON_DRIFT``)."""

    limits: DriftLimits = field(default_factory=DriftLimits)
    on_drift: str = "warn"

    def __post_init__(self) -> None:
        if self.on_drift not in ON_DRIFT:
            raise ValueError(f"--on-drift {self.on_drift!r} is not one of {ON_DRIFT}")

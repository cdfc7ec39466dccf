"""Posterior summaries of an estimand: mean, HDI, probability of direction, ROPE."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import arviz as az
import numpy as np
import pandas as pd


@dataclass(frozen=True)
class EffectSummary:
    """Posterior summary of one scalar estimand."""

    name: str
    mean: float
    median: float
    sd: float
    hdi_low: float
    hdi_high: float
    hdi_prob: float
    p_positive: float
    p_direction: float
    rope: tuple[float, float] | None
    p_rope: float | None
    n_draws: int
    units: str = ""

    def sentence(self) -> str:
        """A plain-language statement of the result."""
        direction = "an increase" if self.median >= 0 else "a decrease"
        units = f" {self.units}" if self.units else ""
        text = (
            f"The estimated {self.name} is {self.mean:.3g}{units} "
            f"({self.hdi_prob:.0%} HDI {self.hdi_low:.3g} to {self.hdi_high:.3g}); "
            f"the posterior probability of {direction} is {self.p_direction:.1%}"
        )
        if self.rope is not None and self.p_rope is not None:
            lo, hi = self.rope
            text += (
                f", and {self.p_rope:.1%} of the posterior lies within the region of practical "
                f"equivalence [{lo:.3g}, {hi:.3g}]"
            )
            if self.p_rope >= 0.95:
                text += " (practically equivalent to no effect)"
            elif self.p_rope <= 0.05:
                text += " (a practically meaningful effect)"
        return text + "."

    def to_dict(self) -> dict[str, object]:
        d = asdict(self)
        d["rope_low"], d["rope_high"] = self.rope if self.rope is not None else (None, None)
        del d["rope"]
        return d


def summarise_effect(
    draws: object,
    *,
    name: str,
    hdi_prob: float = 0.95,
    rope: tuple[float, float] | float | None = None,
    units: str = "",
) -> EffectSummary:
    """Summarise posterior draws of a scalar (any array-like; all entries are pooled draws).

    ``rope`` is an interval ``(low, high)`` or a half-width ``r`` meaning ``(-r, r)``.
    """
    x = np.asarray(getattr(draws, "values", draws), dtype=float).ravel()
    if x.size < 2:
        raise ValueError(f"{name}: need at least 2 posterior draws, got {x.size}")
    if not np.all(np.isfinite(x)):
        raise ValueError(f"{name}: posterior draws contain non-finite values")
    if not 0 < hdi_prob < 1:
        raise ValueError(f"hdi_prob must be in (0, 1), got {hdi_prob}")
    if rope is not None and np.isscalar(rope):
        r = abs(float(rope))  # type: ignore[arg-type]
        rope = (-r, r)
    lo, hi = az.hdi(x, hdi_prob=hdi_prob)
    p_pos = float(np.mean(x > 0))
    p_rope = None
    if rope is not None:
        rlo, rhi = float(rope[0]), float(rope[1])  # type: ignore[index]
        if rlo > rhi:
            raise ValueError(f"rope must be (low, high) with low <= high, got {rope}")
        rope = (rlo, rhi)
        p_rope = float(np.mean((x >= rlo) & (x <= rhi)))
    return EffectSummary(
        name=name,
        mean=float(x.mean()),
        median=float(np.median(x)),
        sd=float(x.std(ddof=1)),
        hdi_low=float(lo),
        hdi_high=float(hi),
        hdi_prob=hdi_prob,
        p_positive=p_pos,
        p_direction=max(p_pos, 1.0 - p_pos),
        rope=rope,
        p_rope=p_rope,
        n_draws=int(x.size),
        units=units,
    )


def effects_table(effects: list[EffectSummary]) -> pd.DataFrame:
    """One row per estimand."""
    return pd.DataFrame([e.to_dict() for e in effects])


__all__ = ["EffectSummary", "effects_table", "summarise_effect"]

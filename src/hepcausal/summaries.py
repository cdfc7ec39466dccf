"""Posterior summaries of an estimand: mean, HDI, probability of direction, ROPE."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import arviz as az
import numpy as np
import pandas as pd


@dataclass(frozen=True)
class EffectSummary:
    """Posterior summary of one scalar estimand.

    Attributes
    ----------
    name : str
        Name of the estimand (e.g. ``"gradient_effect"``), used in :meth:`sentence`.
    mean, median, sd : float
        Posterior mean, median and standard deviation (``ddof=1``) of the draws, in the
        estimand's units.
    hdi_low, hdi_high : float
        Lower and upper bound of the highest-density interval.
    hdi_prob : float
        Probability mass of the HDI, in (0, 1).
    p_positive : float
        Posterior probability that the estimand is > 0.
    p_direction : float
        Probability of direction, ``max(p_positive, 1 - p_positive)``, in [0.5, 1].
    rope : tuple of float or None
        Region of practical equivalence ``(low, high)``, or None when none was given.
    p_rope : float or None
        Posterior probability inside ``rope`` (bounds included); None without a ROPE.
    n_draws : int
        Number of pooled posterior draws summarised.
    units : str, default ""
        Units of the estimand in words, appended to numbers in :meth:`sentence`.
    """

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

    Parameters
    ----------
    draws : array_like or xarray.DataArray
        Posterior draws of one scalar estimand; every entry (all chains and draws) is pooled.
        Objects with a ``.values`` attribute are unwrapped.
    name : str
        Name of the estimand, stored in the summary and used in error messages.
    hdi_prob : float, default 0.95
        Probability mass of the highest-density interval, in (0, 1).
    rope : tuple of float or float or None, default None
        Region of practical equivalence: an interval ``(low, high)`` with ``low <= high``, or a
        half-width ``r`` meaning ``(-abs(r), abs(r))``.  None: no ROPE probability.
    units : str, default ""
        Units of the estimand in words.

    Returns
    -------
    EffectSummary
        Mean, median, SD, HDI, probability of direction and ROPE probability.

    Raises
    ------
    ValueError
        With fewer than 2 draws, non-finite draws, ``hdi_prob`` outside (0, 1) or a ROPE
        with ``low > high``.
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
    """Tabulate effect summaries, one row per estimand.

    Parameters
    ----------
    effects : list of EffectSummary
        The summaries to tabulate.

    Returns
    -------
    pandas.DataFrame
        One row per estimand with the fields of :class:`EffectSummary`; the ROPE is split into
        ``rope_low`` and ``rope_high`` (None without a ROPE).
    """
    return pd.DataFrame([e.to_dict() for e in effects])


__all__ = ["EffectSummary", "effects_table", "summarise_effect"]

"""The PHE / OHID slope index of inequality for quantile data (``PHEindicatormethods::phe_sii``).

Method (Low & Low 2004; PHE Technical Guide): quantiles ordered most -> least deprived; relative
rank ``b`` = midpoint of the cumulative population share; weighted least squares of the value on
``b`` with weights ``a`` = population share (PHE fits ``sqrt(a)*y ~ sqrt(a) + sqrt(a)*b - 1``);
SII = fitted(b=1) - fitted(b=0).  Confidence limits by simulation: each quantile's value is drawn
from a normal with its standard error (on the log/logit scale for rates/proportions), the line
is refitted and order statistics of the simulated slopes are taken.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Literal

import numpy as np
from scipy.stats import norm

from hepcausal.inequality.ranks import ordered_relative_rank
from hepcausal.inequality.sii_core import (
    TRANSFORM_NAMES,
    SIIInputError,
    SIIResult,
    back_transformed_sii,
    check_value_type,
    check_values,
    check_weights,
    interval_from_draws,
    inverse_link,
    level_tag,
    link,
    parse_confidence,
    weighted_line,
)

MIN_QUANTILES, MAX_QUANTILES, MIN_SIMULATIONS = 5, 100, 1000


def sii(
    values: Sequence[float] | np.ndarray,
    populations: Sequence[float] | np.ndarray,
    *,
    quantile_order: Sequence | np.ndarray | None = None,
    se: Sequence[float] | np.ndarray | None = None,
    lower: Sequence[float] | np.ndarray | None = None,
    upper: Sequence[float] | np.ndarray | None = None,
    ci_level: float = 0.95,
    se_scale: Literal["natural", "link"] = "natural",
    value_type: Literal["other", "rate", "proportion"] = "other",
    transform: bool = False,
    confidence: float | Sequence[float] = 0.95,
    rii: bool = False,
    reliability_stat: bool = False,
    n_sim: int = 100_000,
    seed: int | np.random.Generator | None = None,
) -> SIIResult:
    """PHE slope index of inequality of quantile ``values`` with simulation confidence limits.

    Parameters
    ----------
    values, populations
        One entry per quantile (5 to 100 quantiles): the indicator value and the population.
        Ordered most -> least deprived unless ``quantile_order`` is given.
    quantile_order
        Optional sortable labels, one per quantile (ascending = most -> least deprived, e.g.
        IMD decile 1..10); the quantiles are sorted by them.  None: ``values`` are already in
        order.
    se, lower, upper, ci_level
        Standard errors, or confidence limits at ``ci_level`` from which PHE derives them
        (``(g(upper) - g(lower)) / (2 z)`` with ``g`` the log/logit for rates/proportions).
    se_scale
        ``'natural'``: ``se`` is on the indicator's scale and is mapped to the log/logit scale by
        the delta method; ``'link'``: ``se`` is already on that scale (PHE's own behaviour).
    value_type, transform
        ``'rate'``/``'proportion'`` are simulated on the log/logit scale.  ``transform=True`` also
        fits the line on that scale and back-transforms (SII = g^-1(fit at 1) - g^-1(fit at 0)).
    confidence
        Level(s) of the SII limits, in [0.9, 1) or [90, 100); a list gives several.
    rii
        Also return the relative index (fitted value at rank 1 / at rank 0) and its limits.
    reliability_stat
        Repeat the simulation 10 times and report PHE's mean absolute difference of the limits.
    n_sim, seed
        Simulation size (PHE ``repetitions``, >= 1000) and random seed.
    """
    check_value_type(value_type, transform)
    if se_scale not in ("natural", "link"):
        raise SIIInputError(f"se_scale must be 'natural' or 'link'; got {se_scale!r}")
    levels = parse_confidence(confidence)
    if int(n_sim) != n_sim or n_sim < MIN_SIMULATIONS:
        raise SIIInputError(f"n_sim must be an integer >= {MIN_SIMULATIONS} (PHE); got {n_sim}")
    n_sim = int(n_sim)

    y = np.asarray(values, dtype=float).ravel()
    pop = np.asarray(populations, dtype=float).ravel()
    k = y.size
    if pop.size != k:
        raise SIIInputError(f"values ({k}) and populations ({pop.size}) differ in length")
    if not MIN_QUANTILES <= k <= MAX_QUANTILES:
        raise SIIInputError(
            f"number of quantiles must be between {MIN_QUANTILES} and {MAX_QUANTILES}; got {k}"
        )
    if k > 10:
        warnings.warn(
            "small values can make the SII unstable with more than 10 quantiles",
            UserWarning,
            stacklevel=2,
        )
    order = _order(quantile_order, k)
    y, pop = y[order], pop[order]
    check_weights(pop)
    linked = value_type != "other"
    check_values(y, value_type, linked=linked)
    se_link, notes = _link_scale_se(y, order, se, lower, upper, ci_level, se_scale, value_type)

    # Point estimate.
    b = ordered_relative_rank(pop)
    fit_y = link(y, value_type) if transform else y
    intercept, slope = weighted_line(b, fit_y, pop)
    est_sii, est_rii, est_y0 = back_transformed_sii(intercept, slope, value_type, transform)

    # Simulation (PHE SimulationFunc): draw on the link scale, refit.
    rng = np.random.default_rng(seed)
    n_blocks = 10 if reliability_stat else 1
    mu = link(y, value_type) if linked else y
    draws = rng.normal(mu, se_link, size=(n_blocks * n_sim, k))
    if not transform:
        draws = inverse_link(draws, value_type)
    sim_int, sim_slope = weighted_line(b, draws, pop)
    blocks = np.arange(n_blocks * n_sim).reshape(n_blocks, n_sim)

    x_half = intercept + slope / 2.0  # fitted (link-scale) value at rank 1/2

    def limits(block: np.ndarray, level: float) -> tuple[tuple[float, float], tuple[float, float]]:
        lo_s, hi_s = interval_from_draws(sim_slope[block], level)
        if not transform:
            lo_r, hi_r = interval_from_draws(
                (sim_int[block] + sim_slope[block]) / sim_int[block], level
            )
            return (lo_s, hi_s), (lo_r, hi_r)
        # PHE: keep the fitted value at rank 1/2 and vary the link-scale slope.
        s = np.array([lo_s, hi_s])
        y1 = inverse_link(x_half + s / 2.0, value_type)
        y0 = inverse_link(x_half - s / 2.0, value_type)
        return tuple((y1 - y0).tolist()), tuple((y1 / y0).tolist())

    sii_ci: dict[float, tuple[float, float]] = {}
    rii_ci: dict[float, tuple[float, float]] = {}
    reliability: dict[str, float] = {}
    for level in levels:
        per_block = [limits(blocks[j], level) for j in range(n_blocks)]
        sii_ci[level], rii_ci[level] = per_block[0]
        if reliability_stat:
            tag = level_tag(level)
            sii_lims = np.array([p[0] for p in per_block])
            rii_lims = np.array([p[1] for p in per_block])
            reliability[f"sii_mad{tag}"] = float(np.mean(np.abs(sii_lims[1:] - sii_lims[0])))
            if rii:
                reliability[f"rii_mad{tag}"] = float(np.mean(np.abs(rii_lims[1:] - rii_lims[0])))

    first = blocks[0]
    if transform:
        sim_sii = inverse_link(x_half + sim_slope[first] / 2.0, value_type) - inverse_link(
            x_half - sim_slope[first] / 2.0, value_type
        )
    else:
        sim_sii = sim_slope[first]
    lo, hi = sii_ci[levels[0]]
    notes.append(f"transform: {TRANSFORM_NAMES[value_type] if transform else 'none'}")
    notes.append(f"CI: simulation, {n_sim} repetitions")
    return SIIResult(
        sii=float(est_sii),
        sii_lower=lo,
        sii_upper=hi,
        confidence=levels,
        sii_ci=sii_ci,
        method="phe",
        value_type=value_type,
        transform=transform,
        intercept=float(est_y0),
        rii=float(est_rii) if rii else None,
        rii_lower=rii_ci[levels[0]][0] if rii else None,
        rii_upper=rii_ci[levels[0]][1] if rii else None,
        rii_ci=rii_ci if rii else None,
        se=float(np.std(sim_sii, ddof=1)),
        n_quantiles=k,
        reliability=reliability or None,
        replicates=sim_sii,
        notes=tuple(notes),
        meta={
            "relative_rank": b,
            "population_share": pop / pop.sum(),
            "link_intercept": float(intercept),
            "link_slope": float(slope),
        },
    )


def _order(quantile_order: Sequence | np.ndarray | None, k: int) -> np.ndarray:
    if quantile_order is None:
        return np.arange(k)
    labels = np.asarray(quantile_order)
    if labels.size != k:
        raise SIIInputError(f"quantile_order has {labels.size} labels for {k} quantiles")
    if np.unique(labels).size != k:
        raise SIIInputError("quantile_order labels must be unique (one row per quantile)")
    return np.argsort(labels, kind="stable")


def _link_scale_se(
    y: np.ndarray,
    order: np.ndarray,
    se: Sequence[float] | np.ndarray | None,
    lower: Sequence[float] | np.ndarray | None,
    upper: Sequence[float] | np.ndarray | None,
    ci_level: float,
    se_scale: str,
    value_type: str,
) -> tuple[np.ndarray, list[str]]:
    """Standard errors on the simulation (link) scale, as PHE derives them."""
    k = y.size
    if se is not None:
        if lower is not None or upper is not None:
            raise SIIInputError("give either se or lower/upper confidence limits, not both")
        s = np.asarray(se, dtype=float).ravel()
        if s.size != k:
            raise SIIInputError(f"se has {s.size} entries for {k} quantiles")
        s = s[order]
        bad = np.flatnonzero(~np.isfinite(s) | (s < 0))
        if bad.size:
            raise SIIInputError(
                f"se must be non-negative and non-missing; bad positions {order[bad][:10].tolist()}"
            )
        if value_type == "other" or se_scale == "link":
            return s, [f"SE supplied ({se_scale} scale)"]
        deriv = 1.0 / y if value_type == "rate" else 1.0 / (y * (1.0 - y))
        return s * deriv, ["SE supplied on natural scale; delta method to link scale"]
    if lower is None or upper is None:
        raise SIIInputError("sii needs se, or both lower and upper confidence limits")
    lo = np.asarray(lower, dtype=float).ravel()
    hi = np.asarray(upper, dtype=float).ravel()
    if lo.size != k or hi.size != k:
        raise SIIInputError(f"lower/upper must have {k} entries (one per quantile)")
    lo, hi = lo[order], hi[order]
    linked = value_type != "other"
    check_values(lo, value_type, name="lower confidence limits", linked=linked)
    check_values(hi, value_type, name="upper confidence limits", linked=linked)
    bad = np.flatnonzero(lo > hi)
    if bad.size:
        raise SIIInputError(f"lower > upper confidence limit at positions {order[bad].tolist()}")
    if not 0 < ci_level < 1:
        raise SIIInputError(f"ci_level must be in (0, 1); got {ci_level}")
    z = norm.ppf(0.5 + ci_level / 2.0)
    s = (link(hi, value_type) - link(lo, value_type)) / z / 2.0
    return s, [f"SE derived from {ci_level:.1%} confidence limits"]

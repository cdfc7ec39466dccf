"""Unit-level SII: weighted regression of each practice's outcome on its own relative rank.

Each practice's rank is :func:`hepcausal.inequality.ranks.relative_rank` (population-weighted
midpoint, 0 = most deprived), exactly the covariate of the Bayesian gradient model, so the slope
here is the classical counterpart of that model's SII.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import numpy as np
from scipy.stats import norm

from hepcausal.inequality.bca import bca_interval, percentile_interval
from hepcausal.inequality.ranks import relative_rank
from hepcausal.inequality.sii_core import (
    SIIInputError,
    SIIResult,
    check_weights,
    parse_confidence,
    weighted_line,
)

SEMethod = Literal["hc0", "hc1", "hc2", "hc3", "bootstrap"]


def sii_unit(
    values: Sequence[float] | np.ndarray,
    weights: Sequence[float] | np.ndarray | None = None,
    *,
    ranks: Sequence[float] | np.ndarray | None = None,
    scores: Sequence[float] | np.ndarray | None = None,
    se_method: SEMethod = "hc1",
    n_boot: int = 1000,
    ci_method: Literal["percentile", "bca"] = "percentile",
    confidence: float | Sequence[float] = 0.95,
    seed: int | np.random.Generator | None = None,
) -> SIIResult:
    """Unit-level SII: WLS slope of ``values`` on relative rank with weights ``weights``.

    Give ``scores`` (deprivation, higher = more deprived; ranks computed with ``weights`` and
    recomputed in every bootstrap resample) or fixed ``ranks`` in [0, 1] (0 = most deprived).
    ``se_method``: heteroskedasticity-consistent sandwich ``'hc0'..'hc3'`` (normal-theory
    interval) or ``'bootstrap'`` (units resampled; ``ci_method`` percentile or BCa).

    Parameters
    ----------
    values : array_like
        One outcome per unit (e.g. practice); all finite; at least 3 units.
    weights : array_like or None, default None
        Non-negative unit weights (e.g. list size) for the ranks and the regression; None:
        equal weights.
    ranks : array_like or None, keyword-only
        Fixed relative ranks in [0, 1], 0 = most deprived.  Give exactly one of ``ranks`` and
        ``scores``.
    scores : array_like or None, keyword-only
        Deprivation scores (higher = more deprived), turned into weighted relative ranks.
    se_method : {"hc0", "hc1", "hc2", "hc3", "bootstrap"}, default "hc1"
        Sandwich standard error with a normal interval, or the unit bootstrap.
    n_boot : int, default 1000
        Bootstrap replicates (``se_method="bootstrap"``).
    ci_method : {"percentile", "bca"}, default "percentile"
        Bootstrap interval (``se_method="bootstrap"``); BCa uses the leave-one-out jackknife.
    confidence : float or sequence of float, default 0.95
        Confidence level(s), as fractions or percentages.
    seed : int or numpy.random.Generator or None, default None
        Seed of the bootstrap.

    Returns
    -------
    SIIResult
        Slope (= SII, least minus most deprived, in the outcome's units), intercept (fitted
        value at rank 0), SE and limits; ``meta["relative_rank"]`` holds the ranks used.

    Raises
    ------
    SIIInputError
        On mismatched lengths, non-finite values, invalid weights or ranks, both or neither of
        ``ranks``/``scores``, fewer than 3 units, a single distinct rank, or an unknown
        ``se_method``/``ci_method``.
    """
    y = np.asarray(values, dtype=float).ravel()
    n = y.size
    w = np.ones(n) if weights is None else np.asarray(weights, dtype=float).ravel()
    if w.size != n:
        raise SIIInputError(f"weights ({w.size}) and values ({n}) differ in length")
    bad = np.flatnonzero(~np.isfinite(y))
    if bad.size:
        raise SIIInputError(
            f"values has missing/non-finite entries at positions {bad[:10].tolist()}"
        )
    check_weights(w, name="weights")
    if (ranks is None) == (scores is None):
        raise SIIInputError("give exactly one of ranks or scores")
    if n < 3:
        raise SIIInputError(f"sii_unit needs at least 3 units; got {n}")
    if scores is not None:
        s = np.asarray(scores, dtype=float).ravel()
        if s.size != n:
            raise SIIInputError(f"scores ({s.size}) and values ({n}) differ in length")
        r = relative_rank(s, w)
    else:
        s = None
        r = np.asarray(ranks, dtype=float).ravel()
        if r.size != n:
            raise SIIInputError(f"ranks ({r.size}) and values ({n}) differ in length")
        bad = np.flatnonzero(~np.isfinite(r) | (r < 0) | (r > 1))
        if bad.size:
            raise SIIInputError(f"ranks must lie in [0, 1]; bad positions {bad[:10].tolist()}")
    if np.ptp(r) == 0:
        raise SIIInputError("all units have the same rank; the slope is not identified")
    levels = parse_confidence(confidence, low=0.5)
    intercept, slope = (float(v) for v in weighted_line(r, y, w))
    notes: list[str] = []
    replicates = None
    cis: dict[float, tuple[float, float]] = {}
    if se_method in ("hc0", "hc1", "hc2", "hc3"):
        se = _sandwich_se(r, y, w, intercept, slope, se_method)
        for level in levels:
            z = norm.ppf(0.5 + level / 2.0)
            cis[level] = (slope - z * se, slope + z * se)
        notes.append(f"CI: normal, {se_method.upper()} sandwich SE")
    elif se_method == "bootstrap":
        if ci_method not in ("percentile", "bca"):
            raise SIIInputError(f"ci_method must be 'percentile' or 'bca'; got {ci_method!r}")
        rng = np.random.default_rng(seed)
        replicates = np.empty(int(n_boot))
        for b in range(int(n_boot)):
            idx = rng.integers(0, n, n)
            rb = relative_rank(s[idx], w[idx]) if s is not None else r[idx]
            replicates[b] = _slope_or_nan(rb, y[idx], w[idx])
        replicates = replicates[np.isfinite(replicates)]
        se = float(np.std(replicates, ddof=1))
        jack = None
        if ci_method == "bca":
            keep = np.ones(n, dtype=bool)
            jack = np.empty(n)
            for i in range(n):
                keep[i] = False
                ri = relative_rank(s[keep], w[keep]) if s is not None else r[keep]
                jack[i] = _slope_or_nan(ri, y[keep], w[keep])
                keep[i] = True
        for level in levels:
            if jack is not None:
                cis[level] = bca_interval(slope, replicates, [jack], level)[:2]
            else:
                cis[level] = percentile_interval(replicates, level)
        notes.append(
            f"CI: {ci_method} bootstrap of units, {replicates.size} replicates"
            + ("; ranks recomputed per resample" if s is not None else "")
        )
    else:
        raise SIIInputError(f"se_method must be one of hc0..hc3 or 'bootstrap'; got {se_method!r}")
    return SIIResult(
        sii=slope,
        sii_lower=cis[levels[0]][0],
        sii_upper=cis[levels[0]][1],
        confidence=levels,
        sii_ci=cis,
        method=f"unit_{se_method}",
        intercept=intercept,
        se=float(se),
        n_units=n,
        replicates=replicates,
        notes=tuple(notes),
        meta={"relative_rank": r},
    )


def _slope_or_nan(r: np.ndarray, y: np.ndarray, w: np.ndarray) -> float:
    if np.ptp(r) == 0:
        return float("nan")
    return float(weighted_line(r, y, w)[1])


def _sandwich_se(
    r: np.ndarray, y: np.ndarray, w: np.ndarray, intercept: float, slope: float, kind: str
) -> float:
    """Heteroskedasticity-consistent SE of the WLS slope (as statsmodels ``WLS`` cov_type HCk)."""
    n = r.size
    x = np.column_stack([np.ones(n), r])
    bread = np.linalg.inv(x.T @ (w[:, None] * x))
    e = y - intercept - slope * r
    u2 = w * e**2  # squared residuals of the sqrt(w)-scaled regression
    if kind in ("hc2", "hc3"):
        h = w * np.einsum("ij,jk,ik->i", x, bread, x)
        u2 = u2 / (1.0 - h) if kind == "hc2" else u2 / (1.0 - h) ** 2
    meat = (x * (w * u2)[:, None]).T @ x
    cov = bread @ meat @ bread
    if kind == "hc1":
        cov *= n / (n - 2.0)
    return float(np.sqrt(cov[1, 1]))

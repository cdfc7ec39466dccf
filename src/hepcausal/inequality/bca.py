"""Bootstrap confidence intervals: percentile and BCa with (stratified) jackknife acceleration.

Follows Efron & Tibshirani (1993) sections 14.3 and 15.4 (eq. 15.36), as does
``scipy.stats.bootstrap(method='BCa')``, where independent samples play the role of strata.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy.special import ndtr, ndtri


def jackknife_acceleration(jackknife: Sequence[np.ndarray]) -> float:
    """Acceleration ``a`` from leave-one-out statistics, one array per stratum.

    ``U_i = (n_h - 1) (mean_h - theta_(-i))``;
    ``a = sum_h sum_i U_i^3 / n_h^3 / (6 (sum_h sum_i U_i^2 / n_h^2)^(3/2))``.

    Parameters
    ----------
    jackknife : sequence of numpy.ndarray
        One array per stratum: the statistic recomputed leaving out each unit of that stratum
        in turn (``theta_(-i)``); each needs at least 2 entries.

    Returns
    -------
    float
        The acceleration ``a``; 0 when every leave-one-out statistic equals its stratum mean.

    Raises
    ------
    ValueError
        When a stratum has fewer than 2 units.
    """
    num = den = 0.0
    for theta_i in jackknife:
        theta_i = np.asarray(theta_i, dtype=float)
        n = float(theta_i.size)
        if n < 2:
            raise ValueError("each stratum needs at least 2 units for the jackknife")
        u = (n - 1.0) * (theta_i.mean() - theta_i)
        num += float(np.sum(u**3)) / n**3
        den += float(np.sum(u**2)) / n**2
    if den == 0.0:
        return 0.0
    return num / (6.0 * den**1.5)


def bias_correction(theta_hat: float, replicates: np.ndarray) -> float:
    """``z0 = Phi^-1(share of replicates below theta_hat)``, ties counted half (as scipy)."""
    reps = np.asarray(replicates, dtype=float)
    share = (np.count_nonzero(reps < theta_hat) + np.count_nonzero(reps <= theta_hat)) / (
        2.0 * reps.size
    )
    return float(ndtri(share))


def bca_interval(
    theta_hat: float,
    replicates: np.ndarray,
    jackknife: Sequence[np.ndarray],
    level: float = 0.95,
) -> tuple[float, float, dict[str, float]]:
    """BCa limits at ``level`` from bootstrap replicates and per-stratum jackknife statistics.

    Returns ``(lower, upper, {"z0", "acceleration", "alpha_lower", "alpha_upper"})``; limits are
    linear-interpolated quantiles of the replicates (scipy's convention).  NaN when the bootstrap
    distribution is degenerate (all replicates on one side of ``theta_hat``).

    Parameters
    ----------
    theta_hat : float
        The statistic on the original sample.
    replicates : numpy.ndarray
        Bootstrap replicates of the statistic.
    jackknife : sequence of numpy.ndarray
        Per-stratum leave-one-out statistics (see :func:`jackknife_acceleration`).
    level : float, default 0.95
        Two-sided confidence level, in (0, 1).

    Returns
    -------
    lower, upper : float
        The BCa limits (NaN when degenerate).
    info : dict of str to float
        ``z0`` (bias correction), ``acceleration`` and the adjusted quantile levels
        ``alpha_lower`` and ``alpha_upper``.

    Raises
    ------
    ValueError
        When a jackknife stratum has fewer than 2 units.
    """
    reps = np.asarray(replicates, dtype=float)
    z0 = bias_correction(theta_hat, reps)
    a = jackknife_acceleration(jackknife)
    alpha = (1.0 - level) / 2.0
    za = float(ndtri(alpha))
    info = {"z0": z0, "acceleration": a}
    if not np.isfinite(z0):
        info.update(alpha_lower=float("nan"), alpha_upper=float("nan"))
        return float("nan"), float("nan"), info
    num1, num2 = z0 + za, z0 - za
    a1 = float(ndtr(z0 + num1 / (1.0 - a * num1)))
    a2 = float(ndtr(z0 + num2 / (1.0 - a * num2)))
    info.update(alpha_lower=a1, alpha_upper=a2)
    lo, hi = np.quantile(reps, [a1, a2])
    return float(lo), float(hi), info


def percentile_interval(replicates: np.ndarray, level: float = 0.95) -> tuple[float, float]:
    """Equal-tailed percentile limits (linear interpolation).

    Parameters
    ----------
    replicates : numpy.ndarray
        Bootstrap replicates of the statistic.
    level : float, default 0.95
        Two-sided confidence level, in (0, 1); the limits are the ``(1 - level) / 2`` and
        ``(1 + level) / 2`` quantiles.

    Returns
    -------
    lower, upper : float
        The percentile limits.
    """
    alpha = (1.0 - level) / 2.0
    lo, hi = np.quantile(np.asarray(replicates, dtype=float), [alpha, 1.0 - alpha])
    return float(lo), float(hi)

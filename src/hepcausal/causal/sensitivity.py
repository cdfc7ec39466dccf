"""Bayesian parallel-trends sensitivity of an event study (in the spirit of Rambachan & Roth).

An event-study coefficient is ``beta_t = tau_t + delta_t``: the effect plus the violation of
parallel trends (``delta_ref = 0`` at the reference year).  Before the start the effect is zero,
so the pre-period coefficients ARE the pre-period violations.  Years ``t`` are counted from the
reference year (``t = year - ref``); ``t_L`` is the last pre-period year (the reference year
itself by default, ``t_L = 0``) and ``tau = t - t_L`` the years since it.  Two classes of
post-period violations are allowed, the classes of Rambachan & Roth (2023) as implemented in
HonestDiD (``R/deltarm.R``, ``R/deltasd.R``; checked against a port of their constraint matrices
in ``tests/test_sensitivity.py``):

* **relative magnitudes** ``Delta^RM(Mbar)``: every post-period first difference of ``delta``
  (the first one from ``t_L``) is at most ``Mbar`` times the largest pre-period first difference
  ``m = max_pre |delta_s - delta_s'|`` over consecutive pre-period years *including the step
  into the reference year* (``delta_ref = 0``); so ``|delta_t - delta_L| <= Mbar * m * tau``;
* **smoothness** ``Delta^SD(M)``: the slope of ``delta`` changes by at most ``M`` per year from
  the last pre-period slope ``s0`` (the step into ``t_L``); so ``delta_t in delta_L + s0 * tau
  +- M * tau (tau + 1) / 2`` (``M = 0``: the pre-trend continues linearly).

With consecutive years HonestDiD's first differences are one year apart; with a missing year
(e.g. QOF 2020/21) the differences here are per year of gap.  The target is the average
post-period effect ``theta = sum_t l_t tau_t`` (``l`` the weights of ``target``; the event
study's ``post_mean`` by default, HonestDiD's ``l_vec``).  Per posterior draw both classes make
``theta`` an interval (the identified set, the same as HonestDiD's linear programs give for
non-negative ``l``) ``[l'beta_post - hi(l'delta), l'beta_post - lo(l'delta)]``; the result
reports the posterior means of its bounds and the robust credible interval
``[q_{a/2}(lower bound), q_{1-a/2}(upper bound)]``, which contains the identified set with
posterior probability at least ``1 - a`` (a union bound over the two tails).  The *breakdown
value* is the smallest ``Mbar`` (or ``M``) at which that interval includes 0.

This is a per-draw (robust Bayes) version: unlike HonestDiD's frequentist confidence sets
(conditional / hybrid tests, FLCIs) it needs no normal approximation and inherits the fitted
model's error model, but it is not the same object; it is somewhat more conservative.  On
HonestDiD's Medicaid example (README; first post year) it gives breakdown values Mbar = 1.64
(HonestDiD: between 1.5 and 2) and M = 0.019 (HonestDiD: between 0.02 and 0.03), checked in
the tests; in
particular ``SD(M)`` here constrains only the post-period path (HonestDiD's confidence sets use
the post-period moments only too; the posterior probability that the pre-period path itself
satisfies ``SD(M)`` is reported alongside).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd

from hepcausal.causal.event_study import EventStudyFit, fit_event_study
from hepcausal.spec import Design, Inference

__all__ = [
    "DEFAULT_M",
    "DEFAULT_MBAR",
    "PathDraws",
    "SensitivityResult",
    "breakdown_value",
    "ddd_sensitivity",
    "identified_set",
    "robust_interval",
    "trend_sensitivity",
]

Restriction = Literal["relative_magnitude", "smoothness"]
DEFAULT_MBAR = (0.0, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0)
DEFAULT_M = (0.0, 0.005, 0.01, 0.02, 0.04)  # outcome units per year^2; rescaled by default
_BISECT_STEPS = 40


@dataclass
class PathDraws:
    """Pre- and post-period coefficient draws of one event study, on years from the reference.

    Parameters
    ----------
    pre : numpy.ndarray
        n_draws x k_pre pre-period coefficients (the violations; reference year excluded).
    post : numpy.ndarray
        n_draws x k_post post-period coefficients.
    t_pre, t_post : numpy.ndarray
        Their years counted from the reference year (pre negative unless the reference is not
        the last pre-period year; post positive).
    target_weights : numpy.ndarray
        Non-negative weights ``l`` of the post years in the target (sum 1).
    """

    pre: np.ndarray  # n_draws x k_pre (violations, reference excluded)
    post: np.ndarray  # n_draws x k_post
    t_pre: np.ndarray  # years from the reference (negative)
    t_post: np.ndarray  # years from the reference (positive)
    target_weights: np.ndarray  # weights of the post years in theta (sum 1)


def _path_draws(fit: EventStudyFit, target: str | int = "post_mean") -> PathDraws:
    if fit.design is None:
        raise ValueError("the event-study fit has no design (was it loaded from disk?)")
    kind = fit.target
    ref = fit.reference_year
    start = fit.design.start_year
    pre_years: list[Any] = []
    post_years: list[Any] = []
    for year in fit.design.times:
        if year == ref or f"{kind}[{year}]" not in fit.terms:
            continue
        (pre_years if year < start else post_years).append(year)
    if not pre_years:
        raise ValueError(
            "parallel-trends sensitivity needs at least one pre-period coefficient besides the "
            f"reference year {ref}; the fit has none"
        )
    if not post_years:
        raise ValueError("parallel-trends sensitivity needs post-period coefficients")
    if target == "post_mean":
        w = np.full(len(post_years), 1.0 / len(post_years))
    else:
        if target not in post_years:
            raise ValueError(
                f"target must be 'post_mean' or a post-period year {post_years}; got {target!r}"
            )
        w = np.array([1.0 if y == target else 0.0 for y in post_years])
    pre = np.column_stack([fit.draws(f"{kind}[{y}]") for y in pre_years])
    post = np.column_stack([fit.draws(f"{kind}[{y}]") for y in post_years])
    return PathDraws(
        pre=pre,
        post=post,
        t_pre=np.array([int(y) - int(ref) for y in pre_years], dtype=float),
        t_post=np.array([int(y) - int(ref) for y in post_years], dtype=float),
        target_weights=w,
    )


def _pre_path(p: PathDraws) -> tuple[np.ndarray, np.ndarray]:
    """Pre-period violation paths including the reference year (0), sorted by time."""
    t = np.concatenate([p.t_pre, [0.0]])
    d = np.column_stack([p.pre, np.zeros(p.pre.shape[0])])
    order = np.argsort(t)
    return t[order], d[:, order]


def _max_pre_slope(p: PathDraws) -> np.ndarray:
    t, d = _pre_path(p)
    slopes = np.diff(d, axis=1) / np.diff(t)
    return np.max(np.abs(slopes), axis=1)


def _last_pre_slope(p: PathDraws) -> np.ndarray:
    t, d = _pre_path(p)
    return (d[:, -1] - d[:, -2]) / (t[-1] - t[-2])


def _last_pre_point(p: PathDraws) -> tuple[float, np.ndarray]:
    """Time ``t_L`` and violation draws ``delta_L`` of the last pre-period year (or reference)."""
    t, d = _pre_path(p)
    return float(t[-1]), d[:, -1]


def _pre_curvature(p: PathDraws) -> np.ndarray:
    """Largest absolute change of slope per year in the pre-period path (NaN with < 3 points)."""
    t, d = _pre_path(p)
    if t.size < 3:
        return np.full(d.shape[0], np.nan)
    slopes = np.diff(d, axis=1) / np.diff(t)
    mid = (t[1:] + t[:-1]) / 2
    return np.max(np.abs(np.diff(slopes, axis=1) / np.diff(mid)), axis=1)


def identified_set(
    paths: PathDraws, restriction: Restriction, bound: float
) -> tuple[np.ndarray, np.ndarray]:
    """Per-draw lower and upper bounds of the target effect under one restriction.

    Parameters
    ----------
    paths : PathDraws
        Event-study coefficient draws (see :func:`trend_sensitivity`).
    restriction : {"relative_magnitude", "smoothness"}
        The class of post-period violations.
    bound : float
        ``Mbar`` (relative magnitudes, dimensionless) or ``M`` (smoothness, outcome units per
        year squared); >= 0.

    Returns
    -------
    tuple of numpy.ndarray
        Lower and upper bounds, one per draw.
    """
    if bound < 0 or not np.isfinite(bound):
        raise ValueError(f"the sensitivity bound must be a finite number >= 0; got {bound}")
    w = paths.target_weights
    t_last, d_last = _last_pre_point(paths)
    tau = paths.t_post - t_last  # years since the last pre-period year (t_L = 0: reference)
    beta = paths.post @ w
    level = d_last * float(w.sum())  # the post-period path starts from (t_L, delta_L)
    if restriction == "relative_magnitude":
        half = bound * _max_pre_slope(paths) * float(w @ tau)
        centre = level
    elif restriction == "smoothness":
        centre = level + _last_pre_slope(paths) * float(w @ tau)
        half = np.full_like(beta, bound * float(w @ (tau * (tau + 1) / 2)))
    else:
        raise ValueError(
            f"restriction must be 'relative_magnitude' or 'smoothness'; got {restriction!r}"
        )
    return beta - centre - half, beta - centre + half


@dataclass
class SensitivityResult:
    """Posterior of the identified set of the post-period effect over a grid of bounds.

    ``table`` has one row per (restriction, bound): ``lower_mean``, ``upper_mean`` (posterior
    means of the bounds), ``robust_low``, ``robust_high`` (robust credible interval at
    ``prob``), ``includes_zero``, and for smoothness ``p_pre_consistent`` (posterior
    probability that the pre-period path satisfies the bound).  ``breakdown`` maps each
    restriction to the smallest bound at which the robust interval includes 0 (0.0 when the
    interval already includes 0 without violations; inf when it never does, impossible for
    relative magnitudes once the pre-period slope is nonzero).
    """

    table: pd.DataFrame
    breakdown: dict[str, float]
    estimand: str
    prob: float
    original: dict[str, float] = field(default_factory=dict)
    meta: dict[str, Any] = field(default_factory=dict)

    def summary(self) -> pd.DataFrame:
        """The sensitivity table with the breakdown value of each restriction as a column.

        Returns
        -------
        pandas.DataFrame
            :attr:`table` plus ``breakdown`` and ``estimand``.
        """
        df = self.table.copy()
        df["breakdown"] = df["restriction"].map(self.breakdown)
        df["estimand"] = self.estimand
        return df

    def sentence(self) -> str:
        """One plain-language reading of the breakdown values.

        Returns
        -------
        str
            E.g. "The 95% robust interval of ... includes 0 once post-period violations may
            reach 0.4 times the largest pre-period change (relative magnitudes) ...".
        """
        pct = f"{100 * self.prob:g}%"
        rm = self.breakdown.get("relative_magnitude")
        sd = self.breakdown.get("smoothness")
        parts = []
        if rm is not None:
            if rm == 0.0:
                parts.append(f"the {pct} interval includes 0 even with exact parallel trends")
            else:
                parts.append(
                    f"the {pct} robust interval includes 0 once post-period violations may reach "
                    f"{rm:.3g} times the largest pre-period year-on-year change (relative "
                    "magnitudes)"
                )
        if sd is not None and (rm is None or rm > 0):
            if sd == 0.0:
                parts.append(
                    "it already includes 0 when the pre-period trend is extrapolated linearly "
                    "(smoothness M = 0)"
                )
            elif np.isfinite(sd):
                parts.append(f"under smoothness, at M = {sd:.3g} per year squared")
        return f"{self.estimand}: " + "; ".join(parts) + "."


def robust_interval(lo: np.ndarray, hi: np.ndarray, prob: float) -> tuple[float, float]:
    """Robust credible interval of an identified set from its per-draw bounds.

    Parameters
    ----------
    lo, hi : numpy.ndarray
        Lower and upper bounds of the identified set, one per draw.
    prob : float
        Credible mass.

    Returns
    -------
    tuple of float
        ``(q_{a/2}(lo), q_{1-a/2}(hi))``, ``a = 1 - prob``: contains the identified set with
        posterior probability at least ``prob``.
    """
    a = (1 - prob) / 2
    return float(np.quantile(lo, a)), float(np.quantile(hi, 1 - a))


_robust = robust_interval


def _includes_zero(paths: PathDraws, restriction: Restriction, bound: float, prob: float) -> bool:
    lo, hi = identified_set(paths, restriction, bound)
    r_lo, r_hi = _robust(lo, hi, prob)
    return r_lo <= 0.0 <= r_hi


def breakdown_value(
    paths: PathDraws, restriction: Restriction, prob: float, scale: float | None = None
) -> float:
    """Smallest bound at which the robust interval of the target includes 0 (bisection).

    Parameters
    ----------
    paths : PathDraws
        Event-study coefficient draws.
    restriction : {"relative_magnitude", "smoothness"}
        The class of post-period violations.
    prob : float
        Credible mass of the robust interval.
    scale : float, optional
        First bracket of the search (default 1 for ``Mbar``, the posterior-mean largest
        pre-period slope for ``M``).

    Returns
    -------
    float
        0.0 when the interval includes 0 under parallel trends; inf when it never does.
    """
    if scale is None:
        scale = (
            1.0 if restriction == "relative_magnitude" else float(np.mean(_max_pre_slope(paths)))
        )
    return _breakdown(paths, restriction, prob, max(scale, 1e-12))


def _breakdown(paths: PathDraws, restriction: Restriction, prob: float, scale: float) -> float:
    if _includes_zero(paths, restriction, 0.0, prob):
        return 0.0
    hi = scale
    for _ in range(60):
        if _includes_zero(paths, restriction, hi, prob):
            break
        hi *= 2
    else:
        return float("inf")
    lo = 0.0
    for _ in range(_BISECT_STEPS):
        mid = (lo + hi) / 2
        if _includes_zero(paths, restriction, mid, prob):
            hi = mid
        else:
            lo = mid
    return hi


def trend_sensitivity(
    fit: EventStudyFit,
    *,
    mbar: Sequence[float] = DEFAULT_MBAR,
    m: Sequence[float] | None = None,
    target: str | int = "post_mean",
    prob: float | None = None,
) -> SensitivityResult:
    """Bayesian sensitivity of the event study's post-period effect to parallel-trends failure.

    Parameters
    ----------
    fit : EventStudyFit
        An event-study fit (``target='gradient'``: the DDD design; ``'level'``: the DiD).
    mbar : sequence of float
        Relative-magnitude bounds ``Mbar`` to tabulate.
    m : sequence of float, optional
        Smoothness bounds ``M`` (outcome units per year squared); default: 0, 0.25, 0.5, 1
        and 2 times the posterior-mean largest pre-period slope per year.
    target : "post_mean" or int
        The average post-period effect (the event study's ``post_mean``) or one post year.
    prob : float, optional
        Credible mass of the robust interval (default the fit's ``hdi_prob``, else 0.95).

    Returns
    -------
    SensitivityResult
        Table, breakdown values and the unrestricted (parallel-trends) interval.
    """
    p = prob if prob is not None else float(fit.meta.get("hdi_prob") or 0.95)
    if not 0 < p < 1:
        raise ValueError(f"prob must lie in (0, 1); got {p}")
    paths = _path_draws(fit, target)
    slope_scale = float(np.mean(_max_pre_slope(paths)))
    if m is None:
        m = [f * slope_scale for f in (0.0, 0.25, 0.5, 1.0, 2.0)]
    curv = _pre_curvature(paths)
    rows = []
    for restriction, grid in (("relative_magnitude", mbar), ("smoothness", m)):
        for b in grid:
            lo, hi = identified_set(paths, restriction, float(b))  # type: ignore[arg-type]
            r_lo, r_hi = _robust(lo, hi, p)
            row: dict[str, Any] = {
                "restriction": restriction,
                "bound": float(b),
                "lower_mean": float(lo.mean()),
                "upper_mean": float(hi.mean()),
                "robust_low": r_lo,
                "robust_high": r_hi,
                "includes_zero": bool(r_lo <= 0.0 <= r_hi),
                "p_pre_consistent": np.nan,
            }
            if restriction == "smoothness" and np.isfinite(curv).all():
                row["p_pre_consistent"] = float(np.mean(curv <= float(b)))
            rows.append(row)
    table = pd.DataFrame(rows)
    breakdown = {
        "relative_magnitude": _breakdown(paths, "relative_magnitude", p, 1.0),
        "smoothness": _breakdown(paths, "smoothness", p, max(slope_scale, 1e-12)),
    }
    beta = paths.post @ paths.target_weights
    lo0, hi0 = _robust(beta, beta, p)
    name = f"{fit.target} post_mean" if target == "post_mean" else f"{fit.target}[{target}]"
    return SensitivityResult(
        table=table,
        breakdown=breakdown,
        estimand=f"{name} ({fit.meta.get('outcome', '?')}, treated {fit.meta.get('treated')})",
        prob=p,
        original={"mean": float(beta.mean()), "low": lo0, "high": hi0},
        meta={
            "reference_year": fit.reference_year,
            "pre_years": [int(t + int(fit.reference_year)) for t in paths.t_pre],
            "post_years": [int(t + int(fit.reference_year)) for t in paths.t_post],
            "max_pre_slope_mean": slope_scale,
            "interval": "robust: [q_a/2(lower bound), q_1-a/2(upper bound)] over draws",
        },
    )


def ddd_sensitivity(
    panel: pd.DataFrame,
    outcome: str,
    design: Design | None = None,
    inference: Inference | None = None,
    **kwargs: Any,
) -> tuple[EventStudyFit, SensitivityResult]:
    """Sensitivity of the DDD design: fit its event study (``target='gradient'``), then bound.

    The DDD's default error model (``"prepost"``: each practice's pre-to-post change) has no
    pre-period coefficients, so the bounds cannot come from the DDD posterior itself: they are
    computed from the event study of the same design (same panel, treated ICS, comparators,
    rank, start year; the event study's registry defaults: row-level errors, Gaussian, reference
    year ``start_year - 1``), whose ``post_mean`` (the average post-period gradient change
    relative to the reference year) is the year-by-year analogue of the DDD's
    ``delta_gradient``.  The result bounds that ``post_mean``; read it next to the DDD's
    estimate, not as a transformation of it.

    Parameters
    ----------
    panel, outcome, design, inference
        As :func:`hepcausal.causal.did.fit_ddd` (the same design, fitted year by year).
    **kwargs
        Passed to :func:`trend_sensitivity` (``mbar``, ``m``, ``target``, ``prob``).

    Returns
    -------
    tuple
        The event-study fit and its :class:`SensitivityResult`.
    """
    fit = fit_event_study(panel, outcome, design, inference, target="gradient")
    return fit, trend_sensitivity(fit, **kwargs)

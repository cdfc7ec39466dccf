"""Synthetic difference-in-differences (Arkhangelsky, Athey, Hirshberg, Imbens & Wager 2021).

On a wide ``time x unit`` panel with one or more treated units adopting at ``start``:

* **unit weights** ``omega`` (simplex over the controls, plus an intercept = unit fixed effect):
  ``argmin ||A omega + omega_0 - b||^2 + zeta_omega^2 T0 ||omega||^2`` where ``A`` is the
  controls' pre-period outcomes (``T0 x N0``) and ``b`` the treated units' mean pre-period
  series, with the paper's regularisation ``zeta_omega = (N1 T1)^(1/4) sigma``, ``sigma`` the SD
  of the controls' pre-period first differences;
* **time weights** ``lambda`` (simplex over the pre-periods, plus an intercept = time fixed
  effect): ``argmin ||B lambda + lambda_0 - c||^2 + zeta_lambda^2 N0 ||lambda||^2`` with ``B`` the
  controls' pre-period outcomes (``N0 x T0``), ``c`` their post-period means and
  ``zeta_lambda = 1e-6 sigma``;
* the estimate is the weighted two-way fixed-effects DiD
  ``tau = (ybar_tr,post - lambda' y_tr,pre) - omega' (ybar_co,post - Y_co,pre lambda)``.

The intercepts are profiled out by centring (as the paper's solver does); each weight problem is
then solved exactly (a ridge-penalised least-squares problem on the simplex,
:func:`hepcausal.models.synthetic_control.simplex_weights`) instead of by Frank-Wolfe iterations.
The synthetic control (``estimator='sc'``: no time weights, no unit intercept, ``zeta = 1e-6
sigma``) and the DiD (``'did'``: uniform weights) are the paper's comparisons.

Uncertainty: the paper's placebo variance (its Algorithm 4): ``replications`` times, ``N1``
controls drawn at random are labelled treated and the estimator is recomputed on the controls
only; ``V = var(tau_b)``.  The reported "draws" (``posterior["estimand"]``) are from the normal
approximation ``N(tau, V)`` the paper uses for its confidence intervals; they are not a posterior.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import arviz as az
import numpy as np
import pandas as pd
import xarray as xr

from hepcausal.diagnostics import Diagnostics
from hepcausal.models.priors import Priors
from hepcausal.models.synthetic_control import simplex_weights
from hepcausal.results import FitResult, append_terms
from hepcausal.summaries import summarise_effect

SdidEstimator = Literal["sdid", "sc", "did"]

__all__ = ["SdidEstimator", "SdidFit", "SdidPriors", "fit_sdid", "sdid_estimate"]


@dataclass(frozen=True)
class SdidPriors(Priors):
    """Regularisation of the synthetic DiD (it has no priors; the paper's values by default).

    Parameters
    ----------
    zeta_scale : float
        Multiplier of the paper's unit-weight regularisation ``zeta_omega`` (1 = the paper's).
    """

    zeta_scale: float = 1.0


@dataclass(frozen=True)
class _Estimate:
    tau: float
    omega: np.ndarray  # (N0,)
    lam: np.ndarray  # (T0,)
    zeta_omega: float
    zeta_lambda: float
    noise: float


def _centre(M: np.ndarray, axis: int) -> np.ndarray:
    return M - M.mean(axis=axis, keepdims=True)


def sdid_estimate(
    Y: np.ndarray, n0: int, t0: int, estimator: SdidEstimator = "sdid"
) -> tuple[float, np.ndarray, np.ndarray, dict[str, float]]:
    """Point estimate and weights on a ``units x time`` matrix (controls first, pre-periods first).

    Parameters
    ----------
    Y : numpy.ndarray
        ``(N, T)`` outcomes; rows ``:n0`` are controls, columns ``:t0`` pre-periods.
    n0 : int
        Number of controls.
    t0 : int
        Number of pre-periods.
    estimator : {"sdid", "sc", "did"}
        Synthetic DiD, synthetic control or DiD (the paper's three).

    Returns
    -------
    (float, numpy.ndarray, numpy.ndarray, dict)
        ``tau``, unit weights ``omega`` ``(n0,)``, time weights ``lambda`` ``(t0,)`` and the
        regularisation (``zeta_omega``, ``zeta_lambda``, ``noise``).
    """
    e = _estimate(np.asarray(Y, dtype=float), n0, t0, estimator)
    reg = {"zeta_omega": e.zeta_omega, "zeta_lambda": e.zeta_lambda, "noise": e.noise}
    return e.tau, e.omega, e.lam, reg


def _estimate(
    Y: np.ndarray, n0: int, t0: int, estimator: SdidEstimator, zeta_scale: float = 1.0
) -> _Estimate:
    N, T = Y.shape
    n1, t1 = N - n0, T - t0
    co_pre = Y[:n0, :t0]
    noise = float(np.diff(co_pre, axis=1).std(ddof=1)) if t0 > 1 else 0.0
    b = Y[n0:, :t0].mean(axis=0)  # treated mean pre-period series (t0,)
    if estimator == "did":
        omega, lam = np.full(n0, 1.0 / n0), np.full(t0, 1.0 / t0)
        z_o = z_l = 0.0
    elif estimator == "sc":
        z_o, z_l = 1e-6 * noise, 0.0
        omega = simplex_weights(co_pre.T, b, ridge=z_o**2 * t0)
        lam = np.zeros(t0)
    else:
        z_o = zeta_scale * (n1 * t1) ** 0.25 * noise
        z_l = 1e-6 * noise
        omega = simplex_weights(_centre(co_pre.T, 0), b - b.mean(), ridge=z_o**2 * t0)
        c = Y[:n0, t0:].mean(axis=1)
        lam = simplex_weights(_centre(co_pre, 0), c - c.mean(), ridge=z_l**2 * n0)
    tr_post = Y[n0:, t0:].mean()
    co_post = Y[:n0, t0:].mean(axis=1)
    tr_pre = float(b @ lam)
    co_pre_l = co_pre @ lam
    tau = float((tr_post - tr_pre) - omega @ (co_post - co_pre_l))
    return _Estimate(tau, omega, lam, z_o, z_l, noise)


@dataclass(repr=False)
class SdidFit(FitResult):
    """A synthetic difference-in-differences fit (or its SC / DiD comparisons).

    Estimand (``posterior["estimand"]``): ``att`` = the average effect on the treated units over
    the post-periods (the paper's tau), draws from ``N(tau, placebo variance)``.

    Parameters
    ----------
    treated, start, estimator
        Treated units, first treated period and which estimator.
    tau, se
        Point estimate and placebo standard error.
    unit_weights, time_weights
        ``omega`` (index = control) and ``lambda`` (index = pre-period).
    series
        Index = time: treated mean, the omega-weighted control mean, and that shifted by the
        weighted pre-period difference (the synthetic-DiD counterfactual), ``post`` flag.
    placebo_taus
        The placebo estimates behind ``se``.
    comparison
        ``{estimator: tau}`` of the paper's three estimators on the same data.
    """

    treated: list[str] = field(default_factory=list)
    start: Any = None
    estimator: str = "sdid"
    tau: float = float("nan")
    se: float = float("nan")
    unit_weights: pd.Series = field(default_factory=pd.Series)
    time_weights: pd.Series = field(default_factory=pd.Series)
    series: pd.DataFrame = field(default_factory=pd.DataFrame)
    placebo_taus: np.ndarray = field(default_factory=lambda: np.zeros(0))
    comparison: dict[str, float] = field(default_factory=dict)


def _wide_to_matrix(
    wide: pd.DataFrame, treated: Sequence[str], start: Any, donors: Sequence[str] | None
) -> tuple[np.ndarray, list[str], list[str], int]:
    if not isinstance(wide, pd.DataFrame):
        raise TypeError(f"wide must be a pandas DataFrame (time x unit), got {type(wide).__name__}")
    wide = wide.copy()
    wide.columns = [str(c) for c in wide.columns]
    tr = [str(t) for t in treated]
    missing = [t for t in tr if t not in wide.columns]
    if missing:
        raise KeyError(f"treated unit(s) {missing} are not columns of the panel")
    if start not in wide.index:
        raise KeyError(f"start {start!r} is not in the panel's time index ({list(wide.index)})")
    if not wide.index.is_monotonic_increasing or wide.index.duplicated().any():
        raise ValueError("the panel's time index must be strictly increasing")
    t0 = int(wide.index.get_loc(start))
    if t0 < 2:
        raise ValueError(f"need at least 2 pre-treatment periods before start={start!r}, got {t0}")
    co = [c for c in wide.columns if c not in tr] if donors is None else [str(d) for d in donors]
    bad = [c for c in co if c not in wide.columns or c in tr]
    if bad:
        raise KeyError(f"donors {bad} are not control columns of the panel")
    if len(co) < 2:
        raise ValueError(f"need at least 2 control units, got {len(co)}")
    sub = wide[[*co, *tr]]
    if sub.isna().to_numpy().any():
        cells = [(t, u) for t in sub.index for u in sub.columns if pd.isna(sub.at[t, u])]
        shown = ", ".join(f"unit {u!r} at time {t!r}" for t, u in cells[:5])
        raise ValueError(f"the panel has {len(cells)} missing values: {shown}")
    return sub.to_numpy(dtype=float).T, co, tr, t0


def fit_sdid(
    wide: pd.DataFrame,
    treated: str | Sequence[str],
    start: Any,
    *,
    estimator: SdidEstimator = "sdid",
    donors: Sequence[str] | None = None,
    replications: int = 200,
    priors: SdidPriors | Mapping[str, Any] | None = None,
    seed: int = 20211,
    n_draws: int = 4000,
    hdi_prob: float = 0.95,
    rope: tuple[float, float] | float | None = None,
    units: str = "",
) -> SdidFit:
    """Synthetic DiD (or SC / DiD) with the paper's placebo standard error.

    Parameters
    ----------
    wide : pandas.DataFrame
        ``time x unit`` panel (index strictly increasing).
    treated : str or sequence of str
        Treated unit(s) (columns), all adopting at ``start``.
    start : object
        First treated period.
    estimator : {"sdid", "sc", "did"}
        Which of the paper's estimators is the headline (the other two are in ``comparison``).
    donors : sequence of str, optional
        Control units (default: every other column).
    replications : int
        Placebo replications of the variance (the paper: 200).
    priors : SdidPriors, dict or None
        ``zeta_scale`` (default 1: the paper's regularisation).
    seed : int
        Random seed of the placebo draws and of the normal-approximation draws.
    n_draws : int
        Number of draws of the normal approximation written to ``posterior["estimand"]``.
    hdi_prob : float
        Interval probability.
    rope : tuple or float, optional
        Region of practical equivalence of the headline.
    units : str
        Units of the outcome (for summaries).

    Returns
    -------
    SdidFit
        The fit.
    """
    if estimator not in ("sdid", "sc", "did"):
        raise ValueError(f"estimator must be 'sdid', 'sc' or 'did', got {estimator!r}")
    if replications < 2:
        raise ValueError(f"replications must be >= 2, got {replications}")
    tr_list = [treated] if isinstance(treated, str) else list(treated)
    Y, co, tr, t0 = _wide_to_matrix(wide, tr_list, start, donors)
    n0 = len(co)
    n1 = len(tr)
    if n0 <= n1:
        raise ValueError(f"the placebo variance needs more controls ({n0}) than treated ({n1})")
    zs = SdidPriors.from_any(priors).zeta_scale
    est = _estimate(Y, n0, t0, estimator, zs)
    variants: tuple[SdidEstimator, ...] = ("sdid", "sc", "did")
    comparison: dict[str, float] = {k: _estimate(Y, n0, t0, k, zs).tau for k in variants}
    rng = np.random.default_rng(seed)
    Yc = Y[:n0]
    taus = np.empty(replications)
    for b in range(replications):
        perm = rng.permutation(n0)
        taus[b] = _estimate(Yc[perm], n0 - n1, t0, estimator, zs).tau
    se = float(np.sqrt(taus.var(ddof=1)))
    draws = rng.normal(est.tau, se, size=n_draws)
    chains = 4 if n_draws % 4 == 0 else 1
    shape = (chains, n_draws // chains)
    coords = {"chain": np.arange(shape[0]), "draw": np.arange(shape[1])}
    idata = az.InferenceData(
        posterior=xr.Dataset({"att": (("chain", "draw"), draws.reshape(shape))}, coords=coords)
    )
    append_terms(idata, {"att": draws})
    diag = Diagnostics(
        max_rhat=float("nan"),
        min_ess_bulk=float(n_draws),
        min_ess_tail=float(n_draws),
        n_divergences=0,
        n_draws=shape[1],
        n_chains=shape[0],
        worst_rhat_var="",
        worst_ess_var="",
        problems=(),
    )
    times = list(wide.index)
    tr_mean = Y[n0:].mean(axis=0)
    co_w = est.omega @ Y[:n0]
    shift = float(tr_mean[:t0] @ est.lam - co_w[:t0] @ est.lam) if estimator != "sc" else 0.0
    if estimator == "did":
        shift = float(tr_mean[:t0].mean() - co_w[:t0].mean())
    series = pd.DataFrame(
        {
            "treated": tr_mean,
            "synthetic": co_w,
            "counterfactual": co_w + shift,
            "post": np.arange(len(times)) >= t0,
        },
        index=pd.Index(times, name="time"),
    )
    label = {"sdid": "synthetic DiD", "sc": "synthetic control", "did": "DiD"}[estimator]
    effects = {
        "att": summarise_effect(
            draws,
            name=f"average effect on {', '.join(tr)} over the post-periods ({label})",
            hdi_prob=hdi_prob,
            rope=rope,
            units=units,
            draws_kind="normal approximation with the placebo variance",
        )
    }
    meta = {
        "estimator": "sdid",
        "variant": estimator,
        "treated": tr,
        "start": start,
        "donors": co,
        "n_pre": t0,
        "n_post": len(times) - t0,
        "tau": est.tau,
        "se": se,
        "variance": "placebo",
        "replications": replications,
        "zeta_omega": est.zeta_omega,
        "zeta_lambda": est.zeta_lambda,
        "noise_level": est.noise,
        "comparison": comparison,
        "draws": "normal approximation N(tau, placebo variance), not a posterior",
    }
    return SdidFit(
        idata=idata,
        diagnostics=diag,
        effects=effects,
        meta=meta,
        treated=tr,
        start=start,
        estimator=estimator,
        tau=est.tau,
        se=se,
        unit_weights=pd.Series(est.omega, index=pd.Index(co, name="donor"), name="omega"),
        time_weights=pd.Series(est.lam, index=pd.Index(times[:t0], name="time"), name="lambda"),
        series=series,
        placebo_taus=taus,
        comparison=comparison,
    )

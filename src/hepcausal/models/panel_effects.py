"""The panel-effects model behind DiD, DDD, event study and dose-response (PyMC and Stan).

On the standardised outcome ``y* = (y - mean) / sd`` (row ``n``: unit ``i`` in group ``g``,
year ``t``, group-year cell ``c = (g, t)``, centred rank ``x = r - 0.5``)::

    y*_n = m_g + tau_t + a_i                               # ICB means, year effects, practices
         + sigma_cell * dc(z)_gt                           # ICB x year level shocks
         + sigma_trend * w_g * time_n                      # optional ICB-specific trends
         + x_n * (b_g + beta_t + sigma_cell_gradient * dc(v)_gt)  # gradient (DDD / event)
         + E_n . effect + C_n . beta_cov + eps_n,  eps ~ N(0, sigma)

with practice intercepts ``a_i ~ N(m_g, sigma_unit)`` around their ICB mean. Year effects ``tau``
and ``beta_t`` sum to zero over years (``tau = Q tau_raw`` with ``Q`` an orthonormal basis of the
zero-sum subspace, so ``tau`` has the ZeroSumNormal prior; no redundant intercept); ICB means
``m_g`` and ICB gradients ``b_g`` are fixed effects. In gradient models the static part of the ICB
gradient is moved into the practice means: ``a_i ~ N(m_g + b_g (rbar_i - 0.5), sigma_unit)`` and the
row uses ``b_g (r_it - rbar_i)`` (``rbar_i`` = the practice's mean rank) - the same model, but
``b_g`` no longer trades off against the practice intercepts. The ICB x year shocks are non-centred
and *double-centred* (``z`` is a G x T matrix of standard normals with its row and column means
removed, as in the synthetic generator) so they cannot trade off against ``m_g`` or ``tau_t``; their
marginal SD is ``sigma_cell * sqrt((1 - 1/G)(1 - 1/T))``. ICB trends are non-centred and sum to zero
over ICBs. The practice intercepts are *centred* by default (``ModelOptions.centred_units``): each
practice has several years of data, so its intercept is data-dominated, and non-centring it makes
``m_g`` trade off against the mean of its practices' standardised deviations (we measured bulk ESS
~60 for ``m_g`` in 1,000 draws non-centred); ``centred_units=False`` gives
``a_i = m_g + sigma_unit z_i`` for panels with few years.

``E`` holds the named effect columns (e.g. ``D = treated x post`` and ``D * x``): their
coefficients are the causal estimands.  With a single treated ICB the treated post-period cells
carry their own ICB x year shocks, so the uncertainty of the effect is driven by how much
ICB-years vary (``sigma_cell``), not by the number of practices.

Sampling: with one treated ICB each treated cell's effect and its ICB x year shock are identified
only through their sum (plus the shock's prior), a narrow ridge that a diagonal mass matrix
crosses slowly (bulk ESS 282 for event-study coefficients at 4 x 1000); PyMC fits therefore use
nutpie's low-rank modified mass matrix (ESS > 3,000 on the same fit; override with
``SamplerSettings(mass_matrix="diag")``).

``models/panel_effects.stan`` is the same program with the same priors and parameter names; both
are sampled through :func:`hepcausal.models.backend.sample_model`.

Marginalised intercepts (``ModelOptions.marginalise``, default True): with Gaussian residuals
on an unweighted design the practice intercepts are integrated out analytically
(:mod:`hepcausal.models.panel_marginal`): the mean is linear in ``theta`` = (level cells
``m_g + tau_t + sigma_cell dc(z)_gt``, gradient cells ``b_g + beta_t + sigma_cell_gradient
dc(v)_gt``, ICB trends, effects, covariates) with a fixed row design, and the likelihood needs
only per-practice-size (and, with ``ics_scales``, per-ICB) sufficient statistics, so a
log-density evaluation costs O(cells) whatever the number of rows.  Same parameters and priors
minus ``unit_raw`` (``models/panel_effects_marginal.stan``); the same posterior (tested).
Student-t residuals and weights always use the explicit intercepts (no blockwise closed form);
``meta["marginalised"]`` records which was fitted.

Error models (``ModelOptions.error_model``; choice and evidence in docs/ERROR_MODEL.md):

* ``"rows"`` - the model above, one residual per practice-year, independent over years
  (practice intercepts integrated out for Gaussian residuals, see above).  On the
  real panel the within-practice residuals are serially correlated (lag-1 +0.36, practice drift)
  and the ICBs' noise differs, so the row-level posterior is overconfident: the 10 placebo DDDs
  had z-score SD 1.50 and 2 of 10 HDIs excluded 0 (issue 10).
* ``"prepost"`` - the default of DiD and DDD.  Each practice is collapsed to the change in its
  mean outcome from the pre to the post period (Bertrand, Duflo & Mullainathan 2004), which
  removes the practice intercepts exactly and makes the within-practice correlation structure
  irrelevant (its effect is absorbed in each practice's residual variance)::

      d_i = c_g + b_g rbar_i + E_i . effect + C_i . beta_cov + e_i,
      c_g = change_mean + sigma_change z_g,  b_g = gradient_change_mean + sigma_change_gradient v_g

  ``c_g``/``b_g`` are the ICBs' changes in level and gradient (the ICB x year shocks of the
  row-level model, collapsed to two periods); ``E_i``, ``C_i`` are the post-minus-pre means of
  the effect and covariate columns; practices without rows in both periods are dropped
  (``meta["prepost_practices_dropped"]``).  It has ~2G + 10 parameters whatever the number of
  practices and one row per practice (1,661 on the real design instead of 11,567 rows and 1,855
  parameters), so it is also the fast formulation.
* ``ics_scales`` (both error models): ICB-specific residual SDs ``sigma_g = sigma exp(s u_g)``,
  ``s ~ HalfNormal(scale_sd)``, ``u_g ~ N(0, 1)`` (i.e. ``log sigma_g ~ N(log sigma, s)``).
* ``family="student_t"``: Student-t residuals with ``nu ~ Gamma(2, scale nu_scale)`` (the
  ``student_t`` row of :mod:`hepcausal.models.families`).

Weights (``design.weights``, :mod:`hepcausal.causal.design`): the residual SD of a row (practice)
is divided by ``sqrt(w)`` with ``w`` the relative list size (mean 1), i.e. a weighted likelihood:
the ICB change parameters are then list-size weighted least-squares fits and the estimand is the
population-weighted change (the PHE SII is a population-weighted regression).  Unweighted
(default) is the practice-average estimand; ``meta["estimand"]`` names which.

Priors (the package convention, :mod:`hepcausal.models.priors`): every prior scale in
:class:`PanelPriors` is on the standardised outcome (outcome SD = 1); effects are per unit of the
scaled effect column.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import arviz as az
import numpy as np
import xarray as xr

from hepcausal.causal.design import PanelDesign
from hepcausal.models.backend import Backend, ModelSpec, sample_model, zero_sum_basis
from hepcausal.models.panel_marginal import (
    MARGINAL_PROGRAM,
    is_marginalised,
    marginal_design,
    pymc_loglik,
    stan_marginal_data,
)
from hepcausal.models.panel_marginal import pymc_data as marginal_pymc_data
from hepcausal.models.priors import Priors
from hepcausal.sampling import SamplerSettings

STAN_PROGRAM = "panel_effects"
PREPOST_PROGRAM = "panel_prepost"

__all__ = [
    "Backend",
    "ModelOptions",
    "PanelPriors",
    "build_pymc_model",
    "effect_draws",
    "present_check_vars",
    "sample_panel_model",
    "stan_data",
]


@dataclass(frozen=True)
class PanelPriors(Priors):
    """Prior scales of the panel-effects model on the standardised outcome (outcome SD = 1).

    Normal (``*_sd``) or half-Normal (``*_sigma``) scales; build with
    :meth:`~hepcausal.models.priors.Priors.from_any` from a dict of overrides.

    Parameters
    ----------
    group_sd : float
        ICB means ``m_g``.
    year_sd : float
        Year effects ``tau_t`` (zero-sum basis coordinates).
    unit_sigma : float
        Scale of ``sigma_unit`` (practice intercepts).
    cell_sigma : float
        Scale of ``sigma_cell`` (ICB x year level shocks).
    trend_sigma : float
        Scale of ``sigma_trend`` (ICB trends).
    gradient_sd : float
        ICB gradients ``b_g`` and year gradient effects ``beta_t``.
    cell_gradient_sigma : float
        Scale of ``sigma_cell_gradient`` (ICB x year gradient shocks).
    effect_sd : float
        Causal effects (per unit of the scaled effect column; a gradient effect is per unit of
        rank, i.e. the SII change).  Default 2 outcome SDs, as ``gradient_sd``: with 1 the prior
        pulled a real-size DDD gradient change (-0.1 FTE per 1,000, posterior SD 0.045) 6%
        toward zero on paired synthetic panels (normal-normal shrinkage
        ``sd_post^2 / (sd_post^2 + sd_prior^2)``); with 2 about 1.5%.
    covariate_sd : float
        Coefficients of the standardised covariates.
    noise_sigma : float
        Scale of the residual ``sigma``.
    scale_sd : float
        Half-Normal scale of ``sigma_scale``, the SD of the ICBs' log residual scales.
    nu_scale : float
        Scale of the Gamma(2) prior of the Student-t degrees of freedom.
    treated_scale_sd : float
        Pre/post model: fixed SD of the treated ICB's log residual scale around ``log sigma``
        (wide: the treated ICB's noise is its own, not partially pooled with the others').
    """

    group_sd: float = 2.0  # ICB means m_g
    year_sd: float = 1.0  # year effects tau_t
    unit_sigma: float = 1.0  # half-Normal scale of sigma_unit
    cell_sigma: float = 0.5  # half-Normal scale of sigma_cell (ICB x year level shocks)
    trend_sigma: float = 0.5  # half-Normal scale of sigma_trend
    gradient_sd: float = 2.0  # ICB gradients b_g and year gradient effects beta_t
    cell_gradient_sigma: float = 0.5  # half-Normal scale of sigma_cell_gradient
    effect_sd: float = 2.0  # causal effects (per unit of the scaled effect column)
    covariate_sd: float = 1.0  # coefficients of standardised covariates
    noise_sigma: float = 1.0  # half-Normal scale of the residual sigma
    scale_sd: float = 0.5  # half-Normal scale of the SD of log sigma_g (ICB residual scales)
    nu_scale: float = 10.0  # Gamma(2, scale nu_scale) prior of the Student-t degrees of freedom
    # pre/post model: SD of the treated ICB's log residual scale around log sigma (its own scale,
    # not shrunk by the ICB hierarchy: a noisy treated ICB must not borrow the others' precision)
    treated_scale_sd: float = 1.0


@dataclass(frozen=True)
class ModelOptions:
    """Which structural blocks and which error model of the panel-effects model are switched on.

    ``error_model``: ``"prepost"`` (default of DiD and DDD) fits each practice's change in its
    mean outcome from the pre to the post period (see :func:`prepost_data`); ``"rows"`` is the
    original row-level model (one residual per practice-year, independent over years).
    ``ics_scales``: ICB-specific residual scales ``log sigma_g ~ N(log sigma, scale_sd)``.
    ``family``: ``"gaussian"`` or ``"student_t"`` residuals (:mod:`hepcausal.models.families`
    rows of the same names; the panel model has the Student-t's ``nu`` with the same prior).
    ``marginalise``: for the row-level model with Gaussian residuals on an unweighted design,
    integrate the practice intercepts out analytically (:mod:`hepcausal.models.panel_marginal`;
    same posterior, cost independent of the number of rows); False keeps the explicit
    intercepts (for checking).  Student-t residuals and weights always use the explicit model.
    """

    cell_effects: bool = True  # ICB x year level shocks
    gradient: bool = False  # rank gradient block (needs design.rank_c)
    cell_gradient: bool = True  # ICB x year gradient shocks (when gradient)
    group_trends: bool = False  # ICB-specific linear trends
    centred_units: bool = True  # practice intercepts centred on their ICB mean
    error_model: str = "rows"  # "rows" (row-level) or "prepost" (practice pre/post means)
    ics_scales: bool = False  # ICB-specific residual scales
    family: str = "gaussian"  # "gaussian" or "student_t"
    marginalise: bool = True  # rows + gaussian + unweighted: practice intercepts integrated out

    def __post_init__(self) -> None:
        if self.error_model not in ERROR_MODELS:
            raise ValueError(
                f"error_model must be one of {list(ERROR_MODELS)}, got {self.error_model!r}"
            )
        if self.family not in PANEL_FAMILIES:
            raise ValueError(f"family must be one of {list(PANEL_FAMILIES)}, got {self.family!r}")
        if self.error_model == "prepost" and self.group_trends:
            raise ValueError("group_trends is not available with error_model='prepost'")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


ERROR_MODELS = ("rows", "prepost")
PANEL_FAMILIES = ("gaussian", "student_t")


CHECK_VARS = (
    "effect",
    "group_mean",
    "year_effect",
    "year_raw",
    "sigma_unit",
    "sigma",
    "sigma_cell",
    "sigma_trend",
    "gradient_group",
    "gradient_year",
    "gradient_year_raw",
    "sigma_cell_gradient",
    "beta_cov",
    "sigma_scale",
    "nu",
    "change_mean",
    "gradient_change_mean",
    "sigma_change",
    "sigma_change_gradient",
)


def _coords(design: PanelDesign) -> dict[str, Any]:
    return {
        "term": design.effect_names,
        "group": design.groups,
        "year": [str(t) for t in design.times],
        "year_basis": [f"basis{k}" for k in range(len(design.times) - 1)],
        "unit": [str(u) for u in design.units],
        "cell": [f"{g}:{t}" for g, t in design.cells],
        "covariate": list(design.covariates),
    }


def unit_mean_rank(design: PanelDesign) -> np.ndarray:
    """Each unit's mean centred rank ``rbar_i - 0.5`` over its rows."""
    assert design.rank_c is not None
    n_unit = len(design.units)
    s = np.bincount(design.unit_idx, weights=design.rank_c, minlength=n_unit)
    return s / np.bincount(design.unit_idx, minlength=n_unit)


def _double_centre(z: Any) -> Any:
    """Remove row and column means of a (group x year) tensor."""
    return z - z.mean(axis=1, keepdims=True) - z.mean(axis=0, keepdims=True) + z.mean()


def build_pymc_model(design: PanelDesign, priors: PanelPriors, options: ModelOptions) -> Any:
    """The PyMC version of the row-level panel-effects model.

    Parameters
    ----------
    design : PanelDesign
        The prepared panel.
    priors : PanelPriors
        Prior scales.
    options : ModelOptions
        Structural blocks; when :func:`~hepcausal.models.panel_marginal.is_marginalised`, the
        practice intercepts are integrated out (no ``unit_raw``; the likelihood is the
        potential ``marginal_loglik``), else they are explicit and ``y`` is observed.

    Returns
    -------
    pymc.Model
        The model.
    """
    if is_marginalised(design, options):
        return _build_pymc_marginal(design, priors, options)
    return _build_pymc_explicit(design, priors, options)


def _build_pymc_explicit(design: PanelDesign, priors: PanelPriors, options: ModelOptions) -> Any:
    import pymc as pm
    import pytensor.tensor as pt

    if options.gradient and design.rank_c is None:
        raise ValueError("gradient model needs a rank column")
    coords = _coords(design)
    n_time = len(design.times)
    with pm.Model(coords=coords) as model:
        group_mean = pm.Normal("group_mean", 0.0, priors.group_sd, dims="group")
        Q = zero_sum_basis(n_time)
        year_raw = pm.Normal("year_raw", 0.0, priors.year_sd, dims="year_basis")
        tau = pm.Deterministic("year_effect", pt.dot(Q, year_raw), dims="year")
        sigma_unit = pm.HalfNormal("sigma_unit", priors.unit_sigma)
        unit_mean = group_mean[design.unit_group]
        if options.gradient:
            gradient_group = pm.Normal("gradient_group", 0.0, priors.gradient_sd, dims="group")
            unit_rank = unit_mean_rank(design)
            unit_mean = unit_mean + gradient_group[design.unit_group] * unit_rank
        if options.centred_units:
            unit_raw = pm.Normal("unit_raw", unit_mean, sigma_unit, dims="unit")
            unit_effect = unit_raw
        else:
            unit_raw = pm.Normal("unit_raw", 0.0, 1.0, dims="unit")
            unit_effect = unit_mean + sigma_unit * unit_raw
        mu = tau[design.time_idx] + unit_effect[design.unit_idx]
        gi, ti = design.group_idx, design.time_idx
        if options.cell_effects:
            sigma_cell = pm.HalfNormal("sigma_cell", priors.cell_sigma)
            z_cell = pm.Normal("z_cell", 0.0, 1.0, dims=("group", "year"))
            mu = mu + sigma_cell * _double_centre(z_cell)[gi, ti]
        if options.group_trends:
            sigma_trend = pm.HalfNormal("sigma_trend", priors.trend_sigma)
            z_trend = pm.Normal("z_trend", 0.0, 1.0, dims="group")
            mu = mu + sigma_trend * (z_trend - z_trend.mean())[gi] * design.time_scaled
        if options.gradient:
            gradient_year_raw = pm.Normal(
                "gradient_year_raw", 0.0, priors.gradient_sd, dims="year_basis"
            )
            beta_t = pm.Deterministic("gradient_year", pt.dot(Q, gradient_year_raw), dims="year")
            rank_within = design.rank_c - unit_rank[design.unit_idx]
            mu = mu + gradient_group[gi] * rank_within
            slope = beta_t[ti]
            if options.cell_gradient:
                sigma_cg = pm.HalfNormal("sigma_cell_gradient", priors.cell_gradient_sigma)
                z_cg = pm.Normal("z_cell_gradient", 0.0, 1.0, dims=("group", "year"))
                slope = slope + sigma_cg * _double_centre(z_cg)[gi, ti]
            mu = mu + slope * design.rank_c
        effect = pm.Normal("effect", 0.0, priors.effect_sd, dims="term")
        mu = mu + pt.dot(design.effect_matrix, effect)
        if design.cov.shape[1]:
            beta_cov = pm.Normal("beta_cov", 0.0, priors.covariate_sd, dims="covariate")
            mu = mu + pt.dot(design.cov, beta_cov)
        sd = _residual_sd(priors, options, design.group_idx, design.weights)
        _likelihood(mu, sd, priors, options, design.y)
    return model


def _build_pymc_marginal(design: PanelDesign, priors: PanelPriors, options: ModelOptions) -> Any:
    """The same parameters and priors as the explicit model, ``unit_raw`` integrated out."""
    import pymc as pm
    import pytensor.tensor as pt

    md = marginal_design(design, options)
    n_time = len(design.times)
    with pm.Model(coords=_coords(design)) as model:
        group_mean = pm.Normal("group_mean", 0.0, priors.group_sd, dims="group")
        Q = zero_sum_basis(n_time)
        year_raw = pm.Normal("year_raw", 0.0, priors.year_sd, dims="year_basis")
        tau = pm.Deterministic("year_effect", pt.dot(Q, year_raw), dims="year")
        sigma_unit = pm.HalfNormal("sigma_unit", priors.unit_sigma)
        level = group_mean[:, None] + tau[None, :]
        if options.gradient:
            gradient_group = pm.Normal("gradient_group", 0.0, priors.gradient_sd, dims="group")
        if options.cell_effects:
            sigma_cell = pm.HalfNormal("sigma_cell", priors.cell_sigma)
            z_cell = pm.Normal("z_cell", 0.0, 1.0, dims=("group", "year"))
            level = level + sigma_cell * _double_centre(z_cell)
        theta = [level.flatten()]
        trend = None
        if options.group_trends:
            sigma_trend = pm.HalfNormal("sigma_trend", priors.trend_sigma)
            z_trend = pm.Normal("z_trend", 0.0, 1.0, dims="group")
            trend = sigma_trend * (z_trend - z_trend.mean())
        if options.gradient:
            gradient_year_raw = pm.Normal(
                "gradient_year_raw", 0.0, priors.gradient_sd, dims="year_basis"
            )
            beta_t = pm.Deterministic("gradient_year", pt.dot(Q, gradient_year_raw), dims="year")
            slope = gradient_group[:, None] + beta_t[None, :]
            if options.cell_gradient:
                sigma_cg = pm.HalfNormal("sigma_cell_gradient", priors.cell_gradient_sigma)
                z_cg = pm.Normal("z_cell_gradient", 0.0, 1.0, dims=("group", "year"))
                slope = slope + sigma_cg * _double_centre(z_cg)
            theta.append(slope.flatten())
        if trend is not None:
            theta.append(trend)
        theta.append(pm.Normal("effect", 0.0, priors.effect_sd, dims="term"))
        if design.cov.shape[1]:
            theta.append(pm.Normal("beta_cov", 0.0, priors.covariate_sd, dims="covariate"))
        scales = _residual_scales(priors, options)
        # the statistics are data containers: a compiled model is re-used for new panels of
        # the same structure (calibration and power refits, sweeps)
        data = {k: pm.Data(k, v) for k, v in marginal_pymc_data(md).items()}
        ll = pymc_loglik(data, pt.concatenate(theta), scales, sigma_unit)
        pm.Potential("marginal_loglik", ll)
    return model


def _residual_scales(priors: PanelPriors, options: ModelOptions, treated: Any = None) -> Any:
    """``(S,)`` residual SDs: one per ICB (``ics_scales``) or the single ``sigma``.

    ``treated`` (0/1 per ICB, pre/post model): the treated ICB's log scale deviation has the
    fixed SD ``priors.treated_scale_sd`` instead of the pooled ``sigma_scale``.
    """
    import pymc as pm
    import pytensor.tensor as pt

    sigma = pm.HalfNormal("sigma", priors.noise_sigma)
    if options.ics_scales:
        sigma_scale = pm.HalfNormal("sigma_scale", priors.scale_sd)
        z_scale = pm.Normal("z_scale", 0.0, 1.0, dims="group")
        dev_sd: Any = sigma_scale
        if treated is not None:
            dev_sd = sigma_scale * (1.0 - treated) + priors.treated_scale_sd * treated
        return sigma * pt.exp(dev_sd * z_scale)
    return pt.stack([sigma])


def _residual_sd(
    priors: PanelPriors,
    options: ModelOptions,
    group: Any,
    weights: Any | None,
    treated: Any = None,
) -> Any:
    """Residual SD of each observation: ``sigma`` (x ICB scale) / sqrt(relative weight)."""
    import pytensor.tensor as pt

    scales = _residual_scales(priors, options, treated)
    sd: Any = scales[group] if options.ics_scales else scales[0]
    if weights is not None:
        sd = sd / pt.sqrt(weights)
    return sd


def _likelihood(mu: Any, sd: Any, priors: PanelPriors, options: ModelOptions, y: Any) -> None:
    import pymc as pm

    if options.family == "student_t":
        nu = pm.Gamma("nu", alpha=2.0, beta=1.0 / priors.nu_scale)
        pm.StudentT("y", nu=nu, mu=mu, sigma=sd, observed=y)
    else:
        pm.Normal("y", mu, sd, observed=y)


@dataclass(frozen=True)
class PrePost:
    """Each practice's change in its mean from the pre to the post period (standardised scale).

    Parameters
    ----------
    d : numpy.ndarray
        Post-period mean minus pre-period mean of the standardised outcome, one per practice.
    group : numpy.ndarray
        0-based ICB of each practice.
    rank : numpy.ndarray
        The practice's mean centred rank over its rows (zeros for level-only models).
    effects : numpy.ndarray
        (n, K) post-minus-pre means of the scaled effect columns.
    cov : numpy.ndarray
        (n, P) post-minus-pre means of the standardised covariates.
    weights : numpy.ndarray or None
        Relative practice weights (mean 1), or None (unweighted).
    n_dropped : int
        Practices without rows in both periods (they carry no pre/post change).
    """

    d: np.ndarray
    group: np.ndarray
    rank: np.ndarray
    effects: np.ndarray
    cov: np.ndarray
    weights: np.ndarray | None
    n_dropped: int


def prepost_data(design: PanelDesign) -> PrePost:
    """Collapse a panel design to practice pre/post mean changes (Bertrand-Duflo-Mullainathan).

    Parameters
    ----------
    design : PanelDesign
        The prepared panel (``start_year`` splits pre and post).

    Returns
    -------
    PrePost
        One row per practice observed in both periods.
    """
    n_unit = len(design.units)
    post = (design.data[design.columns.time] >= design.start_year).to_numpy(bool)
    u = design.unit_idx
    n_pre = np.bincount(u[~post], minlength=n_unit).astype(float)
    n_post = np.bincount(u[post], minlength=n_unit).astype(float)
    keep = (n_pre > 0) & (n_post > 0)

    def change(v: np.ndarray) -> np.ndarray:
        pre = np.bincount(u[~post], weights=v[~post], minlength=n_unit)
        pst = np.bincount(u[post], weights=v[post], minlength=n_unit)
        with np.errstate(invalid="ignore", divide="ignore"):
            return (pst / n_post - pre / n_pre)[keep]

    eff = design.effect_matrix
    cov = design.cov
    if design.rank_c is not None:
        rank = (np.bincount(u, weights=design.rank_c, minlength=n_unit) / (n_pre + n_post))[keep]
    else:
        rank = np.zeros(int(keep.sum()))
    w = None
    if design.weights is not None:
        w_unit = np.bincount(u, weights=design.weights, minlength=n_unit) / (n_pre + n_post)
        w = w_unit[keep] / w_unit[keep].mean()
    return PrePost(
        d=change(design.y),
        group=design.unit_group[keep],
        rank=rank,
        effects=np.column_stack([change(eff[:, k]) for k in range(eff.shape[1])])
        if eff.shape[1]
        else np.zeros((int(keep.sum()), 0)),
        cov=np.column_stack([change(cov[:, k]) for k in range(cov.shape[1])])
        if cov.shape[1]
        else np.zeros((int(keep.sum()), 0)),
        weights=w,
        n_dropped=int((~keep).sum()),
    )


def treated_pairs(design: PanelDesign, options: ModelOptions) -> tuple[int, int]:
    """Effect terms confounded with the treated ICB's own level / gradient change (-1: none).

    In the pre/post model the treated ICB's level change ``sigma_change z_t`` and the level
    effect (its ``D`` column is 1 for every treated practice), and its gradient change and the
    gradient effect, are identified only through their sums.  A term is paired when it is the
    design's only term of that kind and the model has the matching ICB change.
    """
    kinds = [e.kind for e in design.effects]

    def only(kind: str, present: bool) -> int:
        return kinds.index(kind) if present and kinds.count(kind) == 1 else -1

    return (
        only("level", options.cell_effects),
        only("gradient", options.gradient and options.cell_gradient),
    )


def _treated_split(effect_sd: float, sigma: Any, z: Any, xi: Any, treated: Any) -> Any:
    """The effect and the ICB changes from the treated ICB's total ``S a`` and a split ``xi``.

    Exact reparameterisation of ``effect ~ N(0, e)``, ``change_t ~ N(0, sigma)`` (independent):
    with ``S = sqrt(e^2 + sigma^2)``, ``a = z_t`` and ``xi`` standard normal, ``effect = (e^2 a +
    e sigma xi) / S`` and ``change_t = S a - effect`` have exactly that joint prior, the data
    inform only ``a`` (the sum), and ``xi`` stays a prior draw: no ridge between the two.
    Returns the effect and the vector of ICB changes (the treated entry replaced).
    """
    import pytensor.tensor as pt

    a = pt.dot(treated, z)
    total = pt.sqrt(effect_sd**2 + pt.sqr(sigma))
    effect = (effect_sd**2 * a + effect_sd * sigma * xi) / total
    dev = sigma * z * (1.0 - treated) + (total * a - effect) * treated
    return effect, dev


def build_pymc_prepost(design: PanelDesign, priors: PanelPriors, options: ModelOptions) -> Any:
    """The PyMC pre/post model: ``d_i = c_g + b_g rbar_i + E_i effect + C_i beta + e_i``.

    ``c_g = change_mean + sigma_change * z_g`` (ICB level changes), ``b_g = gradient_change_mean
    + sigma_change_gradient * v_g`` (ICB gradient changes, gradient models), residual SD
    ``sigma_g / sqrt(w_i)``; the treated ICB's change beyond its ``c_g``/``b_g`` is the effect.
    The effects are the Deterministic ``effect`` (prior ``N(0, effect_sd)``); the treated ICB's
    ``z_g`` / ``v_g`` and the raw ``z_effect`` of the level / gradient term parameterise their
    sum and split (:func:`treated_pairs`, :func:`_treated_split`).
    """
    import pymc as pm
    import pytensor.tensor as pt

    if options.gradient and design.rank_c is None:
        raise ValueError("gradient model needs a rank column")
    values = prepost_values(design)
    with pm.Model(coords=_coords(design)) as model:
        # every array is a data container (:func:`prepost_pymc_data`): the compiled model is
        # re-used for new panels with the same ICBs, terms, options and priors (placebo fits,
        # calibration and power simulations, sweeps)
        data = {k: pm.Data(k, v) for k, v in values.items()}
        group = data["pp_group"]
        change_mean = pm.Normal("change_mean", 0.0, priors.group_sd)
        mu: Any = change_mean
        if design.pool:
            # pool ICBs (design.pool) share the spread of the changes but not their mean: the
            # means change_mean / gradient_change_mean stay those of the comparators
            pool = data["pp_pool"][group]
            mu = mu + pm.Normal("pool_change_shift", 0.0, priors.group_sd) * pool
        # the treated ICB's own change and the effect are identified only through their sum:
        # sampled as that sum and a prior-only split (:func:`_treated_split`), not as a ridge
        level_term, gradient_term = treated_pairs(design, options)
        treated = data["pp_treated"]
        z_effect = pm.Normal("z_effect", 0.0, 1.0, dims="term")
        effects = [priors.effect_sd * z_effect[k] for k in range(len(design.effects))]
        if options.cell_effects:
            sigma_change = pm.HalfNormal("sigma_change", priors.cell_sigma)
            z_change = pm.Normal("z_change", 0.0, 1.0, dims="group")
            dev = sigma_change * z_change
            if level_term >= 0:
                effects[level_term], dev = _treated_split(
                    priors.effect_sd, sigma_change, z_change, z_effect[level_term], treated
                )
            mu = mu + dev[group]
        if options.gradient:
            gradient_change_mean = pm.Normal("gradient_change_mean", 0.0, priors.gradient_sd)
            slope: Any = gradient_change_mean
            if design.pool:
                shift = pm.Normal("pool_gradient_change_shift", 0.0, priors.gradient_sd)
                slope = slope + shift * pool
            if options.cell_gradient:
                sigma_cg = pm.HalfNormal("sigma_change_gradient", priors.cell_gradient_sigma)
                z_cg = pm.Normal("z_change_gradient", 0.0, 1.0, dims="group")
                dev_g = sigma_cg * z_cg
                if gradient_term >= 0:
                    effects[gradient_term], dev_g = _treated_split(
                        priors.effect_sd, sigma_cg, z_cg, z_effect[gradient_term], treated
                    )
                slope = slope + dev_g[group]
            mu = mu + slope * data["pp_rank"]
        effect = pm.Deterministic("effect", pt.stack(effects), dims="term")
        mu = mu + pt.dot(data["pp_effects"], effect)
        if "pp_cov" in data:
            beta_cov = pm.Normal("beta_cov", 0.0, priors.covariate_sd, dims="covariate")
            mu = mu + pt.dot(data["pp_cov"], beta_cov)
        sd = _residual_sd(priors, options, group, data.get("pp_weights"), data["pp_treated"])
        _likelihood(mu, sd, priors, options, data["pp_d"])
    return model


def prepost_pymc_data(pp: PrePost) -> dict[str, np.ndarray]:
    """Values of the pre/post model's data containers (compiled-model reuse).

    Parameters
    ----------
    pp : PrePost
        The collapsed panel (:func:`prepost_data`).

    Returns
    -------
    dict
        Container name -> value: changes ``pp_d``, ICB index ``pp_group``, mean rank
        ``pp_rank``, effect changes ``pp_effects`` and, when present, covariate changes
        ``pp_cov`` and relative weights ``pp_weights``.
    """
    out = {
        "pp_d": pp.d,
        "pp_group": pp.group.astype(np.int64),
        "pp_rank": pp.rank,
        "pp_effects": pp.effects,
    }
    if pp.cov.shape[1]:
        out["pp_cov"] = pp.cov
    if pp.weights is not None:
        out["pp_weights"] = pp.weights
    return out


def prepost_values(design: PanelDesign) -> dict[str, np.ndarray]:
    """The pre/post model's container values for ``design`` (with the pool indicator).

    Parameters
    ----------
    design : PanelDesign
        The prepared panel.

    Returns
    -------
    dict
        :func:`prepost_pymc_data` of the collapsed panel, the treated-ICB indicator
        ``pp_treated`` and ``pp_pool`` (1.0 for each pool ICB) when the design has a pool.
    """
    values = prepost_pymc_data(prepost_data(design))
    values["pp_treated"] = design.treated_group
    if design.pool:
        values["pp_pool"] = design.pool_group
    return values


def stan_data(design: PanelDesign, priors: PanelPriors, options: ModelOptions) -> dict[str, Any]:
    """Data for ``models/panel_effects.stan`` (1-based indices, flags for optional blocks)."""
    if options.gradient and design.rank_c is None:
        raise ValueError("gradient model needs a rank column")
    n = design.n_obs
    rank = design.rank_c if design.rank_c is not None else np.zeros(n)
    return {
        "N": n,
        "n_unit": len(design.units),
        "n_group": len(design.groups),
        "n_time": len(design.times),
        "unit": design.unit_idx + 1,
        "unit_group": design.unit_group + 1,
        "grp": design.group_idx + 1,
        "tim": design.time_idx + 1,
        "gt": design.time_idx * len(design.groups) + design.group_idx + 1,
        "y": design.y,
        "rank_c": np.asarray(rank, float),
        "unit_rank": unit_mean_rank(design) if options.gradient else np.zeros(len(design.units)),
        "Q_year": zero_sum_basis(len(design.times)),
        "time_c": design.time_scaled,
        "K": len(design.effects),
        "X_eff": design.effect_matrix,
        "P": design.cov.shape[1],
        "X_cov": design.cov,
        "centred_units": int(options.centred_units),
        "use_cell": int(options.cell_effects),
        "use_trend": int(options.group_trends),
        "use_gradient": int(options.gradient),
        "use_cell_gradient": int(options.gradient and options.cell_gradient),
        "use_scales": int(options.ics_scales),
        "family": PANEL_FAMILIES.index(options.family) + 1,
        "w": design.weights if design.weights is not None else np.ones(n),
        **{f"prior_{k}": v for k, v in priors.to_dict().items() if k != "treated_scale_sd"},
    }


def stan_data_marginal(
    design: PanelDesign, priors: PanelPriors, options: ModelOptions
) -> dict[str, Any]:
    """Data for ``models/panel_effects_marginal.stan`` (practice intercepts integrated out)."""
    md = marginal_design(design, options)
    return {
        "n_group": len(design.groups),
        "n_time": len(design.times),
        "Q_year": zero_sum_basis(len(design.times)),
        "K": len(design.effects),
        "P": design.cov.shape[1],
        "use_cell": int(options.cell_effects),
        "use_trend": int(options.group_trends),
        "use_gradient": int(options.gradient),
        "use_cell_gradient": int(options.gradient and options.cell_gradient),
        "use_scales": int(options.ics_scales),
        **stan_marginal_data(md),
        **{
            f"prior_{k}": v
            for k, v in priors.to_dict().items()
            if k not in ("nu_scale", "treated_scale_sd")
        },
    }


PREPOST_PRIORS = (
    "group_sd",
    "cell_sigma",
    "gradient_sd",
    "cell_gradient_sigma",
    "effect_sd",
    "covariate_sd",
    "noise_sigma",
    "scale_sd",
    "nu_scale",
    "treated_scale_sd",
)


def stan_data_prepost(
    design: PanelDesign, priors: PanelPriors, options: ModelOptions
) -> dict[str, Any]:
    """Data for ``models/panel_prepost.stan`` (the pre/post model)."""
    pp = prepost_data(design)
    n = pp.d.size
    pri = priors.to_dict()
    pairs = treated_pairs(design, options)
    return {
        "N": n,
        "n_group": len(design.groups),
        "grp": pp.group + 1,
        "d": pp.d,
        "rank_c": pp.rank,
        "K": pp.effects.shape[1],
        "X_eff": pp.effects,
        "P": pp.cov.shape[1],
        "X_cov": pp.cov,
        "use_cell": int(options.cell_effects),
        "use_gradient": int(options.gradient),
        "use_cell_gradient": int(options.gradient and options.cell_gradient),
        "use_scales": int(options.ics_scales),
        "treated_g": design.treated_group,
        "pair_level": pairs[0] + 1,
        "pair_gradient": pairs[1] + 1,
        "use_pool": int(bool(design.pool)),
        "pool": design.pool_group,
        "family": PANEL_FAMILIES.index(options.family) + 1,
        "w": pp.weights if pp.weights is not None else np.ones(n),
        **{f"prior_{k}": pri[k] for k in PREPOST_PRIORS},
    }


STAN_DIMS: dict[str, list[str]] = {
    "effect": ["term"],
    "z_effect": ["term"],
    "group_mean": ["group"],
    "year_raw": ["year_basis"],
    "year_effect": ["year"],
    "gradient_year_raw": ["year_basis"],
    "unit_raw": ["unit"],
    "gradient_group": ["group"],
    "gradient_year": ["year"],
    "z_cell": ["group", "year"],
    "z_cell_gradient": ["group", "year"],
    "z_trend": ["group"],
    "z_scale": ["group"],
    "z_change": ["group"],
    "z_change_gradient": ["group"],
}
STAN_SCALARS = (
    "sigma_cell",
    "sigma_trend",
    "sigma_cell_gradient",
    "sigma_scale",
    "nu",
    "sigma_change",
    "sigma_change_gradient",
    "gradient_change_mean",
    "pool_change_shift",
    "pool_gradient_change_shift",
)


def structure_key(design: PanelDesign, priors: PanelPriors, options: ModelOptions) -> tuple:
    """What the compiled graph of the pre/post or marginalised model depends on.

    Every array of those models is a ``pm.Data`` container, so the graph depends only on the
    ICBs and years (coordinates of the draws), the effect and covariate names, the options, the
    priors and whether the fit is weighted: fits with equal keys re-use one compiled model.

    Parameters
    ----------
    design : PanelDesign
        The prepared panel.
    priors : PanelPriors
        Prior scales.
    options : ModelOptions
        Structural blocks.

    Returns
    -------
    tuple
        A hashable key (:attr:`hepcausal.models.backend.ModelSpec.cache_key`).
    """
    return (
        tuple(design.groups),
        tuple(str(t) for t in design.times),
        tuple(design.effect_names),
        tuple(design.covariates),
        tuple(sorted(options.to_dict().items())),
        tuple(sorted(priors.to_dict().items())),
        design.weights is not None,
        bool(design.pool),
    )


def model_spec(design: PanelDesign, priors: PanelPriors, options: ModelOptions) -> ModelSpec:
    """The panel-effects model for both backends (see :mod:`hepcausal.models.backend`).

    Parameters
    ----------
    design : PanelDesign
        The prepared panel.
    priors : PanelPriors
        Prior scales (standardised outcome).
    options : ModelOptions
        Structural blocks switched on.

    Returns
    -------
    ModelSpec
        PyMC builder (row-level model: low-rank nutpie mass matrix, as a treated cell's effect and
        its ICB x year shock form a ridge; pre/post model: diagonal) and the Stan program with its
        data.
    """
    dims = dict(STAN_DIMS)
    if design.cov.shape[1]:
        dims["beta_cov"] = ["covariate"]
    if options.error_model == "prepost":
        return ModelSpec(
            name="panel-prepost",
            build_pymc=lambda: build_pymc_prepost(design, priors, options),
            cache_key=structure_key(design, priors, options),
            pymc_data=lambda: prepost_values(design),
            # diagonal: the low-rank modified mass matrix of the row-level model (below) left one
            # chain of the real QT1 placebo DDD in a funnel (279 divergences, R-hat 1.06); with a
            # diagonal one the same fit had 0 divergences and bulk ESS 1,364 (docs/ERROR_MODEL.md)
            mass_matrix="diag",
            # and smaller steps: at target_accept 0.9 4 of the 11 real GP FTE fits (LLR and the 10
            # placebos) still had 1-2 divergences; at 0.95 about 1 fit in 10 (real and realistic
            # synthetic) still had one, in the far tail of sigma_change or of the residual-scale
            # hierarchy (centring, zero-sum scales did not remove it): 0.98 (docs/ERROR_MODEL.md)
            target_accept=0.98,
            stan_program=PREPOST_PROGRAM,
            stan_data=lambda: stan_data_prepost(design, priors, options),
            coords=_coords(design),
            dims=dims,
            stan_scalars=STAN_SCALARS,
        )
    marg = is_marginalised(design, options)
    return ModelSpec(
        name="panel-effects",
        build_pymc=lambda: build_pymc_model(design, priors, options),
        cache_key=structure_key(design, priors, options) if marg else None,
        pymc_data=(lambda: marginal_pymc_data(marginal_design(design, options))) if marg else None,
        mass_matrix="low_rank",
        stan_program=MARGINAL_PROGRAM if marg else STAN_PROGRAM,
        stan_data=lambda: (stan_data_marginal if marg else stan_data)(design, priors, options),
        coords=_coords(design),
        dims=dims,
        stan_scalars=STAN_SCALARS,
    )


def sample_panel_model(
    design: PanelDesign,
    *,
    backend: Backend = "pymc",
    settings: SamplerSettings | None = None,
    priors: PanelPriors | None = None,
    options: ModelOptions | None = None,
) -> az.InferenceData:
    """Sample the panel-effects model with PyMC (default) or Stan; same model, same priors.

    Parameters
    ----------
    design : PanelDesign
        The prepared panel.
    backend : {"pymc", "stan"}
        Backend.
    settings : SamplerSettings or None
        Sampler settings (default ``SamplerSettings()``).
    priors : PanelPriors or None
        Prior scales (default ``PanelPriors()``).
    options : ModelOptions or None
        Structural blocks (default ``ModelOptions()``).

    Returns
    -------
    arviz.InferenceData
        The posterior draws (same variable names and dimensions for both backends).
    """
    spec = model_spec(design, priors or PanelPriors(), options or ModelOptions())
    return sample_model(spec, backend, settings or SamplerSettings())


def effect_draws(idata: az.InferenceData, design: PanelDesign) -> xr.DataArray:
    """Posterior draws of every effect on the outcome scale: ``effect * y_sd / scale``."""
    eff = idata.posterior["effect"]
    scale = xr.DataArray(
        [e.scale for e in design.effects], dims="term", coords={"term": design.effect_names}
    )
    return eff * design.y_sd / scale


def present_check_vars(idata: az.InferenceData) -> list[str]:
    """The hyperparameters and effects to check for convergence (not the many z's)."""
    return [v for v in CHECK_VARS if v in idata.posterior]

"""The row-level panel-effects model with the practice intercepts integrated out analytically.

For Gaussian residuals the row-level model of :mod:`hepcausal.models.panel_effects`
(``error_model="rows"``) is, for practice ``i`` in ICB ``g`` with rows ``n``::

    y*_n = x_n . theta + u_i + eps_n,   u_i ~ N(0, sigma_unit),   eps_n ~ N(0, sigma_g)

where ``theta`` collects every parameter the mean is linear in and ``x_n`` is a fixed row design
(:func:`row_design`): the level cells ``m_g + tau_t + sigma_cell dc(z)_gt`` (one-hot columns),
the gradient cells ``b_g + beta_t + sigma_cell_gradient dc(v)_gt`` (columns ``r - 0.5``; the
practice intercept's ``b_g (rbar_i - 0.5)`` and the row's ``b_g (r - rbar_i)`` add up to
``b_g (r - 0.5)``), the ICB trend coefficients (columns ``time``), the effects and the
covariates.  ``u_i = a_i - m_g - b_g (rbar_i - 0.5)`` is the practice intercept's deviation from
its ICB mean, so integrating ``u_i`` out gives exactly the marginal likelihood of the explicit
model (centred or non-centred units alike).  Per practice it factorises into a within part
``-0.5 SSW_i / sigma_g^2 - (n_i - 1) log sigma_g`` and a between part
``N(ybar_i - xbar_i . theta | 0, sigma_unit^2 + sigma_g^2 / n_i)``; summed over practices these
need only the sufficient statistics of
:func:`hepcausal.models.gradient_data.gaussian_suff_stats` (the same ones as the gradient model,
stratified by ICB when the residual scales are ICB-specific), so a log-density evaluation costs
O(cells) and does not grow with the number of rows or practices.

When it applies (:func:`is_marginalised`): ``ModelOptions(error_model="rows", family="gaussian",
marginalise=True)`` (the default of the row-level model) on an unweighted design.  Otherwise the
explicit model is fitted (``meta["marginalised"]`` says which):

* Student-t residuals: no closed form for the integral over ``a_i``.
* weights (``design.weights``): a row's residual SD ``sigma_g / sqrt(w_n)`` makes the between
  variance ``sigma_unit^2 + sigma_g^2 / W_i`` (``W_i`` the practice's total weight) different
  for every practice, so the practices no longer fall into a few blocks of equal variance; the
  explicit model is exact and is used instead.

Practice intercepts: the marginalised posterior has no ``unit_raw``; the one reader (the
posterior predictive check of :mod:`hepcausal.plots.dispatch`) draws them from their conditional
normal with :func:`draw_unit_effects`.

``models/panel_effects_marginal.stan`` is the same model for Stan (same parameter names and
priors, ``unit_raw`` absent); ``tests/test_backend_logp.py`` checks that both backends evaluate
the same log density, ``tests/test_panel_marginal.py`` that it is the exact marginal of the
explicit model and that both give the same posterior.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING, Any

import numpy as np
import scipy.sparse as sp
import xarray as xr

from hepcausal.causal.design import PanelDesign
from hepcausal.models.gradient_data import StratifiedGaussianStats, gaussian_suff_stats

if TYPE_CHECKING:  # pragma: no cover
    from hepcausal.models.panel_effects import ModelOptions

__all__ = ["MarginalDesign", "draw_unit_effects", "is_marginalised", "marginal_design"]

MARGINAL_PROGRAM = "panel_effects_marginal"


def is_marginalised(design: PanelDesign, options: ModelOptions) -> bool:
    """Whether the panel-effects model is fitted with the practice intercepts integrated out.

    Parameters
    ----------
    design : PanelDesign
        The prepared panel.
    options : ModelOptions
        The model options.

    Returns
    -------
    bool
        True for the row-level error model with Gaussian residuals, ``marginalise=True`` and no
        weights (see the module docstring for why the other cases use the explicit model).
    """
    return bool(
        options.marginalise
        and options.error_model == "rows"
        and options.family == "gaussian"
        and design.weights is None
    )


@dataclass(frozen=True)
class MarginalDesign:
    """The fixed row design of the marginalised model and its sufficient statistics.

    Parameters
    ----------
    x : scipy.sparse.csr_matrix
        ``(N, p)`` row design; columns: level cells ``g T + t``, gradient cells (gradient
        models), ICB trends (``group_trends``), effects, covariates.
    stats : StratifiedGaussianStats
        Sufficient statistics (one stratum, or one per ICB with ``ics_scales``).
    n_cells, n_trend, n_effect, n_cov : int
        Sizes of the column blocks (``n_cells`` per cell block: ``G T``).
    gradient : bool
        Whether the gradient-cell block is present.
    log_const : float
        ``-N/2 log(2 pi) - 1/2 sum_i log n_i``: with it the log-likelihood is the exact
        marginal log density of the data.
    """

    x: sp.csr_matrix
    stats: StratifiedGaussianStats
    n_cells: int
    gradient: bool
    n_trend: int
    n_effect: int
    n_cov: int
    log_const: float

    @property
    def n_theta(self) -> int:
        """Length of ``theta``."""
        return self.x.shape[1]


def row_design(design: PanelDesign, options: ModelOptions) -> sp.csr_matrix:
    """``(N, p)`` sparse design ``x`` of the mean ``x . theta`` (see :class:`MarginalDesign`)."""
    n = design.n_obs
    n_group, n_time = len(design.groups), len(design.times)
    rows = np.arange(n)
    cell = design.group_idx * n_time + design.time_idx
    k = n_group * n_time
    blocks = [sp.csr_matrix((np.ones(n), (rows, cell)), shape=(n, k))]
    if options.gradient:
        if design.rank_c is None:
            raise ValueError("gradient model needs a rank column")
        blocks.append(sp.csr_matrix((design.rank_c, (rows, cell)), shape=(n, k)))
    if options.group_trends:
        blocks.append(
            sp.csr_matrix((design.time_scaled, (rows, design.group_idx)), shape=(n, n_group))
        )
    blocks.append(sp.csr_matrix(design.effect_matrix))
    blocks.append(sp.csr_matrix(design.cov))
    return sp.csr_matrix(sp.hstack(blocks))


def marginal_design(design: PanelDesign, options: ModelOptions) -> MarginalDesign:
    """The row design and the sufficient statistics of the marginalised model.

    Parameters
    ----------
    design : PanelDesign
        The prepared panel (unweighted).
    options : ModelOptions
        Structural blocks (``ics_scales`` stratifies the statistics by ICB).

    Returns
    -------
    MarginalDesign
        Design and statistics.
    """
    if design.weights is not None:
        raise ValueError(
            "the marginalised row-level model is unweighted; with design weights use "
            "ModelOptions(marginalise=False) (see hepcausal.models.panel_marginal)"
        )
    x = row_design(design, options)
    n_unit = len(design.units)
    n_i = np.bincount(design.unit_idx, minlength=n_unit)
    if np.any(n_i == 0):
        raise ValueError("every unit of the design must have rows")
    stats = gaussian_suff_stats(
        x,
        np.asarray(design.y, dtype=float),
        design.unit_idx,
        n_unit,
        practice_stratum=design.unit_group if options.ics_scales else None,
    )
    return MarginalDesign(
        x=x,
        stats=stats,
        n_cells=len(design.groups) * len(design.times),
        gradient=options.gradient,
        n_trend=len(design.groups) if options.group_trends else 0,
        n_effect=design.effect_matrix.shape[1],
        n_cov=design.cov.shape[1],
        log_const=float(-0.5 * design.n_obs * np.log(2 * np.pi) - 0.5 * np.sum(np.log(n_i))),
    )


STAT_FIELDS = ("n_per", "count", "syy", "sxy", "sxx", "row", "col", "stratum")


def pymc_data(md: MarginalDesign) -> dict[str, np.ndarray]:
    """Values of the marginalised model's data containers (compiled-model reuse).

    Parameters
    ----------
    md : MarginalDesign
        Design and statistics.

    Returns
    -------
    dict
        ``marginal_<field>`` for every sufficient statistic and ``marginal_log_const``.
    """
    out = {f"marginal_{k}": np.asarray(getattr(md.stats, k)) for k in STAT_FIELDS}
    for k in ("row", "col", "stratum"):
        out[f"marginal_{k}"] = out[f"marginal_{k}"].astype(np.int64)
    out["marginal_log_const"] = np.asarray(md.log_const, dtype=float)
    return out


def pymc_loglik(data: dict[str, Any], theta: Any, scales: Any, sigma_unit: Any) -> Any:
    """The marginal log-likelihood as a PyTensor expression.

    Parameters
    ----------
    data : dict
        The statistics as tensors or arrays, keyed as :func:`pymc_data` (in a model: its
        ``pm.Data`` containers, so that a compiled model is re-used with new statistics).
    theta : tensor
        ``(p,)`` mean parameters.
    scales : tensor
        ``(S,)`` residual SD of each stratum.
    sigma_unit : tensor
        Practice-intercept SD.

    Returns
    -------
    tensor
        Scalar log-likelihood (with the data constant ``log_const``).
    """
    import pytensor.tensor as pt

    d = {k: data[f"marginal_{k}"] for k in (*STAT_FIELDS, "log_const")}
    s2 = pt.sqr(scales)[:, None]
    var = pt.concatenate([s2, pt.sqr(sigma_unit) + s2 / d["n_per"]], axis=1)  # (S, J)
    w = 1.0 / var
    ew = pt.sum(d["sxx"] * w[d["stratum"]], axis=1)
    quad = pt.sum(ew * theta[d["row"]] * theta[d["col"]])
    lin = pt.dot(theta, pt.sum(d["sxy"] * w[:, None, :], axis=(0, 2)))
    return d["log_const"] - 0.5 * (
        pt.sum(d["count"] * pt.log(var)) + pt.sum(d["syy"] * w) - 2.0 * lin + quad
    )


def numpy_loglik(
    md: MarginalDesign, theta: np.ndarray, scales: np.ndarray, sigma_unit: float
) -> float:
    """:func:`pymc_loglik` in NumPy (for tests)."""
    st = md.stats
    s2 = np.square(scales)[:, None]
    var = np.concatenate([s2, sigma_unit**2 + s2 / st.n_per], axis=1)
    w = 1.0 / var
    ew = np.sum(st.sxx * w[st.stratum], axis=1)
    quad = np.sum(ew * theta[st.row] * theta[st.col])
    lin = theta @ np.einsum("skj,sj->k", st.sxy, w)
    return float(
        md.log_const - 0.5 * (np.sum(st.count * np.log(var)) + np.sum(st.syy * w) - 2 * lin + quad)
    )


def stan_marginal_data(md: MarginalDesign) -> dict[str, Any]:
    """The sufficient-statistics entries of ``models/panel_effects_marginal.stan``'s data.

    Parameters
    ----------
    md : MarginalDesign
        Design and statistics.

    Returns
    -------
    dict
        ``S``, ``J``, ``n_theta``, ``n_per``, ``count``, ``syy``, ``sxy`` (``(p, S J)``, block
        ``(s, j)`` in column ``s J + j``), ``nnz``, ``sxx``, ``row_idx``, ``col_idx``,
        ``strat_idx`` (1-based) and ``log_const``.
    """
    st = md.stats
    n_s, n_j = st.count.shape
    return {
        "S": n_s,
        "J": n_j,
        "n_theta": md.n_theta,
        "n_per": st.n_per,
        "count": st.count,
        "syy": st.syy,
        "sxy": np.transpose(st.sxy, (1, 0, 2)).reshape(md.n_theta, n_s * n_j),
        "nnz": len(st.row),
        "sxx": st.sxx,
        "row_idx": st.row + 1,
        "col_idx": st.col + 1,
        "strat_idx": st.stratum + 1,
        "log_const": md.log_const,
    }


class _Draws:
    """Posterior draws of the pieces of ``theta`` as ``(n_draws, ...)`` arrays."""

    def __init__(self, post: xr.Dataset) -> None:
        self.post = post

    def __call__(self, name: str) -> np.ndarray:
        da = self.post[name]
        return np.asarray(da.values).reshape(-1, *da.shape[2:])

    @cached_property
    def n(self) -> int:
        return int(self.post.sizes["chain"] * self.post.sizes["draw"])


def _double_centre(z: np.ndarray) -> np.ndarray:
    return (
        z
        - z.mean(axis=2, keepdims=True)
        - z.mean(axis=1, keepdims=True)
        + z.mean((1, 2))[:, None, None]
    )


def theta_draws(post: xr.Dataset, design: PanelDesign, options: ModelOptions) -> np.ndarray:
    """``(n_draws, p)`` draws of ``theta`` rebuilt from the posterior (NumPy).

    Parameters
    ----------
    post : xarray.Dataset
        Posterior of a panel-effects fit (row-level model, before compaction: ``z_*`` present).
    design : PanelDesign
        The fitted design.
    options : ModelOptions
        The model options.

    Returns
    -------
    numpy.ndarray
        ``theta`` per draw, in the column order of :func:`row_design`.
    """
    d = _Draws(post)
    level = d("group_mean")[:, :, None] + d("year_effect")[:, None, :]
    if options.cell_effects:
        level = level + d("sigma_cell")[:, None, None] * _double_centre(d("z_cell"))
    parts = [level.reshape(d.n, -1)]
    if options.gradient:
        slope = d("gradient_group")[:, :, None] + d("gradient_year")[:, None, :]
        if options.cell_gradient:
            slope = slope + d("sigma_cell_gradient")[:, None, None] * _double_centre(
                d("z_cell_gradient")
            )
        parts.append(slope.reshape(d.n, -1))
    if options.group_trends:
        z = d("z_trend")
        parts.append(d("sigma_trend")[:, None] * (z - z.mean(axis=1, keepdims=True)))
    parts.append(d("effect").reshape(d.n, -1))
    if design.cov.shape[1]:
        parts.append(d("beta_cov"))
    return np.concatenate(parts, axis=1)


def draw_unit_effects(
    post: xr.Dataset, design: PanelDesign, options: ModelOptions, seed: int = 0
) -> xr.DataArray:
    """Draw the practice intercepts ``unit_raw`` of a marginalised fit from their conditional.

    Given the other parameters, ``u_i = a_i - m_g - b_g (rbar_i - 0.5)`` is normal with
    precision ``1/sigma_unit^2 + n_i/sigma_g^2`` and mean
    ``(n_i/sigma_g^2) (ybar_i - xbar_i . theta) / precision``; one draw per posterior draw gives
    draws from the joint posterior of the explicit model.

    Parameters
    ----------
    post : xarray.Dataset
        Posterior of the marginalised model (before compaction).
    design : PanelDesign
        The fitted design.
    options : ModelOptions
        The model options.
    seed : int
        Random seed.

    Returns
    -------
    xarray.DataArray
        ``unit_raw`` (chain, draw, unit) as the explicit model defines it (``a_i`` with
        ``centred_units``, else ``u_i / sigma_unit``).
    """
    d = _Draws(post)
    theta = theta_draws(post, design, options)
    x = row_design(design, options)
    n_unit = len(design.units)
    inc = sp.csr_matrix(
        (np.ones(design.n_obs), (design.unit_idx, np.arange(design.n_obs))),
        shape=(n_unit, design.n_obs),
    )
    n_i = np.asarray(inc.sum(axis=1)).ravel()
    xbar = sp.diags(1.0 / n_i) @ inc @ x
    ybar = (inc @ np.asarray(design.y, dtype=float)) / n_i
    resid = ybar[None, :] - (xbar @ theta.T).T  # (draws, units)
    sigma = d("sigma")
    s_unit = np.broadcast_to(sigma[:, None], (d.n, len(design.groups)))
    if options.ics_scales:
        s_unit = sigma[:, None] * np.exp(d("sigma_scale")[:, None] * d("z_scale"))
    s2 = np.square(s_unit[:, design.unit_group])
    su = d("sigma_unit")[:, None]
    prec = 1.0 / np.square(su) + n_i[None, :] / s2
    mean = (n_i[None, :] / s2) * resid / prec
    u = mean + np.random.default_rng(seed).standard_normal(mean.shape) / np.sqrt(prec)
    if options.centred_units:
        unit_mean = d("group_mean")[:, design.unit_group]
        if options.gradient:
            from hepcausal.models.panel_effects import unit_mean_rank

            unit_mean = unit_mean + d("gradient_group")[:, design.unit_group] * unit_mean_rank(
                design
            )
        values = unit_mean + u
    else:
        values = u / su
    shape = (post.sizes["chain"], post.sizes["draw"], n_unit)
    return xr.DataArray(
        values.reshape(shape),
        dims=("chain", "draw", "unit"),
        coords={
            "chain": post["chain"].values,
            "draw": post["draw"].values,
            "unit": [str(u) for u in design.units],
        },
        name="unit_raw",
    )

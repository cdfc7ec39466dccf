"""PyMC implementation of the hierarchical gradient model (mirrored by ``models/gradient_*.stan``).

Everything is on the standardised model scale ``z = (y - loc) / scale`` (``scale = 1`` and
``loc = logit(pooled proportion)`` for the binomial likelihoods); ``sii`` and ``level`` are
reported back on the model scale (``sii = scale * beta``, ``level = loc + scale * alpha``).

Cell parameters (ICB g, year t)::

    alpha_gt = mu + a_g + c_t + d_gt        beta_gt = b0 + b_g + e_t + f_gt
    a = sigma_icb * B_G z_a                 b = sigma_icb_slope * B_G z_b
    c = year_sd * B_T z_c                   e = year_slope_sd * B_T z_e
    d = sigma_int * B_G Z_d B_T'            f = sigma_int_slope * B_G Z_f B_T'
                                            (+ delta_treated * D, optional)

``D`` is the double-centred treated-ICB x post-period indicator
(:meth:`GradientData.treated_post_design`): with ``treated``/``start_year`` the treated ICB's
post-period SII change gets its own coefficient ``delta_treated ~ N(0, slope_sd)`` instead of
being one of the partially pooled interaction deviations ``f``.

with ``B_n`` the orthonormal sum-to-zero basis (:func:`zero_sum_basis`) and all ``z`` standard
normal: every effect block sums to zero (over ICBs, over years, and both for the interactions),
so ``mu`` and ``b0`` are the unweighted means of ``alpha`` and ``beta`` and there is no
intercept ridge; the hierarchies are non-centred.

The likelihood comes from the family table (:mod:`hepcausal.models.families`): its extra
parameters and its PyMC likelihood; marginalisable families (Gaussian) integrate the practice
effects out by default, and with ``marginalise="laplace"`` the count families integrate them out
by the Laplace approximation (:mod:`hepcausal.models.laplace`, on the (practice, slot) layout of
:func:`practice_layout`).  Prior scales: :class:`~hepcausal.models.gradient_data.GradientPriors`
(standardised scale).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import pymc as pm
import pytensor.tensor as pt

from hepcausal.models.backend import zero_sum_basis
from hepcausal.models.gradient_data import GradientData, GradientPriors
from hepcausal.models.laplace import CountRows, laplace_loglik


def _coords(data: GradientData) -> dict[str, list]:
    return {
        "icb": list(data.icbs),
        "year": list(data.years),
        "icb_zs": list(range(data.n_icb - 1)),
        "year_zs": list(range(data.n_year - 1)),
    }


def _raw(name: str, scale, centred: bool, dims):
    """Effect coordinates in the sum-to-zero basis: centred N(0, scale) or scale * N(0, 1)."""
    if centred:
        return pm.Normal(name, 0.0, scale, dims=dims)
    return scale * pm.Normal(name, 0.0, 1.0, dims=dims)


def _cells(
    data: GradientData, pr: GradientPriors, centring: dict[str, bool]
) -> tuple[pt.TensorVariable, pt.TensorVariable]:
    """Add the cell-parameter hierarchy to the current model; return (alpha, beta) as (G, T)."""
    bg = pt.constant(zero_sum_basis(data.n_icb))
    bt = pt.constant(zero_sum_basis(data.n_year))
    mu = pm.Normal("mu", 0.0, pr.mu_sd)
    b0 = pm.Normal("b0", 0.0, pr.slope_sd)
    sigma_icb = pm.HalfNormal("sigma_icb", pr.sigma_icb)
    sigma_icb_slope = pm.HalfNormal("sigma_icb_slope", pr.sigma_icb_slope)
    sigma_int = pm.HalfNormal("sigma_int", pr.sigma_int)
    sigma_int_slope = pm.HalfNormal("sigma_int_slope", pr.sigma_int_slope)
    cen = centring
    a = pt.dot(bg, _raw("z_a", sigma_icb, cen["a"], "icb_zs"))
    b = pt.dot(bg, _raw("z_b", sigma_icb_slope, cen["b"], "icb_zs"))
    c = pr.year_sd * pt.dot(bt, pm.Normal("z_c", 0.0, 1.0, dims="year_zs"))
    e = pr.year_slope_sd * pt.dot(bt, pm.Normal("z_e", 0.0, 1.0, dims="year_zs"))
    d = pt.dot(pt.dot(bg, _raw("z_d", sigma_int, cen["d"], ("icb_zs", "year_zs"))), bt.T)
    f = pt.dot(pt.dot(bg, _raw("z_f", sigma_int_slope, cen["f"], ("icb_zs", "year_zs"))), bt.T)
    alpha = mu + a[:, None] + c[None, :] + d
    beta = b0 + b[:, None] + e[None, :] + f
    if data.treat_cells is not None:
        # unpooled treated x post SII term (not shrunk by the interaction scale); the design is
        # a data container, so a placebo run (another pseudo-treated ICB) re-uses the compiled model
        delta = pm.Normal("delta_treated", 0.0, pr.slope_sd)
        beta = beta + delta * pm.Data("treat_D", data.treated_post_design())
    # data containers: a compiled model is re-used for another outcome on the same structure
    loc = pm.Data("model_loc", data.loc)
    scale = pm.Data("model_scale", data.scale)
    pm.Deterministic("sii", scale * beta, dims=("icb", "year"))
    pm.Deterministic("level", loc + scale * alpha, dims=("icb", "year"))
    return alpha, beta


def build_pymc_model(
    data: GradientData,
    pr: GradientPriors,
    *,
    marginalise: bool | str = True,
    centring: dict[str, bool] | None = None,
) -> pm.Model:
    """The PyMC gradient model for ``data`` with prior scales ``pr`` (standardised scale).

    Parameters
    ----------
    data : GradientData
        The prepared panel (its ``likelihood`` names the family).
    pr : GradientPriors
        Prior scales.
    marginalise : bool or "laplace"
        True: integrate the practice effects out where that is exact (Gaussian families:
        sufficient statistics, cost independent of the number of rows); ``"laplace"``: also
        for the count families, by the Laplace approximation (:mod:`hepcausal.models.laplace`);
        False: explicit practice effects (the exact model, for checking).  See
        :meth:`~hepcausal.models.families.Family.marginal_method`.
    centring : dict or None
        Centred (True) or non-centred blocks ``a, b, d, f`` (default all non-centred) and the
        explicit practice effects ``u`` (True: hierarchically centred on the practice's mean
        linear predictor, :func:`_centred_practice_effects`; default non-centred).

    Returns
    -------
    pymc.Model
        The model.
    """
    fam = data.family
    with pm.Model(coords=_coords(data) | {"practice": list(data.practices)}) as model:
        alpha, beta = _cells(data, pr, centring or dict.fromkeys("abdf", False))
        tau = pm.HalfNormal("tau", pr.tau)
        method = fam.marginal_method(marginalise)
        explicit = method is None
        # practice effects before the family's extra parameters (the order fixes nutpie's
        # initial jitter stream, so it is kept as it was for reproducible draws)
        lik_data = data
        if explicit and centring_u(centring):
            if not fam.on_counts:
                raise ValueError(
                    f"centred practice effects (centring block 'u') are for the count families "
                    f"(binomial, beta_binomial), not {fam.name!r}"
                )
            eta, lik_data = _centred_practice_predictor(data, alpha, beta, tau)
        elif explicit:
            lin = _linpred(data, alpha, beta)
            u = (tau * pm.Normal("z_u", 0.0, 1.0, dims="practice"))[data.practice_idx]
            # log-odds for the count families; the standardised scale for continuous ones
            eta = data.loc + lin + u if fam.on_counts else lin + u
        params = {p.name: p.pymc(getattr(pr, p.prior_key)) for p in fam.extra}
        if method == "exact":
            _marginal_gaussian(data, alpha, beta, params["sigma"], tau)
        elif method == "laplace":
            _marginal_laplace(data, alpha, beta, tau, params.get("overdispersion"))
        else:
            fam.pymc_likelihood(lik_data, eta, params)
    return model


def centring_u(centring: dict[str, bool] | None) -> bool:
    """Whether the practice effects are centred (block ``u`` of the centring dict)."""
    return bool((centring or {}).get("u", False))


def _centred_practice_predictor(
    data: GradientData, alpha: pt.TensorVariable, beta: pt.TensorVariable, tau
) -> tuple[pt.TensorVariable, GradientData]:
    """Hierarchically centred practice effects of the count families: (log-odds, padded data).

    ``z_u[i] ~ N(m_i, tau)`` is the practice's mean linear predictor plus its effect (``m_i``:
    the mean over the practice's rows of ``alpha[cell] + beta[cell] * rc``), and
    ``u_i = z_u[i] - m_i``: an exact reparameterisation (a shift with unit Jacobian) of
    ``u_i ~ N(0, tau)``.  When the data pin every practice's level down (QOF: hundreds of points
    per practice-year), the non-centred effects and the cell intercepts / slopes form ridges that
    only the prior resolves (Gelfand, Sahu & Carlin 1995); centred, they do not.

    The rows are laid out as a (practice, slot) matrix (:func:`practice_layout`), so practice
    sums are row sums (no scatter over rows); padding slots have zero trials and zero
    successes, which add exactly zero to the binomial and beta-binomial log-likelihoods.
    Returns the flattened log-odds and a copy of ``data`` with the padded counts.
    """
    lay = practice_layout(data)
    a = alpha.flatten()[lay.cell]
    b = beta.flatten()[lay.cell]
    lin = a + b * lay.rc  # (P, S)
    m = pt.sum(lin * lay.mask, axis=1) / lay.n_rows
    z_u = pm.Normal("z_u", m, tau, dims="practice")
    eta = data.loc + lin + (z_u - m)[:, None]
    padded = replace(data, successes=lay.successes.ravel(), trials=lay.trials.ravel())
    return eta.flatten(), padded


@dataclass(frozen=True)
class PracticeLayout:
    """Rows as a (practice, slot) matrix; padding slots have mask 0 and zero counts."""

    cell: np.ndarray  # (P, S) int cell index (0 in padding)
    rc: np.ndarray  # (P, S) centred rank (0 in padding)
    mask: np.ndarray  # (P, S) 1 for a row, 0 for padding
    n_rows: np.ndarray  # (P,) rows per practice
    successes: np.ndarray  # (P, S) int
    trials: np.ndarray  # (P, S) int


def practice_layout(data: GradientData) -> PracticeLayout:
    """The rows of ``data`` as a (practice, slot) matrix, in row order within each practice.

    Parameters
    ----------
    data : GradientData
        The prepared panel (count families: ``successes`` and ``trials``).

    Returns
    -------
    PracticeLayout
        Cells, ranks, mask, rows per practice and counts, padded to the most rows of a practice.
    """
    assert data.successes is not None and data.trials is not None
    pidx = data.practice_idx
    n_rows = np.bincount(pidx, minlength=data.n_practice)
    order = np.argsort(pidx, kind="stable")
    starts = np.concatenate([[0], np.cumsum(n_rows)[:-1]])
    slot = np.arange(len(pidx)) - starts[pidx[order]]
    shape = (data.n_practice, int(n_rows.max()))

    def pad(values: np.ndarray, dtype: type) -> np.ndarray:
        out: np.ndarray = np.zeros(shape, dtype=dtype)
        out[pidx[order], slot] = values[order]
        return out

    return PracticeLayout(
        cell=pad(data.cell_idx, np.int64),
        rc=pad(data.rc, float),
        mask=pad(np.ones(len(pidx)), float),
        n_rows=n_rows.astype(float),
        successes=pad(data.successes, np.int64),
        trials=pad(data.trials, np.int64),
    )


def _marginal_laplace(data: GradientData, alpha, beta, tau, overdispersion) -> None:
    """Count families: the practice effects integrated out by the Laplace approximation."""
    lay = practice_layout(data)
    rows = CountRows.from_padded(lay.successes, lay.trials)
    eta0 = data.loc + alpha.flatten()[lay.cell] + beta.flatten()[lay.cell] * lay.rc
    phi = None if overdispersion is None else 1.0 / pt.sqr(overdispersion)
    ll, _, _ = laplace_loglik(data.likelihood, eta0, rows, tau, phi)
    pm.Potential("laplace_loglik", pt.sum(ll))


def _linpred(data: GradientData, alpha: pt.TensorVariable, beta: pt.TensorVariable):
    a = alpha.flatten()[data.cell_idx]
    b = beta.flatten()[data.cell_idx]
    return a + b * data.rc


def _marginal_gaussian(data: GradientData, alpha, beta, sigma, tau) -> None:
    # every statistic is a data container (:func:`pymc_data`): a compiled model is re-used for
    # new outcomes, designs or weights with the same ICBs, years and priors (sweeps, SBC)
    d = pymc_data(data)
    n_per, count = pm.Data("suff_n_per", d["suff_n_per"]), pm.Data("suff_count", d["suff_count"])
    syy, sxy = pm.Data("suff_syy", d["suff_syy"]), pm.Data("suff_sxy", d["suff_sxy"])
    sxx = pm.Data("suff_sxx", d["suff_sxx"])
    row, col = pm.Data("suff_row", d["suff_row"]), pm.Data("suff_col", d["suff_col"])
    theta = pt.concatenate([alpha.flatten(), beta.flatten()])
    var = pt.concatenate([pt.stack([pt.sqr(sigma)]), pt.sqr(tau) + pt.sqr(sigma) / n_per])
    w = 1.0 / var
    ew = pt.dot(sxx, w)
    quad = pt.sum(ew * theta[row] * theta[col])
    lin = pt.dot(theta, pt.dot(sxy, w))
    ll = -0.5 * (pt.dot(count, pt.log(var)) + pt.dot(syy, w) - 2.0 * lin + quad)
    pm.Potential("marginal_loglik", ll)


def pymc_data(data: GradientData) -> dict[str, np.ndarray]:
    """Values of the marginalised model's data containers for ``data`` (compiled-model reuse).

    Parameters
    ----------
    data : GradientData
        The prepared panel.

    Returns
    -------
    dict
        Container name -> value (sufficient statistics, ``model_loc``/``model_scale`` and, with
        the treated term, ``treat_D``).
    """
    st = data.gaussian_stats()
    out: dict[str, np.ndarray] = {
        "suff_n_per": np.asarray(st.n_per, dtype=float),
        "suff_count": np.asarray(st.count, dtype=float),
        "suff_syy": np.asarray(st.syy, dtype=float),
        "suff_sxy": np.asarray(st.sxy, dtype=float),
        "suff_sxx": np.asarray(st.sxx, dtype=float),
        "suff_row": np.asarray(st.row, dtype=np.int64),
        "suff_col": np.asarray(st.col, dtype=np.int64),
        "model_loc": np.asarray(data.loc, dtype=float),
        "model_scale": np.asarray(data.scale, dtype=float),
    }
    if data.treat_cells is not None:
        out["treat_D"] = data.treated_post_design()
    return out


def marginal_loglik_numpy(data: GradientData, theta: np.ndarray, sigma: float, tau: float) -> float:
    """The marginalised log-likelihood of :func:`build_pymc_model` in NumPy (for tests)."""
    st = data.gaussian_stats()
    var = np.concatenate([[sigma**2], tau**2 + sigma**2 / st.n_per])
    w = 1.0 / var
    quad = np.sum((st.sxx @ w) * theta[st.row] * theta[st.col])
    lin = theta @ (st.sxy @ w)
    return float(-0.5 * (st.count @ np.log(var) + st.syy @ w - 2 * lin + quad))

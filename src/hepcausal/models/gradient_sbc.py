"""Simulation-based calibration (SBC) of the gradient model's treated-ICB SII change.

Each simulation draws every parameter from the model's prior (standardised scale fixed at
``loc = 0, scale = 1`` so the prior does not depend on the data), simulates a Gaussian outcome
on a fixed synthetic design (ICBs, practices, years, ranks), fits the marginalised model (one
nutpie compile, re-used via data containers) and records the rank of the true contrast

    delta = mean_{t >= start} beta_{T,t} - mean_{t < start} beta_{T,t}      (T = treated ICB)

among ``n_draws`` thinned posterior draws.  For a correct implementation the ranks are uniform on
``0..n_draws``; uniformity is tested with a chi-square test over ``n_bins`` equal bins.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

from hepcausal import schema as S
from hepcausal.models.backend import zero_sum_basis
from hepcausal.models.gradient_data import (
    GradientData,
    GradientPriors,
    prepare_gradient_data,
)


@dataclass(frozen=True)
class SBCResult:
    """Ranks of the true contrast, their chi-square uniformity test and interval coverage."""

    ranks: np.ndarray
    n_draws: int
    chi2: float
    pvalue: float
    coverage_90: float
    n_bins: int
    min_ess: float

    def histogram(self) -> np.ndarray:
        edges = np.linspace(0, self.n_draws + 1, self.n_bins + 1)
        return np.histogram(self.ranks, bins=edges)[0]


def draw_prior(data: GradientData, pr: GradientPriors, rng: np.random.Generator) -> dict:
    """One draw of the cell parameters and variance components from the model's prior."""
    g, t = data.n_icb, data.n_year
    bg, bt = zero_sum_basis(g), zero_sum_basis(t)

    def hn(s: float) -> float:
        return abs(rng.normal(0, s))

    mu, b0 = rng.normal(0, pr.mu_sd), rng.normal(0, pr.slope_sd)
    s_a, s_b = hn(pr.sigma_icb), hn(pr.sigma_icb_slope)
    s_d, s_f = hn(pr.sigma_int), hn(pr.sigma_int_slope)
    alpha = (
        mu
        + (s_a * bg @ rng.normal(size=g - 1))[:, None]
        + (pr.year_sd * bt @ rng.normal(size=t - 1))[None, :]
        + s_d * bg @ rng.normal(size=(g - 1, t - 1)) @ bt.T
    )
    beta = (
        b0
        + (s_b * bg @ rng.normal(size=g - 1))[:, None]
        + (pr.year_slope_sd * bt @ rng.normal(size=t - 1))[None, :]
        + s_f * bg @ rng.normal(size=(g - 1, t - 1)) @ bt.T
    )
    return {"alpha": alpha, "beta": beta, "tau": hn(pr.tau), "sigma": hn(pr.sigma)}


def sbc_design(seed: int = 1) -> pd.DataFrame:
    """Fixed design of the SBC: 6 ICBs (incl. QK1) x 20 practices x 5 years."""
    from hepcausal.data.synthetic import SimulationConfig, simulate_panel

    icbs = (S.LLR_ICB, "QJ2", "QOQ", "QT1", "QHM", "QWO")
    cfg = SimulationConfig.small(
        n_practices=120, icbs=icbs, years=(2019, 2020, 2021, 2022, 2023), seed=seed
    )
    return simulate_panel(cfg).panel


def run_sbc(
    n_sims: int = 200,
    *,
    seed: int = 1,
    n_draws: int = 199,
    n_bins: int = 10,
    draws_per_chain: int = 500,
    treated: str = S.LLR_ICB,
    start_year: int = S.HEP_START_YEAR,
) -> SBCResult:
    """Run SBC of the treated-ICB SII change (see module docstring); same seed, same ranks."""
    import arviz as az
    import nutpie

    from hepcausal.models.gradient_pymc import build_pymc_model

    panel = sbc_design()
    data = prepare_gradient_data(panel, S.GP_FTE, standardise=(0.0, 1.0))
    pr = GradientPriors()
    compiled = nutpie.compile_pymc_model(build_pymc_model(data, pr))
    rng = np.random.default_rng(seed)
    g = data.icbs.index(treated)
    post_cols = np.array([y >= start_year for y in data.years])
    k = data.n_icb * data.n_year
    ranks, inside, ess = [], [], []
    for i in range(n_sims):
        par = draw_prior(data, pr, rng)
        theta = np.concatenate([par["alpha"].ravel(), par["beta"].ravel()])
        mean = theta[data.cell_idx] + theta[data.cell_idx + k] * data.rc
        u = rng.normal(0, par["tau"], size=data.n_practice)
        data.y = mean + u[data.practice_idx] + rng.normal(0, par["sigma"], size=data.n_obs)
        st = data.gaussian_stats()
        fit = nutpie.sample(
            compiled.with_data(suff_syy=st.syy, suff_sxy=st.sxy),
            draws=draws_per_chain,
            tune=500,
            chains=2,
            cores=2,
            seed=seed * 100_003 + i,
            progress_bar=False,
            target_accept=0.9,
        )
        sii = fit.posterior["sii"].sel(icb=treated).values  # (chain, draw, year)
        delta = sii[..., post_cols].mean(-1) - sii[..., ~post_cols].mean(-1)
        ess.append(float(az.ess(delta[None] if delta.ndim == 1 else delta)))
        flat = delta.ravel()
        thin = flat[np.linspace(0, flat.size - 1, n_draws).astype(int)]
        true = par["beta"][g, post_cols].mean() - par["beta"][g, ~post_cols].mean()
        ranks.append(int(np.sum(thin < true)))
        lo, hi = np.quantile(flat, [0.05, 0.95])
        inside.append(lo <= true <= hi)
    ranks_a = np.asarray(ranks)
    edges = np.linspace(0, n_draws + 1, n_bins + 1)
    counts = np.histogram(ranks_a, bins=edges)[0]
    chi2, p = stats.chisquare(counts)
    return SBCResult(
        ranks=ranks_a,
        n_draws=n_draws,
        chi2=float(chi2),
        pvalue=float(p),
        coverage_90=float(np.mean(inside)),
        n_bins=n_bins,
        min_ess=float(min(ess)),
    )

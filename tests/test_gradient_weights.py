"""Population weighting of the gradient model (``weights="list_size"``, Design.weights)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from scipy import stats

from hepcausal import schema as S
from hepcausal.data.synthetic import SimulationConfig, simulate_panel
from hepcausal.inequality.classical import sii_unit
from hepcausal.models.gradient import fit_gradient
from hepcausal.models.gradient_data import prepare_gradient_data
from hepcausal.models.gradient_pymc import marginal_loglik_numpy
from hepcausal.sampling import SamplerSettings

ICBS = ("QK1", "QJ2", "QOQ", "QT1")
YEARS = (2020, 2021, 2022)


def weighted_panel(k: float = 0.25):
    """A generator panel where big practices have a steeper gradient than small ones.

    ``k * (rank - 0.5) * z(log list_size)`` is added to GP FTE, so the population-weighted SII
    exceeds the practice-average SII by a margin the fits must resolve.
    """
    cfg = SimulationConfig.small(n_practices=240, icbs=ICBS, years=YEARS, seed=5)
    panel = simulate_panel(cfg).panel.copy()
    lz = np.log(panel[S.LIST_SIZE].astype(float))
    lz = (lz - lz.mean()) / lz.std()
    panel[S.GP_FTE] = panel[S.GP_FTE] + k * (panel[S.DEPRIVATION_RANK] - 0.5) * lz
    return panel


def classical(panel, weighted: bool) -> float:
    """Mean over ICB-years of the classical unit-level SII (WLS on rank)."""
    out = []
    for _, cell in panel.groupby([S.ICB, S.YEAR]):
        w = cell[S.LIST_SIZE].to_numpy(float) if weighted else None
        res = sii_unit(cell[S.GP_FTE].to_numpy(float), w, ranks=cell[S.DEPRIVATION_RANK])
        out.append(res.sii)
    return float(np.mean(out))


def test_weighted_marginal_likelihood_is_weighted_practice_sum() -> None:
    """With weights the sufficient statistics give sum_i w_i log p(y_i | theta) + constant."""
    panel = weighted_panel()
    data = prepare_gradient_data(panel, S.GP_FTE, weights=S.LIST_SIZE)
    assert data.practice_weight is not None
    w = data.practice_weight
    v = np.bincount(data.practice_idx, weights=panel.loc[:, S.LIST_SIZE].to_numpy(float))
    assert np.isclose(w.sum(), v.sum() ** 2 / np.sum(v**2), rtol=0.2)  # about Kish's n_eff
    rng = np.random.default_rng(1)
    k = 2 * data.n_icb * data.n_year
    diffs = []
    for _ in range(3):
        theta = rng.normal(0, 0.5, size=k)
        sigma, tau = rng.uniform(0.3, 1.2, size=2)
        mean = theta[data.cell_idx] + theta[data.cell_idx + k // 2] * data.rc
        dense = 0.0
        for p in range(data.n_practice):
            sel = data.practice_idx == p
            n = int(sel.sum())
            cov = sigma**2 * np.eye(n) + tau**2 * np.ones((n, n))
            dense += w[p] * stats.multivariate_normal(mean[sel], cov).logpdf(data.z[sel])
        diffs.append(dense - marginal_loglik_numpy(data, theta, sigma, tau))
    assert np.ptp(diffs) < 1e-6 * abs(diffs[0]) + 1e-6


def test_population_weighted_sii_matches_classical() -> None:
    """weights='list_size' recovers the classical population-weighted SII; None the average."""
    panel = weighted_panel()
    cl_w, cl_u = classical(panel, True), classical(panel, False)
    assert cl_w - cl_u > 0.1  # the two estimands differ on this panel
    settings = SamplerSettings(draws=400, tune=400, chains=2, seed=3)
    res = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # short chains: convergence is not what is tested
        for wt in (None, S.LIST_SIZE):
            fit = fit_gradient(panel, S.GP_FTE, settings=settings, weights=wt)
            sii = fit.idata.posterior["sii"].mean(("icb", "year"))
            res[wt] = (float(sii.mean()), float(sii.std()), fit.meta["estimand"])
    m_w, sd_w, est_w = res[S.LIST_SIZE]
    m_u, sd_u, est_u = res[None]
    assert est_w["weighting"] == f"population-weighted ({S.LIST_SIZE})"
    assert est_u["weighting"] == "practice-average"
    # each fit is near its own classical estimand and far from the other
    assert abs(m_w - cl_w) < max(2 * sd_w, 0.25 * (cl_w - cl_u))
    assert abs(m_u - cl_u) < max(2 * sd_u, 0.25 * (cl_w - cl_u))
    assert m_w - m_u > 0.5 * (cl_w - cl_u)


def test_weights_need_a_marginalisable_family_and_positive_values() -> None:
    panel = weighted_panel()
    with pytest.raises(ValueError, match="marginalis"):
        fit_gradient(panel, S.GP_FTE, weights=S.LIST_SIZE, marginalise=False)
    bad = panel.copy()
    bad.loc[bad.index[3], S.LIST_SIZE] = -1
    with pytest.raises(ValueError, match="list_size"):
        prepare_gradient_data(bad, S.GP_FTE, weights=S.LIST_SIZE)
    with pytest.raises(KeyError, match="nope"):
        prepare_gradient_data(panel, S.GP_FTE, weights="nope")

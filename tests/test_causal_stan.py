"""models/panel_effects.stan agrees with the PyMC panel-effects model (DiD and DDD)."""

from __future__ import annotations

import arviz as az
import numpy as np
import pytest

from hepcausal import schema as S
from hepcausal.causal.did import fit_ddd, fit_did
from hepcausal.causal.panel_fit import CausalFit
from hepcausal.data.synthetic import SimulationConfig, simulate_panel
from hepcausal.sampling import SamplerSettings
from hepcausal.spec import Design, Inference

ICBS = ("QK1", "QJ2", "QOQ", "QT1", "QHM", "QWO", "QF7")
COMPS = list(ICBS[1:])
YEARS = (2019, 2020, 2021, 2022, 2023)
SETTINGS = SamplerSettings(draws=1000, tune=1000, chains=4, seed=15)

pytestmark = [
    pytest.mark.stan,
    pytest.mark.filterwarnings("ignore::hepcausal.diagnostics.ConvergenceWarning"),
]


@pytest.fixture(scope="module")
def panel():
    cfg = SimulationConfig.small(
        n_practices=175, icbs=ICBS, years=YEARS, level_effect=0.04, gradient_effect=-0.12, seed=501
    )
    return simulate_panel(cfg).panel


def _agree(a: CausalFit, b: CausalFit, z_max: float = 4.5) -> None:
    """Outcome-scale effects: means and 5%/95% quantiles agree within Monte-Carlo error."""
    pa, pb = a.idata.posterior["estimand"], b.idata.posterior["estimand"]
    np.testing.assert_array_equal(pa["term"].values, pb["term"].values)
    for q in (None, 0.05, 0.95):
        if q is None:
            ea, eb = pa.mean(("chain", "draw")), pb.mean(("chain", "draw"))
            sa, sb = az.mcse(pa)["estimand"], az.mcse(pb)["estimand"]
        else:
            ea, eb = pa.quantile(q, ("chain", "draw")), pb.quantile(q, ("chain", "draw"))
            sa = az.mcse(pa, method="quantile", prob=q)["estimand"]
            sb = az.mcse(pb, method="quantile", prob=q)["estimand"]
        z = np.abs((ea - eb).to_numpy()) / np.sqrt(sa.to_numpy() ** 2 + sb.to_numpy() ** 2)
        assert np.max(z) < z_max, (q, float(np.max(z)))
    sd_ratio = pa.std(("chain", "draw")) / pb.std(("chain", "draw"))
    assert np.all((sd_ratio > 0.75) & (sd_ratio < 1.33)), sd_ratio.values


@pytest.mark.parametrize("fitter", [fit_did, fit_ddd], ids=["did", "ddd"])
def test_stan_matches_pymc(panel, fitter) -> None:
    design = Design(comparators=COMPS)
    pymc_fit = fitter(panel, S.GP_FTE, design, Inference(settings=SETTINGS))
    stan_fit = fitter(panel, S.GP_FTE, design, Inference(backend="stan", settings=SETTINGS))
    assert stan_fit.meta["backend"] == "stan"
    # the default error model (practice pre/post changes) runs models/panel_prepost.stan
    assert stan_fit.idata.posterior.attrs["stan_program"] == "panel_prepost.stan"
    assert list(stan_fit.effects) == list(pymc_fit.effects)
    _agree(pymc_fit, stan_fit)
    shared = [
        v for v in pymc_fit.idata.posterior.data_vars if v.startswith("sigma") and "__" not in v
    ]
    assert "sigma" in shared
    for var in shared:
        assert stan_fit.idata.posterior[var].dims == pymc_fit.idata.posterior[var].dims, var
    assert np.isfinite(stan_fit.diagnostics.max_rhat)

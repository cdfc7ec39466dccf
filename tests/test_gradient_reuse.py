"""Compiled-model reuse: a later gradient fit with the same structure does not recompile."""

from __future__ import annotations

import warnings

import numpy as np

from hepcausal import schema as S
from hepcausal.data.synthetic import SimulationConfig, simulate_panel
from hepcausal.models.backend import clear_compiled_cache
from hepcausal.models.gradient import fit_gradient
from hepcausal.sampling import SamplerSettings

ICBS = ("QK1", "QJ2", "QOQ")
YEARS = (2020, 2021, 2022)


def test_second_fit_reuses_the_compiled_model_with_new_data() -> None:
    """Same ICBs/years/priors, another outcome: re-used, and the same draws as a fresh compile."""
    cfg = SimulationConfig.small(n_practices=90, icbs=ICBS, years=YEARS, seed=4)
    panel = simulate_panel(cfg).panel
    other = next(c for c in (S.NURSE_FTE, S.ADMIN_FTE) if c in panel.columns)
    s = SamplerSettings(draws=200, tune=200, chains=2, seed=8)
    clear_compiled_cache()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # deliberately short chains
        first = fit_gradient(panel, S.GP_FTE, settings=s, centring={"a": False, "b": False})
        second = fit_gradient(panel, other, settings=s, centring={"a": False, "b": False})
        clear_compiled_cache()
        fresh = fit_gradient(panel, other, settings=s, centring={"a": False, "b": False})
    attrs = [f.idata.posterior.attrs for f in (first, second, fresh)]
    assert [a["hepcausal_compiled_model_reused"] for a in attrs] == [0, 1, 0]
    # the re-used model has the new outcome's data: identical draws to a fresh compile
    np.testing.assert_allclose(
        second.idata.posterior["sii"].values, fresh.idata.posterior["sii"].values, rtol=1e-6
    )
    assert not np.allclose(
        first.idata.posterior["sii"].mean().values, second.idata.posterior["sii"].mean().values
    )

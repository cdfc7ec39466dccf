"""Triple differences on the deprivation gradient: recovery, null, and DiD as the wrong model."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from hepcausal import schema as S
from hepcausal.causal.design import DesignError
from hepcausal.causal.did import fit_ddd, fit_did
from hepcausal.data.synthetic import SimulationConfig, simulate_panel
from hepcausal.diagnostics import ConvergenceWarning
from hepcausal.sampling import SamplerSettings
from hepcausal.spec import Design, Inference

ICBS = ("QK1", "QJ2", "QOQ", "QT1", "QHM", "QWO", "QF7", "QE1", "QWU")
COMPS = list(ICBS[1:])
YEARS = (2019, 2020, 2021, 2022, 2023, 2024)
SETTINGS = SamplerSettings(draws=500, tune=500, chains=2, seed=12)
INF = Inference(settings=SETTINGS)
DESIGN = Design(comparators=COMPS)

# Short chains (2 x 500) keep CI fast; they are not expected to pass the convergence check, so its
# warning is silenced in those tests.  The recovery test runs the package defaults and must pass it.
SHORT = pytest.mark.filterwarnings("ignore::hepcausal.diagnostics.ConvergenceWarning")


def _sim(**kw):
    cfg = SimulationConfig.small(n_practices=270, icbs=ICBS, years=YEARS, **kw)
    return simulate_panel(cfg)


@pytest.fixture(scope="module")
def gradient_panel():
    """A pure gradient effect: the treated SII falls by 0.15 FTE/1k, the level is unchanged."""
    return _sim(level_effect=0.0, gradient_effect=-0.15, seed=201)


@pytest.mark.filterwarnings("error::hepcausal.diagnostics.ConvergenceWarning")
def test_ddd_recovers_gradient_effect_and_did_misses_it(gradient_panel) -> None:
    truth = gradient_panel.truth
    ddd_true, did_true = truth.ddd(S.GP_FTE, COMPS), truth.did(S.GP_FTE, COMPS)
    # package defaults (4 chains x 2000, low-rank mass matrix): must pass R-hat <= 1.01, ESS >= 400
    fit = fit_ddd(
        gradient_panel.panel, S.GP_FTE, DESIGN, Inference(settings=SamplerSettings(seed=12))
    )
    assert fit.diagnostics.ok, fit.diagnostics
    g, lev = fit.effects["delta_gradient"], fit.effects["delta_level"]
    assert fit.headline is g
    assert g.hdi_low <= ddd_true <= g.hdi_high, (ddd_true, g)
    assert g.hdi_high < 0 and g.p_direction > 0.99  # detected
    assert lev.hdi_low <= did_true <= lev.hdi_high, (did_true, lev)
    assert fit.meta["rank_col"] == S.DEPRIVATION_RANK
    # Wrong model: DiD ignores the gradient, so the same panel looks like "no effect".
    with warnings.catch_warnings():  # short chains (see SHORT)
        warnings.simplefilter("ignore", ConvergenceWarning)
        did = fit_did(gradient_panel.panel, S.GP_FTE, DESIGN, INF)
    assert did.headline.hdi_low < 0 < did.headline.hdi_high
    assert abs(did.headline.mean) < abs(g.mean) / 3


@SHORT
def test_ddd_null_effect_covers_zero() -> None:
    sp = _sim(level_effect=0.0, gradient_effect=0.0, seed=202)
    fit = fit_ddd(sp.panel, S.GP_FTE, DESIGN, INF)
    for name in ("delta_gradient", "delta_level"):
        e = fit.effects[name]
        assert e.hdi_low < 0 < e.hdi_high, e


def test_ddd_input_errors(gradient_panel) -> None:
    p = gradient_panel.panel
    with pytest.raises(DesignError, match="rank column 'imd_rank'"):
        fit_ddd(p, S.GP_FTE, DESIGN.with_(rank_col="imd_rank"))
    with pytest.raises(DesignError, match="the DDD needs a rank"):
        fit_ddd(p, S.GP_FTE, DESIGN.with_(rank_col=None))
    bad = p.copy()
    bad.loc[bad.index[0], S.DEPRIVATION_RANK] = 1.5
    with pytest.raises(DesignError, match=r"must lie in \[0, 1\]"):
        fit_ddd(bad, S.GP_FTE, DESIGN)
    bad = p.copy()
    bad[S.GP_FTE] = np.where(bad[S.ICB] == "QK1", np.nan, bad[S.GP_FTE])
    with pytest.raises(DesignError, match=r"no pre-period rows .* treated"):
        fit_ddd(bad, S.GP_FTE, DESIGN)

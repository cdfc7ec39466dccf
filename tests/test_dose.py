"""Dose-response: recovery of the per-GBP effect, a null dose effect, input errors."""

from __future__ import annotations

import numpy as np
import pytest

from hepcausal import schema as S
from hepcausal.causal.design import DesignError
from hepcausal.causal.dose import fit_dose_response
from hepcausal.data.synthetic import SimulationConfig, simulate_panel
from hepcausal.sampling import SamplerSettings
from hepcausal.spec import Design, Inference

ICBS = ("QK1", "QJ2", "QOQ", "QT1", "QHM", "QWO", "QF7", "QE1", "QWU")
COMPS = list(ICBS[1:])
YEARS = (2019, 2020, 2021, 2022, 2023, 2024)
SETTINGS = SamplerSettings(draws=500, tune=500, chains=2, seed=14)
INF = Inference(settings=SETTINGS)
DESIGN = Design(comparators=COMPS)

pytestmark = pytest.mark.filterwarnings("ignore::hepcausal.diagnostics.ConvergenceWarning")


def _sim(**kw):
    cfg = SimulationConfig.small(n_practices=270, icbs=ICBS, years=YEARS, dose=True, **kw)
    return simulate_panel(cfg)


@pytest.fixture(scope="module")
def dose_panel():
    # dose 2-10 GBP/weighted patient, +0.01 FTE/1k per GBP, on top of an SII change of -0.04
    return _sim(dose_effect=0.01, gradient_effect=-0.04, level_effect=0.0, seed=401)


def test_dose_response_recovers_per_unit_effect(dose_panel) -> None:
    truth = dose_panel.truth.dose_effect[S.GP_FTE]
    fit = fit_dose_response(dose_panel.panel, S.GP_FTE, DESIGN, INF)
    h = fit.headline
    assert h.name == "dose" and "per unit of dose" in h.units
    assert h.hdi_low <= truth <= h.hdi_high, (truth, h)
    assert h.hdi_low > 0
    assert set(fit.effects) == {"dose", "delta_level", "delta_gradient"}
    assert fit.meta["dose_col"] == S.HEP_DOSE and fit.diagnostics.max_rhat < 1.05


def test_dose_null_effect_covers_zero() -> None:
    sp = _sim(dose_effect=0.0, gradient_effect=-0.04, level_effect=0.03, seed=402)
    fit = fit_dose_response(sp.panel, S.GP_FTE, DESIGN, INF)
    assert fit.headline.hdi_low < 0 < fit.headline.hdi_high, fit.headline


def test_dose_input_errors(dose_panel) -> None:
    p = dose_panel.panel
    with pytest.raises(DesignError, match="dose column 'hep_dose' is not in the panel"):
        fit_dose_response(p.drop(columns=[S.HEP_DOSE]), S.GP_FTE, DESIGN)
    with pytest.raises(DesignError, match="entirely missing"):
        fit_dose_response(p.assign(**{S.HEP_DOSE: np.nan}), S.GP_FTE, DESIGN)
    with pytest.raises(DesignError, match="zero on every analysed row"):
        fit_dose_response(p.assign(**{S.HEP_DOSE: 0.0}), S.GP_FTE, DESIGN)
    with pytest.raises(DesignError, match="negative values"):
        fit_dose_response(p.assign(**{S.HEP_DOSE: -1.0}), S.GP_FTE, DESIGN)
    with pytest.raises(DesignError, match="does not take a treatment column"):
        fit_dose_response(p, S.GP_FTE, DESIGN.with_(treat_col=S.HEP_TREATED))

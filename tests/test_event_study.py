"""Event study: per-year recovery on a clean panel; a planted pre-trend is flagged."""

from __future__ import annotations

import numpy as np
import pytest

from hepcausal import schema as S
from hepcausal.causal.design import DesignError
from hepcausal.causal.event_study import (
    EventStudyFit,
    PreTrendWarning,
    fit_event_study,
    pretrend_check,
)
from hepcausal.data.synthetic import SimulationConfig, simulate_panel
from hepcausal.diagnostics import check_convergence
from hepcausal.sampling import SamplerSettings
from hepcausal.spec import Design, Inference

ICBS = ("QK1", "QJ2", "QOQ", "QT1", "QHM", "QWO", "QF7", "QE1", "QWU")
COMPS = list(ICBS[1:])
YEARS = (2018, 2019, 2020, 2021, 2022, 2023, 2024)
SETTINGS = SamplerSettings(draws=500, tune=500, chains=2, seed=13)
INF = Inference(settings=SETTINGS)
DESIGN = Design(comparators=COMPS)

# Short chains (2 x 500) keep CI fast and are not expected to pass the convergence check; the
# recovery test runs the package defaults and checks the event coefficients strictly.
pytestmark = pytest.mark.filterwarnings("ignore::hepcausal.diagnostics.ConvergenceWarning")


def _per_year_truth(truth, ref: int = 2021) -> dict[int, float]:
    """(treated - comparator mean) change in the true SII relative to ``ref``, per year."""
    t = truth.sii[truth.sii["outcome"] == S.GP_FTE].pivot(index=S.ICB, columns=S.YEAR, values="sii")
    rel = t.sub(t[ref], axis=0)
    diff = rel.loc["QK1"] - rel.loc[COMPS].mean()
    return {int(y): float(v) for y, v in diff.items()}


def test_event_study_gradient_recovers_path_without_false_pretrend() -> None:
    sp = simulate_panel(
        SimulationConfig.small(
            n_practices=270,
            icbs=ICBS,
            years=YEARS,
            level_effect=0.0,
            gradient_effect=-0.15,
            seed=301,
        )
    )
    fit = fit_event_study(sp.panel, S.GP_FTE, DESIGN, Inference(settings=SamplerSettings(seed=13)))
    # defaults: the event coefficients must mix (R-hat <= 1.01, bulk and tail ESS >= 400)
    assert check_convergence(fit.idata, ["effect"], warn=False).ok
    assert fit.diagnostics.max_rhat <= 1.01 and fit.diagnostics.n_divergences == 0
    assert isinstance(fit, EventStudyFit) and fit.reference_year == 2021
    tab = fit.event_table()
    assert list(tab.columns) == [
        "year",
        "relative_time",
        "mean",
        "hdi_low",
        "hdi_high",
        "p_direction",
        "period",
    ]
    assert tab["year"].tolist() == list(YEARS)
    assert tab["period"].tolist() == ["pre"] * 3 + ["ref"] + ["post"] * 3
    assert tab["relative_time"].tolist() == [-4, -3, -2, -1, 0, 1, 2]
    truth = _per_year_truth(sp.truth)
    covered = [
        lo <= truth[y] <= hi
        for y, lo, hi in zip(tab["year"], tab["hdi_low"], tab["hdi_high"], strict=True)
        if y != 2021
    ]
    assert all(covered), (tab, truth)
    post = tab[tab["period"] == "post"]
    assert (post["mean"] < 0).all()  # single years are noisy (one ICB-year each) ...
    assert not fit.pretrend["flag"] and fit.pretrend["n_pre"] == 3
    assert fit.pretrend["p_joint"] > 0.05
    assert fit.meta["pretrend"]["flag"] is False
    assert not fit.summary()["pretrend_flag"].any()
    h = fit.headline
    assert h.name == "post_mean (gradient)"
    assert h.hdi_low <= sp.truth.ddd(S.GP_FTE, COMPS) <= h.hdi_high
    assert h.hdi_high < 0  # ... their average detects the SII fall
    assert "level[2023]" in fit.effects  # level path estimated alongside
    assert fit.event_table("level")["period"].tolist() == tab["period"].tolist()


def test_event_study_flags_planted_pretrend() -> None:
    """Treated ICB on a steeper level trend in every year: pre-period coefficients are non-zero."""
    sp = simulate_panel(
        SimulationConfig.small(
            n_practices=270, icbs=ICBS, years=YEARS, level_effect=0.0, gradient_effect=0.0, seed=302
        )
    )
    panel = sp.panel.copy()
    treated = panel[S.ICB] == "QK1"
    panel.loc[treated, S.GP_FTE] += 0.03 * (panel.loc[treated, S.YEAR] - 2021)
    with pytest.warns(PreTrendWarning, match="parallel trends are doubtful"):
        fit = fit_event_study(panel, S.GP_FTE, DESIGN, INF, target="level")
    assert fit.pretrend["flag"] and fit.pretrend["p_joint"] < 0.01
    assert fit.summary()["pretrend_flag"].all()
    tab = fit.event_table()
    pre = tab[tab["period"] == "pre"].set_index("year")
    assert pre.loc[2018, "hdi_high"] < 0  # -0.09 planted three years before the reference
    assert "FLAGGED" in repr(fit)
    with pytest.raises(KeyError, match="no gradient coefficients"):
        fit.event_table("gradient")


def test_pretrend_check_statistic() -> None:
    rng = np.random.default_rng(0)
    null = rng.normal(0.0, 1.0, size=(4000, 3))
    res = pretrend_check(null, [2018, 2019, 2020], rope=(-3.0, 3.0))
    assert not res["flag"] and res["p_joint"] > 0.5 and res["p_all_in_rope"] > 0.9
    shifted = null + np.array([0.0, 0.0, 3.5])
    assert pretrend_check(shifted, [2018, 2019, 2020], rope=None)["flag"]
    assert pretrend_check(np.zeros((10, 0)), [], rope=None)["flag"] is False


def test_event_study_input_errors() -> None:
    sp = simulate_panel(
        SimulationConfig.small(n_practices=54, icbs=ICBS[:3], years=YEARS, seed=303)
    )
    QJ2 = Design(comparators=("QJ2",))
    with pytest.raises(DesignError, match="reference_year 2022 must be before"):
        fit_event_study(sp.panel, S.GP_FTE, QJ2, reference_year=2022)
    with pytest.raises(DesignError, match="reference_year 2010 has no observed"):
        fit_event_study(sp.panel, S.GP_FTE, QJ2, reference_year=2010)
    with pytest.raises(ValueError, match="target must be"):
        fit_event_study(sp.panel, S.GP_FTE, QJ2, target="slope")  # type: ignore[arg-type]
    with pytest.raises(DesignError, match="needs a rank"):
        fit_event_study(sp.panel, S.GP_FTE, QJ2.with_(rank_col=None))

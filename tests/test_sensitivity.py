"""Parallel-trends sensitivity: a continuing linear pre-trend biases the plain event study; the
smoothness (M = 0) and relative-magnitude (Mbar = 1) bounds cover the truth, and a sign flip in
the extrapolation would not."""

from __future__ import annotations

import numpy as np
import pytest

from hepcausal import schema as S
from hepcausal.causal.event_study import fit_event_study
from hepcausal.causal.sensitivity import PathDraws, identified_set, trend_sensitivity
from hepcausal.data.synthetic import SimulationConfig, simulate_panel
from hepcausal.sampling import SamplerSettings
from hepcausal.spec import Design, Inference

ICBS = ("QK1", "QJ2", "QOQ", "QT1", "QHM", "QWO", "QF7", "QE1", "QWU")
COMPS = list(ICBS[1:])
YEARS = (2018, 2019, 2020, 2021, 2022, 2023, 2024)
TREND = 0.2  # differential gradient trend per year in the treated ICB (FTE per 1,000 per year)

# Short chains (2 x 500) keep CI fast; they are not expected to pass the convergence check.
pytestmark = pytest.mark.filterwarnings("ignore::hepcausal.diagnostics.ConvergenceWarning")


def _paths(pre: list[list[float]], post: list[list[float]]) -> PathDraws:
    return PathDraws(
        pre=np.array(pre, float),
        post=np.array(post, float),
        t_pre=np.array([-3.0, -2.0, -1.0]),
        t_post=np.array([1.0, 2.0, 3.0]),
        target_weights=np.full(3, 1 / 3),
    )


def test_identified_set_algebra() -> None:
    # an exact linear pre-trend of slope 0.1 and post path continuing it: effect 0
    p = _paths([[-0.3, -0.2, -0.1]], [[0.1, 0.2, 0.3]])
    lo, hi = identified_set(p, "smoothness", 0.0)
    assert lo[0] == pytest.approx(0.0) and hi[0] == pytest.approx(0.0)
    lo, hi = identified_set(p, "relative_magnitude", 1.0)  # |delta_t| <= 0.1 t, mean t = 2
    assert lo[0] == pytest.approx(0.0) and hi[0] == pytest.approx(0.4)
    lo, hi = identified_set(p, "relative_magnitude", 0.0)  # parallel trends: the point estimate
    assert lo[0] == pytest.approx(0.2) and hi[0] == pytest.approx(0.2)
    lo, hi = identified_set(p, "smoothness", 0.01)  # +- M * mean(t(t+1)/2) = 0.01 * 10/3
    assert hi[0] - lo[0] == pytest.approx(2 * 0.01 * 10 / 3)
    with pytest.raises(ValueError, match="bound"):
        identified_set(p, "smoothness", -1.0)


def test_bounds_cover_truth_under_continuing_linear_pretrend() -> None:
    sp = simulate_panel(
        SimulationConfig.small(
            n_practices=270, icbs=ICBS, years=YEARS, gradient_effect=0.0, seed=411
        )
    )
    panel = sp.panel.copy()
    treated = (panel[S.ICB] == "QK1").to_numpy()
    t = (panel[S.YEAR] - 2021).to_numpy(float)
    r = panel[S.DEPRIVATION_RANK].to_numpy(float) - 0.5
    panel[S.GP_FTE] = panel[S.GP_FTE] + treated * TREND * t * r  # planted differential trend
    fit = fit_event_study(
        panel,
        S.GP_FTE,
        Design(comparators=COMPS),
        Inference(settings=SamplerSettings(draws=500, tune=500, chains=2, seed=5)),
    )
    tr = sp.truth.sii[sp.truth.sii["outcome"] == S.GP_FTE].pivot(
        index=S.ICB, columns=S.YEAR, values="sii"
    )
    rel = tr.sub(tr[2021], axis=0)
    diff = rel.loc["QK1"] - rel.loc[COMPS].mean()
    truth = float(diff[[2022, 2023, 2024]].mean())
    plain = fit.effects["post_mean"]
    assert not plain.hdi_low <= truth <= plain.hdi_high, plain  # the plain estimate is biased
    res = trend_sensitivity(fit, mbar=(0.0, 1.0, 1.5), m=(0.0,))
    tab = res.table.set_index(["restriction", "bound"])
    sd0 = tab.loc[("smoothness", 0.0)]
    assert sd0["robust_low"] <= truth <= sd0["robust_high"], (sd0, truth)
    assert abs(sd0["lower_mean"] - truth) < abs(plain.mean - truth)
    rm1 = tab.loc[("relative_magnitude", 1.5)]
    assert rm1["robust_low"] <= truth <= rm1["robust_high"], (rm1, truth)
    rm0 = tab.loc[("relative_magnitude", 0.0)]
    assert not rm0["robust_low"] <= truth <= rm0["robust_high"]
    # the plain interval excludes 0, so the breakdown value is positive and finite
    assert 0 < res.breakdown["relative_magnitude"] < 1.5
    assert "relative magnitudes" in res.sentence()
    # an extrapolation with the wrong sign would miss: the test can fail
    flipped = 2 * plain.mean - sd0["lower_mean"]
    assert not sd0["robust_low"] <= flipped <= sd0["robust_high"], (flipped, sd0)


def test_pretrend_power_is_analytic_and_reading_is_honest() -> None:
    from hepcausal.causal.event_study import pretrend_check

    rng = np.random.default_rng(3)
    years = [2018, 2019, 2020]
    wide = rng.normal(0.0, 0.08, size=(4000, 3))  # pre-period HDIs of about +-0.16
    tight = rng.normal(0.0, 0.002, size=(4000, 3))
    rope = (-0.017, 0.017)
    pw = pretrend_check(wide, years, rope, reference=2021)
    pt = pretrend_check(tight, years, rope, reference=2021)
    assert pw["power_rope_trend"] < 0.2 < 0.99 < pt["power_rope_trend"]
    assert "not evidence of parallel trends" in pw["reading"] and not pw["flag"]
    assert pw["p_all_in_rope"] < 0.05 and pt["p_all_in_rope"] > 0.9
    # analytic: mu = h * (year - ref) with Sigma = 0.08^2 I gives nc = (h/0.08)^2 * (1 + 4 + 9)
    from scipy import stats

    nc = (0.017 / 0.08) ** 2 * 14
    expect = stats.ncx2.sf(stats.chi2.isf(0.05, 3), 3, nc)
    assert pw["power_rope_trend"] == pytest.approx(expect, rel=0.1)
    flagged = pretrend_check(tight + 0.01, years, rope, reference=2021)
    assert flagged["flag"] and flagged["reading"].startswith("FLAGGED")


def test_reference_year_chosen_from_data_when_default_missing() -> None:
    icbs = ICBS[:4]
    sp = simulate_panel(SimulationConfig.small(n_practices=80, icbs=icbs, years=YEARS, seed=7))
    panel = sp.panel[sp.panel[S.YEAR] != 2021]  # as QOF: no 2020/21
    fit = fit_event_study(
        panel,
        S.GP_FTE,
        Design(comparators=list(icbs[1:])),
        Inference(settings=SamplerSettings(draws=200, tune=200, chains=2, seed=1)),
        target="level",
    )
    assert fit.reference_year == 2020
    assert "2020" in fit.pretrend["reference_note"] and fit.pretrend["years"] == [2018, 2019]
    with pytest.raises(Exception, match="reference_year 2021"):
        fit_event_study(
            panel,
            S.GP_FTE,
            Design(comparators=list(icbs[1:])),
            Inference(settings=SamplerSettings(draws=200, tune=200, chains=2, seed=1)),
            target="level",
            reference_year=2021,
        )

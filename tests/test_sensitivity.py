"""Parallel-trends sensitivity: a continuing linear pre-trend biases the plain event study; the
smoothness (M = 0) and relative-magnitude (Mbar = 1) bounds cover the truth, and a sign flip in
the extrapolation would not."""

from __future__ import annotations

import numpy as np
import pytest

from hepcausal import schema as S
from hepcausal.causal.event_study import fit_event_study
from hepcausal.causal.sensitivity import (
    PathDraws,
    breakdown_value,
    identified_set,
    robust_interval,
    trend_sensitivity,
)
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


def test_identified_set_by_hand() -> None:
    # pre beta(-2) = -0.3, beta(-1) = -0.1 (reference 0); post beta(1) = 0.5, beta(2) = 0.6
    p = PathDraws(
        pre=np.array([[-0.3, -0.1]]),
        post=np.array([[0.5, 0.6]]),
        t_pre=np.array([-2.0, -1.0]),
        t_post=np.array([1.0, 2.0]),
        target_weights=np.array([0.5, 0.5]),
    )
    # RM: first differences 0.2 and 0.1 (the step into the reference counts): m = 0.2;
    # |delta_t| <= Mbar m t, mean t = 1.5: 0.55 +- 0.3
    lo, hi = identified_set(p, "relative_magnitude", 1.0)
    assert (lo[0], hi[0]) == pytest.approx((0.25, 0.85))
    # SD: last pre slope s0 = 0 - (-0.1) = 0.1: centre 0.55 - 0.1 * 1.5 = 0.4;
    # half-width M * mean(t (t + 1) / 2) = 0.05 * (1 + 3) / 2 = 0.1
    lo, hi = identified_set(p, "smoothness", 0.05)
    assert (lo[0], hi[0]) == pytest.approx((0.3, 0.5))


def _honestdid_lp(beta_pre, beta_post, l_vec, restriction, bound):
    """HonestDiD's identified set by its own linear programs (R/deltarm.R, R/deltasd.R):
    .create_A_RM / .create_A_SD ported literally (periods -T..Tbar, reference 0 dropped);
    min/max l'delta_post subject to A delta <= d and delta_pre = beta_pre; RM is the union
    over the period s of the largest pre-period first difference and its sign."""
    from scipy.optimize import linprog

    n_pre, n_post = len(beta_pre), len(beta_post)
    n = n_pre + n_post
    obj = np.concatenate([np.zeros(n_pre), l_vec])
    a_eq = np.hstack([np.eye(n_pre), np.zeros((n_pre, n_post))])

    def solve(a_ub, d_ub):
        out = []
        for sign in (1, -1):
            r = linprog(
                sign * -obj,
                A_ub=a_ub,
                b_ub=d_ub,
                A_eq=a_eq,
                b_eq=beta_pre,
                bounds=[(None, None)] * n,
                method="highs",
            )
            if r.status != 0:
                return None
            out.append(sign * -r.fun)
        return out  # max, min of l'delta

    target = float(l_vec @ beta_post)
    if restriction == "smoothness":
        at = np.zeros((n - 1, n + 1))
        for r in range(n - 1):
            at[r, r : r + 3] = [1, -2, 1]
        at = np.delete(at, n_pre, axis=1)
        mx, mn = solve(np.vstack([at, -at]), np.full(2 * (n - 1), bound))
        return target - mx, target - mn
    lows, highs = [], []
    for s in range(-(n_pre - 1), 1):
        for max_positive in (True, False):
            at = np.zeros((n, n + 1))
            for r in range(n):
                at[r, r : r + 2] = [-1, 1]
            v = np.zeros(n + 1)
            v[n_pre + s - 1 : n_pre + s + 1] = [-1, 1]
            v = v if max_positive else -v
            a_ubound = np.vstack([np.tile(v, (n_pre, 1)), np.tile(bound * v, (n_post, 1))])
            a = np.vstack([at - a_ubound, -at - a_ubound])
            a = a[(a * a).sum(axis=1) > 1e-10]
            res = solve(np.delete(a, n_pre, axis=1), np.zeros(a.shape[0]))
            if res is not None:
                lows.append(target - res[0])
                highs.append(target - res[1])
    return min(lows), max(highs)


@pytest.mark.parametrize("n_pre", [1, 3])
def test_identified_set_equals_honestdid_linear_programs(n_pre: int) -> None:
    rng = np.random.default_rng(n_pre)
    t_pre = np.arange(-n_pre, 0, dtype=float)
    t_post = np.array([1.0, 2.0, 3.0])
    for _ in range(5):
        pre = 0.05 * t_pre + rng.normal(0, 0.02, n_pre)
        post = rng.normal(0.1, 0.1, 3)
        for w in (np.full(3, 1 / 3), np.array([1.0, 0.0, 0.0]), np.array([0.0, 0.3, 0.7])):
            p = PathDraws(pre[None], post[None], t_pre, t_post, w)
            for restriction, bound in (
                ("relative_magnitude", 0.0),
                ("relative_magnitude", 0.7),
                ("relative_magnitude", 2.0),
                ("smoothness", 0.0),
                ("smoothness", 0.03),
            ):
                if restriction == "smoothness" and n_pre >= 3:
                    # pre-only moments: with delta_pre fixed the LP is infeasible unless the
                    # pre path satisfies SD(M); HonestDiD's confidence sets drop them
                    # (postPeriodMomentsOnly); the identified set is the same when feasible
                    bound = max(bound, float(np.abs(np.diff(np.r_[pre, 0.0], 2)).max()))
                lo, hi = identified_set(p, restriction, bound)  # type: ignore[arg-type]
                ref = _honestdid_lp(pre, post, w, restriction, bound)
                assert (lo[0], hi[0]) == pytest.approx(ref, abs=1e-7), (restriction, bound, w)


def test_reference_year_does_not_change_the_identified_set() -> None:
    # the same event study referenced to the last pre year (2021) or to 2019 (beta' = beta -
    # beta_ref shifts every coefficient): the identified set of the effect must not move (the
    # post-period path starts from the last pre-period year, not from the reference year)
    rng = np.random.default_rng(3)
    years = np.array([2018, 2019, 2020, 2021, 2022, 2023, 2024])
    beta = np.cumsum(rng.normal(0.02, 0.03, (50, 7)), axis=1)
    ref_a, ref_b = 2021, 2019

    def paths(ref: int) -> PathDraws:
        b = beta - beta[:, [list(years).index(ref)]]
        pre = [i for i, y in enumerate(years) if y < 2022 and y != ref]
        post = [i for i, y in enumerate(years) if y >= 2022]
        return PathDraws(
            b[:, pre],
            b[:, post],
            years[pre] - ref + 0.0,
            years[post] - ref + 0.0,
            np.full(3, 1 / 3),
        )

    for restriction, bound in (("relative_magnitude", 1.0), ("smoothness", 0.01)):
        lo_a, hi_a = identified_set(paths(ref_a), restriction, bound)  # type: ignore[arg-type]
        lo_b, hi_b = identified_set(paths(ref_b), restriction, bound)  # type: ignore[arg-type]
        np.testing.assert_allclose(lo_a, lo_b, atol=1e-12)
        np.testing.assert_allclose(hi_a, hi_b, atol=1e-12)


# HonestDiD README, Medicaid expansion (ACS, Mixtape-Sessions/Advanced-DID ehec_data): TWFE event
# study 2008-2015, reference 2013, states first treated in 2014 vs never; coefficients and the
# state-clustered covariance (x 1e-5) computed here from that file (fixest-style small-sample
# factor).  HonestDiD, first post year (2014): RM robust CIs (C-LF) exclude 0 up to Mbar = 1.5
# and include it at 2 ("breakdown value Mbar = 2"); SD FLCIs exclude 0 at M = 0.02 and include
# it at M = 0.03 ("breakdown value M ~ 0.03").
MEDICAID_BETA = np.array([-0.00529, -0.0113, -0.00268, -0.00142, 0.00034, 0.04645, 0.06921])
MEDICAID_COV = 1e-5 * np.array(
    [
        [7.332, 5.914, 4.352, 3.315, 4.238, 4.667, 2.375],
        [5.914, 7.115, 3.710, 2.807, 4.449, 4.337, 2.766],
        [4.352, 3.710, 4.947, 2.618, 2.720, 2.997, 0.944],
        [3.315, 2.807, 2.618, 3.920, 2.363, 2.331, 0.286],
        [4.238, 4.449, 2.720, 2.363, 5.349, 3.606, 0.952],
        [4.667, 4.337, 2.997, 2.331, 3.606, 8.201, 6.190],
        [2.375, 2.766, 0.944, 0.286, 0.952, 6.190, 10.489],
    ]
)


def test_honestdid_medicaid_example_breakdown_values() -> None:
    draws = np.random.default_rng(1).multivariate_normal(MEDICAID_BETA, MEDICAID_COV, 100_000)
    p = PathDraws(
        draws[:, :5],
        draws[:, 5:],
        np.arange(-5.0, 0.0),
        np.array([1.0, 2.0]),
        np.array([1.0, 0.0]),
    )
    rm = breakdown_value(p, "relative_magnitude", 0.95)
    sd = breakdown_value(p, "smoothness", 0.95)
    assert 1.5 < rm <= 2.0, rm  # HonestDiD: between 1.5 and 2
    assert 0.01 < sd <= 0.03, sd  # HonestDiD: between 0.02 and 0.03 (ours more conservative)
    lo, hi = robust_interval(*identified_set(p, "relative_magnitude", 1.0), 0.95)
    assert 0.005 < lo < 0.025 and 0.065 < hi < 0.09  # HonestDiD: 0.0171 to 0.0720


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

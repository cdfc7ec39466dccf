"""Tests of the classical SII/RII (PHE phe_sii, quintile bootstrap with BCa, unit-level SII)."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from scipy.special import expit

from hepcausal.inequality.bca import bca_interval, jackknife_acceleration
from hepcausal.inequality.classical import (
    SIIInputError,
    quantile_mean_sii,
    sii,
    sii_bootstrap,
    sii_table,
    sii_unit,
)
from hepcausal.inequality.ranks import ordered_relative_rank, relative_rank

# PHE roxygen example (ukhsa-collaboration/PHEindicatormethods, R/SII_function.R, "Area1").
PHE_POP = [7291, 7997, 6105, 7666, 5790, 6934, 5918, 5974, 7147, 7534]
PHE_VALUE = [75.9, 78.3, 83.8, 83.6, 80.5, 81.1, 81.7, 84.2, 80.6, 86.3]
PHE_SE = [1.64, 1.58, 1.51, 1.78, 1.7, 1.56, 1.37, 1.4, 2.43, 1.57]
PHE_LCL = [72.7, 75.3, 80.9, 80.2, 77.1, 78, 79, 81.4, 75.8, 83.2]
PHE_UCL = [79.1, 81.4, 86.8, 87.1, 83.8, 84.2, 84.4, 86.9, 85.4, 89.4]


# --------------------------------------------------------------------------- hand-derived examples


def test_equal_quintiles_hand_example():
    # 5 quintiles of 100 people: shares 0.2 each, ranks = midpoints 0.1, 0.3, 0.5, 0.7, 0.9.
    # values 10, 12, 14, 16, 18 lie exactly on y = 9 + 10 * rank, so
    # SII = 10 (value at rank 1 minus rank 0), intercept = 9, RII = (9 + 10) / 9 = 19/9.
    res = sii([10, 12, 14, 16, 18], [100] * 5, se=[0.5] * 5, rii=True, n_sim=1000, seed=1)
    np.testing.assert_allclose(res.meta["relative_rank"], [0.1, 0.3, 0.5, 0.7, 0.9])
    assert res.sii == pytest.approx(10.0, abs=1e-12)
    assert res.intercept == pytest.approx(9.0, abs=1e-12)
    assert res.rii == pytest.approx(19 / 9, abs=1e-12)
    assert res.sii_lower < 10 < res.sii_upper


def test_unequal_populations_hand_example():
    # Populations 100, 300, 100, 300, 200 -> shares a = .1 .3 .1 .3 .2; cumulative .1 .4 .5 .8 1;
    # ranks b = midpoints .05 .25 .45 .65 .90; weighted mean rank sum(a*b) = 0.5.
    # y = 1 0 0 0 1: ybar = sum(a*y) = 0.3
    # Sxy = sum a (b-.5)(y-.3) = -.0315 + .0225 + .0015 - .0135 + .056 = .035
    # Sxx = sum a (b-.5)^2     = .02025 + .01875 + .00025 + .00675 + .032 = .078
    # slope = SII = .035/.078 = 35/78; intercept = .3 - .5 * 35/78 = 5.9/78.
    res = sii([1, 0, 0, 0, 1], [100, 300, 100, 300, 200], se=[0.1] * 5, n_sim=1000, seed=0)
    np.testing.assert_allclose(res.meta["relative_rank"], [0.05, 0.25, 0.45, 0.65, 0.9])
    assert res.sii == pytest.approx(35 / 78, abs=1e-12)
    assert res.intercept == pytest.approx(5.9 / 78, abs=1e-12)


def test_quantile_order_sorts_most_to_least_deprived():
    base = sii([10, 12, 14, 16, 18], [100, 200, 300, 200, 100], se=[1] * 5, n_sim=1000, seed=3)
    perm = [3, 0, 4, 1, 2]
    shuffled = sii(
        np.array([10, 12, 14, 16, 18])[perm],
        np.array([100, 200, 300, 200, 100])[perm],
        se=[1] * 5,
        quantile_order=np.array([1, 2, 3, 4, 5])[perm],
        n_sim=1000,
        seed=3,
    )
    assert shuffled.sii == pytest.approx(base.sii, abs=1e-12)
    assert shuffled.sii_ci == base.sii_ci


def test_ordered_relative_rank_equals_relative_rank():
    pops = np.array([[3.0, 1, 4, 1, 5], [9, 2, 6, 5, 3]])
    for row in pops:
        # decreasing score = already ordered most -> least deprived
        np.testing.assert_allclose(
            ordered_relative_rank(row), relative_rank(-np.arange(5.0), row), atol=1e-15
        )
    np.testing.assert_allclose(ordered_relative_rank(pops)[1], ordered_relative_rank(pops[1]))


# --------------------------------------------------------------------------- closed-form WLS


def test_phe_point_estimate_equals_lstsq_of_phe_regression():
    # PHE: lm(sqrt(a) * y ~ sqrt(a) + sqrt(a) * b - 1); solved here with numpy lstsq.
    pop, y = np.array(PHE_POP, float), np.array(PHE_VALUE)
    a = pop / pop.sum()
    b = np.cumsum(a) - a / 2
    design = np.column_stack([np.sqrt(a), b * np.sqrt(a)])
    (intercept, slope), *_ = np.linalg.lstsq(design, np.sqrt(a) * y, rcond=None)
    res = sii(PHE_VALUE, PHE_POP, se=PHE_SE, rii=True, n_sim=1000, seed=1)
    assert res.sii == pytest.approx(slope, abs=1e-10)
    assert res.intercept == pytest.approx(intercept, abs=1e-10)
    assert res.rii == pytest.approx((intercept + slope) / intercept, abs=1e-10)
    # value recorded from this implementation for regression protection (matches lstsq above)
    assert res.sii == pytest.approx(7.000234760079885, abs=1e-6)


def test_se_from_confidence_limits_matches_phe_rule():
    # PHE: se = (upper - lower) / qnorm(0.975) / 2 -> same simulation as passing that se.
    se = (np.array(PHE_UCL) - np.array(PHE_LCL)) / stats.norm.ppf(0.975) / 2
    a = sii(PHE_VALUE, PHE_POP, lower=PHE_LCL, upper=PHE_UCL, n_sim=2000, seed=5)
    b = sii(PHE_VALUE, PHE_POP, se=se, n_sim=2000, seed=5)
    assert a.sii_ci[0.95] == pytest.approx(b.sii_ci[0.95], rel=1e-12)


def test_phe_simulation_limits_are_order_statistics():
    # PHE positions: round(n * 0.025) and round(n * 0.975) of the sorted simulated slopes.
    res = sii(PHE_VALUE, PHE_POP, se=PHE_SE, n_sim=2000, seed=11)
    srt = np.sort(res.replicates)
    assert res.sii_ci[0.95] == (srt[50 - 1], srt[1950 - 1])


# --------------------------------------------------------------------------- transforms


def test_log_transform_back_transforms_exactly():
    # ln(rate) = 1 + 0.5 * rank exactly -> SII = e^1.5 - e^1, RII = e^0.5
    pops = np.array([120.0, 80, 100, 150, 50])
    b = ordered_relative_rank(pops)
    rate = np.exp(1 + 0.5 * b)
    res = sii(
        rate, pops, se=0.01 * rate, value_type="rate", transform=True, rii=True, n_sim=1000, seed=2
    )
    assert res.sii == pytest.approx(np.exp(1.5) - np.e, abs=1e-10)
    assert res.rii == pytest.approx(np.exp(0.5), abs=1e-10)
    assert res.sii_lower < res.sii < res.sii_upper
    # the untransformed linear fit differs (curvature), so the option matters
    lin = sii(rate, pops, se=0.01 * rate, value_type="rate", n_sim=1000, seed=2)
    assert abs(lin.sii - res.sii) > 1e-3


def test_logit_transform_back_transforms_exactly():
    pops = np.array([100.0] * 5)
    b = ordered_relative_rank(pops)
    p = expit(-1 + 2 * b)
    res = sii(
        p,
        pops,
        se=np.full(5, 1e-4),
        value_type="proportion",
        transform=True,
        rii=True,
        n_sim=1000,
        seed=4,
    )
    assert res.sii == pytest.approx(expit(1) - expit(-1), abs=1e-10)
    assert res.rii == pytest.approx(expit(1) / expit(-1), abs=1e-10)
    # tiny SEs -> limits collapse onto the estimate (PHE back-transforms around rank 1/2)
    assert res.sii_lower == pytest.approx(res.sii, abs=1e-3)
    assert res.sii_upper == pytest.approx(res.sii, abs=1e-3)


def test_transformed_limits_follow_phe_back_transformation():
    # PHE (transform=TRUE): simulate ln(value) ~ N(ln(value), se), fit the link-scale slope,
    # take its order-statistic limits s, and map them with the fitted link value at rank 1/2:
    # limit = exp(x_half + s/2) - exp(x_half - s/2).  Reproduced here independently with lstsq.
    pops = np.array([100.0, 120, 90, 110, 80])
    rate = np.array([2.0, 2.3, 2.2, 2.8, 3.1])
    lower, upper = rate * 0.85, rate * 1.15
    n_sim, seed = 4000, 8
    res = sii(
        rate,
        pops,
        lower=lower,
        upper=upper,
        value_type="rate",
        transform=True,
        rii=True,
        n_sim=n_sim,
        seed=seed,
    )
    se = (np.log(upper) - np.log(lower)) / stats.norm.ppf(0.975) / 2
    a = pops / pops.sum()
    b = np.cumsum(a) - a / 2
    xs = np.column_stack([np.sqrt(a), b * np.sqrt(a)])
    pinv = np.linalg.pinv(xs)
    intercept, slope = pinv @ (np.sqrt(a) * np.log(rate))
    draws = np.random.default_rng(seed).normal(np.log(rate), se, size=(n_sim, 5))
    sim_slopes = np.sort((draws * np.sqrt(a)) @ pinv.T, axis=0)[:, 1]
    s_lo, s_hi = sim_slopes[round(n_sim * 0.025) - 1], sim_slopes[round(n_sim * 0.975) - 1]
    x_half = intercept + slope / 2
    expect_lo = np.exp(x_half + s_lo / 2) - np.exp(x_half - s_lo / 2)
    expect_hi = np.exp(x_half + s_hi / 2) - np.exp(x_half - s_hi / 2)
    assert res.sii == pytest.approx(np.exp(intercept + slope) - np.exp(intercept), abs=1e-10)
    assert res.sii_ci[0.95] == pytest.approx((expect_lo, expect_hi), abs=1e-10)
    assert res.rii_ci[0.95] == pytest.approx((np.exp(s_lo), np.exp(s_hi)), abs=1e-10)


# --------------------------------------------------------------------------- coverage / recovery


def test_simulation_ci_coverage_known_slope():
    rng = np.random.default_rng(2024)
    pops = np.array([900.0, 1100, 1000, 1200, 800])
    b = ordered_relative_rank(pops)
    truth = 8.0
    mu = 70 + truth * b
    se = np.array([1.0, 1.5, 1.2, 0.8, 1.4])
    cover = cover_null = 0
    n_rep = 200
    for _ in range(n_rep):
        y = mu + rng.normal(0, se)
        res = sii(y, pops, se=se, n_sim=1000, seed=rng)
        cover += res.sii_lower <= truth <= res.sii_upper
        cover_null += res.sii_lower <= 0 <= res.sii_upper
    assert 0.90 <= cover / n_rep <= 0.99
    assert cover_null / n_rep < 0.2  # a wrong (null) value is rarely covered


def _quintile_practices(rng, n_per=20, slope=-1.5, sd=1.0, seed_shift=0.0):
    n = 5 * n_per
    score = np.linspace(60, 5, n) + seed_shift  # decreasing: first practice most deprived
    rank = relative_rank(score, np.ones(n))
    y = 4 + slope * rank + rng.normal(0, sd, n)
    return pd.DataFrame({"y": y, "imd": score, "q": np.repeat(np.arange(1, 6), n_per)}), rank


def test_quintile_bootstrap_bca_coverage():
    # equal-count quintiles of equally spaced ranks: quintile mean rank = quintile mid-rank,
    # so the quintile-mean SII is unbiased for the practice-level slope.
    rng = np.random.default_rng(7)
    truth, n_rep, cover, cover_null = -1.5, 200, 0, 0
    for _ in range(n_rep):
        df, _ = _quintile_practices(rng, slope=truth)
        res = sii_bootstrap(df, "y", quantile_col="q", n_boot=400, seed=rng)
        cover += res.sii_lower <= truth <= res.sii_upper
        cover_null += res.sii_lower <= 0 <= res.sii_upper
    assert 0.88 <= cover / n_rep <= 0.99
    assert cover_null / n_rep < 0.2


def test_unit_hc_coverage():
    rng = np.random.default_rng(9)
    truth, n_rep, cover = 2.0, 200, 0
    for _ in range(n_rep):
        n = 120
        w = rng.integers(2000, 15000, n).astype(float)
        s = rng.normal(size=n)
        r = relative_rank(s, w)
        y = 1 + truth * r + rng.normal(0, 0.5 + r, n)  # heteroskedastic
        res = sii_unit(y, w, scores=s, se_method="hc3")
        cover += res.sii_lower <= truth <= res.sii_upper
    assert 0.90 <= cover / n_rep <= 0.99


# --------------------------------------------------------------------------- BCa vs scipy


def _sii_statistic(value_type="other", transform=False):
    def statistic(*samples, axis=-1):
        means = np.stack([np.mean(s, axis=axis) for s in samples], axis=-1)
        counts = np.array([s.shape[axis] for s in samples], dtype=float)
        return quantile_mean_sii(
            means * counts, np.broadcast_to(counts, means.shape), value_type, transform
        )

    return statistic


@pytest.mark.parametrize(("value_type", "level"), [("other", 0.95), ("rate", 0.9)])
def test_bca_equals_scipy_on_same_replicates(value_type, level):
    # scipy treats the 5 quintile samples as independent samples = a stratified bootstrap, and
    # its jackknife is per sample = our stratified jackknife; same replicates -> same limits.
    rng = np.random.default_rng(0)
    q = np.repeat(np.arange(1, 6), [8, 10, 12, 9, 11])
    y = rng.gamma(2.0, 1 + 0.2 * q)
    df = pd.DataFrame({"y": y, "q": q})
    res = sii_bootstrap(
        df, "y", quantile_col="q", value_type=value_type, n_boot=2000, confidence=level, seed=1
    )
    samples = [y[q == i] for i in range(1, 6)]
    ref = stats.bootstrap(
        samples,
        _sii_statistic(value_type, value_type != "other"),
        n_resamples=0,
        method="BCa",
        confidence_level=level,
        vectorized=True,
        bootstrap_result=SimpleNamespace(bootstrap_distribution=res.replicates),
    )
    assert res.sii_lower == pytest.approx(ref.confidence_interval.low, abs=1e-10)
    assert res.sii_upper == pytest.approx(ref.confidence_interval.high, abs=1e-10)


def test_bca_close_to_scipy_independent_resampling():
    rng = np.random.default_rng(1)
    q = np.repeat(np.arange(1, 6), 15)
    y = rng.lognormal(0.3 - 0.1 * q, 0.6)
    df = pd.DataFrame({"y": y, "q": q})
    res = sii_bootstrap(df, "y", quantile_col="q", n_boot=5000, seed=2)
    ref = stats.bootstrap(
        [y[q == i] for i in range(1, 6)],
        _sii_statistic(),
        n_resamples=5000,
        method="BCa",
        vectorized=True,
        rng=3,
    )
    width = res.sii_upper - res.sii_lower
    assert abs(res.sii_lower - ref.confidence_interval.low) < 0.06 * width
    assert abs(res.sii_upper - ref.confidence_interval.high) < 0.06 * width


def test_single_sample_bca_equals_scipy():
    rng = np.random.default_rng(4)
    x = rng.exponential(size=40)
    reps = np.array([rng.choice(x, x.size).mean() for _ in range(3000)])
    jack = np.array([np.delete(x, i).mean() for i in range(x.size)])
    lo, hi, info = bca_interval(x.mean(), reps, [jack], 0.95)
    ref = stats.bootstrap(
        (x,),
        np.mean,
        n_resamples=0,
        method="BCa",
        bootstrap_result=SimpleNamespace(bootstrap_distribution=reps),
    )
    assert (lo, hi) == pytest.approx(tuple(ref.confidence_interval), abs=1e-12)
    assert info["acceleration"] == pytest.approx(jackknife_acceleration([jack]))
    assert info["acceleration"] > 0  # right-skewed mean -> positive acceleration


def test_bootstrap_point_estimate_equals_phe_on_quintile_means():
    rng = np.random.default_rng(5)
    q = np.repeat(np.arange(1, 6), [6, 9, 7, 8, 10])
    y = rng.gamma(3.0, 0.2 + 0.05 * q)
    res = sii_bootstrap(
        pd.DataFrame({"y": y, "q": q}), "y", quantile_col="q", value_type="rate", n_boot=200, seed=0
    )
    means = np.array([y[q == i].mean() for i in range(1, 6)])
    counts = np.bincount(q)[1:]
    phe = sii(means, counts, se=0.01 * means, value_type="rate", transform=True, n_sim=1000)
    assert res.sii == pytest.approx(phe.sii, abs=1e-12)
    assert res.transform and res.method == "quintile_bootstrap_bca"


def test_bootstrap_is_seeded_and_score_quintiles():
    rng = np.random.default_rng(6)
    df, _ = _quintile_practices(rng)
    a = sii_bootstrap(df, "y", score_col="imd", n_boot=300, seed=42)
    b = sii_bootstrap(df, "y", quantile_col="q", n_boot=300, seed=42)
    assert a.sii == b.sii and a.sii_ci == b.sii_ci  # score -> the same equal-count quintiles
    np.testing.assert_array_equal(a.meta["n_per_quantile"], [20] * 5)
    c = sii_bootstrap(df, "y", quantile_col="q", n_boot=300, seed=43)
    assert c.sii_ci != b.sii_ci
    pct = sii_bootstrap(df, "y", quantile_col="q", n_boot=300, seed=42, method="percentile")
    assert pct.sii_ci[0.95] == pytest.approx(tuple(np.quantile(b.replicates, [0.025, 0.975])))


def test_weighted_bootstrap_uses_weighted_means_and_populations():
    rng = np.random.default_rng(8)
    df, _ = _quintile_practices(rng, n_per=6)
    df["w"] = rng.integers(1000, 9000, len(df)).astype(float)
    res = sii_bootstrap(df, "y", quantile_col="q", weight_col="w", n_boot=200, seed=1)
    g = df.groupby("q")
    means = (g.apply(lambda d: np.average(d["y"], weights=d["w"]))).to_numpy()
    pops = g["w"].sum().to_numpy()
    ref = sii(means, pops, se=np.ones(5), n_sim=1000)
    assert res.sii == pytest.approx(ref.sii, abs=1e-12)


# --------------------------------------------------------------------------- unit-level SII


def test_unit_sii_equals_wls_on_relative_ranks():
    rng = np.random.default_rng(10)
    n = 150
    s, w = rng.normal(size=n), rng.integers(1000, 20000, n).astype(float)
    r = relative_rank(s, w)
    y = 3 - 1.2 * r + rng.normal(0, 0.4, n)
    res = sii_unit(y, w, scores=s, se_method="hc0")
    sw = np.sqrt(w)
    xs = np.column_stack([sw, sw * r])
    beta, *_ = np.linalg.lstsq(xs, sw * y, rcond=None)
    assert res.sii == pytest.approx(beta[1], abs=1e-10)
    assert res.intercept == pytest.approx(beta[0], abs=1e-10)
    np.testing.assert_array_equal(res.meta["relative_rank"], r)
    assert np.average(r, weights=w) == pytest.approx(0.5)
    # HC0 sandwich from the sqrt(w)-scaled OLS
    bread = np.linalg.inv(xs.T @ xs)
    e = sw * y - xs @ beta
    cov = bread @ (xs.T * e**2) @ xs @ bread
    assert res.se == pytest.approx(np.sqrt(cov[1, 1]), rel=1e-10)
    # fixed ranks give the same slope
    assert sii_unit(y, w, ranks=r).sii == pytest.approx(res.sii, abs=1e-12)


def test_unit_sandwich_matches_statsmodels():
    sm = pytest.importorskip("statsmodels.api")
    rng = np.random.default_rng(11)
    n = 60
    s, w = rng.normal(size=n), rng.integers(1000, 20000, n).astype(float)
    r = relative_rank(s, w)
    y = 1 + r + rng.normal(0, 1 + r, n)
    for kind in ("hc0", "hc1", "hc2", "hc3"):
        fit = sm.WLS(y, sm.add_constant(r), weights=w).fit(cov_type=kind.upper())
        assert sii_unit(y, w, ranks=r, se_method=kind).se == pytest.approx(fit.bse[1], rel=1e-9)


def test_unit_bootstrap_bca_and_percentile():
    rng = np.random.default_rng(12)
    n = 60
    s = rng.normal(size=n)
    r = relative_rank(s, np.ones(n))
    y = 2 * r + rng.normal(0, 0.3, n)
    pct = sii_unit(y, scores=s, se_method="bootstrap", n_boot=300, seed=1)
    bca = sii_unit(y, scores=s, se_method="bootstrap", ci_method="bca", n_boot=300, seed=1)
    np.testing.assert_array_equal(pct.replicates, bca.replicates)
    for res in (pct, bca):
        assert res.sii_lower < 2 < res.sii_upper
    # with ranks held fixed the bootstrap SE agrees with the sandwich
    fixed = sii_unit(y, ranks=r, se_method="bootstrap", n_boot=600, seed=2)
    assert fixed.se == pytest.approx(sii_unit(y, ranks=r).se, rel=0.2)


def test_unit_bootstrap_with_recomputed_ranks_recovers_sampling_sd():
    # Practices sampled from a population with y = 2 * population rank + noise: the sample SII's
    # true sampling SD includes the estimation of the ranks.  The bootstrap that recomputes ranks
    # in each resample recovers it; the fixed-rank sandwich understates it (documented caveat).
    rng = np.random.default_rng(13)
    n = 60
    est = []
    for _ in range(400):
        pop_rank = rng.uniform(size=n)
        est.append(sii_unit(2 * pop_rank + rng.normal(0, 0.3, n), scores=-pop_rank).sii)
    true_sd = np.std(est)
    pop_rank = rng.uniform(size=n)
    y = 2 * pop_rank + rng.normal(0, 0.3, n)
    boot = sii_unit(y, scores=-pop_rank, se_method="bootstrap", n_boot=400, seed=3)
    hc = sii_unit(y, scores=-pop_rank, se_method="hc1")
    assert boot.se == pytest.approx(true_sd, rel=0.3)
    assert hc.se < 0.9 * true_sd


# --------------------------------------------------------------------------- validation


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"values": [1, 2, 3, 4], "populations": [1] * 4}, "between 5 and 100"),
        ({"values": list(range(101)), "populations": [1] * 101}, "between 5 and 100"),
        ({"populations": [1, 1, 0, 1, 1]}, "positive"),
        ({"populations": [1, 1, np.nan, 1, 1]}, "positive"),
        ({"values": [1, 2, np.nan, 4, 5]}, "missing"),
        ({"value_type": "proportion", "values": [0.1, 0.2, 1.2, 0.3, 0.4]}, r"\[0, 1\]"),
        ({"value_type": "proportion", "values": [0.1, 0.2, 1.0, 0.3, 0.4]}, "logit"),
        ({"value_type": "rate", "values": [1, 2, -1, 3, 4]}, "rate"),
        ({"se": [1, 1, -1, 1, 1]}, "non-negative"),
        ({"se": [1, 1, np.nan, 1, 1]}, "non-negative"),
        ({"n_sim": 500}, "1000"),
        ({"confidence": 0.8}, "confidence"),
        ({"transform": True}, "transform"),
        ({"value_type": "counts"}, "value_type"),
        ({"se": None}, "lower and upper"),
        ({"lower": [0] * 5, "upper": [1] * 5}, "not both"),
        ({"se": None, "lower": [2] * 5, "upper": [1] * 5}, "lower > upper"),
        ({"populations": [1, 1, 1]}, "differ in length"),
    ],
)
def test_sii_validation_errors(kwargs, match):
    args = {"values": [1, 2, 3, 4, 5], "populations": [10] * 5, "se": [1] * 5, "n_sim": 1000}
    args.update(kwargs)
    with pytest.raises(SIIInputError, match=match):
        sii(args.pop("values"), args.pop("populations"), **args)


def test_sii_confidence_forms_and_many_quantiles_warning():
    res = sii(PHE_VALUE, PHE_POP, se=PHE_SE, confidence=[95, 99.8], n_sim=1000, seed=1)
    assert res.confidence == (0.95, 0.998)
    lo95, hi95 = res.sii_ci[0.95]
    lo998, hi998 = res.sii_ci[0.998]
    assert lo998 < lo95 < hi95 < hi998
    with pytest.warns(UserWarning, match="unstable"):
        sii(np.arange(12.0), np.ones(12), se=np.ones(12), n_sim=1000)


def test_reliability_stat_and_determinism():
    a = sii(PHE_VALUE, PHE_POP, se=PHE_SE, rii=True, reliability_stat=True, n_sim=1000, seed=9)
    b = sii(PHE_VALUE, PHE_POP, se=PHE_SE, rii=True, reliability_stat=True, n_sim=1000, seed=9)
    assert a.sii_ci == b.sii_ci and a.reliability == b.reliability
    assert set(a.reliability) == {"sii_mad95_0", "rii_mad95_0"}
    assert 0 < a.reliability["sii_mad95_0"] < 0.2 * (a.sii_upper - a.sii_lower)


def test_natural_vs_link_scale_se():
    rate = np.array([2.0, 2.2, 2.5, 2.4, 2.9])
    se_nat = 0.1 * rate
    nat = sii(rate, [1] * 5, se=se_nat, value_type="rate", n_sim=2000, seed=3)
    link = sii(
        rate, [1] * 5, se=np.full(5, 0.1), value_type="rate", se_scale="link", n_sim=2000, seed=3
    )
    assert nat.sii_ci == link.sii_ci  # delta method: se/rate = 0.1 on the log scale


def test_bootstrap_validation_errors():
    df = pd.DataFrame({"y": np.arange(10.0), "q": np.repeat([1, 2, 3, 4, 5], 2)})
    with pytest.raises(SIIInputError, match="'nope' not found"):
        sii_bootstrap(df, "nope", quantile_col="q")
    with pytest.raises(SIIInputError, match="exactly one"):
        sii_bootstrap(df, "y")
    bad = df.assign(y=df["y"].where(df.index != 3))
    with pytest.raises(SIIInputError, match=r"missing.*rows \[3\]"):
        sii_bootstrap(bad, "y", quantile_col="q")
    with pytest.raises(SIIInputError, match="fewer than 3"):
        sii_bootstrap(df, "y", quantile_col="q", min_per_quantile=3)
    with pytest.raises(SIIInputError, match="between 5 and 100"):
        sii_bootstrap(df.assign(q=np.repeat([1, 2], 5)), "y", quantile_col="q")


def test_unit_validation_errors():
    with pytest.raises(SIIInputError, match="exactly one"):
        sii_unit([1, 2, 3], [1, 1, 1])
    with pytest.raises(SIIInputError, match=r"\[0, 1\]"):
        sii_unit([1, 2, 3], ranks=[0.1, 0.5, 1.5])
    with pytest.raises(SIIInputError, match="positive"):
        sii_unit([1, 2, 3], [1, 0, 1], ranks=[0.1, 0.5, 0.9])
    with pytest.raises(SIIInputError, match="se_method"):
        sii_unit([1, 2, 3], ranks=[0.1, 0.5, 0.9], se_method="hc9")  # type: ignore[arg-type]


# --------------------------------------------------------------------------- sii_table


def _hand_panel() -> pd.DataFrame:
    # ICB "AAA": 10 practices, equal weights, distinct IMD 55, 50, ..., 10 (most deprived first),
    # so relative ranks are 0.05, 0.15, ..., 0.95 and quintiles hold 2 practices each.
    # Outcome = 5 - 2 * rank exactly, so the unit SII is -2 and each quintile mean equals
    # 5 - 2 * (quintile mid-rank 0.1, 0.3, ..., 0.9): the quintile SII is also exactly -2.
    rank = np.arange(10) / 10 + 0.05
    a = pd.DataFrame(
        {
            "practice_code": [f"A{i}" for i in range(10)],
            "icb_code": "AAA",
            "year": 2022,
            "imd_score": 55 - 5.0 * np.arange(10),
            "list_size": 5000.0,
            "gp_fte_per_1k": 5 - 2 * rank,
        }
    )
    # ICB "BBB": 12 practices, one missing outcome and one missing score (both counted).
    rng = np.random.default_rng(0)
    b = pd.DataFrame(
        {
            "practice_code": [f"B{i}" for i in range(12)],
            "icb_code": "BBB",
            "year": 2022,
            "imd_score": rng.uniform(5, 60, 12),
            "list_size": 4000.0,
            "gp_fte_per_1k": rng.uniform(0.4, 0.8, 12),
        }
    )
    b.loc[0, "gp_fte_per_1k"] = np.nan
    b.loc[1, "imd_score"] = np.nan
    # ICB "CCC": only 6 practices -> a quintile with 1 practice -> skipped with a note.
    c = b.iloc[:6].assign(
        practice_code=[f"C{i}" for i in range(6)],
        icb_code="CCC",
        gp_fte_per_1k=0.6,
        imd_score=np.linspace(10, 50, 6),
    )
    return pd.concat([a, b, c], ignore_index=True)


@pytest.mark.parametrize("method", ["quintile_bootstrap", "phe", "unit"])
def test_sii_table_hand_panel(method):
    panel = _hand_panel()
    kwargs = {
        "method": method,
        "value_type": "other",
        "min_per_quantile": 2,
        "national": True,
        "n_boot": 200,
        "n_sim": 1000,
        "seed": 1,
    }
    if method == "unit":  # 6 practices are enough for a unit-level fit
        tab = sii_table(panel, "gp_fte_per_1k", **kwargs)
        assert tab.set_index("icb_code").loc["CCC", "sii"] == pytest.approx(0.0, abs=1e-12)
        tab.loc[tab.icb_code == "CCC", ["sii", "note"]] = [np.nan, "skipped (test)"]
    else:
        with pytest.warns(UserWarning, match="skipped"):
            tab = sii_table(panel, "gp_fte_per_1k", **kwargs)
    assert list(tab.columns[:2]) == ["icb_code", "year"]
    assert {"sii", "lower", "upper", "n_practices", "n_missing", "method"} <= set(tab.columns)
    row = tab.set_index("icb_code")
    assert row.loc["AAA", "sii"] == pytest.approx(-2.0, abs=1e-10)
    assert row.loc["AAA", "n_practices"] == 10
    assert (row.loc["BBB", "n_missing"], row.loc["BBB", "n_missing_score"]) == (1, 1)
    assert row.loc["BBB", "n_practices"] == 10
    assert np.isnan(row.loc["CCC", "sii"]) and row.loc["CCC", "note"].startswith("skipped")
    assert row.loc["England", "n_practices"] == 10 + 10 + 6
    assert np.isfinite(row.loc["England", "sii"])
    if method != "unit":  # an exact line has zero-width sandwich but positive quintile noise
        assert row.loc["AAA", "lower"] <= -2 <= row.loc["AAA", "upper"]
    again = sii_table(
        panel[panel.icb_code != "CCC"],
        "gp_fte_per_1k",
        method=method,
        value_type="other",
        min_per_quantile=2,
        n_boot=200,
        n_sim=1000,
        seed=1,
    )
    assert again.loc[0, "sii"] == pytest.approx(tab.loc[0, "sii"])


def test_sii_table_rank_within_year_and_errors():
    panel = _hand_panel()
    panel = panel[panel.icb_code != "CCC"]
    tab = sii_table(panel, "gp_fte_per_1k", method="unit", rank_within=("year",))
    # national ranks within year: ICB AAA's ranks are no longer 0.05..0.95, so the slope differs
    assert tab.set_index("icb_code").loc["AAA", "sii"] != pytest.approx(-2.0, abs=1e-6)
    # precomputed ranks (as the panel's deprivation_rank) are used as they are
    ranked = panel.assign(deprivation_rank=np.linspace(0.02, 0.98, len(panel)))
    by_col = sii_table(ranked, "gp_fte_per_1k", method="unit", rank_col="deprivation_rank")
    aaa = ranked[ranked.icb_code == "AAA"]
    direct = sii_unit(aaa["gp_fte_per_1k"], ranks=aaa["deprivation_rank"])
    assert by_col.set_index("icb_code").loc["AAA", "sii"] == pytest.approx(direct.sii, abs=1e-12)
    with pytest.raises(SIIInputError, match="at most one"):
        sii_table(ranked, "gp_fte_per_1k", rank_col="deprivation_rank", rank_within=("year",))
    with pytest.raises(SIIInputError, match="missing column"):
        sii_table(panel, "no_such_outcome")
    with pytest.raises(SIIInputError, match="duplicate"):
        sii_table(pd.concat([panel, panel.iloc[:1]]), "gp_fte_per_1k")
    with pytest.raises(SIIInputError, match="list_size"):
        sii_table(panel.assign(list_size=0.0), "gp_fte_per_1k", weight_col="list_size")


def test_default_value_type_from_the_outcome_table():
    from hepcausal import schema as S
    from hepcausal.inequality.sii_table import default_value_type

    assert default_value_type(S.GP_FTE) == "rate"
    assert default_value_type("gp") == "rate"
    assert default_value_type(S.QOF) == "proportion"
    assert default_value_type(S.GPPS_OVERALL) == "proportion"
    assert default_value_type("some_column") == "other"

"""Tests of the synthetic panel generator (hepcausal.data.synthetic)."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from hepcausal import schema as S
from hepcausal.data.synthetic import SimulationConfig, SyntheticPanel, simulate_panel
from hepcausal.outcomes import OutcomeKind, outcome_columns, synthetic_specs

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def small() -> SyntheticPanel:
    return simulate_panel(SimulationConfig.small(seed=11))


@pytest.fixture(scope="module")
def noise_free() -> SyntheticPanel:
    cfg = SimulationConfig.small(
        seed=5,
        noise_scale=0.0,
        gradient_effect=-0.05,
        level_effect=0.03,
        effect_outcomes=(S.GP_FTE, S.QOF),
    )
    return simulate_panel(cfg)


def _simulated(kind: OutcomeKind) -> tuple[str, ...]:
    """Outcome-table columns of one kind that the generator simulates by default."""
    return tuple(c for c in outcome_columns(kind=kind) if c in synthetic_specs())


def _wls_by_cell(df: pd.DataFrame, y: str) -> pd.DataFrame:
    """Per ICB-year list-weighted OLS of ``y`` on (rank - 0.5): intercept and slope."""
    out = []
    for (icb, year), g in df.groupby([S.ICB, S.YEAR]):
        w = g[S.LIST_SIZE].to_numpy()
        x = g[S.DEPRIVATION_RANK].to_numpy() - 0.5
        yy = g[y].to_numpy()
        X = np.column_stack([np.ones_like(x), x]) * np.sqrt(w)[:, None]
        coef = np.linalg.lstsq(X, yy * np.sqrt(w), rcond=None)[0]
        out.append((icb, year, coef[0], coef[1]))
    return pd.DataFrame(out, columns=[S.ICB, S.YEAR, "a_hat", "b_hat"])


def _truth_for(sp: SyntheticPanel, outcome: str) -> pd.DataFrame:
    t = sp.truth
    sii = t.sii.loc[t.sii["outcome"] == outcome]
    lev = t.level.loc[t.level["outcome"] == outcome]
    return sii.merge(lev, on=["outcome", S.ICB, S.YEAR, "scale"])


def test_schema_and_constraints(small: SyntheticPanel) -> None:
    df = small.panel
    for col in (
        *S.REQUIRED_COLUMNS,
        *synthetic_specs(),
        S.DEPRIVATION_RANK,
        S.HEP_TREATED,
        S.HEP_DOSE,
        S.NEED_SCORE,
        S.NEED_RANK,
        S.QOF_MAX_POINTS,
        S.GPPS_RESPONSES,
    ):
        assert col in df.columns, col
    assert not df.duplicated(list(S.KEY_COLUMNS)).any()
    assert df[list(S.REQUIRED_COLUMNS)].notna().all().all()
    for k in _simulated("proportion"):
        assert df[k].between(0, 1).all(), k
    for k in _simulated("rate"):
        assert (df[k] >= 0).all(), k
    assert df[S.DEPRIVATION_RANK].between(0, 1, inclusive="neither").all()
    assert (df[S.WEIGHTED_LIST_SIZE] > 0).all() and (df[S.LIST_SIZE] > 0).all()
    assert set(df[S.QOF_MAX_POINTS].unique()) == {559, 635}
    assert (df.loc[df[S.YEAR] <= 2020, S.QOF_MAX_POINTS] == 559).all()
    # population-weighted mean rank is 0.5 in every ICB-year (what makes alpha the ICB-year mean)
    wm = df.groupby([S.ICB, S.YEAR]).apply(
        lambda g: np.average(g[S.DEPRIVATION_RANK], weights=g[S.LIST_SIZE])
    )
    np.testing.assert_allclose(wm.to_numpy(), 0.5, atol=1e-12)
    # each practice in one PCN, PCNs nested in sub-ICBs nested in ICBs
    assert (df.groupby(S.PCN)[S.SUB_ICB].nunique() == 1).all()
    assert (df.groupby(S.SUB_ICB)[S.ICB].nunique() == 1).all()
    sizes = df.loc[df[S.YEAR] == df[S.YEAR].min()].groupby(S.PCN)[S.PRACTICE].nunique()
    assert sizes.between(1, 11).all() and sizes.median() >= 4
    llr = df.loc[df[S.ICB] == S.LLR_ICB, S.SUB_ICB].unique()
    assert set(llr) == set(S.LLR_SUB_ICBS)


def test_validate_panel_if_available(small: SyntheticPanel) -> None:
    validate = pytest.importorskip("hepcausal.data.validate")
    validate.validate_panel(small.panel, source="synthetic")


def test_small_preset_shape(small: SyntheticPanel) -> None:
    df = small.panel
    first = df.loc[df[S.YEAR] == 2018]
    assert df[S.ICB].nunique() == 12
    assert first.groupby(S.ICB).size().between(38, 42).all()
    assert sorted(df[S.YEAR].unique()) == list(range(2018, 2025))
    assert S.LLR_ICB in set(df[S.ICB]) and set(S.PUBLISHED_COMPARATORS) <= set(df[S.ICB])


def test_deterministic_given_seed() -> None:
    a = simulate_panel(SimulationConfig.small(seed=3))
    b = simulate_panel(SimulationConfig.small(seed=3))
    c = simulate_panel(SimulationConfig.small(seed=4))
    pd.testing.assert_frame_equal(a.panel, b.panel)
    pd.testing.assert_frame_equal(a.truth.sii, b.truth.sii)
    assert not a.panel[S.GP_FTE].equals(c.panel[S.GP_FTE])


def test_noise_free_fte_recovers_sii_and_level_exactly(noise_free: SyntheticPanel) -> None:
    for k in _simulated("rate"):
        est = _wls_by_cell(noise_free.panel, k).merge(_truth_for(noise_free, k), on=[S.ICB, S.YEAR])
        np.testing.assert_allclose(est["b_hat"], est["sii"], atol=1e-5)
        np.testing.assert_allclose(est["a_hat"], est["level"], atol=1e-5)
    assert noise_free.truth.params[S.GP_FTE]["tau"] == 0.0


def test_noisy_fte_slopes_unbiased_for_realised_sii(small: SyntheticPanel) -> None:
    k = S.GP_FTE
    est = _wls_by_cell(small.panel, k).merge(_truth_for(small, k), on=[S.ICB, S.YEAR])
    err = est["b_hat"] - est["sii_realised"]
    se = err.std(ddof=1) / np.sqrt(len(err))
    assert abs(err.mean()) < 3.5 * se
    # the realised target differs from beta by the practice-effect slope: a real, non-zero term
    assert (est["sii_realised"] - est["sii"]).abs().max() > 1e-3
    # slopes track the truth across ICB-years better than a constant would
    assert np.corrcoef(est["b_hat"], est["sii_realised"])[0, 1] > 0.5


def test_treatment_shift_and_estimands(noise_free: SyntheticPanel) -> None:
    t = noise_free.truth
    comps = list(S.PUBLISHED_COMPARATORS)
    assert t.ddd(S.GP_FTE, comps) == pytest.approx(-0.05, abs=1e-12)
    assert t.did(S.GP_FTE, comps) == pytest.approx(0.03, abs=1e-12)
    assert t.ddd(S.QOF) == pytest.approx(-0.05, abs=1e-12)
    assert t.ddd(S.NURSE_FTE) == pytest.approx(0.0, abs=1e-12)
    # the data show the same DDD: pure OLS contrast of per-cell slopes
    est = _wls_by_cell(noise_free.panel, S.GP_FTE)
    est = est.loc[est[S.ICB].isin([S.LLR_ICB, *comps])]
    est["post"] = est[S.YEAR] >= 2022
    m = est.groupby([S.ICB, "post"])["b_hat"].mean().unstack()
    chg = m[True] - m[False]
    assert chg[S.LLR_ICB] - chg[comps].mean() == pytest.approx(-0.05, abs=1e-5)
    sii = t.sii.loc[(t.sii["outcome"] == S.GP_FTE) & (t.sii[S.ICB] == S.LLR_ICB)]
    assert t.gradient_effect[S.GP_FTE] == -0.05 and t.level_effect[S.NURSE_FTE] == 0.0
    assert len(sii) == 7


def test_default_config_estimands_differ_from_null() -> None:
    sp = simulate_panel(SimulationConfig.small(seed=2, gradient_effect={S.GP_FTE: -0.08}))
    null = simulate_panel(SimulationConfig.small(seed=2, gradient_effect=0.0))
    # same seed: identical except the treated ICB's post-period gradient
    diff = sp.truth.ddd(S.GP_FTE) - null.truth.ddd(S.GP_FTE)
    assert diff == pytest.approx(-0.08, abs=1e-12)


def test_proportion_truth_on_logit_scale() -> None:
    sp = simulate_panel(
        SimulationConfig.small(seed=8, noise_scale=0.0, gpps_responses=(2000, 3000))
    )
    df = sp.panel.copy()
    n = df[S.GPPS_RESPONSES]
    p = (df[S.GPPS_OVERALL] * n + 0.5) / (n + 1.0)
    df["logit"] = np.log(p / (1 - p))
    est = _wls_by_cell(df, "logit").merge(_truth_for(sp, S.GPPS_OVERALL), on=[S.ICB, S.YEAR])
    assert (est["scale"] == "logit").all()
    np.testing.assert_allclose(est["b_hat"], est["sii"], atol=0.12)
    assert abs((est["b_hat"] - est["sii"]).mean()) < 0.02
    prob = sp.truth.sii_probability_scale()
    assert set(prob["outcome"]) == set(_simulated("proportion"))
    assert (np.sign(prob["sii_probability"]) == np.sign(prob["sii"])).all()


def test_closures_and_mergers_recorded() -> None:
    sp = simulate_panel(SimulationConfig.small(seed=21, closure_rate=0.03, merger_rate=0.04))
    df, ev = sp.panel, sp.truth.events
    assert {"closure", "merger"} <= set(ev["event"])
    years = df.groupby(S.PRACTICE)[S.YEAR].agg(["min", "max", "size"])
    for row in ev.itertuples(index=False):
        assert years.loc[row.practice_code, "max"] == row.year - 1
    # practices never reappear: contiguous years
    assert (years["max"] - years["min"] + 1 == years["size"]).all()
    lists = df.set_index([S.PRACTICE, S.YEAR])[S.LIST_SIZE]
    for row in ev.loc[ev["event"] == "merger"].itertuples(index=False):
        before = lists[(row.absorbed_into, row.year - 1)]
        absorbed = lists[(row.practice_code, row.year - 1)]
        assert lists[(row.absorbed_into, row.year)] > before + 0.6 * absorbed
    assert len(years) - years["max"].eq(2024).sum() == len(ev)


def test_dose_allocation() -> None:
    cfg = SimulationConfig.small(seed=13, dose=True, dose_effect={S.GP_FTE: 0.01})
    sp = simulate_panel(cfg)
    df = sp.panel
    dosed = df[S.HEP_DOSE] > 0
    assert (df.loc[dosed, S.ICB] == S.LLR_ICB).all()
    assert (df.loc[dosed, S.YEAR] >= 2022).all()
    assert (df[S.HEP_TREATED] == dosed.astype(int)).all()
    assert df.loc[dosed, S.HEP_DOSE].between(2.0, 10.0).all()
    start = df.loc[(df[S.ICB] == S.LLR_ICB) & (df[S.YEAR] == 2022)]
    share = (start[S.HEP_DOSE] > 0).mean()
    assert 0.45 <= share <= 0.55
    # dosed practices are the high-need ones
    assert (
        start.loc[start[S.HEP_DOSE] > 0, S.NEED_SCORE].min()
        >= start.loc[start[S.HEP_DOSE] == 0, S.NEED_SCORE].max()
    )
    assert sp.truth.dose_effect[S.GP_FTE] == 0.01
    # dose term enters the realised level of the treated ICB post period only
    lev = sp.truth.level.loc[sp.truth.level["outcome"] == S.GP_FTE]
    no_dose = simulate_panel(cfg.replace(dose_effect=0.0)).truth.level
    no_dose = no_dose.loc[no_dose["outcome"] == S.GP_FTE]
    gap = lev["level_realised"].to_numpy() - no_dose["level_realised"].to_numpy()
    is_post_t = ((lev[S.ICB] == S.LLR_ICB) & (lev[S.YEAR] >= 2022)).to_numpy()
    assert np.all(gap[is_post_t] > 0.01) and np.allclose(gap[~is_post_t], 0.0)


def test_default_config_is_national_scale() -> None:
    cfg = SimulationConfig()
    assert len(cfg.icb_rows()) == 42 and cfg.treated_icb == "QK1" and cfg.start_year == 2022
    sp = simulate_panel(cfg.replace(n_practices=6500, years=(2018, 2019, 2020, 2021, 2022)))
    first = sp.panel.loc[sp.panel[S.YEAR] == 2018]
    assert 6400 <= len(first) <= 6600
    assert 115 <= (first[S.ICB] == "QK1").sum() <= 145
    # identity-scale FTE outcomes: negatives (clipped to 0 and counted) are rare
    assert all(v < 0.005 * len(sp.panel) for v in sp.truth.clipped.values())
    assert set(sp.truth.clipped) == set(_simulated("rate"))


@pytest.mark.parametrize(
    ("change", "key"),
    [
        ({"treated_icb": "XXX"}, "treated_icb"),
        ({"start_year": 2018}, "start_year"),
        ({"closure_rate": 0.9}, "closure_rate"),
        ({"icbs": ("QK1", "NOPE")}, "icbs"),
        ({"gradient_effect": {"gp_fte": 0.1}}, "gradient_effect"),
    ],
)
def test_bad_config_names_key(change: dict[str, object], key: str) -> None:
    with pytest.raises(ValueError, match=key):
        simulate_panel(SimulationConfig.small(**change))


def _real_data_dir(request: pytest.FixtureRequest) -> Path:
    try:
        return Path(request.getfixturevalue("nhs_data_dir"))
    except pytest.FixtureLookupError:
        env = os.environ.get("HEPCAUSAL_NHS_DATA")
        if env and Path(env).is_dir():
            return Path(env)
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail("HEPCAUSAL_NHS_DATA not set/found but CI=true")
        pytest.skip("HEPCAUSAL_NHS_DATA not set")


def test_calibration_against_real_data(request: pytest.FixtureRequest) -> None:
    data_dir = _real_data_dir(request)
    spec = importlib.util.spec_from_file_location(
        "calibrate_synthetic", REPO / "benchmarks" / "calibrate_synthetic.py"
    )
    assert spec is not None and spec.loader is not None
    cal = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(cal)
    real, _ = cal.load_real(data_dir)
    sim = simulate_panel(SimulationConfig()).panel
    years = tuple(sorted(set(real[S.YEAR]) & set(sim[S.YEAR])))
    r = cal.summary(real, years)["value"]
    s = cal.summary(sim, years)["value"]
    relative = {
        "practices per year (mean)": 0.1,
        "list size median": 0.15,
        "list size p90": 0.2,
        "imd median": 0.1,
        "imd p10": 0.15,
        "imd p90": 0.1,
        f"{S.GP_FTE} median": 0.1,
        f"{S.NURSE_FTE} median": 0.15,
        f"{S.ADMIN_FTE} median": 0.1,
        f"{S.QOF} median": 0.03,
    }
    for stat, tol in relative.items():
        assert s[stat] == pytest.approx(r[stat], rel=tol), stat
    absolute = {
        f"{S.GP_FTE} SII median (ICB-years)": 0.04,
        f"{S.NURSE_FTE} SII median (ICB-years)": 0.04,
        f"{S.QOF} SII median (ICB-years)": 0.03,
        "weighted/registered median": 0.05,
    }
    for stat, tol in absolute.items():
        assert s[stat] == pytest.approx(r[stat], abs=tol), stat


# Panel columns of main at c6cc00c (before the generator read the outcome table) and the sha256
# prefix of pandas.util.hash_pandas_object(panel[_C6CC00C_COLUMNS]) computed on that commit.
_C6CC00C_COLUMNS = [
    *S.ID_COLUMNS,
    S.LIST_SIZE,
    S.WEIGHTED_LIST_SIZE,
    S.IMD,
    S.IMD2015,
    S.DEPRIVATION_RANK,
    S.NEED_SCORE,
    S.NEED_RANK,
    S.HEP_TREATED,
    S.HEP_DOSE,
    S.GP_FTE,
    S.NURSE_FTE,
    S.DPC_FTE,
    S.ADMIN_FTE,
    S.QOF,
    S.GPPS_OVERALL,
    S.QOF_MAX_POINTS,
    S.GPPS_RESPONSES,
]


@pytest.mark.parametrize(
    ("overrides", "digest"),
    [
        ({}, "3ca8027be78b2fe6"),
        (
            {"seed": 7, "dose": True, "dose_effect": 0.01, "qof_missing_years": (2021,)},
            "2225db5516d5dfec",
        ),
    ],
)
def test_existing_outcomes_bit_identical_to_c6cc00c(overrides: dict, digest: str) -> None:
    """Reading the specs from the outcome table (and appending outcomes) keeps old seeds."""
    import hashlib

    panel = simulate_panel(SimulationConfig.small(**overrides)).panel
    assert set(_C6CC00C_COLUMNS) <= set(panel.columns)
    hashed = pd.util.hash_pandas_object(panel[_C6CC00C_COLUMNS], index=True).to_numpy()
    assert hashlib.sha256(hashed.tobytes()).hexdigest()[:16] == digest


def test_outcome_specs_subset_and_unknown() -> None:
    only_gp = SimulationConfig.small(outcome_specs={S.GP_FTE: synthetic_specs()[S.GP_FTE]})
    sp = simulate_panel(only_gp)
    assert S.GP_FTE in sp.panel and S.QOF not in sp.panel and set(sp.truth.clipped) == {S.GP_FTE}
    with pytest.raises(ValueError, match="not outcome-table columns"):
        SimulationConfig.small(outcome_specs={"nope": synthetic_specs()[S.GP_FTE]}).validate()
    with pytest.raises(ValueError, match="gradient_effect: unknown outcomes"):
        only_gp.replace(gradient_effect={S.QOF: 0.1}).validate()

"""Tests of the generator's error structure (ErrorStructure, scenarios) and of residual_stats."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd
import pytest

from hepcausal import schema as S
from hepcausal.data.residual_stats import (
    REAL_TARGETS,
    icb_gradient_stats,
    residual_stats,
    simulated_residual_stats,
    two_way_residuals,
)
from hepcausal.data.synthetic import (
    CALIBRATED_ERRORS,
    SCENARIOS,
    ErrorStructure,
    SimulationConfig,
    scenario,
    simulate_panel,
)
from hepcausal.outcomes import synthetic_specs

GP = S.GP_FTE
_GP_ONLY = {GP: synthetic_specs()[GP]}


def _stats(errors: ErrorStructure, seeds: tuple[int, ...] = (1, 2), **cfg: object) -> dict:
    """Residual statistics of GP FTE, averaged over seeds (small preset, GP only)."""
    out = []
    for seed in seeds:
        c = SimulationConfig.small(errors=errors, outcome_specs=_GP_ONLY, seed=seed, **cfg)
        out.append(residual_stats(simulate_panel(c).panel, GP).as_dict())
    return {k: float(np.mean([d[k] for d in out])) for k in out[0]}


@pytest.fixture(scope="module")
def iid() -> dict:
    return _stats(ErrorStructure())


def test_two_way_residuals_are_double_demeaned() -> None:
    rng = np.random.default_rng(0)
    unit = np.repeat(np.arange(30), 5)[:-7]  # unbalanced
    cell = rng.integers(0, 8, unit.size)
    y = rng.normal(size=unit.size) + unit * 0.3 + cell * 0.2
    e = two_way_residuals(y, unit, cell)
    np.testing.assert_allclose(np.bincount(unit, weights=e), 0.0, atol=1e-9)
    np.testing.assert_allclose(np.bincount(cell, weights=e), 0.0, atol=1e-9)


def test_iid_residual_acf_is_the_demeaning_value(iid: dict) -> None:
    # practice demeaning of iid noise over 7 years: about -1/6 at every lag
    for k in range(1, 6):
        assert iid[f"acf lag {k}"] == pytest.approx(-1 / 6, abs=0.05), k


def test_default_errors_are_iid_and_bit_identical() -> None:
    assert SimulationConfig().errors == ErrorStructure() and ErrorStructure().is_iid
    base = simulate_panel(SimulationConfig.small(seed=4)).panel
    model = simulate_panel(scenario("model", SimulationConfig.small(seed=4))).panel
    pd.testing.assert_frame_equal(base, model)


def test_features_only_change_outcomes_they_touch() -> None:
    base = simulate_panel(SimulationConfig.small(seed=4))
    real = simulate_panel(scenario("realistic", SimulationConfig.small(seed=4)))
    outcomes = list(base.truth.config.simulated_outcomes())
    other = [c for c in base.panel.columns if c not in outcomes]
    pd.testing.assert_frame_equal(base.panel[other], real.panel[other])
    pd.testing.assert_frame_equal(base.truth.sii, real.truth.sii)
    assert not base.panel[GP].equals(real.panel[GP])
    # zeros alone: proportions untouched, rates only zeroed
    zer = simulate_panel(scenario("zeros", SimulationConfig.small(seed=4))).panel
    pd.testing.assert_series_equal(zer[S.QOF], base.panel[S.QOF])
    changed = zer[GP] != base.panel[GP]
    assert changed.any() and (zer.loc[changed, GP] == 0).all()


def test_ar1_raises_lag1_correlation(iid: dict) -> None:
    ar = _stats(ErrorStructure(rho=0.6))
    assert ar["acf lag 1"] > iid["acf lag 1"] + 0.25
    assert ar["acf lag 1"] > 0.1


def test_drift_makes_long_lags_negative(iid: dict) -> None:
    dr = _stats(ErrorStructure(drift_sd=0.5))
    assert dr["acf lag 5"] < iid["acf lag 5"] - 0.2
    assert dr["acf lag 4"] < iid["acf lag 4"] - 0.15
    assert dr["acf lag 1"] > iid["acf lag 1"] + 0.2


def test_ics_noise_spreads_icb_change_sds(iid: dict) -> None:
    ics = _stats(ErrorStructure(ics_noise_sd=0.4, treated_noise_ratio=2.0))
    spread = ics["change SD max"] / ics["change SD min"]
    assert spread > 1.3 * iid["change SD max"] / iid["change SD min"]
    assert ics["change SD treated / median"] > 1.5 > iid["change SD treated / median"]


def test_heavy_tails_raise_kurtosis_at_same_sd(iid: dict) -> None:
    ht = _stats(ErrorStructure(nu=3.5), seeds=(1, 2, 3))
    assert ht["kurtosis pooled"] > iid["kurtosis pooled"] + 2.0
    # scaled t: same SD up to sampling noise
    assert ht["residual SD"] == pytest.approx(iid["residual SD"], rel=0.25)
    row = _stats(ErrorStructure(nu=3.5, tail_unit="row"), seeds=(1, 2, 3))
    assert row["kurtosis pooled"] > iid["kurtosis pooled"] + 0.5


def test_zero_share_close_to_target() -> None:
    err = ErrorStructure(zero_share=0.05, treated_zero_share=0.1, zero_persistence=0.7)
    cfg = SimulationConfig.small(errors=err, outcome_specs=_GP_ONLY, seed=1, n_practices=2400)
    sp = simulate_panel(cfg)
    df = sp.panel
    zero = df[GP] == 0
    clipped = sp.truth.clipped[GP]
    assert sp.truth.zeroed[GP] == pytest.approx(zero.sum() - clipped, abs=clipped + 1)
    share = zero[df[S.ICB] != S.LLR_ICB].mean()
    assert share == pytest.approx(0.05, abs=0.012)
    assert zero[df[S.ICB] == S.LLR_ICB].mean() == pytest.approx(0.1, abs=0.05)
    # spells: P(zero | zero last year) near the persistence, far above the share
    df = df.assign(z=zero)
    prev = df.groupby(S.PRACTICE)["z"].shift()
    assert df.loc[prev == True, "z"].mean() == pytest.approx(0.7, abs=0.1)  # noqa: E712


def test_errors_recorded_in_truth() -> None:
    err = ErrorStructure(ics_noise_sd=0.3, treated_noise_ratio=2.0, rho=0.4)
    sp = simulate_panel(SimulationConfig.small(errors=err, seed=5))
    p = sp.truth.params[GP]
    assert p["errors"] == err.to_dict()
    m = p["ics_noise"]
    assert isinstance(m, pd.Series) and m.index.tolist() == [
        r.code for r in sp.truth.config.icb_rows()
    ]
    assert m.std() > 0 and m[S.LLR_ICB] > 0
    iid = simulate_panel(SimulationConfig.small(seed=5)).truth.params[GP]
    ones = iid["ics_noise"]
    assert isinstance(ones, pd.Series) and (ones == 1.0).all()
    assert iid["errors"] == ErrorStructure().to_dict()


@pytest.mark.parametrize(
    ("change", "key"),
    [
        ({"rho": 1.0}, "rho"),
        ({"drift_sd": -0.1}, "drift_sd"),
        ({"ics_noise_sd": -1.0}, "ics_noise_sd"),
        ({"treated_noise_ratio": 0.0}, "treated_noise_ratio"),
        ({"nu": 2.0}, "nu"),
        ({"tail_unit": "icb"}, "tail_unit"),
        ({"zero_share": 0.6}, "zero_share"),
        ({"treated_zero_share": -0.1}, "treated_zero_share"),
        ({"zero_persistence": 1.0}, "zero_persistence"),
        ({"scale": 0.0}, "scale"),
    ],
)
def test_bad_error_structure_names_field(change: dict[str, object], key: str) -> None:
    with pytest.raises(ValueError, match=f"errors.{key} must"):
        SimulationConfig.small(errors=ErrorStructure(**change)).validate()  # type: ignore[arg-type]


def test_errors_mapping_must_name_simulated_outcomes() -> None:
    with pytest.raises(ValueError, match="not simulated outcomes"):
        SimulationConfig.small(outcome_specs=_GP_ONLY, errors={S.QOF: ErrorStructure()}).validate()
    cfg = SimulationConfig.small(errors={GP: ErrorStructure(rho=0.5)})
    assert cfg.errors_for(GP).rho == 0.5 and cfg.errors_for(S.QOF).is_iid


@pytest.mark.parametrize("name", list(SCENARIOS))
@pytest.mark.parametrize("preset", ["small", "published_design", "national"])
def test_every_scenario_runs_on_every_preset(name: str, preset: str) -> None:
    base = {
        "small": SimulationConfig.small(),
        "published_design": SimulationConfig.published_design(),
        "national": SimulationConfig(n_practices=1000, years=(2020, 2021, 2022, 2023)),
    }[preset]
    cfg = scenario(name, base)
    sp = simulate_panel(cfg)
    assert (sp.panel[GP] >= 0).all() and sp.panel[S.QOF].between(0, 1).all()
    assert (cfg.errors_for(GP) == ErrorStructure()) == (name == "model")
    if name == "realistic":
        assert isinstance(cfg.errors, Mapping) and set(cfg.errors) == set(cfg.simulated_outcomes())
        assert cfg.errors_for(GP) == CALIBRATED_ERRORS[GP]


def test_realistic_errors_widen_icb_sii_changes() -> None:
    # practice drift and AR(1) noise do not average out of the per ICB-year SII: the spread of
    # ICB SII changes (what a placebo DDD sees) grows; same seed = same everything else
    for seed in (1, 2, 3):
        model = icb_gradient_stats(simulate_panel(SimulationConfig.small(seed=seed)).panel, GP)
        real = icb_gradient_stats(
            simulate_panel(scenario("realistic", SimulationConfig.small(seed=seed))).panel, GP
        )
        assert real["ICB SII change SD"] > 1.2 * model["ICB SII change SD"], seed
        assert real["ICB SII trend SD"] > model["ICB SII trend SD"], seed


def test_unknown_scenario() -> None:
    with pytest.raises(ValueError, match="unknown error scenario"):
        scenario("nope")
    with pytest.raises(ValueError, match="errors: unknown error scenario"):
        SimulationConfig.small(errors="nope")


def test_errors_from_config_values() -> None:
    """TOML-style values: a scenario name, a dict of fields, outcome -> dict of fields."""
    by_name = SimulationConfig.small(errors="realistic")
    assert by_name == scenario("realistic", SimulationConfig.small())
    assert SimulationConfig.small(errors="ar1").errors == SCENARIOS["ar1"]
    fields = SimulationConfig.small(errors={"rho": 0.4, "nu": 5.0})
    assert fields.errors == ErrorStructure(rho=0.4, nu=5.0)
    per = SimulationConfig.small(errors={GP: {"drift_sd": 0.2}})
    assert per.errors_for(GP) == ErrorStructure(drift_sd=0.2) and per.errors_for(S.QOF).is_iid
    with pytest.raises(ValueError, match="unknown ErrorStructure fields"):
        SimulationConfig.small(errors={GP: {"rhoo": 0.4}})
    with pytest.raises(ValueError, match="must be an ErrorStructure"):
        SimulationConfig.small(errors=3)


def test_published_design_preset() -> None:
    cfg = SimulationConfig.published_design()
    rows = cfg.icb_rows()
    assert [r.code for r in rows] == [S.LLR_ICB, *S.PUBLISHED_COMPARATORS]
    df = simulate_panel(cfg.replace(outcome_specs=_GP_ONLY)).panel
    first = df.loc[df[S.YEAR] == 2018]
    assert len(first) == 1661 and sorted(df[S.YEAR].unique()) == list(range(2018, 2025))


# -- calibration: the realistic scenario reproduces the real residual structure ------------------
# Tolerances (absolute unless said): the generated statistics are the median of 4 seeds of the
# published design; the real ones are one panel.  The kurtosis of heavy-tailed practice changes is
# erratic (12 seeds of the GP realistic scenario: 10-90% range 5-81, median 11), hence a factor 3.
# Zero shares come in spells (persistence 0.68): the SD of the treated ICB's share (~130
# practices) is about 0.01, of the overall share about 0.0025; tolerances are about 2 SDs.
TOLERANCE: dict[str, tuple[str, float]] = {
    "acf lag 1": ("abs", 0.08),
    "acf lag 2": ("abs", 0.08),
    "acf lag 3": ("abs", 0.08),
    "acf lag 4": ("abs", 0.08),
    "acf lag 5": ("abs", 0.08),
    "change SD min": ("rel", 0.2),
    "change SD median": ("rel", 0.1),
    "change SD max": ("rel", 0.2),
    "change SD treated / median": ("rel", 0.2),
    "kurtosis pooled": ("log", np.log(3.0)),
    "residual SD": ("rel", 0.1),
    "zero share": ("abs", 0.005),
    "zero share treated": ("abs", 0.02),
}
# Known gaps, per outcome: nurse FTE's real lags 3-5 (-0.28, -0.57, -0.42) are not monotone, which
# AR(1) + linear drift cannot reproduce (it gives about -0.35, -0.43, -0.43); identity-scale
# Gaussian noise at the real nurse magnitude clips ~3% of the values to 0 (real: 0.9% zeros).
KNOWN_GAPS: dict[str, frozenset[str]] = {
    S.NURSE_FTE: frozenset({"acf lag 3", "acf lag 4", "zero share"})
}


def within_tolerance(
    sim: dict[str, float], real: dict[str, float], skip: frozenset[str] = frozenset()
) -> list[str]:
    """Statistics of ``sim`` outside :data:`TOLERANCE` of ``real`` (empty = calibrated)."""
    bad = []
    for stat, (kind, tol) in TOLERANCE.items():
        if stat in skip:
            continue
        s, r = sim[stat], real[stat]
        if kind == "abs":
            err = abs(s - r)
        elif kind == "rel":
            err = abs(s / r - 1)
        else:
            err = abs(float(np.log(max(s, 1e-9) / r)))
        if err > tol:
            bad.append(f"{stat}: generated {s:.4f} vs real {r:.4f} ({kind} tol {tol:.3g})")
    return bad


@pytest.mark.parametrize("outcome", sorted(CALIBRATED_ERRORS))
def test_realistic_scenario_matches_real_targets(outcome: str) -> None:
    sim = simulated_residual_stats(outcome)
    gaps = KNOWN_GAPS.get(outcome, frozenset())
    assert within_tolerance(sim, REAL_TARGETS[outcome], gaps) == []


def test_model_scenario_does_not_match_real_targets() -> None:
    # the check can fail: today's iid generator misses the ACF, spreads and kurtosis
    sim = _stats(ErrorStructure(), seeds=(1,), n_practices=1661)
    bad = within_tolerance(sim, REAL_TARGETS[GP])
    assert any(b.startswith("acf lag 1") for b in bad) and any("kurtosis" in b for b in bad)


@pytest.mark.realdata
def test_real_targets_reproduce(nhs_data_dir: object) -> None:
    from hepcausal.data.nhs import build_nhs_panel

    panel = build_nhs_panel(nhs_data_dir).panel  # type: ignore[arg-type]
    for outcome, target in REAL_TARGETS.items():
        got = residual_stats(panel, outcome, icbs=[S.LLR_ICB, *S.PUBLISHED_COMPARATORS])
        for stat, value in got.as_dict().items():
            assert value == pytest.approx(target[stat], abs=6e-4, rel=1e-3), (outcome, stat)

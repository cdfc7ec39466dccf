"""Placebo inference for synthetic control: exact permutation p-values, exclusion, in-time nulls."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from _factor_panel import simulate_factor_panel
from hepcausal.causal.placebo import placebo_in_space, placebo_in_time
from hepcausal.sampling import SamplerSettings

SET = SamplerSettings(draws=500, tune=500, chains=2, target_accept=0.95, seed=11)


def _panel(effect: float, n_donors: int = 6, seed: int = 4):
    return simulate_factor_panel(
        n_donors=n_donors,
        n_pre=12,
        n_post=5,
        effect=effect,
        noise=0.2,
        idiosyncratic=0.5,
        seed=seed,
    )


@pytest.fixture(scope="module")
def big_effect():
    p = _panel(10.0)
    wide = p.wide.copy()
    # an outlying donor that no convex combination of the others can reproduce
    wide["outlier"] = 100.0 + np.random.default_rng(0).normal(0, 0.2, len(wide))
    return p, wide


@pytest.fixture(scope="module")
def res_all(big_effect):
    p, wide = big_effect
    return placebo_in_space(wide, "treated", p.start, pre_mspe_factor=None)


def test_exact_p_value_when_treated_is_most_extreme(res_all, big_effect):
    p, wide = big_effect
    J = wide.shape[1] - 1
    assert res_all.n_placebos == J and res_all.n_excluded == 0
    assert res_all.rank == 1
    assert res_all.p_value == pytest.approx(1 / (J + 1))
    assert res_all.p_value_floor == pytest.approx(1 / (J + 1))
    text = res_all.summary()
    assert f"1/{J + 1}" in text and "smallest attainable p" in text
    t = res_all.table
    assert t.loc["treated", "ratio"] == t["ratio"].max()
    assert (t["ratio"] == t["post_rmspe"] / t["pre_rmspe"]).all()
    # the real treated unit is never in a placebo's donor pool: its gap is not used by others
    assert res_all.gaps.shape == (len(wide), J + 1)
    assert res_all.gaps.columns[0] == "treated"
    assert res_all.gaps.loc[p.start :, "treated"].mean() == pytest.approx(10.0, abs=1.5)
    assert res_all.ratios.shape == (J + 1,)


def test_poor_prefit_placebos_excluded(res_all, big_effect):
    p, wide = big_effect
    J = wide.shape[1] - 1
    t = res_all.table
    assert t.loc["outlier", "pre_rmspe"] > 20 * t.loc["treated", "pre_rmspe"]
    r = placebo_in_space(wide, "treated", p.start, pre_mspe_factor=5)
    assert "outlier" in r.excluded and r.n_excluded == len(r.excluded) >= 1
    assert r.n_placebos == J - r.n_excluded
    assert r.p_value == pytest.approx(r.rank / (r.n_placebos + 1))
    assert "excluded" in r.summary() and "outlier" in r.summary()
    # MAP gaps are deterministic: same data, same numbers
    pd.testing.assert_frame_equal(r.gaps, res_all.gaps)


def test_rank_counts_ties_and_larger_ratios():
    p = _panel(0.0, n_donors=7, seed=9)
    r = placebo_in_space(p.wide, "treated", p.start, pre_mspe_factor=None)
    kept = r.table
    manual = int((kept["ratio"] >= kept.loc["treated", "ratio"]).sum())
    assert r.rank == manual
    assert r.p_value == pytest.approx(manual / 8)
    assert r.table.loc["treated", "rank"] == manual


def test_placebo_with_measurement_error(big_effect):
    p, wide = big_effect
    se = pd.DataFrame(0.3, index=wide.index, columns=wide.columns)
    r = placebo_in_space(
        wide, "treated", p.start, fit_kwargs={"outcome_se": se}, pre_mspe_factor=None
    )
    assert r.meta["measurement_error"] is True
    assert r.rank == 1


def test_placebo_in_time_null():
    p = _panel(5.0, n_donors=6, seed=2)
    r = placebo_in_time(p.wide, "treated", p.start, fit_kwargs={"settings": SET})
    assert list(r.table.index) == [2006]  # middle of the 12 pre-periods 2000..2011
    row = r.table.loc[2006]
    assert row["hdi_low"] <= 0 <= row["hdi_high"]
    assert bool(row["covers_zero"])
    f = r.fits[2006]
    assert max(f.series.index) == p.start - 1  # no post-treatment data used
    assert "covers 0 for 1 of 1" in r.summary()


def test_placebo_input_errors():
    p = _panel(0.0, n_donors=6)
    with pytest.raises(ValueError, match="inference"):
        placebo_in_space(p.wide, "treated", p.start, inference="vb")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="donors"):
        placebo_in_space(p.wide, "treated", p.start, fit_kwargs={"donors": ["d00", "d01"]})
    with pytest.raises(ValueError, match="at least 3 donors"):
        placebo_in_space(p.wide[["treated", "d00", "d01"]], "treated", p.start)
    with pytest.raises(KeyError, match="treated unit"):
        placebo_in_space(p.wide, "nope", p.start)
    with pytest.raises(ValueError, match="fake start 2015"):
        placebo_in_time(p.wide, "treated", p.start, fake_starts=[2015])


def test_in_time_placebo_refuses_short_pre_period():
    p = _panel(0.0, n_donors=6)
    short = p.wide.loc[p.start - 4 :]  # 4 pre-periods, as on the NHS design
    with pytest.raises(ValueError, match="cannot run an in-time placebo: 4 pre-periods"):
        placebo_in_time(short, "treated", p.start)


def test_mspe_thresholds_named_and_on_the_mspe(res_all, big_effect):
    from hepcausal.causal.placebo import ABADIE_PRE_MSPE_FACTORS, resolve_mspe_factor

    p, wide = big_effect
    assert resolve_mspe_factor("5x") == 5.0 and ABADIE_PRE_MSPE_FACTORS["20x"] == 20.0
    with pytest.raises(ValueError, match="named threshold"):
        resolve_mspe_factor("3x")
    t = res_all.table
    assert np.allclose(t["pre_mspe"], t["pre_rmspe"] ** 2)
    r = placebo_in_space(wide, "treated", p.start, pre_mspe_factor="2x")
    tr = t.at["treated", "pre_mspe"]
    # excluded exactly when the MSPE (not the RMSPE) exceeds 2x the treated unit's
    expect = sorted(u for u in t.index if u != "treated" and t.at[u, "pre_mspe"] > 2 * tr)
    assert sorted(r.excluded) == expect
    assert set(r.ranks_by_threshold) == {"20x", "5x", "2x", "none"}
    assert r.ranks_by_threshold["none"][1] == len(t)
    assert r.ranks_by_threshold["2x"] == (r.rank, r.n_placebos + 1)


def test_leave_one_out_donors(big_effect):
    from hepcausal.causal.placebo import leave_one_out

    p, wide = big_effect
    r = leave_one_out(wide, "treated", p.start)
    assert r.table.index[0] == "none" and len(r.table) >= 2
    assert (r.table.drop(index="none")["weight"] > 0.01).all()
    # a 10-unit effect survives dropping any one donor
    assert (r.table["avg_post_gap"] > 7).all()
    assert "dropping one of" in r.summary()


def test_convex_hull_warning():
    from hepcausal.causal.synthetic_control import fit_synthetic_control

    p = _panel(0.0, n_donors=6)
    wide = p.wide.copy()
    wide["treated"] = wide.drop(columns="treated").max(axis=1) + 5.0  # above every donor
    with pytest.warns(UserWarning, match="outside the donors' range"):
        f = fit_synthetic_control(wide, "treated", p.start, settings=SET)
    assert len(f.meta["outside_convex_hull"]) == 12


def test_leave_one_out_figure(big_effect):
    from hepcausal import plots
    from hepcausal.causal.placebo import leave_one_out

    p, wide = big_effect
    figs = {stem for stem, _f, _c in plots.result_figures(leave_one_out(wide, "treated", p.start))}
    assert figs == {"leave_one_out"}

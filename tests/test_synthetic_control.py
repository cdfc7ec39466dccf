"""Bayesian synthetic control: recovery, null, sparse weights, horseshoe, measurement error, inputs,
Proposition 99 and a synthetic NHS ICS panel."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from _factor_panel import simulate_factor_panel
from hepcausal.causal.panels import ics_series
from hepcausal.causal.synthetic_control import (
    SyntheticControlFit,
    fit_synthetic_control,
    resolve_outcome_se,
)
from hepcausal.results import FitResult
from hepcausal.sampling import SamplerSettings
from hepcausal.summaries import summarise_effect

SET = SamplerSettings(draws=500, tune=500, chains=2, target_accept=0.95, seed=11)
# deliberately short fits (2 x 100 draws, unit tests of the wiring): convergence warning expected
SHORT = pytest.mark.filterwarnings("ignore::hepcausal.diagnostics.ConvergenceWarning")
EFFECT = 3.0
SE = 0.6


def _panel(effect: float):
    return simulate_factor_panel(
        n_donors=8, n_pre=15, n_post=5, effect=effect, noise=0.2, idiosyncratic=1.0, seed=5
    )


@pytest.fixture(scope="module")
def panel_effect():
    return _panel(EFFECT)


@pytest.fixture(scope="module")
def fit_effect(panel_effect) -> SyntheticControlFit:
    return fit_synthetic_control(panel_effect.wide, "treated", panel_effect.start, settings=SET)


@pytest.fixture(scope="module")
def fit_null() -> SyntheticControlFit:
    p = _panel(0.0)
    return fit_synthetic_control(p.wide, "treated", p.start, settings=SET)


def _width(fit: FitResult) -> float:
    return fit.headline.hdi_high - fit.headline.hdi_low


def test_recovers_known_effect(fit_effect):
    h = fit_effect.headline
    assert isinstance(fit_effect, FitResult)
    assert h.hdi_low <= EFFECT <= h.hdi_high
    assert h.hdi_low > 0 and h.p_direction > 0.99  # detectably different from no effect
    assert fit_effect.diagnostics.n_chains == 2
    assert fit_effect.pre_fit["r2"] > 0.9
    assert fit_effect.pre_fit["rmspe"] < 1.0
    cum = fit_effect.effects["cumulative_effect"]
    assert cum.hdi_low <= 5 * EFFECT <= cum.hdi_high


def test_null_effect_covers_zero(fit_null, fit_effect):
    h = fit_null.headline
    assert h.hdi_low <= 0 <= h.hdi_high
    # same untreated data: the two estimates differ by the true effect, not by chance
    assert fit_effect.headline.mean - h.mean == pytest.approx(EFFECT, abs=1e-6)


def test_outputs_shapes(fit_effect, panel_effect):
    T = panel_effect.wide.shape[0]
    pp = fit_effect.idata.posterior_predictive
    assert pp["counterfactual"].shape == (2, 500, T)
    assert pp["effect"].shape == (2, 500, T)
    assert list(fit_effect.series.index) == list(panel_effect.wide.index)
    assert fit_effect.series["post"].sum() == 5
    assert set(fit_effect.weights.index) == {f"d{j:02d}" for j in range(8)}
    assert np.allclose(fit_effect.idata.posterior["weights"].sum("donor"), 1.0)
    eff = pp["effect"].values.reshape(-1, T)
    cf = pp["counterfactual"].values.reshape(-1, T)
    assert np.allclose(eff, panel_effect.wide["treated"].to_numpy() - cf)
    tab = fit_effect.summary()
    assert tab["name"].iloc[0].startswith("average post-period effect")
    assert len(tab) == 2 + 5
    assert "rmspe" in fit_effect.meta["pre_fit"]


def test_dirichlet_recovers_sparse_weights(fit_effect, panel_effect):
    w = fit_effect.weights["mean"]
    true = panel_effect.weights
    top3 = set(w.sort_values(ascending=False).index[:3])
    assert top3 == {"d00", "d01", "d02"}
    # support recovery: the three true donors carry most of the weight; d00 (0.5) within its HDI
    tab = fit_effect.weights
    assert tab.at["d00", "hdi_low"] <= true["d00"] <= tab.at["d00", "hdi_high"]
    assert w[["d00", "d01", "d02"]].sum() > 0.75
    assert w.drop(["d00", "d01", "d02"]).max() < 0.15


@SHORT
def test_horseshoe_fit(panel_effect):
    f = fit_synthetic_control(
        panel_effect.wide, "treated", panel_effect.start, method="horseshoe", settings=SET
    )
    h = f.headline
    assert h.hdi_low <= EFFECT <= h.hdi_high and h.hdi_low > 0
    assert f.pre_fit["r2"] > 0.9
    assert f.meta["intercept"] is True
    w = f.weights["mean"]
    assert set(w.sort_values(ascending=False).index[:2]) <= {"d00", "d01", "d02"}


@SHORT  # deliberately short chains
def test_measurement_error_widens_and_covers(fit_effect, panel_effect):
    rng = np.random.default_rng(7)
    true = panel_effect.wide
    se = pd.DataFrame(SE, index=true.index, columns=true.columns)
    noisy = true + rng.normal(0.0, SE, size=true.shape)
    f = fit_synthetic_control(
        noisy, "treated", panel_effect.start, outcome_se=se, method="dirichlet", settings=SET
    )
    assert f.meta["measurement_error"] is True
    assert "X_err" in f.idata.posterior
    # one noisy realisation: the truth must lie in the 99% HDI (a 95% check would fail 1 in 20)
    h99 = summarise_effect(
        f.idata.posterior_predictive["avg_post_effect"], name="avg", hdi_prob=0.99
    )
    assert h99.hdi_low <= EFFECT <= h99.hdi_high
    assert _width(f) > 1.2 * _width(fit_effect)


def test_outcome_draws_equivalent_to_se(panel_effect):
    wide = panel_effect.wide
    rng = np.random.default_rng(3)
    draws = wide.to_numpy()[None] + rng.normal(0, 0.5, size=(4000, *wide.shape))
    se = resolve_outcome_se(wide, outcome_draws=draws)
    assert se.shape == wide.shape and np.allclose(se.to_numpy(), 0.5, atol=0.03)
    da = xr.DataArray(
        draws.reshape(2, 2000, *wide.shape),
        dims=("chain", "draw", "time", "unit"),
        coords={"time": list(wide.index), "unit": list(wide.columns)},
    )
    se2 = resolve_outcome_se(wide, outcome_draws=da)
    assert np.allclose(se2.to_numpy(), se.to_numpy(), atol=1e-2)
    with pytest.raises(ValueError, match="not both"):
        resolve_outcome_se(wide, outcome_se=se, outcome_draws=draws)
    with pytest.raises(ValueError, match="draw, time, unit"):
        resolve_outcome_se(wide, outcome_draws=draws[:, :3])


@pytest.mark.parametrize(
    ("mutate", "kwargs", "err", "match"),
    [
        (lambda w: w, {"treated": "nope"}, KeyError, "treated unit 'nope'"),
        (lambda w: w, {"start": 1999}, KeyError, "start 1999"),
        (lambda w: w, {"start": 2001}, ValueError, "at least 2 pre-treatment periods"),
        (lambda w: w[["treated", "d00"]], {}, ValueError, "at least 2 donor units"),
        (lambda w: w.iloc[::-1], {}, ValueError, "strictly increasing"),
        (
            lambda w: w,
            {"priors": {"concentraton": 2}},
            ValueError,
            "unknown prior key.*concentraton",
        ),
        (lambda w: w, {"method": "lasso"}, ValueError, "dirichlet' or 'horseshoe"),
    ],
)
def test_input_errors(panel_effect, mutate, kwargs, err, match):
    wide = mutate(panel_effect.wide)
    args = {"treated": "treated", "start": panel_effect.start, **kwargs}
    with pytest.raises(err, match=match):
        fit_synthetic_control(wide, args.pop("treated"), args.pop("start"), settings=SET, **args)


def test_missing_value_named(panel_effect):
    wide = panel_effect.wide.copy()
    wide.loc[2003, "d04"] = np.nan
    with pytest.raises(ValueError, match=r"unit 'd04' at time 2003"):
        fit_synthetic_control(wide, "treated", panel_effect.start)
    se = pd.DataFrame(0.1, index=wide.index, columns=wide.columns).drop(columns="d05")
    with pytest.raises(ValueError, match=r"outcome_se lacks units \['d05'\]"):
        fit_synthetic_control(panel_effect.wide, "treated", panel_effect.start, outcome_se=se)


# ----------------------------------------------------------------------------- Proposition 99


def _prop99_path() -> Path | None:
    spec = importlib.util.find_spec("causalpy")  # finds the package without importing it
    if spec is None or not spec.submodule_search_locations:
        return None
    p = Path(next(iter(spec.submodule_search_locations))) / "data" / "california_prop99.csv"
    return p if p.exists() else None


PUBLISHED_WEIGHTS = {"Utah": 0.394, "Montana": 0.232, "Nevada": 0.204}  # ADH (2010), table 2


def _prop99() -> pd.DataFrame:
    path = _prop99_path()
    if path is None:
        pytest.skip(
            "causalpy (test extra; ships causalpy/data/california_prop99.csv) not installed"
        )
    wide = pd.read_csv(path).set_index("Year")
    assert wide.shape == (31, 39)
    return wide


def test_california_prop99_at_defaults():
    """Package defaults (4 x 2000 exact draws; a few seconds): ADH's weights and gaps, converged."""
    wide = _prop99()
    f = fit_synthetic_control(wide, "California", 1989, units="packs per capita")
    assert f.method == "bayesian_bootstrap"
    d = f.diagnostics
    assert (d.n_chains, d.n_draws) == (4, 2000)
    assert d.max_rhat <= 1.01 and d.min_ess_bulk >= 400 and d.min_ess_tail >= 400
    assert d.n_divergences == 0 and d.ok
    h = f.headline
    # Abadie, Diamond & Hainmueller (2010): about -19 to -20 on average over 1989-2000, -26 by 2000
    assert -22 <= h.mean <= -17, h
    assert h.hdi_high < 0
    assert -29 <= f.effects["effect_2000"].mean <= -23
    w = f.weights["mean"]
    for state, pub in PUBLISHED_WEIGHTS.items():
        assert abs(w[state] - pub) <= 0.1, (state, w[state])
    assert f.pre_fit["rmspe"] < 2.5
    # the test can fail: 40 packs added to California's post-period turn the gap positive
    shifted = wide.copy()
    shifted.loc[1989:, "California"] += 40.0
    g = fit_synthetic_control(shifted, "California", 1989, settings=SET)
    assert g.headline.mean == pytest.approx(h.mean + 40.0, abs=1.0)
    assert g.headline.hdi_low > 0


@pytest.mark.slow
def test_dirichlet_nuts_on_prop99_is_spread():
    """The NUTS Dirichlet(1) option stays available; its posterior mean spreads the weights."""
    wide = _prop99()
    s = SET.with_(draws=200, tune=300)
    with pytest.warns(UserWarning):  # deliberately short chains: convergence warning expected
        f = fit_synthetic_control(wide, "California", 1989, method="dirichlet", settings=s)
    assert f.weights["mean"].max() < 0.3  # Utah well below ADH's .394


# ----------------------------------------------------------------------------- NHS-like panel


@pytest.mark.slow
@SHORT  # deliberately short chains
def test_synthetic_nhs_ics_series():
    synthetic = pytest.importorskip("hepcausal.data.synthetic")
    from hepcausal import schema as S

    icbs = (S.LLR_ICB, *S.PUBLISHED_COMPARATORS)
    level = 0.25
    cfg = synthetic.SimulationConfig(
        n_practices=900,
        icbs=icbs,
        equal_icb_sizes=True,
        gradient_effect=0.0,
        level_effect={S.GP_FTE: level},
        seed=3,
    )
    sim = synthetic.simulate_panel(cfg)
    wide = ics_series(sim.panel, S.GP_FTE)
    assert list(wide.index) == list(S.STUDY_YEARS) and wide.shape[1] == len(icbs)
    f = fit_synthetic_control(
        wide, S.LLR_ICB, S.HEP_START_YEAR, method="dirichlet", intercept=True, settings=SET
    )
    h = f.headline
    assert h.hdi_low <= level <= h.hdi_high, h
    assert f.meta["n_pre"] == 4 and f.meta["n_post"] == 3


# ----------------------------------------------------------------------------- predictors


@SHORT
def test_predictors_long_and_wide_agree(panel_effect):
    wide = panel_effect.wide
    units = list(wide.columns)
    rng = np.random.default_rng(2)
    size = pd.Series(rng.normal(10, 2, len(units)), index=units)
    cov_wide = pd.DataFrame({"list_size": size})
    cov_long = pd.DataFrame({"unit": units, "list_size": size.to_numpy()})
    kw = {"outcome_lags": [2003], "settings": SET.with_(draws=100)}
    fw = fit_synthetic_control(wide, "treated", panel_effect.start, covariates=cov_wide, **kw)
    fl = fit_synthetic_control(wide, "treated", panel_effect.start, covariates=cov_long, **kw)
    pd.testing.assert_frame_equal(fw.weights, fl.weights)
    v = fw.meta["predictor_weights"]
    assert set(v) == {"outcome_mean", "outcome_2003", "list_size"}
    assert sum(v.values()) == pytest.approx(1.0)
    # the effect is still recovered when matching on predictors
    assert fw.headline.hdi_low <= EFFECT <= fw.headline.hdi_high


@SHORT
def test_time_varying_covariate_long_format(panel_effect):
    wide = panel_effect.wide
    long = wide.reset_index(names="time").melt(id_vars="time", var_name="unit", value_name="x")
    f = fit_synthetic_control(
        wide, "treated", panel_effect.start, covariates=long, settings=SET.with_(draws=100)
    )
    assert set(f.meta["predictor_weights"]) == {"outcome_mean", "x"}


def test_predictor_errors(panel_effect):
    wide = panel_effect.wide
    cov = pd.DataFrame({"size": 1.0}, index=[c for c in wide.columns if c != "d03"])
    with pytest.raises(ValueError, match=r"units \['d03'\]"):
        fit_synthetic_control(wide, "treated", panel_effect.start, covariates=cov)
    with pytest.raises(ValueError, match="outcome_lags: 1990"):
        fit_synthetic_control(wide, "treated", panel_effect.start, outcome_lags=[1990])
    with pytest.raises(ValueError, match="need method='bayesian_bootstrap'"):
        fit_synthetic_control(
            wide, "treated", panel_effect.start, outcome_lags=[2003], method="dirichlet"
        )


def test_joint_series_draws_keep_correlations(panel_effect, fit_effect):
    """A draw-level shift common to every unit and year cancels in the synthetic control: the
    joint draws must not widen the interval, the per-cell-SD approximation does."""
    wide = panel_effect.wide
    rng = np.random.default_rng(5)
    shift = rng.normal(0, 1.0, size=(1000, 1, 1))
    draws = wide.to_numpy()[None] + shift
    f = fit_synthetic_control(
        wide, "treated", panel_effect.start, outcome_draws=draws, settings=SET
    )
    assert f.meta["measurement_error"] == "joint series draws"
    assert _width(f) < 1.1 * _width(fit_effect)
    se = resolve_outcome_se(wide, outcome_draws=draws)
    g = fit_synthetic_control(wide, "treated", panel_effect.start, outcome_se=se, settings=SET)
    assert _width(g) > 1.3 * _width(fit_effect)
    da = xr.DataArray(
        draws.reshape(2, 500, *wide.shape),
        dims=("chain", "draw", "year", "icb"),
        coords={"year": list(wide.index), "icb": list(wide.columns)},
    ).transpose("chain", "draw", "icb", "year")
    h = fit_synthetic_control(wide, "treated", panel_effect.start, outcome_draws=da, settings=SET)
    assert h.headline.mean == pytest.approx(f.headline.mean, abs=0.2)


# ----------------------------------------------------------------------------- registry adapter


@pytest.fixture(scope="module")
def nhs_small():
    from hepcausal.data.synthetic import SimulationConfig, simulate_panel

    return simulate_panel(SimulationConfig.small(n_practices=240, seed=2)).panel


def test_adapter_sii_posterior_propagates_joint_draws(monkeypatch, nhs_small):
    """series='sii_posterior': the gradient model's joint ICB x year SII draws reach the SC."""
    import types

    import hepcausal.models.gradient as gradient
    from hepcausal import schema
    from hepcausal.causal.design import DesignError
    from hepcausal.diagnostics import Diagnostics
    from hepcausal.experiments.adapters import synthetic_control
    from hepcausal.spec import Design, Inference

    icbs = ["QK1", "QJ2", "QE1", "QWO"]
    years = sorted(nhs_small[schema.YEAR].unique())
    rng = np.random.default_rng(0)
    base = rng.normal(-0.3, 0.1, (len(icbs), len(years)))
    shift = rng.normal(0, 0.2, (2, 300, 1, 1))  # common to every ICB-year within a draw
    sii = xr.DataArray(
        base[None, None] + shift,
        dims=("chain", "draw", "icb", "year"),
        coords={"icb": icbs, "year": years},
    )
    calls: dict = {}

    def fake_fit_gradient(panel, outcome, **kw):
        calls.update(kw)
        diag = Diagnostics(1.0, 1000.0, 1000.0, 0, 300, 2)
        return types.SimpleNamespace(
            idata=types.SimpleNamespace(posterior={"sii": sii}), sii_var="sii", diagnostics=diag
        )

    monkeypatch.setattr(gradient, "fit_gradient", fake_fit_gradient)
    inf = Inference(settings=SET.with_(draws=300))
    design = Design(comparators=icbs[1:], start_year=years[2])
    f = synthetic_control(nhs_small, schema.GP_FTE, design, inf, series="sii_posterior")
    assert calls["icbs"] == icbs and calls["rank_col"] == schema.DEPRIVATION_RANK
    assert f.meta["series"] == "sii_posterior"
    assert f.meta["measurement_error"] == "joint series draws"
    # the common shift cancels: the effect draws equal those without it (up to residual noise)
    assert f.series["observed"].to_numpy() == pytest.approx(base[0] + shift.mean(), abs=1e-9)
    with pytest.raises(DesignError, match="weights"):
        synthetic_control(
            nhs_small,
            schema.GP_FTE,
            Design(comparators=icbs[1:], start_year=years[2], weights=schema.LIST_SIZE),
            inf,
            series="sii_posterior",
        )


@SHORT
def test_adapter_predictors(nhs_small):
    from hepcausal import schema
    from hepcausal.experiments.adapters import ics_predictors, synthetic_control
    from hepcausal.experiments.registry import get_entry
    from hepcausal.spec import Design, Inference

    icbs = ["QK1", "QJ2", "QE1", "QWO"]
    tab = ics_predictors(nhs_small, ["list_size", "deprivation", "staffing_mix"], icbs)
    assert set(tab.columns) == {"time", "unit", "list_size", "deprivation", "staffing_mix"}
    assert tab["staffing_mix"].between(0, 1).all()
    opts = get_entry("synthetic_control").parse_options({"predictors": ["deprivation"]})
    assert opts.predictors == ["deprivation"]
    with pytest.raises(Exception, match="staffing"):
        get_entry("synthetic_control").parse_options({"predictors": ["staffing"]})
    years = sorted(nhs_small[schema.YEAR].unique())
    f = synthetic_control(
        nhs_small,
        schema.GP_FTE,
        Design(comparators=icbs[1:], start_year=years[3]),
        Inference(settings=SET.with_(draws=100)),
        series="mean",
        predictors=["list_size", "deprivation", "staffing_mix"],
    )
    assert set(f.meta["predictor_weights"]) == {
        "outcome_mean",
        "list_size",
        "deprivation",
        "staffing_mix",
    }

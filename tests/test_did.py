"""Practice-level Bayesian DiD: recovery, null, honest (ICB x year) uncertainty, input errors."""

from __future__ import annotations

import numpy as np
import pytest

from hepcausal import schema as S
from hepcausal.causal.design import DesignError, build_design
from hepcausal.causal.did import fit_ddd, fit_did
from hepcausal.data.synthetic import SimulationConfig, simulate_panel
from hepcausal.models.panel_effects import PanelPriors
from hepcausal.sampling import SamplerSettings
from hepcausal.spec import Design, Inference

ICBS = ("QK1", "QJ2", "QOQ", "QT1", "QHM", "QWO", "QF7", "QE1", "QWU")
COMPS = list(ICBS[1:])
YEARS = (2019, 2020, 2021, 2022, 2023, 2024)
SETTINGS = SamplerSettings(draws=500, tune=500, chains=2, seed=11)
INF = Inference(settings=SETTINGS)
DESIGN = Design(comparators=COMPS)

pytestmark = pytest.mark.filterwarnings("ignore::hepcausal.diagnostics.ConvergenceWarning")


def _sim(**kw):
    cfg = SimulationConfig.small(n_practices=270, icbs=ICBS, years=YEARS, **kw)
    return simulate_panel(cfg)


@pytest.fixture(scope="module")
def effect_panel():
    return _sim(level_effect=0.06, gradient_effect=0.0, seed=101)


@pytest.fixture(scope="module")
def null_panel():
    return _sim(level_effect=0.0, gradient_effect=0.0, seed=102)


def test_did_recovers_level_effect_with_covariate_and_missing(effect_panel) -> None:
    panel = effect_panel.panel.copy()
    panel.loc[panel.index[:7], S.GP_FTE] = np.nan  # dropped and counted
    truth = effect_panel.truth.did(S.GP_FTE, COMPS)
    fit = fit_did(panel, S.GP_FTE, DESIGN.with_(covariates=(S.LIST_SIZE,)), INF)
    h = fit.headline
    assert h.name == "delta"
    assert h.hdi_low <= truth <= h.hdi_high, (truth, h)
    assert h.hdi_low > 0  # a 0.06 FTE/1k level effect is detected
    assert fit.meta["dropped"]["missing_outcome"] == 7
    assert fit.meta["dropped"]["other_groups"] == 0
    assert fit.meta["covariates"] == [S.LIST_SIZE]
    assert "beta_cov" in fit.idata.posterior
    assert fit.diagnostics.max_rhat < 1.05 and fit.diagnostics.n_divergences == 0
    assert h.rope is not None and h.rope[1] == pytest.approx(0.1 * fit.meta["y_sd"])
    assert fit.draws("delta").size == 1000


def test_did_null_effect_not_declared_and_icb_year_shocks_widen(null_panel) -> None:
    """The null is covered; dropping the ICB x year shocks gives a much narrower interval."""
    fit = fit_did(null_panel.panel, S.GP_FTE, DESIGN, INF)
    h = fit.headline
    assert h.hdi_low < 0 < h.hdi_high, h
    naive = fit_did(null_panel.panel, S.GP_FTE, DESIGN, INF, icb_year_effects=False)
    assert "sigma_cell" not in naive.idata.posterior
    # practice-level noise alone treats ~1,600 practice-years as independent evidence
    assert naive.headline.sd < 0.75 * h.sd, (naive.headline.sd, h.sd)


def test_design_errors(effect_panel) -> None:
    p = effect_panel.panel
    with pytest.raises(DesignError, match="outcome column 'nope'"):
        build_design(p, "nope", DESIGN)
    with pytest.raises(DesignError, match="treated icb_code 'ZZZ'"):
        build_design(p, S.GP_FTE, DESIGN.with_(treated="ZZZ"))
    with pytest.raises(DesignError, match=r"not in the panel: \['QXX', 'QYY'\]"):
        build_design(p, S.GP_FTE, Design(comparators=["QJ2", "QXX", "QYY"]))
    with pytest.raises(DesignError, match="no pre-period rows"):
        build_design(p, S.GP_FTE, DESIGN.with_(start_year=2019))
    with pytest.raises(DesignError, match="no post-period rows"):
        build_design(p, S.GP_FTE, DESIGN.with_(start_year=2030))
    with pytest.raises(DesignError, match=r"covariate column\(s\) not in the panel: \['zz'\]"):
        build_design(p, S.GP_FTE, DESIGN.with_(covariates=("zz",)))
    with pytest.raises(DesignError, match="contains the treated group 'QK1'"):
        Design(comparators=["QK1", "QJ2"])
    with pytest.raises(DesignError, match="group column 'region'"):
        build_design(p, S.GP_FTE, Design(group_col="region"))
    with pytest.raises(DesignError, match="weights column 'wt'"):  # weights name a column
        fit_did(p, S.GP_FTE, DESIGN.with_(weights="wt"), INF)
    with pytest.raises(DesignError, match="must be positive"):
        build_design(p.assign(wt=0.0), S.GP_FTE, DESIGN.with_(weights="wt"))
    with pytest.raises(ValueError, match="unknown prior key"):
        PanelPriors.from_any({"effect_scale": 1.0})
    with pytest.raises(ValueError, match="backend must be"):
        Inference(backend="jags")  # type: ignore[arg-type]


def test_design_comparators_all_generic_columns_and_drops(effect_panel) -> None:
    p = effect_panel.panel.rename(columns={S.PRACTICE: "id", S.ICB: "region", S.YEAR: "t"})
    p.loc[p.index[:3], S.GP_FTE] = np.nan
    d = build_design(
        p, S.GP_FTE, Design(comparators="all", unit_col="id", group_col="region", time_col="t")
    )
    assert d.comparators == tuple(sorted(COMPS))
    assert d.drops["missing_outcome"] == 3 and d.n_obs == len(p) - 3
    assert d.effect_names == ["delta"]
    treated_post = (p["region"] == "QK1") & (p["t"] >= 2022) & p[S.GP_FTE].notna()
    assert d.effects[0].values.sum() == treated_post.sum()
    assert abs(d.y.mean()) < 1e-9 and d.y.std() == pytest.approx(1.0)
    # a subset of comparators excludes (and counts) the other groups' rows
    d2 = build_design(effect_panel.panel, S.GP_FTE, Design(comparators=("QJ2", "QOQ")))
    assert d2.data.attrs["rank_col"] == S.DEPRIVATION_RANK  # the default design's rank
    level_only = build_design(effect_panel.panel, S.GP_FTE, DESIGN, use_rank=False)
    assert level_only.rank_c is None and level_only.data.attrs["rank_col"] is None
    assert d2.drops["other_groups"] == int(
        (~effect_panel.panel[S.ICB].isin(["QK1", "QJ2", "QOQ"])).sum()
    )


@pytest.mark.parametrize("fit", [fit_did, fit_ddd])
def test_compiled_model_reused_on_a_new_panel_gives_the_fresh_posterior(fit, null_panel) -> None:
    """Pre/post refits re-use the compiled model (pm.Data containers) with identical draws.

    The level-only DiD prunes the rank container from its graph: the reused model must still
    accept the new data (a KeyError before the fix) and reproduce a fresh fit exactly.
    """
    from hepcausal.models.backend import clear_compiled_cache

    other = _sim(seed=103)
    practices = other.panel[S.PRACTICE].unique()
    small = other.panel[other.panel[S.PRACTICE].isin(practices[::2])]  # half, every ICB
    clear_compiled_cache()
    fresh = fit(null_panel.panel, S.GP_FTE, DESIGN, INF)
    clear_compiled_cache()
    fit(small, S.GP_FTE, DESIGN, INF)  # compiles (a different number of practices)
    reused = fit(null_panel.panel, S.GP_FTE, DESIGN, INF)
    assert reused.idata.posterior.attrs["hepcausal_compiled_model_reused"] == 1
    assert reused.headline.mean == fresh.headline.mean
    assert reused.headline.sd == fresh.headline.sd

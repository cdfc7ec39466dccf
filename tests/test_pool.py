"""The pool of the pre/post DiD / DDD: ICBs that inform only the spread of the ICBs' changes.

``Design.pool = "all"`` (default: none) keeps the other ICBs of the panel in the pre/post model with
their own mean change (``pool_change_shift``, ``pool_gradient_change_shift``): they sharpen the
SD of the ICBs' changes without moving the comparison, which stays treated minus comparators.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from hepcausal import schema as S
from hepcausal.causal import placebo_panel
from hepcausal.causal.design import build_design
from hepcausal.causal.did import _ddd_effects, fit_ddd
from hepcausal.data.synthetic import SimulationConfig, simulate_panel
from hepcausal.diagnostics import ConvergenceWarning
from hepcausal.experiments.config import ConfigError, config_from_dict
from hepcausal.experiments.runner import design_of
from hepcausal.experiments.sweep import expand_sweep
from hepcausal.sampling import SamplerSettings
from hepcausal.spec import Design, DesignError, Inference

ICBS = ("QK1", "QJ2", "QOQ", "QT1", "QHM", "QWO", "QF7", "QE1", "QWU")
COMPS = ("QJ2", "QOQ", "QT1", "QHM")
POOL = tuple(sorted(ICBS[5:]))
YEARS = (2019, 2020, 2021, 2022, 2023, 2024)
INF = Inference(settings=SamplerSettings(draws=500, tune=500, chains=2, seed=3))


@pytest.fixture(scope="module")
def panel() -> pd.DataFrame:
    cfg = SimulationConfig.small(
        n_practices=360, icbs=ICBS, years=YEARS, gradient_effect=0.0, seed=44
    )
    return simulate_panel(cfg).panel


def test_pool_is_resolved_counted_and_validated(panel) -> None:
    assert Design().pool == ()  # the default: no pool
    des = build_design(panel, S.GP_FTE, Design(comparators=COMPS, pool="all"), effects=_ddd_effects)
    assert des.pool == () and des.drops["other_groups"] > 0  # only the pre/post model pools
    des = build_design(
        panel, S.GP_FTE, Design(comparators=COMPS, pool="all"), effects=_ddd_effects, use_pool=True
    )
    assert des.pool == POOL and des.drops["other_groups"] == 0
    assert des.describe()["pool"] == list(POOL)
    assert des.pool_group.sum() == len(POOL) and len(des.groups) == len(ICBS)
    des = build_design(
        panel,
        S.GP_FTE,
        Design(comparators=COMPS, exclude=("QWU",), pool="all"),
        effects=_ddd_effects,
        use_pool=True,
    )
    assert "QWU" not in des.pool and "QWU" not in des.groups
    with pytest.raises(DesignError, match="pool contains the treated"):
        Design(comparators=COMPS, pool=("QK1",))
    with pytest.raises(DesignError, match=r"Design\.pool must be"):
        Design(comparators=COMPS, pool="some")  # type: ignore[arg-type]
    with pytest.raises(
        DesignError, match=r"pool icb_code value\(s\) already used: 'QJ2' \(a comparator\)"
    ):
        build_design(panel, S.GP_FTE, Design(comparators=COMPS, pool=("QJ2",)), use_pool=True)
    with pytest.raises(DesignError, match=r"pool icb_code value.*not in the panel"):
        build_design(panel, S.GP_FTE, Design(comparators=COMPS, pool=("QXX",)), use_pool=True)


@pytest.mark.filterwarnings("ignore::hepcausal.diagnostics.ConvergenceWarning")
def test_pool_mean_change_does_not_move_the_comparison(panel) -> None:
    """Pool ICBs whose gradient changes by +0.4 FTE per 1k after 2022 (the comparators' not):
    their own mean shift absorbs it and the DDD matches the fit without the pool; a model that
    pooled the MEAN as well would pull the comparators' mean change toward the pool's."""
    shifted = panel.copy()
    pool_post = shifted[S.ICB].isin(POOL) & (shifted[S.YEAR] >= 2022)
    shifted.loc[pool_post, S.GP_FTE] += 0.4 * (shifted.loc[pool_post, S.DEPRIVATION_RANK] - 0.5)
    with_pool = fit_ddd(shifted, S.GP_FTE, Design(comparators=COMPS, pool="all"), INF)
    without = fit_ddd(shifted, S.GP_FTE, Design(comparators=COMPS, pool=()), INF)
    assert with_pool.meta["pool"] == list(POOL) and without.meta["pool"] == []
    a, b = with_pool.effects["delta_gradient"], without.effects["delta_gradient"]
    assert abs(a.mean - b.mean) < 0.25 * b.sd, (a, b)
    post = with_pool.idata.posterior
    shift = float(post["pool_gradient_change_shift"].mean()) * with_pool.meta["y_sd"]
    assert 0.2 < shift < 0.6, shift  # the pool's own gradient change, recovered
    assert "pool_gradient_change_shift" not in without.idata.posterior


@pytest.mark.filterwarnings("ignore::hepcausal.diagnostics.ConvergenceWarning")
def test_treated_icb_keeps_its_own_residual_scale() -> None:
    """A treated ICB twice as noisy as the 8 others: its residual scale is its own.

    The ICB scales are partially pooled (``sigma_scale``) for the comparators and the pool, but
    not for the treated ICB (``treated_scale_sd``): with the others' scales nearly equal the
    hierarchy would shrink the treated scale toward theirs and understate the treated effect's
    SD (session 5: coverage 0.81 and 27% false positives on the realistic scenario).  The
    posterior scale ratio must match the empirical ratio of the practice changes' SDs.
    """
    from hepcausal.data.synthetic import ErrorStructure
    from hepcausal.models.panel_effects import prepost_data

    cfg = SimulationConfig.small(
        n_practices=360,
        icbs=ICBS,
        years=YEARS,
        gradient_effect=0.0,
        seed=45,
        errors=ErrorStructure(treated_noise_ratio=2.0),
    )
    panel = simulate_panel(cfg).panel
    design = Design(comparators=COMPS, pool="all")
    fit = fit_ddd(panel, S.GP_FTE, design, INF)
    des = build_design(panel, S.GP_FTE, design, effects=_ddd_effects, use_pool=True)
    pp = prepost_data(des)
    t = des.groups.index("QK1")
    sd_t = pp.d[pp.group == t].std()
    sd_o = np.median([pp.d[pp.group == g].std() for g in range(len(des.groups)) if g != t])
    post = fit.idata.posterior.stack(s=("chain", "draw"))
    z = post["z_scale"].transpose("s", ...).to_numpy()  # (draws, ICBs)
    dev = post["sigma_scale"].to_numpy()[:, None] * z  # log scale deviations of the others
    dev[:, t] = 1.0 * z[:, t]  # the treated ICB's: fixed SD treated_scale_sd = 1
    ratio = float(np.mean(np.exp(dev[:, t] - np.median(np.delete(dev, t, axis=1), axis=1))))
    assert 0.8 * sd_t / sd_o < ratio < 1.25 * sd_t / sd_o, (ratio, sd_t / sd_o)


def test_placebo_fits_leave_the_treated_icb_out_of_the_pool(panel, monkeypatch) -> None:
    seen: list[Design] = []

    def spy(args):
        seen.append(args[3])
        return {"group": args[3].treated, "mean": 0.0, "sd": 1.0, "z": 0.0}

    monkeypatch.setattr(placebo_panel, "_one_placebo", spy)
    placebo_panel.placebo_table(panel, S.GP_FTE, Design(comparators=COMPS, pool="all"), INF)
    assert [d.treated for d in seen] == list(COMPS)
    for d in seen:
        assert "QK1" in d.exclude and d.pool == "all"
        des = build_design(panel, S.GP_FTE, d, effects=_ddd_effects, use_pool=True)
        assert "QK1" not in des.groups and des.pool == POOL


def _cfg(**analysis) -> dict:
    return {
        "name": "t",
        "data": {"source": "synthetic"},
        "analysis": {"comparators": list(COMPS), **analysis},
        "estimator": {"name": "ddd"},
    }


def test_pool_config_keys() -> None:
    assert design_of(config_from_dict(_cfg())).pool == ()
    assert design_of(config_from_dict(_cfg(pool="all"))).pool == "all"
    d = design_of(config_from_dict(_cfg(pool=["QWO"], exclude=["QWU"])))
    assert d.pool == ("QWO",) and d.exclude == ("QWU",)
    with pytest.raises(ConfigError, match=r"analysis\.pool"):
        config_from_dict(_cfg(pool="most"))
    with pytest.raises(ConfigError, match=r"analysis\.pool.*treated"):
        config_from_dict(_cfg(pool=["QK1"]))
    es = _cfg(pool="none")
    es["estimator"] = {"name": "event_study"}
    with pytest.raises(ConfigError, match=r"'analysis\.pool' is not used by estimator"):
        config_from_dict(es)
    rows = _cfg(pool="none")
    rows["estimator"] = {"name": "ddd", "error_model": "rows"}
    with pytest.raises(ConfigError, match=r"'analysis\.pool' is not used by estimator"):
        config_from_dict(rows)


def test_placebo_sweep_excludes_the_treated_icb_from_the_pool() -> None:
    cfg = _cfg()
    cfg["sweep"] = {"mode": "placebo", "grid": {}}
    points = expand_sweep(config_from_dict(cfg))
    placebos = [p for p in points if p.config.analysis.treated_icb != "QK1"]
    assert len(placebos) == len(COMPS)
    assert all(p.config.analysis.exclude == ("QK1",) for p in placebos)
    es = _cfg()
    es["estimator"] = {"name": "event_study"}
    es["sweep"] = {"mode": "placebo", "grid": {}}
    assert all(p.config.analysis.exclude == () for p in expand_sweep(config_from_dict(es)))


def test_pool_needs_no_data_when_every_icb_is_compared(panel) -> None:
    """comparators = 'all' leaves nothing to pool: the model has no shift parameters."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        fit = fit_ddd(
            panel,
            S.GP_FTE,
            Design(comparators="all"),
            Inference(settings=SamplerSettings(draws=100, tune=100, chains=1, seed=1)),
        )
    assert fit.meta["pool"] == [] and "pool_change_shift" not in fit.idata.posterior
    assert np.isfinite(fit.effects["delta_gradient"].mean)

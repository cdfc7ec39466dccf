"""The marginalised row-level panel-effects model: the explicit one, intercepts integrated out.

Exactness: at random parameter values the marginalised log-likelihood equals (1) the dense
multivariate-normal log density of the data with covariance ``sigma_unit^2 Z Z' + diag(sigma_g^2)``
and (2) the explicit PyMC model's log density integrated over the practice intercepts (it is
quadratic in them, so the Gaussian integral is exact: one Newton step finds the mode, the
Hessian is diagonal).  Posterior equivalence: explicit and marginalised DDD and event study give
effect means within 0.1 posterior SD.  Negative controls: a wrong ``sigma_unit`` or a wrong row
design changes the log density by far more than the tolerance.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import scipy.sparse as sp
from scipy.stats import multivariate_normal

from hepcausal import schema as S
from hepcausal.causal.design import build_design
from hepcausal.causal.did import _ddd_effects, fit_ddd
from hepcausal.causal.event_study import fit_event_study
from hepcausal.data.synthetic import SimulationConfig, simulate_panel
from hepcausal.models.panel_effects import ModelOptions, PanelPriors, build_pymc_model
from hepcausal.models.panel_marginal import (
    draw_unit_effects,
    is_marginalised,
    marginal_design,
    numpy_loglik,
    theta_draws,
)
from hepcausal.sampling import SamplerSettings
from hepcausal.spec import Design, Inference

ICBS = ("QK1", "QJ2", "QOQ", "QT1")
YEARS = (2019, 2020, 2021, 2022, 2023)


@pytest.fixture(scope="module")
def panel():
    cfg = SimulationConfig.small(n_practices=40, icbs=ICBS, years=YEARS, seed=5)
    p = simulate_panel(cfg).panel
    # unbalanced practices (1 to 5 rows), so several practice-size blocks per stratum
    rng = np.random.default_rng(0)
    return p.drop(index=p.index[rng.random(len(p)) < 0.25])


def _design(panel, covariates=()):
    return build_design(
        panel,
        S.GP_FTE,
        Design(comparators=ICBS[1:], covariates=covariates),
        effects=_ddd_effects,
    )


def _point(model, seed):
    rng = np.random.default_rng(seed)
    ip = model.initial_point()
    return {k: rng.normal(0.0, 0.5, size=np.shape(v)) for k, v in ip.items()}


def _constrained(names, vals):
    """Posterior-like Dataset (1 chain, 1 draw) of the constrained values ``vals``."""
    import xarray as xr

    return xr.Dataset(
        {
            n: xr.DataArray(
                np.asarray(v)[None, None],
                dims=("chain", "draw", *[f"{n}_{i}" for i in range(np.ndim(v))]),
            )
            for n, v in zip(names, vals, strict=True)
        }
    ).assign_coords(chain=[0], draw=[0])


def _scales(post, options, n_group):
    sigma = float(post["sigma"].values.ravel()[0])
    if options.ics_scales:
        return sigma * np.exp(
            float(post["sigma_scale"].values.ravel()[0]) * post["z_scale"].values.reshape(-1)
        )
    return np.full(1, sigma)


OPTION_CASES = [
    dict(gradient=True, ics_scales=False),
    dict(gradient=True, ics_scales=True),
    dict(gradient=True, ics_scales=True, group_trends=True, centred_units=False),
    dict(gradient=False, ics_scales=False, cell_effects=False),
]


@pytest.mark.parametrize("kw", OPTION_CASES)
def test_marginal_loglik_equals_dense_mvn_and_integrated_explicit(panel, kw) -> None:
    design = _design(panel, covariates=(S.LIST_SIZE,))
    options = ModelOptions(error_model="rows", **kw)
    assert is_marginalised(design, options)
    priors = PanelPriors()
    marg = build_pymc_model(design, priors, options)
    expl = build_pymc_model(design, priors, dataclasses.replace(options, marginalise=False))
    assert "unit_raw" not in marg.named_vars and "unit_raw" in expl.named_vars
    assert {v.name for v in expl.free_RVs} - {v.name for v in marg.free_RVs} == {"unit_raw"}
    md = marginal_design(design, options)
    names = [v.name for v in marg.free_RVs + marg.deterministics]
    constrained = marg.compile_fn(
        marg.replace_rvs_by_values([marg[n] for n in names]), point_fn=True
    )
    potential = marg.compile_fn(marg.replace_rvs_by_values([marg.potentials[0]])[0])
    logp_m_fn = marg.compile_logp(jacobian=True)
    logp_e = expl.compile_logp(jacobian=True)
    dlogp_e = expl.compile_dlogp(vars=[expl["unit_raw"]], jacobian=True)
    z = sp.csr_matrix(
        (np.ones(design.n_obs), (np.arange(design.n_obs), design.unit_idx)),
        shape=(design.n_obs, len(design.units)),
    ).toarray()
    for seed in range(2):
        point = _point(marg, seed)
        post = _constrained(names, constrained(point))
        theta = theta_draws(post, design, options)[0]
        scales = _scales(post, options, len(design.groups))
        sigma_unit = float(post["sigma_unit"].values.ravel()[0])
        ll = numpy_loglik(md, theta, scales, sigma_unit)
        # the model's potential is this log-likelihood
        pot = potential(point)
        assert float(pot) == pytest.approx(ll, rel=1e-10, abs=1e-8)
        # (1) dense multivariate normal over all rows
        s_row = scales[design.group_idx] if options.ics_scales else np.full(design.n_obs, scales[0])
        cov = sigma_unit**2 * z @ z.T + np.diag(s_row**2)
        dense = multivariate_normal(md.x @ theta, cov).logpdf(design.y)
        assert ll == pytest.approx(dense, rel=1e-9), (ll, dense)
        # negative controls: a wrong sigma_unit or a wrong design is detected
        assert abs(numpy_loglik(md, theta, scales, 1.1 * sigma_unit) - dense) > 1e-3
        bad = md.x.copy()
        bad.data[0] = 0.0  # the first row loses its level cell
        wrong = multivariate_normal(bad @ theta, cov).logpdf(design.y)
        assert abs(ll - wrong) > 1e-3
        # (2) the explicit model's log density integrated over the intercepts (exact: quadratic)
        ept = {**point, "unit_raw": np.zeros(len(design.units))}
        g0 = np.asarray(dlogp_e(ept))
        ept1 = {**ept, "unit_raw": np.ones(len(design.units))}
        h = g0 - np.asarray(dlogp_e(ept1))  # -Hessian diagonal (f is quadratic in unit_raw)
        assert np.all(h > 0)
        mode = {**ept, "unit_raw": g0 / h}
        assert np.abs(dlogp_e(mode)).max() < 1e-6 * max(1.0, np.abs(g0).max())
        integrated = (
            float(logp_e(mode))
            + 0.5 * len(design.units) * np.log(2 * np.pi)
            - 0.5 * np.sum(np.log(h))
        )
        logp_m = float(logp_m_fn(point))
        assert logp_m == pytest.approx(integrated, rel=1e-9, abs=1e-7), (logp_m, integrated)


def test_fallbacks_and_unit_draws(panel) -> None:
    design = _design(panel)
    assert not is_marginalised(design, ModelOptions(error_model="rows", family="student_t"))
    assert not is_marginalised(design, ModelOptions(error_model="prepost"))
    assert not is_marginalised(design, ModelOptions(error_model="rows", marginalise=False))
    weighted = build_design(
        panel,
        S.GP_FTE,
        Design(comparators=ICBS[1:], weights=S.LIST_SIZE),
        effects=_ddd_effects,
    )
    opts = ModelOptions(error_model="rows", gradient=True)
    assert not is_marginalised(weighted, opts)  # weights: the explicit model (exact)
    assert "unit_raw" in build_pymc_model(weighted, PanelPriors(), opts).named_vars
    with pytest.raises(ValueError, match="marginalise=False"):
        marginal_design(weighted, opts)
    # conditional draws of the intercepts: with sigma_unit -> 0 they sit on the ICB mean line
    marg = build_pymc_model(design, PanelPriors(), opts)
    point = _point(marg, 1)
    point["sigma_unit_log__"] = np.array(np.log(1e-6))
    names = [v.name for v in marg.free_RVs + marg.deterministics]
    fn = marg.compile_fn(marg.replace_rvs_by_values([marg[n] for n in names]), point_fn=True)
    post = _constrained(names, fn(point))
    post = post.rename({"group_mean_0": "group", "gradient_group_0": "group"})
    a = draw_unit_effects(post, design, opts, seed=3)
    from hepcausal.models.panel_effects import unit_mean_rank

    m = post["group_mean"].values.ravel()[design.unit_group] + post[
        "gradient_group"
    ].values.ravel()[design.unit_group] * unit_mean_rank(design)
    np.testing.assert_allclose(a.values.ravel(), m, atol=1e-4)


# 2 x 2500 draws: ESS of the effects ~2,000-5,000 per fit, so the Monte Carlo SD of the
# difference of two means is ~0.02-0.03 posterior SD and the 0.1 SD tolerance is > 3 of them
SETTINGS = SamplerSettings(draws=2500, tune=600, chains=2, seed=7)


@pytest.fixture(scope="module")
def fit_panel():
    icbs = ("QK1", "QJ2", "QOQ", "QT1", "QHM", "QWO")
    cfg = SimulationConfig.small(
        n_practices=150, icbs=icbs, years=(2019, 2020, 2021, 2022, 2023), seed=31
    )
    return simulate_panel(cfg).panel, icbs


def _close(a, b, names, tol=0.1):
    """Posterior means within ``tol`` posterior SD, posterior SDs within 10%."""
    for name in names:
        da, db = a.draws(name), b.draws(name)
        sd = float(np.sqrt(0.5 * (da.var() + db.var())))
        diff = abs(float(da.mean() - db.mean()))
        print(f"{name}: |mean difference| {diff / sd:.3f} SD, SD ratio {da.std() / db.std():.3f}")
        assert diff < tol * sd, (name, diff / sd)
        assert 0.9 < da.std() / db.std() < 1.1, (name, da.std(), db.std())


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore::hepcausal.diagnostics.ConvergenceWarning")
def test_posterior_equivalence_ddd_and_event_study(fit_panel) -> None:
    """Explicit vs marginalised: effect means within 0.1 posterior SD (2 x 2500 draws each)."""
    panel, icbs = fit_panel
    design = Design(comparators=list(icbs[1:]), start_year=2022)
    inf = Inference(settings=SETTINGS)
    kw = dict(error_model="rows", family="gaussian", ics_scales=True)
    m = fit_ddd(panel, S.GP_FTE, design, inf, **kw)
    e = fit_ddd(panel, S.GP_FTE, design, inf, **kw, marginalise=False)
    assert m.meta["marginalised"] and not e.meta["marginalised"]
    assert "unit_raw" not in m.idata.posterior and "unit_raw" in e.idata.posterior
    _close(m, e, ["delta_gradient", "delta_level"])
    ms = fit_event_study(panel, S.GP_FTE, design, inf)
    es = fit_event_study(panel, S.GP_FTE, design, inf, marginalise=False)
    assert ms.meta["marginalised"] and not es.meta["marginalised"]
    _close(ms, es, [n for n in ms.effects])

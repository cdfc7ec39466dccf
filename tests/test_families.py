"""The likelihood-family table, the priors convention and the backend module."""

from __future__ import annotations

import dataclasses
import re

import numpy as np
import pytest

from hepcausal import schema as S
from hepcausal.data.synthetic import SimulationConfig, simulate_panel
from hepcausal.models.backend import (
    BACKENDS,
    ModelSpec,
    check_backend,
    sample_model,
    zero_sum_basis,
)
from hepcausal.models.families import FAMILIES, get_family
from hepcausal.models.gradient import gradient_stan_data
from hepcausal.models.gradient_data import GradientPriors, prepare_gradient_data, resolve_family
from hepcausal.models.gradient_pymc import build_pymc_model
from hepcausal.models.panel_effects import PanelPriors
from hepcausal.models.stan_engine import stan_program_path
from hepcausal.models.synthetic_control import SyntheticControlPriors
from hepcausal.outcomes import OUTCOMES

ICBS = ("QK1", "QJ2", "QOQ")
YEARS = (2020, 2021, 2022)


@pytest.fixture(scope="module")
def panel():
    cfg = SimulationConfig.small(n_practices=30, icbs=ICBS, years=YEARS, seed=2)
    return simulate_panel(cfg).panel


def test_table_rows_are_complete() -> None:
    assert set(FAMILIES) == {
        "gaussian",
        "lognormal",
        "student_t",
        "binomial",
        "beta_binomial",
        "logit_normal",
    }
    priors = {f.name for f in dataclasses.fields(GradientPriors)}
    for fam in FAMILIES.values():
        assert fam.scale in ("identity", "log", "logit")
        assert fam.needs_denominator == (fam.scale == "logit")
        assert all(p.prior_key in priors for p in fam.extra), fam.name
        # only the logit_normal approximation is marginalisable among the proportion families
        assert fam.on_counts == (fam.needs_denominator and fam.name != "logit_normal")
    assert get_family("student_t").extra_names == ("sigma", "nu")
    assert not get_family("student_t").marginalisable
    with pytest.raises(ValueError, match="unknown likelihood family 'poisson'"):
        get_family("poisson")


def test_every_stan_family_id_is_in_the_stan_switch() -> None:
    """Each family's switch id has a branch in gradient_explicit.stan (PyMC and Stan in step)."""
    code = stan_program_path("gradient_explicit").read_text()
    ids = {int(k) for k in re.findall(r"family == (\d)", code)}
    upper = int(re.search(r"int<lower=1, upper=(\d)> family", code).group(1))
    for fam in FAMILIES.values():
        assert fam.stan_family in ids | {upper}, fam.name
        assert fam.stan_family <= upper
    for name in ("sigma", "nu", "overdispersion"):
        assert re.search(rf"real<lower=0> {name};", code), name
    for key in (f.name for f in dataclasses.fields(GradientPriors)):
        for prog in ("gradient_explicit", "gradient_gaussian"):
            assert f"prior_{key};" in stan_program_path(prog).read_text(), (prog, key)


def test_default_family_comes_from_the_outcome_table(panel) -> None:
    for col, row in OUTCOMES.items():
        assert row.family in FAMILIES, col
        if get_family(row.family).needs_denominator:
            assert row.denominator is not None, col
    assert resolve_family(S.GP_FTE).name == OUTCOMES[S.GP_FTE].family
    assert resolve_family(S.QOF).name == "beta_binomial"
    assert resolve_family("some_user_column").name == "gaussian"
    with pytest.raises(ValueError, match="proportion outcome with a denominator"):
        resolve_family(S.GP_FTE, "beta_binomial")
    with pytest.raises(ValueError, match="'auto' or one of"):
        resolve_family(S.GP_FTE, "cauchy")


@pytest.mark.parametrize(
    ("outcome", "family", "extras", "observed"),
    [
        (S.GP_FTE, "gaussian", ["sigma"], None),
        (S.GP_FTE, "student_t", ["sigma", "nu"], "StudentT"),
        (S.QOF, "binomial", [], "Binomial"),
        (S.QOF, "beta_binomial", ["overdispersion"], "BetaBinomialCounts"),
    ],
)
def test_pymc_model_follows_the_table(panel, outcome, family, extras, observed) -> None:
    data = prepare_gradient_data(panel, outcome, likelihood=family)
    model = build_pymc_model(data, GradientPriors())
    names = [v.name for v in model.free_RVs]
    assert [n for n in names if n in ("sigma", "nu", "overdispersion")] == extras
    assert ("z_u" in names) == (not get_family(family).marginalisable)
    if observed is None:
        assert "marginal_loglik" in [p.name for p in model.potentials]
    else:
        rv = model["y"]
        assert rv.owner.op.__class__.__name__.startswith(observed)
    program, sd = gradient_stan_data(
        data, GradientPriors(), dict.fromkeys("abdf", False), marginalise=True
    )
    if get_family(family).marginalisable:
        assert program == "gradient_gaussian"
    else:
        assert program == "gradient_explicit" and sd["family"] == get_family(family).stan_family
        n_cont = data.n_obs if not get_family(family).needs_denominator else 0
        assert len(sd["z"]) == n_cont and len(sd["succ"]) == data.n_obs - n_cont


def test_lognormal_derived_ratio(panel) -> None:
    import xarray as xr

    post = xr.Dataset(
        {
            "sii": (("icb", "year"), np.full((2, 2), 0.2)),
            "level": (("icb", "year"), np.zeros((2, 2))),
            "national_sii": (("year",), np.full(2, 0.2)),
        }
    )
    w = xr.DataArray(np.full((2, 2), 0.5), dims=("icb", "year"))
    assert np.allclose(get_family("lognormal").derived(post, w)["rii"], np.exp(0.2))
    prob = get_family("binomial").derived(post, w)
    assert np.allclose(prob["sii_prob"], 1 / (1 + np.exp(-0.1)) - 1 / (1 + np.exp(0.1)))
    assert get_family("binomial").effect_units("qof") == "probability"
    assert get_family("lognormal").effect_units("gp") == "log gp"


@pytest.mark.parametrize("cls", [GradientPriors, PanelPriors, SyntheticControlPriors])
def test_priors_convention(cls) -> None:
    """Every prior dataclass: from_any(None | dict | obj), ValueError naming the bad key."""
    default = cls.from_any(None)
    assert default == cls() and cls.from_any(default) is default
    key = dataclasses.fields(cls)[1].name
    assert getattr(cls.from_any({key: 0.3}), key) == 0.3
    assert cls.from_any(default.to_dict()) == default
    with pytest.raises(ValueError, match=r"'no_such_key'.*valid keys"):
        cls.from_any({"no_such_key": 1.0})
    with pytest.raises(ValueError, match=f"'{key}'"):
        cls.from_any({key: -1.0})
    with pytest.raises(ValueError, match=f"'{key}'"):
        cls.from_any({key: float("nan")})


def test_synthetic_control_concentration_per_donor() -> None:
    pr = SyntheticControlPriors.from_any({"concentration": [0.5, 1.0, 2.0]})
    assert pr.concentration == (0.5, 1.0, 2.0)
    with pytest.raises(ValueError, match="'concentration'"):
        SyntheticControlPriors.from_any({"concentration": [0.5, 0.0]})


def test_backend_dispatch_errors() -> None:
    assert BACKENDS == ("pymc", "stan")
    assert check_backend("stan", model="gradient") == "stan"
    with pytest.raises(ValueError, match="backend must be one of"):
        check_backend("jags", model="gradient")
    spec = ModelSpec(name="synthetic-control", build_pymc=lambda: None)
    assert spec.backends == ("pymc",)
    with pytest.raises(ValueError, match="synthetic-control model has a PyMC backend only"):
        sample_model(spec, "stan")


def test_zero_sum_basis_is_orthonormal_and_sums_to_zero() -> None:
    for n in (2, 3, 7):
        b = zero_sum_basis(n)
        assert b.shape == (n, n - 1)
        np.testing.assert_allclose(b.T @ b, np.eye(n - 1), atol=1e-12)
        np.testing.assert_allclose(b.sum(axis=0), 0.0, atol=1e-12)
    assert zero_sum_basis(1).shape == (1, 0)


def test_tidy_stan_drops_switched_off_blocks_and_squeezes_optional_scalars() -> None:
    import arviz as az

    from hepcausal.models.backend import tidy_stan

    rng = np.random.default_rng(0)
    idata = az.from_dict(
        posterior={
            "sigma_cell": rng.normal(size=(2, 5, 1)),  # array[1] real: an optional scalar
            "effect": rng.normal(size=(2, 5, 1)),  # one effect term: stays a vector
            "z_trend": rng.normal(size=(2, 5, 0)),  # switched-off block
            "sigma": rng.normal(size=(2, 5)),
        }
    )
    out = tidy_stan(idata, ["sigma_cell", "nu"]).posterior
    assert set(out.data_vars) == {"sigma_cell", "effect", "sigma"}
    assert out["sigma_cell"].dims == ("chain", "draw")
    assert out["effect"].ndim == 3 and out["sigma"].dims == ("chain", "draw")


def test_beta_binomial_logpmf_equals_pymc_beta_binomial(panel) -> None:
    """The family's cheaper beta-binomial log-pmf is PyMC's BetaBinomial, value for value."""
    import pymc as pm

    data = prepare_gradient_data(panel, S.QOF, likelihood="beta_binomial")
    rng = np.random.default_rng(3)
    eta = rng.normal(2.5, 1.5, data.n_obs)
    for od in (0.05, 0.4, 2.0):
        with pm.Model() as model:
            get_family("beta_binomial").pymc_likelihood(data, eta, {"overdispersion": od})
        ours = model.compile_fn(model.logp(sum=False)[0])({})
        p, phi = 1 / (1 + np.exp(-eta)), 1 / od**2
        ref = pm.logp(
            pm.BetaBinomial.dist(alpha=p * phi, beta=(1 - p) * phi, n=data.trials),
            data.successes,
        ).eval()
        np.testing.assert_allclose(ours, ref, rtol=1e-8, atol=1e-7)
        # a wrong precision is visible (the comparison has power)
        wrong = pm.logp(
            pm.BetaBinomial.dist(alpha=p * phi * 2, beta=(1 - p) * phi * 2, n=data.trials),
            data.successes,
        ).eval()
        assert np.max(np.abs(ours - wrong)) > 1e-3

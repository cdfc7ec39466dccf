"""Exact backend agreement: PyMC and Stan evaluate the same log density and gradient.

For each model the PyMC model and the Stan program (pystan/httpstan, compiled offline and cached
under ``XDG_CACHE_HOME``) are evaluated at the same random points of the unconstrained parameter
space.  PyMC's value variables are mapped to Stan's unconstrained vector by name (both use
``log`` for positive parameters; Stan flattens matrices column-major).  Stan's ``~`` drops
constant terms, so the log densities are compared through their DIFFERENCE between two points;
the gradients are compared directly.  This complements the sampled-quantile comparisons of
``test_gradient_stan.py`` / ``test_causal_stan.py``: a mismatch in any prior, transform,
Jacobian or likelihood term shows up here exactly, not within Monte-Carlo error.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from hepcausal import schema as S
from hepcausal.data.synthetic import SimulationConfig, simulate_panel
from hepcausal.models.backend import ModelSpec
from hepcausal.models.gradient import model_spec
from hepcausal.models.gradient_data import GradientPriors, prepare_gradient_data
from hepcausal.models.stan_engine import pystan_model

pytestmark = pytest.mark.stan

ICBS = ("QK1", "QJ2", "QOQ", "QT1")
YEARS = (2020, 2021, 2022, 2023)
RTOL_LOGP = 1e-8
RTOL_GRAD = 1e-6
AGREEMENT: dict[
    str, tuple[float, float]
] = {}  # model -> (max rel. logp error, max rel. grad error)


@pytest.fixture(scope="module")
def panel():
    cfg = SimulationConfig.small(n_practices=48, icbs=ICBS, years=YEARS, seed=21)
    return simulate_panel(cfg).panel


class _Pymc:
    """Log density and gradient of a PyMC model as functions of named unconstrained values."""

    def __init__(self, model: Any) -> None:
        self.model = model
        self.names: dict[str, str] = {}  # value-variable name -> parameter name
        for rv in model.free_RVs:
            value = model.rvs_to_values[rv]
            tr = model.rvs_to_transforms.get(rv)
            assert tr is None or type(tr).__name__ == "LogTransform", (rv.name, tr)
            self.names[value.name] = rv.name
        ip = model.initial_point()
        self.shapes = {self.names[k]: np.shape(v) for k, v in ip.items()}
        self._logp = model.compile_logp(jacobian=True)
        self._dlogp = model.compile_dlogp(jacobian=True)
        self._order = [v.name for v in model.value_vars]

    def point(self, values: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        return {k: values[p] for k, p in self.names.items()}

    def logp(self, values: dict[str, np.ndarray]) -> float:
        return float(self._logp(self.point(values)))

    def grad(self, values: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        flat = np.asarray(self._dlogp(self.point(values)))
        out, i = {}, 0
        for k in self._order:
            shape = self.shapes[self.names[k]]
            size = int(np.prod(shape)) if shape else 1
            out[self.names[k]] = flat[i : i + size].reshape(shape)
            i += size
        assert i == flat.size
        return out


def _stan_vector(stan: Any, values: dict[str, np.ndarray]) -> np.ndarray:
    """Stan's unconstrained vector: parameters in declaration order, matrices column-major."""
    parts = []
    for name, dims in zip(stan.param_names, stan.dims, strict=True):
        if name in values:
            arr = np.asarray(values[name], dtype=float)
            assert arr.size == int(np.prod(dims)), (name, arr.shape, dims)
            parts.append(arr.reshape(arr.shape or (1,)).ravel(order="F"))
        else:  # transformed parameters, generated quantities, switched-off blocks
            assert name not in values
    return np.concatenate(parts)


def _check_agreement(label: str, spec: ModelSpec, seed: int = 0) -> None:
    pymc = _Pymc(spec.build_pymc())
    assert spec.stan_data is not None and spec.stan_program is not None
    stan = pystan_model(spec.stan_program, spec.stan_data(), seed=1)
    stan_params = set(stan.param_names)
    assert set(pymc.shapes) <= stan_params, set(pymc.shapes) - stan_params
    rng = np.random.default_rng(seed)
    points = [
        {k: rng.normal(0.0, 0.5, size=shape) for k, shape in pymc.shapes.items()} for _ in range(3)
    ]
    vecs = [_stan_vector(stan, p) for p in points]
    # the mapping is complete: Stan reads back exactly these (log-)values as its parameters
    n_constrained = len(
        stan.constrain_pars(list(vecs[0]), include_tparams=False, include_gqs=False)
    )
    assert n_constrained == vecs[0].size
    lp_pymc = [pymc.logp(p) for p in points]
    lp_stan = [stan.log_prob(list(v), adjust_transform=True) for v in vecs]
    worst_lp = worst_grad = 0.0
    for j in (1, 2):
        d_pymc, d_stan = lp_pymc[j] - lp_pymc[0], lp_stan[j] - lp_stan[0]
        rel = abs(d_pymc - d_stan) / max(abs(d_pymc), 1.0)
        worst_lp = max(worst_lp, rel)
        assert rel < RTOL_LOGP, (label, d_pymc, d_stan)
    for p, v in zip(points, vecs, strict=True):
        g_pymc = _stan_vector(stan, pymc.grad(p))
        g_stan = np.asarray(stan.grad_log_prob(list(v)))
        scale = max(float(np.max(np.abs(g_pymc))), 1.0)
        err = float(np.max(np.abs(g_pymc - g_stan))) / scale
        worst_grad = max(worst_grad, err)
        np.testing.assert_allclose(g_stan, g_pymc, rtol=RTOL_GRAD, atol=RTOL_GRAD * scale)
    AGREEMENT[label] = (worst_lp, worst_grad)
    print(f"{label}: max rel. logp-difference error {worst_lp:.1e}, gradient {worst_grad:.1e}")


@pytest.mark.parametrize(
    ("outcome", "family", "marginalise", "centred_u"),
    [
        (S.GP_FTE, "gaussian", True, False),
        (S.GP_FTE, "lognormal", False, False),
        (S.GP_FTE, "student_t", False, False),
        (S.QOF, "binomial", False, False),
        (S.QOF, "binomial", False, True),  # hierarchically centred practice effects
        (S.QOF, "beta_binomial", False, False),
        (S.QOF, "beta_binomial", False, True),
        (S.QOF, "logit_normal", True, False),
    ],
)
def test_gradient_model_logp_agrees(panel, outcome, family, marginalise, centred_u) -> None:
    data = prepare_gradient_data(panel, outcome, likelihood=family)
    # both parameterisations of the cell blocks; practice effects as given
    centring = {"a": True, "b": False, "d": False, "f": True, "u": centred_u}
    priors = GradientPriors.from_any({"tau": 0.7, "nu_scale": 8.0})
    spec = model_spec(data, priors, centring, marginalise=marginalise)
    expected = "gradient_gaussian" if marginalise else "gradient_explicit"
    assert spec.stan_program == expected
    _check_agreement(f"gradient/{family}/{expected}/centred_u={centred_u}", spec)


@pytest.mark.parametrize(
    ("error_model", "ics_scales", "family", "weights", "marginalise"),
    [
        ("rows", False, "gaussian", None, False),  # the row-level DDD, explicit intercepts
        ("rows", False, "gaussian", None, True),  # ... intercepts integrated out (the default)
        ("rows", True, "gaussian", None, True),  # ... with ICB residual scales
        ("rows", True, "student_t", "list_size", True),  # Student-t: explicit whatever the flag
        ("prepost", True, "gaussian", None, True),  # the DDD default
        ("prepost", True, "student_t", "list_size", True),
        ("prepost", False, "gaussian", None, True),
    ],
)
def test_panel_effects_ddd_logp_agrees(
    panel, error_model, ics_scales, family, weights, marginalise
) -> None:
    """The panel-effects DDD (gradient block, ICB x year / ICB change shocks), every error model."""
    from hepcausal.causal.design import build_design
    from hepcausal.causal.did import _ddd_effects
    from hepcausal.models.panel_effects import ModelOptions, PanelPriors
    from hepcausal.models.panel_effects import model_spec as panel_spec
    from hepcausal.spec import Design

    design = build_design(
        panel,
        S.GP_FTE,
        Design(comparators=ICBS[1:], weights=weights),
        effects=_ddd_effects,
    )
    options = ModelOptions(
        gradient=True,
        error_model=error_model,
        ics_scales=ics_scales,
        family=family,
        marginalise=marginalise,
    )
    priors = PanelPriors.from_any({"cell_sigma": 0.4, "nu_scale": 8.0, "unit_sigma": 0.8})
    spec = panel_spec(design, priors, options)
    marginal = error_model == "rows" and marginalise and family == "gaussian"
    program = {"prepost": "panel_prepost"}.get(error_model, "panel_effects")
    program += "_marginal" if marginal else ""
    assert spec.stan_program == program
    data = spec.stan_data()
    assert data["use_gradient"] == 1 and data["use_cell_gradient"] == 1 and data["use_cell"] == 1
    assert data["use_scales"] == int(ics_scales)
    assert marginal or data["family"] == 1 + (family == "student_t")
    _check_agreement(f"{program}/{family}/scales={ics_scales}/w={weights}", spec)


def test_panel_prepost_pool_logp_agrees(panel) -> None:
    """The pre/post DDD with a pool ICB (its own mean level and gradient changes)."""
    from hepcausal.causal.design import build_design
    from hepcausal.causal.did import _ddd_effects
    from hepcausal.models.panel_effects import ModelOptions, PanelPriors
    from hepcausal.models.panel_effects import model_spec as panel_spec
    from hepcausal.spec import Design

    design = build_design(
        panel,
        S.GP_FTE,
        Design(comparators=ICBS[1:3], pool="all"),
        effects=_ddd_effects,
        use_pool=True,
    )
    assert design.pool == ICBS[3:]
    options = ModelOptions(
        gradient=True, error_model="prepost", ics_scales=True, family="student_t"
    )
    spec = panel_spec(design, PanelPriors(), options)
    data = spec.stan_data()
    assert data["use_pool"] == 1 and data["pool"].tolist() == [0.0, 0.0, 0.0, 1.0]  # QT1
    _check_agreement("panel_prepost/pool", spec)


def test_panel_marginal_level_trends_covariates_logp_agrees(panel) -> None:
    """The marginalised row-level model without the gradient block, with ICB trends, a
    covariate and ICB residual scales (the blocks the DDD cases above leave out)."""
    from hepcausal.causal.design import build_design
    from hepcausal.models.panel_effects import ModelOptions, PanelPriors
    from hepcausal.models.panel_effects import model_spec as panel_spec
    from hepcausal.spec import Design

    design = build_design(panel, S.GP_FTE, Design(comparators=ICBS[1:], covariates=(S.LIST_SIZE,)))
    options = ModelOptions(error_model="rows", group_trends=True, ics_scales=True)
    spec = panel_spec(design, PanelPriors(), options)
    assert spec.stan_program == "panel_effects_marginal"
    _check_agreement("panel_effects_marginal/level/trends/covariate", spec)


def test_logp_check_detects_a_prior_mismatch(panel) -> None:
    """Negative control: a Stan prior that differs from PyMC's (nu's scale 10 vs 9) is caught."""
    import dataclasses

    data = prepare_gradient_data(panel, S.GP_FTE, likelihood="student_t")
    spec = model_spec(data, GradientPriors(), dict.fromkeys("abdf", False), marginalise=False)
    stan_data = spec.stan_data
    assert stan_data is not None
    wrong = dataclasses.replace(spec, stan_data=lambda: {**stan_data(), "prior_nu_scale": 9.0})
    with pytest.raises(AssertionError):
        _check_agreement("negative control", wrong)


@pytest.mark.parametrize(
    ("outcome", "family", "marginalise", "weights"),
    [
        (S.GP_FTE, "gaussian", True, S.LIST_SIZE),
        (S.QOF, "beta_binomial", False, None),
    ],
)
def test_gradient_treated_term_and_weights_logp_agrees(
    panel, outcome, family, marginalise, weights
) -> None:
    """The treated x post SII term (delta_treated) and list-size weights in both backends."""
    data = prepare_gradient_data(panel, outcome, likelihood=family, weights=weights)
    data = data.with_treated_period(str(data.icbs[0]), int(data.years[-2]))
    centring = {"a": True, "b": False, "d": False, "f": True}
    spec = model_spec(data, GradientPriors(), centring, marginalise=marginalise)
    _check_agreement(f"gradient/{family}/treated", spec)

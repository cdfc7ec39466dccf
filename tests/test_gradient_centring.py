"""Hierarchically centred practice effects of the count families (issue 15).

The default for the binomial and beta-binomial gradient models when the data pin every
practice's level down (:func:`hepcausal.models.gradient_data.choose_centring`, block ``u``) is an
exact reparameterisation of the explicit non-centred model, so the two must give the same
posterior: posterior means within 0.2 posterior SD for the headline contrasts (the LLR SII
change against the other ICBs and the national SII change) and within 0.3 SD for every ICB-year
SII, level and hyperparameter (short chains: the Monte-Carlo error of a difference of two means
is about 0.07 SD here).  A wrong centring (the practice's mean linear predictor not subtracted,
so it enters the row twice) must fail the same comparison.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from hepcausal import schema as S
from hepcausal.data.synthetic import SimulationConfig, simulate_panel
from hepcausal.models import gradient_pymc
from hepcausal.models.gradient import GradientFit, fit_gradient
from hepcausal.models.gradient_data import (
    GradientPriors,
    choose_centring,
    prepare_gradient_data,
)
from hepcausal.sampling import SamplerSettings

ICBS = ("QK1", "QJ2", "QOQ", "QT1")
YEARS = (2020, 2021, 2022, 2023)
SETTINGS = SamplerSettings(draws=600, tune=500, chains=2, seed=7)
HEADLINE_SD, OTHER_SD = 0.2, 0.3

pytestmark = [
    pytest.mark.slow,
    # deliberately short chains; the defaults' convergence is benchmarked (bench_qof.py)
    pytest.mark.filterwarnings("ignore::hepcausal.diagnostics.ConvergenceWarning"),
]


@pytest.fixture(scope="module")
def panel():
    cfg = SimulationConfig.small(n_practices=100, icbs=ICBS, years=YEARS, seed=4)
    return simulate_panel(cfg).panel


def _fit(panel, family: str, centring) -> GradientFit:
    return fit_gradient(
        panel,
        S.QOF,
        likelihood=family,
        settings=SETTINGS,
        centring=centring,
        treated="QK1",
        start_year=2022,
    )


def _worst(a: GradientFit, b: GradientFit) -> tuple[float, float]:
    """Largest |mean difference| / posterior SD of ``b``: (headline terms, everything else)."""
    est_a, est_b = a.idata.posterior["estimand"], b.idata.posterior["estimand"]
    dims = ("chain", "draw")
    head = float(np.max(np.abs(est_a.mean(dims) - est_b.mean(dims)) / est_b.std(dims)).item())
    other = 0.0
    for var in ("sii", "level", "tau", "overdispersion", "sigma_icb", "sigma_int"):
        if var not in b.idata.posterior:
            continue
        x, y = a.idata.posterior[var], b.idata.posterior[var]
        other = max(other, float(np.max(np.abs(x.mean(dims) - y.mean(dims)) / y.std(dims))))
    return head, other


@pytest.fixture(scope="module")
def explicit_fits(panel) -> dict[str, GradientFit]:
    """The non-centred explicit model (the reference), per family."""
    return {fam: _fit(panel, fam, {"u": False}) for fam in ("binomial", "beta_binomial")}


@pytest.mark.parametrize("family", ["binomial", "beta_binomial"])
def test_centred_practice_effects_give_the_explicit_posterior(panel, explicit_fits, family):
    data = prepare_gradient_data(panel, S.QOF, likelihood=family)
    assert choose_centring(data)["u"]  # the default centres them on this panel
    fit = _fit(panel, family, "auto")
    ref = explicit_fits[family]
    assert fit.meta["centring"]["u"] and not ref.meta["centring"]["u"]
    assert fit.idata.posterior["z_u"].shape == ref.idata.posterior["z_u"].shape
    head, other = _worst(fit, ref)
    assert head < HEADLINE_SD, (family, head)
    assert other < OTHER_SD, (family, other)


def test_wrong_centring_is_detected(panel, explicit_fits, monkeypatch):
    """Negative control: dropping ``- m`` (the practice mean enters twice) fails the comparison."""

    def wrong(data, alpha, beta, tau):
        lay = gradient_pymc.practice_layout(data)
        lin = alpha.flatten()[lay.cell] + beta.flatten()[lay.cell] * lay.rc
        m = (lin * lay.mask).sum(axis=1) / lay.n_rows
        z_u = gradient_pymc.pm.Normal("z_u", m, tau, dims="practice")
        eta = data.loc + lin + z_u[:, None]  # should be z_u - m
        padded = dataclasses.replace(
            data, successes=lay.successes.ravel(), trials=lay.trials.ravel()
        )
        return eta.flatten(), padded

    monkeypatch.setattr(gradient_pymc, "_centred_practice_predictor", wrong)
    fit = _fit(panel, "binomial", "auto")
    head, other = _worst(fit, explicit_fits["binomial"])
    assert max(head / HEADLINE_SD, other / OTHER_SD) > 1.0, (head, other)


def test_continuous_families_keep_non_centred_practice_effects(panel) -> None:
    """Block ``u`` is chosen for the count families only (other families' results unchanged)."""
    for family in ("gaussian", "student_t", "logit_normal"):
        outcome = S.GP_FTE if family != "logit_normal" else S.QOF
        assert not choose_centring(prepare_gradient_data(panel, outcome, likelihood=family))["u"]
    data = prepare_gradient_data(panel, S.GP_FTE, likelihood="student_t")
    with pytest.raises(ValueError, match="count families"):
        gradient_pymc.build_pymc_model(
            data,
            GradientPriors(),
            marginalise=False,
            centring={**dict.fromkeys("abdf", False), "u": True},
        )


def test_practice_layout_holds_every_row_once(panel) -> None:
    """The (practice, slot) layout: every row once, padding with zero counts (zero log-lik)."""
    data = prepare_gradient_data(panel.sample(frac=0.8, random_state=2), S.QOF)
    lay = gradient_pymc.practice_layout(data)
    assert lay.mask.sum() == data.n_obs
    assert np.all(lay.trials[lay.mask == 0] == 0) and np.all(lay.successes[lay.mask == 0] == 0)
    assert lay.successes.sum() == data.successes.sum() and lay.trials.sum() == data.trials.sum()
    np.testing.assert_allclose(lay.n_rows, np.bincount(data.practice_idx))
    np.testing.assert_allclose(np.sort(lay.rc[lay.mask == 1]), np.sort(data.rc))

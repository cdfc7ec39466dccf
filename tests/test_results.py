"""The result contract: every fit exposes estimands (chain, draw, term), draws, summary, truth;
plots dispatch on the result type."""

from __future__ import annotations

import dataclasses
import re

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pytest

from _factor_panel import simulate_factor_panel
from hepcausal import plots
from hepcausal import schema as S
from hepcausal.causal.did import fit_ddd
from hepcausal.causal.event_study import EventStudyFit, fit_event_study
from hepcausal.causal.panel_fit import CausalFit
from hepcausal.causal.synthetic_control import SyntheticControlFit, fit_synthetic_control
from hepcausal.data.synthetic import SimulationConfig, simulate_panel
from hepcausal.models.gradient import GradientFit, fit_gradient
from hepcausal.results import FitResult
from hepcausal.sampling import SamplerSettings
from hepcausal.spec import Design, Inference

ICBS = ("QK1", "QJ2", "QOQ", "QT1")
YEARS = (2019, 2020, 2021, 2022, 2023)
TINY = SamplerSettings(draws=100, tune=150, chains=2, seed=3)

# Tiny fits (2 x 100 draws) test the contract, not the statistics: they are not expected to pass
# the convergence check, so its warning (and the event study's pre-trend warning) is silenced.
pytestmark = [
    pytest.mark.filterwarnings("ignore::hepcausal.diagnostics.ConvergenceWarning"),
    pytest.mark.filterwarnings("ignore::hepcausal.causal.event_study.PreTrendWarning"),
]


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


@pytest.fixture(scope="module")
def panel():
    cfg = SimulationConfig.small(n_practices=80, icbs=ICBS, years=YEARS, seed=5)
    return simulate_panel(cfg).panel


@pytest.fixture(scope="module")
def fits(panel) -> dict[type, FitResult]:
    comps = list(ICBS[1:])
    factor = simulate_factor_panel(n_donors=4, n_pre=6, n_post=3, effect=1.0, seed=2)
    return {
        CausalFit: fit_ddd(panel, S.GP_FTE, Design(comparators=comps), Inference(settings=TINY)),
        EventStudyFit: fit_event_study(
            panel, S.GP_FTE, Design(comparators=comps), Inference(settings=TINY)
        ),
        GradientFit: fit_gradient(panel, S.GP_FTE, settings=TINY),
        SyntheticControlFit: fit_synthetic_control(
            factor.wide, "treated", factor.start, settings=TINY
        ),
    }


RESULT_TYPES = [CausalFit, EventStudyFit, GradientFit, SyntheticControlFit]


@pytest.mark.parametrize("cls", RESULT_TYPES, ids=lambda c: c.__name__)
def test_fit_exposes_the_result_contract(fits, cls: type) -> None:
    fit = fits[cls]
    assert type(fit) is cls and isinstance(fit, FitResult)
    est = fit.estimands
    assert est.dims == ("chain", "draw", "term")
    n = TINY.chains * TINY.draws
    assert fit.terms == [str(t) for t in est.coords["term"].values]
    for term in fit.terms:
        assert fit.draws(term).shape == (n,)
    # every reported effect is an estimand, summarised from the same draws
    assert set(fit.effects) <= set(fit.terms)
    table = fit.summary()
    assert list(table["term"]) == list(fit.effects) and len(table) == len(fit.effects)
    for term, row in table.set_index("term").iterrows():
        assert row["mean"] == pytest.approx(fit.draws(str(term)).mean(), rel=1e-9, abs=1e-12)
    assert fit.headline is fit.effects[fit.headline_term]
    with pytest.raises(KeyError, match=r"available terms: \[.*" + re.escape(fit.terms[0])):
        fit.draws("no_such_term")
    assert fit.diagnostics.n_chains == TINY.chains


@pytest.mark.parametrize("cls", RESULT_TYPES, ids=lambda c: c.__name__)
def test_truth_round_trips(fits, cls: type) -> None:
    fit = dataclasses.replace(fits[cls], truth=None)
    assert fit.truth is None and "truth" not in fit.summary()
    head = fit.headline_term
    assert fit.with_truth({head: 0.25}) is fit
    assert fit.truth == {head: 0.25}
    col = fit.summary().set_index("term")["truth"]
    assert col[head] == 0.25 and col.drop(head).isna().all()
    with pytest.raises(KeyError, match="no_such_term"):
        fit.with_truth({"no_such_term": 1.0})
    assert fit.with_truth(None).truth is None


def test_event_study_averages_are_estimands(fits) -> None:
    fit = fits[EventStudyFit]
    post = [f"gradient[{y}]" for y in YEARS if y >= S.HEP_START_YEAR]
    expected = np.mean([fit.draws(t) for t in post], axis=0)
    np.testing.assert_array_equal(fit.draws("post_mean"), expected)
    assert list(fit.effects)[:2] == ["post_mean", "pre_mean"]


def test_synthetic_control_estimands_match_predictive(fits) -> None:
    fit = fits[SyntheticControlFit]
    pp = fit.idata.posterior_predictive
    np.testing.assert_array_equal(
        fit.draws("avg_post_effect"), pp["avg_post_effect"].values.ravel()
    )
    assert fit.terms[:2] == ["avg_post_effect", "cumulative_effect"]


EXPECTED_FIGURES = {
    # the DDD (default pre/post error model) and the row-level event study both get a PPC
    CausalFit: {
        "outcome_by_icb",
        "sii_by_icb",
        "event_view",
        "effect_posterior",
        "trace_rank",
        "posterior_predictive_check",
    },
    EventStudyFit: {
        "event_study",
        "event_study_level",
        "effect_posterior",
        "trace_rank",
        "posterior_predictive_check",
    },
    GradientFit: {"sii_trajectories", "sii_small_multiples", "effect_posterior", "trace_rank"},
    SyntheticControlFit: {"synthetic_control", "donor_weights", "effect_posterior", "trace_rank"},
}


@pytest.mark.parametrize("cls", RESULT_TYPES, ids=lambda c: c.__name__)
def test_plot_dispatch_on_each_result_type(fits, cls: type) -> None:
    stems = {stem for stem, _, _ in plots.result_figures(fits[cls])}
    assert EXPECTED_FIGURES[cls] <= stems


def test_plot_dispatch_rejects_unknown_types() -> None:
    with pytest.raises(TypeError, match=r"no figures for a dict.*registered"):
        plots.result_figures({"not": "a fit"})


def test_runner_truth_is_keyed_by_estimand_term() -> None:
    """Synthetic runs know the true DDD / DiD / dose effects, by the panel estimators' terms."""
    from types import SimpleNamespace

    from hepcausal.experiments.runner import _truth_summary

    sim = simulate_panel(
        SimulationConfig.small(
            n_practices=60, icbs=ICBS, years=YEARS, gradient_effect=-0.1, level_effect=0.2, seed=9
        )
    )
    analysis = SimpleNamespace(outcome=S.GP_FTE, comparators="all")
    truth = _truth_summary(SimpleNamespace(truth=sim.truth), SimpleNamespace(analysis=analysis))
    assert truth is not None
    assert truth["delta_gradient"] == pytest.approx(sim.truth.ddd(S.GP_FTE))
    assert truth["delta_level"] == truth["delta"] == pytest.approx(sim.truth.did(S.GP_FTE))
    assert truth["delta_gradient"] != truth["delta_level"]
    logit = SimpleNamespace(analysis=SimpleNamespace(outcome=S.QOF, comparators="all"))
    assert _truth_summary(SimpleNamespace(truth=sim.truth), logit) == {}  # other scale
    assert _truth_summary(SimpleNamespace(truth=None), logit) is None  # real data

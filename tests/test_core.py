"""Tests of the shared core: ranks, diagnostics, summaries, sampler settings, Stan plumbing."""

from __future__ import annotations

import warnings

import arviz as az
import numpy as np
import pandas as pd
import pytest

from hepcausal.diagnostics import ConvergenceWarning, check_convergence
from hepcausal.inequality.ranks import add_relative_rank, relative_rank
from hepcausal.models.stan_engine import _jsonable, resolve_engine, stan_program_path
from hepcausal.sampling import SamplerSettings, sample_pymc
from hepcausal.summaries import summarise_effect


def test_relative_rank_hand_worked() -> None:
    # scores 30 > 20 = 20 > 10 (higher = more deprived), equal weights 1 each (total 4):
    # most deprived (30) occupies [0, .25] -> .125; tied 20s pool [.25, .75] -> .5; 10 -> .875
    r = relative_rank(np.array([30.0, 10, 20, 20]), np.array([1.0, 1, 1, 1]))
    np.testing.assert_allclose(r, [0.125, 0.875, 0.5, 0.5])


def test_relative_rank_population_weighted_mean_is_half() -> None:
    rng = np.random.default_rng(0)
    s, w = rng.normal(size=50), rng.uniform(100, 10_000, size=50)
    r = relative_rank(s, w)
    assert np.average(r, weights=w) == pytest.approx(0.5)
    assert r[np.argmax(s)] == r.min() and r[np.argmin(s)] == r.max()


@pytest.mark.parametrize(
    ("score", "weight", "msg"),
    [([1.0, np.nan], [1.0, 1.0], "non-finite"), ([1.0, 2.0], [1.0, 0.0], "positive")],
)
def test_relative_rank_rejects_bad_input(score, weight, msg) -> None:
    with pytest.raises(ValueError, match=msg):
        relative_rank(np.array(score), np.array(weight))


def test_add_relative_rank_by_group_keeps_missing() -> None:
    df = pd.DataFrame(
        {"g": ["a", "a", "b", "b", "b"], "s": [1.0, 2.0, 5.0, np.nan, 1.0], "w": [1.0] * 5}
    )
    out = add_relative_rank(df, "s", "w", by=["g"], out="r")
    np.testing.assert_allclose(out["r"].to_numpy(), [0.75, 0.25, 0.25, np.nan, 0.75])
    assert "r" not in df


def _idata(chains: np.ndarray, diverging: int = 0) -> az.InferenceData:
    div = np.zeros(chains.shape, dtype=bool)
    div.flat[:diverging] = True
    return az.from_dict(posterior={"theta": chains}, sample_stats={"diverging": div})


def test_check_convergence_passes_on_iid_draws() -> None:
    rng = np.random.default_rng(1)
    diag = check_convergence(_idata(rng.normal(size=(4, 1000))))
    assert diag.ok and diag.n_divergences == 0 and diag.max_rhat < 1.01
    assert diag.min_ess_bulk > 400


def test_check_convergence_warns_on_stuck_chains_and_divergences() -> None:
    rng = np.random.default_rng(2)
    draws = rng.normal(size=(2, 500)) + np.array([[0.0], [3.0]])  # chains disagree
    with pytest.warns(ConvergenceWarning, match="CONVERGENCE CHECK FAILED"):
        diag = check_convergence(_idata(draws, diverging=3))
    assert not diag.ok
    assert diag.n_divergences == 3
    assert any("R-hat" in p for p in diag.problems)
    assert "FAILED" in str(diag)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        check_convergence(_idata(draws), warn=False)


def test_summarise_effect_matches_direct_computation() -> None:
    rng = np.random.default_rng(3)
    x = rng.normal(0.2, 0.1, size=20_000)
    s = summarise_effect(x, name="change in SII", rope=0.05, units="FTE per 1,000")
    assert s.mean == pytest.approx(x.mean())
    assert s.p_direction == pytest.approx(np.mean(x > 0))
    assert s.p_rope == pytest.approx(np.mean(np.abs(x) <= 0.05))
    assert s.hdi_low == pytest.approx(0.2 - 1.96 * 0.1, abs=0.01)
    assert s.hdi_high == pytest.approx(0.2 + 1.96 * 0.1, abs=0.01)
    assert "increase" in s.sentence() and "FTE per 1,000" in s.sentence()


def test_summarise_effect_errors() -> None:
    with pytest.raises(ValueError, match="non-finite"):
        summarise_effect([0.0, np.nan, 1.0], name="x")
    with pytest.raises(ValueError, match="low <= high"):
        summarise_effect([0.0, 1.0, 2.0], name="x", rope=(1.0, -1.0))


def test_sampler_settings_validation() -> None:
    with pytest.raises(ValueError, match="target_accept"):
        SamplerSettings(target_accept=1.2)
    with pytest.raises(ValueError, match="sampler"):
        SamplerSettings(sampler="gibbs")  # type: ignore[arg-type]
    assert SamplerSettings().with_(draws=10).draws == 10
    with pytest.raises(ValueError, match="mass_matrix must be"):
        SamplerSettings(mass_matrix="dense")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="needs sampler='nutpie'"):
        SamplerSettings(mass_matrix="low_rank", sampler="pymc")


@pytest.mark.parametrize(
    ("setting", "model_choice", "low_rank"),
    [
        (None, "diag", False),
        (None, "low_rank", True),
        ("diag", "low_rank", False),
        ("low_rank", "diag", True),
    ],
)
def test_mass_matrix_choice_reaches_nutpie(
    monkeypatch: pytest.MonkeyPatch, setting, model_choice, low_rank
) -> None:
    """The settings' mass matrix overrides the model's choice; low_rank goes to nutpie."""
    import pymc as pm

    seen: dict = {}
    from types import SimpleNamespace

    # a stand-in for pm.sample: records the arguments, returns an object with posterior attrs
    fake = SimpleNamespace(posterior=SimpleNamespace(attrs={}))
    monkeypatch.setattr(pm, "sample", lambda **kw: seen.update(kw) or fake)
    with pm.Model() as model:
        pm.Normal("x")
    sample_pymc(model, SamplerSettings(mass_matrix=setting), mass_matrix=model_choice)
    got = seen.get("nuts_sampler_kwargs", {}).get("low_rank_modified_mass_matrix", False)
    assert got is low_rank and seen["nuts_sampler"] == "nutpie" and seen["chains"] == 4
    assert fake.posterior.attrs["mass_matrix"] == ("low_rank" if low_rank else "diag")


def test_stan_plumbing_errors(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(FileNotFoundError, match="available"):
        stan_program_path("no_such_program")
    with pytest.raises(ValueError, match="'y'"):
        _jsonable({"y": np.array([1.0, np.nan])})
    assert _jsonable({"N": np.int64(3), "x": np.arange(3.0)}) == {"N": 3, "x": [0.0, 1.0, 2.0]}
    monkeypatch.delenv("CMDSTAN", raising=False)
    assert resolve_engine("auto") == "pystan"
    with pytest.raises(RuntimeError, match="CMDSTAN"):
        resolve_engine("cmdstanpy")


def test_same_seed_same_draws_with_nutpie() -> None:
    """Seeded nutpie sampling (low-rank mass matrix) is bit-for-bit reproducible."""
    import pymc as pm

    def fit(seed: int) -> np.ndarray:
        with pm.Model() as model:
            mu = pm.Normal("mu")
            pm.Normal("y", mu, 1.0, observed=np.array([0.3, -0.2, 1.1]))
        s = SamplerSettings(draws=50, tune=50, chains=2, seed=seed)
        return sample_pymc(model, s, mass_matrix="low_rank").posterior["mu"].values

    a, b, c = fit(3), fit(3), fit(4)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


def test_sentence_names_what_the_draws_are() -> None:
    """Posterior wording only for posterior draws (SDID's normal approximation, bootstraps)."""
    draws = np.random.default_rng(1).normal(0.3, 0.1, 2000)
    post = summarise_effect(draws, name="effect", rope=0.05)
    assert "posterior probability" in post.sentence()
    approx = summarise_effect(draws, name="effect", rope=0.05, draws_kind="BCa bootstrap")
    text = approx.sentence()
    assert "posterior" not in text.replace("not a posterior", "")
    assert "from the BCa bootstrap" in text and "of those draws lie" in text
    assert approx.to_dict()["draws_kind"] == "BCa bootstrap"

"""Synthetic difference-in-differences: Prop 99 against Arkhangelsky et al. (2021), recovery on a
factor panel, the registry entry and its figures."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from _factor_panel import simulate_factor_panel
from hepcausal.causal.sdid import SdidFit, fit_sdid, sdid_estimate
from hepcausal.experiments.registry import get_entry
from hepcausal.results import FitResult

# Arkhangelsky, Athey, Hirshberg, Imbens & Wager (2021), table 1: California Proposition 99
PAPER = {"sdid": -15.6, "sc": -19.6, "did": -27.3}


def _prop99() -> pd.DataFrame:
    spec = importlib.util.find_spec("causalpy")
    if spec is None or not spec.submodule_search_locations:
        pytest.skip("causalpy (test extra; ships california_prop99.csv) not installed")
    p = Path(next(iter(spec.submodule_search_locations))) / "data" / "california_prop99.csv"
    return pd.read_csv(p).set_index("Year")


@pytest.fixture(scope="module")
def prop99_fit() -> SdidFit:
    return fit_sdid(_prop99(), "California", 1989, replications=50, units="packs per capita")


def test_prop99_matches_paper(prop99_fit):
    f = prop99_fit
    assert isinstance(f, FitResult)
    assert f.tau == pytest.approx(PAPER["sdid"], abs=1.0)
    assert f.comparison["sc"] == pytest.approx(PAPER["sc"], abs=1.0)
    assert f.comparison["did"] == pytest.approx(PAPER["did"], abs=1.0)
    # the paper's time weights sit on the last pre-periods (1986-1988)
    assert f.time_weights.loc[1986:1988].sum() > 0.95
    assert f.unit_weights.sum() == pytest.approx(1.0) and (f.unit_weights >= 0).all()
    assert f.unit_weights.max() < 0.2  # regularised: spread over many states
    assert 3 < f.se < 20 and f.effects["att"].mean == pytest.approx(f.tau, abs=1.0)
    assert f.draws("att").shape == (4000,)


def test_sdid_recovers_effect_and_null():
    def tau(effect: float) -> float:
        p = simulate_factor_panel(
            n_donors=15, n_pre=15, n_post=5, effect=effect, noise=0.2, idiosyncratic=1.0, seed=4
        )
        return fit_sdid(p.wide, "treated", p.start, replications=30).tau

    t3, t0 = tau(3.0), tau(0.0)
    assert t3 == pytest.approx(3.0, abs=1.0)
    assert abs(t0) < 1.0
    assert t3 - t0 == pytest.approx(3.0, abs=1e-6)  # same untreated data: differs by the effect


def test_sdid_matrix_api_and_did_identity():
    rng = np.random.default_rng(0)
    Y = rng.normal(size=(6, 8)) + np.arange(8)[None, :] + np.arange(6)[:, None]
    Y[5, 5:] += 2.0
    tau, omega, lam, reg = sdid_estimate(Y, 5, 5, "did")
    assert np.allclose(omega, 0.2) and np.allclose(lam, 0.2)
    manual = (Y[5, 5:].mean() - Y[5, :5].mean()) - (Y[:5, 5:].mean() - Y[:5, :5].mean())
    assert tau == pytest.approx(manual)
    assert reg["noise"] > 0


def test_bad_inputs():
    wide = _prop99()
    with pytest.raises(KeyError, match="Narnia"):
        fit_sdid(wide, "Narnia", 1989)
    with pytest.raises(ValueError, match="estimator must be"):
        fit_sdid(wide, "California", 1989, estimator="lasso")  # type: ignore[arg-type]
    bad = wide.copy()
    bad.loc[1975, "Utah"] = np.nan
    with pytest.raises(ValueError, match="unit 'Utah' at time 1975"):
        fit_sdid(bad, "California", 1989)


def test_registry_entry_and_figures(prop99_fit):
    e = get_entry("sdid")
    assert e.parse_options({"variant": "sc"}).variant == "sc"
    with pytest.raises(Exception, match="replicatons"):
        e.parse_options({"replicatons": 10})
    from hepcausal import plots

    figs = {stem for stem, _fig, _cap in plots.result_figures(prop99_fit)}
    assert {"sdid", "sdid_unit_weights"} <= figs

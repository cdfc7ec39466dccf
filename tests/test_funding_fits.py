"""The money side from configs: the funding SII and the PCN regression as registered estimators."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from hepcausal import schema as S
from hepcausal.experiments import run_experiment
from hepcausal.experiments.registry import get_entry
from hepcausal.inequality.funding import simulate_pcns
from hepcausal.inequality.funding_fits import (
    FundingSiiFit,
    PcnRegressionFit,
    fit_funding_sii,
    fit_pcn_funding,
)
from hepcausal.plots.dispatch import result_figures
from hepcausal.sampling import SamplerSettings
from hepcausal.spec import Design, Inference

TRUE = {2020: -0.6, 2021: 0.0, 2022: 0.4, 2023: 0.8}
SII = {"QK1": 20.0, "QJ2": 5.0, "QOQ": -10.0}  # true funding SII (GBP per weighted patient)
EXPERIMENTS = Path(__file__).resolve().parents[1] / "experiments"


def _funding_panel(seed: int = 0) -> pd.DataFrame:
    """A practice panel whose funding SII per ICS is known: funding = 150 + SII x rank + noise."""
    from hepcausal.data.synthetic import SimulationConfig, simulate_panel

    panel = simulate_panel(
        SimulationConfig(n_practices=450, icbs=tuple(SII), equal_icb_sizes=True, seed=seed)
    ).panel
    rng = np.random.default_rng(seed)
    slope = panel[S.ICB].map(SII).to_numpy(float)
    panel[S.FUND_TOTAL] = 150.0 + slope * panel[S.DEPRIVATION_RANK] + rng.normal(0, 4, len(panel))
    return panel


def _pcn_inference(draws: int = 500) -> Inference:
    return Inference(settings=SamplerSettings(draws=draws, tune=draws, chains=2, seed=3))


# ----------------------------------------------------------------------------- funding SII


def test_funding_sii_recovers_known_gradients_and_sign() -> None:
    panel = _funding_panel()
    fit = fit_funding_sii(panel, "fund_total", Design(comparators=("QJ2", "QOQ")))
    assert isinstance(fit, FundingSiiFit)
    assert fit.headline.name == f"sii[QK1,{S.HEP_START_YEAR}]"
    tab = fit.table
    for icb, true in SII.items():
        rows = tab[tab[S.ICB] == icb]
        assert len(rows) == panel[S.YEAR].nunique()
        assert ((rows["lower"] <= true) & (true <= rows["upper"])).mean() >= 0.8, rows
        # a sign flip or a null gradient is detectably different
        if true != 0:
            assert not ((rows["lower"] <= -true) & (-true <= rows["upper"])).any()
    eng = tab[tab["role"] == "england"]
    per_year = panel.groupby(S.YEAR)[S.PRACTICE].nunique()  # every practice, national ranks
    assert eng.set_index(S.YEAR)["n_practices"].to_dict() == per_year.to_dict()
    assert eng["sii"].between(min(SII.values()), max(SII.values())).all()
    # effects carry the classical interval, draws are labelled as not a posterior
    head = fit.effects[fit.headline.name]
    row = tab[(tab[S.ICB] == "QK1") & (tab[S.YEAR] == S.HEP_START_YEAR)].iloc[0]
    assert head.hdi_low == pytest.approx(row["lower"]) and "normal" in head.draws_kind
    assert set(fit.quintiles["group"]) == {"LLR", "comparators"}
    names = [name for name, _, _ in result_figures(fit)]
    assert names == ["funding_sii", "funding_by_quintile"]


def test_funding_sii_rejects_a_non_funding_outcome() -> None:
    with pytest.raises(ValueError, match="not a funding outcome"):
        fit_funding_sii(_funding_panel(), "gp", Design(comparators=("QJ2", "QOQ")))


def test_funding_sii_from_a_config(tmp_path: Path) -> None:
    path = tmp_path / "panel.parquet"
    _funding_panel().to_parquet(path)
    cfg = tmp_path / "funding_sii.toml"
    cfg.write_text(
        f"""
name = "funding_sii_file"
[data]
source = "file"
path = "{path}"
[analysis]
outcome = "fund_total"
comparators = ["QJ2", "QOQ"]
[estimator]
name = "funding_sii"
method = "unit"
"""
    )
    run = run_experiment(cfg, out_dir=tmp_path / "runs")
    d = run.run_dir
    assert {p.name for p in (d / "figures").glob("*.png")} == {
        "funding_sii.png",
        "funding_by_quintile.png",
    }
    meta = json.loads((d / "meta.json").read_text())
    assert {"funding_sii", "funding_by_quintile"} <= set(meta["tables"])
    summary = pd.read_csv(d / "summary.csv")
    assert summary["term"].iloc[0] == f"sii[QK1,{S.HEP_START_YEAR}]"
    assert "England" in " ".join(summary["term"])
    html = (d / "report.html").read_text()
    assert "funding sii" in html and "more money per patient" in html


# ----------------------------------------------------------------------------- PCN regression


def test_pcn_estimator_classical_recovers_slopes() -> None:
    sim = simulate_pcns(TRUE, seed=3)
    fit = fit_pcn_funding(sim, "fund_pcn", inference=_pcn_inference(), model="classical")
    assert isinstance(fit, PcnRegressionFit)
    assert fit.headline.name == "slope[2023]"  # the last contract year first
    for year, true in TRUE.items():
        e = fit.effects[f"slope[{year}]"]
        assert e.hdi_low <= true <= e.hdi_high, (year, e)
        if true != 0:  # the sign-flipped slope is excluded
            assert not e.hdi_low <= -true <= e.hdi_high
    tab = fit.table.set_index(S.YEAR)
    assert tab.loc[2020, "published_slope"] == -0.31 and np.isnan(tab.loc[2021, "published_slope"])
    assert any("income domain" in n for n in fit.meta["notes"])
    assert [name for name, _, _ in result_figures(fit)] == ["pcn_regression"]


@pytest.mark.slow
def test_pcn_estimator_bayesian_recovers_slopes_and_a_wrong_slope_fails() -> None:
    sim = simulate_pcns(TRUE, n_icbs=8, pcns_per_icb=20, seed=5)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # short chains in a unit test: convergence not judged
        fit = fit_pcn_funding(sim, "fund_pcn", inference=_pcn_inference(400))
    for year, true in TRUE.items():
        e = fit.effects[f"slope[{year}]"]
        assert e.hdi_low <= true <= e.hdi_high, (year, e)
        assert not e.hdi_low <= true + 0.6 <= e.hdi_high  # a wrong slope is excluded
    assert fit.diagnostics.n_divergences == 0 and fit.diagnostics.max_rhat < 1.05
    tab = fit.table.set_index(S.YEAR)
    assert (tab["ols_lower"] <= tab["slope"]).all() and (tab["slope"] <= tab["ols_upper"]).all()
    names = [name for name, _, _ in result_figures(fit)]
    assert names[0] == "pcn_regression" and "trace_rank" in names


def test_pcn_estimator_input_errors() -> None:
    with pytest.raises(ValueError, match="fund_pcn"):
        fit_pcn_funding(simulate_pcns(TRUE), "gp", model="classical")
    practice_panel = _funding_panel()
    with pytest.raises(ValueError, match=r"data\.source = 'nhs'"):
        fit_pcn_funding(practice_panel, "fund_pcn", model="classical")


def test_registry_entries_and_priors() -> None:
    pcn = get_entry("pcn_regression")
    assert pcn.parse_options({"model": "classical"}).model == "classical"  # type: ignore[attr-defined]
    assert pcn.uses(pcn.parse_options({})) == frozenset({"hdi_prob"})
    pcn.validate_priors({"tau_ics": 0.2})
    with pytest.raises(ValueError, match="tau_year"):
        pcn.validate_priors({"tau_year": 0.5})
    sii = get_entry("funding_sii")
    with pytest.raises(ValueError):
        sii.parse_options({"method": "bogus"})


@pytest.mark.realdata
def test_pcn_regression_from_the_config_on_real_data(nhs_data_dir: Path, tmp_path: Path) -> None:
    run = run_experiment(
        EXPERIMENTS / "funding_pcn.toml",
        out_dir=tmp_path,
        overrides={"estimator.model": "classical", "data.data_dir": str(nhs_data_dir)},
    )
    d = run.run_dir
    assert (d / "figures" / "pcn_regression.png").is_file()
    meta = json.loads((d / "meta.json").read_text())
    # the payment-validity rule and practices without a PCN are counted per contract year
    for year in (2020, 2021, 2022, 2023):
        assert meta["dropped"][f"practice-years outside the payment-validity rule {year}"] > 0
    tab = pd.DataFrame(meta["tables"]["pcn_slopes"]).set_index("year")
    assert list(tab.index) == [2020, 2021, 2022, 2023]
    assert (tab["n_pcns"] > 1150).all()
    assert "income domain" in (d / "report.html").read_text()


def test_funding_configs_load() -> None:
    from hepcausal.experiments.config import load_config

    names = {}
    for path in sorted(EXPERIMENTS.glob("funding_*.toml")):
        cfg = load_config(path)
        entry = get_entry(cfg.estimator.name)
        entry.parse_options(cfg.estimator.options)
        names[path.stem] = cfg.estimator.name
    assert names == {
        "funding_ddd": "ddd",
        "funding_dose": "dose_response",
        "funding_gradient": "gradient",
        "funding_pcn": "pcn_regression",
        "funding_sii": "funding_sii",
    }

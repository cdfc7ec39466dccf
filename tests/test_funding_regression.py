"""The Warwick-Giles PCN regression on a generator with known slopes; the funding dose."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from hepcausal import schema as S
from hepcausal.inequality.funding import (
    DEPRIVATION_NOTE,
    dose_need_check,
    fit_pcn_regression_bayes,
    funding_dose,
    pcn_regression,
    simulate_pcns,
)
from hepcausal.sampling import SamplerSettings

TRUE = {2020: -0.6, 2021: 0.0, 2022: 0.4, 2023: 0.8}


def test_classical_recovers_known_slopes_and_detects_sign() -> None:
    sim = simulate_pcns(TRUE, seed=3)
    tab = pcn_regression(sim).set_index(S.YEAR)
    for year, slope in TRUE.items():
        assert tab.loc[year, "lower"] <= slope <= tab.loc[year, "upper"], (year, tab.loc[year])
    # a negative and a positive true slope are told apart (intervals exclude 0 the right way)
    assert tab.loc[2020, "upper"] < 0 < tab.loc[2023, "lower"]
    assert tab["note"].iloc[0] == DEPRIVATION_NOTE and "income domain" in DEPRIVATION_NOTE


def test_classical_coverage_over_seeds() -> None:
    hits = []
    for seed in range(40):
        tab = pcn_regression(simulate_pcns({2020: 0.5}, sd_icb_slope=0.0, seed=seed))
        hits.append(tab["lower"].iloc[0] <= 0.5 <= tab["upper"].iloc[0])
    assert 0.85 <= np.mean(hits) <= 1.0


@pytest.mark.slow
def test_bayes_partial_pooling_recovers_slopes() -> None:
    sim = simulate_pcns(TRUE, n_icbs=8, pcns_per_icb=20, seed=5)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # short chains in a unit test: convergence not judged
        fit = fit_pcn_regression_bayes(
            sim, settings=SamplerSettings(draws=300, tune=300, chains=2, seed=1)
        )
    tab = fit.table.set_index(S.YEAR)
    for year, slope in TRUE.items():
        assert tab.loc[year, "lower"] <= slope <= tab.loc[year, "upper"], (year, tab.loc[year])
        wrong = slope - 0.6  # a wrong slope (for 2023: 0.2, for 2020: -1.2) is excluded
        assert not tab.loc[year, "lower"] <= wrong <= tab.loc[year, "upper"], (year, wrong)
    assert tab.loc[2020, "upper"] < tab.loc[2023, "lower"]
    assert fit.diagnostics.max_rhat < 1.05 and fit.diagnostics.n_divergences == 0


def test_funding_dose_and_need_check() -> None:
    rows = []
    rng = np.random.default_rng(0)
    for i in range(60):
        imd = rng.uniform(5, 60)
        for year in (2020, 2021, 2022):
            local = 10 + (0.1 * imd if year == 2022 else 0) + rng.normal(0, 0.1)
            rows.append((f"A{i:05d}", year, S.LLR_ICB, imd, local))
    panel = pd.DataFrame(rows, columns=[S.PRACTICE, S.YEAR, S.ICB, S.IMD, S.FUND_LOCAL])
    panel["local_incentive_change"] = funding_dose(panel, clip=False)
    assert (panel.loc[panel[S.YEAR] <= 2021, "local_incentive_change"] == 0).all()
    comp = panel.assign(**{S.ICB: "QJ2"})
    assert (funding_dose(comp) == 0).all()  # comparators: dose 0
    assert (funding_dose(panel.assign(**{S.FUND_LOCAL: -panel[S.FUND_LOCAL]})) >= 0).all()
    one = panel[panel[S.PRACTICE] == "A00000"].set_index(S.YEAR)[S.FUND_LOCAL]
    got = panel[(panel[S.PRACTICE] == "A00000") & (panel[S.YEAR] == 2022)]
    assert got["local_incentive_change"].iloc[0] == pytest.approx(one[2022] - one[2021])
    check = dose_need_check(panel, year=2022)
    assert check["spearman"] > 0.9 and check["slope_lower"] > 0.8  # true slope 1 per 10 IMD
    flat = panel.assign(local_incentive_change=rng.normal(5, 1, len(panel)))
    assert abs(dose_need_check(flat, year=2022)["spearman"]) < 0.4


def test_funding_figures() -> None:
    from hepcausal.plots.funding import funding_by_quintile, plot_pcn_regression

    sim = simulate_pcns(TRUE, n_icbs=3, pcns_per_icb=10, seed=1)
    fig = plot_pcn_regression(sim, pcn_regression(sim))
    assert len(fig.axes) == len(TRUE)
    panel = pd.DataFrame(
        {
            S.PRACTICE: ["A1", "A2", "A3", "A4"],
            S.YEAR: 2022,
            S.ICB: [S.LLR_ICB, S.LLR_ICB, S.LLR_ICB, "QJ2"],
            S.DEPRIVATION_RANK: [0.05, 0.1, 0.9, 0.5],
            S.WEIGHTED_LIST_SIZE: [1000.0, 3000.0, 2000.0, 1000.0],
            S.FUND_TOTAL: [100.0, 200.0, 150.0, 120.0],
        }
    )
    tab = funding_by_quintile(panel).set_index(["group", "quintile"])
    # quintile 1 of LLR: weighted-list-weighted mean of 100 and 200
    assert tab.loc[("LLR", 1), "funding"] == pytest.approx((1000 * 100 + 3000 * 200) / 4000)
    assert (
        tab.loc[("LLR", 5), "funding"] == 150.0 and tab.loc[("comparators", 3), "n_practices"] == 1
    )


def test_dose_need_figure() -> None:
    from hepcausal.plots.funding import plot_dose_need

    rng = np.random.default_rng(1)
    rows = [
        (f"A{i:05d}", year, S.LLR_ICB, imd, 0.0 if year < 2022 else 0.1 * imd + rng.normal(0, 1))
        for i, imd in enumerate(rng.uniform(5, 60, 40))
        for year in (2021, 2022, 2023)
    ]
    panel = pd.DataFrame(rows, columns=[S.PRACTICE, S.YEAR, S.ICB, S.IMD, "local_incentive_change"])
    fig = plot_dose_need(panel)
    assert len(fig.axes) == 2 and "Spearman +0." in fig.axes[0].get_title(loc="left")
    with pytest.raises(ValueError, match="positive"):
        plot_dose_need(panel.assign(local_incentive_change=0.0))

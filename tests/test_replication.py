"""The published study's SII method: quintiles fixed and cut by count, the ICS rule, the payment
rule's clear error, and recovery of a planted gradient with the right sign."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from hepcausal import schema as S
from hepcausal.inequality.replication import (
    DIVERGENCES,
    QUINTILE,
    ReplicationSpec,
    apply_payment_rule,
    national_quintiles,
    replicate_sii,
)
from hepcausal.inequality.sii_core import SIIInputError


def _panel(n_per_icb: int = 60, slope: float = 0.5, seed: int = 1) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    icbs = [S.LLR_ICB, *S.PUBLISHED_COMPARATORS]
    rows = []
    for g in icbs:
        imd = rng.uniform(5, 60, n_per_icb)
        for y in (2020, 2021, 2022):
            # GP FTE falls with deprivation: least deprived end higher by ``slope`` (log scale)
            rank = (imd - 5) / 55  # 0 = least deprived
            fte = np.exp(np.log(0.6) + slope * (0.5 - rank) + rng.normal(0, 0.05, n_per_icb))
            for i in range(n_per_icb):
                rows.append(
                    {
                        S.PRACTICE: f"{g}{i:03d}",
                        S.ICB: g,
                        S.YEAR: y,
                        S.IMD: imd[i],
                        S.GP_FTE: fte[i],
                    }
                )
    return pd.DataFrame(rows)


def test_quintiles_cut_by_practice_count_and_fixed() -> None:
    p = _panel()
    q = national_quintiles(p, 2022)
    assert q.value_counts().tolist() == [132] * 5  # 660 practices, a fifth each
    top = p[p[S.YEAR] == 2022].nlargest(132, S.IMD)[S.PRACTICE]
    assert (q.loc[top] == 1).all()  # quintile 1 = most deprived
    with pytest.raises(SIIInputError, match="fix_year 2030"):
        national_quintiles(p, 2030)
    # the study's 6 - dplyr::ntile(IMD, 5): 11 practices -> ntile sizes 3, 2, 2, 2, 2 from the
    # least deprived, so the extra practice is in quintile 5 (least deprived)
    small = pd.DataFrame({S.PRACTICE: [f"P{i:02d}" for i in range(11)], S.YEAR: 2022})
    small[S.IMD] = np.arange(11.0)  # P00 least deprived
    qs = national_quintiles(small, 2022).sort_index()
    assert qs.tolist() == [5, 5, 5, 4, 4, 3, 3, 2, 2, 1, 1]


def test_replication_recovers_gradient_sign_and_applies_rules() -> None:
    p = _panel()
    spec = ReplicationSpec(outcomes=("gp",), n_boot=200, payment_validity=False)
    rep = replicate_sii(p, spec)
    t = rep.table
    eng = t[t["role"] == "england"]
    # least deprived minus most deprived quintile-mean line: positive, about
    # 0.6 * (exp(0.4) - exp(-0.4)) on the quintile means (slope 0.5 over ranks 0.1..0.9)
    assert (eng["sii"] > 0.3).all() and (eng["lower"] < eng["sii"]).all()
    flipped = replicate_sii(p.assign(**{S.GP_FTE: 1.2 - p[S.GP_FTE] + 0.1}), spec).table
    assert (flipped[flipped["role"] == "england"]["sii"] < 0).all()  # a sign flip is detected
    # seeded: identical reruns
    again = replicate_sii(p, spec).table
    assert np.allclose(again["lower"], t["lower"], equal_nan=True)
    # the fewer-than-5 rule drops an ICS with a thin quintile
    thin = p[~((p[S.ICB] == "QJ2") & (p[S.IMD] > 45))]
    tt = replicate_sii(thin, spec).table
    qj2 = tt[tt[S.ICB] == "QJ2"]
    assert qj2["sii"].isna().all() and qj2["note"].str.startswith("dropped").all()
    assert QUINTILE not in tt.columns


def test_payment_rule_errors_clearly_and_applies() -> None:
    p = _panel(n_per_icb=10)
    with pytest.raises(SIIInputError, match=S.FUND_TOTAL_REG):
        replicate_sii(p, ReplicationSpec(n_boot=100))
    p[S.FUND_TOTAL_REG] = 100.0
    p.loc[p[S.YEAR] == 2022, S.FUND_TOTAL_REG] = np.nan  # a year without a payments file
    first = p[S.PRACTICE].isin(["QK1000", "QK1001", "QK1002"])
    p.loc[first & (p[S.YEAR] == 2021), S.FUND_TOTAL_REG] = 600.0  # outside GBP 80-550
    p.loc[(p[S.PRACTICE] == "QK1003") & (p[S.YEAR] == 2020), S.FUND_TOTAL_REG] = np.nan
    out, note = apply_payment_rule(p, [S.GP_FTE, S.FUND_TOTAL_REG])
    blank = out[out[S.GP_FTE].isna()]
    # 3 invalid in 2021 + their carried verdict in 2022 (no file) + 1 missing in a file year
    assert len(blank) == 7 and "7 practice-years" in note, blank
    assert set(zip(blank[S.PRACTICE], blank[S.YEAR], strict=True)) == {
        *((c, y) for c in ("QK1000", "QK1001", "QK1002") for y in (2021, 2022)),
        ("QK1003", 2020),
    }
    # the study blanks the staffing rates (weighted-list denominator from the payments file)
    rep = replicate_sii(p, ReplicationSpec(outcomes=("gp",), n_boot=100))
    llr = rep.table[rep.table[S.ICB] == S.LLR_ICB].set_index(S.YEAR)["n_practices"]
    assert llr.to_dict() == {2020: 9, 2021: 7, 2022: 7}
    assert {d["item"] for d in DIVERGENCES} >= {
        "staffing frequency",
        ">60%-male patient rule",
        "patient experience (GPPS)",
        "QOF 2020/21",
        "need measure",
        "estimated staffing",
    }


def test_null_result_figures() -> None:
    from hepcausal.causal.sensitivity import SensitivityResult
    from hepcausal.plots.null_result import plot_replication, plot_sensitivity

    p = _panel(n_per_icb=30)
    rep = replicate_sii(p, ReplicationSpec(outcomes=("gp",), n_boot=100, payment_validity=False))
    fig = plot_replication(rep.table)
    titles = [fig.axes[0].get_title(loc) for loc in ("left", "center", "right")]
    assert len(fig.axes) == 1 and any("GP" in t for t in titles), titles
    rows = [
        {
            "restriction": r,
            "bound": b,
            "lower_mean": -b,
            "upper_mean": b,
            "robust_low": -b - 0.1,
            "robust_high": b + 0.1,
            "includes_zero": True,
        }
        for r in ("relative_magnitude", "smoothness")
        for b in (0.0, 0.5)
    ]
    res = SensitivityResult(
        table=pd.DataFrame(rows),
        breakdown={"relative_magnitude": 0.2, "smoothness": 0.0},
        estimand="x",
        prob=0.95,
        original={"mean": 0.0, "low": -0.1, "high": 0.1},
    )
    assert len(plot_sensitivity(res).axes) == 2
    assert "0.2 times" in res.sentence()


def test_registered_replication_estimator(tmp_path) -> None:
    from hepcausal.experiments.registry import call_estimator
    from hepcausal.inequality.replication import ReplicationFit, spec_from_config
    from hepcausal.plots.dispatch import result_figures
    from hepcausal.spec import Design, Inference

    p = _panel(n_per_icb=60)
    fit = call_estimator(
        "replication",
        p,
        S.GP_FTE,
        Design(start_year=2022),
        Inference(),
        {"n_boot": 100, "payment_validity": False},
    )
    assert isinstance(fit, ReplicationFit)
    assert fit.headline_term == f"sii[{S.LLR_ICB},2022]"
    row = fit.table[(fit.table[S.ICB] == S.LLR_ICB) & (fit.table[S.YEAR] == 2022)].iloc[0]
    assert fit.headline.hdi_low == row["lower"] and fit.draws(fit.headline_term).size == 100
    assert [s for s, _, _ in result_figures(fit)] == ["replication"]
    spec = spec_from_config("experiments/replication.toml")
    assert spec.n_boot == 1000 and spec.fix_year == 2022 and spec.payment_validity  # as the study

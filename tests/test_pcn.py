"""PCN aggregation against hand-computed totals; the real PCN counts."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from hepcausal import schema as S
from hepcausal.data.pcn import PCN_FUNDING, TOTAL_FUNDING, aggregate_pcns, pcn_practices


def _practices() -> pd.DataFrame:
    nan = np.nan
    rows = [
        # practice, pcn, icb, list, weighted, imd, total, participation, workforce, leadership
        ("A00001", "U1", "QK1", 1000, 1200, 10.0, 150_000, 1_800, 40_000, 5_000),
        ("A00002", "U1", "QK1", 3000, 2800, 30.0, 420_000, 5_400, 0, 0),
        ("A00003", "U2", "QJ2", 2000, 2000, nan, 300_000, 3_600, 0, 0),
        ("A00004", "U2", "QHM", 6000, 6500, 20.0, 900_000, 10_800, 70_000, nan),
        ("A00005", None, "QHM", 5000, 5000, 50.0, 800_000, nan, nan, nan),
    ]
    cols = [
        S.PRACTICE,
        S.PCN,
        S.ICB,
        S.LIST_SIZE,
        S.WEIGHTED_LIST_SIZE,
        S.IMD,
        "pay_total",
        "pay_pcn_participation",
        "pay_pcn_workforce",
        "pay_pcn_leadership",
    ]
    return pd.DataFrame(rows, columns=cols).assign(**{S.YEAR: 2022})


def test_aggregate_pcns_hand_computed() -> None:
    out = aggregate_pcns(_practices()).set_index(S.PCN)
    assert list(out.index) == ["U1", "U2"]  # the practice without a PCN is left out
    u1, u2 = out.loc["U1"], out.loc["U2"]
    assert u1["n_practices"] == 2 and u2["n_practices"] == 2
    assert u1[S.LIST_SIZE] == 4000 and u1[S.WEIGHTED_LIST_SIZE] == 4000
    assert u1["pay_total"] == 570_000
    assert u1["pay_pcn"] == 1_800 + 40_000 + 5_000 + 5_400
    # participation is inside 'Total NHS Payments'; workforce and leadership are not
    assert u1["pay_total_incl_pcn"] == 570_000 + 45_000
    assert u1[PCN_FUNDING] == pytest.approx(52_200 / 4000)
    assert u1[TOTAL_FUNDING] == pytest.approx(615_000 / 4000)
    assert u1[S.IMD] == pytest.approx((10 * 1000 + 30 * 3000) / 4000)  # registered-list weights
    assert u1["imd_coverage"] == 1.0 and u1[S.ICB] == "QK1"
    # U2: one practice without IMD leaves the mean, a missing line counts as zero
    assert u2[S.IMD] == 20.0 and u2["imd_coverage"] == pytest.approx(6000 / 8000)
    assert u2["pay_pcn"] == 3_600 + 10_800 + 70_000
    assert u2[S.ICB] == "QHM"  # the ICB with most of the PCN's list
    assert u2[PCN_FUNDING] == pytest.approx(84_400 / 8500)
    assert bool(u1["pcn_lines_recorded"]) and bool(u2["pcn_lines_recorded"])
    none = _practices().assign(pay_pcn_workforce=0.0, pay_pcn_leadership=np.nan)
    assert not aggregate_pcns(none)["pcn_lines_recorded"].any()


def test_aggregate_pcns_names_missing_columns() -> None:
    with pytest.raises(KeyError, match="imd_score"):
        aggregate_pcns(_practices().drop(columns=S.IMD))


@pytest.mark.realdata
def test_real_pcns(nhs_data_dir: Path) -> None:
    prac = pcn_practices(nhs_data_dir)
    pcns = aggregate_pcns(prac)
    n = pcns.groupby(S.YEAR).size()
    assert 1200 <= n[2020] <= 1300  # Warwick-Giles et al. analysed 1,243 PCNs in 2019/20
    # every PCN's sums equal the sums of its practices (three PCNs, every year)
    for code in pcns[S.PCN].drop_duplicates().sample(3, random_state=1):
        for year, row in pcns[pcns[S.PCN] == code].set_index(S.YEAR).iterrows():
            mine = prac[(prac[S.PCN] == code) & (prac[S.YEAR] == year)]
            assert row[S.WEIGHTED_LIST_SIZE] == pytest.approx(mine[S.WEIGHTED_LIST_SIZE].sum())
            assert row["pay_total"] == pytest.approx(mine["pay_total"].sum())
    # PCN lines beyond participation only from 2020/21
    assert pcns.loc[pcns[S.YEAR] == 2020, PCN_FUNDING].median() < 2.0
    assert pcns.loc[pcns[S.YEAR] == 2022, PCN_FUNDING].median() > 5.0
    # the validity rule and the practices without a PCN are counted per year
    assert prac.attrs["n_invalid_by_year"] == {}  # no rule given
    valid = pcn_practices(nhs_data_dir, payment_validity=(80.0, 550.0))
    by_year = valid.attrs["n_invalid_by_year"]
    assert set(by_year) == {2020, 2021, 2022, 2023}
    assert sum(by_year.values()) == valid.attrs["n_invalid"] == len(prac) - len(valid) > 0
    assert sum(valid.attrs["n_no_pcn_by_year"].values()) == valid.attrs["n_no_pcn"]

"""Inclusion rules: each rule drops exactly what it should, and every count adds up."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest

from hepcausal import schema as S
from hepcausal.data.inclusion import (
    LIST_SOURCE,
    RULE_ORDER,
    InclusionReport,
    InclusionRules,
    apply_inclusion,
)

YEARS = list(range(2018, 2025))


def _practice(
    code: str,
    icb: str | None = "QHM",
    lists: list[float] | None = None,
    years: list[int] | None = None,
    imd: float = 20.0,
) -> pd.DataFrame:
    years = YEARS if years is None else years
    lists = [5000.0] * len(years) if lists is None else lists
    return pd.DataFrame(
        {
            S.PRACTICE: code,
            S.YEAR: years,
            S.ICB: icb,
            S.LIST_SIZE: lists,
            S.WEIGHTED_LIST_SIZE: [x * 1.05 for x in lists],
            S.IMD: imd,
            S.GP_FTE: 0.5,
        }
    )


@pytest.fixture()
def panel() -> pd.DataFrame:
    parts = [
        _practice("P00001", "QK1"),  # kept
        _practice("P00002", "QK1", years=[y for y in YEARS if y != 2020]),  # gap
        _practice("P00003", lists=[5000, 5000, 450, 5000, 5000, 5000, 5000]),  # small list
        _practice("P00004", lists=[5000, 5000, 5000, 5600, 5600, 5600, 5600]),  # merger jump
        _practice("P00005", lists=[800, 800, 895, 895, 895, 895, 895]),  # +11.9% but 95
        _practice("P00006", lists=[5000, 5000, 5450, 5450, 5450, 5450, 5450]),  # +9% 450 pts
        _practice("P00007", "QK1", imd=np.nan),  # no IMD
        _practice("P00008"),  # 1 missing FTE
        _practice("P00009", years=[2017, *YEARS]),  # out of window
        _practice("P00010", icb=None),  # no ICB
        _practice("P00011", "QK1", lists=[5000, 5000, 5000, 5000, 5000, 5000, 4000]),  # 2024 jump
        _practice("P00012", lists=[5000, 6000, 6000, 6000, 6000, 6000, 6000]),  # first step
    ]
    df = pd.concat(parts, ignore_index=True)
    df.loc[(df[S.PRACTICE] == "P00008") & (df[S.YEAR] == 2021), S.GP_FTE] = np.nan
    return df


def _step(report: InclusionReport, rule: str) -> tuple[int, int, int, int]:
    s = next(s for s in report.steps if s.rule == rule)
    return (
        s.practices_dropped,
        s.practice_years_dropped,
        s.llr_practices_dropped,
        s.llr_practice_years_dropped,
    )


def _assert_adds_up(report: InclusionReport, kept: pd.DataFrame) -> None:
    assert report.practices_in == report.practices_dropped + report.practices_kept
    assert report.practice_years_in == report.practice_years_dropped + report.practice_years_kept
    assert report.llr_practices_in == report.llr_practices_dropped + report.llr_practices_kept
    assert (
        report.llr_practice_years_in
        == report.llr_practice_years_dropped + report.llr_practice_years_kept
    )
    assert len(report.dropped) == report.practice_years_dropped
    assert len(kept) == report.practice_years_kept
    assert kept[S.PRACTICE].nunique() == report.practices_kept


def test_default_rules_drop_exactly_the_bad_practices(panel: pd.DataFrame) -> None:
    kept, report = apply_inclusion(panel)
    _assert_adds_up(report, kept)
    assert [s.rule for s in report.steps] == list(RULE_ORDER)
    assert _step(report, "study_window") == (0, 1, 0, 0)
    assert _step(report, "icb_known") == (1, 7, 0, 0)
    assert _step(report, "open_whole_window") == (1, 6, 1, 6)
    assert _step(report, "min_list_size") == (1, 7, 0, 0)
    assert _step(report, "no_list_jumps") == (2, 14, 1, 7)  # P00004 and P00011
    assert _step(report, "imd_available") == (1, 7, 1, 7)
    assert _step(report, "missing_outcome") == (0, 1, 0, 0)  # drop_year: one practice-year
    assert set(kept[S.PRACTICE]) == {"P00001", "P00005", "P00006", "P00008", "P00009", "P00012"}
    assert report.practices_in == 12 and report.llr_practices_in == 4
    assert report.llr_practices_kept == 1
    assert set(kept[S.YEAR]) == set(YEARS)
    dropped = report.dropped
    assert set(dropped.loc[dropped["rule"] == "no_list_jumps", S.PRACTICE]) == {"P00004", "P00011"}


def test_report_prints_a_table(panel: pd.DataFrame) -> None:
    _, report = apply_inclusion(panel, notes=["built from fixtures"])
    text = str(report)
    for rule in RULE_ORDER:
        assert rule in text
    assert "kept" in text and "LLR" in text and "built from fixtures" in text
    table = report.table()
    assert table["rule"].iloc[0] == "in (before rules)" and table["rule"].iloc[-1] == "kept"
    steps = table[table["rule"].isin(RULE_ORDER)]
    assert steps["practice_years"].sum() + table["practice_years"].iloc[-1] == len(panel)


@pytest.mark.parametrize(
    "policy, practices, years", [("drop_year", 0, 1), ("drop_practice", 1, 7), ("keep", 0, 0)]
)
def test_missing_outcome_policies(
    panel: pd.DataFrame, policy: str, practices: int, years: int
) -> None:
    kept, report = apply_inclusion(panel, InclusionRules(missing_outcome=policy))
    _assert_adds_up(report, kept)
    assert _step(report, "missing_outcome")[:2] == (practices, years)
    assert kept[S.GP_FTE].isna().sum() == (1 if policy == "keep" else 0)


def test_rules_can_be_switched_off_and_configured(panel: pd.DataFrame) -> None:
    off = InclusionRules(
        window=None,
        require_all_years=False,
        min_list_size=None,
        max_jump_fraction=None,
        require_imd=False,
        missing_outcome="keep",
    )
    kept, report = apply_inclusion(panel, off)
    _assert_adds_up(report, kept)
    # only the always-on rule icb_known drops anything
    assert report.practices_dropped == 1 and _step(report, "icb_known")[0] == 1
    # a stricter jump rule (> 5% and >= 50 patients) also catches P00005 and P00006
    strict = dataclasses.replace(InclusionRules(), max_jump_fraction=0.05, max_jump_patients=50)
    _, report = apply_inclusion(panel, strict)
    assert _step(report, "no_list_jumps")[0] == 4  # P00012's first step is still not checked
    # skipping the step into 2024 keeps P00011
    _, report = apply_inclusion(panel, InclusionRules(jump_skip_years=(2024,)))
    assert _step(report, "no_list_jumps")[0] == 1
    # checking the first step (2018 -> 2019) too drops P00012
    kept, report = apply_inclusion(panel, InclusionRules(jump_skip_first_step=False))
    assert _step(report, "no_list_jumps")[0] == 3 and "P00012" not in set(kept[S.PRACTICE])
    # an ICB subset
    kept, report = apply_inclusion(panel, InclusionRules(icbs=("QK1",)))
    _assert_adds_up(report, kept)
    assert set(kept[S.ICB]) == {"QK1"} and report.llr_practices_kept == report.practices_kept


def test_jumps_between_list_sources_are_not_checked(panel: pd.DataFrame) -> None:
    panel = panel.assign(**{LIST_SOURCE: np.where(panel[S.YEAR] == 2024, "workforce", "payments")})
    _, report = apply_inclusion(panel)
    assert _step(report, "no_list_jumps")[0] == 1  # P00011's 2024 step is across sources
    _, report = apply_inclusion(panel, InclusionRules(jump_skip_source_change=False))
    assert _step(report, "no_list_jumps")[0] == 2


def test_non_positive_lists_are_counted_not_hidden(panel: pd.DataFrame) -> None:
    panel.loc[0, S.WEIGHTED_LIST_SIZE] = 0.0
    kept, report = apply_inclusion(panel, InclusionRules(min_list_size=None))
    _assert_adds_up(report, kept)
    assert _step(report, "valid_list_size") == (0, 1, 0, 1)


def test_bad_rules_name_the_config_key() -> None:
    with pytest.raises(ValueError, match=r"InclusionRules\.missing_outcome"):
        InclusionRules(missing_outcome="drop")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"InclusionRules\.window"):
        InclusionRules(window=(2024, 2018))
    with pytest.raises(ValueError, match=r"InclusionRules\.min_list_size"):
        InclusionRules(min_list_size=-1)
    with pytest.raises(KeyError, match=r"InclusionRules\.outcomes"):
        apply_inclusion(_practice("P00001"), InclusionRules(outcomes=(S.QOF,)))


@pytest.mark.parametrize("bad", [np.nan, 0.0, -100.0])
def test_missing_zero_negative_list_counted_under_invalid_list_size(
    panel: pd.DataFrame, bad: float
) -> None:
    row = panel.index[(panel[S.PRACTICE] == "P00001") & (panel[S.YEAR] == 2021)][0]
    panel.loc[row, S.LIST_SIZE] = bad
    kept, report = apply_inclusion(panel, InclusionRules())
    _assert_adds_up(report, kept)
    # the whole practice (it cannot meet min_list_size in every year), not under min_list_size
    assert _step(report, "invalid_list_size") == (1, 7, 1, 7)
    assert _step(report, "min_list_size") == (1, 7, 0, 0)  # P00003 only
    assert "P00001" not in set(kept[S.PRACTICE])
    # min_list_size off: only that practice-year goes
    kept, report = apply_inclusion(panel, InclusionRules(min_list_size=None))
    assert _step(report, "invalid_list_size") == (0, 1, 0, 1)
    assert RULE_ORDER.index("invalid_list_size") == RULE_ORDER.index("min_list_size") - 1


def test_fallback_rows_in_table(panel: pd.DataFrame) -> None:
    kept, report = apply_inclusion(panel, InclusionRules())
    report.add_fallback(
        "list_size", "years [2020]: from the workforce file", kept[kept[S.YEAR] == 2020]
    )
    tab = report.table()
    row = tab[tab["rule"] == "fallback: list_size"].iloc[0]
    assert row["practice_years"] == (kept[S.YEAR] == 2020).sum() and "2020" in row["description"]
    assert "FALLBACK list_size" in str(report)
    # a fallback is not a drop: the totals still add up
    _assert_adds_up(report, kept)


def test_unknown_icb_subset_and_everything_dropped_are_errors(panel: pd.DataFrame) -> None:
    with pytest.raises(ValueError, match=r"InclusionRules\.icbs.*\['QXX'\] not in the panel"):
        apply_inclusion(panel, InclusionRules(icbs=("QK1", "QXX")))
    with pytest.raises(ValueError, match=r"dropped every practice-year.*'study_window'"):
        apply_inclusion(panel, InclusionRules(window=(2030, 2031)))

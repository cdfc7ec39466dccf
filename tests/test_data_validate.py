"""validate_panel: every check fires on a small hand-made panel and names column, row, practice."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from hepcausal import schema as S
from hepcausal.data.validate import ENGLAND_ICB_CODES, PanelValidationError, validate_panel


def _panel() -> pd.DataFrame:
    rows = []
    for i, (code, icb, sub) in enumerate([("C82001", "QK1", "03W"), ("A83001", "QHM", "16C")]):
        for year in (2021, 2022):
            rows.append(
                {
                    S.PRACTICE: code,
                    S.YEAR: year,
                    S.PCN: f"U1111{i}",
                    S.SUB_ICB: sub,
                    S.ICB: icb,
                    S.ICB_NAME: f"ICB {icb}",
                    S.LIST_SIZE: 4000 + i,
                    S.WEIGHTED_LIST_SIZE: 4100.5,
                    S.IMD: 10.0 + 20 * i,
                    S.GP_FTE: 0.5,
                    S.QOF: 0.95,
                    S.DEPRIVATION_RANK: 0.25 + 0.5 * i,
                    S.HEP_TREATED: int(icb == S.LLR_ICB and year >= 2022),
                }
            )
    return pd.DataFrame(rows)


def test_valid_panel_returns_canonical_copy() -> None:
    df = _panel()
    df[S.YEAR] = df[S.YEAR].astype(float)  # e.g. after a merge
    df[S.LIST_SIZE] = df[S.LIST_SIZE].astype("int32")
    out = validate_panel(df, source="my.csv")
    assert out is not df
    assert out[S.YEAR].dtype == np.int64
    assert out[S.LIST_SIZE].dtype == np.float64
    assert out[S.HEP_TREATED].dtype == np.int64
    assert pd.api.types.is_string_dtype(out[S.PRACTICE])
    pd.testing.assert_series_equal(out[S.IMD], df[S.IMD])
    assert df[S.YEAR].dtype == np.float64  # input untouched


def test_missing_columns_are_named() -> None:
    df = _panel().drop(columns=[S.IMD, S.ICB_NAME])
    with pytest.raises(PanelValidationError) as err:
        validate_panel(df, source="panel.csv")
    msg = str(err.value)
    assert "panel.csv" in msg and S.IMD in msg and S.ICB_NAME in msg


def test_duplicate_practice_year_names_rows() -> None:
    df = pd.concat([_panel(), _panel().iloc[[2]]], ignore_index=True)
    with pytest.raises(PanelValidationError, match=r"duplicated") as err:
        validate_panel(df, source="dup.csv")
    msg = str(err.value)
    assert "dup.csv" in msg and "A83001" in msg and "row 2" in msg and "row 4" in msg


@pytest.mark.parametrize("bad", [0.0, -5.0, np.nan])
def test_non_positive_or_missing_list_size(bad: float) -> None:
    df = _panel()
    df.loc[1, S.WEIGHTED_LIST_SIZE] = bad
    with pytest.raises(PanelValidationError) as err:
        validate_panel(df)
    msg = str(err.value)
    assert S.WEIGHTED_LIST_SIZE in msg and "row 1" in msg and "C82001" in msg and "2022" in msg


@pytest.mark.parametrize("col", [S.QOF, S.DEPRIVATION_RANK])
def test_proportion_outside_unit_interval(col: str) -> None:
    df = _panel()
    df.loc[3, col] = 95.0  # a percentage, not a proportion
    with pytest.raises(PanelValidationError, match=r"outside \[0, 1\]") as err:
        validate_panel(df)
    assert col in str(err.value) and "A83001" in str(err.value)


def test_negative_fte() -> None:
    df = _panel()
    df.loc[0, S.GP_FTE] = -0.1
    with pytest.raises(PanelValidationError, match="negative") as err:
        validate_panel(df)
    assert S.GP_FTE in str(err.value) and "row 0" in str(err.value)


def test_unknown_icb_default_and_passed_set() -> None:
    df = _panel()
    df.loc[df[S.PRACTICE] == "C82001", S.ICB] = "QZZ"
    with pytest.raises(PanelValidationError, match="QZZ") as err:
        validate_panel(df)
    assert S.ICB in str(err.value) and "C82001" in str(err.value)
    # a caller-supplied set replaces the built-in English list; None switches the check off
    validate_panel(df, known_icbs={"QZZ", "QK1", "QHM"})
    validate_panel(df, known_icbs=None)
    with pytest.raises(PanelValidationError, match="QHM"):
        validate_panel(_panel(), known_icbs={"QK1"})
    assert len(ENGLAND_ICB_CODES) == 42


def test_year_out_of_range_and_non_integer() -> None:
    df = _panel()
    df.loc[2, S.YEAR] = 1999
    with pytest.raises(PanelValidationError, match=r"year outside \[2018, 2024\]") as err:
        validate_panel(df, year_range=(2018, 2024))
    assert "A83001" in str(err.value)
    df = _panel()
    df[S.YEAR] = df[S.YEAR].astype(float)
    df.loc[1, S.YEAR] = 2021.5
    with pytest.raises(PanelValidationError, match="non-integer"):
        validate_panel(df)


def test_non_numeric_and_bad_treatment_values() -> None:
    df = _panel()
    df[S.LIST_SIZE] = df[S.LIST_SIZE].astype(object)
    df.loc[3, S.LIST_SIZE] = "lots"
    df.loc[0, S.HEP_TREATED] = 2
    with pytest.raises(PanelValidationError) as err:
        validate_panel(df)
    assert len(err.value.problems) >= 2
    msg = str(err.value)
    assert "non-numeric" in msg and S.LIST_SIZE in msg and S.HEP_TREATED in msg


def test_all_problems_reported_together() -> None:
    df = _panel()
    df.loc[0, S.QOF] = 1.5
    df.loc[1, S.GP_FTE] = -1
    df.loc[2, S.ICB] = None
    with pytest.raises(PanelValidationError) as err:
        validate_panel(df, source="x")
    assert len(err.value.problems) == 3
    assert "<missing>" in str(err.value)


def test_outcome_bounds_from_the_outcome_table() -> None:
    from hepcausal.outcomes import get_outcome

    df = _panel()
    hi = get_outcome(S.GP_FTE).bounds[1]
    df.loc[2, S.GP_FTE] = hi + 1.0  # e.g. FTE per patient instead of per 1,000 patients
    with pytest.raises(PanelValidationError, match="plausible range") as err:
        validate_panel(df)
    msg = str(err.value)
    assert S.GP_FTE in msg and "row 2" in msg and "FTE per 1,000 weighted patients" in msg
    df.loc[2, S.GP_FTE] = hi  # the bound itself is plausible
    validate_panel(df)
    # a negative value is reported once (as negative), not also as implausible
    df.loc[2, S.GP_FTE] = -1.0
    with pytest.raises(PanelValidationError) as err:
        validate_panel(df)
    assert err.value.problems == [p for p in err.value.problems if "negative" in p]
    assert len(err.value.problems) == 1


def test_denominators_non_negative() -> None:
    df = _panel().assign(**{S.GPPS_RESPONSES: 100.0, S.QOF_MAX_POINTS: 635.0})
    df.loc[1, S.GPPS_RESPONSES] = -3.0
    with pytest.raises(PanelValidationError, match="negative") as err:
        validate_panel(df)
    assert S.GPPS_RESPONSES in str(err.value)


def test_missing_imd_is_a_problem_unless_allowed() -> None:
    df = _panel()
    df.loc[1, S.IMD] = np.nan
    with pytest.raises(PanelValidationError, match=r"'imd_score'.*missing deprivation.*C82001"):
        validate_panel(df)
    validate_panel(df, allow_missing_imd=True)


def test_column_sources_and_line_numbers_in_messages() -> None:
    df = _panel()
    df.loc[2, S.GP_FTE] = 1e6
    df.index = pd.Index([2, 3, 4, 5])  # a file's line numbers
    sources = {S.GP_FTE: "wf.csv column 'TOTAL_GP_EXTGL_FTE' / weighted list x 1000"}
    with pytest.raises(PanelValidationError) as err:
        validate_panel(df, source="x", column_sources=sources, row_word="line")
    msg = str(err.value)
    assert "column 'gp_fte_per_1k' (from wf.csv column 'TOTAL_GP_EXTGL_FTE'" in msg
    assert "line 4 (practice A83001, year 2021)" in msg


def test_practices_per_icb_warnings() -> None:
    from hepcausal.data.validate import practices_per_icb_warnings

    df = _panel()  # QK1 (treated in 2022) has one practice
    (warning,) = practices_per_icb_warnings(df)
    assert warning.startswith("ICB QK1: only 1 practice(s)") and "2021: 1, 2022: 1" in warning
    assert practices_per_icb_warnings(df, min_practices=1) == []
    assert practices_per_icb_warnings(df, ["QHM", "QWE"], min_practices=1) == [
        "ICB QWE: no practices in the panel"
    ]
    many = pd.concat(
        [df.assign(**{S.PRACTICE: f"C8{i:04d}"}) for i in range(12)], ignore_index=True
    )
    assert practices_per_icb_warnings(many) == []  # 12 practices per ICB and year
    assert practices_per_icb_warnings(df.drop(columns=S.HEP_TREATED)) == []


def test_practice_in_two_icbs_and_empty_panel() -> None:
    df = _panel()
    df.loc[0, S.ICB] = "QHM"
    with pytest.raises(PanelValidationError, match=r"\['C82001'\] in more than one ICB.*row 0"):
        validate_panel(df)
    with pytest.raises(PanelValidationError, match="no rows"):
        validate_panel(_panel().iloc[:0])

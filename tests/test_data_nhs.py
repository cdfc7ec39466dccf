"""NHS file loaders and the panel builder: format edge cases on hand-made fixtures, then facts a
reader can check against the real published files (``nhs_data_dir``)."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from hepcausal import schema as S
from hepcausal.data.headers import ColumnNotFoundError, fiscal_year_from_name, normalise_header
from hepcausal.data.inclusion import InclusionRules
from hepcausal.data.nhs import (
    NHSLoadOptions,
    PanelBuild,
    build_nhs_panel,
    load_ccg_icb,
    load_imd,
    load_payments,
    load_qof,
    load_workforce,
    need_score,
)
from hepcausal.data.nhs_files import imd_wide, payments_files, qof_files
from hepcausal.data.validate import ENGLAND_ICB_CODES
from hepcausal.outcomes import get_outcome, outcome_columns

FIX = Path(__file__).parent / "fixtures" / "nhs"
PAY = FIX / "payments"


# ------------------------------------------------------------------ format edge cases (fixtures)


def test_headers_normalise_bom_newlines_and_footnotes() -> None:
    assert normalise_header("\ufeffNHS England (Region) code") == "nhs england region code"
    assert normalise_header("Sub ICB Loc \nODS code") == "sub icb loc ods code"
    assert normalise_header("Average number of registered patients1") == (
        "average number of registered patients"
    )
    assert normalise_header("QOF points total/559 available (%)") == (
        "qof points total 559 available %"
    )


@pytest.mark.parametrize(
    "name, year",
    [
        ("nhspaymentsgp-17-18-csv.csv", 2018),
        ("nhspaymentsgp-21-22-prac-csv-v2.csv", 2022),
        ("qof-2019-20.csv", 2020),
        ("qof-2022-23.csv", 2023),
    ],
)
def test_fiscal_year_end_from_file_name(name: str, year: int) -> None:
    assert fiscal_year_from_name(name) == year


def test_fiscal_year_unreadable_name() -> None:
    with pytest.raises(ValueError, match=r"payments\.csv.*year="):
        fiscal_year_from_name("payments.csv")


def test_payments_2017_18_ccg_last_known_excel_dates() -> None:
    p = load_payments(PAY / "nhspaymentsgp-17-18-csv.csv").set_index(S.PRACTICE)
    assert set(p[S.YEAR]) == {2018}
    assert p.loc["C82001", S.LIST_SIZE] == 4114  # "4,114" in the file
    assert p.loc["C82001", S.WEIGHTED_LIST_SIZE] == pytest.approx(4703.5)
    assert p.loc["C82001", S.SUB_ICB] == "03W"
    assert p[S.PCN].isna().all()  # no PCNs before 2019/20
    assert p.loc["C82001", "open_date"] == pd.Timestamp("1999-04-01")  # Excel serial 36251
    assert p["close_date"].isna().all()


def test_payments_2019_20_footnoted_columns_and_pcn() -> None:
    p = load_payments(PAY / "nhspaymentsgp-19-20-prac-csv.csv").set_index(S.PRACTICE)
    assert set(p[S.YEAR]) == {2020}
    assert p.loc["C82001", S.LIST_SIZE] == pytest.approx(4200.5)
    assert p.loc["C82001", S.PCN] == "U11111"


def test_payments_2022_23_sub_icb_bom_text_dates_no_pcn() -> None:
    p = load_payments(PAY / "nhspaymentsgp-22-23-prac-csv.csv").set_index(S.PRACTICE)
    assert p.loc["A83001", S.SUB_ICB] == "16C"
    assert pd.isna(p.loc["C82002", S.PCN])  # 'Unknown or no PCN' -> missing
    assert p.loc["A83002", "close_date"] == pd.Timestamp("2023-03-31")
    assert p.loc["C82001", "open_date"] == pd.Timestamp("1999-04-01")


def test_payments_errors_name_file_and_column(tmp_path: Path) -> None:
    f = tmp_path / "nhspaymentsgp-20-21-prac-csv.csv"
    f.write_text(
        "CCG Code,Practice Code,Number of Registered Patients (Last Known Figure)\n03W,C82001,100\n"
    )
    with pytest.raises(ColumnNotFoundError, match=r"nhspaymentsgp-20-21.*weighted_list_size"):
        load_payments(f)
    f.write_text(
        "CCG Code,Practice Code,Average Number of Registered Patients,"
        "Average Number of Weighted Patients\n03W,C82001,many,100\n"
    )
    with pytest.raises(ValueError, match=r"'Average Number of Registered Patients'.*rows \[0\]"):
        load_payments(f)
    f.write_text(
        "CCG Code,Practice Code,Average Number of Registered Patients,"
        "Average Number of Weighted Patients\n03W,C82001,1,1\n03W,C82001,2,2\n"
    )
    with pytest.raises(ValueError, match="duplicated practice codes"):
        load_payments(f)


def test_qof_max_points_from_header_and_missing_markers() -> None:
    q = load_qof(FIX / "qof" / "qof-2018-19.csv").set_index(S.PRACTICE)
    assert set(q[S.YEAR]) == {2019} and set(q[S.QOF_MAX_POINTS]) == {559}
    assert q.loc["C82002", S.QOF] == pytest.approx(503.1 / 559)
    assert np.isnan(q.loc["A83001", S.QOF])  # ':' = not available
    q = load_qof(FIX / "qof" / "qof-2022-23.csv").set_index(S.PRACTICE)  # newline headers
    assert set(q[S.QOF_MAX_POINTS]) == {635}
    assert q.loc["C82002", S.QOF] == pytest.approx(0.5)


def test_qof_inconsistent_or_out_of_range_percent(tmp_path: Path) -> None:
    f = tmp_path / "qof-2018-19.csv"
    f.write_text(
        "Practice code,Achievement score (559 max),QOF points total/559 available (%)\n"
        "C82001,559,90\n"
    )
    with pytest.raises(ValueError, match=r"disagrees.*rows \[0\]"):
        load_qof(f)
    f.write_text(
        "Practice code,Achievement score (559 max),QOF points total/559 available (%)\n"
        "C82001,600,107.3\n"
    )
    with pytest.raises(ValueError, match=r"outside \[0, 559\].*C82001"):
        load_qof(f)
    f.write_text("Practice code,Points\nC82001,500\n")
    with pytest.raises(ColumnNotFoundError, match="qof_points"):
        load_qof(f)


def test_imd_workforce_lookup_fixtures() -> None:
    imd = load_imd(FIX / "imd" / "fingertips-93553-practice-deprivation.csv")
    assert "E92000001" not in set(imd[S.PRACTICE])  # England row is not a practice
    wide = imd_wide(imd).set_index(S.PRACTICE)
    assert wide.loc["C82001", S.IMD] == 10.0 and wide.loc["C82001", S.IMD2015] == 12.5
    assert np.isnan(wide.loc["A83001", S.IMD2015])
    wf = load_workforce(FIX / "workforce" / "workforce-practice-fiscal-year.csv")
    assert {"gp_fte", "nurse_fte", "dpc_fte", "admin_fte", "workforce_patients"} <= set(wf)
    assert wf["nurse_fte"].isna().sum() == 1 and wf["gp_fte"].isna().sum() == 1
    lk = load_ccg_icb(FIX / "lookups" / "ccg-icb.csv")
    assert len(lk) == 5  # the free-text "n/a not SBS client" entry is not a code
    assert set(lk.loc[lk["code"].isin(S.LLR_SUB_ICBS), S.ICB]) == {S.LLR_ICB}


def test_build_on_fixtures() -> None:
    build = build_nhs_panel(FIX, years=range(2018, 2021))
    assert isinstance(build, PanelBuild)
    p, rep = build.panel, build.report
    # A99999's sub-ICB ZZZ is not in the lookup: reported and dropped (counted), not hidden
    assert build.unmapped_practices == ("A99999",)
    assert next(s for s in rep.steps if s.rule == "icb_known").practices_dropped == 1
    # A83002 has < 500 registered patients
    assert next(s for s in rep.steps if s.rule == "min_list_size").practices_dropped == 1
    assert set(p[S.PRACTICE]) == {"C82001", "C82002", "A83001"}
    assert rep.practices_in == rep.practices_dropped + rep.practices_kept
    # geography from the latest sub-ICB code (A83001: 00C in 2017/18 -> 16C in 2022/23)
    a = p[p[S.PRACTICE] == "A83001"]
    assert set(a[S.SUB_ICB]) == {"16C"} and set(a[S.ICB]) == {"QHM"}
    assert set(p.loc[p[S.PRACTICE].str.startswith("C82"), S.ICB]) == {S.LLR_ICB}
    c = p.set_index([S.PRACTICE, S.YEAR])
    assert set(p["list_source"]) == {"payments"} and build.fallbacks == {}
    assert c.loc[("C82001", 2019), S.WEIGHTED_LIST_SIZE] == 4740
    assert not any(r.startswith("fallback") for r in rep.table()["rule"])
    # FTE per 1,000 weighted patients, for every workforce outcome of the outcome table
    assert c.loc[("C82001", 2018), S.GP_FTE] == pytest.approx(2.35 / 4703.5 * 1000)
    assert c.loc[("C82001", 2018), S.ADMIN_FTE] == pytest.approx(5 / 4703.5 * 1000)
    wf = load_workforce(FIX / "workforce" / "workforce-practice-fiscal-year.csv")
    wf = wf.set_index([S.PRACTICE, S.YEAR])
    for col in outcome_columns(source="workforce"):
        raw = wf[get_outcome(col).source_column]
        want = raw / c[S.WEIGHTED_LIST_SIZE] * 1000
        pd.testing.assert_series_equal(c[col], want.reindex(c.index), check_names=False)
    # column order from the outcome table: each outcome followed by its denominator
    cols = list(p.columns)
    assert cols.index(S.QOF_MAX_POINTS) == cols.index(S.QOF) + 1
    assert cols.index(S.GPPS_RESPONSES) == cols.index(S.GPPS_OVERALL) + 1
    assert cols.index(S.GP_FTE) < cols.index(S.QOF) < cols.index(S.GPPS_OVERALL)
    # A83001 2020 has no GP FTE: dropped as a practice-year by the default missing-outcome rule
    assert ("A83001", 2020) not in c.index
    assert (rep.dropped["rule"] == "missing_outcome").sum() == 1
    # PCN back-filled before 2019/20; ranks on [0, 1]; treatment starts 2022 (none here)
    assert c.loc[("C82001", 2018), S.PCN] == "U11111"
    assert p[S.DEPRIVATION_RANK].between(0, 1).all() and p[S.NEED_RANK].notna().any()
    assert p[S.HEP_TREATED].eq(0).all() and p[S.HEP_DOSE].isna().all()
    # more deprived practice in the same ICB-year has the lower rank
    llr18 = p[(p[S.ICB] == S.LLR_ICB) & (p[S.YEAR] == 2018)].set_index(S.PRACTICE)
    assert llr18.loc["C82002", S.DEPRIVATION_RANK] < llr18.loc["C82001", S.DEPRIVATION_RANK]


def _copy_fixtures(tmp_path: Path) -> Path:
    shutil.copytree(FIX, tmp_path / "nhs")
    return tmp_path / "nhs"


def test_missing_payments_year_is_an_error_unless_the_fallback_is_allowed(tmp_path: Path) -> None:
    data = _copy_fixtures(tmp_path)
    (data / "payments" / "nhspaymentsgp-18-19-csv.csv").unlink()
    with pytest.raises(FileNotFoundError, match=r"\[2019\] \(2018/19\).*nhspaymentsgp-18-19-\*"):
        build_nhs_panel(data, years=range(2018, 2021))
    options = NHSLoadOptions(allow_list_size_fallback=True)
    build = build_nhs_panel(data, years=range(2018, 2021), options=options)
    p, rep = build.panel, build.report
    # 2019: registered list from the workforce file, weighted/registered ratio carried forward
    c = p.set_index([S.PRACTICE, S.YEAR])
    assert c.loc[("C82001", 2019), "list_source"] == "workforce"
    assert c.loc[("C82001", 2019), S.LIST_SIZE] == 4150
    assert c.loc[("C82001", 2019), S.WEIGHTED_LIST_SIZE] == pytest.approx(4150 * 4703.5 / 4114)
    # the fallback is a row of the inclusion table, counting the kept rows that use it
    assert build.fallbacks == {"list_size_from_workforce": [2019]}
    tab = rep.table().set_index("rule")
    row = tab.loc["fallback: list_size_from_workforce"]
    assert row["practice_years"] == (p[S.YEAR] == 2019).sum() == 3
    assert "allow_list_size_fallback" in row["description"]
    assert "FALLBACK list_size_from_workforce" in str(rep)


def test_missing_qof_year_is_an_error_unless_allowed(tmp_path: Path) -> None:
    data = _copy_fixtures(tmp_path)
    (data / "qof" / "qof-2019-20.csv").unlink()
    with pytest.raises(FileNotFoundError, match=r"QOF.*\[2020\].*qof-2019-20\.csv"):
        build_nhs_panel(data, years=range(2018, 2021))
    build = build_nhs_panel(
        data, years=range(2018, 2021), options=NHSLoadOptions(allow_missing_qof=True)
    )
    assert build.panel.loc[build.panel[S.YEAR] == 2020, S.QOF].isna().all()
    assert "fallback: qof_missing" in set(build.report.table()["rule"])


def test_build_treatment_and_year_errors() -> None:
    rules = InclusionRules(window=(2018, 2023), require_all_years=False, missing_outcome="keep")
    p = build_nhs_panel(FIX, rules, years=[2018, 2020, 2023]).panel
    treated = p[p[S.HEP_TREATED] == 1]
    assert set(treated[S.ICB]) == {S.LLR_ICB} and set(treated[S.YEAR]) == {2023}
    assert p.loc[p[S.YEAR] == 2023, S.QOF].notna().all()
    with pytest.raises(ValueError, match=r"years=.*\[2021, 2022\]"):
        build_nhs_panel(FIX, years=range(2018, 2024))
    with pytest.raises(FileNotFoundError, match="nowhere"):
        build_nhs_panel(FIX / "nowhere")


def test_need_score_orders_need() -> None:
    df = pd.DataFrame(
        {
            S.YEAR: [2020] * 4,
            S.LIST_SIZE: [1000.0] * 4,
            S.WEIGHTED_LIST_SIZE: [900.0, 1000.0, 1100.0, 1200.0],
            "list_turnover": [0.01, 0.02, 0.03, np.nan],
            S.IMD: [10.0, 20.0, 30.0, 40.0],
        }
    )
    score = need_score(df)
    assert score.is_monotonic_increasing
    assert score.notna().all()  # a missing component uses the others


# ------------------------------------------------------------------ real published files

# Practice rows counted once by hand (wc -l minus the header) in each published payments file.
PAYMENTS_ROWS = {2018: 7543, 2019: 7279, 2020: 7001, 2021: 6808, 2022: 6758, 2023: 6669}


@pytest.mark.realdata
def test_real_payments_practices_per_year(nhs_data_dir: Path) -> None:
    files = payments_files(nhs_data_dir)
    assert len(files) == 6
    for f in files:
        p = load_payments(f)
        year = int(p[S.YEAR].iloc[0])
        assert abs(len(p) - PAYMENTS_ROWS[year]) <= 0.01 * PAYMENTS_ROWS[year], (f, len(p))
        assert p[S.LIST_SIZE].notna().all() and p[S.WEIGHTED_LIST_SIZE].notna().all()
        assert p["open_date"].notna().mean() > 0.99
        assert (p[S.PCN].notna().mean() > 0.9) == (year >= 2020)
        if year == 2023:
            llr = p[S.SUB_ICB].isin(S.LLR_SUB_ICBS).sum()
            assert 125 <= llr <= 140  # about 130 LLR practices in 2022/23


@pytest.mark.realdata
def test_real_qof_and_lookups(nhs_data_dir: Path) -> None:
    qof = {int(q[S.YEAR].iloc[0]): q for q in map(load_qof, qof_files(nhs_data_dir))}
    assert sorted(qof) == [2018, 2019, 2020, 2022, 2023]  # 2020/21 not published here
    for year, q in qof.items():
        assert q["qof_percent"].dropna().between(0, 100).all()
        assert set(q[S.QOF_MAX_POINTS]) == ({559} if year <= 2020 else {635})
        assert q[S.QOF].dropna().between(0, 1).all()
        assert 0.85 < q[S.QOF].median() < 1.0
    lk = load_ccg_icb(nhs_data_dir / "lookups" / "ccg-icb.csv")
    assert set(lk[S.ICB]) == ENGLAND_ICB_CODES
    assert set(lk.loc[lk["code"].isin(S.LLR_SUB_ICBS), S.ICB]) == {S.LLR_ICB}
    imd = load_imd(nhs_data_dir / "imd" / "fingertips-93553-practice-deprivation.csv")
    assert set(imd["imd_edition"]) == {2010, 2015, 2019}
    assert 6500 < (imd["imd_edition"] == 2019).sum() < 7500
    wf = load_workforce(nhs_data_dir / "workforce" / "workforce-practice-fiscal-year.csv")
    assert sorted(wf[S.YEAR].unique()) == list(range(2016, 2025))


@pytest.fixture(scope="module")
def real_build(nhs_data_dir: Path) -> PanelBuild:
    return build_nhs_panel(nhs_data_dir)


@pytest.mark.realdata
def test_real_panel_size_and_counts(real_build: PanelBuild) -> None:
    p, rep = real_build.panel, real_build.report
    assert sorted(p[S.YEAR].unique()) == list(S.STUDY_YEARS)
    # Published evaluation: 5,419 practices open 2018-2024 with >= 500 patients, 118 in LLR
    # (measured with the default rules: 5,411 and 116).
    assert abs(rep.practices_kept - 5419) <= 110, str(rep)
    assert 110 <= rep.llr_practices_kept <= 125, str(rep)
    assert rep.practices_in == rep.practices_dropped + rep.practices_kept
    assert rep.practice_years_in == rep.practice_years_dropped + rep.practice_years_kept
    assert rep.llr_practices_in == rep.llr_practices_dropped + rep.llr_practices_kept
    assert len(rep.dropped) == rep.practice_years_dropped
    assert real_build.unmapped_practices == ()
    assert (p.groupby(S.PRACTICE)[S.ICB].nunique() == 1).all()
    assert set(p.loc[p[S.YEAR] == 2024, "list_source"]) == {"workforce"}


@pytest.mark.realdata
def test_real_panel_values(real_build: PanelBuild) -> None:
    p = real_build.panel
    med = p.groupby(S.YEAR)[S.GP_FTE].median()
    # GPs (excl. locums/trainees) per 1,000 weighted patients: national median ~0.43-0.47
    assert med.between(0.35, 0.6).all(), med
    assert p[S.GP_FTE].notna().all()
    assert p[S.QOF].dropna().between(0, 1).all()
    assert p.loc[p[S.YEAR].isin([2021, 2024]), S.QOF].isna().all()
    assert p[S.DEPRIVATION_RANK].between(0, 1).all()
    # population-weighted mean rank is 0.5 within every ICB x year
    w = p.assign(wr=p[S.DEPRIVATION_RANK] * p[S.LIST_SIZE])
    g = w.groupby([S.ICB, S.YEAR])
    np.testing.assert_allclose(g["wr"].sum() / g[S.LIST_SIZE].sum(), 0.5, atol=1e-9)
    treated = p[p[S.HEP_TREATED] == 1]
    assert set(treated[S.ICB]) == {S.LLR_ICB} and treated[S.YEAR].min() == S.HEP_START_YEAR
    assert p[S.HEP_DOSE].isna().all()
    ratio = p[S.WEIGHTED_LIST_SIZE] / p[S.LIST_SIZE]
    assert ratio.between(0.3, 3).all()
    # need proxy correlates positively with IMD (one of its components)
    assert p[S.NEED_SCORE].corr(p[S.IMD]) > 0.3

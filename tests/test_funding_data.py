"""Funding outcomes: payment lines of every year's payments file, the groups, the validity rule."""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from hepcausal import schema as S
from hepcausal.data.headers import normalise_header
from hepcausal.data.inclusion import InclusionRules
from hepcausal.data.nhs import NHSLoadOptions, add_funding_outcomes, build_nhs_panel
from hepcausal.data.nhs_files import (
    PAYMENT_GROUPS,
    PAYMENT_LINE_PATTERNS,
    PAYMENT_LINES_BY_YEAR,
    PCN_LINES_OUTSIDE_TOTAL,
    load_payments,
    payments_files,
)
from hepcausal.outcomes import (
    FUND_CORE,
    FUND_LOCAL,
    FUND_PCN,
    FUND_TOTAL,
    FUND_TOTAL_REG,
    FUNDING_COLUMNS,
    get_outcome,
    synthetic_specs,
)

FIX = Path(__file__).parent / "fixtures" / "nhs"

# A 2022/23-style file with a few payment lines, values chosen by hand.
_HEADER = (
    "\ufeffNHS England (Region) code,Sub ICB Code,PCN Code,Practice Code,Practice Open Date,"
    "Practice Close Date,Average Number of Registered Patients,Average Number of Weighted "
    "Patients,Global Sum,MPIG Correction factor,Balance of PMS Expenditure,Total QOF Payments,"
    "GP Extended Hours Access,Minor Surgery,Local Incentive Schemes,PCN Participation,"
    "PCN Workforce,Total NHS Payments to General Practice,"
    '"Total NHS Payments to General Practice Minus Deductions"'
)
_ROWS = (
    'Y60,03W,U11111,C82001,01/04/1999,,1000,1250,"100,000",50,0,20000,1000,500,2500,1800,'
    "30000,140000,130000",
    "Y60,04C,U11111,C82002,01/04/1992,,2000,2000,150000,0,10000,30000,0,0,0,3600,0,300000,1",
)


def _write(tmp_path: Path) -> Path:
    f = tmp_path / "nhspaymentsgp-22-23-prac-csv.csv"
    f.write_text("\n".join((_HEADER, *_ROWS)) + "\n", encoding="utf-8")
    return f


def test_funding_rows_are_appended_and_not_simulated() -> None:
    for col in FUNDING_COLUMNS:
        row = get_outcome(col)
        assert row.source == "payments" and row.synthetic is None
        assert row.source_column in (*PAYMENT_GROUPS, "total")
    assert get_outcome("fund_total_reg").list_denominator == S.LIST_SIZE
    assert get_outcome("fund_local").units == "GBP per weighted patient"
    assert not set(FUNDING_COLUMNS) & set(synthetic_specs())


def test_payment_lines_and_groups_by_hand(tmp_path: Path) -> None:
    p = load_payments(_write(tmp_path))
    one = p.set_index(S.PRACTICE).loc["C82001"]
    assert one["pay_global_sum"] == 100_000 and one["pay_local"] == 2500
    assert one["pay_total"] == 140_000  # not the 'minus deductions' column
    assert np.isnan(one["pay_pcn_leadership"])  # not in this file: missing, not zero
    out, n = add_funding_outcomes(p)
    o = out.set_index(S.PRACTICE)
    assert n == 0 and not o["payment_invalid"].any()
    assert o.loc["C82001", FUND_CORE] == pytest.approx((100_000 + 50 + 0) / 1250)
    assert o.loc["C82001", FUND_LOCAL] == pytest.approx(2500 / 1250)
    assert o.loc["C82001", FUND_PCN] == pytest.approx((1800 + 30000) / 1250)
    assert o.loc["C82001", FUND_TOTAL] == pytest.approx(140_000 / 1250)
    assert o.loc["C82002", FUND_TOTAL_REG] == pytest.approx(300_000 / 2000)
    assert o.loc["C82001", "funding_enhanced_per_wpt"] == pytest.approx(1500 / 1250)


def test_payment_validity_rule_blanks_funding_only(tmp_path: Path) -> None:
    p = load_payments(_write(tmp_path))
    # totals per registered patient: 140 and 150 GBP
    out, n = add_funding_outcomes(p, (80.0, 145.0))
    o = out.set_index(S.PRACTICE)
    assert n == 1 and bool(o.loc["C82002", "payment_invalid"])
    assert o.loc["C82002", list(FUNDING_COLUMNS)].isna().all()
    assert o.loc["C82001", list(FUNDING_COLUMNS)].notna().all()
    assert o.loc["C82002", S.WEIGHTED_LIST_SIZE] == 2000  # list sizes untouched
    with pytest.raises(ValueError, match="payment_validity"):
        NHSLoadOptions(payment_validity=(550.0, 80.0))


def test_payment_validity_counted_in_inclusion_report(tmp_path: Path) -> None:
    data = tmp_path / "nhs"
    shutil.copytree(FIX, data)
    years = range(2018, 2020)  # the fixture files of 2017/18, 2018/19 carry the total line
    plain = build_nhs_panel(data, years=years).panel
    assert plain[FUND_TOTAL].notna().any()
    per_reg = plain[FUND_TOTAL_REG]
    low = float(per_reg.min()) + 1e-9  # blanks exactly the practice-years at the minimum
    build = build_nhs_panel(data, years=years, options=NHSLoadOptions(payment_validity=(low, 1e6)))
    table = build.report.table().set_index("rule")
    n_low = int((per_reg < low).sum())
    assert table.loc["fallback: payment_validity", "practice_years"] == n_low >= 1
    assert build.panel[FUND_TOTAL].isna().sum() == plain[FUND_TOTAL].isna().sum() + n_low
    assert any("payment validity" in note for note in build.report.notes)
    # counted per year in the table's text, before the rules
    text = table.loc["fallback: payment_validity", "description"]
    for year, n in plain.loc[per_reg < low, S.YEAR].value_counts().items():
        assert f"{int(year)} {int(n)}" in text
    assert f"(total {n_low})" in text
    # the panel remembers its folder and rule (the PCN regression sums the payments files)
    assert build.panel.attrs["nhs_data_dir"] == str(data)
    assert build.panel.attrs["payment_validity"] == (low, 1e6)
    # analysing a funding outcome: the blanked practice-years are dropped by missing_outcome,
    # and the payment-validity text says so (nothing removed goes uncounted)
    rules = InclusionRules(window=(2018, 2019), outcomes=(FUND_TOTAL,))
    on_funding = build_nhs_panel(
        data, rules, years=years, options=NHSLoadOptions(payment_validity=(low, 1e6))
    )
    t2 = on_funding.report.table().set_index("rule")
    assert t2.loc["fallback: payment_validity", "practice_years"] == 0
    assert f"missing_outcome {n_low}" in t2.loc["fallback: payment_validity", "description"]
    assert t2.loc["missing_outcome", "practice_years"] >= n_low


def _independent_lines(path: Path) -> tuple[list[str], dict[str, dict[str, float]]]:
    """Header and per-practice numbers read with the csv module (not the loader's code)."""
    with path.open(encoding="utf-8-sig", newline="") as fh:
        rows = list(csv.reader(fh))
    header = rows[0]
    code = next(i for i, h in enumerate(header) if normalise_header(h) == "practice code")
    out = {}
    for r in rows[1:]:
        vals = {}
        for i, h in enumerate(header):
            try:
                vals[h] = float(r[i].replace(",", "").strip())
            except ValueError:
                continue
        out[r[code].strip()] = vals
    return header, out


@pytest.mark.realdata
def test_real_payment_headers_every_year(nhs_data_dir: Path) -> None:
    """Each real year's header maps exactly the payment lines that year carries; the loaded
    values equal an independent parse; the file's own PCN-inclusive total (2020/21 on) equals
    the headline total plus the PCN lines outside it."""
    files = payments_files(nhs_data_dir)
    assert len(files) == 6
    for f in files:
        p = load_payments(f)
        year = int(p[S.YEAR].iloc[0])
        mapped = p.attrs["payment_headers"]
        assert set(mapped) == set(PAYMENT_LINES_BY_YEAR[year]), (f.name, set(mapped))
        for key in set(PAYMENT_LINE_PATTERNS) - set(mapped):
            assert p[key].isna().all()
        header, indep = _independent_lines(f)
        sample = p.sample(50, random_state=year)
        for _, r in sample.iterrows():
            for key, head in mapped.items():
                assert r[key] == pytest.approx(indep[r[S.PRACTICE]][head]), (f.name, key)
        assert p[list(mapped)].notna().all().all()
        if year >= 2021:
            with_pcn = next(
                h
                for h in header
                if normalise_header(h).startswith("total nhs payments including pcn workforce")
            )
            want = pd.Series({k: v[with_pcn] for k, v in indep.items()})
            got = p.set_index(S.PRACTICE)["pay_total"] + p.set_index(S.PRACTICE)[
                list(PCN_LINES_OUTSIDE_TOTAL)
            ].fillna(0).sum(axis=1)
            assert np.allclose(got, want.reindex(got.index), atol=0.01)
        # the headline total per weighted patient is the file's own average column
        avg = next(
            h for h in header if normalise_header(h) == "average payments per weighted patient"
        )
        ratio = p["pay_total"] / p[S.WEIGHTED_LIST_SIZE]
        file_avg = p[S.PRACTICE].map({k: v.get(avg, np.nan) for k, v in indep.items()})
        ok = p[S.WEIGHTED_LIST_SIZE] > 100
        close = np.isclose(ratio[ok], file_avg[ok], atol=0.02)
        assert close.mean() > 0.98, (f.name, close.mean())


@pytest.mark.parametrize(
    "name, local_header, hours_header",
    [
        ("nhspaymentsgp-17-18-csv.csv", "Total Local Enhanced Services", "Extended Hours Access"),
        (
            "nhspaymentsgp-19-20-prac-csv.csv",
            "Total Local Incentive Schemes",
            "Extended Hours Access4",
        ),
        (
            "nhspaymentsgp-21-22-prac-csv-v2.csv",
            "Local Incentive Schemes",
            "GP Extended Hours Access",
        ),
    ],
)
def test_renamed_payment_lines(
    tmp_path: Path, name: str, local_header: str, hours_header: str
) -> None:
    f = tmp_path / name
    f.write_text(
        "CCG Code,Practice Code,Number of Registered Patients (Last Known Figure),"
        f"Number of Weighted Patients (Last Known Figure),{local_header},{hours_header},"
        'PCN Extended Hours Access\n03W,C82001,1000,1100,"1,234.5",99,7\n',
        encoding="utf-8",
    )
    p = load_payments(f)
    assert p["pay_local"].iloc[0] == 1234.5
    assert p["pay_des_extended_hours"].iloc[0] == 99  # not the PCN line
    assert p["pay_pcn_extended_hours"].iloc[0] == 7


def test_unparseable_payment_value_names_file_and_column(tmp_path: Path) -> None:
    f = tmp_path / "nhspaymentsgp-18-19-csv.csv"
    f.write_text(
        "CCG Code,Practice Code,Average Number of Registered Patients,"
        "Average Number of Weighted Patients,Global Sum\n03W,C82001,1000,1100,abc\n",
        encoding="utf-8",
    )
    with pytest.raises(ValueError, match=r"nhspaymentsgp-18-19.*Global Sum"):
        load_payments(f)

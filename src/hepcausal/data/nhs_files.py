"""Loaders for the published NHS England / OHID practice files (see ``docs`` and the data README).

Every loader reads one published file, finds its columns by normalised-header regexes (headers
drift between years), and returns a tidy frame with schema column names and ``year`` = fiscal-year
end.  A required column that cannot be found raises
:class:`~hepcausal.data.headers.ColumnNotFoundError` naming the file and the column.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd

from hepcausal import schema as S
from hepcausal.data.headers import (
    DataFileError,
    fiscal_year_from_name,
    match_columns,
    parse_dates,
    read_csv_text,
    to_number,
)
from hepcausal.data.validate import IMD_BOUNDS, MAX_LIST_SIZE
from hepcausal.outcomes import OUTCOMES

__all__ = [
    "PAYMENT_GROUPS",
    "PAYMENT_LINES_BY_YEAR",
    "PAYMENT_LINE_PATTERNS",
    "PCN_LINES_OUTSIDE_TOTAL",
    "PRACTICE_CODE_PATTERN",
    "imd_wide",
    "load_ccg_icb",
    "load_imd",
    "load_payments",
    "load_qof",
    "load_workforce",
]

PRACTICE_CODE_PATTERN = r"[A-Z]\d{5}"
_SUB_ICB_PATTERN = r"[A-Z0-9]{3,5}"
_NO_PCN = {"unknown or no pcn", "no pcn", "unknown", "n/a", "none", ""}

# Workforce columns besides the outcome table's FTE columns (raw counts, not yet per 1,000).
LOCUM_TRAINEE_FTE_RAW = "locum_trainee_fte"
WORKFORCE_PATIENTS = "workforce_patients"


def _clean_codes(values: pd.Series) -> pd.Series:
    return values.astype("str").str.strip().str.upper().mask(values.isna())


def _whole_numbers(values: pd.Series, *, column: str, source: str | Path) -> pd.Series:
    """``values`` as int64; missing or fractional values raise, naming file, column and rows."""
    bad = values.isna() | (values != values.round())
    if bad.any():
        raise ValueError(
            f"{source}: column {column!r} has missing or non-integer values "
            f"{list(values[bad][:5])} at rows {list(values.index[bad][:5])}"
        )
    return values.astype("int64")


def _check_list_sizes(out: pd.DataFrame, col: str, *, source: str | Path, header: str) -> None:
    """Raise if a list size exceeds :data:`~hepcausal.data.validate.MAX_LIST_SIZE`."""
    bad = out[col] > MAX_LIST_SIZE
    if bad.any():
        raise ValueError(
            f"{source}: column {header!r} has list sizes above {MAX_LIST_SIZE:,.0f} patients "
            f"(implausible for one practice) {list(out.loc[bad, col][:5])} at rows "
            f"{list(out.index[bad][:5])} (practices {list(out.loc[bad, S.PRACTICE][:5])})"
        )


# Practices listing at least this many patients have their raw FTE checked per 1,000 patients.
FTE_CHECK_MIN_PATIENTS = 1000.0


def _check_fte_plausible(out: pd.DataFrame, path: Path, cols: dict[str, str]) -> None:
    """Raise on raw workforce FTE implausible by the outcome table's ``bounds``.

    Per 1,000 of the file's own patient count (rows with at least
    :data:`FTE_CHECK_MIN_PATIENTS` patients), and in absolute terms for every row (more than the
    upper bound times :data:`~hepcausal.data.validate.MAX_LIST_SIZE` / 1,000).
    """
    patients = out[WORKFORCE_PATIENTS]
    for row in OUTCOMES.values():
        raw = row.source_column
        if row.source != "workforce" or raw is None or raw not in out:
            continue
        high = row.bounds[1]
        per_1k = out[raw] / patients * 1000.0
        bad = ((patients >= FTE_CHECK_MIN_PATIENTS) & (per_1k > high)) | (
            out[raw] > high * MAX_LIST_SIZE / 1000.0
        )
        if bad.any():
            where = [
                f"row {i} (practice {out.at[i, S.PRACTICE]}, year {out.at[i, S.YEAR]}: "
                f"{out.at[i, raw]:g} FTE for {patients[i]:g} patients)"
                for i in out.index[bad][:5]
            ]
            raise DataFileError(
                path,
                f"column {cols[raw]!r} is implausible for {row.column!r} (more than "
                f"{high:g} {row.units}, the outcome table's bound) at {bad.sum()} row(s): "
                + "; ".join(where),
            )


def _check_practice_codes(codes: pd.Series, *, source: str | Path, column: str) -> None:
    bad = codes.isna() | ~codes.fillna("").str.fullmatch(PRACTICE_CODE_PATTERN)
    if bad.any():
        rows = list(codes.index[bad][:5])
        raise ValueError(
            f"{source}: column {column!r} has invalid practice codes {list(codes[bad][:5])} "
            f"at rows {rows} (expected e.g. 'A81001')"
        )
    dup = codes.duplicated(keep=False)
    if dup.any():
        rows = list(codes.index[dup][:6])
        raise ValueError(
            f"{source}: column {column!r} has duplicated practice codes "
            f"{sorted(set(codes[dup]))[:5]} at rows {rows}"
        )


# --------------------------------------------------------------------------------------------
# NHS Payments to General Practice
# --------------------------------------------------------------------------------------------

_PAYMENT_PATTERNS = {
    S.PRACTICE: r"practice code",
    S.SUB_ICB: [r"sub icb( location| loc)? code", r"ccg code"],
    S.PCN: r"pcn code",
    S.LIST_SIZE: r"(average )?number of registered patients( last known figure)?",
    S.WEIGHTED_LIST_SIZE: r"(average )?number of weighted patients( last known figure)?",
    "open_date": r"practice open date",
    "close_date": r"practice close date",
}
_PAYMENT_OPTIONAL = (S.PCN, "open_date", "close_date")

# Payment lines (GBP per practice and fiscal year), grouped.  Each key is a loaded column; its
# patterns match the normalised headers of every year's file 2017/18-2022/23 (the line names
# changed: 'Total Local Enhanced Services' in 2017/18 became '(Total) Local Incentive Schemes';
# 'Extended Hours Access' became 'GP Extended Hours Access').  Every line is optional in a file
# (lines start and stop across years: PCN lines from 2019/20, PCN workforce etc. from 2020/21);
# :data:`PAYMENT_LINES_BY_YEAR` lists the lines each real year's file must have.
PAYMENT_LINE_PATTERNS: dict[str, str | list[str]] = {
    "pay_total": r"total nhs payments to general practice",
    "pay_global_sum": r"global sum",
    "pay_mpig": r"mpig correction factor",
    "pay_pms": r"balance of pms expenditure",
    "pay_qof": r"total qof payments",
    "pay_des_childhood_imms": r"childhood vaccination and immunisation scheme",
    "pay_des_extended_hours": r"(gp )?extended hours access",
    "pay_des_dementia": r"facilitating timely diagnosis and support for people with dementia",
    "pay_des_flu_pneumo": r"influenza and pneumococcal immunisations",
    "pay_des_learning_dis": r"learning disabilities",
    "pay_des_minor_surgery": r"minor surgery",
    "pay_des_rota_shingles": r"rotavirus and shingles immunisation",
    "pay_des_violent": r"services for violent patients",
    "pay_des_unplanned_adm": r"unplanned admissions",
    "pay_des_out_of_area": r"out of area in hours urgent care",
    "pay_des_meningitis": r"meningitis",
    "pay_des_pertussis": r"pertussis",
    "pay_des_med_assessment": r"medical assessment reviews",
    "pay_des_weight_mgmt": r"weight management service",
    "pay_local": [r"(total )?local incentive schemes", r"total local enhanced services"],
    "pay_pcn_participation": r"pcn participation",
    "pay_pcn_leadership": r"pcn leadership",
    "pay_pcn_support": r"pcn support",
    "pay_pcn_extended_hours": r"pcn extended hours access",
    "pay_pcn_workforce": r"pcn workforce",
    "pay_pcn_iif": r"pcn investment and impact fund",
    "pay_pcn_care_home": r"pcn care home premium",
    "pay_pcn_enhanced_access": r"pcn enhanced access",
}
"""Loaded payment-line column -> header regex(es) (whole normalised header)."""

PAYMENT_GROUPS: dict[str, tuple[str, ...]] = {
    "core": ("pay_global_sum", "pay_mpig", "pay_pms"),
    "qof": ("pay_qof",),
    "enhanced": tuple(k for k in PAYMENT_LINE_PATTERNS if k.startswith("pay_des_")),
    "local": ("pay_local",),
    "pcn": tuple(k for k in PAYMENT_LINE_PATTERNS if k.startswith("pay_pcn_")),
}
"""Payment groups: core (global sum, MPIG, PMS balance), QOF, enhanced services (the national
DES lines), local incentive schemes, PCN lines (PCN participation paid to practices from 2019/20,
and from 2020/21 the PCN leadership, support, extended hours, ARRS workforce, IIF, care home
premium and (2022/23) enhanced access lines, paid to the practice receiving them for its PCN)."""

# PCN lines outside 'Total NHS Payments to General Practice' (in the files' separate total
# 'Total NHS Payments including PCN Workforce, Leadership and Support', 2020/21 on).
PCN_LINES_OUTSIDE_TOTAL: tuple[str, ...] = tuple(
    k for k in PAYMENT_GROUPS["pcn"] if k != "pay_pcn_participation"
)

_ALWAYS = ("pay_total", "pay_global_sum", "pay_mpig", "pay_pms", "pay_qof", "pay_local")
_DES_ALL_YEARS = (
    "pay_des_childhood_imms",
    "pay_des_extended_hours",
    "pay_des_flu_pneumo",
    "pay_des_learning_dis",
    "pay_des_minor_surgery",
    "pay_des_rota_shingles",
    "pay_des_violent",
    "pay_des_out_of_area",
    "pay_des_meningitis",
    "pay_des_pertussis",
)
_PCN_2021 = (
    "pay_pcn_participation",
    "pay_pcn_leadership",
    "pay_pcn_support",
    "pay_pcn_extended_hours",
    "pay_pcn_workforce",
    "pay_pcn_iif",
    "pay_pcn_care_home",
)
PAYMENT_LINES_BY_YEAR: dict[int, tuple[str, ...]] = {
    2018: (*_ALWAYS, *_DES_ALL_YEARS, "pay_des_dementia", "pay_des_unplanned_adm"),
    2019: (*_ALWAYS, *_DES_ALL_YEARS),
    2020: (*_ALWAYS, *_DES_ALL_YEARS, "pay_pcn_participation"),
    2021: (*_ALWAYS, *_DES_ALL_YEARS, *_PCN_2021),
    2022: (*_ALWAYS, *_DES_ALL_YEARS, "pay_des_med_assessment", "pay_des_weight_mgmt", *_PCN_2021),
    2023: (
        *_ALWAYS,
        *_DES_ALL_YEARS,
        "pay_des_med_assessment",
        "pay_des_weight_mgmt",
        *_PCN_2021,
        "pay_pcn_enhanced_access",
    ),
}
"""The payment lines each published year's file (2017/18-2022/23, by fiscal-year end) carries;
checked against the real headers by the tests."""


def load_payments(path: str | Path, *, year: int | None = None) -> pd.DataFrame:
    """Load one 'NHS Payments to General Practice' practice-level CSV (2017/18 onwards).

    Returns one row per practice with ``practice_code``, ``year`` (fiscal-year end, from the file
    name unless given), ``sub_icb_code`` (the CCG or sub-ICB code printed in that year's file),
    ``pcn_code`` (missing before 2019/20 and for 'Unknown or no PCN'), ``list_size`` and
    ``weighted_list_size`` (the file's registered / weighted patients: 'last known figure' in
    2017/18, 2020/21, 2021/22; the year's average in the others), ``open_date`` and
    ``close_date`` (Excel serials up to 2019/20, dd/mm/yyyy later; both parsed).

    Parameters
    ----------
    path : str or Path
        The published CSV (e.g. ``nhspaymentsgp-21-22-prac-csv.csv``).
    year : int or None, keyword-only, default None
        Fiscal-year end of the file (2022 for 2021/22); None reads it from the file name.

    Returns
    -------
    pandas.DataFrame
        One row per practice, columns as above.

    Raises
    ------
    ColumnNotFoundError
        When a required column is missing (the message names the file and the pattern).
    DataFileError
        When the file is empty, header-only or has malformed rows.
    ValueError
        When values are unparseable or implausible, or the year cannot be read from the name.
    """
    path = Path(path)
    fy = fiscal_year_from_name(path) if year is None else int(year)
    raw = read_csv_text(path)
    cols = match_columns(raw, _PAYMENT_PATTERNS, source=path, optional=_PAYMENT_OPTIONAL)
    out = pd.DataFrame(index=raw.index)
    out[S.PRACTICE] = _clean_codes(raw[cols[S.PRACTICE]])
    _check_practice_codes(out[S.PRACTICE], source=path, column=cols[S.PRACTICE])
    out[S.YEAR] = fy
    out[S.SUB_ICB] = _clean_codes(raw[cols[S.SUB_ICB]])
    if S.PCN in cols:
        pcn = _clean_codes(raw[cols[S.PCN]])
        out[S.PCN] = pcn.mask(pcn.fillna("").str.lower().isin(_NO_PCN))
    else:
        out[S.PCN] = pd.Series(np.nan, index=raw.index, dtype="str")
    for col in (S.LIST_SIZE, S.WEIGHTED_LIST_SIZE):
        out[col] = to_number(raw[cols[col]], column=cols[col], source=path)
        _check_list_sizes(out, col, source=path, header=cols[col])
    for col in ("open_date", "close_date"):
        out[col] = parse_dates(raw[cols[col]]) if col in cols else pd.NaT
    lines = match_columns(
        raw, PAYMENT_LINE_PATTERNS, source=path, optional=tuple(PAYMENT_LINE_PATTERNS)
    )
    for key in PAYMENT_LINE_PATTERNS:
        # a line absent from the file is missing (NaN), not zero: it did not exist that year
        out[key] = (
            to_number(raw[lines[key]], column=lines[key], source=path) if key in lines else np.nan
        )
    out.attrs["payment_headers"] = dict(lines)  # loaded line -> the file's header
    return out.reset_index(drop=True)


# --------------------------------------------------------------------------------------------
# Quality and Outcomes Framework
# --------------------------------------------------------------------------------------------

_QOF_PATTERNS = {
    S.PRACTICE: r"practice code",
    "qof_points": r"achievement score (max )?\d+( max)?",
    "qof_percent": r"qof points total \d+ available( per cent| %)?",
    "qof_list_size": [r"list size", r"all ages"],
    S.SUB_ICB: [r"sub icb( location| loc)? ods code", r"ccg( ods)? code( practice parent)?"],
}
_QOF_OPTIONAL = ("qof_percent", "qof_list_size", S.SUB_ICB)


def load_qof(
    path: str | Path, *, year: int | None = None, max_points: float | None = None
) -> pd.DataFrame:
    """Load one QOF practice achievement CSV (2017/18 onwards).

    Returns ``practice_code``, ``year``, ``qof_points`` (achievement score), ``qof_max_points``
    (the year's maximum: 559 up to 2019/20, 635 from 2021/22, read from the header unless given),
    ``qof_percent`` (the file's own 'points total / max available (%)', on [0, 100]),
    ``qof_achievement`` = points / max points on [0, 1], and ``qof_list_size``.  Raises if
    the published percentage is outside [0, 100] or disagrees with points / max.

    Parameters
    ----------
    path : str or Path
        The published QOF practice CSV.
    year : int or None, keyword-only, default None
        Fiscal-year end of the file; None reads it from the file name.
    max_points : float or None, keyword-only, default None
        Maximum QOF points of the year; None reads it from the achievement-score header.

    Returns
    -------
    pandas.DataFrame
        One row per practice, columns as above.

    Raises
    ------
    ColumnNotFoundError
        When a required column is missing (the message names the file and the pattern).
    DataFileError
        When the file is empty, header-only or has malformed rows.
    ValueError
        When values are unparseable or implausible, or the year cannot be read from the name.
    """
    path = Path(path)
    fy = fiscal_year_from_name(path) if year is None else int(year)
    raw = read_csv_text(path)
    cols = match_columns(raw, _QOF_PATTERNS, source=path, optional=_QOF_OPTIONAL)
    if max_points is None:
        nums = re.findall(r"\d+", re.sub(r"\s", " ", cols["qof_points"]))
        if not nums:
            raise ValueError(
                f"{path}: cannot read the maximum QOF points from header "
                f"{cols['qof_points']!r}; pass max_points="
            )
        max_points = float(nums[-1])
    out = pd.DataFrame(index=raw.index)
    out[S.PRACTICE] = _clean_codes(raw[cols[S.PRACTICE]])
    _check_practice_codes(out[S.PRACTICE], source=path, column=cols[S.PRACTICE])
    out[S.YEAR] = fy
    out["qof_points"] = to_number(raw[cols["qof_points"]], column=cols["qof_points"], source=path)
    out[S.QOF_MAX_POINTS] = float(max_points)
    bad = (out["qof_points"] < 0) | (out["qof_points"] > max_points)
    if bad.any():
        raise ValueError(
            f"{path}: column {cols['qof_points']!r} outside [0, {max_points:g}] at rows "
            f"{list(out.index[bad][:5])} (practices {list(out.loc[bad, S.PRACTICE][:5])})"
        )
    out[S.QOF] = out["qof_points"] / max_points
    if "qof_percent" in cols:
        pct = to_number(raw[cols["qof_percent"]], column=cols["qof_percent"], source=path)
        bad = (pct < 0) | (pct > 100)
        if bad.any():
            raise ValueError(
                f"{path}: column {cols['qof_percent']!r} outside [0, 100] at rows "
                f"{list(pct.index[bad][:5])}"
            )
        off = (pct - 100 * out[S.QOF]).abs() > 0.05
        if off.any():
            raise ValueError(
                f"{path}: column {cols['qof_percent']!r} disagrees with points / "
                f"{max_points:g} at rows {list(pct.index[off][:5])}"
            )
        out["qof_percent"] = pct
    else:
        out["qof_percent"] = 100 * out[S.QOF]
    if "qof_list_size" in cols:
        out["qof_list_size"] = to_number(
            raw[cols["qof_list_size"]], column=cols["qof_list_size"], source=path
        )
    return out.reset_index(drop=True)


# --------------------------------------------------------------------------------------------
# Fingertips 93553 practice deprivation
# --------------------------------------------------------------------------------------------

_IMD_PATTERNS = {
    S.PRACTICE: [r"areacode", r"area code"],
    "imd_edition": r"year",
    "value": r"value",
    "indicator": [r"indicatorid", r"indicator id"],
}


def load_imd(path: str | Path) -> pd.DataFrame:
    """Load the Fingertips indicator 93553 practice deprivation file (long format).

    Returns ``practice_code``, ``imd_edition`` (2010, 2015, 2019: the IMD edition, not a fiscal
    year) and ``imd_score``.  Non-practice area rows (England, regions) are excluded.

    Parameters
    ----------
    path : str or Path
        The Fingertips export (long format, ``AreaCode``, ``Year``, ``Value`` ...).

    Returns
    -------
    pandas.DataFrame
        One row per practice and IMD edition (higher score = more deprived).

    Raises
    ------
    ColumnNotFoundError
        When a required column is missing (the message names the file and the pattern).
    DataFileError
        When the file is empty, header-only or has malformed rows.
    ValueError
        When values are unparseable or implausible, another indicator is
        present or a (practice, edition) is duplicated.
    """
    path = Path(path)
    raw = read_csv_text(path)
    cols = match_columns(raw, _IMD_PATTERNS, source=path, optional=("indicator",))
    if "indicator" in cols:
        ind = raw[cols["indicator"]].str.strip()
        if not ind.eq("93553").all():
            raise ValueError(
                f"{path}: column {cols['indicator']!r} has indicators other than "
                f"93553: {sorted(set(ind) - {'93553'})[:5]}"
            )
    out = pd.DataFrame(
        {
            S.PRACTICE: _clean_codes(raw[cols[S.PRACTICE]]),
            "imd_edition": _whole_numbers(
                to_number(raw[cols["imd_edition"]], column=cols["imd_edition"], source=path),
                column=cols["imd_edition"],
                source=path,
            ),
            S.IMD: to_number(raw[cols["value"]], column=cols["value"], source=path),
        }
    )
    out = out[out[S.PRACTICE].fillna("").str.fullmatch(PRACTICE_CODE_PATTERN)]
    bad = out[S.IMD].notna() & ~out[S.IMD].between(*IMD_BOUNDS)
    if bad.any():
        raise DataFileError(
            path,
            f"column {cols['value']!r} has deprivation scores outside "
            f"[{IMD_BOUNDS[0]:g}, {IMD_BOUNDS[1]:g}] {list(out.loc[bad, S.IMD][:5])} at rows "
            f"{list(out.index[bad][:5])} (practices {list(out.loc[bad, S.PRACTICE][:5])})",
        )
    dup = out.duplicated([S.PRACTICE, "imd_edition"], keep=False)
    if dup.any():
        raise ValueError(f"{path}: duplicated (AreaCode, Year) at rows {list(out.index[dup][:6])}")
    return out.reset_index(drop=True)


def imd_wide(imd: pd.DataFrame) -> pd.DataFrame:
    """One row per practice: ``imd_score`` (IMD 2019) and ``imd2015_score`` (IMD 2015)."""
    wide = imd.pivot(index=S.PRACTICE, columns="imd_edition", values=S.IMD)
    out = pd.DataFrame(index=wide.index)
    out[S.IMD] = wide[2019] if 2019 in wide else np.nan
    out[S.IMD2015] = wide[2015] if 2015 in wide else np.nan
    return out.reset_index()


# --------------------------------------------------------------------------------------------
# GP workforce, fiscal-year means
# --------------------------------------------------------------------------------------------

# Identifiers and list size, the (optional) locum/trainee FTE, then one raw FTE column per
# workforce outcome of the outcome table (its ``source_column`` and ``source_header``).
_WORKFORCE_PATTERNS: dict[str, str] = {
    S.PRACTICE: r"practice code",
    S.YEAR: r"year",
    WORKFORCE_PATIENTS: r"total patients",
    LOCUM_TRAINEE_FTE_RAW: r"total locu+m trn fte",
    **{
        o.source_column: o.source_header
        for o in OUTCOMES.values()
        if o.source == "workforce" and o.source_column and o.source_header
    },
}


def load_workforce(path: str | Path) -> pd.DataFrame:
    """Load the practice x fiscal-year GP workforce means (``Year`` = fiscal-year end).

    Parameters
    ----------
    path : str or Path
        The workforce CSV (one row per practice and fiscal year).

    Returns
    -------
    DataFrame
        ``attrs["headers"]`` maps each column below to the file's header.
        ``practice_code``, ``year``, ``workforce_patients``, ``locum_trainee_fte`` (optional in
        the file) and the raw FTE column (``source_column``) of every workforce outcome of
        :data:`hepcausal.outcomes.OUTCOMES`: ``gp_fte`` (GPs excluding locums and trainees),
        ``nurse_fte``, ``dpc_fte``, ``admin_fte``.  The file's own IMD columns are ignored (use
        :func:`load_imd`).
    """
    path = Path(path)
    raw = read_csv_text(path)
    cols = match_columns(raw, _WORKFORCE_PATTERNS, source=path, optional=(LOCUM_TRAINEE_FTE_RAW,))
    out = pd.DataFrame({S.PRACTICE: _clean_codes(raw[cols[S.PRACTICE]])})
    out[S.YEAR] = _whole_numbers(
        to_number(raw[cols[S.YEAR]], column=cols[S.YEAR], source=path),
        column=cols[S.YEAR],
        source=path,
    )
    for key in _WORKFORCE_PATTERNS:
        if key in (S.PRACTICE, S.YEAR) or key not in cols:
            continue
        out[key] = to_number(raw[cols[key]], column=cols[key], source=path)
        neg = out[key] < 0
        if neg.any():
            raise ValueError(
                f"{path}: column {cols[key]!r} is negative at rows {list(out.index[neg][:5])}"
            )
    _check_list_sizes(out, WORKFORCE_PATIENTS, source=path, header=cols[WORKFORCE_PATIENTS])
    _check_fte_plausible(out, path, cols)
    dup = out.duplicated([S.PRACTICE, S.YEAR], keep=False)
    if dup.any():
        raise ValueError(f"{path}: duplicated (practice, year) at rows {list(out.index[dup][:6])}")
    out.attrs["headers"] = dict(cols)  # our name -> the file's header (for error messages)
    return out


# --------------------------------------------------------------------------------------------
# CCG / sub-ICB -> ICB lookup
# --------------------------------------------------------------------------------------------

_LOOKUP_PATTERNS = {
    "code": [r"(ccg|sub icb( location| loc)?)( ods)? code", r"ccg code"],
    S.ICB: r"icb( ods)? code",
    S.ICB_NAME: r"icb name",
}


def load_ccg_icb(path: str | Path) -> pd.DataFrame:
    """Load the CCG / sub-ICB code -> ICB lookup: columns ``code``, ``icb_code``, ``icb_name``.

    Entries whose code is not an ODS-style code (3-5 letters/digits, e.g. a free-text note) are
    left out because no practice can carry them; conflicting duplicate codes raise.

    Parameters
    ----------
    path : str or Path
        The lookup CSV (CCG or sub-ICB code, ICB code and ICB name columns).

    Returns
    -------
    pandas.DataFrame
        One row per code.

    Raises
    ------
    ColumnNotFoundError
        When a required column is missing.
    ValueError
        When a code maps to more than one ICB.
    """
    path = Path(path)
    raw = read_csv_text(path)
    cols = match_columns(raw, _LOOKUP_PATTERNS, source=path)
    out = pd.DataFrame(
        {
            "code": _clean_codes(raw[cols["code"]]),
            S.ICB: _clean_codes(raw[cols[S.ICB]]),
            S.ICB_NAME: raw[cols[S.ICB_NAME]].str.strip(),
        }
    )
    out = out[out["code"].fillna("").str.fullmatch(_SUB_ICB_PATTERN)].drop_duplicates()
    conflict = out["code"].duplicated(keep=False)
    if conflict.any():
        raise ValueError(
            f"{path}: codes mapped to more than one ICB: "
            f"{sorted(set(out.loc[conflict, 'code']))[:5]}"
        )
    return out.reset_index(drop=True)


def payments_files(data_dir: str | Path) -> list[Path]:
    """Payments CSVs in ``data_dir/payments`` (sorted by fiscal year)."""
    return sorted(
        (Path(data_dir) / "payments").glob("nhspaymentsgp-*.csv"), key=fiscal_year_from_name
    )


def qof_files(data_dir: str | Path) -> list[Path]:
    """QOF CSVs in ``data_dir/qof`` (sorted by fiscal year)."""
    return sorted((Path(data_dir) / "qof").glob("qof-*.csv"), key=fiscal_year_from_name)
